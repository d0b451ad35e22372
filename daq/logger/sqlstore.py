"""The SQL store shared by SQLite and PostgreSQL (schema in :mod:`daq.logger.schema`).

Both databases speak the same statements here; a subclass supplies the
connection, the transaction calls and a few dialect words (``?`` becomes
``%s`` for psycopg, ``MIN``/``MAX`` of two values become ``LEAST``/``GREATEST``).
Every write of a batch happens in one transaction, so a batch is stored
whole or not at all, and its progress rows (the deduplication state) commit
atomically with its data.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from daq.logger.decimate import bucket_width, points_from_buckets
from daq.logger.sink import Batch, Progress, PublisherRecord, Series, Store
from daq.messages import SAMPLE_DTYPE, Kind, Message
from drivers.readings import BAD

_EVENT_KINDS = (Kind.STATUS, Kind.ALARM, Kind.AUDIT, Kind.RUN)
#: A sample's value where the instrument did not flag it, else NULL (SQLite and PostgreSQL).
_GOOD_VALUE = f"CASE WHEN q & {int(BAD)} = 0 THEN NULLIF(value, 'NaN') END"


class SqlStore(Store):
    """The store's statements; subclasses bind them to a database (see the module docstring)."""

    #: SQL for the smaller / larger of two values.
    least = "MIN"
    greatest = "MAX"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._units: dict[str, str] = {}
        self._new_ids: list[str] = []
        self._in_batch = False

    # ---- what a subclass provides ---------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders); return its rows (empty for writes)."""

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""

    @abc.abstractmethod
    def _begin(self) -> None:
        """Start the batch transaction."""

    @abc.abstractmethod
    def _commit(self) -> None:
        """Commit (durably) the open transaction."""

    @abc.abstractmethod
    def _rollback(self) -> None:
        """Roll back the open transaction, if any."""

    def _autocommit(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One statement in its own committed transaction."""
        self._begin()
        try:
            rows = self._execute(sql, params)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return rows

    # ---- writing ----------------------------------------------------------------------------

    def _channel(self, stream: str, units: str = "") -> int:
        cid = self._ids.get(stream)
        if cid is None:
            kind = stream.split("/", 1)[0]
            self._execute("INSERT INTO channels (stream, kind, units) VALUES (?, ?, ?)"
                          " ON CONFLICT (stream) DO NOTHING", (stream, kind, units))
            row = self._execute("SELECT id, units FROM channels WHERE stream = ?", (stream,))[0]
            cid = int(row[0])
            self._ids[stream] = cid
            self._units[stream] = str(row[1])
            self._new_ids.append(stream)
        if units and self._units.get(stream) != units:
            self._execute("UPDATE channels SET units = ? WHERE id = ?", (units, cid))
            self._units[stream] = units
        return cid

    def write_batch(self, batch: Batch) -> None:
        """Write samples, events, record index rows, runs, gaps and progress of ``batch``."""
        self._begin()
        self._in_batch = True
        samples: list[tuple[Any, ...]] = []
        sample_msgs: list[tuple[int, int, int, int]] = []
        events: list[tuple[Any, ...]] = []
        records: list[tuple[Any, ...]] = []
        for i, msg in enumerate(batch.messages):
            cid = self._channel(msg.stream, msg.units)
            if msg.kind is Kind.DATA:
                assert msg.data is not None
                n = len(msg.data)
                sample_msgs.append((cid, msg.epoch, msg.seq, n))
                if n == 1:
                    t, value = msg.data[0].tolist()
                    samples.append((cid, t, value, msg.quality, msg.epoch, msg.seq, 0))
                else:  # zip/repeat build the rows in C: the hot path of batched polls
                    samples.extend(zip(repeat(cid, n), msg.data["t"].tolist(),
                                       msg.data["value"].tolist(), repeat(msg.quality, n),
                                       repeat(msg.epoch, n), repeat(msg.seq, n), range(n),
                                       strict=True))
            elif msg.kind is Kind.WAVE:
                loc = batch.locations[i]
                assert msg.data is not None
                records.append((cid, msg.epoch, msg.seq, int(msg.meta.get("t0", msg.t)),
                                loc.file_id, loc.row, int(msg.data.shape[-1]), msg.quality))
            elif msg.kind in _EVENT_KINDS:
                events.append((cid, msg.kind.value, msg.t, msg.t_recv, msg.epoch, msg.seq,
                               msg.quality, msg.units, json.dumps(msg.meta)))
                if msg.kind is Kind.RUN:
                    self._run_event(msg)
        if sample_msgs:
            self._executemany("INSERT INTO sample_messages (channel_id, epoch, seq, n)"
                              " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", sample_msgs)
        if samples:
            self._executemany("INSERT INTO samples (channel_id, t, value, q, epoch, seq, idx)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", samples)
        if events:
            self._executemany("INSERT INTO events (channel_id, kind, t, t_recv, epoch, seq, q,"
                              " units, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                              " ON CONFLICT DO NOTHING", events)
        if records:
            self._executemany("INSERT INTO records (channel_id, epoch, seq, t0, file_id, row,"
                              " length, q) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                              " ON CONFLICT DO NOTHING", records)
        now = time.time_ns()
        if batch.gaps:
            self._executemany(
                "INSERT INTO gaps (channel_id, epoch, seq_first, seq_last, reason, t_recorded)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(self._channel(g.stream), g.epoch, g.first, g.last, why, now)
                 for g, why in batch.gaps])
        if batch.progress:
            self._executemany(
                "INSERT INTO progress (channel_id, epoch, pub, contig, announced, closed)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, epoch) DO UPDATE SET"
                " pub = excluded.pub, contig = excluded.contig,"
                " announced = excluded.announced, closed = excluded.closed",
                [(self._channel(p.stream), p.epoch, p.pub, p.contig, p.announced, int(p.closed))
                 for p in batch.progress])
        if batch.publishers:
            self._executemany(
                "INSERT INTO publishers (pub, identity, epoch, t_changed) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pub) DO UPDATE SET identity = excluded.identity,"
                " epoch = excluded.epoch, t_changed = excluded.t_changed",
                [(p.pub, p.identity, p.epoch, now) for p in batch.publishers])
        if batch.run_index:
            self._executemany(
                "INSERT INTO run_index (run, procedure, recipe, sample, operator, status, t_start,"
                " t_stop, path, points, pauses, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run) DO UPDATE SET procedure = excluded.procedure,"
                " recipe = excluded.recipe, sample = excluded.sample,"
                " operator = excluded.operator, status = excluded.status,"
                " t_start = excluded.t_start, t_stop = excluded.t_stop, path = excluded.path,"
                " points = excluded.points, pauses = excluded.pauses, summary = excluded.summary",
                [(r.run, r.procedure, r.recipe, r.sample, r.operator, r.status, r.t_start,
                  r.t_stop, r.path, r.points_json, r.pauses, r.summary_json)
                 for r in batch.run_index])

    def _run_event(self, msg: Message) -> None:
        run = msg.meta.get("run", msg.meta.get("run_id"))
        if run is None:
            return
        state = str(msg.meta.get("state", "")).lower()
        if state in ("start", "started"):
            self._execute("INSERT INTO runs (run, stream, t_start, t_stop, meta)"
                          " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (run) DO NOTHING",
                          (str(run), msg.stream, msg.t, json.dumps(msg.meta)))
        elif state in ("stop", "stopped", "end", "aborted"):
            self._execute("UPDATE runs SET t_stop = ? WHERE run = ?", (msg.t, str(run)))

    def commit(self) -> None:
        """Commit the batch transaction (durable on return)."""
        if self._in_batch:
            self._commit()
            self._in_batch = False
            self._new_ids.clear()

    def abort(self) -> None:
        """Roll the batch back and forget channel ids created in it."""
        self._rollback()
        self._in_batch = False
        for stream in self._new_ids:
            self._ids.pop(stream, None)
            self._units.pop(stream, None)
        self._new_ids.clear()

    # ---- the file index ---------------------------------------------------------------------

    def register_file(self, path: str, origin: str, opened_ns: int, run: str | None) -> int:
        """Enter a record file in the index (committed at once); return its id."""
        self._autocommit("INSERT INTO files (path, origin, opened, closed, run)"
                         " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (path) DO NOTHING",
                         (path, origin, opened_ns, run))
        file_id, owner = self._execute("SELECT id, origin FROM files WHERE path = ?", (path,))[0]
        if owner != origin:  # several loggers on one PostgreSQL server: never share a file
            raise FileExistsError(f"record file {path} is already indexed by logger {owner!r}")
        return int(file_id)

    def close_file(self, file_id: int, closed_ns: int) -> None:
        """Mark a record file closed (committed at once)."""
        self._autocommit("UPDATE files SET closed = ? WHERE id = ?", (closed_ns, file_id))

    def open_files(self, origin: str) -> list[tuple[int, str]]:
        """(id, path) of files ``origin`` left open."""
        rows = self._execute("SELECT id, path FROM files WHERE origin = ? AND closed IS NULL",
                             (origin,))
        return [(int(i), str(p)) for i, p in rows]

    def file_for(self, path: str) -> int | None:
        """The id of an indexed file, by path."""
        rows = self._execute("SELECT id FROM files WHERE path = ?", (path,))
        return int(rows[0][0]) if rows else None

    def committed_rows(self, file_id: int) -> dict[str, int]:
        """Per stream, the number of committed record rows in this file."""
        rows = self._execute("SELECT c.stream, MAX(r.row) + 1 FROM records r JOIN channels c"
                             " ON c.id = r.channel_id WHERE r.file_id = ? GROUP BY c.stream",
                             (file_id,))
        return {str(s): int(n) for s, n in rows}

    # ---- progress ---------------------------------------------------------------------------

    def load_progress(self, stream: str, epoch: int) -> Progress | None:
        """The stored progress of one stream and session."""
        rows = self._execute("SELECT p.pub, p.contig, p.announced, p.closed FROM progress p"
                             " JOIN channels c ON c.id = p.channel_id"
                             " WHERE c.stream = ? AND p.epoch = ?", (stream, epoch))
        if not rows:
            return None
        pub, contig, announced, closed = rows[0]
        return Progress(stream, epoch, str(pub), int(contig), int(announced), bool(closed))

    def stored_seqs_above(self, stream: str, epoch: int, seq: int) -> set[int]:
        """Seqs stored beyond ``seq`` for this stream and session (any kind)."""
        cid = self._ids.get(stream)
        if cid is None:
            rows = self._execute("SELECT id FROM channels WHERE stream = ?", (stream,))
            if not rows:
                return set()
            cid = int(rows[0][0])
        found: set[int] = set()
        for table in ("sample_messages", "events", "records"):
            rows = self._execute(f"SELECT DISTINCT seq FROM {table} WHERE channel_id = ?"
                                 " AND epoch = ? AND seq > ?", (cid, epoch, seq))
            found.update(int(r[0]) for r in rows)
        return found

    def gap_spans_above(self, stream: str, epoch: int, seq: int) -> list[tuple[int, int]]:
        """Recorded gaps of this stream and session ending beyond ``seq``."""
        cid = self._ids.get(stream) or self._cid(stream)
        if cid is None:
            return []
        rows = self._execute("SELECT seq_first, seq_last FROM gaps WHERE channel_id = ?"
                             " AND epoch = ? AND seq_last > ? ORDER BY seq_first",
                             (cid, epoch, seq))
        return [(int(a), int(b)) for a, b in rows]

    def open_sessions(self, pub: str) -> list[Progress]:
        """Progress rows of ``pub``'s sessions not yet closed."""
        rows = self._execute("SELECT c.stream, p.epoch, p.contig, p.announced FROM progress p"
                             " JOIN channels c ON c.id = p.channel_id"
                             " WHERE p.pub = ? AND p.closed = 0", (pub,))
        return [Progress(str(s), int(e), pub, int(c), int(a), False) for s, e, c, a in rows]

    def load_publishers(self) -> list[PublisherRecord]:
        """Every publisher name's owner."""
        rows = self._execute("SELECT pub, identity, epoch FROM publishers")
        return [PublisherRecord(str(p), str(i), int(e)) for p, i, e in rows]

    def epoch_progress(self, epoch: int) -> dict[str, int]:
        """``{stream: contig}`` of session ``epoch``."""
        rows = self._execute("SELECT c.stream, p.contig FROM progress p JOIN channels c"
                             " ON c.id = p.channel_id WHERE p.epoch = ?", (epoch,))
        return {str(s): int(c) for s, c in rows}

    def current_run(self) -> str | None:
        """The latest run without a stop time."""
        rows = self._execute("SELECT run FROM runs WHERE t_stop IS NULL"
                             " ORDER BY t_start DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    # ---- queries ----------------------------------------------------------------------------

    def _cid(self, stream: str) -> int | None:
        rows = self._execute("SELECT id FROM channels WHERE stream = ?", (stream,))
        return int(rows[0][0]) if rows else None

    def series(self, stream: str, t0: int, t1: int, max_points: int) -> Series:
        """Scalar history of ``stream`` in [t0, t1], decimated server-side (see decimate)."""
        cid = self._cid(stream)
        empty = Series(np.empty(0, np.int64), np.empty(0, np.float64), 0, False)
        if cid is None or t1 < t0:
            return empty
        width = bucket_width(t0, t1, max_points)
        # A flagged reading is a gap on a plot, never a number: it stays out of the extremes
        # (a bucket of only flagged samples is NaN) and comes back as NaN when raw.
        agg = self._execute(f"SELECT (t - ?) / ? AS b, COUNT(*), MIN({_GOOD_VALUE}),"
                            f" MAX({_GOOD_VALUE}), MIN(t),"
                            " MAX(t) FROM samples WHERE channel_id = ? AND t >= ? AND t <= ?"
                            " GROUP BY b", (t0, width, cid, t0, t1))
        rolls = self._execute("SELECT t, dt, n, COALESCE(vmin, 'NaN'), COALESCE(vmax, 'NaN')"
                              " FROM rollups WHERE channel_id = ?"
                              " AND t >= ? AND t <= ? ORDER BY t", (cid, t0, t1))
        n_raw = sum(int(r[1]) for r in agg)
        if n_raw + 2 * len(rolls) <= max_points:
            raw = self._execute(f"SELECT t, COALESCE({_GOOD_VALUE}, 'NaN') FROM samples"
                                " WHERE channel_id = ? AND t >= ? AND t <= ? ORDER BY t",
                                (cid, t0, t1))
            arr = np.array(raw, dtype=SAMPLE_DTYPE) if raw else np.empty(0, SAMPLE_DTYPE)
            times, values = arr["t"], arr["value"]
            if rolls:
                rt, rv = _rollup_points(rolls)
                times = np.concatenate([times, rt])
                values = np.concatenate([values, rv])
                order = np.argsort(times, kind="stable")
                times, values = times[order], values[order]
            return Series(times.astype(np.int64), values.astype(np.float64),
                          n_raw + len(rolls), False)
        parts = [np.array(agg, dtype=np.float64).reshape(-1, 6)] if agg else []
        exact = [np.array([(r[0], r[4], r[5]) for r in agg], dtype=np.int64).reshape(-1, 3)]
        if rolls:
            r = np.array(rolls, dtype=object)
            rt = r[:, 0].astype(np.int64)
            parts.append(np.column_stack([(rt - t0) // width, r[:, 2], r[:, 3], r[:, 4],
                                          rt, rt + r[:, 1].astype(np.int64) - 1]
                                         ).astype(np.float64))
            exact.append(np.column_stack([(rt - t0) // width, rt,
                                          rt + r[:, 1].astype(np.int64) - 1]))
        table = np.concatenate(parts)
        ints = np.concatenate(exact)  # bucket and times as exact integers (no float rounding)
        times, values = points_from_buckets(ints[:, 0], table[:, 1].astype(np.int64),
                                            table[:, 2], table[:, 3], ints[:, 1], ints[:, 2])
        return Series(times, values, n_raw + len(rolls), True)

    def samples(self, stream: str, t0: int, t1: int) -> dict[str, np.ndarray]:
        """Every sample and downsampled bucket of ``stream`` in [t0, t1] (for export)."""
        cid = self._cid(stream)
        raw = [] if cid is None else self._execute(
            "SELECT t, COALESCE(value, 'NaN'), COALESCE(value, 'NaN'), COALESCE(value, 'NaN'), 1,"
            " q FROM samples WHERE channel_id = ? AND t >= ?"
            " AND t <= ? ORDER BY t", (cid, t0, t1))
        rolls = [] if cid is None else self._execute(
            "SELECT t, COALESCE(vmean, 'NaN'), COALESCE(vmin, 'NaN'), COALESCE(vmax, 'NaN'), n,"
            " 0 FROM rollups WHERE channel_id = ? AND t >= ?"
            " AND t <= ? ORDER BY t", (cid, t0, t1))
        rows = sorted(raw + rolls, key=lambda r: int(r[0])) if rolls else raw
        dtype = np.dtype([("t", "<i8"), ("value", "<f8"), ("min", "<f8"), ("max", "<f8"),
                          ("count", "<i8"), ("quality", "<i8")])
        arr = np.array([tuple(r) for r in rows], dtype=dtype)
        return {name: arr[name] for name in dtype.names or ()}

    def streams(self) -> list[dict[str, Any]]:
        """Every known stream with its kind and units."""
        rows = self._execute("SELECT stream, kind, units FROM channels ORDER BY stream")
        return [{"stream": s, "kind": k, "units": u} for s, k, u in rows]

    def events(self, *, stream: str | None = None, kind: str | None = None,
               t0: int | None = None, t1: int | None = None,
               limit: int = 1000, prefix: str | None = None,
               latest: bool = False) -> list[dict[str, Any]]:
        """Events, oldest first, filtered by stream (or stream ``prefix``), kind and time;
        with ``latest`` only the newest event of each stream."""
        where = _Where()
        where.equal("c.stream", stream)
        if prefix is not None:  # substr, not LIKE: stream names are full of LIKE's '_'
            where.add("substr(c.stream, 1, ?) = ?", len(prefix), prefix)
        where.equal("e.kind", kind)
        where.within("e.t", t0, t1)
        params = where.params
        if latest:
            rows = self._execute(
                "SELECT stream, kind, t, epoch, seq, q, units, meta FROM (SELECT c.stream AS"
                " stream, e.kind AS kind, e.t AS t, e.epoch AS epoch, e.seq AS seq, e.q AS q,"
                " e.units AS units, e.meta AS meta, e.id AS id, ROW_NUMBER() OVER (PARTITION BY"
                " e.channel_id ORDER BY e.t DESC, e.id DESC) AS rn FROM events e JOIN channels c"
                " ON c.id = e.channel_id WHERE " + where.sql + ") ranked"
                " WHERE rn = 1 ORDER BY t, id LIMIT ?", (*params, int(limit)))
        else:
            rows = self._execute(
                "SELECT c.stream, e.kind, e.t, e.epoch, e.seq, e.q, e.units, e.meta"
                " FROM events e JOIN channels c ON c.id = e.channel_id WHERE "
                + where.sql + " ORDER BY e.t, e.id LIMIT ?", (*params, int(limit)))
        return [{"stream": s, "kind": k, "t": int(t), "epoch": int(e), "seq": int(q_),
                 "quality": int(q), "units": u, "meta": json.loads(m)}
                for s, k, t, e, q_, q, u, m in rows]

    def gaps(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Recorded gaps, oldest session first."""
        sql = ("SELECT c.stream, g.epoch, g.seq_first, g.seq_last, g.reason FROM gaps g"
               " JOIN channels c ON c.id = g.channel_id")
        params: tuple[Any, ...] = ()
        if stream is not None:
            sql += " WHERE c.stream = ?"
            params = (stream,)
        rows = self._execute(sql + " ORDER BY g.epoch, c.stream, g.seq_first", params)
        return [{"stream": s, "epoch": int(e), "first": int(f), "last": int(la), "reason": r}
                for s, e, f, la, r in rows]

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        rows = self._execute("SELECT run, stream, t_start, t_stop, meta FROM runs"
                             " ORDER BY t_start")
        return [{"run": r, "stream": s, "t_start": int(a),
                 "t_stop": None if b is None else int(b), "meta": json.loads(m)}
                for r, s, a, b, m in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its events, record files and sampled streams."""
        found = [r for r in self.runs() if r["run"] == run_id]
        if not found:
            return None
        run = found[0]
        t1 = run["t_stop"] if run["t_stop"] is not None else time.time_ns()
        run["events"] = self.events(t0=run["t_start"], t1=t1, limit=100_000)
        run["files"] = [str(p) for (p,) in self._execute(
            "SELECT path FROM files WHERE run = ? ORDER BY opened", (run_id,))]
        rows = self._execute("SELECT c.stream, COUNT(*) FROM samples s JOIN channels c"
                             " ON c.id = s.channel_id WHERE s.t >= ? AND s.t <= ?"
                             " GROUP BY c.stream ORDER BY c.stream", (run["t_start"], t1))
        rows += self._execute("SELECT c.stream, COUNT(*) FROM records r JOIN channels c"
                              " ON c.id = r.channel_id WHERE r.t0 >= ? AND r.t0 <= ?"
                              " GROUP BY c.stream ORDER BY c.stream", (run["t_start"], t1))
        run["streams"] = {str(s): int(n) for s, n in rows}
        return run

    def run_index(self, *, procedure: str | None = None, sample: str | None = None,
                  status: str | None = None, t0: int | None = None, t1: int | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        """Measurement runs started in [t0, t1], oldest first, filtered by the fields given."""
        where = _Where()
        where.equal("procedure", procedure)
        where.equal("sample", sample)
        where.equal("status", status)
        where.within("t_start", t0, t1)
        rows = self._execute("SELECT run, procedure, recipe, sample, operator, status, t_start,"
                             " t_stop, path, points, pauses, summary FROM run_index WHERE "
                             + where.sql + " ORDER BY t_start, run LIMIT ?",
                             (*where.params, int(limit)))
        return [_run_row(row) for row in rows]

    def run_entry(self, run: str) -> dict[str, Any] | None:
        """One measurement run's index row, or None."""
        rows = self._execute("SELECT run, procedure, recipe, sample, operator, status, t_start,"
                             " t_stop, path, points, pauses, summary FROM run_index"
                             " WHERE run = ?", (run,))
        return _run_row(rows[0]) if rows else None

    def records(self, stream: str, t0: int, t1: int) -> list[dict[str, Any]]:
        """Index entries of ``stream``'s waveform records in [t0, t1], by time."""
        rows = self._execute("SELECT f.path, r.row, r.epoch, r.seq, r.t0, r.length FROM records r"
                             " JOIN channels c ON c.id = r.channel_id JOIN files f"
                             " ON f.id = r.file_id WHERE c.stream = ? AND r.t0 >= ?"
                             " AND r.t0 <= ? ORDER BY r.t0, r.seq", (stream, t0, t1))
        return [{"path": p, "row": int(w), "epoch": int(e), "seq": int(s), "t0": int(t),
                 "length": int(n)} for p, w, e, s, t, n in rows]

    def downsample(self, stream: str, before_ns: int, bucket_ns: int) -> int:
        """Replace complete buckets older than ``before_ns`` by min/mean/max rows."""
        cid = self._cid(stream)
        if cid is None:
            return 0
        cutoff = (before_ns // bucket_ns) * bucket_ns
        self._begin()
        try:
            removed = self._execute("SELECT COUNT(*) FROM samples WHERE channel_id = ?"
                                    " AND t < ?", (cid, cutoff))[0][0]
            self._execute(
                "INSERT INTO rollups (channel_id, t, dt, n, vmin, vmean, vmax)"
                " SELECT channel_id, (t / ?) * ? AS b, ?, COUNT(*), MIN(NULLIF(value, 'NaN')),"
                " AVG(NULLIF(value, 'NaN')), MAX(NULLIF(value, 'NaN')) FROM samples WHERE channel_id = ? AND t < ?"
                " GROUP BY channel_id, b"
                " ON CONFLICT (channel_id, t) DO UPDATE SET"
                " vmean = (rollups.vmean * rollups.n + excluded.vmean * excluded.n)"
                " / (rollups.n + excluded.n), n = rollups.n + excluded.n,"
                f" vmin = {self.least}(rollups.vmin, excluded.vmin),"
                f" vmax = {self.greatest}(rollups.vmax, excluded.vmax)",
                (bucket_ns, bucket_ns, bucket_ns, cid, cutoff))
            self._execute("DELETE FROM samples WHERE channel_id = ? AND t < ?", (cid, cutoff))
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return int(removed)


def _run_row(row: Sequence[Any]) -> dict[str, Any]:
    """A ``run_index`` row as a mapping (JSON columns parsed)."""
    run, procedure, recipe, sample, operator, status, t_start, t_stop, path, points, pauses, \
        summary = row
    return {"run": run, "procedure": procedure, "recipe": recipe, "sample": sample,
            "operator": operator, "status": status, "t_start": int(t_start),
            "t_stop": None if t_stop is None else int(t_stop), "path": path,
            "points": json.loads(points), "pauses": int(pauses), "summary": json.loads(summary)}


def _rollup_points(rolls: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Downsampled buckets as plot points: (start, min) and (end, max)."""
    times, values = [], []
    for t, dt, n, vmin, vmax in rolls:
        times.append(int(t))
        values.append(float(vmin))
        if int(n) > 1 and vmin != vmax:
            times.append(int(t) + int(dt) - 1)
            values.append(float(vmax))
    return np.array(times, np.int64), np.array(values, np.float64)


class _Where:
    """A query's WHERE clause built from the filters given (None: no filter), with ``?``
    placeholders and their values in order."""

    def __init__(self) -> None:
        self.terms: list[str] = ["1 = 1"]
        self.params: list[Any] = []

    def add(self, term: str, *values: Any) -> None:
        self.terms.append(term)
        self.params.extend(values)

    def equal(self, column: str, value: Any) -> None:
        if value is not None:
            self.add(f"{column} = ?", value)

    def within(self, column: str, t0: int | None, t1: int | None) -> None:
        if t0 is not None:
            self.add(f"{column} >= ?", t0)
        if t1 is not None:
            self.add(f"{column} <= ?", t1)

    @property
    def sql(self) -> str:
        return " AND ".join(self.terms)
