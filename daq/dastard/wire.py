"""DASTARD's binary formats: the ports, the 36-byte record header, the 48-byte summary header.

DASTARD (NIST's acquisition program for TES microcalorimeter arrays)
publishes on a row of TCP ports counted from a base port (5500 by default),
see :class:`Port`. Triggered records and pulse summaries travel as two-frame
ZeroMQ messages, a fixed little-endian header and then the payload
(DASTARD's binary-format notes and ``publish_data.go`` in its sources:
``messageRecords`` and ``messageSummaries``).

Record header (primary records on base+2, secondary on base+3), 36 bytes,
``struct`` format ``<HBBIIffqQ``:

====  ====  ==========================================================
byte  size  field
====  ====  ==========================================================
0     2     channel index (u16; DASTARD's processor index, the index into
            CHANNELNAMES and into TRIGGERRATE's CountsSeen)
2     1     header version (0)
3     1     sample type code (:class:`SampleType`; DASTARD sends int16 or uint16)
4     4     samples before the trigger (u32)
8     4     samples in the record (u32)
12    4     sample period, s (f32)
16    4     volts per count (f32)
20    8     trigger time, ns since 1970 UTC (i64)
28    8     trigger frame index (u64): the sample clock, not a record counter
====  ====  ==========================================================

The second frame is the samples, little-endian, of the coded type.

Summary header (base+4), 48 bytes, ``<HHIIfffffqq``: channel index (u16),
header version (u16, 0), presamples (u32), samples (u32), pretrigger mean,
peak value (pretrigger mean subtracted), pulse RMS and pulse average (both
about the pretrigger mean), residual standard deviation (all f32, in
counts), trigger time ns (i64), trigger frame index (i64). The second frame
is the projection coefficients as float64 (empty when DASTARD has no
projectors loaded).

Because the channel index leads both headers, a subscriber may filter by
channel with a two-byte prefix (:func:`channel_prefix`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

from daq.dastard.errors import DastardFormatError

#: DASTARD's default base port.
DEFAULT_BASE_PORT = 5500

#: The only header version DASTARD has published (both headers).
HEADER_VERSION = 0

#: ``struct`` layouts of the two headers (little-endian, no padding).
RECORD_HEADER = struct.Struct("<HBBIIffqQ")
SUMMARY_HEADER = struct.Struct("<HHIIfffffqq")
RECORD_HEADER_BYTES = RECORD_HEADER.size
SUMMARY_HEADER_BYTES = SUMMARY_HEADER.size

#: The same layouts as numpy record dtypes (no padding), to build or read many headers at once.
RECORD_HEADER_DTYPE = np.dtype([
    ("channel", "<u2"), ("version", "u1"), ("sample_type", "u1"), ("presamples", "<u4"),
    ("samples", "<u4"), ("sample_period", "<f4"), ("volts_per_arb", "<f4"),
    ("trigger_ns", "<i8"), ("trigger_frame", "<u8")])
SUMMARY_HEADER_DTYPE = np.dtype([
    ("channel", "<u2"), ("version", "<u2"), ("presamples", "<u4"), ("samples", "<u4"),
    ("pretrig_mean", "<f4"), ("peak", "<f4"), ("pulse_rms", "<f4"), ("pulse_average", "<f4"),
    ("residual_std", "<f4"), ("trigger_ns", "<i8"), ("trigger_frame", "<i8")])


class Port(enum.IntEnum):
    """The offset of each DASTARD port from the base port."""

    CONTROL = 0
    """JSON-RPC 1.0 over plain TCP (``SourceControl.*``)."""
    STATUS = 1
    """PUB: two frames, a tag (``ALIVE``, ``TRIGGERRATE``, ...) and a JSON body."""
    PRIMARY = 2
    """PUB: primary triggered records."""
    SECONDARY = 3
    """PUB: secondary (group-trigger, cross-talk) records."""
    SUMMARIES = 4
    """PUB: pulse summaries and projection coefficients."""

    def of(self, base_port: int) -> int:
        """The TCP port number for a DASTARD at ``base_port``."""
        return base_port + int(self)


class SampleType(enum.IntEnum):
    """The sample type code of a record header (byte 3)."""

    INT8 = 0
    UINT8 = 1
    INT16 = 2
    UINT16 = 3
    INT32 = 4
    UINT32 = 5
    INT64 = 6
    UINT64 = 7

    @property
    def dtype(self) -> np.dtype:
        """The little-endian numpy dtype of the samples."""
        return _DTYPES[self]

    @classmethod
    def of_dtype(cls, dtype: np.dtype | type) -> SampleType:
        """The code for a numpy integer dtype (raises ValueError for any other)."""
        wanted = np.dtype(dtype).newbyteorder("<")
        for code, known in _DTYPES.items():
            if known == wanted:
                return code
        raise ValueError(f"DASTARD records carry integer samples, not {np.dtype(dtype)}")


_DTYPES: dict[SampleType, np.dtype] = {
    SampleType.INT8: np.dtype("<i1"),
    SampleType.UINT8: np.dtype("<u1"),
    SampleType.INT16: np.dtype("<i2"),
    SampleType.UINT16: np.dtype("<u2"),
    SampleType.INT32: np.dtype("<i4"),
    SampleType.UINT32: np.dtype("<u4"),
    SampleType.INT64: np.dtype("<i8"),
    SampleType.UINT64: np.dtype("<u8"),
}
#: By raw code, for the receive path (one dict look-up, no enum construction).
DTYPE_OF_CODE: dict[int, np.dtype] = {int(code): dtype for code, dtype in _DTYPES.items()}


def channel_prefix(channel: int) -> bytes:
    """The subscription prefix that selects one channel on a record or summary port."""
    return struct.pack("<H", channel)


def float32(value: float) -> float:
    """``value`` rounded to float32 and widened to the shortest decimal of that float32.

    The headers carry the sample period and the volts per count as float32;
    the plain widening of 4 us is 3.9999999e-06. This gives 4e-06, the value
    DASTARD was configured with; the result always rounds back to the same
    float32, so nothing the header said is lost.
    """
    with np.errstate(over="ignore"):  # beyond float32 is inf, as on the wire
        narrow = np.float32(value)
    if not np.isfinite(narrow):
        return float(narrow)
    return float(str(narrow))


# ---- record header -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """The 36-byte header of a triggered record (primary or secondary).

    Attributes:
        channel: DASTARD's channel index (into CHANNELNAMES and CountsSeen).
        sample_type: the type of the samples in the second frame.
        presamples: samples before the trigger.
        samples: samples in the record.
        sample_period: s (float32 on the wire).
        volts_per_arb: volts per count (float32 on the wire).
        trigger_ns: trigger time, ns since 1970 UTC.
        trigger_frame: trigger frame index on DASTARD's sample clock.
        version: header version (0).
    """

    channel: int
    sample_type: SampleType
    presamples: int
    samples: int
    sample_period: float
    volts_per_arb: float
    trigger_ns: int
    trigger_frame: int
    version: int = HEADER_VERSION

    def pack(self) -> bytes:
        """The 36 header bytes."""
        return RECORD_HEADER.pack(self.channel, self.version, int(self.sample_type),
                                  self.presamples, self.samples, self.sample_period,
                                  self.volts_per_arb, self.trigger_ns, self.trigger_frame)

    @classmethod
    def unpack(cls, frame: bytes | memoryview) -> RecordHeader:
        """Parse a header frame.

        Raises:
            DastardFormatError: wrong length, unknown version or sample type.
        """
        fields = unpack_record_header(frame)
        return cls(channel=fields[0], version=fields[1], sample_type=SampleType(fields[2]),
                   presamples=fields[3], samples=fields[4], sample_period=fields[5],
                   volts_per_arb=fields[6], trigger_ns=fields[7], trigger_frame=fields[8])

    def check_payload(self, payload_bytes: int) -> None:
        """Raise :class:`DastardFormatError` unless the payload has ``samples`` samples."""
        expected = self.samples * self.sample_type.dtype.itemsize
        if payload_bytes != expected:
            raise DastardFormatError("record", f"{payload_bytes} sample bytes, the header says "
                                     f"{self.samples} x {self.sample_type.dtype}")


def unpack_record_header(
    frame: bytes | memoryview,
) -> tuple[int, int, int, int, int, float, float, int, int]:
    """The raw fields of a record header, in wire order (the receive path's fast form).

    Raises:
        DastardFormatError: wrong length, unknown version or sample type, or
            presamples beyond the record.
    """
    if len(frame) != RECORD_HEADER_BYTES:
        raise DastardFormatError("record header", f"{len(frame)} bytes, expected "
                                 f"{RECORD_HEADER_BYTES}")
    fields: tuple[int, int, int, int, int, float, float, int, int] = RECORD_HEADER.unpack(frame)
    if fields[1] != HEADER_VERSION:
        raise DastardFormatError("record header", f"version {fields[1]}, this bridge reads "
                                 f"{HEADER_VERSION}")
    if fields[2] not in DTYPE_OF_CODE:
        raise DastardFormatError("record header", f"unknown sample type code {fields[2]}")
    if fields[3] > fields[4]:
        raise DastardFormatError("record header", f"{fields[3]} presamples in a record of "
                                 f"{fields[4]} samples")
    return fields


# ---- summary header ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummaryHeader:
    """The 48-byte header of a pulse summary; the values are in counts.

    Attributes:
        channel: DASTARD's channel index.
        presamples: samples before the trigger in the summarised record.
        samples: samples in the summarised record.
        pretrig_mean: mean of the pretrigger samples.
        peak: largest sample after the trigger, pretrigger mean subtracted.
        pulse_rms: RMS after the trigger, about the pretrigger mean.
        pulse_average: mean after the trigger, pretrigger mean subtracted.
        residual_std: standard deviation left after projecting onto the basis
            (0 without projectors).
        trigger_ns: trigger time, ns since 1970 UTC.
        trigger_frame: trigger frame index.
        version: header version (0).
    """

    channel: int
    presamples: int
    samples: int
    pretrig_mean: float
    peak: float
    pulse_rms: float
    pulse_average: float
    residual_std: float
    trigger_ns: int
    trigger_frame: int
    version: int = HEADER_VERSION

    def pack(self) -> bytes:
        """The 48 header bytes."""
        return SUMMARY_HEADER.pack(self.channel, self.version, self.presamples, self.samples,
                                   self.pretrig_mean, self.peak, self.pulse_rms,
                                   self.pulse_average, self.residual_std, self.trigger_ns,
                                   self.trigger_frame)

    @classmethod
    def unpack(cls, frame: bytes | memoryview) -> SummaryHeader:
        """Parse a summary header frame.

        Raises:
            DastardFormatError: wrong length or unknown version.
        """
        f = unpack_summary_header(frame)
        return cls(channel=f[0], version=f[1], presamples=f[2], samples=f[3],
                   pretrig_mean=f[4], peak=f[5], pulse_rms=f[6], pulse_average=f[7],
                   residual_std=f[8], trigger_ns=f[9], trigger_frame=f[10])


def unpack_summary_header(
    frame: bytes | memoryview,
) -> tuple[int, int, int, int, float, float, float, float, float, int, int]:
    """The raw fields of a summary header, in wire order.

    Raises:
        DastardFormatError: wrong length or unknown version.
    """
    if len(frame) != SUMMARY_HEADER_BYTES:
        raise DastardFormatError("summary header", f"{len(frame)} bytes, expected "
                                 f"{SUMMARY_HEADER_BYTES}")
    fields: tuple[int, int, int, int, float, float, float, float, float, int, int] = (
        SUMMARY_HEADER.unpack(frame))
    if fields[1] != HEADER_VERSION:
        raise DastardFormatError("summary header", f"version {fields[1]}, this bridge reads "
                                 f"{HEADER_VERSION}")
    return fields


def unpack_coefficients(frame: bytes | memoryview) -> np.ndarray:
    """A summary's projection coefficients (float64, a zero-copy view; may be empty).

    Raises:
        DastardFormatError: the frame is not a whole number of float64 values.
    """
    if len(frame) % 8:
        raise DastardFormatError("summary coefficients", f"{len(frame)} bytes is not a "
                                 f"whole number of float64 values")
    return np.frombuffer(frame, dtype="<f8")
