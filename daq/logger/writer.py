"""The write cycle: parsed frames in, durable storage and the replies for the senders out.

One :class:`Writer` owns the sinks and the ledger, and runs in the logger's
writer thread. :meth:`Writer.process` takes the frame sets collected since
the last cycle (from any number of daemons) and:

1. answers HELLO with an ACK of what the store holds for that session,
   supersedes the publisher's older sessions (their gaps are recorded);
2. notes heartbeats (the newest seq of each stream);
3. refuses invalid messages (ERROR to their sender, counted), drops
   duplicates by ``(stream, epoch, seq)`` and keeps the rest;
4. writes and commits the batch in every sink (HDF5 flush before the SQL
   commit), then acknowledges, per sender, the highest contiguous durable
   seq of each stream it sent. On a failed write nothing is acknowledged:
   every sender in the cycle gets an ERROR naming the store and the cause,
   and keeps its data spooled until a later cycle succeeds.

If the store cannot even be opened (read-only or missing directory, server
down), every cycle retries opening it and answers ERROR meanwhile; the
service keeps running.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from daq import reliable
from daq.logger.config import LoggerConfig
from daq.logger.hdf5_sink import Hdf5Sink
from daq.logger.ledger import Cycle, Ledger
from daq.logger.sink import Batch, Sink, Store
from daq.messages import SAMPLE_DTYPE, Kind, Message
from daq.reliable import Control

log = logging.getLogger(__name__)

Item = tuple[bytes, Message | Control]
Reply = tuple[bytes, list[bytes]]


@dataclass
class LoggerStats:
    """Counters of a running logger (read by the history endpoint's ``status``)."""

    received: int = 0
    malformed: int = 0
    rejected: int = 0
    duplicates: int = 0
    stored_messages: int = 0
    stored_samples: int = 0
    stored_records: int = 0
    gaps_recorded: int = 0
    batches: int = 0
    write_errors: int = 0
    acks_sent: int = 0
    store_ok: bool = False
    last_error: str = ""
    last_error_ns: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters as a JSON-able mapping."""
        return dict(self.__dict__)


def open_store(config: LoggerConfig, *, readonly: bool = False) -> Store:
    """Open the configured SQL store (SQLite file in the storage directory, or PostgreSQL)."""
    if config.store == "postgresql":
        from daq.logger.postgres_store import PostgresStore

        return PostgresStore(config.postgresql_dsn, readonly=readonly)
    from daq.logger.sqlite_store import DB_NAME, SqliteStore

    directory = config.storage_dir
    if not readonly:
        directory.mkdir(parents=True, exist_ok=True)
    return SqliteStore(directory / DB_NAME, synchronous=config.sqlite_synchronous,
                       readonly=readonly)


def validate(msg: Message) -> str | None:
    """Why ``msg`` cannot be stored, or None when it can."""
    if msg.seq < 0:
        return f"{msg.stream}: seq {msg.seq} is not stamped"
    if msg.kind is Kind.HEARTBEAT:
        return f"{msg.stream}: heartbeats travel as HB frames, not as MSG"
    if msg.kind is Kind.DATA:
        if msg.data is None or msg.data.dtype != SAMPLE_DTYPE or msg.data.ndim != 1 \
                or len(msg.data) == 0:
            return f"{msg.stream}: data payload must be 1-D (t ns, value) rows"
    elif msg.kind is Kind.WAVE:
        if msg.data is None or msg.data.ndim != 1 or msg.data.size == 0 \
                or msg.data.dtype.kind not in "iuf":
            return f"{msg.stream}: a waveform record must be a 1-D numeric array"
        for key in ("dt", "scale", "offset"):
            value = msg.meta.get(key, 1.0)
            if not isinstance(value, int | float) or isinstance(value, bool) \
                    or not math.isfinite(value):
                return f"{msg.stream}: meta {key} must be a finite number, got {value!r}"
        if not msg.meta.get("dt", 0) > 0:
            return f"{msg.stream}: meta dt must be > 0 s"
        for key in ("t0", "presamples"):
            value = msg.meta.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{msg.stream}: meta {key} must be an integer, got {value!r}"
    return None


def describe(exc: BaseException) -> str:
    """A one-line account of a storage failure: the exception type and its message."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"


class Writer:
    """Owns the sinks and the ledger; see the module docstring.

    Args:
        config: the logger section.
        stats: counters shared with the service.
    """

    def __init__(self, config: LoggerConfig, stats: LoggerStats) -> None:
        self.config = config
        self.stats = stats
        self.store: Store | None = None
        self.sinks: list[Sink] = []
        self.ledger: Ledger | None = None
        self._last_retention = time.monotonic()

    @property
    def where(self) -> str:
        """The storage location, for error messages."""
        if self.config.store == "postgresql":
            return "PostgreSQL store"
        return f"store {self.config.storage_dir}"

    def open(self) -> None:
        """Open the store (and the HDF5 sink, cutting back files a crash left open)."""
        store = open_store(self.config)
        sinks: list[Sink] = []
        try:
            if self.config.hdf5:
                hdf5 = Hdf5Sink(self.config.storage_dir, store, origin=self.config.logger_name,
                                rotate=self.config.hdf5_rotate,
                                max_bytes=int(self.config.hdf5_max_mb * 1e6))
                recovered = hdf5.recover()
                if recovered:
                    log.info("record files left open were cut back to their committed rows: %s",
                             ", ".join(recovered))
                sinks.append(hdf5)
        except BaseException:
            store.close()
            raise
        self.store = store
        self.sinks = [*sinks, store]  # the SQL store commits last: it is the commit log
        self.ledger = Ledger(store, self.config.gap_grace_s)
        self.stats.store_ok = True

    def try_open(self) -> str | None:
        """Open the sinks if not open yet; return the error text when that fails."""
        if self.ledger is not None:
            return None
        try:
            self.open()
        except Exception as exc:
            why = f"{self.where} cannot be opened: {describe(exc)}"
            self._failed(why)
            return why
        log.info("%s open", self.where)
        return None

    def _failed(self, why: str) -> None:
        self.stats.store_ok = False
        self.stats.write_errors += 1
        if why != self.stats.last_error:
            log.error("%s", why)
        self.stats.last_error = why
        self.stats.last_error_ns = time.time_ns()

    def close(self) -> None:
        """Close every sink (the current HDF5 file is closed and marked so)."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("closing %s: %s", type(sink).__name__, describe(exc))
        self.sinks = []
        self.store = None
        self.ledger = None

    # ---- the cycle --------------------------------------------------------------------------

    def process(self, items: list[Item], *, tick: bool = False) -> list[Reply]:
        """Run one write cycle over ``items``; return the replies to send (see module doc)."""
        why = self.try_open()
        if why is not None:
            return [(peer, reliable.error_frames(why)) for peer in _senders(items)]
        assert self.ledger is not None
        started = time.perf_counter()
        cycle = self.ledger.begin()
        batch = Batch()
        touched: dict[bytes, set[tuple[int, str]]] = defaultdict(set)
        hellos: list[tuple[bytes, int]] = []
        refused: dict[bytes, list[str]] = defaultdict(list)
        samples = records = 0
        try:
            for peer, item in items:
                if isinstance(item, Control):
                    self._control(peer, item, cycle, touched, hellos, refused)
                    continue
                problem = validate(item)
                if problem is not None:
                    self.stats.rejected += 1
                    refused[peer].append(problem)
                    continue
                cycle.session(item.pub, item.epoch)
                touched[peer].add((item.epoch, item.stream))
                if cycle.superseded(item):
                    self.stats.rejected += 1
                    refused[peer].append(
                        f"{item.stream}: session {item.epoch} of publisher {item.pub!r} was "
                        "superseded by a newer session of that name and its gaps are recorded "
                        "(two publishers with one name?)")
                    continue
                if not cycle.offer(item):
                    self.stats.duplicates += 1
                    continue
                batch.messages.append(item)
                if item.kind is Kind.DATA:
                    samples += len(item.data)  # type: ignore[arg-type]
                elif item.kind is Kind.WAVE:
                    records += 1
            if tick:
                cycle.expire()
            batch.gaps = cycle.gaps
            batch.progress = cycle.progress()
            written = committed = time.perf_counter()
            if batch.messages or batch.gaps or batch.progress:
                for sink in self.sinks:
                    sink.write_batch(batch)
                written = time.perf_counter()
                for sink in self.sinks:
                    sink.commit()
                committed = time.perf_counter()
        except Exception as exc:
            return self._cycle_failed(exc, items)
        self.ledger.apply(cycle)
        if batch.messages:  # only stored data proves the store healthy again
            self.stats.store_ok = True
        if items:
            log.debug("cycle: %d items, %d new; prepare+write %.1f ms, commit %.1f ms",
                      len(items), len(batch.messages), 1e3 * (written - started),
                      1e3 * (committed - written))
        self.stats.batches += 1
        self.stats.stored_messages += len(batch.messages)
        self.stats.stored_samples += samples
        self.stats.stored_records += records
        self.stats.gaps_recorded += len(batch.gaps)
        for gap, reason in batch.gaps:
            log.warning("gap recorded (%s): %s epoch %d seq %d..%d", reason, gap.stream,
                        gap.epoch, gap.first, gap.last)
        if tick:
            self._retention()
        return self._replies(touched, hellos, refused)

    def _control(self, peer: bytes, item: Control, cycle: Cycle,
                 touched: dict[bytes, set[tuple[int, str]]], hellos: list[tuple[bytes, int]],
                 refused: dict[bytes, list[str]]) -> None:
        body = item.body
        pub = body.get("pub")
        if item.verb not in (reliable.HELLO, reliable.HB) or not isinstance(pub, str):
            self.stats.malformed += 1
            refused[peer].append(f"{item.verb.decode(errors='replace')} is not for the logger "
                                 "or lacks a publisher name")
            return
        epoch = int(body["epoch"])
        cycle.session(pub, epoch)
        if item.verb == reliable.HELLO:
            hellos.append((peer, epoch))
        else:
            for stream in cycle.heartbeat(pub, epoch, body["streams"]):
                touched[peer].add((epoch, stream))

    def _cycle_failed(self, exc: Exception, items: list[Item]) -> list[Reply]:
        for sink in reversed(self.sinks):  # the store rolls back before files are cut back
            try:
                sink.abort()
            except Exception as abort_exc:
                log.warning("abort of %s: %s", type(sink).__name__, describe(abort_exc))
        if self.ledger is not None:
            self.ledger.reset_timers()
        why = (f"{self.where}: write failed, nothing of this batch is acknowledged "
               f"(it stays spooled at the sender): {describe(exc)}")
        self._failed(why)
        return [(peer, reliable.error_frames(why)) for peer in _senders(items)]

    def _replies(self, touched: dict[bytes, set[tuple[int, str]]],
                 hellos: list[tuple[bytes, int]], refused: dict[bytes, list[str]]) -> list[Reply]:
        assert self.ledger is not None
        replies: list[Reply] = []
        for peer, keys in touched.items():
            by_epoch: dict[int, list[str]] = defaultdict(list)
            for epoch, stream in keys:
                by_epoch[epoch].append(stream)
            for epoch, streams in by_epoch.items():
                acked = self.ledger.acked(epoch, streams)
                if acked:
                    replies.append((peer, reliable.ack_frames(epoch, acked)))
        for peer, epoch in hellos:
            replies.append((peer, reliable.ack_frames(epoch, self.ledger.acked(epoch))))
        for peer, problems in refused.items():
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            replies.append((peer, reliable.error_frames(f"refused: {problems[0]}{more}")))
        self.stats.acks_sent += len(replies)
        return replies

    def _retention(self) -> None:
        rules = self.config.retention
        now = time.monotonic()
        if not rules or self.store is None \
                or now - self._last_retention < self.config.retention_interval_s:
            return
        self._last_retention = now
        try:
            run_retention(self.store, rules, time.time_ns())
        except Exception as exc:
            log.error("retention failed (retried in %.0f s): %s",
                      self.config.retention_interval_s, describe(exc))


def run_retention(store: Store, rules: Any, now_ns: int) -> dict[str, int]:
    """Apply every retention rule once; return ``{stream: samples replaced}``."""
    done: dict[str, int] = {}
    for info in store.streams():
        if info["kind"] != Kind.DATA.value:
            continue
        for rule in rules:
            if rule.matches(info["stream"]):
                removed = store.downsample(info["stream"],
                                           now_ns - int(rule.older_than_s * 1e9),
                                           int(rule.bucket_s * 1e9))
                if removed:
                    done[info["stream"]] = removed
                break  # the first matching rule applies
    return done


def _senders(items: list[Item]) -> list[bytes]:
    """Peers that sent anything in ``items``, once each, in order."""
    return list(dict.fromkeys(peer for peer, _ in items))
