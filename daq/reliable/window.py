"""The sender's window: the few spooled messages held in memory for transmission.

Everything the logger has not acknowledged is in the spool on disk; only a
window of it (``max_messages``, ``max_bytes``) is in memory, in spool
order: unsent, then in flight once transmitted. New messages join the
window straight from the spool write when nothing older waits on disk
(the usual case: no re-read); otherwise :meth:`Window.fill` reads the next
ones from the spool as acknowledgements make room. :meth:`Window.clear`
(after a stall) forgets it all, and filling starts again at the oldest
unacknowledged message.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping

from daq.reliable.spool import Entry, Key, Spool


class Window:
    """Spooled messages in memory for transmission (see the module docstring).

    Args:
        spool: where the messages are, and are read from.
        max_messages: messages held at most (and so in flight at most).
        max_bytes: bytes held at most.
    """

    def __init__(self, spool: Spool, max_messages: int, max_bytes: int) -> None:
        self.spool = spool
        self.max_messages = max(1, max_messages)
        self.max_bytes = max(1, max_bytes)
        self.unsent: deque[Entry] = deque()
        self.inflight: dict[int, Entry] = {}
        self._by_key: dict[Key, deque[Entry]] = defaultdict(deque)
        self.count = 0
        self.nbytes = 0
        #: The newest spool id taken into the window (or passed over) in this pass.
        self.cursor = spool.last_id if not spool.count else 0

    @property
    def backlog(self) -> bool:
        """True when spooled messages wait on disk beyond the window."""
        return self.cursor < self.spool.last_id

    def room(self) -> bool:
        return self.count < self.max_messages and self.nbytes < self.max_bytes

    def admit(self, entry: Entry) -> None:
        """Take ``entry`` (the next in spool order) into the window, unsent."""
        self.unsent.append(entry)
        self._by_key[entry.key].append(entry)
        self.count += 1
        self.nbytes += entry.nbytes
        self.cursor = max(self.cursor, entry.id)

    def _drop(self, entry: Entry) -> None:
        if not entry.gone:
            entry.gone = True
            self.count -= 1
            self.nbytes -= entry.nbytes
            self.inflight.pop(entry.id, None)

    def fill(self, acked: Mapping[Key, int]) -> None:
        """Read the next spooled messages while there is room (skipping acknowledged ones)."""
        while self.room() and self.backlog:
            entries = self.spool.read(self.cursor, self.max_messages - self.count,
                                      self.max_bytes - self.nbytes)
            if not entries:
                self.cursor = self.spool.last_id
                return
            for entry in entries:
                self.cursor = entry.id
                if entry.seq > acked.get(entry.key, -1):
                    self.admit(entry)

    def next_unsent(self) -> Entry | None:
        """The oldest message not yet transmitted, if any."""
        while self.unsent and self.unsent[0].gone:
            self.unsent.popleft()
        return self.unsent[0] if self.unsent else None

    def sent(self, entry: Entry) -> None:
        """``entry`` (from :meth:`next_unsent`) was transmitted: it is in flight."""
        self.unsent.popleft()
        self.inflight[entry.id] = entry

    def unsend(self, entries: list[Entry]) -> None:
        """``entries`` (just passed to :meth:`sent`, in order) were not transmitted after all."""
        for entry in entries:
            self.inflight.pop(entry.id, None)
        self.unsent.extendleft(reversed(entries))

    def acked(self, key: Key, seq: int) -> None:
        """Everything of ``key`` up to ``seq`` is acknowledged: out of the window."""
        queue = self._by_key.get(key)
        while queue and queue[0].seq <= seq:
            self._drop(queue.popleft())

    def discard(self, key: Key, first: int, last: int) -> None:
        """Take seqs ``first``..``last`` of ``key`` out (parked: never sent again)."""
        for entry in self._by_key.get(key, ()):
            if first <= entry.seq <= last:
                self._drop(entry)

    def forget_upto(self, max_id: int) -> None:
        """Take out every message up to spool id ``max_id`` (dropped by the spool's bound)."""
        for queue in self._by_key.values():
            while queue and queue[0].id <= max_id:
                self._drop(queue.popleft())
        self.cursor = max(self.cursor, max_id)

    def clear(self) -> None:
        """Forget the window; filling starts again at the oldest spooled message."""
        for queue in self._by_key.values():
            for entry in queue:
                entry.gone = True
        self.unsent.clear()
        self.inflight.clear()
        self._by_key.clear()
        self.count = self.nbytes = 0
        self.cursor = 0
