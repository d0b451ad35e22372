"""Oscilloscope waveform records: the preamble, its scaling, and block headers.

What an InfiniiVision-style scope sends with a waveform, independent of the
SCPI conversation that fetches it:

    volts = (sample - y_reference) * y_increment + y_origin
    time  = (index  - x_reference) * x_increment + x_origin

Interface: :class:`Preamble` (``Preamble.parse(reply)``, ``volts(samples)``,
``time_axis(n)``), :class:`Waveform` (``time``, ``volts``, ``preamble``,
``source``, ``sample_interval``), :func:`parse_block_header` for IEEE 488.2
definite-length blocks ``#<d><length>``, and the codes
:class:`WaveformFormat`, :class:`ByteOrder`, :class:`PreambleFormat`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from drivers.errors import InstrumentReplyError
from drivers.readings import WaveRecord

__all__ = [
    "ByteOrder",
    "Preamble",
    "PreambleFormat",
    "Waveform",
    "WaveformFormat",
    "parse_block_header",
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


@dataclass(frozen=True)
class Preamble:
    """The ten fields of ``:WAVeform:PREamble?``.

    Attributes:
        format: sample format code.
        type: acquisition type code (0 normal, 1 peak, 2 average, 3 high resolution).
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
    type: int
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
                int(numbers[1]),
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
    """

    time: NDArray[np.float64]
    volts: NDArray[np.float64]
    preamble: Preamble
    source: str
    raw: NDArray[Any] | None = None

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
    def presamples(self) -> int:
        """Samples before the trigger (the index where :attr:`time` crosses 0), at least 0."""
        trigger = self.preamble.x_reference - self.preamble.x_origin / self.preamble.x_increment
        return max(0, min(round(trigger), self.volts.size))

    def record(self, t_ns: int | None = None) -> WaveRecord:
        """This record as the daemon publishes it (raw counts with scale and offset).

        Args:
            t_ns: the trigger time, ns since the epoch, when known.
        """
        if self.raw is None:
            return WaveRecord(self.volts, self.sample_interval, presamples=self.presamples,
                              t_ns=t_ns)
        return WaveRecord(self.raw, self.sample_interval, self.scale, self.offset,
                          self.presamples, t_ns)


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
