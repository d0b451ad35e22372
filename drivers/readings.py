"""What a poll returns: the value, the instrument's own verdict on it, and when it was measured.

Every :class:`~drivers.common.PollSpec` read returns one of these, or a list
of them (a batch: every line a log file gained, every record of a segmented
acquisition):

* :class:`Reading` — one scalar sample;
* :class:`WaveRecord` — one waveform record (a pulse or a noise trace).

Both carry :class:`Quality` flags (``OK`` when the instrument vouches for the
value) and the source time ``t_ns`` (ns since the epoch, UTC) when the
instrument or its log says when the value was measured; ``None`` means "now",
and the daemon stamps the time it took the reading.

A bad reading keeps the value the instrument gave (or NaN) together with
its flags and a short ``note`` in the instrument's words (``"RDGST 017:
CS OVL, R.OVER"``). Nothing downstream (archive, dashboard, interlocks,
alarms, runs) treats a flagged value as a number to act on; see
:data:`BAD` and :func:`is_bad`.

This module is the lowest layer's definition; ``daq.messages`` re-exports
:class:`Quality`, and the flags travel in every message header as ``q``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, cast

import numpy as np

__all__ = [
    "BAD",
    "PollKind",
    "PollResult",
    "Quality",
    "Reading",
    "WaveRecord",
    "as_samples",
    "describe_quality",
    "is_bad",
]


class Quality(enum.IntFlag):
    """Quality flags of a value; ``OK`` (0) means the instrument vouches for it.

    Attributes:
        STALE: no fresh value for longer than the stream's ``stale_s``.
        OVERRANGE: the reading is beyond the range the instrument can measure
            (Lake Shore R.OVER / T.OVER, a gauge over its range, SIM921 over-range).
        UNDERRANGE: below the measurable range (R.UNDER / T.UNDER, a gauge under range).
        SENSOR_ERROR: the sensor or its wiring is at fault (an open or shorted
            thermometer: Lake Shore CS/VCM/VMIX/VDIF overload; gauge sensor error).
        INVALID: no number could be had (NaN, a malformed reply, no curve).
        SIMULATED: produced by a simulator (informational, not bad).
        CLIPPED: a waveform record touches the ADC rails.
        SENSOR_OFF: the sensor is switched off, disabled or absent.
        OUTPUT_FAULT: an output reports a fault (a heater open or shorted).
    """

    OK = 0
    STALE = 1
    OVERRANGE = 2
    UNDERRANGE = 4
    SENSOR_ERROR = 8
    INVALID = 16
    SIMULATED = 32
    CLIPPED = 64
    SENSOR_OFF = 128
    OUTPUT_FAULT = 256


#: Every flag that makes a value "not known": all but ``SIMULATED``.
BAD = Quality(sum(flag.value for flag in Quality if flag is not Quality.SIMULATED))


def is_bad(quality: int) -> bool:
    """Whether ``quality`` (flags as an int) marks the value as not to be acted on."""
    return bool(int(quality) & BAD)


def describe_quality(quality: int) -> str:
    """The flag names joined by ``|`` (``"OVERRANGE|SENSOR_ERROR"``), ``"OK"`` for none."""
    q = Quality(int(quality) & sum(f.value for f in Quality))
    return "|".join(f.name or "?" for f in Quality if f and f in q) or "OK"


class PollKind(enum.StrEnum):
    """What a poll spec produces."""

    SCALAR = "scalar"
    WAVEFORM = "waveform"


@dataclass(frozen=True, slots=True)
class Reading:
    """One scalar sample with the instrument's verdict and its source time.

    Attributes:
        value: the number the instrument gave (NaN when there is none).
        quality: the instrument's verdict; a non-finite value is always ``INVALID``.
        t_ns: when it was measured (ns since the epoch, UTC); ``None`` = when read.
        note: the instrument's condition in its own words, when not OK.
    """

    value: float
    quality: Quality = Quality.OK
    t_ns: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) and not self.quality & Quality.INVALID:
            object.__setattr__(self, "quality", Quality(self.quality | Quality.INVALID))
            if not self.note:
                object.__setattr__(self, "note", f"value {self.value!r} is not a number")

    @classmethod
    def of(cls, value: float | int | bool, t_ns: int | None = None) -> Reading:
        """A reading the instrument raised no flag on (NaN still becomes ``INVALID``)."""
        return cls(float(value), t_ns=t_ns)

    @property
    def ok(self) -> bool:
        """True when no bad flag is set."""
        return not is_bad(self.quality)


@dataclass(frozen=True, slots=True)
class WaveRecord:
    """One waveform record: raw samples with their scaling, timing and verdict.

    ``volts = raw * scale + offset``; sample ``i`` was taken at
    ``t_ns + (i - presamples) * dt`` seconds (the trigger is sample ``presamples``).

    Attributes:
        raw: the samples as transferred (integer counts, or float volts with
            ``scale`` 1 and ``offset`` 0).
        dt: sample period, s.
        scale: volts per count.
        offset: volts at count 0.
        presamples: samples before the trigger.
        t_ns: trigger time (ns since the epoch); ``None`` = when read.
        quality: the verdict (``CLIPPED`` when samples sit at the ADC rails).
        note: the condition in words, when not OK.
        meta: extra JSON-able facts (segment index, trigger counter, ...).
    """

    raw: np.ndarray
    dt: float
    scale: float = 1.0
    offset: float = 0.0
    presamples: int = 0
    t_ns: int | None = None
    quality: Quality = Quality.OK
    note: str = ""
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise ValueError(f"a record's sample period must be > 0 s, got {self.dt!r}")
        if not 0 <= self.presamples <= self.raw.shape[-1]:
            raise ValueError(f"presamples {self.presamples} outside the record's "
                             f"{self.raw.shape[-1]} samples")

    @property
    def volts(self) -> np.ndarray:
        """The samples in volts (float64)."""
        return self.raw.astype(np.float64) * self.scale + self.offset

    @property
    def first_sample_ns(self) -> int | None:
        """Time of sample 0, ns (``t_ns`` minus the presamples)."""
        if self.t_ns is None:
            return None
        return self.t_ns - round(self.presamples * self.dt * 1e9)

    @property
    def ok(self) -> bool:
        """True when no bad flag is set."""
        return not is_bad(self.quality)


#: What a poll spec's ``read`` returns.
PollResult: TypeAlias = Reading | WaveRecord | Sequence[Reading] | Sequence[WaveRecord]


def as_samples(result: object) -> list[Reading] | list[WaveRecord]:
    """A poll result as a list (a batch of one for a single sample).

    Raises:
        TypeError: ``result`` is not a :class:`Reading`, a :class:`WaveRecord`
            or a sequence of one of them (a driver bug, named in the message).
    """
    if isinstance(result, Reading):
        return [result]
    if isinstance(result, WaveRecord):
        return [result]
    if isinstance(result, Sequence) and not isinstance(result, str | bytes):
        items = list(result)
        if all(isinstance(x, Reading) for x in items):
            return cast(list[Reading], items)
        if all(isinstance(x, WaveRecord) for x in items):
            return cast(list[WaveRecord], items)
    raise TypeError(f"a poll must return a Reading, a WaveRecord or a list of them, "
                    f"not {type(result).__name__}")
