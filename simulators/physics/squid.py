"""DC SQUID and its flux-locked loop (FLL), as seen by room-temperature electronics.

Interface:

* :data:`PHI0` -- the flux quantum, Wb.
* :class:`SquidVPhi` -- the periodic voltage-flux characteristic
  ``V(Phi) = V0 + (dV/2) sin(2 pi Phi / Phi0)``; :func:`biased_squid` gives
  the characteristic for a bias current (no modulation below the critical
  current, a maximum at the optimum bias).
* :class:`FluxLockedLoop` -- the readout: the SQUID, its input coil
  (``m_in``), feedback coil (``m_f``), feedback resistor ``r_f``, integrator
  (gain-bandwidth product and slew rate scaled by the integrator capacitor),
  output rails and a preamplifier offset. ``process(i_tes, dt)`` turns a TES
  current trace into the output voltage trace and keeps its state (integrator
  voltage, time, flux-jump count) between calls, so consecutive traces are one
  continuous record.

Modes (:attr:`FluxLockedLoop.mode`):

* ``"locked"`` -- the integrator drives the error ``V(Phi) - offset`` to zero;
  the output is ``-(m_in / m_f) r_f (I_TES - I_at_lock)``. When the flux
  changes faster than the integrator can slew, or by more than the lock basin
  within one loop time, the loop settles on the neighbouring lock point: the
  output steps by exactly ``r_f Phi0 / m_f`` (a flux jump, counted in
  :attr:`FluxLockedLoop.flux_jumps`). The output is clipped to the rails;
  :meth:`FluxLockedLoop.reset` zeroes the integrator and the loop relocks at
  the present flux.
* ``"tune"`` -- open loop: the output is ``preamp_gain (V(Phi) - offset)``, the
  V-Phi curve itself (with ``offset = 0`` and unit gain exactly ``V(Phi)``),
  clipped at the rails.
* ``"idle"`` -- output 0 V.

A triangle test signal on the SQUID flux line (:attr:`FluxLockedLoop.test_flux_pp`)
traces the V-Phi curve in tune mode, as on the real electronics.

Plain numpy and math; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

PHI0 = 2.067833848e-15
"""Magnetic flux quantum h / 2e, Wb."""

Mode = Literal["locked", "tune", "idle"]


@dataclass
class SquidVPhi:
    """Voltage-flux characteristic of a biased DC SQUID.

    Attributes:
        v0: mean voltage across the SQUID, V.
        dv: peak-to-peak modulation depth, V (0 when not modulating).
        phi0: period, Wb (the flux quantum).
    """

    v0: float = 100e-6
    dv: float = 40e-6
    phi0: float = PHI0

    def voltage(self, phi: np.ndarray | float) -> np.ndarray | float:
        """SQUID voltage for total flux ``phi`` (Wb)."""
        return self.v0 + 0.5 * self.dv * np.sin(2.0 * np.pi * np.asarray(phi) / self.phi0)

    @property
    def max_slope(self) -> float:
        """Steepest transfer coefficient V_Phi = pi dV / Phi0, V/Wb."""
        return math.pi * self.dv / self.phi0


def biased_squid(
    i_bias: float,
    *,
    i_c: float = 15e-6,
    i_opt: float = 25e-6,
    r_dyn: float = 5.0,
    dv_max: float = 40e-6,
) -> SquidVPhi:
    """V-Phi characteristic for a bias current (resistively shunted junction picture).

    Below the critical current the SQUID is superconducting (V = 0, no
    modulation); above it the mean voltage grows as ``r_dyn sqrt(I^2 - I_c^2)``
    and the modulation depth peaks at ``i_opt`` and decays slowly beyond.

    Args:
        i_bias: bias current, A.
        i_c: critical current of the SQUID (both junctions), A.
        i_opt: bias of maximum modulation, A.
        r_dyn: effective resistance (about half the junction shunt), Ohm.
        dv_max: peak-to-peak modulation at the optimum bias, V.

    Returns:
        The characteristic at that bias.
    """
    i = abs(i_bias)
    if i <= i_c:
        return SquidVPhi(v0=0.0, dv=0.0)
    u = (i - i_c) / (i_opt - i_c)
    return SquidVPhi(v0=r_dyn * math.sqrt(i * i - i_c * i_c), dv=dv_max * u * math.exp(1.0 - u))


class FluxLockedLoop:
    """Flux-locked loop around a DC SQUID, simulated in the time domain.

    Args:
        squid: the SQUID's V-Phi characteristic (may be replaced at run time,
            e.g. when the bias changes).
        m_in: mutual inductance of the input coil (TES current -> flux), H.
        m_f: mutual inductance of the feedback coil, H.
        r_f: feedback resistor, Ohm.
        c_int: integrator capacitor, F; gain-bandwidth and slew rate scale as 1/c_int.
        gbp_ref: loop gain-bandwidth product at ``c_ref``, Hz (the closed-loop
            bandwidth is ``gbp * V_Phi * m_f / r_f``).
        slew_ref: integrator output slew limit at ``c_ref``, V/s.
        c_ref: capacitor the two reference values belong to, F.
        v_rail: output rails (+/-), V.
        preamp_gain: gain from SQUID voltage to output in tune mode.
        offset: preamplifier offset, V; ``None`` means the SQUID's mean voltage
            V0 (lock at the steepest point of the curve).
        phi_bias: static flux applied through the flux line, Wb.
        mode: ``"locked"``, ``"tune"`` or ``"idle"``.
        auto_reset: reset the integrator automatically when it reaches a rail.
    """

    def __init__(
        self,
        squid: SquidVPhi | None = None,
        *,
        m_in: float = PHI0 / 5e-6,
        m_f: float = PHI0 / 20e-6,
        r_f: float = 100e3,
        c_int: float = 1.5e-9,
        gbp_ref: float = 2.5e9,
        slew_ref: float = 2e6,
        c_ref: float = 1.5e-9,
        v_rail: float = 10.0,
        preamp_gain: float = 1.0,
        offset: float | None = None,
        phi_bias: float = 0.0,
        mode: Mode = "locked",
        auto_reset: bool = False,
    ) -> None:
        self.squid = squid if squid is not None else SquidVPhi()
        self.m_in = m_in
        self.m_f = m_f
        self.r_f = r_f
        self.c_int = c_int
        self.gbp_ref = gbp_ref
        self.slew_ref = slew_ref
        self.c_ref = c_ref
        self.v_rail = v_rail
        self.preamp_gain = preamp_gain
        self.offset = offset
        self.phi_bias = phi_bias
        self.mode: Mode = mode
        self.auto_reset = auto_reset
        self.reset_held = False
        self.test_flux_pp = 0.0  # triangle test signal on the flux line, peak-to-peak Wb
        self.test_frequency = 1e3  # Hz
        self.v_int = 0.0  # integrator output = loop output, V
        self.time = 0.0  # s, advances with process()
        self.flux_jumps = 0  # net lock-point changes (+1 per Phi0 slip upwards)
        self.resets = 0
        self._basin: int | None = None

    # ---- derived quantities -------------------------------------------------------------

    @property
    def effective_offset(self) -> float:
        """The preamplifier offset in use (V0 when :attr:`offset` is ``None``)."""
        return self.squid.v0 if self.offset is None else self.offset

    @property
    def gbp(self) -> float:
        """Gain-bandwidth product for the present integrator capacitor, Hz."""
        return self.gbp_ref * self.c_ref / self.c_int

    @property
    def slew(self) -> float:
        """Output slew limit for the present integrator capacitor, V/s."""
        return self.slew_ref * self.c_ref / self.c_int

    @property
    def flux_slew_limit(self) -> float:
        """Largest flux rate the loop can follow, Phi0/s."""
        return self.slew * self.m_f / self.r_f / self.squid.phi0

    @property
    def gain(self) -> float:
        """Locked transimpedance dV_out/dI_TES = -(m_in / m_f) r_f, V/A."""
        return -self.m_in / self.m_f * self.r_f

    @property
    def jump_step(self) -> float:
        """Output step of one flux jump, r_f Phi0 / m_f, V."""
        return self.r_f * self.squid.phi0 / self.m_f

    def _lock_angles(self) -> tuple[float, float] | None:
        """Phases (rad) of the stable and unstable lock points, or None without a lock point."""
        dv = self.squid.dv
        if dv <= 0.0:
            return None
        s = 2.0 * (self.effective_offset - self.squid.v0) / dv
        if abs(s) >= 1.0:
            return None
        theta_s = math.asin(s)  # rising slope: negative feedback for a positive m_f / r_f
        return theta_s, math.pi - theta_s

    def loop_time_constant(self) -> float:
        """Closed-loop time constant at the lock point, s (inf without a lock point)."""
        angles = self._lock_angles()
        if angles is None:
            return math.inf
        slope = self.squid.max_slope * math.cos(angles[0])
        return self.r_f / (2.0 * math.pi * self.gbp * slope * self.m_f)

    # ---- control --------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the integrator; the loop relocks at the present flux on the next sample."""
        self.v_int = 0.0
        self._basin = None
        self.resets += 1

    # ---- time domain ------------------------------------------------------------------------

    def _test_flux(self, t: np.ndarray) -> np.ndarray:
        if self.test_flux_pp == 0.0:
            return np.zeros_like(t)
        phase = (t * self.test_frequency) % 1.0
        tri = 1.0 - 4.0 * np.abs(phase - 0.5)  # -1..1 triangle, minimum at phase 0
        return 0.5 * self.test_flux_pp * tri

    def process(self, i_tes: np.ndarray, dt: float) -> np.ndarray:
        """Output voltage for a TES current trace sampled every ``dt`` seconds.

        Args:
            i_tes: TES (input coil) current, A, one value per sample.
            dt: sample interval, s.

        Returns:
            The loop output, V, same length as ``i_tes``.
        """
        i_tes = np.asarray(i_tes, dtype=float)
        n = i_tes.size
        t = self.time + dt * np.arange(n)
        phi_ext = self.m_in * i_tes + self.phi_bias + self._test_flux(t)
        self.time += dt * n
        if self.mode == "idle" or n == 0:
            return np.zeros(n)
        if self.mode == "tune":
            self.v_int = 0.0
            volts = np.asarray(self.squid.voltage(phi_ext), dtype=float)
            out = self.preamp_gain * (volts - self.effective_offset)
            return np.clip(out, -self.v_rail, self.v_rail)  # the amplifier saturates too
        if self.reset_held:
            self.v_int = 0.0
            self._basin = None
            return np.zeros(n)
        return self._run_locked(phi_ext, dt)

    def _run_locked(self, phi_ext: np.ndarray, dt: float) -> np.ndarray:
        out = np.empty(phi_ext.size)
        phi0 = self.squid.phi0
        two_pi = 2.0 * math.pi
        fb = self.m_f / self.r_f  # flux per output volt
        rail = self.v_rail
        angles = self._lock_angles()
        v = self.v_int
        prev = phi_ext[0]
        if angles is None:
            # No lock point: the error keeps one sign and the integrator runs into a rail.
            err = self.squid.v0 - self.effective_offset
            direction = -1.0 if err > 0 else 1.0
            rate = min(self.slew, two_pi * self.gbp * abs(err)) if err else 0.0
            for k in range(phi_ext.size):
                v = min(rail, max(-rail, v + direction * rate * dt))
                out[k] = v
            self.v_int = v
            self._basin = None
            return out
        theta_s, theta_u = angles
        tau = self.loop_time_constant()
        basin = self._basin
        # Stretches where the flux moves by less than the sub-step threshold per sample are
        # tried as one linear filter; the samples of fast changes (a pulse's leading edge)
        # and any stretch that turns out not to be linear take the per-sample loop.
        hard = np.nonzero(np.abs(np.diff(phi_ext, prepend=prev)) >= 0.05 * phi0)[0].tolist()
        start = 0
        for stop in [*hard, phi_ext.size]:
            if stop > start:
                done = self._run_linear(phi_ext[start:stop], dt, tau, theta_s, theta_u, fb, v,
                                        basin)
                if done is None:
                    v, basin = self._run_exact(phi_ext, start, stop, out, dt, tau, theta_s,
                                               theta_u, fb, prev, v, basin)
                else:
                    out[start:stop], v, basin = done
                prev = phi_ext[stop - 1]
            if stop < phi_ext.size:
                v, basin = self._run_exact(phi_ext, stop, stop + 1, out, dt, tau, theta_s,
                                           theta_u, fb, prev, v, basin)
                prev = phi_ext[stop]
            start = stop + 1
        self.v_int = v
        self._basin = basin
        return out

    def _run_exact(self, phi_ext: np.ndarray, start: int, stop: int, out: np.ndarray,
                   dt: float, tau: float, theta_s: float, theta_u: float, fb: float,
                   prev: float, v: float, basin: int | None) -> tuple[float, int | None]:
        """The per-sample loop over ``phi_ext[start:stop]`` into ``out``; (v, basin) after."""
        phi0 = self.squid.phi0
        two_pi = 2.0 * math.pi
        rail = self.v_rail
        slew = self.slew
        for k in range(start, stop):
            target = phi_ext[k]
            # Resolve fast input changes so that a slip happens where the flux really is.
            n_sub = min(
                64, max(1, math.ceil(abs(target - prev) / (0.05 * phi0)), math.ceil(dt / tau))
            )
            h = dt / n_sub
            relax = -math.expm1(-h / tau)
            step_max = slew * h
            for j in range(1, n_sub + 1):
                pe = prev + (target - prev) * j / n_sub
                phi = pe + fb * v
                theta = two_pi * phi / phi0
                b = math.floor((theta - theta_u) / two_pi) + 1
                if basin is not None and b != basin and abs(v) < rail:
                    self.flux_jumps += b - basin
                basin = b
                phi_eq = (theta_s + two_pi * b) * phi0 / two_pi
                dv = (phi_eq - phi) / fb * relax
                if dv > step_max:
                    dv = step_max
                elif dv < -step_max:
                    dv = -step_max
                v += dv
                if v >= rail or v <= -rail:
                    v = rail if v > 0 else -rail
                    if self.auto_reset:
                        v = 0.0
                        basin = None
                        self.resets += 1
            prev = target
            out[k] = v
        return v, basin

    def _run_linear(self, phi_ext: np.ndarray, dt: float, tau: float, theta_s: float,
                    theta_u: float, fb: float, v: float,
                    basin: int | None) -> tuple[np.ndarray, float, int] | None:
        """The per-sample recurrence of :meth:`_run_exact`, vectorised, when it stays linear.

        While the flux moves slowly (no sub-steps), stays in one lock basin, never
        slew-limits and never reaches a rail, the loop's update is a first-order linear
        filter: it is computed in one call and each of those conditions is then checked on
        the result; None when one fails (the caller runs the loop instead). A pulse train
        at a few hundred records per second is otherwise a Python loop over millions of
        samples.

        Returns:
            (output, integrator voltage after, basin), or None.
        """
        phi0 = self.squid.phi0
        two_pi = 2.0 * math.pi
        if dt > tau:
            return None
        from scipy.signal import lfilter

        theta0 = two_pi * (phi_ext[0] + fb * v) / phi0
        b0 = math.floor((theta0 - theta_u) / two_pi) + 1
        if basin is not None and b0 != basin:
            return None
        relax = -math.expm1(-dt / tau)
        phi_eq = (theta_s + two_pi * b0) * phi0 / two_pi
        drive = relax * (phi_eq - phi_ext) / fb
        out, _ = lfilter([1.0], [1.0, -(1.0 - relax)], drive, zi=[(1.0 - relax) * v])
        before = np.concatenate(([v], out[:-1]))
        theta = two_pi * (phi_ext + fb * before) / phi0
        basins = np.floor((theta - theta_u) / two_pi) + 1
        if (np.any(basins != b0) or float(np.abs(out - before).max()) > self.slew * dt
                or float(np.abs(out).max()) >= self.v_rail):
            return None
        return np.asarray(out, dtype=float), float(out[-1]), b0
