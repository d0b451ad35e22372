"""Protocol replay of the Lake Shore 372's readings with their verdict, control input, heaters, zones."""

from __future__ import annotations

from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.lakeshore.ls372 import LakeShore372
from drivers.lakeshore.ls372_codes import CONTROL_EXCITATIONS, SensorUnits
from drivers.lakeshore.ls372_heater import SampleZone, WarmupZone
from drivers.lakeshore.ls372_intype import ControlInputType
from drivers.lakeshore.status import quality_336, quality_372
from drivers.readings import Quality

SCANNER_INSET = [(f"INSET? {ch}", f"{int(ch == 6)},007,003,21,1") for ch in range(1, 17)]


# ---- readings with the instrument's verdict ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "quality", "note"),
    [
        ("000", Quality.OK, ""),
        ("001", Quality.SENSOR_ERROR, "RDGST 001: CS OVL"),
        ("017", Quality.SENSOR_ERROR | Quality.OVERRANGE, "RDGST 017: CS OVL, R.OVER"),
        ("014", Quality.SENSOR_ERROR, "RDGST 014: VCM OVL, VMIX OVL, VDIF OVL"),
        ("016", Quality.OVERRANGE, "RDGST 016: R.OVER"),
        ("032", Quality.UNDERRANGE, "RDGST 032: R.UNDER"),
        ("064", Quality.OVERRANGE, "RDGST 064: T.OVER"),
        ("128", Quality.UNDERRANGE, "RDGST 128: T.UNDER"),
    ],
)
@pytest.mark.parametrize("ch", ["A", 6])
def test_kelvin_reading_carries_rdgst_in_one_exchange(
    ch: Any, status: str, quality: Quality, note: str
) -> None:
    with expected_protocol(LakeShore372, [(f"RDGK? {ch};RDGST? {ch}", f"+012.345E-03;{status}")]) as ls:
        reading = ls.inputs[ch].kelvin_reading
    assert reading.value == pytest.approx(0.012345)
    assert reading.quality == quality and reading.note == note


@pytest.mark.parametrize(
    ("status", "quality"),
    [("000", Quality.OK), ("016", Quality.OVERRANGE), ("064", Quality.OK), ("160", Quality.UNDERRANGE)],
)
def test_resistance_reading_ignores_the_curve_bits(status: str, quality: Quality) -> None:
    with expected_protocol(LakeShore372, [("RDGR? 3;RDGST? 3", f"+75.123E+03;{status}")]) as ls:
        reading = ls.ch_3.resistance_reading
    assert reading.value == pytest.approx(75123.0)
    assert reading.quality == quality  # T.OVER: the resistance is fine, the curve ends


def test_zero_kelvin_with_a_valid_status_is_no_curve() -> None:
    with expected_protocol(LakeShore372, [("RDGK? 9;RDGST? 9", "+000.000E+00;000")]) as ls:
        reading = ls.ch_9.kelvin_reading
    assert reading.value == 0.0 and reading.quality == Quality.INVALID
    assert "no curve" in reading.note


def test_an_open_sensor_keeps_the_instruments_value() -> None:
    with expected_protocol(LakeShore372, [("RDGK? A;RDGST? A", "+000.000E+00;017")]) as ls:
        reading = ls.ch_A.kelvin_reading
    assert reading.value == 0.0 and not reading.ok
    assert reading.quality == Quality.SENSOR_ERROR | Quality.OVERRANGE  # not INVALID: the
    assert reading.note == "RDGST 017: CS OVL, R.OVER"  # instrument said why


@pytest.mark.parametrize("reply", ["+012.345E-03", "+012.345E-03;000;000", "x;000", "+1E-3;abc"])
def test_malformed_pairs_are_reply_errors(reply: str) -> None:
    with (
        expected_protocol(LakeShore372, [("RDGK? 2;RDGST? 2", reply)]) as ls,
        pytest.raises(InstrumentReplyError) as info,
    ):
        _ = ls.ch_2.kelvin_reading
    assert info.value.instrument == "Lake Shore 372 input 2"
    assert info.value.command == "kelvin_reading"


def test_quality_tables_of_both_models() -> None:
    assert quality_372(255, kelvin=False)[0] == (
        Quality.SENSOR_ERROR | Quality.OVERRANGE | Quality.UNDERRANGE)
    assert quality_336(1) == (Quality.INVALID, "RDGST 001: invalid reading")
    assert quality_336(129)[0] == Quality.INVALID | Quality.OVERRANGE
    assert quality_336(64)[0] == Quality.UNDERRANGE
    assert quality_336(32, kelvin=False) == (Quality.OK, "")


# ---- heater status with the output ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "quality", "note"),
    [("0", Quality.OK, ""), ("1", Quality.OUTPUT_FAULT, "HTRST 1: open load"),
     ("2", Quality.OUTPUT_FAULT, "HTRST 2: short")],
)
def test_heater_outputs_are_read_with_htrst(code: str, quality: Quality, note: str) -> None:
    with expected_protocol(
        LakeShore372,
        [("HTR?;HTRST? 0", f"+012.500E+00;{code}"), ("AOUT? 1;HTRST? 1", f"+033.000E+00;{code}"),
         ("AOUT? 1", "+033.000E+00"), ("AOUT? 2", "+010.000E+00")],
    ) as ls:
        sample = ls.sample_heater.heater_output_reading
        warmup = ls.warmup_heater.heater_output_reading
        assert ls.warmup_heater.heater_output == 33.0
        assert ls.still_heater.heater_output == 10.0
    assert (sample.value, sample.quality, sample.note) == (12.5, quality, note)
    assert (warmup.value, warmup.quality, warmup.note) == (33.0, quality, note)


def test_poll_specs_return_flagged_readings() -> None:
    pairs = [
        *SCANNER_INSET,
        ("SCAN?", "06,0"),
        ("INSET? A", "1,001,003,26,1"),
        ("RDGK? A;RDGST? A", "+000.000E+00;017"),
        ("RDGR? 6;RDGST? 6", "+000.000E+00;016"),
        ("HTR?;HTRST? 0", "+000.000E+00;1"),
    ]
    with expected_protocol(LakeShore372, pairs) as ls:
        specs = {s.name: s for s in ls.poll_specs()}
        a, = specs["A"].sample("ls372")
        ohms, = specs["ch6_ohms"].sample("ls372")
        heater, = specs["sample_heater"].sample("ls372")
    assert a.quality == Quality.SENSOR_ERROR | Quality.OVERRANGE
    assert ohms.quality == Quality.OVERRANGE and ohms.note == "RDGST 016: R.OVER"
    assert heater.quality == Quality.OUTPUT_FAULT and heater.note == "HTRST 1: open load"
    assert specs["warmup_heater"].unit == "%"


# ---- the control input's own excitation table -------------------------------------------------


@pytest.mark.parametrize("amps", list(CONTROL_EXCITATIONS))
def test_control_input_excitation_table(amps: float) -> None:
    index = CONTROL_EXCITATIONS[amps]
    with expected_protocol(
        LakeShore372,
        [("INTYPE? A", f"1,{index:02d},1,00,0,1"), ("INTYPE? A", "1,01,1,00,0,1"),
         (f"INTYPE A,1,{index},1,0,0,1", None)],
    ) as ls:
        assert ls.ch_A.input_type == ControlInputType(amps, True, False, SensorUnits.KELVIN)
        ls.ch_A.current_excitation = amps
    assert CONTROL_EXCITATIONS == {316e-12: 1, 1e-9: 2, 3.16e-9: 3, 10e-9: 4, 31.6e-9: 5,
                                   100e-9: 6}


def test_control_input_type_set_whole_and_by_field() -> None:
    with expected_protocol(
        LakeShore372,
        [("INTYPE A,1,4,0,0,1,2", None), ("INTYPE? A", "1,04,0,16,1,2"),
         ("INTYPE A,1,4,0,0,1,1", None)],
    ) as ls:
        ls.ch_A.input_type = ControlInputType(10e-9, False, True, SensorUnits.OHMS)
        ls.ch_A.units = SensorUnits.KELVIN  # the range field read back is ignored, 0 is sent


@pytest.mark.parametrize(
    ("attr", "value", "sent"),
    [("autorange", True, "INTYPE A,1,3,1,0,0,1"), ("cs_shunt", True, "INTYPE A,1,3,0,0,1,1"),
     ("units", SensorUnits.OHMS, "INTYPE A,1,3,0,0,0,2"),
     ("current_excitation", 100e-9, "INTYPE A,1,6,0,0,0,1")],
)
def test_control_input_fields_read_modify_write(attr: str, value: Any, sent: str) -> None:
    with expected_protocol(
        LakeShore372, [("INTYPE? A", "1,03,0,00,0,1"), ("INTYPE? A", "1,03,0,00,0,1"), (sent, None)]
    ) as ls:
        current = getattr(ls.ch_A, attr)
        assert current == getattr(ControlInputType(3.16e-9, False, False, SensorUnits.KELVIN),
                                  attr.replace("current_", ""))
        setattr(ls.ch_A, attr, value)


@pytest.mark.parametrize(
    ("reply", "why"),
    [("0,04,0,00,0,1", "current"), ("1,07,0,00,0,1", "table"), ("1,04,2,00,0,1", "ROX102B")],
)
def test_control_input_replies_outside_its_table_are_reply_errors(reply: str, why: str) -> None:
    with (
        expected_protocol(LakeShore372, [("INTYPE? A", reply)]) as ls,
        pytest.raises(InstrumentReplyError, match=why),
    ):
        _ = ls.ch_A.input_type


def test_control_input_refuses_scanner_settings_before_sending() -> None:
    with expected_protocol(LakeShore372, []) as ls:
        with pytest.raises(SettingOutOfRange) as info:
            ls.ch_A.input_type = ControlInputType(1e-6, False, False, SensorUnits.KELVIN)
        assert info.value.command == "input_type.excitation" and info.value.unit == "A"
        assert not hasattr(ls.ch_A, "voltage_excitation")
        assert not hasattr(ls.ch_A, "resistance_range")


# ---- TLIMIT as the daemon's setup backstop ----------------------------------------------------


def test_tlimit_control_specs_set_and_read_back() -> None:
    with expected_protocol(
        LakeShore372, [("TLIMIT A,0.8", None), ("TLIMIT? A", "+800.000E-03"),
                       ("TLIMIT 6,1.5", None)]
    ) as ls:
        specs = {c.name: c for c in ls.control_specs()}
        assert {f"tlimit_{ch}" for ch in ["A", *range(1, 17)]} <= set(specs)
        assert specs["tlimit_A"].unit == "K" and "0 to 2000" in specs["tlimit_A"].allowed
        assert specs["tlimit_A"].apply(0.8, "ls372") == 0.8
        assert specs["tlimit_A"].read_back("ls372") == pytest.approx(0.8)
        specs["tlimit_6"].apply(1.5, "ls372")
        with pytest.raises(SettingOutOfRange, match="tlimit|temperature_limit"):
            specs["tlimit_A"].check(-1, "ls372")


# ---- ZONE tables -----------------------------------------------------------------------------


ZONE_REPLY = "+250.000E-03,+10.0000,+20.0000,+0.00000,+0.00,2,+1.20000,0,1"


def test_zone_row_get_and_set() -> None:
    row = SampleZone(0.25, 10, 20, 0, 0, 100e-6, 1.2, False, True)
    with expected_protocol(
        LakeShore372, [("ZONE? 0,1", ZONE_REPLY), ("ZONE 0,3,0.25,10,20,0,0,2,1.2,0,1", None),
                       ("ZONE? 1,10", "+1.000E+00,+5.0,+1.0,+0.0,+0.00,1,+0.1,0,0"),
                       ("ZONE 1,2,2,5,1,0,10,1,0.5,1,0", None)],
    ) as ls:
        assert ls.sample_heater.zone(1) == row
        ls.sample_heater.set_zone(3, row)
        assert ls.warmup_heater.zone(10) == WarmupZone(1.0, 5, 1, 0, 0, True, 0.1, False, False)
        ls.warmup_heater.set_zone(2, (2.0, 5, 1, 0, 10, True, 0.5, True, False))


def test_zone_table_property() -> None:
    pairs = [(f"ZONE? 0,{n}", ZONE_REPLY) for n in range(1, 11)]
    rows = [SampleZone(0.1, 50, 20, 0, 0, 31.6e-6, 0.1, False, False),
            SampleZone(1.0, 100, 20, 0, 0, 1e-3, 0.1, False, False)]
    with expected_protocol(
        LakeShore372, [*pairs, ("ZONE 0,1,0.1,50,20,0,0,1,0.1,0,0", None),
                       ("ZONE 0,2,1,100,20,0,0,4,0.1,0,0", None)],
    ) as ls:
        assert len(ls.sample_heater.zones) == 10
        ls.sample_heater.zones = rows


@pytest.mark.parametrize(
    ("target", "number", "row", "command", "allowed"),
    [
        ("sample_heater", 11, SampleZone(1, 1, 1, 0, 0, 0.0, 1, False, False), "zone", "1 to 10"),
        ("sample_heater", 1, SampleZone(1, 1, 1, 0, 0, 0.5, 1, False, False),
         "zone 1.heater_range", "0.1"),
        ("sample_heater", 1, SampleZone(1, 2000.5, 1, 0, 0, 0.0, 1, False, False), "zone 1.p",
         "0 to 1000"),
        ("sample_heater", 2, SampleZone(-1, 1, 1, 0, 0, 0.0, 1, False, False),
         "zone 2.upper_bound", "0 to 2000"),
        ("warmup_heater", 1, WarmupZone(1, 1, 1, 0, 0, 1e-3, 1, False, False),
         "zone 1.heater_range", "False, True"),
        ("warmup_heater", 1, WarmupZone(1, 1, 1, 0, 101, True, 1, False, False),
         "zone 1.manual_output", "0 to 100"),
        ("sample_heater", 1, WarmupZone(1, 1, 1, 0, 0, True, 1, False, False), "zone 1",
         "a SampleZone"),
    ],
)
def test_zone_refusals_send_nothing(target: str, number: int, row: Any, command: str,
                                    allowed: str) -> None:
    with expected_protocol(LakeShore372, []) as ls, pytest.raises(SettingOutOfRange) as info:
        getattr(ls, target).set_zone(number, row)
    assert info.value.command == command and allowed in info.value.allowed


def test_zone_table_bounds_must_rise() -> None:
    rows = [SampleZone(1.0, 1, 1, 0, 0, 0.0, 1, False, False),
            SampleZone(0.5, 1, 1, 0, 0, 0.0, 1, False, False)]
    with expected_protocol(LakeShore372, []) as ls, pytest.raises(SettingOutOfRange) as info:
        ls.sample_heater.zones = rows
    assert info.value.command == "zones[2].upper_bound"
    with expected_protocol(LakeShore372, []) as ls, pytest.raises(SettingOutOfRange):
        ls.sample_heater.zones = []
