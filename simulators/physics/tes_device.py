"""TES device model: parameters, the R(T, I) transition, steady states, I-V sweeps.

Part of the electrothermal TES model documented in :mod:`simulators.physics.tes`
(import from there): :class:`TESParams` and the presets, :func:`resistance`,
:func:`steady_states`, :func:`operating_point`, :func:`iv_sweep`,
:func:`bias_for_resistance` and the stateful :class:`TES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

K_B = 1.380649e-23
"""Boltzmann constant, J/K."""
EV = 1.602176634e-19
"""One electronvolt, J."""
_TWO_LN2 = 2.0 * math.log(2.0)

Branch = Literal["superconducting", "transition", "normal"]


# ---- device parameters ---------------------------------------------------------------------


@dataclass(frozen=True)
class TESParams:
    """Parameters of one TES and its bias circuit.

    Attributes:
        t_c: critical temperature at zero current, K.
        t_bath: default bath temperature, K.
        r_n: normal resistance, Ohm.
        r_sh: shunt resistor, Ohm.
        r_par: parasitic resistance in the TES branch, Ohm.
        n: thermal-conductance exponent.
        k: thermal-link coefficient in K (T^n - T_bath^n), W/K^n.
        c: heat capacity, J/K.
        inductance: inductance of the TES branch (mostly the SQUID input coil), H.
        t_w: transition width parameter, K.
        a_i: current scale of the critical-current term, A/K^1.5.
        t_load: temperature of the shunt for its Johnson noise, K (None: bath).
    """

    t_c: float
    t_bath: float
    r_n: float
    r_sh: float
    r_par: float
    n: float
    k: float
    c: float
    inductance: float
    t_w: float
    a_i: float
    t_load: float | None = None

    @property
    def r_l(self) -> float:
        """Load resistance R_sh + R_par, Ohm."""
        return self.r_sh + self.r_par

    def g(self, t: float) -> float:
        """Thermal conductance n K T^(n-1) at temperature ``t``, W/K."""
        return self.n * self.k * t ** (self.n - 1.0)

    @classmethod
    def from_design(
        cls,
        *,
        t_c: float,
        t_bath: float,
        r_n: float,
        r_frac: float,
        r_sh: float,
        r_par: float,
        n: float,
        g: float,
        c: float,
        alpha: float,
        beta: float,
        inductance: float,
    ) -> TESParams:
        """Build a device from quoted design values.

        ``g``, ``alpha`` and ``beta`` are the values at the steady state where
        ``R = r_frac R_n`` (as papers quote them). The link coefficient K, the
        transition width and the current scale are solved for self-consistently.
        """
        r0 = r_frac * r_n
        x0 = math.atanh(2.0 * r_frac - 1.0)
        sech2 = 1.0 - math.tanh(x0) ** 2
        t0 = t_c
        k = t_w = a_i = 0.0
        for _ in range(100):
            k = g / (n * t0 ** (n - 1.0))
            p0 = k * (t0**n - t_bath**n)
            i0 = math.sqrt(p0 / r0)
            t_w = t0 * 0.5 * r_n * sech2 / (_TWO_LN2 * r0 * alpha)
            shift = 1.5 * beta * t0 / alpha  # (I/A)^(2/3), from beta = (2/3) alpha shift / T
            a_i = i0 / shift**1.5
            t_new = t_c - shift + _TWO_LN2 * t_w * x0
            if abs(t_new - t0) < 1e-13:
                break
            t0 = t_new
        return cls(
            t_c=t_c,
            t_bath=t_bath,
            r_n=r_n,
            r_sh=r_sh,
            r_par=r_par,
            n=n,
            k=k,
            c=c,
            inductance=inductance,
            t_w=t_w,
            a_i=a_i,
        )


SET_A = TESParams.from_design(
    t_c=0.050,
    t_bath=0.030,
    r_n=13.3e-3,
    r_frac=0.2,
    r_sh=0.30e-3,
    r_par=0.05e-3,
    n=3.25,
    g=170e-12,
    c=0.132e-12,
    alpha=197.0,
    beta=1.6,
    inductance=67e-9,
)
"""Design A of docs/simulators.md (T_c 50 mK, R_n 13.3 mOhm, alpha 197, L 67 nH: underdamped)."""

SET_A_30NH = replace(SET_A, inductance=30e-9)
"""Design A with the 30 nH of the worked check: overdamped pulses (tau_+ ~ 7 us, tau_- ~ 28 us)."""

SET_B = TESParams.from_design(
    t_c=0.075,
    t_bath=0.055,
    r_n=13.5e-3,
    r_frac=0.15,
    r_sh=0.30e-3,
    r_par=0.04e-3,
    n=3.5,
    g=130e-12,
    c=0.11e-12,
    alpha=120.0,
    beta=1.69,
    inductance=52e-9,
)
"""Design B of docs/simulators.md (T_c 75 mK, R_n 13.5 mOhm, alpha 120, L 52 nH)."""


# ---- resistance and its derivatives --------------------------------------------------------


def resistance(p: TESParams, t: np.ndarray | float, i: np.ndarray | float) -> np.ndarray:
    """R(T, I) of the tanh transition, Ohm (element-wise)."""
    shift = (np.abs(i) / p.a_i) ** (2.0 / 3.0)
    x = (np.asarray(t) - p.t_c + shift) / (_TWO_LN2 * p.t_w)
    return 0.5 * p.r_n * (1.0 + np.tanh(x))


def resistance_partials(p: TESParams, t: float, i: float) -> tuple[float, float, float]:
    """R, dR/dT and dR/dI at one point (scalar, fast; for the small-signal and time-domain code)."""
    ai = abs(i) if abs(i) > 1e-15 else 1e-15
    shift = (ai / p.a_i) ** (2.0 / 3.0)
    x = (t - p.t_c + shift) / (_TWO_LN2 * p.t_w)
    th = math.tanh(x)
    r = 0.5 * p.r_n * (1.0 + th)
    dr_dx = 0.5 * p.r_n * (1.0 - th * th) / (_TWO_LN2 * p.t_w)
    dr_di = dr_dx * (2.0 / 3.0) * shift / ai * (1.0 if i >= 0 else -1.0)
    return r, dr_dx, dr_di


# ---- steady state --------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    """A steady state of the biased TES.

    Attributes:
        i_bias: bias current, A.
        t: TES temperature, K.
        i: TES current, A.
        r: TES resistance, Ohm.
        t_bath: bath temperature, K.
        stable: whether small deviations decay (thermally, quasi-static electrically).
    """

    i_bias: float
    t: float
    i: float
    r: float
    t_bath: float
    stable: bool = True

    @property
    def v(self) -> float:
        """Voltage across the TES, V."""
        return self.i * self.r

    @property
    def p(self) -> float:
        """Joule power I^2 R, W."""
        return self.i * self.i * self.r

    def branch(self, p: TESParams) -> Branch:
        """Which I-V branch this point is on."""
        if self.r < 0.01 * p.r_n:
            return "superconducting"
        if self.r > 0.98 * p.r_n:
            return "normal"
        return "transition"


def _state_at(p: TESParams, x: np.ndarray, v: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resistance, current and temperature along the transition coordinate ``x``.

    Taking the tanh argument ``x`` as the unknown makes everything explicit:
    R from x, I from the circuit, T from the definition of x. T grows
    monotonically with x, so roots and basins in x are those in T.
    """
    r = 0.5 * p.r_n * (1.0 + np.tanh(x))
    i = v / (p.r_l + r)
    t = p.t_c - (i / p.a_i) ** (2.0 / 3.0) + _TWO_LN2 * p.t_w * x
    return r, i, t


def _net_heating(p: TESParams, x: np.ndarray, v: float, t_bath: float) -> np.ndarray:
    r, i, t = _state_at(p, x, v)
    return i * i * r - p.k * (t**p.n - t_bath**p.n)


def _x_grid(p: TESParams, v: float, t_bath: float) -> np.ndarray:
    """Grid in x from the bath temperature to above the hottest possible equilibrium."""
    p_max = v * v / (4.0 * p.r_l)  # largest Joule power the circuit can deliver
    t_max = max((p_max / p.k + t_bath**p.n) ** (1.0 / p.n), p.t_c) + 5.0 * p.t_w
    x_max = (t_max - p.t_c + (v / p.r_l / p.a_i) ** (2.0 / 3.0)) / (_TWO_LN2 * p.t_w)
    lo, hi = -60.0, max(x_max, 5.0)
    for _ in range(80):  # bisection for T(x) = T_bath
        mid = 0.5 * (lo + hi)
        if _state_at(p, np.array([mid]), v)[2][0] < t_bath:
            lo = mid
        else:
            hi = mid
    x_b = hi
    x_top = max(x_max, x_b + 1.0)
    fine = np.arange(max(x_b, -12.0), min(x_top, 12.0), 0.02)
    coarse = np.linspace(x_b, x_top, 400)
    return np.unique(np.concatenate([coarse, fine]))


def steady_states(p: TESParams, i_bias: float, t_bath: float | None = None) -> list[OperatingPoint]:
    """All equilibria at a bias, coldest first, with their thermal stability.

    Args:
        p: the device.
        i_bias: bias current, A.
        t_bath: bath temperature, K (default ``p.t_bath``).

    Returns:
        Operating points; stable ones alternate with unstable ones.
    """
    tb = p.t_bath if t_bath is None else t_bath
    v = abs(i_bias) * p.r_sh
    sign = 1.0 if i_bias >= 0 else -1.0
    if v == 0.0:
        return [OperatingPoint(i_bias, tb, 0.0, float(resistance(p, tb, 0.0)), tb)]
    grid = _x_grid(p, v, tb)
    h = _net_heating(p, grid, v, tb)
    h[0] = max(h[0], 0.0)  # at the bath temperature the link carries nothing away
    points: list[OperatingPoint] = []
    if h[1] < 0.0:  # the cold, superconducting state sits at the bath temperature
        r, i, _ = _state_at(p, grid[:1], v)
        points.append(OperatingPoint(i_bias, tb, sign * float(i[0]), float(r[0]), tb))
    idx = np.nonzero(np.sign(h[1:-1]) != np.sign(h[2:]))[0] + 1
    if idx.size:
        # Regula falsi (Illinois) on all brackets at once.
        a, b = grid[idx], grid[idx + 1]
        fa, fb = h[idx].astype(float), h[idx + 1].astype(float)
        for _ in range(60):
            c = b - fb * (b - a) / np.where(fb != fa, fb - fa, 1.0)
            fc = _net_heating(p, c, v, tb)
            same = np.sign(fc) == np.sign(fb)
            a, fa = np.where(same, a, b), np.where(same, 0.5 * fa, fb)
            done = np.all(np.abs(c - b) < 1e-10)
            b, fb = c, fc
            if done:
                break
        rs, cs, ts = _state_at(p, b, v)
        for j, r, i, t in zip(idx, rs, cs, ts, strict=True):
            stable = bool(h[j] > 0 >= h[j + 1])  # heating below, cooling above
            points.append(OperatingPoint(i_bias, float(t), sign * float(i), float(r), tb, stable))
    return points


def operating_point(
    p: TESParams,
    i_bias: float,
    t_bath: float | None = None,
    start_temperature: float | None = None,
) -> OperatingPoint:
    """The stable state the device settles into at a bias, coming from a temperature.

    The temperature flows up while Joule heating exceeds the link's cooling
    and down otherwise, and stops at the first stable equilibrium it meets.
    This is what makes the device latch superconducting on the way down and
    stay there on the way back up.

    Args:
        p: the device.
        i_bias: bias current, A.
        t_bath: bath temperature, K (default ``p.t_bath``).
        start_temperature: temperature before the change, K; default: hotter
            than any equilibrium (the device comes from the normal state).

    Returns:
        The stable operating point.
    """
    states = steady_states(p, i_bias, t_bath)
    stable = [s for s in states if s.stable]
    if start_temperature is None:
        return stable[-1]
    unstable = [s.t for s in states if not s.stable]
    # The unstable points separate the basins of the stable ones.
    for s in stable:
        upper = min((u for u in unstable if u > s.t), default=math.inf)
        if start_temperature < upper:
            return s
    return stable[-1]


@dataclass(frozen=True)
class IVCurve:
    """An I-V sweep, one entry per bias in sweep order.

    Attributes:
        i_bias: bias currents, A.
        i_tes: TES currents, A.
        v_tes: TES voltages, V.
        r_tes: TES resistances, Ohm.
        t_tes: TES temperatures, K.
        branch: branch of each point.
    """

    i_bias: np.ndarray
    i_tes: np.ndarray
    v_tes: np.ndarray
    r_tes: np.ndarray
    t_tes: np.ndarray
    branch: tuple[Branch, ...]

    @property
    def power(self) -> np.ndarray:
        """Joule power of each point, W."""
        return self.i_tes * self.v_tes


def iv_sweep(
    p: TESParams,
    biases: np.ndarray,
    t_bath: float | None = None,
    start_temperature: float | None = None,
) -> IVCurve:
    """Sweep the bias through ``biases`` in order, each point starting from the last.

    Args:
        p: the device.
        biases: bias currents in sweep order, A (e.g. decreasing from above the
            normal branch, then increasing to show the hysteresis).
        t_bath: bath temperature, K.
        start_temperature: state before the first point (default: normal).

    Returns:
        The curve.
    """
    t_prev = start_temperature
    pts: list[OperatingPoint] = []
    for ib in np.asarray(biases, dtype=float):
        op = operating_point(p, float(ib), t_bath, t_prev)
        pts.append(op)
        t_prev = op.t
    return IVCurve(
        i_bias=np.array([q.i_bias for q in pts]),
        i_tes=np.array([q.i for q in pts]),
        v_tes=np.array([q.v for q in pts]),
        r_tes=np.array([q.r for q in pts]),
        t_tes=np.array([q.t for q in pts]),
        branch=tuple(q.branch(p) for q in pts),
    )


def bias_for_resistance(p: TESParams, r_frac: float, t_bath: float | None = None) -> float:
    """Bias current that puts the device at ``R = r_frac R_n`` on the transition, A."""
    tb = p.t_bath if t_bath is None else t_bath
    r0 = r_frac * p.r_n
    x0 = math.atanh(2.0 * r_frac - 1.0)
    t = p.t_c
    i = 0.0
    for _ in range(100):  # fixed point: power balance gives I, the resistance gives T
        i = math.sqrt(max(p.k * (t**p.n - tb**p.n), 0.0) / r0)
        t_new = p.t_c - (i / p.a_i) ** (2.0 / 3.0) + _TWO_LN2 * p.t_w * x0
        if abs(t_new - t) < 1e-13:
            break
        t = t_new
    return i * (r0 + p.r_l) / p.r_sh


class TES:
    """A biased TES with memory, for the simulated lab.

    Args:
        params: the device.
        bath_temperature: callable giving the bath (e.g. mixing-chamber)
            temperature, K; default: ``params.t_bath``.
    """

    def __init__(
        self, params: TESParams, bath_temperature: Callable[[], float] | None = None
    ) -> None:
        self.params = params
        self._bath = bath_temperature
        tb = self.bath_temperature()
        self.state = OperatingPoint(0.0, tb, 0.0, 0.0, tb)

    def bath_temperature(self) -> float:
        """Present bath temperature, K."""
        return float(self._bath()) if self._bath is not None else self.params.t_bath

    def set_bias(self, i_bias: float, *, from_normal: bool = False) -> OperatingPoint:
        """Change the bias; the device relaxes from its present temperature.

        Args:
            i_bias: new bias current, A.
            from_normal: first drive the device normal (as one does to get onto
                the transition from the superconducting state), then settle.
        """
        start = None if from_normal else self.state.t
        self.state = operating_point(self.params, i_bias, self.bath_temperature(), start)
        return self.state

    def refresh(self) -> OperatingPoint:
        """Re-settle at the present bias (after the bath temperature changed)."""
        return self.set_bias(self.state.i_bias)
