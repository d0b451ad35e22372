"""What an archive holds, read straight from the logger's SQLite file, for loss checks.

For every stream and publisher session: the message seqs stored (scalar
messages, events, record index) and the gaps recorded. A seq is *accounted*
when it is stored or inside a recorded gap; the archive is whole when every
seq from 0 to the newest one known is accounted, and honest when no gap
covers a stored seq.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Session:
    """One stream in one publisher session."""

    stream: str
    epoch: int
    stored: set[int] = field(default_factory=set)
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    announced: int = -1

    @property
    def newest(self) -> int:
        return max([self.announced, *self.stored, *(last for _, last, _ in self.gaps)],
                   default=-1)

    def gap_seqs(self) -> set[int]:
        return {s for first, last, _ in self.gaps for s in range(first, last + 1)}

    def unaccounted(self) -> set[int]:
        """Seqs neither stored nor in a recorded gap (silently lost)."""
        return set(range(self.newest + 1)) - self.stored - self.gap_seqs()

    def gaps_over_stored(self) -> set[int]:
        """Seqs recorded as lost although they are stored (a dishonest gap)."""
        return self.stored & self.gap_seqs()


def read_archive(db: Path, prefix: str = "") -> dict[tuple[str, int], Session]:
    """Every (stream, epoch) whose stream starts with ``prefix``."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sessions: dict[tuple[str, int], Session] = {}

        def get(stream: str, epoch: int) -> Session:
            return sessions.setdefault((stream, epoch), Session(stream, epoch))

        queries = [
            "SELECT c.stream, m.epoch, m.seq FROM sample_messages m JOIN channels c "
            "ON c.id = m.channel_id",
            "SELECT c.stream, e.epoch, e.seq FROM events e JOIN channels c ON c.id = e.channel_id",
            "SELECT c.stream, r.epoch, r.seq FROM records r JOIN channels c "
            "ON c.id = r.channel_id",
        ]
        for query in queries:
            for stream, epoch, seq in con.execute(query):
                if stream.startswith(prefix):
                    get(stream, epoch).stored.add(seq)
        for stream, epoch, first, last, reason in con.execute(
                "SELECT c.stream, g.epoch, g.seq_first, g.seq_last, g.reason FROM gaps g "
                "JOIN channels c ON c.id = g.channel_id"):
            if stream.startswith(prefix):
                get(stream, epoch).gaps.append((first, last, reason))
        for stream, epoch, announced in con.execute(
                "SELECT c.stream, p.epoch, p.announced FROM progress p JOIN channels c "
                "ON c.id = p.channel_id"):
            if stream.startswith(prefix):
                session = get(stream, epoch)
                session.announced = max(session.announced, announced)
        return sessions
    finally:
        con.close()
