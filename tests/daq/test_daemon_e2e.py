"""The daemon end to end: simulated lab + broker + daemon as real processes, real drivers.

Every test talks to the daemon the way a physicist's script does (the bus and
``daq.client.Lab``), and checks effects at the simulator.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.errors import ControlError
from daq.messages import Kind, Message
from tests.procs import Service, qupdaq, sim_lab_config


class Running:
    """Broker, simulated lab (and optionally a separate victim simulator) and daemon."""

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.path, victim_path, self.data = sim_lab_config(tmp_path, **config)
        self.config = load_config(self.path)
        self.services: list[Service] = []
        self.broker = self._start(qupdaq("broker", str(self.path)), "broker ready")
        self.sim = self._start(qupdaq("sim", str(self.path)), "sim ready")
        self.victim_path = victim_path
        self.victim = (self._start(qupdaq("sim", str(victim_path), name="victim"), "sim ready")
                       if victim_path else None)
        self.daemon = self._start(qupdaq("daemon", str(self.path)), "daemon ready")

    def _start(self, service: Service, ready: str) -> Service:
        self.services.append(service)
        service.wait_line(ready)
        return service

    def restart_victim(self) -> None:
        assert self.victim_path is not None
        self.victim = self._start(qupdaq("sim", str(self.victim_path), name="victim"),
                                  "sim ready")

    def subscriber(self, *prefixes: str) -> Subscriber:
        bus = self.config.bus
        return Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url)

    def lab(self) -> Lab:
        return Lab(self.config, client="e2e-test", timeout_s=15)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


@pytest.fixture
def lab_running(tmp_path: Path) -> Iterator[Running]:
    running = Running(tmp_path, time_scale=50.0)
    yield running
    running.stop()


def _collect(sub: Subscriber, seconds: float) -> list[Message]:
    out = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is not None:
            out.append(msg)
    return out


def _wait_for(sub: Subscriber, predicate: Any, timeout_s: float = 30.0) -> Message:
    end = time.monotonic() + timeout_s
    while (left := end - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is not None and predicate(msg):
            return msg
    raise AssertionError("the expected message never came")


PLAUSIBLE = {  # channel -> (low, high) for the simulated fridge at base temperature
    "fridge1/mxc_control": (0.005, 0.05), "fridge1/t4k": (2.0, 5.0),
    "fridge1/t50k": (30.0, 60.0), "fridge1/p_ovc": (1e-9, 1e-4),
    "fridge1/p_still": (1e-4, 10.0), "tes1/bias_voltage": (-20.0, 20.0),
    "tes1/bath_temperature": (0.005, 0.1),
}


def test_every_configured_channel_arrives_with_plausible_values_at_its_rate(
    lab_running: Running,
) -> None:
    sub = lab_running.subscriber("data/", "wave/", "status/")
    try:
        _wait_for(sub, lambda m: m.kind is Kind.DATA and m.channel == "mxc_control")
        window = 6.0
        messages = _collect(sub, window)
    finally:
        sub.close()
    by_stream: dict[str, list[Message]] = defaultdict(list)
    for msg in messages:
        by_stream[f"{msg.kind.value}/{msg.source}/{msg.channel}"].append(msg)
    for inst in lab_running.data["instruments"].values():
        for poll in inst["poll"]:
            stream = f"{inst['source']}/{poll['channel']}"
            kind = "wave" if poll["spec"] == "waveform" else "data"
            got = by_stream.get(f"{kind}/{stream}", [])
            if "stale_s" in poll:  # scanner channels: fresh only during their dwell
                continue
            period = poll["period_s"]  # the embedded config states every period
            expected = window / period
            assert len(got) >= 0.5 * expected, f"{stream}: {len(got)} samples in {window} s"
            if stream in PLAUSIBLE:
                low, high = PLAUSIBLE[stream]
                assert all(low <= m.value <= high for m in got), (stream, [m.value for m in got])
            if kind == "wave":
                record = got[0]
                assert record.data is not None and record.data.size > 100
                assert record.data.dtype.kind == "i"  # raw counts, scaled by the header
                assert record.meta["dt"] > 0 and record.units == "V"
                assert 0 < float(record.volts().std()) < 10
    statuses = {m.channel: m.meta["state"] for m in messages if m.kind is Kind.STATUS}
    assert statuses.get("ls372") == "connected" and statuses.get("sim900") == "connected"


def test_scanner_channels_are_read_when_the_scanner_reaches_them(lab_running: Running) -> None:
    sub = lab_running.subscriber("data/fridge1/")
    try:
        seen: set[str] = set()
        end = time.monotonic() + 30
        while not {"mxc", "still", "cold_plate"} <= seen and time.monotonic() < end:
            msg = sub.recv(1.0)
            if msg is not None:
                seen.add(msg.channel)
    finally:
        sub.close()
    assert {"mxc", "still", "cold_plate"} <= seen


def test_setpoint_set_through_the_client_moves_the_mixing_chamber(lab_running: Running) -> None:
    sub = lab_running.subscriber("data/fridge1/mxc_control")
    try:
        start = _wait_for(sub, lambda m: m.kind is Kind.DATA).value
        with lab_running.lab() as lab:
            lab.set("fridge1/sample_heater_mode", 5)  # closed loop
            lab.set("fridge1/sample_heater_range", 0.001)
            assert lab.set("fridge1/mxc_setpoint", 0.05) == 0.05
            assert lab.get("fridge1/mxc_setpoint") == pytest.approx(0.05)
        risen = _wait_for(sub, lambda m: m.kind is Kind.DATA and m.value > start + 0.003,
                          timeout_s=60)
        assert risen.value < 0.06  # heading for the setpoint, not running away
    finally:
        sub.close()
    assert risen.value > start


def test_refused_requests_never_reach_the_simulator(lab_running: Running) -> None:
    with lab_running.lab() as lab:
        before = lab.get("fridge1/mxc_setpoint")
        with pytest.raises(ControlError, match=r"outside the lab's limits; allowed: 0 to 0.5 K"):
            lab.set("fridge1/mxc_setpoint", 0.9)
        with pytest.raises(ControlError, match="unknown target"):
            lab.set("fridge1/no_such_thing", 1)
        with pytest.raises(ControlError, match="is out of range"):
            lab.set("fridge1/sample_heater_mode", 42)  # the driver's own validator
        # What the instrument holds is unchanged (read back from the simulator).
        assert lab.get("fridge1/mxc_setpoint") == before
        targets = {t["target"]: t for t in lab.list()}
    assert targets["fridge1/mxc_setpoint"]["limits"] == "0 to 0.5 K"
    assert "fridge1/mxc_ramp" in targets and targets["fridge1/mxc_ramp"]["kind"] == "action"


def test_interlock_switches_the_heater_off_and_is_audited(tmp_path: Path) -> None:
    interlocks = [{"name": "mxc_overheat", "stream": "fridge1/mxc_control", "above": 0.020,
                   "target": "fridge1/sample_heater_range", "value": 0}]
    running = Running(tmp_path, time_scale=50.0, interlocks=interlocks)
    sub = running.subscriber("data/fridge1/mxc_control", "audit/", "alarm/")
    try:
        with running.lab() as lab:
            lab.set("fridge1/sample_heater_mode", 5)
            lab.set("fridge1/mxc_setpoint", 0.1)
            lab.set("fridge1/sample_heater_range", 0.00316)
            hot = _wait_for(sub, lambda m: m.kind is Kind.DATA and m.value > 0.020, 90)
            alarm = _wait_for(sub, lambda m: m.kind is Kind.ALARM)
            audit = _wait_for(sub, lambda m: m.kind is Kind.AUDIT
                              and m.meta["who"]["client"] == "interlock")
            assert lab.get("fridge1/sample_heater_range") == 0
    finally:
        sub.close()
        running.stop()
    assert hot.value > 0.020
    assert "mxc_control" in alarm.meta["reason"] and "above 0.02" in alarm.meta["reason"]
    assert audit.meta["target"] == "fridge1/sample_heater_range" and audit.meta["value"] == 0
    assert audit.meta["outcome"] == "ok"


def _states(sub: Subscriber, instrument: str, until: str, timeout_s: float) -> list[str]:
    states: list[str] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        msg = sub.recv(0.5)
        if msg is not None and msg.kind is Kind.STATUS and msg.channel == instrument:
            if not states or states[-1] != msg.meta["state"]:
                states.append(msg.meta["state"])
            if msg.meta["state"] == until:
                return states
    raise AssertionError(f"{instrument} never became {until}; saw {states}")


def test_killed_and_restarted_simulator_is_reconnected_without_touching_the_others(
    tmp_path: Path,
) -> None:
    running = Running(tmp_path, time_scale=1.0, victim="ls336")
    sub = running.subscriber("status/fridge1/ls336", "data/fridge1/")
    try:
        _wait_for(sub, lambda m: m.kind is Kind.STATUS and m.meta["state"] == "connected"
                  and m.channel == "ls336")
        assert running.victim is not None
        running.victim.kill()
        states = _states(sub, "ls336", "reconnecting", 30)
        assert "stale" in states
        # Meanwhile the others keep sampling at their rate (mxc_control: every 1 s).
        times = [m.t_recv for m in _collect(sub, 5.0)
                 if m.kind is Kind.DATA and m.channel == "mxc_control"]
        assert len(times) >= 4
        assert max((b - a) / 1e9 for a, b in zip(times, times[1:], strict=False)) < 2.0
        running.restart_victim()
        _states(sub, "ls336", "connected", 60)
        _wait_for(sub, lambda m: m.kind is Kind.DATA and m.channel == "t4k", 30)
        assert running.daemon.proc.poll() is None  # the same daemon process throughout
    finally:
        sub.close()
        running.stop()


@pytest.mark.parametrize("fault", ["hang", "garbage"])
def test_hanging_or_garbled_instrument_does_not_delay_the_others(
    tmp_path: Path, fault: str
) -> None:
    running = Running(tmp_path, time_scale=1.0, victim="ls336", victim_faults={fault: True})
    sub = running.subscriber("data/fridge1/mxc_control", "status/fridge1/ls336")
    try:
        status = _wait_for(sub, lambda m: m.kind is Kind.STATUS
                           and m.meta["state"] in ("stale", "reconnecting"), 30)
        times = [m.t_recv for m in _collect(sub, 8.0)
                 if m.kind is Kind.DATA and m.channel == "mxc_control"]
    finally:
        sub.close()
        running.stop()
    assert status.meta["message"]  # the reason is reported
    # mxc_control is polled every 1 s: never more than one period late while ls336 misbehaves.
    assert len(times) >= 6
    gaps = [(b - a) / 1e9 for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 2.0, gaps
