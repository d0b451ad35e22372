"""TES small-signal response and time-domain pulses.

Part of the electrothermal TES model documented in :mod:`simulators.physics.tes`
(import from there): :class:`SmallSignal` / :func:`small_signal`, the analytic
:func:`small_signal_pulse` and the integrated :func:`simulate_pulse`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.physics.tes_device import OperatingPoint, TESParams, resistance_partials


@dataclass(frozen=True)
class SmallSignal:
    """Linearized response at an operating point (Irwin & Hilton section 2.3).

    Attributes:
        alpha: (T/R) dR/dT.
        beta: (I/R) dR/dI.
        g: thermal conductance at T, W/K.
        loop_gain: L_I = P alpha / (G T).
        tau: natural time constant C/G, s.
        tau_i: constant-current time constant tau / (1 - L_I), s.
        tau_el: electrical time constant L / (R_L + R (1 + beta)), s.
        rate_plus: 1/tau_+, 1/s (complex when underdamped).
        rate_minus: 1/tau_-, 1/s (complex when underdamped).
    """

    alpha: float
    beta: float
    g: float
    loop_gain: float
    tau: float
    tau_i: float
    tau_el: float
    rate_plus: complex
    rate_minus: complex

    @property
    def tau_plus(self) -> float:
        """Rise time constant (decay time of the fast mode), s."""
        return 1.0 / self.rate_plus.real

    @property
    def tau_minus(self) -> float:
        """Fall time constant, s."""
        return 1.0 / self.rate_minus.real

    @property
    def overdamped(self) -> bool:
        """True when both modes are real (no ringing)."""
        return self.rate_plus.imag == 0.0


def small_signal(p: TESParams, op: OperatingPoint) -> SmallSignal:
    """Small-signal quantities at ``op``."""
    r, dr_dt, dr_di = resistance_partials(p, op.t, op.i)
    alpha = op.t / r * dr_dt
    beta = op.i / r * dr_di
    g = p.g(op.t)
    loop_gain = op.p * alpha / (g * op.t)
    tau = p.c / g
    tau_i = tau / (1.0 - loop_gain)
    tau_el = p.inductance / (p.r_l + r * (1.0 + beta))
    disc = (1.0 / tau_el - 1.0 / tau_i) ** 2 - 4.0 * (r / p.inductance) * loop_gain * (
        2.0 + beta
    ) / tau
    root = complex(math.sqrt(disc)) if disc >= 0 else complex(0.0, math.sqrt(-disc))
    mean = 0.5 / tau_el + 0.5 / tau_i
    return SmallSignal(
        alpha=alpha,
        beta=beta,
        g=g,
        loop_gain=loop_gain,
        tau=tau,
        tau_i=tau_i,
        tau_el=tau_el,
        rate_plus=mean + 0.5 * root,
        rate_minus=mean - 0.5 * root,
    )


def small_signal_pulse(
    p: TESParams, op: OperatingPoint, energy: float, t: np.ndarray
) -> np.ndarray:
    """Analytic current change delta-I(t) for energy ``energy`` (J) absorbed at t = 0, A."""
    ss = small_signal(p, op)
    tp, tm = 1.0 / ss.rate_plus, 1.0 / ss.rate_minus
    ti = ss.tau_i
    # Sign as in Irwin & Hilton: with tau_+ < tau_- the shape below is negative, so the
    # current drops (docs/simulators.md, "TES").
    amp = ((ti / tp - 1.0) * (ti / tm - 1.0) / (2.0 + ss.beta)) * energy / (op.i * op.r * ti**2)
    t = np.asarray(t, dtype=float)
    tt = np.maximum(t, 0.0)
    shape = (np.exp(-tt * ss.rate_plus) - np.exp(-tt * ss.rate_minus)) / (
        ss.rate_plus - ss.rate_minus
    )
    return np.where(t >= 0.0, np.real(amp * shape), 0.0)


def simulate_pulse(
    p: TESParams,
    op: OperatingPoint,
    energy: float,
    dt: float,
    n: int,
    *,
    n_pre: int = 0,
    max_step: float | None = None,
) -> np.ndarray:
    """TES current after absorbing ``energy`` (J), by integrating both equations in time.

    The energy arrives as an instantaneous temperature step E/C at sample
    ``n_pre``. The integrator is the implicit trapezoidal rule with Newton
    iterations (A-stable, second order); each sample interval is split into
    sub-steps no longer than a tenth of the fastest time constant.

    Args:
        p: the device.
        op: the operating point (bias, bath) the pulse starts from.
        energy: absorbed energy, J.
        dt: sample interval, s.
        n: number of samples.
        n_pre: samples before the absorption.
        max_step: largest sub-step, s (default: from the small-signal time constants).

    Returns:
        Absolute TES current, A, ``n`` samples.
    """
    ss = small_signal(p, op)
    fastest = min(abs(ss.tau_el), abs(1.0 / ss.rate_plus), abs(ss.tau_i), ss.tau)
    h_max = max_step if max_step is not None else 0.1 * fastest
    n_sub = max(1, math.ceil(dt / h_max))
    h = dt / n_sub
    v = abs(op.i_bias) * p.r_sh
    tb_n = op.t_bath**p.n
    r_l, l_ind, c, k, n_exp = p.r_l, p.inductance, p.c, p.k, p.n
    out = np.empty(n)
    cur, temp = op.i, op.t
    out[: min(n_pre, n)] = cur
    temp += energy / c
    half = 0.5 * h

    def rhs(i: float, t: float) -> tuple[float, float, float, float, float, float]:
        r, r_t, r_i = resistance_partials(p, t, i)
        f1 = (v - i * (r_l + r)) / l_ind
        f2 = (i * i * r - k * (t**n_exp - tb_n)) / c
        j11 = -(r_l + r + i * r_i) / l_ind
        j12 = -i * r_t / l_ind
        j21 = (2.0 * i * r + i * i * r_i) / c
        j22 = (i * i * r_t - n_exp * k * t ** (n_exp - 1.0)) / c
        return f1, f2, j11, j12, j21, j22

    f1, f2, *_ = rhs(cur, temp)
    for s in range(max(n_pre, 0), n):
        out[s] = cur  # sample s is at t = (s - n_pre) dt
        for _ in range(n_sub):
            i_new, t_new = cur + h * f1, temp + h * f2  # explicit predictor
            for _it in range(10):
                g1, g2, j11, j12, j21, j22 = rhs(i_new, t_new)
                r1 = i_new - cur - half * (f1 + g1)
                r2 = t_new - temp - half * (f2 + g2)
                a11, a12 = 1.0 - half * j11, -half * j12
                a21, a22 = -half * j21, 1.0 - half * j22
                det = a11 * a22 - a12 * a21
                di = (r1 * a22 - r2 * a12) / det
                dtemp = (a11 * r2 - a21 * r1) / det
                i_new -= di
                t_new -= dtemp
                if abs(di) < 1e-12 * (abs(i_new) + 1e-12) and abs(dtemp) < 1e-12 * t_new:
                    break
            cur, temp = i_new, t_new
            f1, f2, *_ = rhs(cur, temp)
    return out
