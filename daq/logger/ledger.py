"""Per stream and publisher session: what is stored, what is a gap, what may be acknowledged.

For every ``(stream, epoch)`` the ledger keeps ``contig`` (every seq up to
it is durable or recorded as a gap: the value acknowledged), the seqs
stored beyond it (arrived out of order, typically resent after a logger
restart), the ranges beyond it already recorded as gaps, and the newest
seq a heartbeat announced. The state is loaded lazily from the store's
``progress`` table (and the stored seqs and gaps), so deduplication
survives a restart of the logger: every ``(stream, epoch, seq)`` is stored
at most once.

A write cycle works on copies (:class:`Cycle`): it offers messages
(duplicates are refused), takes heartbeats, gaps and session changes, and
proposes gaps; only after the sinks committed does :meth:`Ledger.apply`
make the copies the truth. A failed cycle changes nothing.

Gaps are recorded, never invented data, when:

* ``superseded``: a publisher's HELLO leaves an open older session out of
  its ``resume`` list (its data is gone: no spool holds it); whatever that
  session announced or sent beyond what arrived is a gap;
* ``lost before spooling``: CLOSE of a session: what heartbeats announced
  beyond what the sender ever spooled;
* the sender's own reasons (GAP frames): ``spool overflow``, ``refused by
  the logger``, ``spool write failed``;
* ``grace``: a hole (a seq missing below stored or announced ones) stays
  unfilled for ``grace_s`` while the store is healthy and no live sender
  holds the session (a live sender accounts for every seq itself).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from daq.bus.gaps import Gap
from daq.logger.sink import Progress, Store
from daq.messages import Message
from daq.reliable import LOST_BEFORE_SPOOLING

Key = tuple[str, int]

SUPERSEDED = "superseded"
GRACE = "grace"


@dataclass
class StreamState:
    """The ledger entry of one stream in one publisher session.

    ``above`` holds single seqs stored beyond ``contig``; ``spans`` ranges
    beyond it already recorded as gaps (a sender's GAP ahead of what arrived).
    """

    stream: str
    epoch: int
    pub: str
    contig: int = -1
    above: set[int] = field(default_factory=set)
    announced: int = -1
    closed: bool = False
    hole_since: float | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)

    def copy(self) -> StreamState:
        """An independent copy (``above`` and ``spans`` included)."""
        return dataclasses.replace(self, above=set(self.above), spans=list(self.spans))

    @property
    def high(self) -> int:
        """The newest seq known to exist (stored, announced or accounted)."""
        return max(self.contig, self.announced, max(self.above, default=-1),
                   max((last for _, last in self.spans), default=-1))

    def has(self, seq: int) -> bool:
        """True when ``seq`` is stored or accounted as a gap."""
        return seq <= self.contig or seq in self.above or any(
            a <= seq <= b for a, b in self.spans)

    def _advance(self) -> None:
        """Move ``contig`` over whatever is now contiguous; forget what it passed."""
        moved = True
        while moved:
            moved = False
            while self.contig + 1 in self.above:
                self.contig += 1
                self.above.discard(self.contig)
                moved = True
            for first, last in self.spans:
                if first <= self.contig + 1 <= last:
                    self.contig = last
                    moved = True
        if self.spans:
            self.spans = [(a, b) for a, b in self.spans if b > self.contig]
        if self.above and min(self.above) <= self.contig:
            self.above = {s for s in self.above if s > self.contig}

    def add(self, seq: int) -> None:
        """Note ``seq`` as stored and advance ``contig`` over what is now contiguous."""
        if seq == self.contig + 1:
            self.contig = seq
        else:
            self.above.add(seq)
        self._advance()

    def holes(self, upto: int, start: int | None = None) -> list[tuple[int, int]]:
        """Missing ranges (inclusive) in (contig, upto] (from ``start`` on) neither stored nor
        accounted."""
        taken = sorted([(s, s) for s in self.above if s <= upto]
                       + [span for span in self.spans if span[0] <= upto])
        ranges = []
        cursor = max(self.contig + 1, start if start is not None else 0)
        for first, last in taken:
            if last < cursor:
                continue
            if first > cursor:
                ranges.append((cursor, min(first - 1, upto)))
            cursor = max(cursor, last + 1)
            if cursor > upto:
                break
        if cursor <= upto:
            ranges.append((cursor, upto))
        return ranges

    def close_holes(self, upto: int) -> list[tuple[int, int]]:
        """Account every hole up to ``upto`` as a gap; return the ranges."""
        ranges = self.holes(upto)
        self.contig = max(self.contig, upto)
        self._advance()
        return ranges

    def account(self, first: int, last: int) -> list[tuple[int, int]]:
        """Account [first, last] as a gap; return the parts of it that were holes."""
        ranges = self.holes(last, first)
        if first <= self.contig + 1:
            self.contig = max(self.contig, last)
        elif ranges:
            self.spans.append((first, last))
        self._advance()
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
                                    row.announced, row.closed,
                                    spans=self.store.gap_spans_above(stream, epoch, row.contig))
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
            if entry is None:
                row = self.store.load_progress(stream, epoch)
                if row is not None and row.contig >= 0:
                    out[stream] = row.contig
            elif entry.contig >= 0:
                out[stream] = entry.contig
        return out


class Cycle:
    """One write cycle's tentative view of the ledger (see the module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.changed: dict[Key, StreamState] = {}
        self.gaps: list[tuple[Gap, str]] = []

    def state(self, stream: str, epoch: int, pub: str) -> StreamState:
        """This cycle's copy of a stream session's state."""
        key = (stream, epoch)
        found = self.changed.get(key)
        if found is None:
            found = self.changed[key] = self.ledger.get(stream, epoch, pub).copy()
        return found

    def _record(self, state: StreamState, ranges: list[tuple[int, int]], reason: str) -> None:
        for first, last in ranges:
            self.gaps.append((Gap(state.stream, state.epoch, first, last), reason))

    def supersede(self, pub: str, keep: Iterable[int]) -> None:
        """Close every open session of ``pub`` but ``keep`` (a HELLO's current and resumed
        sessions); what they announced or sent beyond what arrived is a gap."""
        if not pub:  # an unnamed publisher cannot be told from another: never supersede
            return
        keep = set(keep)
        older = {(p.stream, p.epoch) for p in self.ledger.store.open_sessions(pub)}
        for (stream, e), state in self.ledger.states.items():
            if state.pub == pub and not state.closed:
                older.add((stream, e))
        for stream, e in sorted(older):
            if e in keep:
                continue
            state = self.state(stream, e, pub)
            if not state.closed:
                self._record(state, state.close_holes(state.high), SUPERSEDED)
                state.closed = True

    def close_session(self, pub: str, epoch: int, spooled: Mapping[str, int]) -> list[str]:
        """CLOSE: the sender holds nothing more of ``epoch``; what heartbeats announced beyond
        what it ever spooled is lost. Return the session's streams (to acknowledge)."""
        streams = set(spooled)
        streams.update(p.stream for p in self.ledger.store.open_sessions(pub) if p.epoch == epoch)
        streams.update(s for (s, e), st in self.ledger.states.items()
                       if e == epoch and st.pub == pub)
        for stream in sorted(streams):
            state = self.state(stream, epoch, pub)
            if state.closed:
                continue
            self._record(state, state.close_holes(max(state.high, spooled.get(stream, -1))),
                         LOST_BEFORE_SPOOLING)
            state.closed = True
        return sorted(streams)

    def gap(self, pub: str, epoch: int, stream: str, first: int, last: int,
            reason: str) -> None:
        """A sender gave [first, last] up (GAP): record the part that is not stored."""
        state = self.state(stream, epoch, pub)
        if state.closed:
            return
        self._record(state, state.account(first, last), reason)

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
        if state.closed or state.has(msg.seq):
            return False
        state.add(msg.seq)
        return True

    def expire(self, held: Callable[[str, int], bool] = lambda pub, epoch: False) -> None:
        """Record holes older than the grace period as gaps (call on ticks).

        A session ``held(pub, epoch)`` by a live sender is left alone: the
        sender resends or reports every seq itself, however long that takes.
        """
        now = self.ledger.clock()
        for key, committed in list(self.ledger.states.items()):
            if committed.closed:
                continue
            high = committed.high
            if high <= committed.contig or held(committed.pub, committed.epoch):
                committed.hole_since = None
                continue
            if committed.hole_since is None:
                committed.hole_since = now
                continue
            if now - committed.hole_since < self.ledger.grace_s:
                continue
            state = self.state(*key, committed.pub)
            self._record(state, state.close_holes(state.high), GRACE)

    def progress(self) -> list[Progress]:
        """Progress rows of every state this cycle touched."""
        return [state.progress() for state in self.changed.values()]
