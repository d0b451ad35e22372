"""Straight-line fits that grow from a seed: how a branch of a curve is found in data.

An I-V curve is made of straight branches (superconducting, normal) joined by
a curved one (the transition). A branch is found by fitting a line to a few
points that surely belong to it (the seed), then taking in every point that
lies on that line within the noise, and refitting until nothing changes.

Interface: :class:`LineFit` (slope, intercept, their standard errors, the
residual scatter and which points were used), :func:`fit_line` (a plain fit
over chosen points) and :func:`grow_line`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "fit_line", "grow_line"]


@dataclass(frozen=True)
class LineFit:
    """A least-squares line ``y = slope x + intercept`` through a subset of points.

    Attributes:
        slope: dy/dx, in the units of y per unit of x.
        intercept: y at x = 0.
        slope_stderr: standard error of the slope.
        intercept_stderr: standard error of the intercept.
        scatter: rms residual of the points used (same units as y).
        members: boolean mask over the input points: used in the fit.
    """

    slope: float
    intercept: float
    slope_stderr: float
    intercept_stderr: float
    scatter: float
    members: np.ndarray

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """The line at ``x``."""
        return self.slope * np.asarray(x, dtype=float) + self.intercept


def _fit(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float,
                                                                 float]:
    xs, ys = x[mask], y[mask]
    n = xs.size
    design = np.vstack([xs, np.ones(n)]).T
    coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
    resid = ys - design @ coef
    dof = max(n - 2, 1)
    scatter = float(np.sqrt(np.sum(resid**2) / dof))
    cov = np.linalg.pinv(design.T @ design) * scatter**2
    return float(coef[0]), float(coef[1]), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])), \
        scatter


def fit_line(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> LineFit:
    """Least-squares line through the points selected by ``mask`` (at least three)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    members = np.asarray(mask, dtype=bool).copy()
    if members.sum() < 3:
        raise ValueError(f"a line needs at least 3 points, got {int(members.sum())}")
    slope, intercept, s_err, i_err, scatter = _fit(x, y, members)
    return LineFit(slope, intercept, s_err, i_err, scatter, members)


def grow_line(
    x: np.ndarray,
    y: np.ndarray,
    seed: np.ndarray,
    *,
    n_sigma: float = 5.0,
    floor: float = 0.0,
    max_rounds: int = 50,
) -> LineFit:
    """Fit a line to ``seed`` points, then adopt every point within ``n_sigma`` of it.

    Args:
        x: abscissae.
        y: ordinates.
        seed: boolean mask of at least three points known to lie on the line.
        n_sigma: acceptance band in units of the seed's residual scatter.
        floor: smallest scatter assumed (units of y), for noise-free data.
        max_rounds: safety limit on refits.

    Returns:
        The fit over the adopted points (the seed may lose points that the
        final line rejects).

    Raises:
        ValueError: fewer than three seed points.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    mask = np.asarray(seed, dtype=bool).copy()
    if mask.sum() < 3:
        raise ValueError(f"a line needs at least 3 seed points, got {int(mask.sum())}")
    slope, intercept, _, _, scatter = _fit(x, y, mask)
    # The band is set by the seed's scatter once: refits over more points
    # would widen it as curvature creeps in, and eat into the next branch.
    band = n_sigma * max(scatter, floor)
    for _ in range(max_rounds):
        new = np.abs(y - (slope * x + intercept)) <= band
        if new.sum() < 3 or np.array_equal(new, mask):
            break
        mask = new
        slope, intercept, _, _, scatter = _fit(x, y, mask)
    return fit_line(x, y, mask)
