"""Per stream and publisher session: what is stored, what is a gap, what may be acknowledged.

For every ``(stream, epoch)`` the ledger keeps ``contig`` (every seq up to
it is durable or recorded as a gap: the value acknowledged), the seqs
stored beyond it (arrived out of order, typically resent after a logger
restart) and the newest seq a heartbeat announced. The state is loaded
lazily from the store's ``progress`` table (and the stored seqs), so
deduplication survives a restart of the logger.

A write cycle works on copies (:class:`Cycle`): it offers messages
(duplicates are refused), takes heartbeats and HELLOs, and proposes gaps;
only after the sinks committed does :meth:`Ledger.apply` make the copies
the truth. A failed cycle changes nothing.

Gaps are recorded, never invented data, when:

* ``superseded``: a publisher with the same name starts a newer session;
  whatever its old session announced or sent beyond what arrived is a gap;
* ``grace``: a hole (a seq missing below stored or announced ones) stays
  unfilled for ``grace_s`` while the store is healthy.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from daq.bus.gaps import Gap
from daq.logger.sink import Progress, Store
from daq.messages import Message

Key = tuple[str, int]


@dataclass
class StreamState:
    """The ledger entry of one stream in one publisher session."""

    stream: str
    epoch: int
    pub: str
    contig: int = -1
    above: set[int] = field(default_factory=set)
    announced: int = -1
    closed: bool = False
    hole_since: float | None = None

    def copy(self) -> StreamState:
        """An independent copy (the ``above`` set included)."""
        return dataclasses.replace(self, above=set(self.above))

    @property
    def high(self) -> int:
        """The newest seq known to exist (stored, announced or accounted)."""
        return max(self.contig, self.announced, max(self.above, default=-1))

    def add(self, seq: int) -> None:
        """Note ``seq`` as stored and advance ``contig`` over what is now contiguous."""
        if seq == self.contig + 1:
            self.contig = seq
        else:
            self.above.add(seq)
        while self.above and self.contig + 1 in self.above:
            self.contig += 1
            self.above.discard(self.contig)

    def holes(self, upto: int) -> list[tuple[int, int]]:
        """Missing ranges (inclusive) in (contig, upto] that are not stored."""
        ranges = []
        start = self.contig + 1
        for seq in sorted(s for s in self.above if s <= upto):
            if seq > start:
                ranges.append((start, seq - 1))
            start = seq + 1
        if start <= upto:
            ranges.append((start, upto))
        return ranges

    def close_holes(self, upto: int) -> list[tuple[int, int]]:
        """Account every hole up to ``upto`` as a gap; return the ranges."""
        ranges = self.holes(upto)
        self.contig = max(self.contig, upto)
        self.above = {s for s in self.above if s > self.contig}
        while self.above and self.contig + 1 in self.above:
            self.contig += 1
            self.above.discard(self.contig)
        return ranges

    def progress(self) -> Progress:
        """The row the store keeps for this entry."""
        return Progress(self.stream, self.epoch, self.pub, self.contig, self.announced,
                        self.closed)


class Ledger:
    """The deduplication and gap state of every active stream session.

    Args:
        store: where the state is loaded from (and, via batches, saved to).
        grace_s: how long a hole may stay open before it is recorded as a gap.
        clock: monotonic clock (tests may pass their own).
    """

    def __init__(self, store: Store, grace_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.grace_s = grace_s
        self.clock = clock
        self.states: dict[Key, StreamState] = {}
        self.latest_epoch: dict[str, int] = {}

    def get(self, stream: str, epoch: int, pub: str) -> StreamState:
        """The committed state of a stream session, loaded from the store on first use."""
        key = (stream, epoch)
        state = self.states.get(key)
        if state is None:
            row = self.store.load_progress(stream, epoch)
            if row is None:
                state = StreamState(stream, epoch, pub)
            else:
                state = StreamState(stream, epoch, row.pub or pub, row.contig,
                                    self.store.stored_seqs_above(stream, epoch, row.contig),
                                    row.announced, row.closed)
            self.states[key] = state
        return state

    def begin(self) -> Cycle:
        """Start a write cycle."""
        return Cycle(self)

    def apply(self, cycle: Cycle) -> None:
        """Make a committed cycle's states the truth; forget closed sessions."""
        for key, new in cycle.changed.items():
            old = self.states.get(key)
            if old is not None and new.contig > old.contig:
                new.hole_since = None  # progress: a hole timer starts afresh
            elif old is not None:
                new.hole_since = old.hole_since
            if new.closed:
                self.states.pop(key, None)
            else:
                self.states[key] = new
        for pub, epoch in cycle.latest.items():
            self.latest_epoch[pub] = max(epoch, self.latest_epoch.get(pub, epoch))

    def reset_timers(self) -> None:
        """Restart every hole timer (the store failed: nothing could have been filled)."""
        for state in self.states.values():
            state.hole_since = None

    def acked(self, epoch: int, streams: Iterable[str] | None = None) -> dict[str, int]:
        """``{stream: contig}`` to acknowledge for ``epoch`` (all of its streams by default)."""
        if streams is None:
            found = {s: c for s, c in self.store.epoch_progress(epoch).items() if c >= 0}
            for (stream, e), state in self.states.items():
                if e == epoch and state.contig >= 0:
                    found[stream] = state.contig
            return found
        out = {}
        for stream in streams:
            entry = self.states.get((stream, epoch))
            if entry is not None and entry.contig >= 0:
                out[stream] = entry.contig
        return out


class Cycle:
    """One write cycle's tentative view of the ledger (see the module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.changed: dict[Key, StreamState] = {}
        self.gaps: list[tuple[Gap, str]] = []
        self.latest: dict[str, int] = {}

    def state(self, stream: str, epoch: int, pub: str) -> StreamState:
        """This cycle's copy of a stream session's state."""
        key = (stream, epoch)
        found = self.changed.get(key)
        if found is None:
            found = self.changed[key] = self.ledger.get(stream, epoch, pub).copy()
        return found

    def session(self, pub: str, epoch: int) -> None:
        """A publisher session was seen (HELLO, HB or MSG): supersede its older sessions."""
        if not pub:  # an unnamed publisher cannot be told from another: never supersede
            return
        known = self.latest.get(pub, self.ledger.latest_epoch.get(pub))
        if known is not None and epoch <= known:
            return
        self.latest[pub] = epoch
        older = {(p.stream, p.epoch): p for p in self.ledger.store.open_sessions(pub, epoch)}
        for (stream, e), state in self.ledger.states.items():
            if state.pub == pub and e < epoch and not state.closed:
                older[(stream, e)] = state.progress()
        for stream, e in older:
            state = self.state(stream, e, pub)
            if state.closed:
                continue
            for first, last in state.close_holes(state.high):
                self.gaps.append((Gap(stream, e, first, last), "superseded"))
            state.closed = True

    def heartbeat(self, pub: str, epoch: int, streams: dict[str, int]) -> list[str]:
        """A heartbeat names the newest seq of each stream; return the streams it touched."""
        touched = []
        for stream, last in streams.items():
            state = self.state(stream, epoch, pub)
            if state.closed:
                continue
            if last > state.announced:
                state.announced = last
            touched.append(stream)
        return touched

    def superseded(self, msg: Message) -> bool:
        """True when ``msg`` belongs to a session already closed (superseded or given up)."""
        return self.state(msg.stream, msg.epoch, msg.pub).closed

    def offer(self, msg: Message) -> bool:
        """True when ``msg`` is new to the store (then it must be written in this cycle)."""
        state = self.state(msg.stream, msg.epoch, msg.pub)
        if state.closed or msg.seq <= state.contig or msg.seq in state.above:
            return False
        state.add(msg.seq)
        return True

    def expire(self) -> None:
        """Record holes older than the grace period as gaps (call on ticks)."""
        now = self.ledger.clock()
        for key, committed in list(self.ledger.states.items()):
            if committed.closed:
                continue
            high = committed.high
            if high <= committed.contig:
                committed.hole_since = None
                continue
            if committed.hole_since is None:
                committed.hole_since = now
                continue
            if now - committed.hole_since < self.ledger.grace_s:
                continue
            state = self.state(*key, committed.pub)
            for first, last in state.close_holes(state.high):
                self.gaps.append((Gap(key[0], key[1], first, last), "grace"))

    def progress(self) -> list[Progress]:
        """Progress rows of every state this cycle touched."""
        return [state.progress() for state in self.changed.values()]
