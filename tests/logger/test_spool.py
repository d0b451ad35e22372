"""The sender's spool on disk, and the sender with it against an in-process logger."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daq import messages
from daq.logger.config import LoggerConfig, logger_config_from_mapping
from daq.logger.service import LoggerEndpoints, LoggerService
from daq.logger.sqlite_store import DB_NAME
from daq.reliable import (
    GapReason,
    ReliableSender,
    Spool,
    SpoolBusy,
    SpoolLimits,
    load_instance_id,
)
from daq.reliable.spool import Entry
from tests.logger.conftest import Stamper
from tests.procs import free_port

T0 = 1_700_000_000_000_000_000


def _entry(epoch: int, stream: str, seq: int, size: int = 10) -> Entry:
    return Entry(0, epoch, stream, seq, time.time_ns(), b"h" * size, None)


def test_the_spool_keeps_messages_sessions_and_gaps_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    spool.begin_session(7, "d1")
    spool.write([_entry(7, "data/a/x", s) for s in range(10)])
    spool.write([], acked={(7, "data/a/x"): 3})
    notices = spool.park(7, "data/a/x", 5, 5, "odd")
    assert [(g.first, g.last, g.reason) for g in notices] == [(5, 5, GapReason.REFUSED)]
    spool.close()
    again = Spool(path)
    try:
        assert again.count == 5 and again.sessions == {7: "d1"}
        assert [e.seq for e in again.read(0, 100, 1 << 20)] == [4, 6, 7, 8, 9]
        assert again.last_seqs(7) == {"data/a/x": 9}
        assert [(g.first, g.last) for g in again.gaps] == [(5, 5)] and again.parked == 1
        again.write([], acked={(7, "data/a/x"): 9}, closed=[7])
        assert again.count == 0 and again.gaps == [] and again.sessions == {}
    finally:
        again.close()


def test_a_second_process_cannot_take_a_spool_in_use(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    try:
        with pytest.raises(SpoolBusy, match="in use"):
            Spool(tmp_path / "spool.sqlite")
    finally:
        spool.close()
    Spool(tmp_path / "spool.sqlite").close()  # free again


def test_overflow_drops_the_oldest_and_reports_each_dropped_range(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", SpoolLimits(max_messages=100))
    try:
        spool.write([_entry(1, f"data/a/s{s % 2}", s // 2) for s in range(100)])
        assert spool.count == 100 and spool.gaps == []
        dropped = spool.write([_entry(1, "data/a/s0", 50)])
        assert dropped is not None and spool.count == 99 - 1 + 1  # 1 % below the bound
        assert dropped.count == 2 and spool.dropped == 2
        assert sorted((g.stream, g.first, g.last) for g in spool.gaps) == [
            ("data/a/s0", 0, 0), ("data/a/s1", 0, 0)]
        assert all(g.reason == GapReason.SPOOL_OVERFLOW for g in spool.gaps)
        spool.write([_entry(1, "data/a/s0", 51 + i) for i in range(4)])  # more drops ...
        assert sorted((g.stream, g.first, g.last) for g in spool.gaps) == [
            ("data/a/s0", 0, 2), ("data/a/s1", 0, 2)]  # ... continue the same notices
    finally:
        spool.close()
    again = Spool(tmp_path / "spool.sqlite")
    try:
        assert sorted((g.stream, g.first, g.last) for g in again.gaps) == [
            ("data/a/s0", 0, 2), ("data/a/s1", 0, 2)]
    finally:
        again.close()


def test_the_instance_id_is_created_once_and_kept(tmp_path: Path) -> None:
    first = load_instance_id(tmp_path / "state")
    assert first == load_instance_id(tmp_path / "state") and len(first) == 32
    (tmp_path / "state" / "instance.id").write_text("garbage")
    with pytest.raises(ValueError, match="instance id"):
        load_instance_id(tmp_path / "state")


# ---- the sender with its spool, against a logger in this process ----------------------------


def _config(tmp_path: Path, endpoint: str = "tcp://127.0.0.1:0") -> LoggerConfig:
    return logger_config_from_mapping({"directory": str(tmp_path / "store"),
                                       "endpoint": endpoint,
                                       "history_endpoint": "tcp://127.0.0.1:0",
                                       "max_batch_delay_s": 0.01})


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[LoggerService, LoggerEndpoints]]:
    svc = LoggerService(_config(tmp_path))
    endpoints = svc.start()
    yield svc, endpoints
    svc.stop()


def _db(tmp_path: Path, sql: str) -> list[tuple[int, ...]]:
    with sqlite3.connect(tmp_path / "store" / DB_NAME) as conn:
        return conn.execute(sql).fetchall()


def _pump(sender: ReliableSender, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sender.poll(0.02)


def test_a_full_spool_drops_the_oldest_and_the_logger_records_the_exact_gap(
        tmp_path: Path) -> None:
    url = f"tcp://127.0.0.1:{free_port()}"  # the logger is not there yet
    stamp = Stamper("small")
    sender = ReliableSender(url, pub=stamp.pub, epoch=stamp.epoch,
                            spool_path=tmp_path / "state" / "spool.sqlite",
                            limits=SpoolLimits(max_messages=500), resend_after_s=0.3)
    try:
        for i in range(2000):
            sender.send(stamp(messages.scalar("f", "x", float(i), t=T0 + i)))
            if i % 100 == 99:
                sender.poll(0)
        sender.poll(0)
        assert sender.unacked <= 500 and sender.stats().overflow_dropped >= 1500
        svc = LoggerService(_config(tmp_path, url))
        svc.start()
        try:
            assert sender.flush(30), sender.stats()
        finally:
            svc.stop()
    finally:
        sender.close()
    seqs = [s for (s,) in _db(tmp_path, "SELECT seq FROM samples ORDER BY seq")]
    gaps = _db(tmp_path, "SELECT seq_first, seq_last, reason FROM gaps ORDER BY seq_first")
    assert {reason for _, _, reason in gaps} == {"spool overflow"}
    covered = [seq for first, last, _ in gaps for seq in range(first, last + 1)]
    assert covered == list(range(seqs[0]))  # exactly what is not stored, once
    assert seqs == list(range(seqs[0], 2000)) and len(seqs) >= 490


def test_a_poisoned_message_is_parked_and_its_stream_and_the_others_flow(
        service: tuple[LoggerService, LoggerEndpoints], tmp_path: Path) -> None:
    svc, ep = service
    stamp = Stamper("p1")
    sender = ReliableSender(ep.endpoint, pub=stamp.pub, epoch=stamp.epoch,
                            spool_path=tmp_path / "state" / "spool.sqlite", resend_after_s=0.5)
    try:
        for i in range(20):
            sender.send(stamp(messages.scalar("f", "ok", float(i), t=T0 + i)))
            units = "\ud800" if i == 5 else "K"  # no store can encode a lone surrogate
            sender.send(stamp(messages.scalar("f", "odd", float(i), t=T0 + i, units=units)))
        assert sender.flush(20), sender.stats()
        stats = sender.stats()
    finally:
        sender.close()
    assert stats.parked_streams == ("data/f/odd",) and stats.parked_messages == 1
    assert "data/f/odd epoch" in stats.logger_errors[-1]
    rows = _db(tmp_path, "SELECT c.stream, COUNT(*) FROM samples s JOIN channels c ON"
                         " c.id = s.channel_id GROUP BY 1 ORDER BY 1")
    assert rows == [("data/f/odd", 19), ("data/f/ok", 20)]
    assert _db(tmp_path, "SELECT seq_first, seq_last, reason FROM gaps") == [
        (5, 5, "refused by the logger")]
    assert svc.stats.poisoned == 1


def test_a_writer_exception_is_answered_with_an_error_never_silence(
        service: tuple[LoggerService, LoggerEndpoints], monkeypatch: pytest.MonkeyPatch) -> None:
    from daq.logger.writer import Writer

    def broken(self: Writer, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    _svc, ep = service
    stamp = Stamper("b1")
    sender = ReliableSender(ep.endpoint, pub=stamp.pub, epoch=stamp.epoch, resend_after_s=0.3)
    try:
        monkeypatch.setattr(Writer, "process", broken)
        sender.send(stamp(messages.scalar("f", "x", 1.0)))
        end = time.monotonic() + 10
        while not sender.logger_errors and time.monotonic() < end:
            sender.poll(0.05)
        assert "write cycle failed unexpectedly" in sender.logger_errors[-1]
        assert "RuntimeError: a bug" in sender.logger_errors[-1] and sender.unacked == 1
        monkeypatch.undo()
        assert sender.flush(10)
    finally:
        sender.close()


def test_a_clean_stop_with_the_logger_away_resends_at_the_next_start_under_the_old_session(
        tmp_path: Path) -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    spool = tmp_path / "state" / "spool.sqlite"
    old = Stamper("d1")
    sender = ReliableSender(url, pub=old.pub, epoch=old.epoch, spool_path=spool)
    for i in range(300):
        sender.send(old(messages.scalar("f", "x", float(i), t=T0 + i)))
    assert not sender.finish(0.3)  # nobody acknowledges: it all stays in the spool
    sender.close()
    svc = LoggerService(_config(tmp_path, url))
    svc.start()
    try:
        new = Stamper("d1")
        again = ReliableSender(url, pub=new.pub, epoch=new.epoch, spool_path=spool,
                               resend_after_s=0.5)
        try:
            assert again.instance == sender.instance and again.unacked == 300
            again.send(new(messages.scalar("f", "x", -1.0, t=T0 - 1)))
            assert again.flush(20)
            end = time.monotonic() + 10
            while again.stats().pending_sessions and time.monotonic() < end:
                again.poll(0.05)
            assert again.stats().pending_sessions == 0  # the old session was closed
            assert again.finish(5)
        finally:
            again.close()
    finally:
        svc.stop()
    assert _db(tmp_path, f"SELECT COUNT(DISTINCT seq) FROM samples WHERE epoch = {old.epoch}"
               ) == [(300,)]
    assert _db(tmp_path, "SELECT COUNT(*) FROM gaps") == [(0,)]
    assert _db(tmp_path, "SELECT DISTINCT closed FROM progress") == [(1,)]


def test_a_second_daemon_under_the_same_name_is_refused_and_the_first_keeps_archiving(
        service: tuple[LoggerService, LoggerEndpoints], tmp_path: Path) -> None:
    svc, ep = service
    first = Stamper("twin")
    second = Stamper("twin", epoch=first.epoch + 1)  # started later: a newer session
    a = ReliableSender(ep.endpoint, pub="twin", epoch=first.epoch, resend_after_s=0.3)
    b = ReliableSender(ep.endpoint, pub="twin", epoch=second.epoch, resend_after_s=0.3)
    try:
        a.send(first(messages.scalar("f", "x", 1.0)))
        assert a.flush(10)
        b.send(second(messages.scalar("f", "x", 2.0)))
        end = time.monotonic() + 10
        while not b.identity_refusals and time.monotonic() < end:
            b.poll(0.05)
            a.poll(0)
        assert b.stats().identity_refusals >= 1 and b.unacked == 1  # kept, not lost
        a.send(first(messages.scalar("f", "x", 3.0)))
        assert a.flush(10)
    finally:
        a.close()
        b.close()
    assert svc.stats.refused_sessions >= 1
    assert _db(tmp_path, "SELECT value FROM samples ORDER BY value") == [(1.0,), (3.0,)]
