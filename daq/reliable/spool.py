"""The sender's spool: every stamped message on disk until the logger acknowledges it.

One SQLite database in WAL mode (``spool.sqlite`` in the daemon's state
directory; ``None`` keeps it in memory, for tests and tools), and the
payloads in append-only segment files beside it (``spool.sqlite.payloads/``)::

    messages  id (spool order), epoch, stream, seq, t_ns, size, header, and the payload:
              seg, poff, plen (where in which segment file; plen -1: none), or in
              ``payload`` (a spool in memory, or one written before segment files)
    streams   (epoch, stream) -> the newest seq ever spooled (what CLOSE reports)
    sessions  epoch -> publisher name: sessions not yet closed at the logger
    gaps      ranges given up (overflow, refused) that the logger has not acknowledged
    parked    messages the logger refused (kept for inspection, bounded)

:meth:`Spool.write` does one transaction per outbound batch: the new
messages, the deletion of what was acknowledged since the last one, and,
when the spool is over its bound, the deletion of the oldest messages with
a gap notice per dropped range (reason ``spool overflow``). The sender
sends a message only after the transaction holding it has committed, so
what the logger has seen is always on disk here first.

Why segment files: a 16 KiB record through SQLite is written twice (WAL,
then checkpoint) and costs a BLOB row; appended to a segment file with one
``writev`` per batch it is written once, straight from the message's buffer,
and the spool row stays small. A segment file is deleted once no spooled
message points into it (segments follow spool order, so acknowledgements
free them oldest first); a new one starts at every open and every
:data:`SEGMENT_BYTES`.

Durability: ``synchronous=NORMAL`` (default) survives a kill -9 of the
daemon (the WAL and the segment file are in the OS's hands at every commit:
payloads are written before the rows that point at them); ``FULL`` also
survives a power cut, at one fsync of each per outbound batch.

A lock file (``spool.sqlite.lock``) keeps a second process off the same
spool: two daemons sharing a name and state directory would otherwise
resend each other's data.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from daq.errors import BusError
from daq.reliable.protocol import MSG, PROTOCOL, GapReason

Key = tuple[int, str]

#: A new payload segment file once the current one is this big.
SEGMENT_BYTES = 64 << 20
#: iovecs per writev (the POSIX minimum of IOV_MAX).
_IOV_MAX = 1024

_DDL = [
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " epoch INTEGER NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,"
    " t_ns INTEGER NOT NULL, size INTEGER NOT NULL, header BLOB NOT NULL, payload BLOB,"
    " seg INTEGER, poff INTEGER, plen INTEGER)",
    "CREATE INDEX IF NOT EXISTS messages_key ON messages (epoch, stream, seq)",
    "CREATE TABLE IF NOT EXISTS streams (epoch INTEGER NOT NULL, stream TEXT NOT NULL,"
    " last_seq INTEGER NOT NULL, PRIMARY KEY (epoch, stream))",
    "CREATE TABLE IF NOT EXISTS sessions (epoch INTEGER PRIMARY KEY, pub TEXT NOT NULL,"
    " opened_ns INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gaps (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " epoch INTEGER NOT NULL, stream TEXT NOT NULL, first INTEGER NOT NULL,"
    " last INTEGER NOT NULL, reason TEXT NOT NULL, t_ns INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS parked (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " epoch INTEGER NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, why TEXT NOT NULL,"
    " t_ns INTEGER NOT NULL, header BLOB NOT NULL, payload BLOB)",
]


class SpoolBusy(BusError):
    """Another process holds the spool (two daemons with one name and state directory?)."""


@dataclass(frozen=True)
class SpoolLimits:
    """The spool's bound and durability.

    Attributes:
        max_bytes: message bytes (topic + header + payload) the spool may hold
            (default 1 GiB). Beyond it the oldest messages are dropped, 1 % of
            the bound at a time, each dropped range reported as a gap.
        max_messages: messages the spool may hold (default 5 million).
        synchronous: ``NORMAL`` survives a kill -9, ``FULL`` also a power cut.
        max_parked: refused messages kept for inspection (the oldest go first).
    """

    max_bytes: int = 1 << 30
    max_messages: int = 5_000_000
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    max_parked: int = 10_000

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_messages < 1:
            raise ValueError("spool limits must be >= 1")
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {self.synchronous!r}")


@dataclass(slots=True, eq=False)
class Entry:
    """One spooled message: its place in the spool, its identity and its wire frames."""

    id: int
    epoch: int
    stream: str
    seq: int
    t_ns: int
    header: bytes
    payload: bytes | memoryview | None
    gone: bool = False  # acknowledged or dropped while in the sender's window
    #: Topic + header + payload bytes (computed once: the window asks often).
    nbytes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.nbytes = len(self.stream) + len(self.header) + (
            len(self.payload) if self.payload is not None else 0)

    @property
    def key(self) -> Key:
        return (self.epoch, self.stream)

    def frames(self) -> list[bytes | memoryview]:
        """The MSG frame set of this message."""
        frames: list[bytes | memoryview] = [PROTOCOL, MSG, self.stream.encode("ascii"),
                                            self.header]
        if self.payload is not None:
            frames.append(self.payload)
        return frames


@dataclass(frozen=True)
class GapNotice:
    """A range of one stream session the sender gave up; kept until the logger acknowledges it."""

    epoch: int
    stream: str
    first: int
    last: int
    reason: str


@dataclass(frozen=True)
class Dropped:
    """What one overflow dropped: every id up to ``max_id`` and the gaps to report."""

    max_id: int
    count: int
    notices: list[GapNotice]


class Spool:
    """The spool (see the module docstring). Owned by one thread.

    Args:
        path: the database file, or None for a spool in memory.
        limits: the bound and durability.

    Raises:
        SpoolBusy: another process holds the spool.
        sqlite3.Error, OSError: the spool cannot be opened.
    """

    def __init__(self, path: Path | None, limits: SpoolLimits | None = None) -> None:
        self.path = path
        self.limits = limits or SpoolLimits()
        self._lock: IO[bytes] | None = None
        self._segdir = None if path is None else path.with_name(path.name + ".payloads")
        self._seg_fd: int | None = None
        self._seg_no = 0
        self._seg_size = 0
        self._readers: dict[int, int] = {}  # segment -> read descriptor
        #: Payload segments and the spool ids (first, last) whose payloads they hold.
        self._segments: dict[int, list[int]] = {}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(path.with_name(path.name + ".lock"))
        try:
            self._conn = sqlite3.connect(":memory:" if path is None else str(path),
                                         isolation_level=None, check_same_thread=False)
        except BaseException:
            self._unlock()
            raise
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        conn = self._conn
        if self.path is not None:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: cannot switch to WAL ({mode})")
        conn.execute(f"PRAGMA synchronous = {self.limits.synchronous}")
        conn.execute("BEGIN IMMEDIATE")
        for statement in _DDL:
            conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
        for column in ("seg", "poff", "plen"):  # a spool written before segment files
            if column not in columns:
                conn.execute(f"ALTER TABLE messages ADD COLUMN {column} INTEGER")
        conn.execute("COMMIT")
        if self._segdir is not None:
            self._segdir.mkdir(exist_ok=True)
            for seg, first, last in conn.execute(
                    "SELECT seg, MIN(id), MAX(id) FROM messages WHERE seg IS NOT NULL"
                    " GROUP BY seg"):
                self._segments[int(seg)] = [int(first), int(last)]
            known = [int(f.stem) for f in self._segdir.glob("*.seg") if f.stem.isdigit()]
            for number in known:  # files no row points into (acknowledged before a crash)
                if number not in self._segments:
                    (self._segdir / f"{number:08d}.seg").unlink(missing_ok=True)
            self._seg_no = max([*known, *self._segments, 0])
        self.counts: dict[int, int] = {}
        self.nbytes = 0
        for epoch, n, size in conn.execute(
                "SELECT epoch, COUNT(*), COALESCE(SUM(size), 0) FROM messages GROUP BY epoch"):
            self.counts[int(epoch)] = int(n)
            self.nbytes += int(size)
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        self.last_id = int(row[0]) if row else 0
        self.sessions: dict[int, str] = {int(e): str(p) for e, p in conn.execute(
            "SELECT epoch, pub FROM sessions")}
        self.gaps: list[GapNotice] = [GapNotice(int(e), str(s), int(f), int(la), str(r))
                                      for e, s, f, la, r in conn.execute(
            "SELECT epoch, stream, first, last, reason FROM gaps ORDER BY id")]
        self.parked = int(conn.execute("SELECT COUNT(*) FROM parked").fetchone()[0])
        self.dropped = 0  # messages dropped by the bound since this process opened the spool

    # ---- state ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Messages in the spool (not acknowledged)."""
        return sum(self.counts.values())

    def last_seqs(self, epoch: int) -> dict[str, int]:
        """The newest seq ever spooled of each stream of session ``epoch``."""
        return {str(s): int(q) for s, q in self._conn.execute(
            "SELECT stream, last_seq FROM streams WHERE epoch = ?", (epoch,))}

    def oldest_t_ns(self) -> int | None:
        """When the oldest message in the spool was spooled (ns since the epoch)."""
        row = self._conn.execute("SELECT t_ns FROM messages ORDER BY id LIMIT 1").fetchone()
        return int(row[0]) if row else None

    def file_bytes(self) -> int:
        """Bytes the spool takes on disk (database, WAL and payload segments; 0 in memory)."""
        if self.path is None:
            return 0
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(f"{self.path}{suffix}")
        if self._segdir is not None:
            for number in self._segments:
                with contextlib.suppress(OSError):
                    total += os.path.getsize(self._segdir / f"{number:08d}.seg")
        return total

    # ---- writing --------------------------------------------------------------------------

    def begin_session(self, epoch: int, pub: str) -> None:
        """Remember a publisher session until the logger has closed it."""
        self._conn.execute("INSERT INTO sessions (epoch, pub, opened_ns) VALUES (?, ?, ?)"
                           " ON CONFLICT DO NOTHING", (epoch, pub, time.time_ns()))
        self.sessions[epoch] = pub

    def write(self, new: list[Entry], acked: Mapping[Key, int] | None = None,
              closed: Iterable[int] = ()) -> Dropped | None:
        """One transaction: append ``new`` (ids assigned here), forget what was
        acknowledged and the ``closed`` sessions, and enforce the bound.

        Returns what the bound dropped, if anything. On an exception nothing
        changed (the entries get ids again on the next attempt).
        """
        conn = self._conn
        acked = dict(acked or {})
        closed = list(closed)
        counts = defaultdict(int, self.counts)
        nbytes = self.nbytes
        next_id = self.last_id
        places = self._append_payloads(new) if new and self._segdir is not None else None
        conn.execute("BEGIN IMMEDIATE")
        try:
            if new:
                rows: list[tuple[Any, ...]] = []
                last: dict[Key, int] = {}
                for i, entry in enumerate(new):
                    next_id += 1
                    entry.id = next_id
                    size = entry.nbytes
                    if places is None:
                        rows.append((entry.id, entry.epoch, entry.stream, entry.seq, entry.t_ns,
                                     size, entry.header, entry.payload, None, None, None))
                    else:
                        seg, offset, length = places[i]
                        rows.append((entry.id, entry.epoch, entry.stream, entry.seq, entry.t_ns,
                                     size, entry.header, None, seg, offset, length))
                    counts[entry.epoch] += 1
                    nbytes += size
                    last[entry.key] = max(entry.seq, last.get(entry.key, -1))
                conn.executemany("INSERT INTO messages (id, epoch, stream, seq, t_ns, size,"
                                 " header, payload, seg, poff, plen)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                if places is not None:
                    span = self._segments.setdefault(self._seg_no, [new[0].id, new[-1].id])
                    span[1] = new[-1].id
                conn.executemany("INSERT INTO streams (epoch, stream, last_seq) VALUES (?, ?, ?)"
                                 " ON CONFLICT (epoch, stream) DO UPDATE SET"
                                 " last_seq = MAX(last_seq, excluded.last_seq)",
                                 [(e, s, q) for (e, s), q in last.items()])
            for (epoch, stream), seq in acked.items():
                n, size = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE epoch = ?"
                    " AND stream = ? AND seq <= ?", (epoch, stream, seq)).fetchone()
                if n:
                    conn.execute("DELETE FROM messages WHERE epoch = ? AND stream = ?"
                                 " AND seq <= ?", (epoch, stream, seq))
                    counts[epoch] -= int(n)
                    nbytes -= int(size)
                conn.execute("DELETE FROM gaps WHERE epoch = ? AND stream = ? AND last <= ?",
                             (epoch, stream, seq))
            for epoch in closed:
                conn.execute("DELETE FROM sessions WHERE epoch = ?", (epoch,))
                conn.execute("DELETE FROM streams WHERE epoch = ?", (epoch,))
            dropped = None
            total = sum(counts.values())
            if total > self.limits.max_messages or nbytes > self.limits.max_bytes:
                dropped, n_bytes, per_epoch = self._drop_oldest(total, nbytes, acked)
                nbytes -= n_bytes
                for epoch, n in per_epoch.items():
                    counts[epoch] -= n
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.last_id = next_id
        if acked or dropped is not None or closed:
            self._free_segments()
        self.counts = {e: n for e, n in counts.items() if n > 0}
        self.nbytes = nbytes
        self.gaps = [g for g in self.gaps if g.last > acked.get((g.epoch, g.stream), -1)]
        for epoch in closed:
            self.sessions.pop(epoch, None)
        if dropped is not None:
            merged = {(g.epoch, g.stream, g.first) for g in dropped.notices}
            self.gaps = [g for g in self.gaps if (g.epoch, g.stream, g.first) not in merged]
            self.gaps.extend(dropped.notices)
            self.dropped += dropped.count
        return dropped

    def _append_payloads(self, new: list[Entry]) -> list[tuple[int, int, int]]:
        """Append the payloads of ``new`` to the current segment file (one writev per
        1024); return each entry's (segment, offset, length), length -1 for none."""
        if self._seg_fd is None or self._seg_size >= SEGMENT_BYTES:
            self._next_segment()
        assert self._seg_fd is not None
        places: list[tuple[int, int, int]] = []
        buffers: list[Any] = []
        offset = self._seg_size
        for entry in new:
            payload = entry.payload
            if payload is None:
                places.append((self._seg_no, offset, -1))
            else:
                places.append((self._seg_no, offset, len(payload)))
                buffers.append(payload)
                offset += len(payload)
        for start in range(0, len(buffers), _IOV_MAX):
            chunk = buffers[start:start + _IOV_MAX]
            want = sum(len(b) for b in chunk)
            done = os.writev(self._seg_fd, chunk)
            while done < want:  # a short write: finish it from where it stopped
                rest = b"".join(bytes(b) for b in chunk)[done:]
                done += os.write(self._seg_fd, rest)
        if self.limits.synchronous == "FULL" and buffers:
            os.fsync(self._seg_fd)
        self._seg_size = offset
        return places

    def _next_segment(self) -> None:
        assert self._segdir is not None
        if self._seg_fd is not None:
            os.close(self._seg_fd)
        self._seg_no += 1
        path = self._segdir / f"{self._seg_no:08d}.seg"
        self._seg_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seg_size = os.fstat(self._seg_fd).st_size

    def _free_segments(self) -> None:
        """Delete the segment files no spooled message points into any more."""
        if self._segdir is None:
            return
        for number, (first, last) in list(self._segments.items()):
            if number == self._seg_no:
                continue
            row = self._conn.execute("SELECT 1 FROM messages WHERE id BETWEEN ? AND ?"
                                     " AND seg = ? LIMIT 1", (first, last, number)).fetchone()
            if row is None:
                del self._segments[number]
                reader = self._readers.pop(number, None)
                if reader is not None:
                    os.close(reader)
                (self._segdir / f"{number:08d}.seg").unlink(missing_ok=True)

    def _payload(self, payload: Any, seg: Any, offset: Any, length: Any) -> bytes | None:
        """A message's payload, from its row or its segment file."""
        if seg is None:
            return None if payload is None else bytes(payload)
        if length is None or int(length) < 0:
            return None
        assert self._segdir is not None
        reader = self._readers.get(int(seg))
        if reader is None:
            reader = self._readers[int(seg)] = os.open(self._segdir / f"{int(seg):08d}.seg",
                                                       os.O_RDONLY)
        data = os.pread(reader, int(length), int(offset))
        if len(data) != int(length):
            raise OSError(f"spool segment {int(seg)} is short: {len(data)} of {length} bytes")
        return data

    def _drop_oldest(self, total: int, nbytes: int,
                     acked: Mapping[Key, int]) -> tuple[Dropped, int, dict[int, int]]:
        """Delete the oldest messages until 1 % below the bound (inside write's transaction)."""
        limits = self.limits
        keep_n = limits.max_messages - limits.max_messages // 100
        keep_b = limits.max_bytes - limits.max_bytes // 100
        seqs: dict[Key, list[int]] = defaultdict(list)
        per_epoch: dict[int, int] = defaultdict(int)
        max_id = 0
        n_dropped = b_dropped = 0
        after = 0
        done = False
        while not done:
            rows = self._conn.execute("SELECT id, epoch, stream, seq, size FROM messages"
                                      " WHERE id > ? ORDER BY id LIMIT 5000", (after,)).fetchall()
            if not rows:
                break
            for mid, epoch, stream, seq, size in rows:
                if total - n_dropped <= keep_n and nbytes - b_dropped <= keep_b:
                    done = True
                    break
                max_id = after = int(mid)
                seqs[(int(epoch), str(stream))].append(int(seq))
                per_epoch[int(epoch)] += 1
                n_dropped += 1
                b_dropped += int(size)
        self._conn.execute("DELETE FROM messages WHERE id <= ?", (max_id,))
        notices = [GapNotice(epoch, stream, first, last, GapReason.SPOOL_OVERFLOW.value)
                   for (epoch, stream), found in seqs.items() for first, last in _runs(found)]
        return Dropped(max_id, n_dropped, self._merge_gaps(notices, acked)), b_dropped, per_epoch

    def _merge_gaps(self, notices: list[GapNotice],
                    acked: Mapping[Key, int]) -> list[GapNotice]:
        """Store ``notices``, each joined to a pending one it continues (a long outage drops
        range after range of the same streams: they stay one notice per stream)."""
        pending = {(g.epoch, g.stream, g.reason, g.last): g for g in self.gaps
                   if g.last > acked.get((g.epoch, g.stream), -1)}
        out = []
        fresh = []
        for notice in notices:
            before = pending.get((notice.epoch, notice.stream, notice.reason, notice.first - 1))
            if before is None:
                fresh.append(notice)
                out.append(notice)
                continue
            joined = GapNotice(notice.epoch, notice.stream, before.first, notice.last,
                               notice.reason)
            self._conn.execute("UPDATE gaps SET last = ? WHERE epoch = ? AND stream = ?"
                               " AND first = ? AND reason = ?", (joined.last, joined.epoch,
                                                                 joined.stream, joined.first,
                                                                 joined.reason))
            out.append(joined)
        self._insert_gaps(fresh)
        return out

    def _insert_gaps(self, notices: list[GapNotice]) -> None:
        now = time.time_ns()
        self._conn.executemany("INSERT INTO gaps (epoch, stream, first, last, reason, t_ns)"
                               " VALUES (?, ?, ?, ?, ?, ?)",
                               [(g.epoch, g.stream, g.first, g.last, g.reason, now)
                                for g in notices])

    def park(self, epoch: int, stream: str, first: int, last: int,
             why: str) -> list[GapNotice]:
        """Move a refused range out of the spool into ``parked``; return the gaps to report."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT seq, size FROM messages WHERE epoch = ? AND stream = ?"
                                " AND seq >= ? AND seq <= ?", (epoch, stream, first, last))
            found: list[int] = []
            size = 0
            for seq, nbytes in rows:
                found.append(int(seq))
                size += int(nbytes)
            n = len(found)
            now = time.time_ns()
            conn.executemany(
                "INSERT INTO parked (epoch, stream, seq, why, t_ns, header, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(epoch, stream, int(q), why[:2000], now, header,
                  self._payload(payload, seg, poff, plen))
                 for q, header, payload, seg, poff, plen in conn.execute(
                     "SELECT seq, header, payload, seg, poff, plen FROM messages"
                     " WHERE epoch = ? AND stream = ? AND seq >= ? AND seq <= ?",
                     (epoch, stream, first, last)).fetchall()])
            conn.execute("DELETE FROM messages WHERE epoch = ? AND stream = ? AND seq >= ?"
                         " AND seq <= ?", (epoch, stream, first, last))
            conn.execute("DELETE FROM parked WHERE id <= (SELECT MAX(id) FROM parked) - ?",
                         (self.limits.max_parked,))
            notices = [GapNotice(epoch, stream, a, b, GapReason.REFUSED.value)
                       for a, b in _runs(found)]
            self._insert_gaps(notices)
            parked = int(conn.execute("SELECT COUNT(*) FROM parked").fetchone()[0])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if n:
            self.counts[epoch] = self.counts.get(epoch, 0) - int(n)
            if self.counts[epoch] <= 0:
                del self.counts[epoch]
            self.nbytes -= int(size)
        self.parked = parked
        self.gaps.extend(notices)
        return notices

    def read(self, after_id: int, limit: int, max_bytes: int) -> list[Entry]:
        """Messages after ``after_id`` in spool order: at most ``limit`` and about ``max_bytes``."""
        out: list[Entry] = []
        total = 0
        rows = self._conn.execute("SELECT id, epoch, stream, seq, t_ns, header, payload, seg,"
                                  " poff, plen FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                                  (after_id, limit)).fetchall()
        for mid, epoch, stream, seq, t_ns, header, payload, seg, poff, plen in rows:
            entry = Entry(int(mid), int(epoch), str(stream), int(seq), int(t_ns), bytes(header),
                          self._payload(payload, seg, poff, plen))
            out.append(entry)
            total += entry.nbytes
            if total >= max_bytes:
                break
        return out

    def parked_rows(self) -> list[dict[str, Any]]:
        """The parked messages (for inspection): stream, epoch, seq, why, when."""
        return [{"stream": s, "epoch": int(e), "seq": int(q), "why": w, "t_ns": int(t)}
                for e, s, q, w, t in self._conn.execute(
                    "SELECT epoch, stream, seq, why, t_ns FROM parked ORDER BY id")]

    def close(self) -> None:
        """Close the database and release the lock (the data stays for the next start)."""
        try:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            self._conn.close()
            for fd in [self._seg_fd, *self._readers.values()]:
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._seg_fd = None
            self._readers.clear()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the lock
            self._lock = None


def given_up(entries: Iterable[Entry], reason: GapReason) -> list[GapNotice]:
    """Gap notices for ``entries`` given up, one per contiguous run of each stream session."""
    seqs: dict[Key, list[int]] = defaultdict(list)
    for entry in entries:
        seqs[entry.key].append(entry.seq)
    return [GapNotice(epoch, stream, first, last, reason.value)
            for (epoch, stream), found in seqs.items() for first, last in _runs(found)]


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Contiguous (first, last) runs of the given seqs."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def _lock(path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``path`` for as long as the returned file stays open."""
    handle = open(path, "a+b")  # noqa: SIM115 - kept open: it is the lock
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SpoolBusy(f"spool {path.with_suffix('')} is in use by another process (two "
                        "daemons with the same name and state directory?)") from None
    return handle
