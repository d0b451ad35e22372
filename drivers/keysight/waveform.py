"""Oscilloscope waveform records: the preamble, its scaling, its trigger time, block headers.

What an InfiniiVision-style scope sends with a waveform, independent of the
SCPI conversation that fetches it:

    volts = (sample - y_reference) * y_increment + y_origin
    time  = (index  - x_reference) * x_increment + x_origin

**Clipping.** The ADC cannot report a signal beyond its range: such
samples sit at its lowest or highest level. The transfer carries the ADC
level left-aligned (WORD: ``level << (16 - adc_bits)``, the low bits 0;
BYTE: the top 8 bits), so the rails are the lowest code and the highest
ADC level in the transfer format (8-bit ADC, signed WORD: -32768 and
32512). :meth:`Waveform.record` flags a record with samples there
``Quality.CLIPPED`` and says how many.

**Trigger time.** An InfiniiVision does not time-stamp a single
acquisition, but it says when the acquisition is complete (the Run bit of
``:OPERegister:CONDition?`` falls): that is when the last sample after the
trigger was recorded. The trigger therefore happened the post-trigger span
of the record earlier (:attr:`Preamble.post_trigger_s`, which is the
time-base position plus the time from the reference point to the end of
the screen). :class:`Completion` bounds the moment the host saw the
acquisition complete (between the last query that still found it running
and the reply that found it stopped); :func:`trigger_time` turns it into
the trigger time (ns since the epoch) and its uncertainty, half that
interval, typically a poll interval (~10 ms) plus a round trip.

**Segmented acquisitions.** In segmented memory every segment has its own
trigger, and the scope tags each with its time after the first segment's
trigger (``:WAVeform:SEGMented:TTAG?``, for all at once
``:WAVeform:SEGMented:XLISt? TTAG``), to the scope's time-base accuracy. One
absolute anchor then places them all: when a segment (the last one seen to
arrive) was seen complete, :func:`segment_trigger_times` subtracts its
post-trigger span and its time tag to get the first segment's trigger time
and adds every segment's tag to it; :func:`segment_records` makes one
:class:`~drivers.readings.WaveRecord` per segment. Between two segments the
trigger is dead for the record's span and the re-arm time
(:func:`live_intervals`): what remains of each interval is the time the
trigger waited, so ``(n - 1) / sum(live)`` over ``n`` intervals estimates the
rate of triggers the detector produced, dead time corrected (unbiased for
Poisson arrivals).

Interface: :class:`Preamble` (``Preamble.parse(reply)``, ``volts(samples)``,
``time_axis(n)``, ``post_trigger_s``), :class:`Waveform` (``time``, ``volts``,
``preamble``, ``source``, ``sample_interval``, ``rails``, ``clipped``,
``record``), :class:`Completion`, :func:`trigger_time`,
:func:`parse_block_header` for IEEE 488.2 definite-length blocks
``#<d><length>``, and the codes :class:`WaveformFormat`, :class:`ByteOrder`,
:class:`PreambleFormat`, :class:`RecordType`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from drivers.errors import InstrumentReplyError
from drivers.readings import Quality, WaveRecord

__all__ = [
    "ByteOrder",
    "Completion",
    "Preamble",
    "PreambleFormat",
    "RecordType",
    "Waveform",
    "WaveformFormat",
    "live_intervals",
    "parse_block_header",
    "segment_records",
    "segment_trigger_times",
    "trigger_time",
]


class WaveformFormat(StrEnum):
    """Sample format of ``:WAVeform:DATA?`` (``:WAVeform:FORMat``).

    ``ASCII`` can be read back (set from the front panel or another program)
    but is refused as a setting: :meth:`InfiniiVision.fetch_waveform` needs binary.
    """

    BYTE = "BYTE"
    WORD = "WORD"
    ASCII = "ASC"


class ByteOrder(StrEnum):
    """Byte order of ``WORD`` samples (``:WAVeform:BYTeorder``)."""

    LSB_FIRST = "LSBF"
    MSB_FIRST = "MSBF"


class PreambleFormat(IntEnum):
    """Format code in the first preamble field."""

    BYTE = 0
    WORD = 1
    ASCII = 4


class RecordType(IntEnum):
    """Acquisition type code in the second preamble field (set by ``:ACQuire:TYPE``)."""

    NORMAL = 0
    PEAK = 1
    AVERAGE = 2
    HIGH_RESOLUTION = 3


@dataclass(frozen=True)
class Completion:
    """When the host saw an acquisition complete, as bounds on its clock (ns since the epoch).

    Attributes:
        after_ns: it was still running when the last query that found it
            running was sent (or when it was armed).
        by_ns: it was complete when the reply that found it stopped arrived.
    """

    after_ns: int
    by_ns: int

    @property
    def estimate_ns(self) -> int:
        """The middle of the bounds."""
        return (self.after_ns + self.by_ns) // 2

    @property
    def uncertainty_ns(self) -> int:
        """Half the width of the bounds."""
        return (self.by_ns - self.after_ns + 1) // 2


@dataclass(frozen=True)
class Preamble:
    """The ten fields of ``:WAVeform:PREamble?``.

    Attributes:
        format: sample format code.
        type: acquisition type code (:class:`RecordType`).
        points: number of points in the record.
        count: number of averages (1 unless averaging).
        x_increment: time between samples, s.
        x_origin: time of the first sample, s.
        x_reference: index that ``x_origin`` refers to.
        y_increment: volts per count.
        y_origin: volts at ``y_reference``.
        y_reference: count that ``y_origin`` refers to.
    """

    format: PreambleFormat
    type: RecordType
    points: int
    count: int
    x_increment: float
    x_origin: float
    x_reference: float
    y_increment: float
    y_origin: float
    y_reference: float

    @classmethod
    def parse(cls, reply: str) -> Preamble:
        """Parse the comma-separated preamble.

        Args:
            reply: the instrument's answer to ``:WAVeform:PREamble?``.

        Returns:
            The preamble.

        Raises:
            InstrumentReplyError: not ten numeric fields.
        """
        fields = reply.strip().split(",")
        try:
            if len(fields) != 10:
                raise ValueError(f"{len(fields)} fields, expected 10")
            numbers = [float(field) for field in fields]
            return cls(
                PreambleFormat(int(numbers[0])),
                RecordType(int(numbers[1])),
                int(numbers[2]),
                int(numbers[3]),
                *numbers[4:],
            )
        except ValueError as exc:
            raise InstrumentReplyError(
                instrument="InfiniiVision",
                command=":WAVeform:PREamble?",
                reply=reply,
                why=str(exc),
            ) from None

    def volts(self, samples: NDArray[Any]) -> NDArray[np.float64]:
        """Scale raw samples to volts.

        Args:
            samples: integer samples as transferred.

        Returns:
            Volts, float64.
        """
        raw = samples.astype(np.float64)
        return (raw - self.y_reference) * self.y_increment + self.y_origin

    @property
    def post_trigger_s(self) -> float:
        """Time from the trigger to the end of the record (after its last sample), s."""
        return (self.points - self.x_reference) * self.x_increment + self.x_origin

    def time_axis(self, n: int) -> NDArray[np.float64]:
        """Return the time of each of ``n`` samples, in seconds.

        Args:
            n: number of samples.

        Returns:
            Seconds, relative to the trigger.
        """
        return (
            np.arange(n, dtype=np.float64) - self.x_reference
        ) * self.x_increment + self.x_origin


def trigger_time(completion: Completion, preamble: Preamble) -> tuple[int, int]:
    """The trigger time of a record from when its acquisition completed.

    Args:
        completion: when the host saw the acquisition complete.
        preamble: the record's preamble (its post-trigger span).

    Returns:
        ``(t_ns, uncertainty_ns)``: the trigger time, ns since the epoch, and
        how far it may be off (the completion bounds; the scope's own trigger
        latency is far below them).
    """
    span_ns = round(max(0.0, preamble.post_trigger_s) * 1e9)
    return completion.estimate_ns - span_ns, completion.uncertainty_ns


def segment_trigger_times(completion: Completion, preamble: Preamble,
                          time_tags: Sequence[float], anchor: int) -> tuple[list[int], int]:
    """Every segment's trigger time from when segment ``anchor`` was seen complete.

    Args:
        completion: when the host saw segment ``anchor`` (0-based) complete.
        preamble: one segment's preamble (its post-trigger span).
        time_tags: each segment's trigger time after the first segment's, s.
        anchor: the segment the completion refers to.

    Returns:
        ``(times_ns, uncertainty_ns)``: each segment's trigger time, ns since the
        epoch, and how far they may be off (the completion bounds).
    """
    t_anchor, uncertainty = trigger_time(completion, preamble)
    first = t_anchor - round(time_tags[anchor] * 1e9)
    return [first + round(tag * 1e9) for tag in time_tags], uncertainty


def live_intervals(time_tags: Sequence[float], span_s: float, rearm_s: float) -> NDArray[np.float64]:
    """The live part of each interval between consecutive segments' triggers, s.

    After a trigger the scope records the rest of the segment, re-arms and
    records the next segment's pre-trigger part before it can trigger again:
    ``span_s`` (a whole segment) plus ``rearm_s`` of every interval is dead.
    """
    tags = np.asarray(time_tags, dtype=np.float64)
    return np.maximum(0.0, np.diff(tags) - span_s - rearm_s)


def segment_records(raw: NDArray[Any], preamble: Preamble, source: str,
                    times_ns: Sequence[int] | None, *, adc_bits: int | None = None,
                    uncertainty_ns: int | None = None,
                    time_tags: Sequence[float] = ()) -> list[WaveRecord]:
    """One record per segment of a segmented transfer.

    Args:
        raw: the samples as transferred, one row per segment.
        preamble: one segment's preamble (its scaling and time axis).
        source: the waveform source, e.g. ``"CHAN1"``.
        times_ns: each segment's trigger time (:func:`segment_trigger_times`), or None.
        adc_bits: the ADC resolution, to flag segments with samples at its rails.
        uncertainty_ns: how far the trigger times may be off (in each record's meta).
        time_tags: each segment's time tag, s (in each record's meta).
    """
    rows = np.asarray(raw)
    if rows.ndim != 2:
        raise ValueError("a segmented transfer has one row per segment")
    n, points = rows.shape
    view = Waveform(np.empty(0), np.empty(0), preamble, source, rows[:1].reshape(-1))
    clipped = np.zeros(n, dtype=np.int64)
    if adc_bits is not None and rows.size:
        low, high = view.rails(adc_bits)
        clipped = np.count_nonzero((rows <= low) | (rows >= high), axis=1)
    trigger_index = view.trigger_index
    presamples = max(0, min(round(trigger_index), points))
    shift_ns = 0
    if abs(presamples - trigger_index) > 0.5:  # the trigger lies outside the segment
        shift_ns = round((presamples - trigger_index) * view.sample_interval * 1e9)
    records = []
    for i in range(n):
        meta: dict[str, object] = {"source": source, "segment": i + 1}
        if i < len(time_tags):
            meta["time_tag_s"] = float(time_tags[i])
        t_ns = None if times_ns is None else int(times_ns[i])
        if t_ns is not None:
            if uncertainty_ns is not None:
                meta["t_uncertainty_ns"] = uncertainty_ns
            if shift_ns:
                meta["trigger_ns"] = t_ns
                t_ns += shift_ns
        quality, note = Quality.OK, ""
        if clipped[i]:
            quality = Quality.CLIPPED
            note = f"{int(clipped[i])} of {points} samples at the ADC rails"
        records.append(WaveRecord(rows[i], view.sample_interval, view.scale, view.offset,
                                  presamples, t_ns, quality, note, meta))
    return records


@dataclass(frozen=True)
class Waveform:
    """One transferred record.

    Attributes:
        time: sample times, s (0 at the trigger).
        volts: sample values, V.
        preamble: the scaling the record came with.
        source: the waveform source, e.g. ``"CHAN1"``.
        raw: the samples as transferred (integers), when known; with
            :attr:`scale` and :attr:`offset` they give :attr:`volts` exactly,
            at a quarter (WORD) or an eighth (BYTE) of the bytes.
        completed: when its acquisition was seen complete, when the driver
            waited for it (gives :meth:`record` the trigger time).
    """

    time: NDArray[np.float64]
    volts: NDArray[np.float64]
    preamble: Preamble
    source: str
    raw: NDArray[Any] | None = None
    completed: Completion | None = None

    @property
    def sample_interval(self) -> float:
        """The time between samples, s."""
        return self.preamble.x_increment

    @property
    def scale(self) -> float:
        """Volts per raw count: ``volts = raw * scale + offset``."""
        return self.preamble.y_increment

    @property
    def offset(self) -> float:
        """Volts at raw count 0: ``volts = raw * scale + offset``."""
        return self.preamble.y_origin - self.preamble.y_reference * self.preamble.y_increment

    @property
    def trigger_index(self) -> float:
        """Where the trigger falls in the record, in samples (may lie outside it)."""
        return self.preamble.x_reference - self.preamble.x_origin / self.preamble.x_increment

    @property
    def presamples(self) -> int:
        """Samples before the trigger (the index where :attr:`time` crosses 0), at least 0."""
        return max(0, min(round(self.trigger_index), self.volts.size))

    def rails(self, adc_bits: int) -> tuple[int, int]:
        """The raw codes of the ADC's lowest and highest level in this record's format.

        Args:
            adc_bits: the scope's ADC resolution (8 for a DSOX3024T).

        Raises:
            ValueError: the raw samples are not known.
        """
        if self.raw is None:
            raise ValueError("the raw samples of this record are not known")
        width = self.raw.dtype.itemsize * 8
        shift = max(0, width - adc_bits)
        top = ((1 << min(adc_bits, width)) - 1) << shift
        low = 0 if self.raw.dtype.kind == "u" else -(1 << (width - 1))
        return low, top + low

    def clipped(self, adc_bits: int) -> int:
        """How many samples sit at the ADC rails (a signal beyond the screen)."""
        low, high = self.rails(adc_bits)
        assert self.raw is not None
        return int(np.count_nonzero((self.raw <= low) | (self.raw >= high)))

    def record(self, t_ns: int | None = None, *, adc_bits: int | None = None) -> WaveRecord:
        """This record as the daemon publishes it (raw counts with scale and offset).

        Args:
            t_ns: the trigger time, ns since the epoch; by default taken from
                :attr:`completed` (:func:`trigger_time`), else unknown.
            adc_bits: the ADC resolution, to flag samples at its rails
                ``Quality.CLIPPED`` (not checked when None).
        """
        meta: dict[str, object] = {"source": self.source}
        if t_ns is None and self.completed is not None:
            t_ns, uncertainty = trigger_time(self.completed, self.preamble)
            meta["t_uncertainty_ns"] = uncertainty
        presamples = self.presamples
        if t_ns is not None and abs(presamples - self.trigger_index) > 0.5:
            # The trigger lies outside the record (a long time-base position): the
            # record can only say when its edge sample was taken.
            meta["trigger_ns"] = t_ns
            t_ns += round((presamples - self.trigger_index) * self.sample_interval * 1e9)
        quality, note = Quality.OK, ""
        if adc_bits is not None and self.raw is not None and self.raw.size:
            count = self.clipped(adc_bits)
            if count:
                quality = Quality.CLIPPED
                note = f"{count} of {self.raw.size} samples at the ADC rails"
        samples = self.volts if self.raw is None else self.raw
        scale, offset = (1.0, 0.0) if self.raw is None else (self.scale, self.offset)
        return WaveRecord(samples, self.sample_interval, scale, offset, presamples, t_ns,
                          quality, note, meta)


def parse_block_header(header: bytes) -> int:
    """Return the data length announced by a definite-length block header.

    Args:
        header: ``#`` + digit count + length digits, e.g. ``b"#800001000"``.

    Returns:
        The length in bytes.

    Raises:
        InstrumentReplyError: not a definite-length header.
    """
    ok = len(header) >= 3 and header[:1] == b"#" and header[1:2].isdigit()
    if ok and int(header[1:2]) == len(header) - 2 and header[2:].isdigit():
        return int(header[2:])
    raise InstrumentReplyError(
        instrument="InfiniiVision",
        command=":WAVeform:DATA?",
        reply=header,
        why="expected an IEEE 488.2 definite-length block '#<d><length>'",
    )
