"""TES response to a modulation of its bias: complex impedance and driven time traces.

Part of the electrothermal TES model documented in :mod:`simulators.physics.tes`.
What a complex-impedance (dI/dV) measurement sees, computed two independent ways:

* :func:`tes_impedance` -- the small-signal Z_TES(omega) of the one-body model
  (Irwin & Hilton eq. 42): ``R (1 + beta) + R L_I / (1 - L_I) (2 + beta) / (1 + j omega tau_I)``;
  0 on the superconducting branch, ``R`` on the normal branch.
* :func:`bias_current_response` -- dI_TES / dI_bias = ``R_sh / (R_L + j omega L + Z_TES)``,
  the linear answer of the TES current to a small change of the bias current.
* :func:`periodic_response` -- the steady-state TES current change for a periodic
  bias modulation (one period given on a grid), through that linear response.
* :func:`simulate_bias_modulation` -- the TES current for an arbitrary bias-current
  trace, by integrating both nonlinear electrothermal equations in time
  (implicit trapezoidal rule, as :func:`~simulators.physics.tes.simulate_pulse`).

The last one is the physics; the others are its linearisation. For small
modulations they agree, which is what the tests check; an analysis that
recovers the loop gain from :func:`simulate_bias_modulation` data therefore
recovers the device's own small-signal parameters.

Units: SI (A, Ohm, H, s, Hz).
"""

from __future__ import annotations

import math

import numpy as np

from simulators.physics.tes_device import OperatingPoint, TESParams, resistance_partials
from simulators.physics.tes_response import small_signal

#: Below this fraction of R_n an operating point counts as superconducting (no ETF).
SC_FRACTION = 1e-6


def tes_impedance(p: TESParams, op: OperatingPoint, freqs: np.ndarray) -> np.ndarray:
    """Small-signal impedance of the TES itself at ``op``, Ohm (complex, on ``freqs``).

    Args:
        p: the device.
        op: the operating point.
        freqs: frequencies, Hz.

    Returns:
        Z_TES(2 pi f): 0 when superconducting, the one-body model otherwise.
    """
    f = np.asarray(freqs, dtype=float)
    if op.r < SC_FRACTION * p.r_n:
        return np.zeros(f.shape, dtype=complex)
    ss = small_signal(p, op)
    jw = 2j * np.pi * f
    lead = op.r * (1.0 + ss.beta)
    # Written with tau (not tau_I) so that L_I -> 1 stays finite: R L_I/(1-L_I)/(1+jw tau_I)
    # = R L_I / (1 - L_I + jw tau).
    thermal = op.r * ss.loop_gain * (2.0 + ss.beta) / (1.0 - ss.loop_gain + jw * ss.tau)
    return lead + thermal


def bias_current_response(p: TESParams, op: OperatingPoint, freqs: np.ndarray) -> np.ndarray:
    """dI_TES / dI_bias at ``op`` (dimensionless, complex, on ``freqs``).

    The bias current divides between the shunt and the TES branch; the
    Thevenin source ``I_bias R_sh`` drives ``R_L + j omega L + Z_TES``.
    """
    f = np.asarray(freqs, dtype=float)
    z = p.r_l + 2j * np.pi * f * p.inductance + tes_impedance(p, op, f)
    return p.r_sh / z


def periodic_response(
    p: TESParams, op: OperatingPoint, period_samples: np.ndarray, period_s: float
) -> np.ndarray:
    """Steady-state TES current change for a periodic bias modulation, A.

    Args:
        p: the device.
        op: the operating point the modulation rides on.
        period_samples: one period of the bias-current modulation on a uniform
            grid (A, first sample at phase 0); its mean is removed (a DC part
            moves the operating point and is not small-signal).
        period_s: the period, s.

    Returns:
        delta-I_TES on the same grid, A.
    """
    drive = np.asarray(period_samples, dtype=float)
    m = drive.size
    spec = np.fft.rfft(drive - drive.mean())
    freqs = np.arange(spec.size) / period_s
    return np.fft.irfft(spec * bias_current_response(p, op, freqs), m)


def simulate_bias_modulation(
    p: TESParams,
    op: OperatingPoint,
    i_bias: np.ndarray,
    dt: float,
    *,
    max_step: float | None = None,
) -> np.ndarray:
    """TES current for a bias-current trace, integrating both nonlinear equations.

    The state starts at ``op`` (its temperature and current); the bias current
    is interpolated linearly between samples, so a sampled square wave has
    edges one sample long.

    Args:
        p: the device.
        op: where the device sits before the first sample (bath from ``op``).
        i_bias: absolute bias current at each sample, A.
        dt: sample interval, s.
        max_step: largest sub-step, s (default: a tenth of the fastest time constant).

    Returns:
        TES current at each sample time ``s dt``, A (sample 0 is ``op.i``).
    """
    bias = np.asarray(i_bias, dtype=float)
    n = bias.size
    if op.r < SC_FRACTION * p.r_n:
        fastest = p.inductance / p.r_l
    else:
        ss = small_signal(p, op)
        fastest = min(abs(ss.tau_el), abs(1.0 / ss.rate_plus), abs(ss.tau_i), ss.tau)
    h_max = max_step if max_step is not None else 0.1 * fastest
    n_sub = max(1, math.ceil(dt / h_max))
    h = dt / n_sub
    half = 0.5 * h
    tb_n = op.t_bath**p.n
    r_l, l_ind, c, k, n_exp, r_sh = p.r_l, p.inductance, p.c, p.k, p.n, p.r_sh

    def rhs(i: float, t: float, v: float) -> tuple[float, float, float, float, float, float]:
        r, r_t, r_i = resistance_partials(p, t, i)
        f1 = (v - i * (r_l + r)) / l_ind
        f2 = (i * i * r - k * (t**n_exp - tb_n)) / c
        j11 = -(r_l + r + i * r_i) / l_ind
        j12 = -i * r_t / l_ind
        j21 = (2.0 * i * r + i * i * r_i) / c
        j22 = (i * i * r_t - n_exp * k * t ** (n_exp - 1.0)) / c
        return f1, f2, j11, j12, j21, j22

    out = np.empty(n)
    if n == 0:
        return out
    cur, temp = op.i, op.t
    out[0] = cur  # sample s is the state at t = s dt; the first one is the starting point
    v_prev = bias[0] * r_sh
    f1, f2, *_ = rhs(cur, temp, v_prev)
    for s in range(1, n):
        v_next = bias[s] * r_sh
        for j in range(1, n_sub + 1):
            v_new = v_prev + (v_next - v_prev) * j / n_sub
            i_new, t_new = cur + h * f1, temp + h * f2  # explicit predictor
            for _it in range(10):
                g1, g2, j11, j12, j21, j22 = rhs(i_new, t_new, v_new)
                r1 = i_new - cur - half * (f1 + g1)
                r2 = t_new - temp - half * (f2 + g2)
                a11, a12 = 1.0 - half * j11, -half * j12
                a21, a22 = -half * j21, 1.0 - half * j22
                det = a11 * a22 - a12 * a21
                di = (r1 * a22 - r2 * a12) / det
                dtemp = (a11 * r2 - a21 * r1) / det
                i_new -= di
                t_new -= dtemp
                if abs(di) < 1e-13 * (abs(i_new) + 1e-12) and abs(dtemp) < 1e-13 * t_new:
                    break
            cur, temp = i_new, t_new
            f1, f2, *_ = rhs(cur, temp, v_new)
        v_prev = v_next
        out[s] = cur
    return out
