"""DASTARD records and summaries as qupdaq messages (the bridge's per-record fast path).

A record becomes one ``wave`` message (:mod:`daq.messages`): the channel
name from CHANNELNAMES, the trigger time as the message time, ``t0`` the time
of the first sample, ``dt`` the sample period, ``scale`` DASTARD's volts per
count (``offset`` 0), ``presamples``, and in ``meta`` the trigger frame
index (``frame``) and DASTARD's channel index (``index``). The samples are
a read-only numpy view on the received ZeroMQ frame, never copied.

Summaries are collected per channel and quantity and leave as batches of
``(t, value)`` rows (:func:`daq.messages.scalar_batch`), one message per
stream per batch period.

Both classes are used by one receiving thread each; :meth:`set_names` may
be called from another thread (it swaps one reference).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

import numpy as np

from daq.dastard.errors import DastardFormatError
from daq.dastard.wire import DTYPE_OF_CODE, float32
from daq.messages import Kind, Message, scalar_batch

_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_\-.:@+]")
MAX_NAME = 100


def topic_name(name: str, suffix: str = "") -> str:
    """A DASTARD channel name as a topic element: other characters become ``_``."""
    clean = _BAD_NAME_CHARS.sub("_", name) or "unnamed"
    return clean[: MAX_NAME - len(suffix)] + suffix


class SummaryQuantity(enum.StrEnum):
    """The scalar quantities of a DASTARD pulse summary (stream ``<chan>_<value>``)."""

    PRETRIG_MEAN = "pretrig_mean"
    PEAK = "peak"
    PULSE_RMS = "pulse_rms"
    PULSE_AVERAGE = "pulse_average"
    RESIDUAL_STD = "residual_std"


#: In the order of the summary header's float fields (header fields 4..8).
SUMMARY_QUANTITIES = tuple(SummaryQuantity)


class RecordTranslator:
    """Builds the ``wave`` message of each record of one port.

    Args:
        source: the topic source.
        suffix: appended to each channel name (``"_secondary"`` for base+3).
    """

    def __init__(self, source: str, suffix: str = "") -> None:
        self.source = source
        self.suffix = suffix
        self._names: tuple[str, ...] = ()
        # float32 header values -> clean floats, per raw value (they rarely change)
        self._clean: dict[float, float] = {}

    def set_names(self, names: Sequence[str]) -> None:
        """Take DASTARD's channel names (index -> name)."""
        self._names = tuple(topic_name(n, self.suffix) for n in names)

    @property
    def names(self) -> tuple[str, ...]:
        """The topic channel names, by channel index."""
        return self._names

    def clean(self, raw: float) -> float:
        """A float32 header value as the decimal it was set to (cached)."""
        value = self._clean.get(raw)
        if value is None:
            if len(self._clean) > 4096:
                self._clean.clear()
            value = self._clean[raw] = float32(raw)
        return value

    def message(
        self, fields: tuple[int, int, int, int, int, float, float, int, int], buffer: memoryview,
    ) -> Message | None:
        """The message of one record; ``None`` when its channel has no name yet.

        Args:
            fields: the unpacked header (:func:`daq.dastard.wire.unpack_record_header`).
            buffer: the sample frame (a zero-copy view).

        Raises:
            DastardFormatError: the sample frame does not hold the header's samples.
        """
        channel, _, code, presamples, samples, period, vpa, trigger_ns, frame = fields
        names = self._names
        if channel >= len(names):
            return None
        dtype = DTYPE_OF_CODE[code]
        if len(buffer) != samples * dtype.itemsize:
            raise DastardFormatError("record", f"{len(buffer)} sample bytes, the header says "
                                     f"{samples} x {dtype}")
        data = np.frombuffer(buffer, dtype=dtype)
        data.flags.writeable = False  # a view on the received frame, shared downstream
        clean = self._clean
        dt = clean.get(period) or self.clean(period)
        scale = clean.get(vpa) or self.clean(vpa)
        # Built directly (not through messages.waveform): the names were checked once, and
        # this runs 25 000 times a second.
        return Message(Kind.WAVE, self.source, names[channel], t=trigger_ns, units="V",
                       data=data,
                       meta={"dt": dt, "t0": trigger_ns - round(presamples * dt * 1e9),
                             "scale": scale, "offset": 0.0, "presamples": presamples,
                             "frame": frame, "index": channel})


class SummaryBatcher:
    """Collects summaries per channel and quantity; :meth:`flush` makes the messages.

    Args:
        source: the topic source.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._names: tuple[str, ...] = ()
        self._times: dict[int, list[int]] = {}
        self._values: dict[int, list[tuple[float, ...]]] = {}
        self._coefs: dict[int, list[np.ndarray]] = {}
        self.rows = 0

    def set_names(self, names: Sequence[str]) -> None:
        """Take DASTARD's channel names (index -> name)."""
        self._names = tuple(topic_name(n) for n in names)

    def add(
        self, fields: tuple[int, int, int, int, float, float, float, float, float, int, int],
        coefficients: np.ndarray,
    ) -> bool:
        """File one summary; False when its channel has no name yet."""
        channel = fields[0]
        if channel >= len(self._names):
            return False
        times = self._times.get(channel)
        if times is None:
            times = self._times[channel] = []
            self._values[channel] = []
            self._coefs[channel] = []
        times.append(fields[9])
        self._values[channel].append(fields[4:9])
        if len(coefficients):
            self._coefs[channel].append(coefficients)
        self.rows += 1
        return True

    def flush(self) -> list[Message]:
        """One ``data`` message per stream with the rows collected since the last flush."""
        out: list[Message] = []
        names = self._names
        for channel, times in self._times.items():
            if not times or channel >= len(names):
                continue
            name = names[channel]
            values = np.asarray(self._values[channel], dtype=np.float64)
            t = np.asarray(times, dtype=np.int64)
            for column, quantity in enumerate(SUMMARY_QUANTITIES):
                out.append(scalar_batch(self.source, f"{name}_{quantity.value}", t,
                                        values[:, column], units="counts",
                                        meta={"index": channel}))
            coefs = self._coefs[channel]
            if len(coefs) == len(times):
                try:
                    matrix = np.stack(coefs)
                except ValueError:  # the basis changed size within the batch
                    matrix = None
                if matrix is not None:
                    for k in range(matrix.shape[1]):
                        out.append(scalar_batch(self.source, f"{name}_coef{k}", t,
                                                matrix[:, k], meta={"index": channel}))
            times.clear()
            self._values[channel].clear()
            coefs.clear()
        return out
