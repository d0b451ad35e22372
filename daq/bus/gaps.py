"""Per-stream sequence bookkeeping: every lost message is counted, none silently.

Plain Python, no sockets, so it is testable alone and reusable by the
logger. A stream is identified by its name; a publisher restart shows as a
new ``epoch`` (its sequence numbers start again at 0) and is reported as a
restart, not as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StreamState:
    """What is known of one stream: its publisher session and the last seq seen."""

    epoch: int
    last_seq: int
    received: int = 0
    missed: int = 0


@dataclass(frozen=True)
class Gap:
    """Messages ``first``..``last`` (inclusive) of ``stream`` in ``epoch`` never arrived."""

    stream: str
    epoch: int
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass
class GapTracker:
    """Counts received and missed messages per stream from their sequence numbers.

    Call :meth:`observe` for every received message and :meth:`observe_tail`
    with the last seq a publisher's heartbeat announces, so losses at the end
    of a burst are seen too. ``gaps`` keeps the ranges (up to ``max_gaps``
    of them; ``missed`` always counts all).
    """

    max_gaps: int = 10_000
    streams: dict[str, StreamState] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    restarts: int = 0
    duplicates: int = 0
    missed: int = 0  # over all streams and sessions
    received: int = 0

    def observe(self, stream: str, epoch: int, seq: int) -> int:
        """Record one received message; return how many were missed just before it."""
        state = self.streams.get(stream)
        if state is None or epoch != state.epoch:
            if state is not None:
                self.restarts += 1
            # The first message we see of a session may not be seq 0 (we joined late):
            # what came before we never promised to see, so it is not a gap.
            self.streams[stream] = StreamState(epoch=epoch, last_seq=seq, received=1)
            self.received += 1
            return 0
        if seq <= state.last_seq:
            self.duplicates += 1
            return 0
        missed = seq - state.last_seq - 1
        if missed:
            self._record(stream, epoch, state.last_seq + 1, seq - 1)
            state.missed += missed
            self.missed += missed
        state.last_seq = seq
        state.received += 1
        self.received += 1
        return missed

    def observe_tail(self, stream: str, epoch: int, last_seq: int) -> int:
        """A heartbeat says ``last_seq`` was the newest sent; count what never came."""
        state = self.streams.get(stream)
        if state is None or epoch != state.epoch or last_seq <= state.last_seq:
            return 0
        missed = last_seq - state.last_seq
        self._record(stream, epoch, state.last_seq + 1, last_seq)
        state.missed += missed
        self.missed += missed
        state.last_seq = last_seq
        return missed

    def _record(self, stream: str, epoch: int, first: int, last: int) -> None:
        if len(self.gaps) < self.max_gaps:
            self.gaps.append(Gap(stream, epoch, first, last))
