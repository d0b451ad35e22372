"""Scalar samples of one stream, published within a few milliseconds, as one message.

A ``data`` message carries rows of ``(t, value)``: one sample or many share
the format (:data:`daq.messages.SAMPLE_DTYPE`). :class:`ScalarBatcher` holds
the ``data`` messages of each stream for up to ``window_s`` and merges them
into one message of all their rows, so that a fast stream costs one header,
one sequence number and one send per batch instead of per sample. Samples
merge only when units, quality and meta are the same (so nothing a sample
said is lost); a sample that differs first sends its stream's held batch, so
the order within a stream is kept, and an event (status, alarm, audit, run)
first sends every held batch, so an alarm never overtakes the sample that
raised it. Waveform records pass straight through. Plain Python: the
owner calls :meth:`add` for every message and :meth:`due` from its loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from daq.messages import Kind, Message


@dataclass
class _Held:
    first: Message
    since: float
    parts: list[np.ndarray] = field(default_factory=list)
    rows: int = 0


class ScalarBatcher:
    """Merges the ``data`` messages of each stream within a time window.

    Args:
        window_s: a batch leaves at most this long after its first sample came.
        max_rows: a batch leaves once it holds this many rows.

    Times are ``time.monotonic()`` seconds; :meth:`add` reads the clock itself unless
    the caller passes ``now``.
    """

    def __init__(self, window_s: float, max_rows: int = 1000) -> None:
        if not window_s > 0 or max_rows < 1:
            raise ValueError("a batch window must be > 0 s and hold at least one row")
        self.window_s = window_s
        self.max_rows = max_rows
        self._held: dict[str, _Held] = {}
        self._oldest = float("inf")
        self.merged = 0  # messages that went out inside another one

    @property
    def pending(self) -> int:
        """Streams with a batch held."""
        return len(self._held)

    def next_due(self) -> float:
        """When the oldest held batch is due (monotonic s; inf when none is held)."""
        return self._oldest + self.window_s

    def add(self, msg: Message, now: float | None = None) -> list[Message]:
        """Take ``msg``; return what must be sent now, in order (possibly ``msg`` itself)."""
        if msg.kind is Kind.WAVE:  # records: no scalar stream of theirs is held
            return [msg]
        if msg.kind is not Kind.DATA or msg.data is None or not len(msg.data):
            # An event (status, alarm, audit, run) may be about the samples before it: they
            # all leave first, so every receiver sees them in the order they came.
            return [*self.flush(), msg] if self._held else [msg]
        stream = msg.stream
        held = self._held.get(stream)
        out: list[Message] = []
        if held is not None:
            first = held.first
            if (first.units != msg.units or first.quality != msg.quality
                    or first.meta != msg.meta):
                out.append(self._merge(self._held.pop(stream)))
                held = None
        if held is None:
            if now is None:
                now = time.monotonic()
            held = self._held[stream] = _Held(msg, now)
            self._oldest = min(self._oldest, now)
        held.parts.append(msg.data)
        held.rows += len(msg.data)
        if held.rows >= self.max_rows:
            out.append(self._merge(self._held.pop(stream)))
        return out

    def due(self, now: float) -> list[Message]:
        """The batches whose window has passed."""
        if now < self._oldest + self.window_s:
            return []
        limit = now - self.window_s
        out = [self._merge(self._held.pop(stream))
               for stream, held in list(self._held.items()) if held.since <= limit]
        self._oldest = min((h.since for h in self._held.values()), default=float("inf"))
        return out

    def flush(self) -> list[Message]:
        """Every held batch, now."""
        out = [self._merge(held) for held in self._held.values()]
        self._held.clear()
        self._oldest = float("inf")
        return out

    def _merge(self, held: _Held) -> Message:
        first = held.first
        if len(held.parts) == 1:
            return first
        self.merged += len(held.parts) - 1
        data = np.concatenate(held.parts)
        return Message(Kind.DATA, first.source, first.channel, t=int(data["t"][0]),
                       units=first.units, quality=first.quality, data=data, meta=first.meta)
