"""SIM900 + SIM928 + SIM921 drivers against the simulated mainframe, over TCP through PyVISA."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.readings import Quality
from drivers.srs.sim900 import SIM900
from drivers.srs.sim921 import SIM921
from drivers.srs.sim928 import SIM928, BatteryState, BatteryStatus
from simulators.servers import sim900 as sim

T_BATH = 0.050  # K, the simulated thermometer's temperature


@pytest.fixture
def server() -> Iterator[sim.SIM900Server]:
    modules = {1: sim.SIM928(r_bias=10e3), 2: sim.SIM921(temperature=lambda: T_BATH, seed=1)}
    mainframe = sim.SIM900Server(modules, port=0).start()
    try:
        yield mainframe
    finally:
        mainframe.stop()


@pytest.fixture
def frame(server: sim.SIM900Server) -> Iterator[SIM900]:
    driver = SIM900(
        server.resource,
        modules={1: SIM928, 2: "SIM921"},
        reply_timeout_s=0.5,
        visa_library="@py",
        timeout=2000,
    )
    try:
        yield driver
    finally:
        driver.adapter.close()


def synced(frame: SIM900) -> None:
    """Round-trip a query: the server handles one connection in order, so every
    command sent before it has been executed when it returns."""
    assert "SIM900" in frame.identity


def source_in(server: sim.SIM900Server) -> sim.SIM928:
    module = server.module(1)
    assert isinstance(module, sim.SIM928)
    return module


def bridge_in(server: sim.SIM900Server) -> sim.SIM921:
    module = server.module(2)
    assert isinstance(module, sim.SIM921)
    return module


def test_identities(frame: SIM900) -> None:
    assert "SIM900" in frame.identity
    assert "SIM928" in frame.module(1, SIM928).identity
    assert "SIM921" in frame.module(2, SIM921).identity
    assert "SIM900" in frame.identity  # mainframe replies still line up after module traffic


def test_bias_voltage_and_output(frame: SIM900, server: sim.SIM900Server) -> None:
    source = frame.module(1, SIM928)
    source.voltage = 1.2346
    assert source.voltage == 1.235
    assert source.output_enabled is False
    source.output_enabled = True
    assert source.output_enabled is True
    assert source_in(server).bias_current() == pytest.approx(1.235 / 10e3)
    source.zero_and_disable()
    assert source.voltage == 0.0
    assert source.output_enabled is False
    assert source_in(server).bias_current() == 0.0


def test_negative_bias(frame: SIM900, server: sim.SIM900Server) -> None:
    frame.port1.voltage = -19.999
    assert frame.port1.voltage == -19.999
    assert source_in(server).voltage == -19.999


def test_battery_state(frame: SIM900, server: sim.SIM900Server) -> None:
    assert frame.port1.battery_state == BatteryState(
        BatteryStatus.IN_USE, BatteryStatus.READY, False
    )
    source_in(server).battery = "2,1,1"
    state = frame.port1.battery_state
    assert state.a is BatteryStatus.CHARGING
    assert state.service_needed is True


def test_refused_bias_never_reaches_the_mainframe(frame: SIM900, server: sim.SIM900Server) -> None:
    before = len(server.received)
    with pytest.raises(SettingOutOfRange):
        frame.port1.voltage = 20.5
    assert len(server.received) == before
    assert source_in(server).voltage == 0.0


def test_bridge_reads_the_thermometer(frame: SIM900, server: sim.SIM900Server) -> None:
    bridge = frame.module(2, SIM921)
    expected = bridge_in(server).resistance_at(T_BATH)
    assert bridge.resistance.value == pytest.approx(expected, rel=0.05)
    assert bridge.temperature.value == pytest.approx(T_BATH, rel=0.05)
    assert bridge.temperature.ok


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("range", 2e6),
        ("range", 20e3),
        ("excitation", 100e-6),
        ("excitation", 3e-6),
        ("excitation_enabled", False),
        ("excitation_enabled", True),
        ("frequency", 27.5),
        ("time_constant", 30.0),
        ("time_constant", 0.0),
    ],
)
def test_bridge_settings_round_trip(frame: SIM900, name: str, value: object) -> None:
    setattr(frame.port2, name, value)
    assert getattr(frame.port2, name) == value


def test_bridge_settings_reach_the_module(frame: SIM900, server: sim.SIM900Server) -> None:
    frame.port2.range = 2e3
    frame.port2.excitation = 1e-3
    synced(frame)
    assert bridge_in(server).range_index == 5
    assert bridge_in(server).excitation_index == 5


def test_over_range_reading_is_flagged(frame: SIM900, server: sim.SIM900Server) -> None:
    frame.port2.range = 2e3  # the thermometer reads ~15 kOhm
    reading = frame.port2.resistance
    assert reading.quality == Quality.OVERRANGE and "over range" in reading.note
    frame.port2.range = 200e3
    assert frame.port2.resistance.ok
    bridge_in(server).sensor_open = True
    assert frame.port2.temperature.quality == Quality.OVERRANGE


def test_bridge_over_range_leaves_the_bias_settable_and_in_step(
    frame: SIM900, server: sim.SIM900Server
) -> None:
    bridge_in(server).sensor_open = True
    polls = {spec.name: spec for spec in frame.poll_specs()}
    controls = {spec.name: spec for spec in frame.control_specs()}
    for step in range(5):  # more over-range polls than the daemon's reconnect threshold
        bath = polls["port2.temperature"].sample("sim900")[0]
        assert bath.quality == Quality.OVERRANGE
        controls["port1.bias_voltage"].apply(0.1 * (step + 1), "sim900")
        assert polls["port1.bias_voltage"].sample("sim900")[0].value == pytest.approx(
            0.1 * (step + 1))
    assert source_in(server).voltage == pytest.approx(0.5)
    bridge_in(server).sensor_open = False
    assert polls["port2.temperature"].sample("sim900")[0].ok


def test_a_late_reply_is_never_taken_for_the_next_one(
    frame: SIM900, server: sim.SIM900Server
) -> None:
    bridge_in(server).reply_delay_s = 0.3  # the bridge answers after the driver gave up
    frame.reply_timeout_s = 0.05
    with pytest.raises(InstrumentReplyError, match="port 2"):
        _ = frame.port2.range
    assert frame.port1.voltage == 0.0  # the other port carries on meanwhile
    bridge_in(server).reply_delay_s = 0.0
    time.sleep(0.4)  # the late RANG? answer has landed in port 2's queue by now
    frame.reply_timeout_s = 0.5
    assert frame.port2.excitation_enabled is True  # EXON?'s answer, not the stale RANG?'s
    assert frame.port2.range == 200e3


def test_specs_through_the_mainframe(frame: SIM900, server: sim.SIM900Server) -> None:
    polls = {spec.name: spec for spec in frame.poll_specs()}
    controls = {spec.name: spec for spec in frame.control_specs()}
    values = {name: spec.read().value for name, spec in polls.items()}
    assert values["port1.bias_voltage"] == 0.0
    assert values["port1.battery_service"] == 0.0
    assert math.isfinite(values["port2.resistance"]) and polls["port2.resistance"].read().ok
    assert values["port2.temperature"] == pytest.approx(T_BATH, rel=0.05)
    controls["port1.bias_voltage"].set(0.5)
    synced(frame)
    assert source_in(server).voltage == 0.5
    with pytest.raises(SettingOutOfRange):
        controls["port2.frequency"].set(100.0)


def test_raw_port_access_and_flush(frame: SIM900) -> None:
    frame.send(1, "VOLT?")  # a reply nobody collects ...
    frame.flush(1)  # ... is dropped here
    assert frame.ask_port(1, "*IDN?").startswith("Stanford_Research_Systems,SIM928")
    frame.send(2, "EXON?;FREQ?")  # two replies in one queue, read one by one
    assert frame.receive(2) == "1"
    assert float(frame.receive(2)) == pytest.approx(15.0)


def test_empty_port_times_out(frame: SIM900) -> None:
    frame.send(5, "*IDN?")  # nothing is fitted in port 5
    with pytest.raises(InstrumentReplyError) as info:
        frame.receive(5, timeout_s=0.05)
    assert info.value.instrument == "SIM900 port 5"
    assert "SIM900" in frame.identity  # the link is still usable
