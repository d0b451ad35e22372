"""The write cycle: parsed frames in, durable storage and the replies for the senders out.

One :class:`Writer` owns the sinks, the ledger and the publishers' owners
(:mod:`daq.logger.sessions`), and runs in the logger's writer thread.
:meth:`Writer.process` takes the frame sets collected since the last cycle
(from any number of daemons), hands each to an :class:`~daq.logger.intake.Intake`
(identities, sessions, the ledger, the batch: see there), then writes and
commits the batch in every sink (HDF5 flush before the SQL commit), and
only then acknowledges, per sender, the highest contiguous durable seq of
each stream it sent.

When the batch fails:

* the store cannot write at all (disk full, read-only, server down:
  :func:`~daq.logger.isolate.is_store_failure`): nothing is acknowledged;
  every sender in the cycle gets an ERROR (``store``) naming the store and
  the cause, and keeps its data spooled until a later cycle succeeds;
* anything else: the batch is written again in parts
  (:mod:`daq.logger.isolate`), so that one sender's or one stream's poison
  never fails the others; what fails alone is refused (ERROR ``refused``
  naming stream and seq range: the sender parks it).

Whatever happens, every sender in a cycle gets an answer. If the store
cannot even be opened (read-only or missing directory, server down),
every cycle retries opening it and answers ERROR meanwhile; the service
keeps running.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

from daq import reliable
from daq.logger.config import LoggerConfig
from daq.logger.hdf5_sink import Hdf5Sink
from daq.logger.intake import Intake, validate
from daq.logger.isolate import MAX_ATTEMPTS, is_store_failure, split
from daq.logger.ledger import Ledger
from daq.logger.replies import Replies, Reply
from daq.logger.run_sink import RunSink
from daq.logger.sessions import Sessions
from daq.logger.sink import Batch, Sink, Store
from daq.logger.stats import LoggerStats
from daq.messages import Kind, Message
from daq.reliable import Control, ErrorCode

log = logging.getLogger(__name__)

Item = tuple[bytes, Message | Control]

__all__ = ["Item", "LoggerStats", "Reply", "Writer", "describe", "open_store", "run_retention",
           "validate"]

#: Messages remembered as failing alone before anything else was stored (bounded).
_MAX_SUSPECTS = 1000


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
        self.sessions: Sessions | None = None
        #: With CURVE: the publisher name each client key may archive as (the allow-list).
        self.key_names: Mapping[str, str] | None = None
        self._suspects: OrderedDict[tuple[str, int, int], int] = OrderedDict()
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
                sinks.append(RunSink(self.config.storage_dir, store))  # one file per run
        except BaseException:
            store.close()
            raise
        self.store = store
        self.sinks = [*sinks, store]  # the SQL store commits last: it is the commit log
        self.ledger = Ledger(store, self.config.gap_grace_s)
        if self.sessions is None:  # kept across a reopen: it knows who was heard lately
            self.sessions = Sessions(store.load_publishers(), self.config.takeover_after_s)
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
        self.stats.error(why)

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

    def process(self, items: list[Item], *, tick: bool = False,
                keys: Mapping[bytes, str] | None = None) -> list[Reply]:
        """Run one write cycle over ``items``; return the replies to send (see module doc).

        Args:
            items: (connection, frame set) in arrival order.
            tick: also expire holes past their grace period and run retention.
            keys: the CURVE public key (ZAP User-Id) of each connection, when the
                endpoint runs CURVE; identities are then keys, not claimed instance ids.
        """
        why = self.try_open()
        if why is not None:
            return [(peer, reliable.error_frames(why)) for peer in _senders(items)]
        keys = keys or {}
        try:
            replies = self._attempt(items, keys)
        except Exception as exc:
            self._abort()
            if is_store_failure(exc):
                return self._cycle_failed(exc, items)
            replies = self._isolate(items, keys, exc)
        if tick:
            self._tick()
        return replies

    def _attempt(self, items: list[Item], keys: Mapping[bytes, str]) -> list[Reply]:
        """Write ``items`` in one transaction and apply it; raise whatever the sinks raise."""
        assert self.ledger is not None and self.sessions is not None
        started = time.perf_counter()
        cycle = self.ledger.begin()
        intake = Intake(cycle, self.sessions, keys, self.key_names,
                        keeps_records=self.config.hdf5)
        for peer, item in items:
            intake.take(peer, item)
        batch = intake.batch
        batch.gaps = cycle.gaps
        batch.progress = cycle.progress()
        batch.publishers = self.sessions.changed()
        written = committed = time.perf_counter()
        if batch.messages or batch.gaps or batch.progress or batch.publishers:
            for sink in self.sinks:
                sink.write_batch(batch)
            written = time.perf_counter()
            for sink in self.sinks:
                sink.commit()
            committed = time.perf_counter()
        self.ledger.apply(cycle)
        self.sessions.saved(batch.publishers)
        if batch.messages:  # only stored data proves the store healthy again
            self.stats.store_ok = True
        if items:
            log.debug("cycle: %d items, %d new; prepare+write %.1f ms, commit %.1f ms",
                      len(items), len(batch.messages), 1e3 * (written - started),
                      1e3 * (committed - written))
        self._count(intake, len(batch.gaps))
        replies = intake.replies.build(self.ledger)
        self.stats.acks_sent += len(replies)
        return replies

    def _count(self, intake: Intake, gaps: int) -> None:
        stats, tally = self.stats, intake.tally
        stats.batches += 1
        stats.stored_messages += len(intake.batch.messages)
        stats.stored_samples += tally.samples
        stats.stored_records += tally.records
        stats.rejected += tally.rejected
        stats.duplicates += tally.duplicates
        stats.malformed += tally.malformed
        stats.refused_sessions += tally.refused_sessions
        stats.sender_gaps += tally.sender_gaps
        stats.gaps_recorded += gaps
        for gap, reason in intake.batch.gaps:
            log.warning("gap recorded (%s): %s epoch %d seq %d..%d", reason, gap.stream,
                        gap.epoch, gap.first, gap.last)
        if self.sessions is not None:
            stats.sessions = self.sessions.snapshot()

    def _tick(self) -> None:
        """Expire holes past their grace period (sessions no live sender holds); retention."""
        assert self.ledger is not None and self.sessions is not None
        cycle = self.ledger.begin()
        cycle.expire(self.sessions.held)
        if cycle.changed:
            try:
                batch = Batch(gaps=cycle.gaps, progress=cycle.progress())
                for sink in self.sinks:
                    sink.write_batch(batch)
                for sink in self.sinks:
                    sink.commit()
            except Exception as exc:
                self._abort()
                self._failed(f"{self.where}: recording expired gaps failed: {describe(exc)}")
                return
            self.ledger.apply(cycle)
            self.stats.gaps_recorded += len(cycle.gaps)
            for gap, reason in cycle.gaps:
                log.warning("gap recorded (%s): %s epoch %d seq %d..%d", reason, gap.stream,
                            gap.epoch, gap.first, gap.last)
        self.stats.sessions = self.sessions.snapshot()
        self._retention()

    def _abort(self) -> None:
        for sink in reversed(self.sinks):  # the store rolls back before files are cut back
            try:
                sink.abort()
            except Exception as abort_exc:
                log.warning("abort of %s: %s", type(sink).__name__, describe(abort_exc))

    def _cycle_failed(self, exc: Exception, items: list[Item]) -> list[Reply]:
        if self.ledger is not None:
            self.ledger.reset_timers()
        why = (f"{self.where}: write failed, nothing of this batch is acknowledged "
               f"(it stays spooled at the sender): {describe(exc)}")
        self._failed(why)
        return [(peer, reliable.error_frames(why)) for peer in _senders(items)]

    def _isolate(self, items: list[Item], keys: Mapping[bytes, str],
                 first: Exception) -> list[Reply]:
        """Write ``items`` again in parts; refuse what fails alone (see the module docstring)."""
        self.stats.isolations += 1
        log.warning("a write batch of %d items failed (%s): writing it again in parts",
                    len(items), describe(first))
        replies: list[Reply] = []
        failed: list[tuple[list[Item], Exception]] = []
        alone: list[tuple[list[Item], Exception]] = []
        pending = deque(split(items))
        attempts = 0
        stored_any = False
        while pending:
            unit = pending.popleft()
            if attempts >= MAX_ATTEMPTS:
                failed.append((unit, first))
                continue
            attempts += 1
            try:
                replies.extend(self._attempt(unit, keys))
                stored_any = True
                continue
            except Exception as err:
                self._abort()
                if is_store_failure(err):
                    failed.append((unit, err))
                    continue
                parts = split(unit)
                if len(parts) > 1:
                    pending.extendleft(reversed(parts))  # depth first: the culprit soon alone
                else:
                    alone.append((unit, err))
        refusals = Replies()
        for unit, exc in alone:
            found = [(peer, m) for peer, m in unit if isinstance(m, Message)]
            if not found or not (stored_any or self._suspected(found[0][1])):
                failed.append((unit, exc))
                continue
            for peer, msg in found:
                self.stats.poisoned += 1
                why = f"the store fails on this message alone: {describe(exc)}"
                refusals.refuse(peer, msg.stream, msg.epoch, msg.seq, why)
                log.error("refused %s epoch %d seq %d (parked at its sender): %s", msg.stream,
                          msg.epoch, msg.seq, why)
                self.stats.error(f"refused {msg.stream} epoch {msg.epoch} seq {msg.seq}: {why}")
        assert self.ledger is not None
        replies.extend(refusals.build(self.ledger))
        if failed:
            self.ledger.reset_timers()
            why = (f"{self.where}: write failed, nothing of this batch is acknowledged "
                   f"(it stays spooled at the sender): {describe(failed[0][1])}")
            self._failed(why)
            for peer in _senders([item for unit, _ in failed for item in unit]):
                replies.append((peer, reliable.error_frames(why, ErrorCode.STORE)))
        return replies

    def _suspected(self, msg: Message) -> bool:
        """True when ``msg`` already failed alone before (then it is poison, not bad luck)."""
        key = (msg.stream, msg.epoch, msg.seq)
        seen = self._suspects.pop(key, 0) + 1
        self._suspects[key] = seen
        while len(self._suspects) > _MAX_SUSPECTS:
            self._suspects.popitem(last=False)
        return seen >= 2

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
