"""Protocol replay of the Lake Shore 336 driver: the exact bytes of every property."""

from __future__ import annotations

from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.lakeshore.ls336 import (
    PID336,
    HeaterRange,
    HeaterSetup336,
    InputStatus,
    InputType336,
    InputUnits,
    LakeShore336,
    OutputMode336,
    OutputSetup336,
    Ramp336,
    SensorType,
)
from drivers.lakeshore.ls372_codes import HeaterDisplay, HeaterStatus

INPUTS = ["A", "B", "C", "D"]
OUTPUTS = [1, 2]


@pytest.mark.parametrize("ch", INPUTS)
@pytest.mark.parametrize(
    ("attr", "query", "reply", "expected"),
    [
        ("kelvin", "KRDG?", "+004.2150", 4.215),
        ("kelvin", "KRDG?", "+293.87", 293.87),
        ("sensor", "SRDG?", "+1.02345", 1.02345),
        ("sensor", "SRDG?", "+1234.5", 1234.5),
    ],
)
def test_readings(ch: str, attr: str, query: str, reply: str, expected: float) -> None:
    with expected_protocol(LakeShore336, [(f"{query} {ch}", reply)]) as lc:
        assert getattr(lc.inputs[ch], attr) == pytest.approx(expected)


@pytest.mark.parametrize("ch", INPUTS)
@pytest.mark.parametrize(
    ("reply", "flags"),
    [
        ("000", InputStatus(0)),
        ("001", InputStatus.INVALID_READING),
        ("048", InputStatus.TEMP_UNDERRANGE | InputStatus.TEMP_OVERRANGE),
        ("128", InputStatus.SENSOR_UNITS_OVERRANGE),
    ],
)
def test_status(ch: str, reply: str, flags: InputStatus) -> None:
    with expected_protocol(LakeShore336, [(f"RDGST? {ch}", reply)]) as lc:
        assert lc.inputs[ch].status == flags


@pytest.mark.parametrize("ch", INPUTS)
def test_input_type(ch: str) -> None:
    diode = InputType336(SensorType.DIODE, False, 2.5, False, InputUnits.KELVIN)
    cernox = InputType336(SensorType.NTC_RTD, True, 3000.0, True, InputUnits.SENSOR)
    with expected_protocol(
        LakeShore336,
        [
            (f"INTYPE? {ch}", "1,0,0,0,1"),
            (f"INTYPE {ch},3,1,5,1,3", None),
            (f"INTYPE? {ch}", "1,0,0,0,1"),
            (f"INTYPE {ch},0,0,0,0,1", None),
        ],
    ) as lc:
        assert lc.inputs[ch].input_type == diode
        lc.inputs[ch].input_type = cernox
        lc.inputs[ch].sensor_type = SensorType.DISABLED


@pytest.mark.parametrize("ch", INPUTS)
@pytest.mark.parametrize("curve", [0, 1, 21, 59])
def test_curve(ch: str, curve: int) -> None:
    with expected_protocol(
        LakeShore336, [(f"INCRV {ch},{curve}", None), (f"INCRV? {ch}", f"{curve:02d}")]
    ) as lc:
        lc.inputs[ch].curve = curve
        assert lc.inputs[ch].curve == curve


def test_name() -> None:
    with expected_protocol(
        LakeShore336, [('INNAME B,"4K plate"', None), ("INNAME? B", "4K plate       ")]
    ) as lc:
        lc.ch_B.name = "4K plate"
        assert lc.ch_B.name == "4K plate"


@pytest.mark.parametrize("n", OUTPUTS)
@pytest.mark.parametrize("rng", list(HeaterRange))
def test_heater_range(n: int, rng: HeaterRange) -> None:
    with expected_protocol(
        LakeShore336, [(f"RANGE {n},{int(rng)}", None), (f"RANGE? {n}", str(int(rng)))]
    ) as lc:
        lc.outputs[n].heater_range = rng
        got = lc.outputs[n].heater_range
        assert got is rng


@pytest.mark.parametrize("n", OUTPUTS)
@pytest.mark.parametrize(
    ("attr", "cmd", "value", "sent", "reply", "read"),
    [
        ("setpoint", "SETP", 4.2, "4.2", "+004.2000", 4.2),
        ("setpoint", "SETP", 50, "50", "+050.000", 50.0),
        ("manual_output", "MOUT", 33.3, "33.3", "+33.300", 33.3),
    ],
)
def test_output_numbers(
    n: int, attr: str, cmd: str, value: float, sent: str, reply: str, read: float
) -> None:
    with expected_protocol(
        LakeShore336, [(f"{cmd} {n},{sent}", None), (f"{cmd}? {n}", reply)]
    ) as lc:
        setattr(lc.outputs[n], attr, value)
        assert getattr(lc.outputs[n], attr) == pytest.approx(read)


@pytest.mark.parametrize("n", OUTPUTS)
def test_pid(n: int) -> None:
    with expected_protocol(
        LakeShore336,
        [(f"PID {n},50,20,0", None), (f"PID? {n}", "+0050.0,+0020.0,+000")],
    ) as lc:
        lc.outputs[n].pid = PID336(50, 20, 0)
        assert lc.outputs[n].pid == PID336(50.0, 20.0, 0.0)


@pytest.mark.parametrize("n", OUTPUTS)
def test_ramp_and_status(n: int) -> None:
    with expected_protocol(
        LakeShore336,
        [
            (f"RAMP {n},1,1.5", None),
            (f"RAMP? {n}", "1, 1.5"),
            (f"RAMP? {n}", "1,1.5"),
            (f"RAMP {n},0,1.5", None),
            (f"RAMPST? {n}", "1"),
            (f"RAMP {n},1,0.5", None),
            (f"SETP {n},10", None),
        ],
    ) as lc:
        out = lc.outputs[n]
        out.ramp = Ramp336(True, 1.5)
        assert out.ramp == Ramp336(True, 1.5)
        out.stop_ramp()
        assert out.ramping is True
        out.start_ramp(10, 0.5)


@pytest.mark.parametrize("n", OUTPUTS)
def test_heater_output_and_status(n: int) -> None:
    with expected_protocol(LakeShore336, [(f"HTR? {n}", "+045.67"), (f"HTRST? {n}", "1")]) as lc:
        assert lc.outputs[n].heater_output == 45.67
        assert lc.outputs[n].heater_status == HeaterStatus.OPEN_LOAD


@pytest.mark.parametrize("n", OUTPUTS)
def test_output_mode(n: int) -> None:
    with expected_protocol(
        LakeShore336,
        [
            (f"OUTMODE? {n}", "1,2,0"),
            (f"OUTMODE {n},3,0,1", None),
            (f"OUTMODE? {n}", "1,2,0"),
            (f"OUTMODE {n},0,2,0", None),
        ],
    ) as lc:
        assert lc.outputs[n].setup == OutputSetup336(OutputMode336.CLOSED_LOOP, "B", False)
        lc.outputs[n].setup = OutputSetup336(OutputMode336.OPEN_LOOP, "", True)
        lc.outputs[n].mode = OutputMode336.OFF


@pytest.mark.parametrize("n", OUTPUTS)
def test_heater_setup(n: int) -> None:
    with expected_protocol(
        LakeShore336,
        [(f"HTRSET? {n}", "2,4,+0.000,1"), (f"HTRSET {n},1,0,0.5,2", None)],
    ) as lc:
        assert lc.outputs[n].heater_setup == HeaterSetup336(50.0, 1.732, 0.0, HeaterDisplay.CURRENT)
        lc.outputs[n].heater_setup = HeaterSetup336(25.0, 0.0, 0.5, HeaterDisplay.POWER)


def test_bad_replies_raise_named_errors() -> None:
    with expected_protocol(
        LakeShore336, [("OUTMODE? 1", "1,7,0"), ("RANGE? 2", "9"), ("HTRSET? 1", "3,1,0,1")]
    ) as lc:
        with pytest.raises(InstrumentReplyError, match="output 1 'setup'"):
            _ = lc.output_1.setup
        with pytest.raises(InstrumentReplyError, match="HeaterRange"):
            _ = lc.output_2.heater_range
        with pytest.raises(InstrumentReplyError, match="unknown code 3"):
            _ = lc.output_1.heater_setup


def test_all_heaters_off() -> None:
    with expected_protocol(LakeShore336, [("RANGE 1,0", None), ("RANGE 2,0", None)]) as lc:
        lc.all_heaters_off()


@pytest.mark.parametrize(
    ("target", "attr", "value", "command", "unit", "allowed"),
    [
        ("output_1", "heater_range", 4, "heater_range", "", "high (3)"),
        ("output_2", "setpoint", 2500, "setpoint", "K", "0 to 2000"),
        ("output_1", "manual_output", -0.1, "manual_output", "%", "0 to 100"),
        ("output_1", "pid", (0.05, 10, 0), "pid.p", "", "0.1 to 1000"),
        ("output_1", "pid", (10, 10, 201), "pid.d", "%", "0 to 200"),
        ("output_2", "ramp", (True, 0.01), "ramp.rate", "K/min", "0.1 to 100"),
        ("output_2", "ramp_rate", 200, "ramp_rate", "K/min", "0.1 to 100"),
        ("output_1", "control_input", "E", "control_input", "", "A"),
        (
            "output_1",
            "heater_setup",
            (30.0, 1.0, 0.0, 1),
            "heater_setup.resistance",
            "Ohm",
            "25, 50",
        ),
        ("ch_C", "curve", 60, "curve", "", "0 to 59"),
        ("ch_C", "input_type", (1, False, 5.0, False, 1), "input_type.input_range", "V",
         "2.5, 10"),
        ("ch_C", "input_type", (2, False, 1e5, False, 1), "input_type.input_range", "Ohm",
         "10000"),
        ("ch_C", "input_type", (1, True, 2.5, False, 1), "input_type.autorange", "",
         "no autorange"),
    ],
)
def test_out_of_range_settings_raise_before_anything_is_sent(
    target: str, attr: str, value: Any, command: str, unit: str, allowed: str
) -> None:
    with expected_protocol(LakeShore336, []) as lc, pytest.raises(SettingOutOfRange) as info:
        setattr(getattr(lc, target), attr, value)
    err = info.value
    assert err.instrument.startswith("Lake Shore 336 ")
    assert err.command == command
    assert err.unit == unit
    assert allowed in err.allowed


def test_poll_specs_skip_disabled_inputs() -> None:
    with expected_protocol(
        LakeShore336,
        [
            ("INTYPE? A", "1,0,0,0,1"),
            ("INTYPE? B", "1,0,0,0,1"),
            ("INTYPE? C", "0,0,0,0,1"),
            ("INTYPE? D", "3,1,5,1,1"),
            ("KRDG? 0;RDGST? A;RDGST? B;RDGST? C;RDGST? D",
             "+077.3500,+004.2150,+000.0000,+012.0000;000;000;001;000"),
            ("HTR? 2;HTRST? 2", "+010.00;0"),
        ],
    ) as lc:
        specs = {s.name: s for s in lc.poll_specs()}
        assert set(specs) == {"A", "B", "D", "heater1", "heater2"}
        assert specs["B"].read().value == 4.215 and specs["B"].unit == "K"
        assert specs["A"].read().value == 77.35  # the same exchange served A
        assert specs["D"].read().value == 12.0
        assert specs["heater2"].read().value == 10.0


def test_control_and_action_specs() -> None:
    with expected_protocol(
        LakeShore336, [("RANGE 2,3", None), ("RANGE 1,0", None), ("RANGE 2,0", None)]
    ) as lc:
        controls = {c.name: c for c in lc.control_specs()}
        assert {"setpoint1", "heater_range2", "pid1", "ramp_rate2", "heater_mode1"} <= set(controls)
        assert controls["heater_range2"].validate(HeaterRange.HIGH) == HeaterRange.HIGH
        with pytest.raises(SettingOutOfRange, match="Lake Shore 336 output 1 'setpoint'"):
            controls["setpoint1"].validate(-5)
        with pytest.raises(SettingOutOfRange, match="ramp_rate"):
            controls["ramp_rate1"].validate(0)
        controls["heater_range2"].set(3)
        actions = {a.name: a for a in lc.action_specs()}
        assert {"start_ramp1", "stop_ramp2", "all_heaters_off"} <= set(actions)
        actions["all_heaters_off"].call()


@pytest.mark.parametrize(
    ("attr", "value", "query", "reply", "sent"),
    [
        ("ramp_enabled", True, "RAMP? 1", "0,+0001.0", "RAMP 1,1,1"),
        ("ramp_rate", 2.5, "RAMP? 1", "1,+0001.0", "RAMP 1,1,2.5"),
        ("control_input", "D", "OUTMODE? 1", "1,2,0", "OUTMODE 1,1,4,0"),
        ("control_input", "", "OUTMODE? 1", "1,2,1", "OUTMODE 1,1,0,1"),
    ],
)
def test_output_fields_read_modify_write(
    attr: str, value: Any, query: str, reply: str, sent: str
) -> None:
    with expected_protocol(LakeShore336, [(query, reply), (query, reply), (sent, None)]) as lc:
        current = getattr(lc.output_1, attr)
        assert current == {"ramp_enabled": False, "ramp_rate": 1.0}.get(attr, "B")
        setattr(lc.output_1, attr, value)
