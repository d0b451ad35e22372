"""End to end: the mixing-chamber thermometer fails, the system says so and the heater goes off.

Broker, logger and daemon run as real processes on random ports; the
simulated lab runs in this test process (as :class:`~simulators.lab.SimLab`)
so that the test can reach the simulated 372's fault API directly: the MXC
thermometer (the config's ``fridge1/mxc_control`` = control input A, and the
scanner channel ``fridge1/mxc`` = channel 6) is made open, then over range,
then cleared. Each state must arrive on the bus and in the logger's store
with the instrument's verdict as quality flags; the interlock on
``mxc_control`` (blind on a flagged reading) must switch the sample heater
off within one poll period, and the audit event, the alarm and the
instrument's status must say why. The 372's own temperature limit on input
A (``setup: {tlimit_A: ...}`` in the config, set and read back by the daemon
on connecting) is checked at the simulator too.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.messages import Kind, Message, Quality
from simulators.config import load_simulation_config
from simulators.lab import SimLab
from tests.procs import Service, qupdaq, sim_lab_config
from tests.waiting import Feed, wait_until

OPEN = Quality.SENSOR_ERROR | Quality.OVERRANGE
OPEN_NOTE = "RDGST 017: CS OVL, R.OVER"
POLL_PERIOD_S = 1.0  # fridge1/mxc_control in the embedded config
TIME_SCALE = 50.0  # the scanner visits channel 6 about once a wall second
TLIMIT_K = 0.8  # the hardware backstop on the control input


class Running:
    """Broker, logger and daemon as processes; the simulated lab in this process."""

    def __init__(self, tmp_path: Path) -> None:
        self.path, _, self.data = sim_lab_config(tmp_path, time_scale=TIME_SCALE)
        self.data["instruments"]["ls372"]["setup"] = {"tlimit_A": TLIMIT_K}
        self.path.write_text(yaml.safe_dump(self.data))
        self.config = load_config(self.path)
        self.services: list[Service] = []
        self.sim = SimLab(load_simulation_config(self.path)).start()
        try:
            for args, ready in ((("broker", str(self.path)), "broker ready"),
                                (("logger", str(self.path)), "logger ready"),
                                (("daemon", str(self.path)), "daemon ready")):
                service = qupdaq(*args)
                self.services.append(service)
                service.wait_line(ready)
        except BaseException:
            self.stop()
            raise

    @property
    def ls372(self) -> Any:
        return self.sim.servers["ls372"]

    def subscriber(self, *prefixes: str) -> Subscriber:
        bus = self.config.bus
        return Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url)

    def lab(self) -> Lab:
        return Lab(self.config, client="e2e-quality", timeout_s=15)

    def store_rows(self, stream: str) -> list[tuple[float, int]]:
        """``(value, quality)`` of every sample of ``stream`` in the logger's SQLite store."""
        assert self.config.logger is not None
        db = self.config.logger.storage_dir / "qupdaq.sqlite"
        if not db.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return list(conn.execute(
                "SELECT s.value, s.q FROM samples s JOIN channels c ON c.id = s.channel_id "
                "WHERE c.stream = ? ORDER BY s.t", (stream,)))

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.sim.stop()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    lab = Running(tmp_path)
    yield lab
    lab.stop()


def _data(channel: str, quality: int) -> Callable[[Message], bool]:
    return lambda m: m.kind is Kind.DATA and m.channel == channel and m.quality == quality


def test_open_then_overrange_mxc_thermometer_is_flagged_and_the_heater_goes_off(
    running: Running,
) -> None:
    sub = running.subscriber("data/fridge1/mxc", "audit/", "alarm/", "status/fridge1/ls372")
    feed = Feed(sub)
    try:
        feed.wait(_data("mxc_control", Quality.OK))
        assert running.ls372.state.channels["A"].setup.tlimit_k == TLIMIT_K  # set on connect
        with running.lab() as lab:
            lab.set("fridge1/sample_heater_mode", 5)  # closed loop on input A
            lab.set("fridge1/mxc_setpoint", 0.03)
            lab.set("fridge1/sample_heater_range", 0.001)
            assert lab.get("fridge1/sample_heater_range") == pytest.approx(0.001)

            # ---- the thermometer's leads open -------------------------------------------
            running.ls372.set_open_sensor("A", True)
            running.ls372.set_open_sensor(6, True)
            flagged = feed.wait(_data("mxc_control", OPEN))
            assert flagged.value == 0.0 and flagged.meta["note"] == OPEN_NOTE
            audit = feed.wait(lambda m: m.kind is Kind.AUDIT
                              and m.meta["who"]["client"] == "interlock", since=flagged)
            assert (audit.t_recv - flagged.t_recv) / 1e9 < POLL_PERIOD_S
            assert audit.meta["target"] == "fridge1/sample_heater_range"
            assert audit.meta["value"] == 0 and audit.meta["outcome"] == "ok"
            assert "SENSOR_ERROR" in audit.meta["reason"] and OPEN_NOTE in audit.meta["reason"]
            alarm = feed.wait(lambda m: m.kind is Kind.ALARM, since=flagged)
            assert OPEN_NOTE in alarm.meta["reason"]
            assert lab.get("fridge1/sample_heater_range") == 0
            assert running.ls372.state.outputs[0].loop.range == 0  # off at the instrument
            status = feed.wait(lambda m: m.kind is Kind.STATUS and m.channel == "ls372"
                               and "mxc_control flagged" in m.meta["message"], since=flagged)
            assert OPEN_NOTE in status.meta["message"]
            assert feed.wait(_data("mxc", OPEN)).meta["note"] == OPEN_NOTE  # when scanned

            # ---- then over range -----------------------------------------------------------
            running.ls372.clear_faults()
            running.ls372.set_overrange("A", True)
            running.ls372.set_overrange(6, True)
            over = feed.wait(_data("mxc_control", Quality.OVERRANGE))
            assert over.meta["note"] == "RDGST 016: R.OVER"
            feed.wait(_data("mxc", Quality.OVERRANGE))

            # ---- cleared: OK again -----------------------------------------------------------
            running.ls372.clear_faults()
            good = feed.wait(_data("mxc_control", Quality.OK), since=over)
            assert 0.005 < good.value < 0.1 and "note" not in good.meta
            feed.wait(_data("mxc", Quality.OK), since=over)
            feed.wait(lambda m: m.kind is Kind.STATUS and m.channel == "ls372"
                      and "reads ok again" in m.meta["message"], since=over)
            assert lab.get("fridge1/sample_heater_range") == 0  # stays off until an operator acts
    finally:
        sub.close()

    # ---- the archive holds every state with its flag ----------------------------------------
    for stream in ("data/fridge1/mxc_control", "data/fridge1/mxc"):
        def archived(stream: str = stream) -> bool:
            flags = {q for _, q in running.store_rows(stream)}
            return {int(OPEN), int(Quality.OVERRANGE), 0} <= flags
        wait_until(archived, f"{stream} stored with every flag")
    rows = running.store_rows("data/fridge1/mxc_control")
    assert all(v == 0.0 for v, q in rows if q == int(OPEN))  # the instrument's value, kept
