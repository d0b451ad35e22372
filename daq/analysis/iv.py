"""TES current-voltage (I-V) curves: from bias and SQUID output to R, P, R_n and P_sat.

The measurement: the bias current ``I_bias`` (or a bias voltage across a bias
resistor) is stepped, usually down from above the normal branch, and the
flux-locked loop's output voltage is recorded at each step. The loop output
is ``V_out = G I_TES + V_off`` with the readout gain ``G = -(M_in / M_f) R_f``
(V per A at the TES) and an offset ``V_off`` that is arbitrary (the loop
locks wherever it was reset). The circuit is a shunt ``R_sh`` in parallel
with the TES branch (parasitic ``R_par`` in series with the TES)::

    I_TES = V_out / G - offset          (offset: the superconducting line through 0)
    V_TES = (I_bias - I_TES) R_sh - I_TES R_par
    R = V_TES / I_TES,   P = I_TES V_TES

Branches are found as straight lines grown from seeds
(:func:`~daq.analysis.linefit.grow_line`): the superconducting branch from
the lowest biases (slope ``R_sh / (R_sh + R_par)``, which gives ``R_par``), the
normal branch from the highest (slope ``R_sh / (R_sh + R_par + R_n)``, which
gives ``R_n``). The output offset is the superconducting line's intercept,
so that branch passes through the origin, as labs do; a flux jump between
the branches shows up as a normal-branch intercept that is not zero
(:attr:`IVResult.normal_intercept_a`), and ``offset_branch="normal"`` then
takes the offset from the normal branch instead.

Interface: :class:`IVCircuit`, :func:`analyze_iv` -> :class:`IVResult`
(:meth:`IVResult.p_at` interpolates the Joule power at a fraction of R_n).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from daq.analysis.linefit import LineFit, fit_line, grow_line

__all__ = ["Branch", "IVCircuit", "IVResult", "analyze_iv"]

Branch = Literal["superconducting", "transition", "normal"]


@dataclass(frozen=True)
class IVCircuit:
    """The bias and readout circuit of one TES.

    Attributes:
        r_shunt_ohm: shunt resistor R_sh, Ohm.
        gain_v_per_a: readout gain dV_out/dI_TES, V/A (negative for the usual
            flux-locked loop: ``-(M_in / M_f) R_f``).
        r_bias_ohm: bias resistor, Ohm, when the sweep is given in bias volts.
    """

    r_shunt_ohm: float
    gain_v_per_a: float
    r_bias_ohm: float | None = None

    @classmethod
    def from_squid(cls, *, r_shunt_ohm: float, m_in_h: float, m_f_h: float, r_f_ohm: float,
                   r_bias_ohm: float | None = None) -> IVCircuit:
        """Build from the SQUID's input and feedback mutual inductances and R_f.

        Args:
            r_shunt_ohm: shunt resistor, Ohm.
            m_in_h: input-coil mutual inductance, H.
            m_f_h: feedback-coil mutual inductance, H.
            r_f_ohm: feedback resistor, Ohm.
            r_bias_ohm: bias resistor, Ohm (for sweeps in bias volts).

        Returns:
            The circuit, with gain ``-(m_in / m_f) r_f``.
        """
        return cls(r_shunt_ohm, -(m_in_h / m_f_h) * r_f_ohm, r_bias_ohm)


@dataclass(frozen=True)
class IVResult:
    """An analysed I-V sweep; arrays are in sweep order.

    Attributes:
        i_bias_a: bias current, A.
        i_tes_a: TES current (offset removed), A.
        v_tes_v: voltage across the TES, V.
        r_tes_ohm: TES resistance, Ohm (NaN where the current is 0).
        p_tes_w: Joule power I V, W.
        branch: branch of each point.
        output_offset_v: the loop-output offset that was removed, V.
        r_n_ohm: normal resistance from the normal-branch slope, Ohm.
        r_n_stderr_ohm: its standard error, Ohm.
        r_par_ohm: parasitic resistance from the superconducting slope, Ohm (None when
            the sweep has no superconducting branch: it is then unknown, taken as 0 in
            the conversion, and R_n includes it).
        normal_intercept_a: normal-branch current at zero bias after the offset
            removal, A (0 within noise unless the loop jumped between branches).
        superconducting_intercept_a: the same for the superconducting branch, A (0 when
            it defines the offset).
        latch_index: index of the first superconducting point reached coming
            down from the transition (None: the sweep never latched).
        latch_bias_a: the bias of that point, A; the device fell superconducting
            between the previous bias and this one.
        p_sat_fraction: R/R_n at which :attr:`p_sat_w` is quoted.
        p_sat_w: Joule power at R = p_sat_fraction R_n on the transition, W
            (interpolated; None if the sweep does not cross it).
        normal_fit: the normal branch line (raw current vs bias).
        superconducting_fit: the superconducting branch line (raw current vs bias).
    """

    i_bias_a: np.ndarray
    i_tes_a: np.ndarray
    v_tes_v: np.ndarray
    r_tes_ohm: np.ndarray
    p_tes_w: np.ndarray
    branch: tuple[Branch, ...]
    output_offset_v: float
    r_n_ohm: float
    r_n_stderr_ohm: float
    r_par_ohm: float | None
    normal_intercept_a: float
    superconducting_intercept_a: float
    latch_index: int | None
    latch_bias_a: float | None
    p_sat_fraction: float
    p_sat_w: float | None
    normal_fit: LineFit
    superconducting_fit: LineFit | None

    def mask(self, branch: Branch) -> np.ndarray:
        """Boolean mask of the points on ``branch``."""
        return np.array([b == branch for b in self.branch], dtype=bool)

    def transition_points(self) -> np.ndarray:
        """Indices of the transition points measured before the latch, in sweep order."""
        stop = self.latch_index if self.latch_index is not None else len(self.branch)
        return np.array([k for k in range(stop) if self.branch[k] == "transition"], dtype=int)

    def p_at(self, r_fraction: float) -> float | None:
        """Joule power where R = ``r_fraction`` R_n on the way down, W (None: not crossed).

        The transition points before the latch and the normal points are
        ordered by resistance and the power is interpolated linearly in R.
        """
        stop = self.latch_index if self.latch_index is not None else len(self.branch)
        use = [k for k in range(stop) if self.branch[k] != "superconducting"]
        if len(use) < 2:
            return None
        frac = self.r_tes_ohm[use] / self.r_n_ohm
        power = self.p_tes_w[use]
        order = np.argsort(frac)
        frac, power = frac[order], power[order]
        if not frac[0] <= r_fraction <= frac[-1]:
            return None
        return float(np.interp(r_fraction, frac, power))


def _seed(order: np.ndarray, count: int, size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[order[:count]] = True
    return mask


def _latch(branch: list[Branch], bias: np.ndarray) -> int | None:
    for k in range(1, len(branch)):
        if (branch[k] == "superconducting" and branch[k - 1] != "superconducting"
                and bias[k] < bias[k - 1]):
            return k
    return None


def analyze_iv(
    bias: np.ndarray,
    v_out: np.ndarray,
    circuit: IVCircuit,
    *,
    bias_is_voltage: bool = False,
    p_sat_fraction: float = 0.9,
    offset_branch: Literal["superconducting", "normal"] = "superconducting",
    seed_points: int = 5,
    n_sigma: float = 6.0,
    resolution_a: float = 0.0,
    superconducting: np.ndarray | None = None,
) -> IVResult:
    """Analyse one I-V sweep of one polarity.

    Args:
        bias: bias current (A) or, with ``bias_is_voltage``, bias voltage (V),
            in sweep order; all of one sign (a negative sweep is mirrored).
        v_out: loop output at each bias, V.
        circuit: shunt, readout gain and (for voltages) the bias resistor.
        bias_is_voltage: ``bias`` is a voltage across ``circuit.r_bias_ohm``.
        p_sat_fraction: R/R_n at which to quote the saturation power.
        offset_branch: which branch defines the zero of the TES current.
        seed_points: points that seed each branch's line.
        n_sigma: acceptance band of a branch line in units of its seed's scatter.
        resolution_a: smallest scatter to assume, in TES current (A): the readout's
            resolution, e.g. a digitizer's quantisation step / sqrt(12) over the gain.
            Quantised data without noise lie on a staircase whose seed may have no
            scatter at all; the band must still admit the staircase.
        superconducting: boolean mask of points known to be superconducting (e.g.
            measured after the sweep saw the TES latch, with their own readout
            settings); they make the superconducting line instead of a line grown
            from the lowest biases.

    Returns:
        The analysed sweep.

    Raises:
        ValueError: mixed polarities, too few points, no superconducting branch
            when it is to define the offset, or an unphysical fit.
    """
    b = np.asarray(bias, dtype=float)
    v = np.asarray(v_out, dtype=float)
    if b.shape != v.shape or b.ndim != 1:
        raise ValueError("bias and v_out must be 1-d arrays of the same length")
    if b.size < 3 * seed_points:
        raise ValueError(f"an I-V needs at least {3 * seed_points} points, got {b.size}")
    if bias_is_voltage:
        if not circuit.r_bias_ohm:
            raise ValueError("a sweep in bias volts needs circuit.r_bias_ohm")
        b = b / circuit.r_bias_ohm
    if np.any(b > 0) and np.any(b < 0):
        raise ValueError("analyse each bias polarity separately")
    sign = -1.0 if np.any(b < 0) else 1.0
    i_b = sign * b
    raw = sign * v / circuit.gain_v_per_a  # TES current plus an unknown offset, A
    r_sh = circuit.r_shunt_ohm
    floor = max(1e-9 * float(np.max(np.abs(raw - np.median(raw)))) + 1e-15, resolution_a)

    by_bias = np.argsort(i_b, kind="stable")
    known = None if superconducting is None else np.asarray(superconducting, dtype=bool)
    if known is not None and known.shape == b.shape and known.sum() >= 3:
        lowest = fit_line(i_b, raw, known)
    else:
        lowest = grow_line(i_b, raw, _seed(by_bias, seed_points, b.size), n_sigma=n_sigma,
                           floor=floor)
    normal_fit = grow_line(i_b, raw, _seed(by_bias[::-1], seed_points, b.size),
                           n_sigma=n_sigma, floor=floor)
    # The lowest biases are superconducting only if their line is steeper than the normal one.
    sc_fit = lowest if lowest.slope > 1.2 * normal_fit.slope else None
    if sc_fit is not None and np.any(normal_fit.members & sc_fit.members):
        # Where the lines meet (at zero bias) a point can sit on both: it is superconducting.
        normal_fit = fit_line(i_b, raw, normal_fit.members & ~sc_fit.members)
    if not 0 < normal_fit.slope < 1:
        raise ValueError(f"normal-branch slope {normal_fit.slope:.4g} is not between 0 and 1: "
                         "check the readout gain's value and sign")

    if offset_branch == "superconducting":
        if sc_fit is None:
            raise ValueError("no superconducting branch in the sweep; use offset_branch='normal'")
        offset = sc_fit.intercept
    else:
        offset = normal_fit.intercept
    r_par_known = r_sh * (1.0 / sc_fit.slope - 1.0) if sc_fit is not None else None
    r_par = r_par_known or 0.0  # unknown: taken as 0, R_n then includes it
    r_n = r_sh / normal_fit.slope - r_sh - r_par
    r_n_err = r_sh * normal_fit.slope_stderr / normal_fit.slope**2
    if r_n <= 0:
        raise ValueError(f"normal resistance {r_n:.4g} Ohm is not positive")

    i_tes = raw - offset
    v_tes = (i_b - i_tes) * r_sh - i_tes * r_par
    with np.errstate(divide="ignore", invalid="ignore"):
        r_tes = np.where(i_tes != 0, v_tes / i_tes, np.nan)
    branch: list[Branch] = []
    for k in range(b.size):
        if sc_fit is not None and sc_fit.members[k]:
            branch.append("superconducting")
        elif normal_fit.members[k]:
            branch.append("normal")
        else:
            branch.append("transition")
    latch = _latch(branch, i_b)
    result = IVResult(
        i_bias_a=sign * i_b,
        i_tes_a=sign * i_tes,
        v_tes_v=sign * v_tes,
        r_tes_ohm=r_tes,
        p_tes_w=i_tes * v_tes,
        branch=tuple(branch),
        output_offset_v=sign * offset * circuit.gain_v_per_a,
        r_n_ohm=float(r_n),
        r_n_stderr_ohm=float(r_n_err),
        r_par_ohm=None if r_par_known is None else float(r_par_known),
        normal_intercept_a=sign * (normal_fit.intercept - offset),
        superconducting_intercept_a=sign * (sc_fit.intercept - offset) if sc_fit else 0.0,
        latch_index=latch,
        latch_bias_a=None if latch is None else float(sign * i_b[latch]),
        p_sat_fraction=p_sat_fraction,
        p_sat_w=None,
        normal_fit=normal_fit,
        superconducting_fit=sc_fit,
    )
    return _with_p_sat(result)


def _with_p_sat(result: IVResult) -> IVResult:
    return replace(result, p_sat_w=result.p_at(result.p_sat_fraction))
