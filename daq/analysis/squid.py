"""SQUID voltage-flux (V-Phi) curves: period, modulation depth, steepest slope, lock point.

In tune mode the electronics output the amplified SQUID voltage while a
current is swept through a flux coil (the feedback coil or the flux-offset
line). The curve is periodic with one flux quantum per period, i.e. a
period ``Phi0 / M`` in coil current for a coil of mutual inductance M.

The period is found from the strongest Fourier component of the curve and
refined by a least-squares fit of a short Fourier series (fundamental plus
harmonics, which real V-Phi curves have) in which the period is the only
nonlinear parameter. From the fitted curve over one period: the
peak-to-peak modulation, the steepest slope dV/dI of the requested sign and
the coil current where it occurs (the lock point: set the flux offset
there and the output offset to the voltage there, then lock).

Interface: :func:`analyze_vphi` -> :class:`VPhiResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["PHI0_WB", "VPhiResult", "analyze_vphi"]

PHI0_WB = 2.067833848e-15
"""Magnetic flux quantum h / 2e, Wb."""


@dataclass(frozen=True)
class VPhiResult:
    """A fitted V-Phi curve.

    Attributes:
        period_a: coil current per flux quantum, A.
        mutual_inductance_h: the coil's mutual inductance Phi0 / period, H.
        amplitude_v: peak-to-peak modulation of the fitted curve, V.
        mean_v: mean output over a period, V.
        slope_v_per_a: steepest slope of the requested sign, V/A (signed).
        lock_current_a: coil current at that slope, A (the one nearest the
            middle of the sweep).
        lock_voltage_v: output at the lock point, V.
        lock_points_a: every lock point inside the swept range, A.
        residual_rms_v: rms residual of the fit, V.
        coefficients: Fourier coefficients ``[c0, a1, b1, a2, b2, ...]`` of
            ``c0 + sum a_k cos(2 pi k I / P) + b_k sin(2 pi k I / P)``.
        coil_current_a: the data's coil currents, A.
        output_v: the data's output voltages, V.
    """

    period_a: float
    mutual_inductance_h: float
    amplitude_v: float
    mean_v: float
    slope_v_per_a: float
    lock_current_a: float
    lock_voltage_v: float
    lock_points_a: tuple[float, ...]
    residual_rms_v: float
    coefficients: np.ndarray
    coil_current_a: np.ndarray
    output_v: np.ndarray

    def voltage(self, i_a: np.ndarray) -> np.ndarray:
        """The fitted curve at coil currents ``i_a``, V."""
        return _design(np.asarray(i_a, dtype=float), self.period_a,
                       (self.coefficients.size - 1) // 2) @ self.coefficients

    def slope(self, i_a: np.ndarray) -> np.ndarray:
        """dV/dI of the fitted curve at ``i_a``, V/A."""
        i = np.asarray(i_a, dtype=float)
        c = self.coefficients
        out = np.zeros_like(i)
        for k in range(1, (c.size - 1) // 2 + 1):
            w = 2.0 * np.pi * k / self.period_a
            out += w * (-c[2 * k - 1] * np.sin(w * i) + c[2 * k] * np.cos(w * i))
        return out


def _design(i: np.ndarray, period: float, harmonics: int) -> np.ndarray:
    cols = [np.ones_like(i)]
    for k in range(1, harmonics + 1):
        phase = 2.0 * np.pi * k * i / period
        cols += [np.cos(phase), np.sin(phase)]
    return np.vstack(cols).T


def _coarse_period(i: np.ndarray, v: np.ndarray) -> float:
    """Period from the largest non-DC Fourier component of the curve resampled uniformly."""
    order = np.argsort(i)
    grid = np.linspace(i[order][0], i[order][-1], 4096)
    vals = np.interp(grid, i[order], v[order])
    spec = np.abs(np.fft.rfft((vals - vals.mean()) * np.hanning(grid.size)))
    k = int(np.argmax(spec[1:]) + 1)
    if 1 <= k < spec.size - 1:  # parabolic interpolation between bins
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-300)
        denom = a - 2 * b + c
        k_f = k + (0.5 * (a - c) / denom if denom != 0 else 0.0)
    else:
        k_f = float(k)
    return float((grid[-1] - grid[0]) / k_f)


def analyze_vphi(
    coil_current_a: np.ndarray,
    output_v: np.ndarray,
    *,
    slope_sign: int = 1,
    harmonics: int = 3,
) -> VPhiResult:
    """Fit a swept V-Phi curve.

    Args:
        coil_current_a: coil current at each sample, A (any order; a triangle
            sweep going up and down is fine).
        output_v: tune-mode output at each sample, V.
        slope_sign: +1 for the steepest rising slope, -1 for the falling one
            (the sign the loop's feedback polarity needs).
        harmonics: Fourier harmonics in the fitted curve.

    Returns:
        The fitted curve and its working points.

    Raises:
        ValueError: too few points, or less than about 1.5 periods swept.
    """
    i = np.asarray(coil_current_a, dtype=float)
    v = np.asarray(output_v, dtype=float)
    if i.shape != v.shape or i.size < 8 * (2 * harmonics + 1):
        raise ValueError("need at least 8 points per fitted coefficient, equal lengths")
    if slope_sign not in (1, -1):
        raise ValueError("slope_sign must be +1 or -1")
    span = float(np.ptp(i))
    coarse = _coarse_period(i, v)
    if not coarse < span / 1.5:
        raise ValueError(f"the sweep ({span:.4g} A) covers less than 1.5 periods "
                         f"(~{coarse:.4g} A each)")

    def cost(period: float) -> float:
        design = _design(i, period, harmonics)
        coef, *_ = np.linalg.lstsq(design, v, rcond=None)
        return float(np.sum((v - design @ coef) ** 2))

    # The cost has a minimum every few per cent of the period further away
    # (aliases); the coarse estimate from the spectrum is well inside its basin.
    best = minimize_scalar(cost, bounds=(0.9 * coarse, 1.1 * coarse), method="bounded",
                           options={"xatol": 1e-10 * coarse})
    period = float(best.x)
    design = _design(i, period, harmonics)
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    resid = v - design @ coef

    fit = VPhiResult(period, PHI0_WB / period, 0.0, float(coef[0]), 0.0, 0.0, 0.0, (),
                     float(np.sqrt(np.mean(resid**2))), coef, i, v)
    grid = np.linspace(0.0, period, 4096, endpoint=False)
    volts = fit.voltage(grid)
    slopes = slope_sign * fit.slope(grid)
    k = int(np.argmax(slopes))
    first = float(grid[k])
    lo, hi = float(np.min(i)), float(np.max(i))
    n_lo, n_hi = int(np.ceil((lo - first) / period)), int(np.floor((hi - first) / period))
    points = tuple(first + n * period for n in range(n_lo, n_hi + 1))
    middle = 0.5 * (lo + hi)
    lock = min(points, key=lambda x: abs(x - middle)) if points else first
    return VPhiResult(
        period_a=period,
        mutual_inductance_h=PHI0_WB / period,
        amplitude_v=float(np.ptp(volts)),
        mean_v=float(coef[0]),
        slope_v_per_a=float(slope_sign * slopes[k]),
        lock_current_a=float(lock),
        lock_voltage_v=float(fit.voltage(np.array([lock]))[0]),
        lock_points_a=points,
        residual_rms_v=fit.residual_rms_v,
        coefficients=coef,
        coil_current_a=i,
        output_v=v,
    )
