"""The store for labs that outgrow one machine: PostgreSQL, the same schema as SQLite.

Several loggers may write to one server (each its own streams; the unique
keys make a doubly-delivered message harmless). Schema:
:mod:`daq.logger.schema`. A commit returns once the server has made the
transaction durable (PostgreSQL's default ``synchronous_commit``), and only
then is anything acknowledged. Needs psycopg 3 (``pip install 'psycopg[binary]'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from daq.logger.schema import POSTGRES_DDL, SCHEMA_VERSION
from daq.logger.sqlstore import SqlStore

# Serialises schema creation between loggers starting at the same time.
_DDL_LOCK_KEY = 0x71_75_70_64_61_71


class PostgresStore(SqlStore):
    """The SQL store on a PostgreSQL server.

    Args:
        dsn: libpq connection string (``host=... port=... dbname=... user=...``).
        readonly: open for queries only (autocommit, no schema creation).
    """

    least = "LEAST"
    greatest = "GREATEST"

    def __init__(self, dsn: str, *, readonly: bool = False) -> None:
        super().__init__()
        import psycopg  # lazily: only labs with the postgresql sink need it

        self.dsn = dsn
        self._conn = psycopg.connect(dsn, autocommit=readonly)
        if readonly:
            return
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK_KEY,))
                for statement in POSTGRES_DDL:
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                   (str(SCHEMA_VERSION),))
        except BaseException:
            self._conn.close()
            raise

    @staticmethod
    def _sql(sql: str) -> Any:
        return sql.replace("?", "%s")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(self._sql(sql), tuple(params))
        return cur.fetchall() if cur.description is not None else []

    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    def _begin(self) -> None:
        pass  # psycopg opens a transaction at the first statement (autocommit is off)

    def _commit(self) -> None:
        self._conn.commit()

    def _rollback(self) -> None:
        if not self._conn.closed:
            self._conn.rollback()

    def close(self) -> None:
        """Roll back anything uncommitted and close the connection."""
        try:
            self._rollback()
        finally:
            self._conn.close()
