"""The Bluefors log reader end to end: an hour logged while the daemon was down, backfilled once.

Real processes on random ports: broker, logger and daemon, the daemon owning
only the Bluefors log reader. The log directory is written by the simulated
fridge's log writer in this test, with explicit timestamps (an hour of lines
takes a moment, not an hour). The daemon reads the first lines, is stopped,
an hour of lines is written, and after the restart every line is in the
logger's store exactly once with its own timestamp, the gauge's over-range
status flagged, and the logger's history query returns them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.config import LabConfig, load_config
from daq.logger.history import HistoryClient
from drivers.readings import Quality
from simulators.physics.fridge import DilutionFridge
from simulators.servers.bluefors_writer import BlueforsLogWriter
from tests.procs import Service, qupdaq, sim_lab_config

PERIOD = timedelta(seconds=10)
#: channel on the bus -> the reader's poll spec
CHANNELS = {"t_mxc": "CH6_T", "p_ovc": "maxigauge_CH1", "cpa_water_in": "Status_cpatempwi"}


class Archive:
    """Broker, logger and a daemon that reads a Bluefors log directory (and can be restarted)."""

    def __init__(self, tmp_path: Path) -> None:
        path, _, data = sim_lab_config(tmp_path)
        self.logs = tmp_path / "bluefors"
        data["daemon"]["state_dir"] = str(tmp_path / "state")
        data["instruments"] = {"bluefors": {
            "driver": "bluefors.logreader:BlueforsLogReader",
            "resource": str(self.logs),
            "options": {"timezone": "UTC", "refresh_s": 0.5},
            "source": "fridge1",
            "poll": [{"spec": spec, "channel": channel, "stale_s": 3600.0}
                     for channel, spec in CHANNELS.items()],
            "controls": [], "actions": [],
        }}
        data["limits"], data["interlocks"] = {}, []
        path.write_text(yaml.safe_dump(data))
        self.path = path
        self.config: LabConfig = load_config(path)
        self.services: list[Service] = []
        self._start("broker", "broker ready")
        self._start("logger", "logger ready")
        self.daemon: Service | None = None

    def _start(self, command: str, ready: str) -> Service:
        service = qupdaq(command, str(self.path))
        self.services.append(service)
        service.wait_line(ready)
        return service

    def start_daemon(self) -> None:
        self.daemon = self._start("daemon", "daemon ready")

    def stop_daemon(self) -> None:
        """SIGTERM: the orderly stop, which hands what was read to the logger first."""
        assert self.daemon is not None
        assert self.daemon.stop() == 0, "\n".join(self.daemon.lines[-30:])

    def history(self) -> HistoryClient:
        assert self.config.logger is not None
        return HistoryClient(self.config.logger.history_endpoint)

    def stored(self, channel: str) -> list[tuple[int, int]]:
        """``(t, q)`` of every stored sample of ``data/fridge1/<channel>``, straight from SQLite."""
        (db,) = (self.logs.parent / "data").rglob("qupdaq.sqlite")
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT s.t, s.q FROM samples s JOIN channels c ON c.id = s.channel_id "
                "WHERE c.stream = ? ORDER BY s.t", (f"data/fridge1/{channel}",)).fetchall()
        return [(int(t), int(q)) for t, q in rows]

    def output(self) -> str:
        """The last lines of every service, for a failure message."""
        return "\n".join(f"[{s.name}] {line}" for s in self.services for line in s.lines[-15:])

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    running = Archive(tmp_path)
    yield running
    running.stop()


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def _wait_for_count(history: HistoryClient, channel: str, count: int, window: tuple[int, int],
                    timeout_s: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while True:
        info, _ = history.query_info(f"data/fridge1/{channel}", *window, max_points=10_000)
        if info["raw_count"] >= count or time.monotonic() > end:
            return info
        time.sleep(0.5)


def test_lines_written_while_the_daemon_was_down_are_stored_once_each(
    archive: Archive,
) -> None:
    writer = BlueforsLogWriter(archive.logs, DilutionFridge(), timezone="UTC")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    before = [start + i * PERIOD for i in range(30)]  # five minutes the daemon sees live
    down = [before[-1] + (i + 1) * PERIOD for i in range(360)]  # the hour it is down
    for when in before:
        writer.write_sample(when)
    archive.start_daemon()
    window = (_ns(start) - 1, _ns(down[-1]) + 1)
    with archive.history() as history:
        for channel in CHANNELS:
            info = _wait_for_count(history, channel, len(before), window)
            assert info["raw_count"] == len(before), (channel, info, archive.output())

        archive.stop_daemon()
        for index, when in enumerate(down):
            # the gauge reads over range for ten minutes of the outage
            writer.gauge_statuses = {1: 2} if 60 <= index < 120 else {}
            writer.write_sample(when)
        archive.start_daemon()

        expected = [_ns(w) for w in before + down]
        for channel in CHANNELS:
            info = _wait_for_count(history, channel, len(expected), window)
            assert info["raw_count"] == len(expected), (channel, info, archive.output())
            times, values = history.query(f"data/fridge1/{channel}", *window,
                                          max_points=10_000)
            assert times.tolist() == expected, channel  # each line once, at its own time
            assert len(values) == len(expected)
    for channel in CHANNELS:
        stored = archive.stored(channel)
        assert [t for t, _ in stored] == expected, channel  # exactly once in the store
    flagged = {t for t, q in archive.stored("p_ovc") if q & Quality.OVERRANGE}
    assert flagged == {_ns(w) for w in down[60:120]}
    assert not any(q for _, q in archive.stored("t_mxc"))
