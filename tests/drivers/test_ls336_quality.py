"""Protocol replay of the Lake Shore 336's readings with their verdict, input ranges and the cache."""

from __future__ import annotations

from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.lakeshore.ls336 import InputType336, InputUnits, LakeShore336, SensorType
from drivers.lakeshore.ls336_codes import NTC_RTD_RANGES, PTC_RTD_RANGES
from drivers.readings import Quality

ALL = "KRDG? 0;RDGST? A;RDGST? B;RDGST? C;RDGST? D"


@pytest.mark.parametrize(
    ("reply", "quality", "note"),
    [
        ("+004.2150;000", Quality.OK, ""),
        ("+000.0000;129", Quality.INVALID | Quality.OVERRANGE,
         "RDGST 129: invalid reading, sensor units overrange"),
        ("+000.0000;016", Quality.UNDERRANGE, "RDGST 016: temp underrange"),
        ("+000.0000;000", Quality.INVALID, "KRDG 0 with a valid status: no curve"),
    ],
)
def test_kelvin_reading_with_rdgst(reply: str, quality: Quality, note: str) -> None:
    with expected_protocol(LakeShore336, [("KRDG? C;RDGST? C", reply)]) as lc:
        reading = lc.ch_C.kelvin_reading
    assert (reading.quality, reading.note) == (quality, note)
    assert reading.value == float(reply.split(";")[0])


def test_all_inputs_in_one_exchange() -> None:
    with expected_protocol(LakeShore336, [(ALL, "+077.350,+004.215,+004.200,+000.000;000;128;000;001")]) as lc:
        a, b, c, d = lc.input_readings
    assert (a.value, a.ok) == (77.35, True)
    assert b.quality == Quality.OVERRANGE and b.note == "RDGST 128: sensor units overrange"
    assert c.value == 4.2 and d.quality == Quality.INVALID


@pytest.mark.parametrize("reply", ["+1,+2,+3;000;000;000;000", "+1,+2,+3,+4;000;000;000",
                                   "+1,+2,+3,+4"])
def test_all_inputs_reply_must_be_complete(reply: str) -> None:
    with expected_protocol(LakeShore336, [(ALL, reply)]) as lc, pytest.raises(InstrumentReplyError):
        _ = lc.input_readings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_inputs_share_one_exchange_per_poll_cycle() -> None:
    clock = Clock()
    cycle1 = "+077.350,+004.215,+004.200,+000.000;000;000;000;001"
    cycle2 = "+077.360,+004.216,+004.201,+000.000;000;000;000;001"
    with expected_protocol(LakeShore336, [(ALL, cycle1), (ALL, cycle2), (ALL, cycle2)],
                           clock=clock) as lc:
        assert lc.cached_reading("A").value == 77.35  # the exchange
        assert lc.cached_reading("B").value == 4.215  # served from it
        assert lc.cached_reading("C").value == 4.2
        clock.t = 1.0
        assert lc.cached_reading("A").value == 77.36  # A's second read: a new exchange
        assert lc.cached_reading("B").value == 4.216
        assert lc.cached_reading("B").value == 4.216  # B again: a new exchange (no repeats)


def test_a_stale_snapshot_is_refreshed() -> None:
    clock = Clock()
    reply = "+077.350,+004.215,+004.200,+000.000;000;000;000;001"
    with expected_protocol(LakeShore336, [(ALL, reply), (ALL, reply)], clock=clock,
                           readings_max_age_s=0.5) as lc:
        lc.cached_reading("A")
        clock.t = 0.6
        lc.cached_reading("B")  # older than 0.5 s: fetched again


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("1,0,1,0,1", InputType336(SensorType.DIODE, False, 10.0, False, InputUnits.KELVIN)),
        ("2,1,6,1,3", InputType336(SensorType.PLATINUM_RTD, True, 10e3, True, InputUnits.SENSOR)),
        ("3,1,8,1,1", InputType336(SensorType.NTC_RTD, True, 100e3, True, InputUnits.KELVIN)),
        ("3,0,2,1,1,1", InputType336(SensorType.NTC_RTD, False, 100.0, True, InputUnits.KELVIN)),
        ("4,0,0,1,2", InputType336(SensorType.THERMOCOUPLE, False, 0.05, True,
                                   InputUnits.CELSIUS)),
        ("0,0,0,0,1", InputType336(SensorType.DISABLED, False, None, False, InputUnits.KELVIN)),
    ],
)
def test_input_ranges_read_in_volts_and_ohms(reply: str, expected: InputType336) -> None:
    with expected_protocol(LakeShore336, [("INTYPE? A", reply)]) as lc:
        assert lc.ch_A.input_type == expected


@pytest.mark.parametrize(("ohms", "code"), list(NTC_RTD_RANGES.items()))
def test_ntc_ranges(ohms: float, code: int) -> None:
    with expected_protocol(
        LakeShore336, [("INTYPE? C", "3,1,0,0,1"), (f"INTYPE C,3,1,{code},0,1", None)]
    ) as lc:
        lc.ch_C.input_range = ohms


@pytest.mark.parametrize(
    ("value", "allowed", "unit"),
    [(30e3, "10000", "Ohm"), (5.0, "10000", "Ohm")],
)
def test_platinum_refuses_ntc_ranges(value: float, allowed: str, unit: str) -> None:
    assert max(PTC_RTD_RANGES) == 10e3
    with (
        expected_protocol(LakeShore336, [("INTYPE? B", "2,0,6,1,1")]) as lc,
        pytest.raises(SettingOutOfRange) as info,
    ):
        lc.ch_B.input_range = value
    assert allowed in info.value.allowed and info.value.unit == unit


def test_a_diode_range_in_volts_and_disabling_keeps_no_range() -> None:
    with expected_protocol(
        LakeShore336,
        [("INTYPE? D", "1,0,0,0,1"), ("INTYPE D,1,0,1,0,1", None),
         ("INTYPE? D", "1,0,1,0,1"), ("INTYPE D,0,0,0,0,1", None)],
    ) as lc:
        lc.ch_D.input_range = 10
        lc.ch_D.sensor_type = SensorType.DISABLED


@pytest.mark.parametrize(("code", "quality"), [("0", Quality.OK), ("1", Quality.OUTPUT_FAULT),
                                               ("2", Quality.OUTPUT_FAULT)])
@pytest.mark.parametrize("n", [1, 2])
def test_heater_output_with_htrst(n: int, code: str, quality: Quality) -> None:
    with expected_protocol(LakeShore336, [(f"HTR? {n};HTRST? {n}", f"+045.67;{code}")]) as lc:
        reading: Any = lc.outputs[n].heater_output_reading
    assert reading.value == 45.67 and reading.quality == quality
    assert ("open load" in reading.note) == (code == "1")
