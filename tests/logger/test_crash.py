"""Crash and fault tests in real processes: kill -9 of either side, a full disk, a read-only store."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daq import messages
from daq.logger.history import HistoryClient
from daq.logger.sqlite_store import DB_NAME
from daq.reliable import ReliableSender, new_instance_id
from tests.logger.conftest import ROOT, LoggerProcess, Stamper, read_line, write_config

T0 = 1_700_000_000_000_000_000

Factory = Callable[..., LoggerProcess]


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def _open_every_h5(directory: Path) -> dict[str, list[tuple[int, int]]]:
    """Open every HDF5 file with plain h5py; return {stream: [(epoch, seq), ...]} found."""
    found: dict[str, list[tuple[int, int]]] = {}
    for path in sorted(directory.rglob("*.h5")):
        with h5py.File(path, "r") as f:
            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Group) and "seq" in obj:
                    n = obj["records"].shape[0]
                    assert obj["seq"].shape[0] >= n or n == 0
                    if n:
                        obj["records"][n - 1]  # the last record reads
                    found.setdefault(name, []).extend(
                        zip(obj["epoch"][:n].tolist(), obj["seq"][:n].tolist(), strict=True))
            f.visititems(visit)
    return found


def _pump(sender: ReliableSender, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sender.poll(0.02)


def test_kill_9_of_the_logger_at_random_moments_loses_and_duplicates_nothing(
        tmp_path: Path, logger_process: Factory) -> None:
    store = tmp_path / "store"
    cfg = write_config(tmp_path / "lab.yaml", directory=str(store), max_batch_delay_s=0.02,
                       gap_grace_s=600)
    logger = logger_process(cfg)
    # The kill moments are random; a failure names the seed (rerun: QUPDAQ_CRASH_SEED=...).
    seed = int(os.environ.get("QUPDAQ_CRASH_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    stamp = Stamper("heavy")
    sender = ReliableSender(logger.endpoint, pub=stamp.pub, epoch=stamp.epoch,
                            resend_after_s=0.4)
    problems: list[str] = []
    kills = 3
    sent_at_kill: list[int] = []
    i = 0
    done_killing = threading.Event()

    def killer() -> None:
        try:
            for _ in range(kills):
                done_killing.wait(rng.uniform(0.2, 0.9))  # a random moment, not a readiness wait
                logger.kill()
                sent_at_kill.append(i)
                try:
                    _open_every_h5(store)
                except Exception as exc:  # collected: asserted in the test's thread
                    problems.append(f"an HDF5 file did not open after kill -9: {exc!r}")
                logger.start()
        except Exception as exc:
            problems.append(f"killer: {exc!r}")
        finally:
            done_killing.set()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    n_scalar, streams = 24_000, 3
    record = np.random.default_rng(1).integers(-3000, 3000, 8192).astype(np.int16)
    while i < n_scalar or not done_killing.is_set():
        for _ in range(40):
            if i >= n_scalar:
                break
            sender.send(stamp(messages.scalar("fridge1", f"t{i % streams}", float(i),
                                              t=T0 + i)))
            if i % 40 == 0:
                sender.send(stamp(messages.waveform("tes1", "squid", record, dt=1e-6,
                                                    t0=T0 + i)))
            i += 1
        sender.poll(0.005)
    thread.join(60)
    assert not problems, (seed, problems)
    assert sender.flush(60), f"seed {seed}: {sender.unacked} messages never acknowledged"
    sender.close()
    assert logger.stop() == 0
    assert len(sent_at_kill) == kills and sent_at_kill[0] < n_scalar  # killed mid-stream
    assert sender.resends >= 1  # the sender had to resend what died with a logger
    rows = _rows(store / DB_NAME, "SELECT c.stream, s.seq, s.value FROM samples s JOIN channels c"
                                  " ON c.id = s.channel_id ORDER BY c.stream, s.seq")
    per_stream: dict[str, list[int]] = {}
    for stream, seq, value in rows:
        per_stream.setdefault(stream, []).append(seq)
        assert value == float(seq * streams + int(stream[-1])), "a stored value was altered"
    assert per_stream == {f"data/fridge1/t{k}": list(range(n_scalar // streams))
                          for k in range(streams)}, f"seed {seed}"
    in_files = _open_every_h5(store)
    assert sorted(in_files["wave/tes1/squid"]) == [(stamp.epoch, s) for s in range(600)]
    index = _rows(store / DB_NAME, "SELECT f.path, r.row, r.seq FROM records r JOIN files f"
                                   " ON f.id = r.file_id")
    assert sorted(seq for _, _, seq in index) == list(range(600))
    for path, row, seq in index:
        with h5py.File(store / path, "r") as f:
            assert f["wave/tes1/squid/seq"][row] == seq
            assert np.array_equal(f["wave/tes1/squid/records"][row], record)
    assert _rows(store / DB_NAME, "SELECT COUNT(*) FROM gaps") == [(0,)]


def test_kill_9_of_the_sender_keeps_what_was_acked_and_records_the_gap(
        tmp_path: Path, logger_process: Factory) -> None:
    store = tmp_path / "store"
    logger = logger_process(write_config(tmp_path / "lab.yaml", directory=str(store)))
    instance = new_instance_id()  # without a spool on disk: said on the command line
    peer = subprocess.Popen([sys.executable, "-m", "tests.logger.sender_peer", logger.endpoint,
                             "--pub", "victim", "--window", "20", "--instance", instance],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        epoch = int(read_line(peer, "epoch").split()[1])
        while True:
            fields = read_line(peer, "acked").split()
            if int(fields[1]) >= 200 and int(fields[5]) >= 200:
                break
    finally:
        peer.kill()
        peer.wait()
    assert peer.stdout is not None
    last_acked = int(fields[1])
    for line in peer.stdout.read().splitlines():  # acks printed before the kill
        if line.startswith("acked"):
            last_acked = int(line.split()[1])
    # The daemon comes back under the same name, without a spool: its old session is over.
    stamp = Stamper("victim")
    sender = ReliableSender(logger.endpoint, pub="victim", epoch=stamp.epoch, instance=instance)
    sender.send(stamp(messages.scalar("peer", "y", 1.0)))
    assert sender.flush(10)
    sender.close()
    with HistoryClient(logger.history) as client:
        gaps = client.gaps("data/peer/x")
    seqs = [s for (s, v) in _rows(store / DB_NAME, f"SELECT seq, value FROM samples WHERE "
                                                   f"epoch = {epoch} ORDER BY seq")]
    values = [v for (_s, v) in _rows(store / DB_NAME, f"SELECT seq, value FROM samples WHERE "
                                                      f"epoch = {epoch} ORDER BY seq")]
    assert seqs == list(range(len(seqs))) and values == [float(s) for s in seqs]
    assert seqs[-1] >= last_acked  # every acknowledged sample is stored
    assert len(gaps) == 1 and gaps[0]["epoch"] == epoch and gaps[0]["reason"] == "superseded"
    assert gaps[0]["first"] == seqs[-1] + 1 and gaps[0]["last"] > gaps[0]["first"]


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[bool]:
    """Mount a tmpfs at ``path`` (root only); yields False when that is not possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ
    return preexec


def _until_error(sender: ReliableSender, make: Callable[[], messages.Message],
                 max_messages: int) -> int:
    sent = 0
    while not sender.logger_errors and sent < max_messages:
        sender.send(make())
        sent += 1
        sender.poll(0.002)
    _pump(sender, 0.3)
    return sent


def test_a_full_disk_is_reported_and_nothing_unacknowledged_leaves_the_sender(
        tmp_path: Path, logger_process: Factory) -> None:
    disk = tmp_path / "disk"
    with _tmpfs(disk, "size=3m") as mounted:
        cfg = write_config(tmp_path / "lab.yaml", directory=str(disk / "store"),
                           max_batch_delay_s=0.01)
        logger = logger_process(cfg, preexec=None if mounted else _fsize_limit(3 << 20))
        stamp = Stamper("filler")
        sender = ReliableSender(logger.endpoint, pub=stamp.pub, epoch=stamp.epoch,
                                resend_after_s=0.5)
        rows = np.arange(400, dtype=np.int64)
        record = np.ones(8192, np.int16)
        k = 0

        def make() -> messages.Message:
            nonlocal k
            k += 1
            if k % 5 == 0:
                return stamp(messages.waveform("tes1", "pulse", record, dt=1e-6))
            return stamp(messages.scalar_batch("fridge1", "flow", T0 + rows + k * 1000,
                                               rows * 0.5 + k))

        sent = _until_error(sender, make, 5000)
        assert sender.logger_errors, f"no ERROR after {sent} messages on a 3 MB disk"
        why = sender.logger_errors[-1]
        assert "write failed" in why and str(disk / "store") in why
        assert any(w in why for w in ("full", "No space", "too large")), why
        for _ in range(20):  # the daemon keeps sending meanwhile
            sender.send(make())
        _pump(sender, 0.5)
        acked_before = dict(sender.acked)
        assert sender.unacked >= 20, "unacknowledged data must stay in the sender's spool"
        with HistoryClient(logger.history) as client:
            status = client.status()
        assert not status["store_ok"] and status["write_errors"] > 0
        assert "write failed" in status["last_error"]
        # Space returns.
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)
        else:
            logger.kill()
            logger.preexec = None
            logger.start()
        assert sender.flush(60), f"{sender.unacked} messages never landed once space returned"
        sender.close()
        assert logger.stop() == 0
        db = disk / "store" / DB_NAME
        seqs = _rows(db, "SELECT DISTINCT s.seq FROM samples s JOIN channels c ON "
                         "c.id = s.channel_id WHERE c.stream = 'data/fridge1/flow' ORDER BY 1")
        n_flow = stamp.seqs["data/fridge1/flow"] + 1
        assert [s for (s,) in seqs] == list(range(n_flow))
        assert _rows(db, "SELECT COUNT(*) FROM samples") == [(n_flow * 400,)]
        assert acked_before["data/fridge1/flow"] < n_flow - 1
        waves = _open_every_h5(disk / "store")["wave/tes1/pulse"]
        assert sorted(waves) == [(stamp.epoch, s)
                                 for s in range(stamp.seqs["wave/tes1/pulse"] + 1)]


def test_a_read_only_store_directory_is_reported_and_the_data_waits_at_the_sender(
        tmp_path: Path, logger_process: Factory) -> None:
    directory = tmp_path / "ro"
    with _tmpfs(directory, "size=8m,ro") as mounted:
        if not mounted:
            directory.chmod(0o500)
        cfg = write_config(tmp_path / "lab.yaml", directory=str(directory))
        logger = logger_process(cfg, log=tmp_path / "logger.log")
        assert logger.ready["store"] == "error"
        stamp = Stamper("ro")
        sender = ReliableSender(logger.endpoint, pub=stamp.pub, epoch=stamp.epoch,
                                resend_after_s=0.3)
        for i in range(10):
            sender.send(stamp(messages.scalar("fridge1", "p", float(i))))
        end = time.monotonic() + 10
        while not sender.logger_errors and time.monotonic() < end:
            sender.poll(0.05)
        assert sender.logger_errors and "cannot be opened" in sender.logger_errors[-1]
        assert str(directory) in sender.logger_errors[-1] and sender.unacked == 10
        with HistoryClient(logger.history) as client:
            assert not client.status()["store_ok"]
        if mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)
        else:
            directory.chmod(0o700)
        assert sender.flush(30)
        sender.close()
        assert logger.stop() == 0
        assert _rows(directory / DB_NAME, "SELECT seq, value FROM samples ORDER BY seq") == [
            (i, float(i)) for i in range(10)]
        log = (tmp_path / "logger.log").read_text()
        assert f"ERROR daq.logger.writer: store {directory} cannot be opened" in log
