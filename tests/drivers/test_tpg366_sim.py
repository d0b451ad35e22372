"""The TPG 366 driver against the simulated MaxiGauge, over TCP through PyVISA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.pfeiffer import TPG366
from drivers.pfeiffer.tpg366 import GaugeStatus, PressureUnit, SensorState
from drivers.readings import Quality

sim_fridge = pytest.importorskip("simulators.physics.fridge")
sim_gauges = pytest.importorskip("simulators.physics.gauges")
sim_tpg = pytest.importorskip("simulators.servers.tpg366")


def make_server(**options: Any) -> Any:
    fridge = sim_fridge.DilutionFridge()
    return sim_tpg.TPG366Server(sim_gauges.FridgePressures(fridge), port=0, **options)


@pytest.fixture
def server(start_server: Callable[[Any], Any]) -> Any:
    return start_server(make_server())


@pytest.fixture
def tpg(server: Any, connect: Callable[..., Any]) -> TPG366:
    return connect(TPG366, server)


def test_identity_types_and_readings(tpg: TPG366) -> None:
    assert tpg.identity[0] == "TPG366"
    assert len(tpg.gauge_types) == 6
    readings = tpg.readings
    assert len(readings) == 6
    assert all(r.status == GaugeStatus.OK for r in readings)
    assert 0 < readings[0].pressure < 1e-3  # the vacuum can of a cold fridge
    one = tpg.gauge_1.reading
    assert one.status == GaugeStatus.OK and one.pressure == pytest.approx(
        readings[0].pressure, rel=0.2
    )
    assert tpg.gauge_4.pressure > 0


def test_units(tpg: TPG366) -> None:
    mbar = tpg.gauge_4.pressure
    tpg.unit = PressureUnit.PA
    assert tpg.unit is PressureUnit.PA
    assert tpg.gauge_4.pressure == pytest.approx(100 * mbar, rel=0.2)
    tpg.unit = PressureUnit.MBAR
    assert tpg.unit is PressureUnit.MBAR


def test_sensor_off_and_on(tpg: TPG366) -> None:
    tpg.gauge_2.sensor_on = False
    assert tpg.sensor_states[1] == SensorState.OFF
    assert tpg.gauge_2.status == GaugeStatus.SENSOR_OFF
    assert tpg.gauge_2.pressure != tpg.gauge_2.pressure  # NaN: not a pressure
    tpg.set_sensor(2, True)
    assert tpg.gauge_2.sensor_on is True
    assert tpg.gauge_2.status == GaugeStatus.OK


def test_gauge_faults_are_reported(tpg: TPG366, server: Any) -> None:
    server.set_gauge_fault(3, 5)
    assert tpg.gauge_3.status == GaugeStatus.NO_SENSOR
    server.set_gauge_fault(3, None)
    assert tpg.gauge_3.status == GaugeStatus.OK


def test_nak_from_the_unit_raises(tpg: TPG366) -> None:
    with pytest.raises(InstrumentReplyError, match="NAK"):
        tpg.ask("XYZ")
    assert tpg.gauge_1.reading.valid  # the exchange is still in step afterwards


def test_refused_settings_never_reach_the_simulator(tpg: TPG366, server: Any) -> None:
    before = len(server.received)
    with pytest.raises(SettingOutOfRange):
        tpg.unit = 5
    with pytest.raises(SettingOutOfRange):
        tpg.set_sensor(0, True)
    assert len(server.received) == before


def test_stop_stream_on_a_streaming_unit(
    start_server: Callable[[Any], Any], connect: Callable[..., Any]
) -> None:
    server = start_server(make_server(streaming=True, stream_period_s=0.02))
    tpg = connect(TPG366, server)
    streamed = tpg.read()  # wait for the stream itself: a PRX line nobody asked for
    assert len(streamed.split(",")) == 12
    tpg.stop_stream(quiet_ms=300)
    # after the stream is stopped, the ACK/ENQ exchange works
    assert tpg.gauge_1.reading.status == GaugeStatus.OK
    assert len(tpg.readings) == 6


def test_daemon_view_against_the_simulator(tpg: TPG366, server: Any) -> None:
    polls = {s.name: s for s in tpg.poll_specs()}
    assert polls["gauge1"].unit == "mbar"
    before = list(server.received)
    readings = {name: spec.sample("tpg366")[0] for name, spec in polls.items()}
    assert list(server.received)[len(before):] == ["PRX", "\x05"]  # one exchange for six
    assert readings["gauge1"].value > 0 and readings["gauge1"].ok


@pytest.mark.parametrize("status", range(1, 7))
def test_every_gauge_status_of_the_simulator_arrives_flagged(
    tpg: TPG366, server: Any, status: int
) -> None:
    expected = {1: Quality.UNDERRANGE, 2: Quality.OVERRANGE, 3: Quality.SENSOR_ERROR,
                4: Quality.SENSOR_OFF, 5: Quality.SENSOR_OFF, 6: Quality.SENSOR_ERROR}
    server.set_gauge_fault(2, status)
    reading = tpg.gauge_reading(2)
    assert reading.quality == expected[status]
    assert reading.note.startswith(f"status {status}: ")
    assert tpg.gauge_reading(1).ok  # the neighbours are unaffected
    server.set_gauge_fault(2, None)
    tpg.gauge_reading(3)
    assert tpg.gauge_reading(2).ok
    actions = {a.name: a for a in tpg.action_specs()}
    actions["sensor_off"].call(5)
    assert tpg.sensor_states[4] == SensorState.OFF
    actions["sensor_on"].call(5)
    assert tpg.sensor_states[4] == SensorState.ON
