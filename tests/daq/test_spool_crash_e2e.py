"""The durable spool with the real daemon: a daemon killed (kill -9) while the logger is down
loses nothing it had spooled; what it truly lost is a recorded gap of exactly those seqs."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from daq.config import load_config
from daq.logger.history import HistoryClient
from tests.archive_check import read_archive
from tests.procs import bus_section, free_port, logger_section, qupdaq


def _config(tmp_path: Path) -> Path:
    data = {
        "bus": bus_section(),
        "logger": logger_section(tmp_path, "logger-crash", gap_grace_s=2.0),
        "daemon": {"name": "daemon-crash", "state_dir": str(tmp_path / "state"),
                   "status_period_s": 0.5,
                   "control": {"bind": f"tcp://127.0.0.1:{free_port()}"}},
        "instruments": {f"box{i}": {"driver": "fake:FakeInstrument", "resource": f"FAKE::{i}",
                                    "source": "fridge1", "options": {"period_s": 0.02},
                                    "poll": [{"spec": "A", "channel": f"t{i}",
                                              "period_s": 0.02}]}
                        for i in range(3)},
    }
    data["daemon"]["logger_url"] = data["logger"]["endpoint"]
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_daemon_killed_while_the_logger_is_down_loses_nothing_it_spooled(
        tmp_path: Path) -> None:
    path = _config(tmp_path)
    config = load_config(path)
    assert config.logger is not None
    broker = qupdaq("broker", str(path))
    broker.wait_line("broker ready")
    logger = qupdaq("logger", str(path))
    logger.wait_line("logger ready")
    daemon = qupdaq("daemon", str(path))
    try:
        daemon.wait_line("daemon ready")
        time.sleep(2.0)  # archived while the logger is up (the rates are what is tested)
        assert logger.stop() == 0
        time.sleep(4.0)  # 3 x 50 samples/s spooled with no logger to take them
        daemon.kill()  # no chance to flush: only the spool on disk survives
        logger = qupdaq("logger", str(path))
        logger.wait_line("logger ready")
        daemon = qupdaq("daemon", str(path))
        daemon.wait_line("daemon ready")
        time.sleep(3.0)
        assert daemon.stop() == 0  # a clean stop: everything acknowledged, sessions closed
        with HistoryClient(config.logger.history_endpoint) as history:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and history.status().get("open_sessions", 0):
                time.sleep(0.2)
            duplicates = history.status()["duplicates"]
    finally:
        daemon.stop()
        logger.stop()
        broker.stop()
    sessions = read_archive(tmp_path / "data" / "qupdaq.sqlite", prefix="data/fridge1/")
    epochs = sorted({epoch for _, epoch in sessions})
    assert len(epochs) == 2, epochs  # the killed session and the one after it
    first = [s for (stream, epoch), s in sessions.items() if epoch == epochs[0]]
    assert len(first) == 3
    for session in sessions.values():
        assert session.unaccounted() == set(), (session.stream, session.epoch)
        assert session.gaps_over_stored() == set()
    stored_first = sum(len(s.stored) for s in first)
    lost = sum(len(s.gap_seqs()) for s in first)
    reasons = {reason for s in first for _, _, reason in s.gaps}
    print(f"killed session: {stored_first} messages stored, {lost} recorded as lost "
          f"({reasons or 'none'}); duplicates at the logger: {duplicates}")
    assert stored_first > 3 * 50 * 4  # what was spooled during the outage came through
    assert reasons <= {"lost before spooling"}
    assert lost <= 3 * 10  # at most an outbound batch per stream was never spooled
