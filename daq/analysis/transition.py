"""Superconducting transition R(T): critical temperature and width, per sweep direction.

The resistance of the (unbiased) TES is measured with a lock-in or bridge
while the bath warms or cools. The data are split into monotonic sweeps
(warming, cooling), and each is fitted with a step::

    tanh: R(T) = R_0 + (R_n / 2) [1 + tanh((T - T_c) / w)]
    erf:  R(T) = R_0 + (R_n / 2) [1 + erf((T - T_c) / (sqrt(2) w))]

``R_0`` takes any resistance in series (leads, shunt). ``T_c`` is the
midpoint (R = R_0 + R_n / 2); the width is quoted as the 10 %-90 % interval
of the fitted step, which does not depend on the model's own width
parameter. A thermometer that lags the device shifts the cooling and
warming midpoints in opposite directions; their difference is reported as
the hysteresis.

Interface: :func:`fit_transition` -> :class:`TransitionFit` (one sweep),
:func:`split_sweeps`, :func:`analyze_transition` -> :class:`TransitionResult`
(every sweep, and the hysteresis when both directions were measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import erf, erfinv

__all__ = ["Direction", "Model", "TransitionFit", "TransitionResult", "analyze_transition",
           "fit_transition", "split_sweeps"]

Direction = Literal["warming", "cooling"]
Model = Literal["tanh", "erf"]


def _step(model: Model, t: np.ndarray, r0: float, rn: float, tc: float, w: float) -> np.ndarray:
    x = (t - tc) / w
    core = np.tanh(x) if model == "tanh" else erf(x / math.sqrt(2.0))
    return r0 + 0.5 * rn * (1.0 + core)


def _width_10_90(model: Model, w: float) -> float:
    # Fraction 0.9 of the step sits where the core function is 0.8.
    half = math.atanh(0.8) if model == "tanh" else math.sqrt(2.0) * float(erfinv(0.8))
    return 2.0 * half * abs(w)


@dataclass(frozen=True)
class TransitionFit:
    """One sweep through the transition, fitted with a step.

    Attributes:
        direction: ``warming`` or ``cooling`` (the thermometer's trend).
        model: ``tanh`` or ``erf``.
        t_c_k: midpoint temperature, K.
        t_c_stderr_k: its standard error, K.
        width_k: 10 %-90 % width of the step, K.
        r_n_ohm: step height, Ohm.
        r_series_ohm: resistance below the step (in series), Ohm.
        w_k: the model's own width parameter, K.
        residual_rms_ohm: rms of the fit residuals, Ohm.
        temperature_k: the sweep's temperatures, K.
        resistance_ohm: the sweep's resistances, Ohm.
    """

    direction: Direction
    model: Model
    t_c_k: float
    t_c_stderr_k: float
    width_k: float
    r_n_ohm: float
    r_series_ohm: float
    w_k: float
    residual_rms_ohm: float
    temperature_k: np.ndarray
    resistance_ohm: np.ndarray

    def resistance(self, t_k: np.ndarray) -> np.ndarray:
        """The fitted R(T) at temperatures ``t_k``, Ohm."""
        return _step(self.model, np.asarray(t_k, dtype=float), self.r_series_ohm, self.r_n_ohm,
                     self.t_c_k, self.w_k)


@dataclass(frozen=True)
class TransitionResult:
    """All sweeps of an R(T) measurement.

    Attributes:
        fits: one fit per monotonic sweep, in time order.
        hysteresis_k: mean warming T_c minus mean cooling T_c, K (None
            unless both directions were measured).
    """

    fits: tuple[TransitionFit, ...]
    hysteresis_k: float | None

    def by_direction(self, direction: Direction) -> tuple[TransitionFit, ...]:
        """The fits of the sweeps in ``direction``."""
        return tuple(f for f in self.fits if f.direction == direction)

    @property
    def t_c_k(self) -> float:
        """T_c averaged over the directions measured (each direction weighs the same), K."""
        means = [float(np.mean([f.t_c_k for f in self.by_direction(d)]))
                 for d in ("warming", "cooling") if self.by_direction(d)]
        return float(np.mean(means))


def fit_transition(
    temperature_k: np.ndarray,
    resistance_ohm: np.ndarray,
    *,
    model: Model = "tanh",
    direction: Direction | None = None,
) -> TransitionFit:
    """Fit one sweep through the transition.

    Args:
        temperature_k: thermometer readings, K.
        resistance_ohm: resistances, Ohm, same length.
        model: ``tanh`` or ``erf`` step.
        direction: the sweep's direction; default: from the temperature trend.

    Returns:
        The fit.

    Raises:
        ValueError: too few points, or the data do not span the step.
    """
    t = np.asarray(temperature_k, dtype=float)
    r = np.asarray(resistance_ohm, dtype=float)
    if t.shape != r.shape or t.size < 6:
        raise ValueError("a transition fit needs at least 6 (T, R) pairs of equal length")
    if direction is None:
        direction = "warming" if t[-1] >= t[0] else "cooling"
    order = np.argsort(t)
    ts, rs = t[order], r[order]
    lo, hi = float(np.min(r)), float(np.max(r))
    if not hi > lo:
        raise ValueError("the resistance does not change: the sweep misses the transition")
    # Starting values from the data: the half-height crossing and the 10-90 % span.
    half = lo + 0.5 * (hi - lo)
    tc0 = float(np.interp(half, rs, ts)) if np.all(np.diff(rs) >= 0) else float(
        ts[np.argmin(np.abs(rs - half))])
    t10 = float(ts[np.argmax(rs > lo + 0.1 * (hi - lo))])
    t90 = float(ts[np.argmax(rs > lo + 0.9 * (hi - lo))])
    span = max(t90 - t10, 1e-3 * (ts[-1] - ts[0]), 1e-9)
    w0 = span / _width_10_90(model, 1.0)

    def func(tt: np.ndarray, r0: float, rn: float, tc: float, w: float) -> np.ndarray:
        return _step(model, tt, r0, rn, tc, w)

    popt, pcov = curve_fit(func, ts, rs, p0=[lo, hi - lo, tc0, w0], maxfev=20000)
    r0, rn, tc, w = (float(x) for x in popt)
    if not ts[0] <= tc <= ts[-1]:
        raise ValueError(f"fitted T_c {tc:.6g} K lies outside the data ({ts[0]:.6g} to "
                         f"{ts[-1]:.6g} K)")
    resid = rs - func(ts, *popt)
    return TransitionFit(
        direction=direction,
        model=model,
        t_c_k=tc,
        t_c_stderr_k=float(np.sqrt(max(pcov[2, 2], 0.0))),
        width_k=_width_10_90(model, w),
        r_n_ohm=rn,
        r_series_ohm=r0,
        w_k=abs(w),
        residual_rms_ohm=float(np.sqrt(np.mean(resid**2))),
        temperature_k=t,
        resistance_ohm=r,
    )


def split_sweeps(temperature_k: np.ndarray, *, min_points: int = 6,
                 tolerance_k: float | None = None) -> list[slice]:
    """Split a temperature record into monotonic sweeps.

    A turning point is where the temperature comes back from its latest
    extreme by more than ``tolerance_k``, so noise on a slow ramp does not
    split it. Neighbouring sweeps share their turning point.

    Args:
        temperature_k: thermometer readings in time order, K.
        min_points: shorter pieces are dropped.
        tolerance_k: reversal that makes a turning point, K; default: ten
            times the reading noise, estimated from second differences.

    Returns:
        Slices into the record, one per sweep.
    """
    t = np.asarray(temperature_k, dtype=float)
    n = t.size
    if tolerance_k is None:
        if n > 3:
            # Second differences cancel a smooth ramp and keep sqrt(6) times the noise.
            mad = float(np.median(np.abs(np.diff(t, 2))))
            tolerance_k = 10.0 * mad / 0.6745 / math.sqrt(6.0)
        else:
            tolerance_k = 0.0
    bounds: list[tuple[int, int]] = []
    start, direction, extreme = 0, 0, 0
    for k in range(1, n):
        if direction == 0:
            if abs(t[k] - t[start]) > tolerance_k:
                direction = 1 if t[k] > t[start] else -1
                extreme = k
            continue
        if direction * (t[k] - t[extreme]) > 0:
            extreme = k
        elif direction * (t[extreme] - t[k]) > tolerance_k:
            bounds.append((start, extreme + 1))
            start, direction = extreme, -direction
            extreme = start + int(np.argmax(direction * t[start : k + 1]))
    bounds.append((start, n))
    return [slice(a, b) for a, b in bounds if b - a >= min_points]


def analyze_transition(
    temperature_k: np.ndarray,
    resistance_ohm: np.ndarray,
    *,
    model: Model = "tanh",
    tolerance_k: float | None = None,
) -> TransitionResult:
    """Split an R(T) record into sweeps and fit each.

    Args:
        temperature_k: thermometer readings in time order, K.
        resistance_ohm: resistances, Ohm.
        model: ``tanh`` or ``erf``.
        tolerance_k: temperature reversal that starts a new sweep, K (default:
            from the reading noise, see :func:`split_sweeps`).

    Returns:
        Every sweep's fit and the warming-cooling hysteresis.
    """
    t = np.asarray(temperature_k, dtype=float)
    r = np.asarray(resistance_ohm, dtype=float)
    fits = tuple(fit_transition(t[s], r[s], model=model)
                 for s in split_sweeps(t, tolerance_k=tolerance_k))
    if not fits:
        raise ValueError("no sweep with enough points in the record")
    warm = [f.t_c_k for f in fits if f.direction == "warming"]
    cool = [f.t_c_k for f in fits if f.direction == "cooling"]
    hysteresis = float(np.mean(warm) - np.mean(cool)) if warm and cool else None
    return TransitionResult(fits, hysteresis)
