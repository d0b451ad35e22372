"""The reliable path end to end in real processes: a daemon-like sender (the real outbound
stage with its spool on disk) and the logger, killed, starved and attacked."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from daq import reliable
from daq.logger.history import HistoryClient
from daq.logger.sqlite_store import DB_NAME
from daq.reliable import new_instance_id
from tests.logger.conftest import LoggerProcess, write_config
from tests.procs import Service

Factory = Callable[..., LoggerProcess]
STREAMS = 3


class Peer:
    """``tests.logger.outbound_peer`` as a child process, with its stats lines parsed."""

    def __init__(self, logger_url: str, spool: Path, *, rate: float, name: str = "peer",
                 flush_s: float = 5.0) -> None:
        self.service = Service("-m", "tests.logger.outbound_peer", logger_url, "--spool",
                               str(spool), "--rate", str(rate), "--name", name,
                               "--streams", str(STREAMS), "--flush", str(flush_s), name=name)
        fields = self.service.wait_line("ready").split()
        self.epoch = int(fields[2])
        self.instance = fields[4]
        self.last: dict[str, float] = {}

    def stats(self, timeout_s: float = 10.0) -> dict[str, float]:
        """The next stats line."""
        line = self.service.wait_line("stats", timeout_s)
        self.last = {k: float(v) for k, v in (part.split("=") for part in line.split()[1:])}
        return self.last

    def wait(self, predicate: Callable[[dict[str, float]], bool], timeout_s: float = 60.0,
             what: str = "") -> dict[str, float]:
        """Stats lines until ``predicate`` holds (a handshake on the peer's own report)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            stats = self.stats()
            if predicate(stats):
                return stats
        raise AssertionError(f"peer never reported {what or 'the awaited state'}: {self.last}")

    def stop(self) -> int:
        """SIGTERM: the peer flushes, closes its session and exits."""
        self.service.wait_line("stats")
        code = self.service.stop(timeout_s=60)
        return code


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        with contextlib.suppress(Exception):
            peer.service.kill()


def _rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _archive(db: Path, epoch: int) -> tuple[dict[str, list[tuple[int, float]]],
                                             dict[str, list[tuple[int, int, str]]]]:
    """({stream: [(seq, value)]}, {stream: [(first, last, reason)]}) of one session."""
    stored: dict[str, list[tuple[int, float]]] = {}
    for stream, seq, value in _rows(db, "SELECT c.stream, s.seq, s.value FROM samples s JOIN"
                                        " channels c ON c.id = s.channel_id WHERE s.epoch = ?"
                                        " ORDER BY c.stream, s.seq", (epoch,)):
        stored.setdefault(stream, []).append((int(seq), float(value)))
    gaps: dict[str, list[tuple[int, int, str]]] = {}
    for stream, first, last, reason in _rows(
            db, "SELECT c.stream, g.seq_first, g.seq_last, g.reason FROM gaps g JOIN channels c"
                " ON c.id = g.channel_id WHERE g.epoch = ? ORDER BY g.seq_first", (epoch,)):
        gaps.setdefault(stream, []).append((int(first), int(last), str(reason)))
    return stored, gaps


def test_a_daemon_killed_while_the_logger_is_down_resends_its_spool_under_its_old_session(
        tmp_path: Path, logger_process: Factory, peers: list[Peer]) -> None:
    store = tmp_path / "store"
    logger = logger_process(write_config(tmp_path / "lab.yaml", directory=str(store),
                                         max_batch_delay_s=0.02))
    spool = tmp_path / "state" / "spool.sqlite"
    peers.append(first := Peer(logger.endpoint, spool, rate=1500))
    first.wait(lambda s: s["put"] > 1500 and s["unacked"] < 500, what="archiving")
    assert logger.stop() == 0  # the logger goes away; the daemon keeps sampling
    first.wait(lambda s: s["unacked"] > 3000, what="a spool of 3000")
    first.service.kill()  # kill -9: no flush, no goodbye
    with contextlib.closing(sqlite3.connect(spool)) as conn:  # what reached the disk
        synced = {s: int(q) for s, q in conn.execute(
            "SELECT stream, last_seq FROM streams WHERE epoch = ?", (first.epoch,))}
    assert len(synced) == STREAMS and min(synced.values()) > 1000
    logger.start()
    peers.append(second := Peer(logger.endpoint, spool, rate=100))
    assert second.instance == first.instance  # the same daemon, a new session
    second.wait(lambda s: s["pending_sessions"] == 0 and s["unacked"] < 50, timeout_s=90,
                what="the old session resent and closed")
    assert second.stop() == 0
    assert logger.stop() == 0
    db = store / DB_NAME
    stored, gaps = _archive(db, first.epoch)
    assert set(stored) == set(synced)
    for stream, last in synced.items():
        seqs = [seq for seq, _ in stored[stream]]
        # Everything that reached the spool is stored, exactly once, unaltered.
        assert seqs == list(range(last + 1)), stream
        assert all(value == seq for seq, value in stored[stream])
        # What the logger was told of beyond that (heartbeats) is a gap, nothing else is.
        beyond = gaps.get(stream, [])
        assert len(beyond) <= 1 and all(
            a == last + 1 and reason == reliable.LOST_BEFORE_SPOOLING for a, _, reason in beyond)
    closed = _rows(db, "SELECT COUNT(*) FROM progress WHERE epoch = ? AND closed = 1",
                   (first.epoch,))
    assert closed == [(STREAMS,)]  # closed explicitly, not superseded
    stored_b, gaps_b = _archive(db, second.epoch)
    assert gaps_b == {} and all(
        [seq for seq, _ in rows] == list(range(len(rows))) for rows in stored_b.values())


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


#: The sender's memory may grow by at most this much during an outage, however long.
RSS_BOUND_MB = 40


def test_an_outage_at_a_high_rate_costs_bounded_memory_and_few_duplicates(
        tmp_path: Path, logger_process: Factory, peers: list[Peer]) -> None:
    store = tmp_path / "store"
    logger = logger_process(write_config(tmp_path / "lab.yaml", directory=str(store)))
    rate, outage_s = 3000.0, 15.0
    peers.append(peer := Peer(logger.endpoint, tmp_path / "state" / "spool.sqlite", rate=rate,
                              flush_s=60))
    pid = peer.service.proc.pid
    peer.wait(lambda s: s["put"] > 2 * rate and s["unacked"] < rate / 2, what="steady state")
    baseline = 0
    for _ in range(3):
        peer.stats()
        baseline = max(baseline, _rss_kb(pid))
    logger.kill()
    put_before = peer.stats()["put"]
    end = time.monotonic() + outage_s
    peak = baseline
    while time.monotonic() < end:
        peer.stats()
        peak = max(peak, _rss_kb(pid))
    put_after = peer.stats()["put"]
    outage_messages = put_after - put_before
    logger.start()
    peer.wait(lambda s: s["unacked"] < rate, timeout_s=120, what="catching up")
    assert peer.stop() == 0
    last = peer.service.lines[-1].split()
    assert last[0] == "stopped" and last[2] == "unacked=0", peer.service.lines[-3:]
    total = int(last[1].split("=")[1])
    with HistoryClient(logger.history) as client:
        duplicates = client.status()["duplicates"]  # counted since the logger came back
    assert logger.stop() == 0
    counts = dict(_rows(store / DB_NAME, "SELECT c.stream, COUNT(DISTINCT s.seq) FROM samples s"
                                         " JOIN channels c ON c.id = s.channel_id GROUP BY 1"))
    rows = _rows(store / DB_NAME, "SELECT COUNT(*) FROM samples")[0][0]
    growth_mb = (peak - baseline) / 1024
    print(f"\noutage {outage_s:.0f} s at {rate:.0f} msg/s: {outage_messages:.0f} messages "
          f"spooled; sender RSS {baseline / 1024:.1f} MB -> peak {peak / 1024:.1f} MB "
          f"(+{growth_mb:.1f} MB); {duplicates} duplicates on the wire "
          f"({duplicates / outage_messages:.3f} x the outage's messages)")
    assert rows == total and sum(counts.values()) == total  # every message once
    assert growth_mb < RSS_BOUND_MB, f"sender grew {growth_mb:.1f} MB during the outage"
    assert duplicates <= outage_messages, (duplicates, outage_messages)


def _forged(verb: bytes, body: dict[str, Any]) -> list[bytes]:
    return [reliable.PROTOCOL, verb, json.dumps(body).encode()]


def test_forged_sessions_and_out_of_range_seqs_neither_stop_nor_slow_the_real_daemon(
        tmp_path: Path, logger_process: Factory, peers: list[Peer]) -> None:
    store = tmp_path / "store"
    logger = logger_process(write_config(tmp_path / "lab.yaml", directory=str(store),
                                         max_batch_delay_s=0.02))
    peers.append(peer := Peer(logger.endpoint, tmp_path / "state" / "spool.sqlite", rate=500,
                              name="victim"))
    peer.wait(lambda s: s["put"] > 500 and s["unacked"] < 100, what="archiving")
    forger = zmq.Context.instance().socket(zmq.DEALER)
    forger.setsockopt(zmq.LINGER, 0)
    forger.connect(logger.endpoint)
    stranger = new_instance_id()
    header = {"v": 1, "epoch": peer.epoch, "pub": "victim", "t": 0, "units": "", "q": 0,
              "meta": {}, "dtype": [["t", "<i8"], ["value", "<f8"]], "shape": [1]}
    payload = struct.pack("<qd", 0, 666.0)
    worst_age = worst_unacked = 0.0
    replies: list[reliable.Control] = []
    end = time.monotonic() + 3.0
    sent = 0
    while time.monotonic() < end:
        ident = {"pub": "victim", "instance": stranger}
        for frames in (
            _forged(reliable.HELLO, {**ident, "epoch": peer.epoch + 10**12, "resume": []}),
            _forged(reliable.HB, {**ident, "epoch": peer.epoch,
                                  "streams": {"data/peer/s0": 10**9}}),
            _forged(reliable.CLOSE, {**ident, "epoch": peer.epoch, "streams": {}}),
            _forged(reliable.GAP, {**ident, "epoch": peer.epoch, "stream": "data/peer/s0",
                                   "first": 0, "last": 10**9, "reason": "spool overflow"}),
            [reliable.PROTOCOL, reliable.MSG, b"data/peer/s0",
             json.dumps({**header, "seq": 2**64}).encode(), payload],
            [reliable.PROTOCOL, reliable.MSG, b"data/peer/s0",
             json.dumps({**header, "seq": 10**6}).encode(), payload],
        ):
            forger.send_multipart(frames)
            sent += 1
        while forger.poll(0):
            parsed = reliable.parse(forger.recv_multipart())
            assert isinstance(parsed, reliable.Control)
            replies.append(parsed)
        stats = peer.stats()
        worst_age = max(worst_age, stats["oldest_s"])
        worst_unacked = max(worst_unacked, stats["unacked"])
    assert worst_age < 1.5 and worst_unacked < 500, (worst_age, worst_unacked)
    assert replies and {r.verb for r in replies} == {reliable.ERROR}
    assert {r.body["code"] for r in replies} <= {"identity", "hello"}
    assert any(r.body["code"] == "identity" for r in replies)
    forger.close()
    with HistoryClient(logger.history) as client:
        status = client.status()
    assert status["refused_sessions"] >= sent // 6 and status["malformed"] >= sent // 6
    assert status["sessions"]["refusals"][-1]["pub"] == "victim"
    assert peer.stop() == 0
    assert logger.stop() == 0
    stored, gaps = _archive(store / DB_NAME, peer.epoch)
    assert gaps == {}
    for rows in stored.values():
        assert [seq for seq, _ in rows] == list(range(len(rows)))
        assert all(value == seq for seq, value in rows)  # nothing forged was stored
