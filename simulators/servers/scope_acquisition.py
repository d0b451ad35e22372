"""The acquisition engine of the simulated InfiniiVision: arm, wait for a trigger, complete.

What :mod:`simulators.servers.scope` needs to behave like the real scope,
without the SCPI:

* **Time.** Acquisitions happen on a clock (seconds; the wall clock by
  default). Nothing runs in the background: every command first lets the
  engine catch up to ``clock()`` (:meth:`AcquisitionEngine.update`).
* **Triggers wait for real events.** A channel whose source has
  ``next_event`` (the TES readout: photon arrivals) triggers only when its
  next event arrives and the recorded pulse crosses the trigger level with
  the trigger slope; a photon whose pulse stays below the level triggers
  nothing, and the scope keeps waiting for the next. A source without
  events (noise) is examined one fresh stretch per update and triggers only
  if it really crosses the level. In AUTO sweep an untriggered record is
  taken when no trigger came within :data:`AUTO_TRIGGER_S`.
* **An acquisition is complete only when its post-trigger part has been
  recorded**: at the trigger time plus the time from the trigger to the end
  of the record. Until then the Run bit (8) of ``:OPERegister:CONDition?``
  stays set; Wait Trig (32) is set while no trigger has come yet.
* **Records are digitised like the DSOX3024T's**: an 8-bit ADC across the
  8 vertical divisions (levels 0..255, clipped at the rails: a signal off
  the screen reads as the extreme level), left-aligned in 16 bits as the
  WORD format transfers them (the low byte 0). AVERage (``count``
  triggered acquisitions, averaged) and HRESolution keep 12 bits, still
  within the same rails; PEAK stores a (min, max) level pair for every two
  samples. AC coupling removes the record's mean (the coupling corner is far
  below a record's span).
* **A record keeps the settings it was taken with** (:class:`Setup`):
  changing a setting afterwards does not rescale what is held.
* **Segmented memory** (``mode`` ``SEGMented``): one acquisition fills
  ``segments`` segments, each from its own trigger (a real photon whose pulse
  crossed the level), each with its trigger time. After a trigger the
  segment's post-trigger part is recorded, the trigger re-arms
  (:data:`REARM_S`) and the next segment's pre-trigger part must be recorded
  before it can trigger again: photons in that dead time trigger nothing (they
  may sit in a record as pile-up). The acquisition is complete when the last
  segment is; a stop keeps the segments acquired so far. The engine counts
  the segments it triggered and the live time it waited for them
  (:attr:`AcquisitionEngine.segments_acquired`, :attr:`AcquisitionEngine.live_s`),
  and the segments a transfer took (:meth:`AcquisitionEngine.mark_transferred`).

Interface: :class:`Setup` (a snapshot of the acquisition settings),
:class:`Record` (a completed acquisition), :class:`AcquisitionEngine`
(``arm_single``, ``run``, ``stop``, ``update``, ``running``, ``waiting``,
``trigger_pending``, ``take_trigger_event``, ``record``, ``drop_record``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.fft import next_fast_len

from simulators.physics.readout import TraceSource

RUN_BIT = 8
"""``:OPERegister:CONDition?`` bit 3: the oscilloscope is running (not stopped)."""
WAIT_TRIG_BIT = 32
"""Bit 5: the trigger is armed and waiting."""
ADC_BITS = 8
"""Vertical resolution of the DSOX3024T's ADC."""
HIGH_RES_STEPS = 16
"""AVERage and HRESolution keep 4 more bits (12 in all) between the same rails."""
AUTO_TRIGGER_S = 0.04
"""AUTO sweep: take an untriggered record when no trigger came within this time."""
CANDIDATES_PER_UPDATE = 4
"""Events examined per update, so that one command never costs more than a few records."""
RUN_LOOKBACK_S = 0.5
"""While running, older events are skipped: only the latest acquisitions are ever shown."""
MAX_BUFFER = 400_000
"""Longest stretch simulated in one piece; a longer trigger delay records the window apart."""

SEGMENTS_PER_UPDATE = 64
"""Segments examined per update in segmented mode (a record costs ~1 ms to simulate)."""
REARM_S = 1e-6
"""Segmented mode: the trigger re-arms this long after a segment's last sample."""

TYPE_CODES = {"NORMal": 0, "PEAK": 1, "AVERage": 2, "HRESolution": 3}
"""Preamble ``type`` code of each ``:ACQuire:TYPE``."""


@dataclass(frozen=True)
class Setup:
    """The settings an acquisition is taken with.

    Attributes:
        points: samples in the record.
        x_increment: sample interval, s.
        x_origin: time of sample 0 relative to the trigger, s.
        scale: V/div of each channel.
        offset: V at the screen centre of each channel.
        ac: AC coupling of each channel.
        acq_type: ``"NORMal"``, ``"AVERage"``, ``"HRESolution"`` or ``"PEAK"``.
        count: averages in AVERage.
        trig_source: trigger channel.
        trig_level: V.
        trig_slope: ``"POSitive"``, ``"NEGative"``, ``"EITHer"`` or ``"ALTernate"``.
        auto: AUTO sweep (an untriggered record when no trigger comes).
        segmented: segmented memory (``:ACQuire:MODE SEGMented``).
        segments: segments per segmented acquisition.
        channels: the channels a segmented acquisition records (the displayed ones
            and the trigger source; empty: all).
    """

    points: int
    x_increment: float
    x_origin: float
    scale: Mapping[int, float]
    offset: Mapping[int, float]
    ac: Mapping[int, bool]
    acq_type: str
    count: int
    trig_source: int
    trig_level: float
    trig_slope: str
    auto: bool
    segmented: bool = False
    segments: int = 1
    channels: tuple[int, ...] = ()

    @property
    def first_index(self) -> int:
        """Index of sample 0 relative to the trigger sample (negative: pre-trigger samples)."""
        return round(self.x_origin / self.x_increment)

    @property
    def post_trigger_s(self) -> float:
        """Time from the trigger to the end of the record, s (0 if the record ends before)."""
        return max(0.0, self.x_origin + self.points * self.x_increment)

    @property
    def pre_trigger_s(self) -> float:
        """Time from the start of the record to the trigger, s (0 if the record starts after)."""
        return max(0.0, -self.x_origin)


@dataclass
class Record:
    """A completed acquisition.

    Attributes:
        setup: what it was taken with.
        codes: per channel, the samples as unsigned 16-bit words (ADC level
            left-aligned; WORD unsigned as transferred); segmented: one row per segment.
        triggered: a real trigger started it (False: AUTO).
        trigger_time: when (engine clock, s), if triggered (the first segment's).
        completed_at: when the acquisition completed (engine clock, s).
        averaged: acquisitions averaged into it (1 unless AVERage).
        segment_times: segmented: each segment's trigger time (engine clock, s).
        transferred: a transfer has taken it (counted once).
    """

    setup: Setup
    codes: dict[int, np.ndarray]
    triggered: bool
    trigger_time: float | None
    completed_at: float
    averaged: int = 1
    segment_times: list[float] = field(default_factory=list)
    transferred: bool = False

    @property
    def segmented(self) -> bool:
        """Taken in segmented memory (codes hold one row per segment)."""
        return bool(self.segment_times)

    @property
    def time_tags(self) -> list[float]:
        """Each segment's trigger time relative to the first segment's, s."""
        return [t - self.segment_times[0] for t in self.segment_times]


@dataclass
class _Capture:
    """A trigger was found; the acquisition completes at ``completes_at``."""

    volts: dict[int, np.ndarray]
    triggered: bool
    trigger_time: float | None
    completes_at: float


@dataclass
class _Armed:
    """An acquisition in progress."""

    setup: Setup
    started: float
    search_from: float
    capture: _Capture | None = None
    collected: list[dict[int, np.ndarray]] = field(default_factory=list)
    segments: list[_Capture] = field(default_factory=list)


def levels(volts: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """Continuous ADC level (0..255 across the 8 divisions), unclipped."""
    lsb = 8.0 * scale / 2**ADC_BITS
    return (volts - offset) / lsb + 2 ** (ADC_BITS - 1)


def digitise(volts: np.ndarray, scale: float, offset: float, steps: int = 1) -> np.ndarray:
    """Quantise to the ADC (``steps`` sub-levels per level) and left-align in 16 bits."""
    top = (2**ADC_BITS - 1) * steps
    level = np.clip(np.round(levels(volts, scale, offset) * steps), 0, top).astype(np.uint32)
    shift = 16 - ADC_BITS - int(math.log2(steps))
    return (level << shift).astype(np.uint16)


def find_crossing(trace: np.ndarray, start: int, stop: int, level: float,
                  slope: str) -> int | None:
    """First sample index in ``[start, stop)`` where ``trace`` crosses ``level`` with ``slope``."""
    start = max(start, 1)
    before, after = trace[start - 1 : stop - 1], trace[start:stop]
    rising = (before < level) & (after >= level)
    falling = (before > level) & (after <= level)
    hits = rising if slope == "POSitive" else falling if slope == "NEGative" else rising | falling
    idx = np.nonzero(hits)[0]
    return int(idx[0]) + start if idx.size else None


class AcquisitionEngine:
    """Arms, triggers and completes acquisitions of four channels on a clock.

    Args:
        sources: channel (1..4) -> trace source.
        clock: seconds, monotonic.
    """

    def __init__(self, sources: Mapping[int, TraceSource], clock: Callable[[], float]) -> None:
        self.sources = dict(sources)
        self.clock = clock
        self.mode = "stopped"  # "stopped", "single" or "running"
        self.record: Record | None = None
        self.acquisitions = 0
        self.segments_acquired = 0
        self.segments_transferred = 0
        self.live_s = 0.0
        self._armed: _Armed | None = None
        self._ter = False
        self._alternate_rising = True

    # ---- control ---------------------------------------------------------------------------

    def arm_single(self, setup: Setup) -> None:
        """Take one acquisition with ``setup`` (``:SINGle`` / ``:DIGitize``), then stop."""
        self.mode = "single"
        self._arm(setup)

    def run(self, setup: Setup) -> None:
        """Acquire continuously (``:RUN``); each completed acquisition replaces the last."""
        self.mode = "running"
        self._arm(setup)

    def stop(self) -> None:
        """Stop now (``:STOP``); an acquisition in progress is abandoned, the last one kept.

        A segmented acquisition keeps the segments it completed (as the scope does).
        """
        self.update()
        armed = self._armed
        if armed is not None and armed.setup.segmented and armed.segments:
            self._complete_segmented(armed)
        self.mode = "stopped"
        self._armed = None

    def mark_transferred(self) -> int:
        """A transfer took the held record: count its segments once; return how many."""
        record = self.record
        if record is None or record.transferred:
            return 0
        record.transferred = True
        n = max(1, len(record.segment_times))
        self.segments_transferred += n
        return n

    @property
    def segments_so_far(self) -> int:
        """Segments of the acquisition in progress (``:WAVeform:SEGMented:COUNt?`` while
        acquiring), else of the record held."""
        if self._armed is not None and self._armed.setup.segmented:
            return len(self._armed.segments)
        return len(self.record.segment_times) if self.record is not None else 0

    def drop_record(self, setup: Setup) -> None:
        """A setting changed: while running, the next acquisitions use the new settings."""
        if self.mode == "running":
            self.record = None
            self._arm(setup)

    def _arm(self, setup: Setup) -> None:
        now = self.clock()
        self._armed = _Armed(setup, now, now)

    # ---- status ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The Run bit: acquiring (running, or a single acquisition not yet complete)."""
        return self.mode != "stopped"

    @property
    def waiting(self) -> bool:
        """The Wait Trig bit: armed and no trigger yet."""
        return self._armed is not None and self._armed.capture is None

    @property
    def trigger_pending(self) -> bool:
        """The trigger event register is set (not read since the last trigger)."""
        return self._ter

    def take_trigger_event(self) -> bool:
        """Read and clear the trigger event register (``:TER?``)."""
        fired, self._ter = self._ter, False
        return fired

    def clear_events(self) -> None:
        """``*CLS``: clear the trigger event register."""
        self._ter = False

    # ---- the catching up -------------------------------------------------------------------

    def update(self) -> None:
        """Catch up with the clock: find triggers, complete acquisitions."""
        now = self.clock()
        armed = self._armed
        budget = (SEGMENTS_PER_UPDATE if armed is not None and armed.setup.segmented
                  else CANDIDATES_PER_UPDATE)
        for _ in range(budget):
            armed = self._armed
            if armed is None:
                return
            if armed.capture is not None:
                if armed.capture.completes_at > now:
                    return
                if armed.setup.segmented:
                    self._next_segment(armed, armed.capture)
                else:
                    self._complete(armed, armed.capture)
                continue
            if self.mode == "running":
                armed.search_from = max(armed.search_from, now - RUN_LOOKBACK_S)
            if not self._look_for_trigger(armed, now):
                return

    def _look_for_trigger(self, armed: _Armed, now: float) -> bool:
        """Examine the next candidate; False when there is nothing more to examine now."""
        setup = armed.setup
        source = self.sources[setup.trig_source]
        next_event = getattr(source, "next_event", None)
        if next_event is not None:
            t_event = next_event(armed.search_from)
            if t_event is None or t_event > now:
                return self._auto(armed, now)
            armed.search_from = t_event + 1e-12
            capture = self._capture(setup, t_event, with_event=True)
        else:
            # A signal without events: look at a fresh stretch of it, once per update.
            capture = self._capture(setup, now, with_event=False)
            if capture is None:
                self._auto(armed, now)
                return False
        if capture is not None:
            armed.capture = capture
            self._ter = True
        return True

    def _next_segment(self, armed: _Armed, capture: _Capture) -> None:
        """A segment is recorded: keep it, re-arm for the next or complete the acquisition."""
        setup = armed.setup
        armed.capture = None
        if capture.trigger_time is not None:
            # Live time: from when the trigger could fire until it did (the dead time of
            # the segment before is not live).
            self.live_s += max(0.0, capture.trigger_time - armed.started)
        armed.segments.append(capture)
        self.segments_acquired += 1
        self._ter = True
        if len(armed.segments) >= setup.segments:
            self._complete_segmented(armed)
            return
        # The next segment: post-trigger part recorded, re-armed, pre-trigger part filled.
        ready = capture.completes_at + REARM_S + setup.pre_trigger_s
        armed.started = armed.search_from = ready

    def _complete_segmented(self, armed: _Armed) -> None:
        setup = armed.setup
        codes = {}
        for ch in armed.segments[0].volts:
            rows = []
            for capture in armed.segments:
                v = capture.volts[ch]
                v = v - v.mean() if setup.ac.get(ch) else v
                steps = HIGH_RES_STEPS if setup.acq_type == "HRESolution" else 1
                rows.append(digitise(v, setup.scale[ch], setup.offset[ch], steps))
            codes[ch] = np.stack(rows)
        first = armed.segments[0]
        times = [c.trigger_time if c.trigger_time is not None else c.completes_at
                 for c in armed.segments]
        self.acquisitions += 1
        self.record = Record(setup, codes, first.triggered, first.trigger_time,
                             armed.segments[-1].completes_at, 1, times)
        if self.mode == "single":
            self.mode = "stopped"
            self._armed = None
        else:
            done = armed.segments[-1].completes_at
            self._armed = _Armed(setup, done, done)

    def _auto(self, armed: _Armed, now: float) -> bool:
        setup = armed.setup
        if not setup.auto or now - armed.started < AUTO_TRIGGER_S:
            return False
        n, dt = setup.points, setup.x_increment
        volts = {ch: src.acquire(n, dt, None) for ch, src in self.sources.items()}
        done = armed.started + AUTO_TRIGGER_S + n * dt
        armed.capture = _Capture(volts, False, None, done)
        return True

    def _slope(self, setup: Setup) -> str:
        if setup.trig_slope != "ALTernate":
            return setup.trig_slope
        return "POSitive" if self._alternate_rising else "NEGative"

    def _capture(self, setup: Setup, t_event: float, *, with_event: bool) -> _Capture | None:
        """Record around an event; the capture if the trigger channel crosses the level."""
        n, dt = setup.points, setup.x_increment
        first = setup.first_index
        margin = max(64, n // 8)  # room for the pulse to rise through the level
        event = max(-first, 0) + 1  # so that the window (crossing + first) starts in the buffer
        after = max(first + n, 0)
        length = event + margin + after
        apart = length > MAX_BUFFER  # a long trigger delay: record the window separately
        if apart:
            length = event + margin
        # Noise is shaped by an FFT of the whole buffer: a few more samples at its end make
        # it a fast length (a prime length costs ten times more, per segment).
        length = next_fast_len(length, real=True)
        trig = setup.trig_source
        buffers = {
            ch: src.acquire(length, dt, event if with_event and ch == trig else None)
            for ch, src in self.sources.items()
            if ch == trig or (not apart and (not setup.channels or ch in setup.channels))
        }
        crossing = find_crossing(buffers[trig], event, event + margin, setup.trig_level,
                                 self._slope(setup))
        if crossing is None:
            return None
        if setup.trig_slope == "ALTernate":
            self._alternate_rising = not self._alternate_rising
        if apart:
            window = {ch: src.acquire(n, dt, None) for ch, src in self.sources.items()
                      if not setup.channels or ch in setup.channels or ch == trig}
        else:
            start = crossing + first
            window = {ch: d[start : start + n] for ch, d in buffers.items()}
        t_trigger = t_event + (crossing - event) * dt
        return _Capture(window, True, t_trigger, t_trigger + setup.post_trigger_s)

    def _complete(self, armed: _Armed, capture: _Capture) -> None:
        setup = armed.setup
        volts = {ch: v - v.mean() if setup.ac.get(ch) else v for ch, v in capture.volts.items()}
        self.acquisitions += 1
        if setup.acq_type == "AVERage":
            armed.collected.append({
                ch: np.clip(levels(v, setup.scale[ch], setup.offset[ch]), 0, 2**ADC_BITS - 1)
                for ch, v in volts.items()})
            if len(armed.collected) < setup.count:
                # The average needs more triggers: keep waiting from here.
                armed.capture = None
                armed.search_from = capture.completes_at
                return
            codes = {ch: self._averaged(armed.collected, ch) for ch in volts}
        elif setup.acq_type == "PEAK":
            codes = {ch: self._peak(v, setup.scale[ch], setup.offset[ch]) for ch, v in volts.items()}
        else:
            steps = HIGH_RES_STEPS if setup.acq_type == "HRESolution" else 1
            codes = {ch: digitise(v, setup.scale[ch], setup.offset[ch], steps)
                     for ch, v in volts.items()}
        self.record = Record(setup, codes, capture.triggered, capture.trigger_time,
                             capture.completes_at, max(1, len(armed.collected)))
        if self.mode == "single":
            self.mode = "stopped"
            self._armed = None
        else:
            done = capture.completes_at
            self._armed = _Armed(setup, done, done)

    @staticmethod
    def _averaged(collected: list[dict[int, np.ndarray]], ch: int) -> np.ndarray:
        mean = np.mean([levels_of[ch] for levels_of in collected], axis=0)
        shift = 16 - ADC_BITS - int(math.log2(HIGH_RES_STEPS))
        level = np.round(mean * HIGH_RES_STEPS).astype(np.uint32)
        return (level << shift).astype(np.uint16)

    @staticmethod
    def _peak(volts: np.ndarray, scale: float, offset: float) -> np.ndarray:
        codes = digitise(volts[: volts.size // 2 * 2], scale, offset).reshape(-1, 2)
        pairs = np.stack([codes.min(axis=1), codes.max(axis=1)], axis=1).reshape(-1)
        return np.resize(pairs, volts.size).astype(np.uint16)
