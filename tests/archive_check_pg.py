"""What a PostgreSQL archive holds, per stream and publisher session, for loss checks.

The PostgreSQL twin of :func:`tests.archive_check.read_archive` (same tables,
same :class:`~tests.archive_check.Session` books: stored seqs, recorded gaps,
the newest seq announced), plus what only a loss check across publishers
needs: which publisher each session belongs to, and how many sample rows
each session's scalar messages should and do have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.archive_check import Session


@dataclass
class PgSession(Session):
    """A :class:`Session` with its publisher and its sample rows (expected and stored)."""

    pub: str = ""
    samples_expected: int = 0  # the sum of the scalar messages' row counts (n)
    samples_stored: int = 0  # rows in the samples table
    duplicate_rows: int = 0  # (seq, idx) pairs stored more than once


@dataclass
class Archive:
    """Every session of an archive, and the publishers they belong to."""

    sessions: dict[tuple[str, int], PgSession] = field(default_factory=dict)

    def of(self, pub: str) -> list[PgSession]:
        """The sessions (stream, epoch) of one publisher."""
        return [s for s in self.sessions.values() if s.pub == pub]


def read_archive_pg(dsn: str, prefix: str = "") -> Archive:
    """Every (stream, epoch) whose stream starts with ``prefix``, read through ``dsn``."""
    import psycopg

    archive = Archive()

    def get(stream: str, epoch: int) -> PgSession:
        return archive.sessions.setdefault((stream, epoch), PgSession(stream, epoch))

    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("sample_messages", "events", "records"):
            for stream, epoch, seq in conn.execute(
                    f"SELECT c.stream, m.epoch, m.seq FROM {table} m "
                    "JOIN channels c ON c.id = m.channel_id"):
                if stream.startswith(prefix):
                    get(stream, epoch).stored.add(seq)
        for stream, epoch, first, last, reason in conn.execute(
                "SELECT c.stream, g.epoch, g.seq_first, g.seq_last, g.reason FROM gaps g "
                "JOIN channels c ON c.id = g.channel_id"):
            if stream.startswith(prefix):
                get(stream, epoch).gaps.append((first, last, reason))
        publishers: dict[int, str] = {}  # a session (epoch) is one publisher's, all streams
        for stream, epoch, pub, announced in conn.execute(
                "SELECT c.stream, p.epoch, p.pub, p.announced FROM progress p "
                "JOIN channels c ON c.id = p.channel_id"):
            publishers[epoch] = pub
            if stream.startswith(prefix):
                session = get(stream, epoch)
                session.announced = max(session.announced, announced)
        for stream, epoch, expected in conn.execute(
                "SELECT c.stream, m.epoch, SUM(m.n) FROM sample_messages m "
                "JOIN channels c ON c.id = m.channel_id GROUP BY c.stream, m.epoch"):
            if stream.startswith(prefix):
                get(stream, epoch).samples_expected = int(expected)
        for stream, epoch, rows, distinct in conn.execute(
                "SELECT c.stream, s.epoch, COUNT(*), COUNT(DISTINCT (s.seq, s.idx)) "
                "FROM samples s JOIN channels c ON c.id = s.channel_id "
                "GROUP BY c.stream, s.epoch"):
            if stream.startswith(prefix):
                session = get(stream, epoch)
                session.samples_stored = int(rows)
                session.duplicate_rows = int(rows) - int(distinct)
    for (_, epoch), session in archive.sessions.items():
        session.pub = publishers.get(epoch, "")
    return archive
