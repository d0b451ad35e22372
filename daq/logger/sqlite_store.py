"""The embedded default store: one SQLite database file in WAL mode.

Schema: :mod:`daq.logger.schema`. Durability: WAL with
``synchronous=FULL`` by default, so the WAL is fsynced at every commit and
an acknowledged batch survives a power cut, not only a crash of the
process. ``NORMAL`` (config ``sqlite_synchronous``) survives a kill -9 but
may lose the last commits on power loss; the logger commits one batch at a
time, so FULL costs one fsync per batch, not per sample.

The writer holds one connection; readers (the history endpoint) open their
own (``readonly=True``): WAL lets them read while the writer writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from daq.logger.schema import SCHEMA_VERSION, SQLITE_DDL
from daq.logger.sqlstore import SqlStore

DB_NAME = "qupdaq.sqlite"


class SqliteStore(SqlStore):
    """The SQL store in a SQLite file.

    Args:
        path: the database file (created with its schema when missing).
        synchronous: ``FULL`` (default) or ``NORMAL``; see the module docstring.
        readonly: open for queries only (the file must exist).
    """

    least = "MIN"
    greatest = "MAX"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL",
                 readonly: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise FileNotFoundError(f"SQLite store {self.path} does not exist yet")
        self._conn = sqlite3.connect(str(self.path), isolation_level=None,
                                     check_same_thread=False, timeout=30.0)
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            if readonly:
                self._conn.execute("PRAGMA query_only = 1")
                return
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{self.path}: cannot switch to WAL ({mode})")
            if synchronous not in ("FULL", "NORMAL"):
                raise ValueError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute("BEGIN IMMEDIATE")
            for statement in SQLITE_DDL:
                self._conn.execute(statement)
            self._conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                               " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                               (str(SCHEMA_VERSION),))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.close()
            raise

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Roll back anything uncommitted and close the connection."""
        try:
            self._rollback()
        finally:
            self._conn.close()
