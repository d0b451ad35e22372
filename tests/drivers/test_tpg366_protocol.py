"""Protocol replay of the Pfeiffer TPG 366 driver, including the ACK / ENQ bytes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.pfeiffer.tpg366 import (
    ACK,
    ENQ,
    NAK,
    TPG366,
    GaugeReading,
    GaugeStatus,
    PressureUnit,
    SensorState,
)
from drivers.readings import Quality
from tests.drivers.conftest import RecordingAdapter

PRX_LINE = "0,1.0000E-03,1,2.0000E-09,2,3.0000E+03,3,4.0000E-03,4,5.0000E-03,5,6.0000E-03"


def test_ack_and_enq_bytes_are_the_ascii_controls() -> None:
    assert ACK == "\x06" and NAK == "\x15" and ENQ == b"\x05"


@pytest.mark.parametrize("gauge", range(1, 7))
@pytest.mark.parametrize(
    ("line", "status", "pressure"),
    [
        ("0,+1.2345E-03", GaugeStatus.OK, 1.2345e-3),
        ("1,+1.0000E-10", GaugeStatus.UNDERRANGE, 1e-10),
        ("4,+0.0000E+00", GaugeStatus.SENSOR_OFF, 0.0),
        ("5,-6.0000E+00", GaugeStatus.NO_SENSOR, -6.0),
    ],
)
def test_gauge_reading(gauge: int, line: str, status: GaugeStatus, pressure: float) -> None:
    with expected_protocol(
        TPG366,
        [
            (f"PR{gauge}", ACK),
            (ENQ, line),
            (f"PR{gauge}", ACK),
            (ENQ, line),
            (f"PR{gauge}", ACK),
            (ENQ, line),
        ],
    ) as tpg:
        reading = tpg.gauges[gauge].reading
        assert reading == GaugeReading(status, pressure)
        assert tpg.gauges[gauge].status == status
        value = tpg.gauges[gauge].pressure
    if status == GaugeStatus.OK:
        assert value == pressure
    else:
        assert math.isnan(value)


def test_all_readings() -> None:
    with expected_protocol(TPG366, [("PRX", ACK), (ENQ, PRX_LINE)]) as tpg:
        readings = tpg.readings
    assert [r.status for r in readings] == list(GaugeStatus)[:6]
    assert readings[0].pressure == 1e-3 and readings[2].pressure == 3e3
    assert readings[0].valid and not readings[1].valid


@pytest.mark.parametrize("gauge", [1, 4])
def test_nak_raises_a_reply_error(gauge: int) -> None:
    with (
        expected_protocol(TPG366, [(f"PR{gauge}", NAK)]) as tpg,
        pytest.raises(InstrumentReplyError) as info,
    ):
        _ = tpg.gauges[gauge].pressure
    assert info.value.instrument == "Pfeiffer TPG 366"
    assert info.value.command == f"PR{gauge}"
    assert "NAK" in str(info.value)


def test_anything_but_ack_is_a_reply_error() -> None:
    with (
        expected_protocol(TPG366, [("UNI", "0,1.0E-03")]) as tpg,
        pytest.raises(InstrumentReplyError, match="expected ACK"),
    ):
        _ = tpg.unit


@pytest.mark.parametrize("bad", ["garbage", "0", "9,1.0E-3", "0,abc"])
def test_malformed_data_lines(bad: str) -> None:
    with (
        expected_protocol(TPG366, [("PR2", ACK), (ENQ, bad)]) as tpg,
        pytest.raises(InstrumentReplyError) as info,
    ):
        _ = tpg.gauge_2.reading
    assert info.value.instrument == "Pfeiffer TPG 366 gauge 2"


@pytest.mark.parametrize("unit", list(PressureUnit))
def test_unit(unit: PressureUnit) -> None:
    with expected_protocol(
        TPG366, [(f"UNI,{int(unit)}", ACK), ("UNI", ACK), (ENQ, str(int(unit)))]
    ) as tpg:
        tpg.unit = unit
        assert tpg.unit is unit


def test_sensor_states_and_switching() -> None:
    with expected_protocol(
        TPG366,
        [
            ("SEN", ACK),
            (ENQ, "2,2,1,0,2,2"),
            ("SEN", ACK),
            (ENQ, "2,2,1,0,2,2"),
            ("SEN", ACK),
            (ENQ, "2,2,1,0,2,2"),
            ("SEN,0,0,2,0,0,0", ACK),
            ("SEN,0,0,0,0,0,1", ACK),
            ("SEN,2,0,0,0,0,0", ACK),
        ],
    ) as tpg:
        assert tpg.sensor_states == [
            SensorState.ON,
            SensorState.ON,
            SensorState.OFF,
            SensorState.CANNOT_SWITCH,
            SensorState.ON,
            SensorState.ON,
        ]
        assert tpg.gauge_1.sensor_on is True
        assert tpg.gauge_3.sensor_on is False
        tpg.gauge_3.sensor_on = True
        tpg.gauge_6.sensor_on = False
        tpg.set_sensor(1, True)


def test_identity_and_gauge_types() -> None:
    with expected_protocol(
        TPG366,
        [
            ("AYT", ACK),
            (ENQ, "TPG366,MaxiGauge,PT G28 040,44990000,010100"),
            ("TID", ACK),
            (ENQ, "TPR,IKR,noSen,noSen,PKR,noid"),
        ],
    ) as tpg:
        assert tpg.identity[0] == "TPG366"
        assert tpg.gauge_types == ["TPR", "IKR", "noSen", "noSen", "PKR", "noid"]


@pytest.mark.parametrize(
    ("action", "command", "allowed"),
    [
        (lambda t: setattr(t, "unit", 3), "unit", "pa (2)"),
        (lambda t: setattr(t.gauge_2, "sensor_on", 1), "sensor_on", "True, False"),
        (lambda t: t.set_sensor(7, True), "gauge", "1 to 6"),
    ],
)
def test_refusals_send_nothing(action: Any, command: str, allowed: str) -> None:
    with expected_protocol(TPG366, []) as tpg, pytest.raises(SettingOutOfRange) as info:
        action(tpg)
    assert info.value.command == command
    assert allowed in info.value.allowed
    assert info.value.instrument.startswith("Pfeiffer TPG 366")


def test_stop_stream_sends_enq_and_discards_until_quiet() -> None:
    adapter = RecordingAdapter([PRX_LINE, PRX_LINE, "0,1.0E-03"])
    tpg = TPG366(adapter)
    assert tpg.stop_stream(quiet_ms=150) == 3
    assert adapter.io[0] == ("write_bytes", b"\x05")
    assert [kind for kind, _ in adapter.io[1:]] == ["read"] * 3
    assert adapter.timeouts_seen == [150]  # drained with the short timeout ...
    assert adapter.connection.timeout == 2000  # ... and the normal one is back


def test_stop_stream_on_a_quiet_unit_discards_nothing() -> None:
    adapter = RecordingAdapter()
    tpg = TPG366(adapter)
    assert tpg.stop_stream() == 0
    assert adapter.io == [("write_bytes", b"\x05")]


def test_poll_specs_are_labelled_with_the_unit() -> None:
    with expected_protocol(
        TPG366, [("UNI", ACK), (ENQ, "1"), ("PRX", ACK), (ENQ, PRX_LINE)]
    ) as tpg:
        specs = {s.name: s for s in tpg.poll_specs()}
        assert set(specs) == {f"gauge{n}" for n in range(1, 7)}
        assert specs["gauge3"].unit == "Torr" and specs["gauge3"].quantity == "pressure"
        assert specs["gauge1"].read().value == 1e-3


def test_six_gauges_of_one_cycle_cost_one_prx_exchange() -> None:
    with expected_protocol(
        TPG366, [("PRX", ACK), (ENQ, PRX_LINE), ("PRX", ACK), (ENQ, PRX_LINE)]
    ) as tpg:
        first = [tpg.gauge_reading(n) for n in range(1, 7)]  # one exchange
        again = tpg.gauge_reading(1)  # gauge 1 again: the next cycle, a new exchange
        rest = [tpg.gauge_reading(n) for n in (2, 3)]  # from that same exchange
    assert len({r.t_ns for r in first}) == 1 and first[0].t_ns is not None
    assert again.t_ns is not None and again.t_ns >= first[0].t_ns
    assert [r.value for r in rest] == [2e-9, 3e3]


def test_an_old_prx_answer_is_not_served() -> None:
    with expected_protocol(
        TPG366, [("PRX", ACK), (ENQ, PRX_LINE), ("PRX", ACK), (ENQ, PRX_LINE)],
        prx_max_age_s=-1.0,  # every answer is already too old
    ) as tpg:
        tpg.gauge_reading(1)
        tpg.gauge_reading(2)


@pytest.mark.parametrize(
    ("status", "flag", "words"),
    [
        (0, Quality.OK, ""),
        (1, Quality.UNDERRANGE, "status 1: underrange"),
        (2, Quality.OVERRANGE, "status 2: overrange"),
        (3, Quality.SENSOR_ERROR, "status 3: sensor error"),
        (4, Quality.SENSOR_OFF, "status 4: sensor off"),
        (5, Quality.SENSOR_OFF, "status 5: no sensor"),
        (6, Quality.SENSOR_ERROR, "status 6: identification error"),
    ],
)
def test_gauge_status_becomes_flags_and_the_value_is_kept(
    status: int, flag: Quality, words: str
) -> None:
    line = ",".join(f"{status if n == 4 else 0},+{n}.5000E-02" for n in range(1, 7))
    with expected_protocol(TPG366, [("PRX", ACK), (ENQ, line)]) as tpg:
        reading = tpg.gauge_reading(4)
    assert reading.quality == flag
    assert reading.value == 4.5e-2  # what the unit sent, whatever its verdict
    assert reading.note == words
    assert reading.ok is (status == 0)


def test_gauge_reading_refuses_a_bad_gauge_before_sending() -> None:
    with expected_protocol(TPG366, []) as tpg, pytest.raises(SettingOutOfRange):
        tpg.gauge_reading(7)


def test_control_and_action_specs() -> None:
    with expected_protocol(TPG366, [("SEN,0,0,0,0,2,0", ACK), ("SEN,0,1,0,0,0,0", ACK)]) as tpg:
        controls = {c.name: c for c in tpg.control_specs()}
        assert controls["unit"].validate(PressureUnit.PA) == PressureUnit.PA
        with pytest.raises(SettingOutOfRange):
            controls["unit"].validate(5)
        actions = {a.name: a for a in tpg.action_specs()}
        actions["sensor_on"].call(5)
        actions["sensor_off"].call(2)
        assert set(actions) == {"sensor_on", "sensor_off", "stop_stream"}
