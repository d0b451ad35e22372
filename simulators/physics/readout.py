"""A TES read out by a SQUID flux-locked loop: the signal a digitizer sees.

Interface:

* :class:`TraceSource` -- what a simulated scope channel needs:
  ``acquire(n, dt, event_at=None) -> volts``. ``event_at`` puts a photon at
  that sample (the one the scope's trigger waited for); other photons
  arrive at random (Poisson) anyway. :class:`EventSource` adds
  ``next_event(after_s)``: when the next photon arrives, so that a scope
  waits for a real one.
* :class:`PoissonArrivals` -- arrival times of a Poisson process on the
  caller's clock, answering "when is the first arrival after t" the same
  way however often it is asked.
* :class:`TESReadout` -- the physics behind it: a :class:`~simulators.physics.tes.TES`
  at its present operating point, photons of a configurable energy and rate
  (pulse shape from the time-domain electrothermal model, cached per
  operating point and sample interval; overlapping pulses add), current
  noise with the model PSD (Johnson, phonon, SQUID), all passed through a
  :class:`~simulators.physics.squid.FluxLockedLoop`; ``next_event`` gives the
  photon arrival times (rate :attr:`TESReadout.rate`). The TES, the loop and the
  rates may be changed at run time by the simulated lab (bias from a current
  source, loop settings from the SQUID controller); the TES re-settles when
  its bath temperature (e.g. the mixing chamber's) has moved. :func:`center_lock` sets
  a loop's flux bias so that it locks with 0 V output at a given TES current.
* :class:`NoiseSource` -- a channel with only white noise.

Away from the transition (superconducting or normal) there are no pulses;
the noise is the Johnson noise of the circuit plus the SQUID's.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

import numpy as np

from simulators.physics.squid import FluxLockedLoop
from simulators.physics.tes import (
    EV,
    K_B,
    SET_A_30NH,
    TES,
    NoiseModel,
    OperatingPoint,
    bias_for_resistance,
    noise_psd,
    noise_trace,
    simulate_pulse,
    small_signal,
)


def center_lock(fll: FluxLockedLoop, i_tes: float) -> None:
    """Set the loop's flux bias so that it locks with 0 V output at TES current ``i_tes``.

    This is what an operator does with the flux offset before locking; the
    loop is also reset so the next sample relocks there.
    """
    phi0 = fll.squid.phi0
    s = 2.0 * (fll.effective_offset - fll.squid.v0) / fll.squid.dv if fll.squid.dv else 0.0
    phi_lock = math.asin(max(-1.0, min(1.0, s))) / (2.0 * math.pi) * phi0
    fll.phi_bias = (phi_lock - fll.m_in * i_tes) % phi0
    fll.reset()


class TraceSource(Protocol):
    """A signal a simulated digitizer channel can record."""

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Next ``n`` samples (V) at interval ``dt``; a photon at ``event_at`` if given."""
        ...


class EventSource(TraceSource, Protocol):
    """A signal made of discrete events (photons) that a trigger can wait for."""

    def next_event(self, after_s: float) -> float | None:
        """Time (s, on the caller's clock) of the first event after ``after_s``; None: never."""
        ...


class PoissonArrivals:
    """Arrival times of a Poisson process whose rate may change, on the caller's clock.

    A Poisson process has no memory, so the first arrival after ``t`` is
    ``t`` plus an exponential wait whatever happened before; the drawn
    arrival is kept, so asking again for any time between ``t`` and it gives
    the same answer.

    Args:
        rng: the random generator.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._base = -math.inf
        self._next = -math.inf
        self._rate = 0.0

    def next_after(self, t: float, rate: float) -> float | None:
        """The first arrival after ``t`` (s) at ``rate`` (1/s); None when the rate is 0."""
        if not rate > 0:
            return None
        if rate != self._rate or not self._base <= t < self._next:
            self._base, self._rate = t, rate
            self._next = t + float(self._rng.exponential(1.0 / rate))
        return self._next


class NoiseSource:
    """White Gaussian noise of ``rms`` volts around ``level`` volts.

    Args:
        rms: noise, V rms.
        level: DC level, V.
        seed: random seed.
    """

    def __init__(self, rms: float = 1e-3, level: float = 0.0, seed: int | None = None) -> None:
        self.rms = rms
        self.level = level
        self._rng = np.random.default_rng(seed)

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """``n`` samples of noise (``event_at`` is ignored: nothing happens here)."""
        return self.level + self.rms * self._rng.standard_normal(n)


class TESReadout:
    """TES + SQUID readout producing the loop output voltage.

    Args:
        tes: the biased device; default: design A (30 nH) at R = 0.2 R_n.
        fll: the flux-locked loop; default: a locked loop with default settings.
        rate: mean photon rate, 1/s.
        energy: photon energy, J.
        noise: noise sources besides the TES; ``None`` switches all noise off.
        seed: random seed.
    """

    def __init__(
        self,
        tes: TES | None = None,
        fll: FluxLockedLoop | None = None,
        *,
        rate: float = 20.0,
        energy: float = 50.0 * EV,
        noise: NoiseModel | None = NoiseModel(),  # noqa: B008 - frozen dataclass
        seed: int | None = None,
    ) -> None:
        if tes is None:
            tes = TES(SET_A_30NH)
            tes.set_bias(bias_for_resistance(SET_A_30NH, 0.2), from_normal=True)
        self.tes = tes
        if fll is None:
            fll = FluxLockedLoop()
            center_lock(fll, tes.state.i)
        self.fll = fll
        self.rate = rate
        self.energy = energy
        self.noise = noise
        self.bath_tolerance = 1e-4
        #: The bath is asked at most this often (wall s; 0: every trace). In a whole lab asking
        #: steps the fridge, and a scope in segmented memory takes hundreds of traces a
        #: second while the bath moves slowly: the lab asks every 50 ms.
        self.bath_check_s = 0.0
        self._bath_checked = -math.inf
        self._rng = np.random.default_rng(seed)
        self._arrivals = PoissonArrivals(np.random.default_rng(None if seed is None else seed + 1))
        self._templates: dict[tuple[OperatingPoint, float, float], np.ndarray] = {}
        self._lock = threading.Lock()  # the scope and the lab may call from different threads
        self._carry = np.zeros(0)  # pulse tails running past the end of the last trace
        self._carry_dt = 0.0

    def bath_check_due(self) -> bool:
        """True (and the clock restarted) when the bath temperature is due to be asked."""
        now = time.monotonic()
        if now - self._bath_checked < self.bath_check_s:
            return False
        self._bath_checked = now
        return True

    def next_event(self, after_s: float) -> float | None:
        """When the next photon arrives after ``after_s`` (s, on the caller's clock)."""
        with self._lock:
            return self._arrivals.next_after(after_s, self.rate)

    def template(self, dt: float) -> np.ndarray:
        """Current change of one photon at the present operating point, sampled at ``dt`` (A)."""
        op = self.tes.state
        key = (op, self.energy, dt)
        cached = self._templates.get(key)
        if cached is not None:
            return cached
        if op.branch(self.tes.params) != "transition" or self.energy <= 0:
            pulse = np.zeros(1)
        else:
            ss = small_signal(self.tes.params, op)
            n = int(min(200_000, max(8, math.ceil(10.0 * ss.tau_minus / dt))))
            pulse = simulate_pulse(self.tes.params, op, self.energy, dt, n) - op.i
        if len(self._templates) > 32:
            self._templates.clear()
        self._templates[key] = pulse
        return pulse

    def current_noise(self, n: int, dt: float) -> np.ndarray:
        """Noise current at the TES (A), ``n`` samples."""
        if self.noise is None:
            return np.zeros(n)
        p = self.tes.params
        op = self.tes.state
        model = self.noise
        if op.branch(p) == "transition":
            return noise_trace(lambda f: noise_psd(p, op, f, model).total, n, dt, self._rng)
        t_load = p.t_load if p.t_load is not None else op.t_bath
        r_tot = p.r_l + op.r

        def psd(f: np.ndarray) -> np.ndarray:
            johnson = 4.0 * K_B * (t_load * p.r_l + op.t * op.r)
            z2 = r_tot**2 + (2.0 * np.pi * f * p.inductance) ** 2
            with np.errstate(divide="ignore"):
                pink = np.where(f > 0, (model.f_knee / np.where(f > 0, f, 1.0)) ** model.gamma, 0.0)
            return johnson / z2 + (model.squid_flux_noise / model.m_in) ** 2 * (1.0 + pink)

        return noise_trace(psd, n, dt, self._rng)

    def tes_current(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """TES current (A): operating point, photons and noise.

        A pulse that runs past the end of one trace goes on at the start of the next
        (its tail is carried over), so the loop never sees a pulse cut off in one sample.
        """
        current = np.full(n, self.tes.state.i)
        carry = self._carry if self._carry_dt == dt else np.zeros(0)
        m = min(carry.size, n)
        current[:m] += carry[:m]
        rest = carry[m:]
        arrivals = [int(k) for k in np.nonzero(self._rng.random(n) < self.rate * dt)[0]]
        if event_at is not None and 0 <= event_at < n:
            arrivals.append(event_at)
        if arrivals:
            pulse = self.template(dt)
            for k in arrivals:
                m = min(pulse.size, n - k)
                current[k : k + m] += pulse[:m]
                over = pulse[m:]
                if over.size:
                    if rest.size < over.size:
                        rest = np.concatenate((rest, np.zeros(over.size - rest.size)))
                    rest[: over.size] += over
        self._carry, self._carry_dt = rest, dt
        return current + self.current_noise(n, dt)

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Loop output voltage, ``n`` samples at ``dt``, continuing the loop's state.

        The TES first re-settles if its bath temperature has moved by more
        than :attr:`bath_tolerance` (K) (asked at most every :attr:`bath_check_s`).
        """
        with self._lock:
            if self.bath_check_due() and \
                    abs(self.tes.bath_temperature() - self.tes.state.t_bath) > self.bath_tolerance:
                self.tes.refresh()
            return self.fll.process(self.tes_current(n, dt, event_at), dt)
