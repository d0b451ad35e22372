"""The TES/SQUID view, decided without Qt: the live record, overlays, the noise spectrum.

:class:`DetectorModel` takes the digitizer's ``wave`` records of one detector
of the config's ``dashboard:`` section (:class:`daq.dashboard_config.DetectorView`)
and keeps what the view draws:

* the newest record with its time axis in µs (trigger at 0 when the record
  has pre-trigger samples) in volts at the SQUID output and, through the
  readout's ``amps_per_volt``, in amperes at the TES;
* the last few records for the overlay (recent pulses);
* an averaged current-noise spectrum in A/√Hz
  (:func:`daq.analysis.noise.average_psd`, records with a pulse vetoed) over the
  last records: from their pre-trigger part when the records are triggered
  pulses (the baseline before a pulse is noise), else from whole records;
  recomputed at most every ``psd_every_s`` (in a worker thread when
  ``background`` is set, as the window does) and never from a flagged (clipped)
  record;
* the trigger rate (records per second over the last ``rate_window_s``);
* the lock state, when the config names a lock stream.
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from daq.analysis.noise import NoiseSpectrum, average_psd
from daq.dashboard_config import DetectorView
from daq.messages import Kind, Message, Quality, describe_quality, is_bad
from gui.models.format import Reading, Tone

#: The fewest pre-trigger samples worth a spectrum of their own.
MIN_NOISE_SAMPLES = 64


@dataclass(frozen=True)
class Record:
    """One record ready to draw.

    Attributes:
        t_us: time axis, µs from the trigger.
        volts: the SQUID output, V.
        amps: the TES current, A (volts x amps_per_volt).
        t_ns: trigger time, ns since the epoch.
        quality: the digitizer's flags (CLIPPED when at the rails).
        note: the digitizer's words on a flagged record.
        presamples: samples before the trigger.
        dt: sample interval, s.
        t_recv_ns: when it arrived.
    """

    t_us: np.ndarray
    volts: np.ndarray
    amps: np.ndarray
    t_ns: int
    quality: int
    note: str
    presamples: int
    dt: float
    t_recv_ns: int


@dataclass(frozen=True)
class Spectrum:
    """The averaged noise, ready to draw."""

    freqs_hz: np.ndarray
    asd_a_per_rthz: np.ndarray
    n_records: int
    n_vetoed: int
    pretrigger: bool
    white_a_per_rthz: float  # the median level over the upper half of the band
    vetoing: bool = True  # False: the pulse veto was off (see _compute)

    @property
    def label(self) -> str:
        where = "pre-trigger baselines" if self.pretrigger else "whole records"
        veto = f"{self.n_vetoed} vetoed" if self.vetoing else "no veto (quantized baselines)"
        return (f"{self.n_records} records ({where}), {veto} · white level "
                f"{self.white_a_per_rthz * 1e12:.3g} pA/√Hz")


class DetectorModel:
    """One detector's live view (see the module docstring).

    Args:
        name: the detector's name in the config.
        view: its ``dashboard:`` entry.
        overlay: how many recent records the overlay shows.
        psd_records: how many records the spectrum averages.
        psd_every_s: the spectrum is recomputed at most this often.
        rate_window_s: the trigger rate counts records over this window.
    """

    def __init__(self, name: str, view: DetectorView, *, overlay: int = 12,
                 psd_records: int = 32, psd_every_s: float = 1.0,
                 rate_window_s: float = 10.0) -> None:
        self.name = name
        self.view = view
        self.record: Record | None = None
        self.overlay: deque[Record] = deque(maxlen=overlay)
        self._noise: deque[np.ndarray] = deque(maxlen=psd_records)
        self._noise_dt = 0.0
        self._noise_pre = False
        self.psd_every_s = psd_every_s
        self.rate_window_s = rate_window_s
        self._arrivals: deque[float] = deque(maxlen=10_000)
        self._spectrum: Spectrum | None = None
        self._spectrum_at = 0.0
        self._spectrum_dirty = False
        self.spectrum_error = ""
        #: Compute spectra in a worker thread (the window sets it; tests need not).
        self.background = False
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[Spectrum | str] | None = None
        self.records = 0
        self.flagged = 0
        self.version = 0
        #: The trigger level drawn: the config's, until the digitizer's own setting is known.
        self.trigger_level_v = view.trigger_level_v

    @property
    def trigger_target(self) -> str:
        """The digitizer's trigger-level control target (``tes1/trigger_level``)."""
        return f"{self.view.record.split('/')[0]}/trigger_level"

    def set_trigger_level(self, value: object) -> None:
        """The digitizer's trigger level as its daemon listed it (ignored unless a number)."""
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and np.isfinite(value):
            self.trigger_level_v = float(value)

    @property
    def stream(self) -> str:
        """The record's stream as a topic (``wave/tes1/squid_out``)."""
        return f"wave/{self.view.record}"

    def apply(self, msg: Message, now: float | None = None) -> bool:
        """Take a message; True when it was this detector's record."""
        if msg.kind is not Kind.WAVE or f"{msg.source}/{msg.channel}" != self.view.record:
            return False
        if msg.data is None or msg.data.ndim != 1 or not len(msg.data):
            return False
        volts = msg.volts()
        dt = float(msg.meta.get("dt", 0.0) or 0.0)
        if not dt > 0:
            return False
        pre = int(msg.meta.get("presamples", 0) or 0)
        note = msg.meta.get("note", "")
        rec = Record(t_us=msg.times() * 1e6, volts=volts, amps=volts * self.view.amps_per_volt,
                     t_ns=msg.t, quality=msg.quality, note=str(note) if note else "",
                     presamples=pre, dt=dt, t_recv_ns=msg.t_recv)
        self.record = rec
        self.overlay.append(rec)
        self.records += 1
        self._arrivals.append(time.monotonic() if now is None else now)
        if is_bad(msg.quality):
            self.flagged += 1  # a clipped record is drawn (flagged) but never averaged
        else:
            self._add_noise(volts, pre, dt)
        self.version += 1
        return True

    def _add_noise(self, volts: np.ndarray, pre: int, dt: float) -> None:
        use_pre = pre >= MIN_NOISE_SAMPLES
        segment = volts[:pre] if use_pre else volts
        if self._noise and (len(segment) != len(self._noise[0]) or dt != self._noise_dt
                            or use_pre != self._noise_pre):
            self._noise.clear()  # the digitizer's setting changed: start the average afresh
        self._noise.append(np.array(segment, dtype=np.float64))
        self._noise_dt, self._noise_pre = dt, use_pre
        self._spectrum_dirty = True

    def trigger_rate(self, now: float | None = None) -> float:
        """Records per second over the last ``rate_window_s``."""
        now = time.monotonic() if now is None else now
        while self._arrivals and self._arrivals[0] < now - self.rate_window_s:
            self._arrivals.popleft()
        if not self._arrivals:
            return 0.0
        span = min(self.rate_window_s, max(now - self._arrivals[0], 1e-9))
        return len(self._arrivals) / span if len(self._arrivals) > 1 else 1.0 / self.rate_window_s

    def spectrum(self, now: float | None = None) -> Spectrum | None:
        """The averaged spectrum; a new one is computed when due.

        With ``background`` (the window's case) the average is computed in a worker
        thread (numpy's FFTs let the GUI thread run meanwhile) and this returns the last
        finished one; without it (tests, scripts) it is computed here and now.
        """
        now = time.monotonic() if now is None else now
        if self._future is not None and self._future.done():
            self._take(self._future)
            self._future = None
        if (self._spectrum_dirty and now - self._spectrum_at >= self.psd_every_s
                and self._noise and self._future is None):
            self._spectrum_at = now
            self._spectrum_dirty = False
            job = (np.vstack(list(self._noise)), self._noise_dt, self._noise_pre,
                   1.0 / abs(self.view.amps_per_volt))
            if self.background:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="dashboard-psd")
                self._future = self._pool.submit(_compute, *job)
            else:
                done: Future[Spectrum | str] = Future()
                done.set_result(_compute(*job))
                self._take(done)
        return self._spectrum

    def _take(self, future: Future[Spectrum | str]) -> None:
        result = future.result()
        if isinstance(result, str):
            self.spectrum_error = result
        else:
            self.spectrum_error = ""
            self._spectrum = result

    def close(self) -> None:
        """Stop the background worker (if one was started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def lock_state(self, reading: Reading | None) -> tuple[str, Tone]:
        """The SQUID lock state: from the config's lock stream, else from the records.

        SQUID electronics such as the PFL-102 cannot be read back, so without a lock
        stream the record itself is the evidence: a locked loop keeps the output inside
        the digitizer's range, an unlocked one runs to the rails (flagged CLIPPED).
        """
        if self.view.lock is None:
            if self.record is None:
                return "no records", Tone.NONE
            if self.record.quality & Quality.CLIPPED:
                return "UNLOCKED? output at the rails", Tone.ALARM
            return "output in range", Tone.GOOD
        if reading is None:
            return "not received", Tone.NONE
        if is_bad(reading.quality):
            return f"? {describe_quality(reading.quality)}", Tone.BAD
        return ("LOCKED", Tone.GOOD) if reading.value >= 0.5 else ("UNLOCKED", Tone.ALARM)


def _compute(records: np.ndarray, dt: float, pretrigger: bool,
             gain_v_per_a: float) -> Spectrum | str:
    """The averaged spectrum of ``records``, or why there is none (runs in any thread).

    Pre-trigger baselines hold no pulse by construction (the trigger comes after them);
    when the veto still refuses every one of them (a baseline only a few ADC steps deep
    has a robust sigma of almost nothing) they are averaged without it, and said so.
    """
    try:
        return _to_spectrum(average_psd(records, dt, gain_v_per_a=gain_v_per_a), pretrigger)
    except ValueError as exc:
        if not pretrigger or "vetoed" not in str(exc):
            return str(exc)
    try:
        spec = average_psd(records, dt, gain_v_per_a=gain_v_per_a, veto_threshold=None)
    except ValueError as exc:
        return str(exc)
    return _to_spectrum(spec, pretrigger, vetoing=False)


def _to_spectrum(spec: NoiseSpectrum, pretrigger: bool, vetoing: bool = True) -> Spectrum:
    freqs, asd = spec.freqs_hz[1:], spec.asd_a_per_rthz[1:]  # no DC on a log axis
    upper = asd[len(asd) // 2:]
    white = float(np.median(upper)) if len(upper) else math.nan
    return Spectrum(freqs, asd, spec.n_records, spec.n_vetoed, pretrigger, white, vetoing)
