"""The TES bias line with a function generator summed in: DC bias plus a small modulation.

A complex-impedance measurement adds a small square or sine wave to the DC
bias: the generator drives the bias node through a coupling resistor, in
parallel with the bias source (the SIM928 through its bias resistor). The
bias node sits at the shunt (micro-ohms), so each source injects a current
``V_open / (R_source + R_couple)`` with ``V_open`` the generator's
open-circuit voltage and ``R_source`` its 50 Ohm output impedance.

Interface:

* :class:`GeneratorOutput` -- what one generator channel puts out: function
  (``SIN``, ``SQU``, ``TRI``, ``RAMP``, ``DC``; other functions are treated as
  their DC offset only), frequency, open-circuit peak-to-peak amplitude and
  offset, square duty cycle, start phase, output on/off;
  :meth:`GeneratorOutput.volts` gives the waveform at given times.
* :class:`BiasLine` -- sums the bias source's current and the generator's
  current. The DC part (bias source plus the generator's mean) sets the
  TES operating point (the TES re-settles, with its hysteresis, whenever it
  changes); the AC part drives the TES through its small-signal response
  (:func:`~simulators.physics.tes_modulation.bias_current_response`) in steady
  state, :meth:`BiasLine.modulation_current`. :meth:`BiasLine.follow` gives
  the callback a simulated generator calls when its output changes.
* :class:`ModulatedReadout` -- a :class:`~simulators.physics.readout.TESReadout`
  whose TES current also carries the modulation response, continuous across
  records on the loop's clock: what a scope on the SQUID output shows while
  the generator runs.
* :class:`GeneratorTrace` -- a scope channel wired to a generator output (the
  33522B's second channel, say, used as a trigger source), sampled on the
  same clock as a :class:`ModulatedReadout` so that both channels of one
  acquisition are simultaneous: triggering on it fixes the drive's phase in
  the readout's record.

Units: SI (V, A, Ohm, Hz, s); phases in degrees as the generator takes them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.physics.readout import TESReadout
from simulators.physics.tes_device import TES, OperatingPoint
from simulators.physics.tes_modulation import periodic_response

#: Functions whose AC waveform the bias line models.
AC_FUNCTIONS = ("SIN", "SQU", "TRI", "RAMP")


@dataclass(frozen=True)
class GeneratorOutput:
    """One generator channel's output as it leaves the connector (open circuit).

    Attributes:
        function: ``SIN``, ``SQU``, ``TRI``, ``RAMP``, ``DC`` (others: DC offset only).
        frequency: Hz.
        vpp: open-circuit peak-to-peak amplitude, V.
        offset: open-circuit DC offset, V.
        duty: square-wave duty cycle, percent (time at the high level).
        phase: start phase, degrees (the waveform at t = 0).
        enabled: output relay closed; off means no current at all.
        inverted: the waveform flipped about its offset (output polarity inverted).
    """

    function: str = "SIN"
    frequency: float = 1e3
    vpp: float = 0.2
    offset: float = 0.0
    duty: float = 50.0
    phase: float = 0.0
    enabled: bool = False
    inverted: bool = False

    @property
    def has_ac(self) -> bool:
        """True when the output carries a modulation (on, periodic, non-zero)."""
        return (self.enabled and self.function in AC_FUNCTIONS and self.vpp > 0
                and self.frequency > 0)

    @property
    def period(self) -> float:
        """Period, s (inf for DC)."""
        return 1.0 / self.frequency if self.frequency > 0 else math.inf

    def shape(self, x: np.ndarray) -> np.ndarray:
        """The unit waveform (-1..1, polarity applied) at phase fractions ``x`` in [0, 1)."""
        sign = -1.0 if self.inverted else 1.0
        if self.function == "SIN":
            return sign * np.sin(2.0 * np.pi * x)
        if self.function == "SQU":
            return sign * np.where(x < self.duty / 100.0, 1.0, -1.0)
        if self.function == "TRI":  # starts at 0 rising, like the sine
            return sign * np.where(x < 0.25, 4.0 * x,
                                   np.where(x < 0.75, 2.0 - 4.0 * x, 4.0 * x - 4.0))
        if self.function == "RAMP":
            return sign * (2.0 * x - 1.0)
        return np.zeros_like(x)

    def mean(self) -> float:
        """Time-averaged open-circuit voltage, V (0 when off)."""
        if not self.enabled:
            return 0.0
        if self.function == "SQU":
            sign = -1.0 if self.inverted else 1.0
            return self.offset + sign * 0.5 * self.vpp * (2.0 * self.duty / 100.0 - 1.0)
        return self.offset

    def volts(self, t: np.ndarray) -> np.ndarray:
        """Open-circuit output voltage at times ``t`` (s), V."""
        t = np.asarray(t, dtype=float)
        if not self.enabled:
            return np.zeros(t.shape)
        if self.function not in AC_FUNCTIONS:
            return np.full(t.shape, self.offset)
        x = np.mod(t * self.frequency + self.phase / 360.0, 1.0)
        return self.offset + 0.5 * self.vpp * self.shape(x)


class BiasLine:
    """The TES bias node: a DC bias source and a generator through a coupling resistor.

    Args:
        tes: the biased device; re-settled whenever the DC bias changes.
        r_couple: coupling resistor from the generator to the bias node, Ohm.
        r_source: the generator's output impedance, Ohm.
        lock: held while the TES re-settles (the lab's fridge lock, which its
            bath-following controller also takes); default: an own lock.
    """

    def __init__(
        self,
        tes: TES,
        *,
        r_couple: float = 100e3,
        r_source: float = 50.0,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        if not r_couple > 0:
            raise ValueError(f"r_couple must be > 0 Ohm, got {r_couple!r}")
        self.tes = tes
        self.r_couple = r_couple
        self.r_source = r_source
        self.source_current = tes.state.i_bias
        self.generator = GeneratorOutput()
        self._lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        self._cache: dict[tuple[OperatingPoint, GeneratorOutput, int], np.ndarray] = {}

    # ---- DC ---------------------------------------------------------------------------------

    @property
    def transconductance(self) -> float:
        """Bias current per generator open-circuit volt, A/V."""
        return 1.0 / (self.r_source + self.r_couple)

    def dc_bias(self) -> float:
        """The DC bias current into the shunt: source plus the generator's mean, A."""
        return self.source_current + self.generator.mean() * self.transconductance

    def _settle(self) -> None:
        with self._lock:
            target = self.dc_bias()
            if target != self.tes.state.i_bias:
                self.tes.set_bias(target)

    def set_source_current(self, i_bias: float) -> None:
        """The bias source changed (e.g. the SIM928's output): the TES re-settles."""
        self.source_current = float(i_bias)
        self._settle()

    def refresh(self) -> None:
        """Re-settle the TES at the present bias (after its bath temperature moved)."""
        with self._lock:
            self.tes.refresh()

    def set_generator(self, output: GeneratorOutput) -> None:
        """The generator's output changed; a changed mean moves the operating point."""
        self.generator = output
        self._settle()

    def follow(self, channel: int = 1) -> Callable[[int, GeneratorOutput], None]:
        """A generator server's ``on_output`` callback: this line follows ``channel``.

        Returns:
            ``callback(channel, output)``; outputs of other channels are ignored
            (they are wired elsewhere, or nowhere).
        """

        def on_output(number: int, output: GeneratorOutput) -> None:
            if number == channel:
                self.set_generator(output)

        return on_output

    # ---- AC ---------------------------------------------------------------------------------

    def generator_current(self, t: np.ndarray) -> np.ndarray:
        """Current the generator injects at times ``t``, A (DC part included)."""
        return self.generator.volts(t) * self.transconductance

    def _period_response(self, grid: int) -> np.ndarray:
        op = self.tes.state
        gen = self.generator
        key = (op, gen, grid)
        cached = self._cache.get(key)
        if cached is None:
            x = np.arange(grid) / grid
            drive = 0.5 * gen.vpp * gen.shape(x) * self.transconductance
            cached = periodic_response(self.tes.params, op, drive, gen.period)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def modulation_current(self, t: np.ndarray, dt: float) -> np.ndarray:
        """Steady-state change of the TES current caused by the modulation, A.

        Args:
            t: sample times, s (the generator's phase 0 at t = 0).
            dt: the sample interval the times come with, s (sets the grid on
                which one period is computed: at least four points per sample).

        Returns:
            delta-I_TES at ``t`` (zeros when the generator carries no modulation).
        """
        t = np.asarray(t, dtype=float)
        gen = self.generator
        if not gen.has_ac:
            return np.zeros(t.shape)
        points = 4.0 * gen.period / dt if dt > 0 else 1024.0
        grid = int(min(2**20, max(1024, 2 ** math.ceil(math.log2(max(points, 2.0))))))
        period = self._period_response(grid)
        pos = np.mod(t * gen.frequency + gen.phase / 360.0, 1.0) * grid
        k = np.floor(pos).astype(np.int64) % grid
        frac = pos - np.floor(pos)
        return period[k] * (1.0 - frac) + period[(k + 1) % grid] * frac


class ModulatedReadout:
    """A TES readout whose TES current also answers the generator's modulation.

    Args:
        readout: the readout (TES, photons, noise, flux-locked loop).
        line: the bias line carrying the modulation; its TES is the readout's.
    """

    def __init__(self, readout: TESReadout, line: BiasLine) -> None:
        if line.tes is not readout.tes:
            raise ValueError("the bias line must bias the readout's own TES")
        self.readout = readout
        self.line = line
        self._lock = threading.Lock()
        self._last: tuple[float, int, float] | None = None  # (t0, n, dt) of the last record

    def next_event(self, after_s: float) -> float | None:
        """When the next photon arrives after ``after_s`` (s, on the caller's clock)."""
        return self.readout.next_event(after_s)

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Loop output voltage, ``n`` samples at ``dt``, with the modulation response added."""
        readout = self.readout
        with self._lock:
            tes = readout.tes
            if readout.bath_check_due() and \
                    abs(tes.bath_temperature() - tes.state.t_bath) > readout.bath_tolerance:
                self.line.refresh()
            t = readout.fll.time + dt * np.arange(n)
            self._last = (float(t[0]) if n else readout.fll.time, n, dt)
            current = readout.tes_current(n, dt, event_at)
            current += self.line.modulation_current(t, dt)
            return readout.fll.process(current, dt)

    def sample_times(self, n: int, dt: float) -> np.ndarray:
        """Times (s, on the loop's clock) of ``n`` samples at ``dt`` taken with the last record.

        A digitizer samples its channels together: another channel acquired
        with the same length and interval right after this one gets the same
        times. Otherwise the times continue from the loop's present time.
        """
        with self._lock:
            last = self._last
            if last is not None and last[1] == n and last[2] == dt:
                return last[0] + dt * np.arange(n)
            return self.readout.fll.time + dt * np.arange(n)


class GeneratorTrace:
    """A scope channel wired to a generator output, on the clock of a modulated readout.

    The scope's input is high impedance, so it sees the open-circuit voltage.

    Args:
        clock: the readout whose record times this channel shares.
    """

    def __init__(self, clock: ModulatedReadout) -> None:
        self.clock = clock
        self.output = GeneratorOutput()

    def follow(self, channel: int) -> Callable[[int, GeneratorOutput], None]:
        """A generator server's ``on_output`` callback for the output wired here."""

        def on_output(number: int, output: GeneratorOutput) -> None:
            if number == channel:
                self.output = output

        return on_output

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """The generator's voltage at the times of the readout's record (``event_at`` ignored)."""
        return self.output.volts(self.clock.sample_times(n, dt))
