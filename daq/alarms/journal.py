"""The delivery journal: what the notification thread is sending and has sent, on local disk.

A delivery is only known to the archive once the evaluation thread has
turned the notifier's report into a ``notified`` transition and spooled it.
A service killed between the moment a mail server accepted a notice and
that spool write would, on restart, see the notice as never delivered and
send it again. The journal closes that window from both sides, written by
the notification thread itself around each delivery:

* ``SENDING`` just before the notice is handed to Apprise;
* ``SENT`` as soon as Apprise says it was delivered (a failed attempt
  removes the ``SENDING`` row: the retry writes it again).

Every write is a committed SQLite transaction, so a process killed with -9
keeps it (the operating system has it). At start the service reads the
journal before it evaluates anything (:meth:`AlarmEngine.restore
<daq.alarms.engine.AlarmEngine.restore>`):

* a ``SENT`` row the archive does not know is taken as delivered (never
  sent again) and published as a ``notified`` transition, so the archive
  catches up;
* a ``SENDING`` row is a notice that was in flight when the process died:
  it may or may not have arrived, and no protocol Apprise speaks can be
  asked. It is sent again, marked as a possible repeat in its title and
  body: a notice is never silently lost, and a person who gets it twice is
  told why. This window is one delivery's own duration (the SMTP or HTTP
  exchange), not the time to the archive.

Only notices whose delivery is recorded with their alarm (``Notice.record``)
are journalled, one row per (alarm, occurrence, notice key, URL). A row
counts only for an occurrence raised before it was written: an archive
started afresh numbers occurrences from 1 again, and an old journal in the
state directory must not silence them.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

#: (alarm, occurrence, notice key): one notice of one alarm occurrence (``Notice.targets``).
Target = tuple[str, int, str]


class DeliveryStep(Enum):
    """A step of one delivery, as the notification thread writes it down."""

    SENDING = "sending"  # handed to Apprise; the outcome not yet known (stored)
    SENT = "sent"  # Apprise reported it delivered (stored)
    FAILED = "failed"  # the attempt failed; its SENDING row is removed (never stored)


@dataclass(frozen=True)
class JournalEntry:
    """One delivery of one notice key of one alarm occurrence to one URL.

    Attributes:
        alarm: the alarm id.
        occurrence: its occurrence.
        key: the notice key (``raise``, ``escalate1``, ...).
        url_key: the URL, as :func:`daq.alarms.notify.url_key`.
        state: sending or sent.
        t: when the row was last written (seconds since the epoch).
    """

    alarm: str
    occurrence: int
    key: str
    url_key: str
    state: DeliveryStep
    t: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    alarm TEXT NOT NULL,
    occurrence INTEGER NOT NULL,
    notice TEXT NOT NULL,
    url_key TEXT NOT NULL,
    state TEXT NOT NULL,
    t REAL NOT NULL,
    PRIMARY KEY (alarm, occurrence, notice, url_key)
)
"""


class DeliveryJournal:
    """The journal file (see the module docstring); safe to share between threads.

    Args:
        path: the SQLite file (created with its folder when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> DeliveryJournal:
        """Open (and create) the file.

        Raises:
            sqlite3.Error: the file cannot be opened or is not a journal.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        self._db = db
        return self

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> DeliveryJournal:
        return self.open() if self._db is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_db(self) -> sqlite3.Connection:
        """The connection (the caller holds the lock)."""
        if self._db is None:
            raise sqlite3.ProgrammingError(f"delivery journal {self.path} is not open")
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._open_db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def write(self, step: DeliveryStep, targets: Sequence[Target], url_key: str) -> None:
        """Write down ``step`` of one delivery (committed on return).

        Args:
            step: what happened.
            targets: what the notice stands for (:attr:`daq.alarms.notify.Notice.targets`).
            url_key: the URL it went to (:func:`daq.alarms.notify.url_key`).

        Raises:
            sqlite3.Error: the file cannot be written.
        """
        if not targets:
            return
        with self._write() as db:
            if step is DeliveryStep.FAILED:
                db.executemany(
                    "DELETE FROM deliveries WHERE alarm=? AND occurrence=? AND notice=? "
                    "AND url_key=? AND state=?",
                    [(a, o, k, url_key, DeliveryStep.SENDING.value) for a, o, k in targets])
                return
            now = time.time()
            # a SENT row is never turned back into SENDING (a digest may cover a notice
            # that already went out to this URL)
            db.executemany(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (alarm, occurrence, notice, url_key) DO UPDATE "
                "SET state=excluded.state, t=excluded.t WHERE state != 'sent'",
                [(a, o, k, url_key, step.value, now) for a, o, k in targets])

    def entries(self) -> list[JournalEntry]:
        """Every row (what :meth:`prune` left), oldest first."""
        with self._lock:
            rows = self._open_db().execute(
                "SELECT alarm, occurrence, notice, url_key, state, t FROM deliveries "
                "ORDER BY t").fetchall()
        return [JournalEntry(a, int(o), k, u, DeliveryStep(s), float(t))
                for a, o, k, u, s, t in rows]

    def prune(self, before: float) -> int:
        """Forget rows written before ``before``; return how many."""
        with self._write() as db:
            return db.execute("DELETE FROM deliveries WHERE t < ?", (before,)).rowcount
