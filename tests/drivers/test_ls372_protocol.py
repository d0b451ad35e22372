"""Protocol replay of the Lake Shore 372 driver: the exact bytes of every property."""

from __future__ import annotations

from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.lakeshore.curves import CurveHeader, Pacer
from drivers.lakeshore.ls372 import LakeShore372, ScanState
from drivers.lakeshore.ls372_codes import (
    CURRENT_EXCITATIONS,
    FREQUENCIES,
    RESISTANCE_RANGES,
    SAMPLE_HEATER_RANGES,
    VOLTAGE_EXCITATIONS,
    Autorange,
    CurveFormat,
    ExcitationMode,
    HeaterDisplay,
    HeaterStatus,
    OutputMode,
    Polarity,
    ReadingStatus,
    SensorUnits,
    Tempco,
)
from drivers.lakeshore.ls372_heater import SampleHeaterSetup, WarmupHeaterSetup
from drivers.lakeshore.ls372_inputs import FilterSettings, ScanSettings
from drivers.lakeshore.ls372_intype import InputType
from drivers.lakeshore.ls372_outputs import PID372, OutputSetup, Ramp372
from drivers.lakeshore.ls372_scan import ScanTracker

INPUTS = ["A", 1, 6, 16]
OUTPUTS = [0, 1, 2]
NO_WAIT = Pacer(clock=lambda: 0.0, sleep=lambda s: None, interval_s=0.0, per_second=10**6)


def output(ls: LakeShore372, n: int) -> Any:
    return ls.outputs[n]


# ---- tables --------------------------------------------------------------------------------


def test_tables_match_the_manual() -> None:
    assert list(VOLTAGE_EXCITATIONS)[:3] == [2e-6, 6.32e-6, 2e-5]
    assert list(VOLTAGE_EXCITATIONS)[-1] == 0.632 and len(VOLTAGE_EXCITATIONS) == 12
    assert list(CURRENT_EXCITATIONS)[0] == 1e-12 and list(CURRENT_EXCITATIONS)[-1] == 31.6e-3
    assert len(CURRENT_EXCITATIONS) == 22
    assert list(RESISTANCE_RANGES)[0] == 2e-3 and list(RESISTANCE_RANGES)[-1] == 63.2e6
    assert len(RESISTANCE_RANGES) == 22
    assert list(SAMPLE_HEATER_RANGES) == [
        0.0,
        31.6e-6,
        100e-6,
        316e-6,
        1e-3,
        3.16e-3,
        10e-3,
        31.6e-3,
        100e-3,
    ]
    assert sorted(RESISTANCE_RANGES.values()) == list(range(1, 23))


# ---- readings ------------------------------------------------------------------------------


@pytest.mark.parametrize("ch", INPUTS)
@pytest.mark.parametrize(
    ("attr", "query", "reply", "expected"),
    [
        ("kelvin", "RDGK?", "+293.873E+00", 293.873),
        ("kelvin", "RDGK?", "+000.000E+00", 0.0),
        ("resistance", "RDGR?", "+1.23456E+03", 1234.56),
        ("excitation_power", "RDGPWR?", "+1.2000E-15", 1.2e-15),
    ],
)
def test_readings(ch: Any, attr: str, query: str, reply: str, expected: float) -> None:
    with expected_protocol(LakeShore372, [(f"{query} {ch}", reply)]) as ls:
        assert getattr(ls.inputs[ch], attr) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("reply", "flags"),
    [
        ("000", ReadingStatus(0)),
        ("001", ReadingStatus.CS_OVL),
        ("017", ReadingStatus.CS_OVL | ReadingStatus.R_OVER),
        ("160", ReadingStatus.R_UNDER | ReadingStatus.T_UNDER),
        ("255", ReadingStatus(255)),
    ],
)
@pytest.mark.parametrize("ch", ["A", 3])
def test_status_bits(ch: Any, reply: str, flags: ReadingStatus) -> None:
    with expected_protocol(LakeShore372, [(f"RDGST? {ch}", reply)]) as ls:
        status = ls.inputs[ch].status
    assert status == flags
    assert isinstance(status, ReadingStatus)
    assert bool(status) == (reply != "000")


def test_garbage_reading_raises_a_named_reply_error() -> None:
    with (
        expected_protocol(LakeShore372, [("RDGK? 5", "\x1b?#!ERR")]) as ls,
        pytest.raises(InstrumentReplyError) as info,
    ):
        _ = ls.ch_5.kelvin
    assert info.value.instrument == "Lake Shore 372 input 5"
    assert info.value.command == "kelvin"


def test_identity() -> None:
    with expected_protocol(LakeShore372, [("*IDN?", "LSCI,MODEL372,LSA1234,1.3")]) as ls:
        assert ls.identity == ["LSCI", "MODEL372", "LSA1234", "1.3"]


# ---- INSET ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ch", INPUTS)
def test_scan_settings_get_and_set(ch: Any) -> None:
    with expected_protocol(
        LakeShore372,
        [(f"INSET? {ch}", "1,007,003,21,1"), (f"INSET {ch},0,10,5,0,2", None)],
    ) as ls:
        assert ls.inputs[ch].scan_settings == ScanSettings(True, 7, 3, 21, Tempco.NEGATIVE)
        ls.inputs[ch].scan_settings = ScanSettings(False, 10, 5, 0, Tempco.POSITIVE)


@pytest.mark.parametrize(
    ("attr", "value", "sent"),
    [
        ("enabled", False, "INSET 4,0,7,3,21,1"),
        ("dwell", 200, "INSET 4,1,200,3,21,1"),
        ("pause", 30, "INSET 4,1,7,30,21,1"),
        ("curve", 59, "INSET 4,1,7,3,59,1"),
        ("tempco", Tempco.POSITIVE, "INSET 4,1,7,3,21,2"),
    ],
)
def test_scan_setting_fields_read_modify_write(attr: str, value: Any, sent: str) -> None:
    with expected_protocol(
        LakeShore372,
        [("INSET? 4", "1,007,003,21,1"), ("INSET? 4", "1,007,003,21,1"), (sent, None)],
    ) as ls:
        assert getattr(ls.ch_4, attr) == getattr(ScanSettings(True, 7, 3, 21, Tempco(1)), attr)
        setattr(ls.ch_4, attr, value)


def test_inset_on_a_scanner_channel_updates_the_scan_timing() -> None:
    with expected_protocol(LakeShore372, [("INSET 9,1,20,4,0,1", None)]) as ls:
        ls.ch_9.scan_settings = (True, 20, 4, 0, Tempco.NEGATIVE)
        assert ls.scan.timings[9].dwell == 20 and ls.scan.timings[9].pause == 4


# ---- INTYPE --------------------------------------------------------------------------------


@pytest.mark.parametrize("amplitude", list(VOLTAGE_EXCITATIONS))
def test_voltage_excitation_table(amplitude: float) -> None:
    index = VOLTAGE_EXCITATIONS[amplitude]
    reply = f"0,{index:02d},1,10,0,1"
    with expected_protocol(
        LakeShore372,
        [
            ("INTYPE? 2", reply),
            ("INTYPE? 2", "1,05,1,10,0,1"),
            (f"INTYPE 2,0,{index},1,10,0,1", None),
        ],
    ) as ls:
        assert ls.ch_2.input_type.excitation == amplitude
        ls.ch_2.voltage_excitation = amplitude


@pytest.mark.parametrize("amplitude", list(CURRENT_EXCITATIONS))
def test_current_excitation_table(amplitude: float) -> None:
    index = CURRENT_EXCITATIONS[amplitude]
    with expected_protocol(
        LakeShore372,
        [
            ("INTYPE? 8", f"1,{index:02d},0,22,0,2"),
            ("INTYPE? 8", f"1,{index:02d},0,22,0,2"),
            ("INTYPE? 8", "0,05,0,22,0,2"),
            (f"INTYPE 8,1,{index},0,22,0,2", None),
        ],
    ) as ls:
        assert ls.ch_8.current_excitation == amplitude
        assert ls.ch_8.voltage_excitation is None  # the input is in current mode
        ls.ch_8.current_excitation = amplitude  # switches from voltage to current mode


@pytest.mark.parametrize("ohms", list(RESISTANCE_RANGES))
def test_resistance_range_table(ohms: float) -> None:
    index = RESISTANCE_RANGES[ohms]
    with expected_protocol(
        LakeShore372,
        [
            ("INTYPE? 7", f"0,07,0,{index:02d},0,1"),
            ("INTYPE? 7", "0,07,0,01,0,1"),
            (f"INTYPE 7,0,7,0,{index},0,1", None),
        ],
    ) as ls:
        assert ls.ch_7.resistance_range == ohms
        ls.ch_7.resistance_range = ohms


def test_input_type_whole() -> None:
    setup = InputType(ExcitationMode.VOLTAGE, 20e-6, Autorange.ON, 63.2, False, SensorUnits.KELVIN)
    with expected_protocol(
        LakeShore372, [("INTYPE? 1", "0,07,1,10,0,1"), ("INTYPE 1,0,3,1,10,0,1", None)]
    ) as ls:
        got = ls.ch_1.input_type
        assert got.mode == ExcitationMode.VOLTAGE and got.excitation == 2e-3
        assert got.autorange == Autorange.ON and got.resistance_range == 63.2
        assert got.units == SensorUnits.KELVIN and got.cs_shunt is False
        ls.ch_1.input_type = setup


@pytest.mark.parametrize(
    ("attr", "value", "sent"),
    [
        ("autorange", Autorange.ROX102B, "INTYPE 1,0,7,2,10,0,1"),
        ("cs_shunt", True, "INTYPE 1,0,7,1,10,1,1"),
        ("units", SensorUnits.OHMS, "INTYPE 1,0,7,1,10,0,2"),
    ],
)
def test_input_type_fields(attr: str, value: Any, sent: str) -> None:
    with expected_protocol(LakeShore372, [("INTYPE? 1", "0,07,1,10,0,1"), (sent, None)]) as ls:
        setattr(ls.ch_1, attr, value)


def test_excitation_readers() -> None:
    with expected_protocol(
        LakeShore372, [("INTYPE? 3", "1,13,0,12,0,1"), ("INTYPE? 3", "1,13,0,12,0,1")]
    ) as ls:
        assert ls.ch_3.excitation_mode == ExcitationMode.CURRENT
        assert ls.ch_3.excitation == 1e-6


def test_intype_reply_with_an_unknown_index_is_a_reply_error() -> None:
    with (
        expected_protocol(LakeShore372, [("INTYPE? 3", "0,13,0,12,0,1")]) as ls,
        pytest.raises(InstrumentReplyError, match="not in the manual's table"),
    ):
        _ = ls.ch_3.input_type


# ---- FILTER, INNAME, TLIMIT, FREQ ------------------------------------------------------------


@pytest.mark.parametrize("ch", INPUTS)
def test_filter(ch: Any) -> None:
    with expected_protocol(
        LakeShore372, [(f"FILTER? {ch}", "1,10,20"), (f"FILTER {ch},0,200,80", None)]
    ) as ls:
        assert ls.inputs[ch].filter == FilterSettings(True, 10, 20)
        ls.inputs[ch].filter = FilterSettings(False, 200, 80)


@pytest.mark.parametrize("reply", ['"MXC RuOx"', "MXC RuOx       ", '"MXC RuOx       "'])
def test_name_get(reply: str) -> None:
    with expected_protocol(LakeShore372, [("INNAME? 6", reply)]) as ls:
        assert ls.ch_6.name == "MXC RuOx"


def test_name_set() -> None:
    with expected_protocol(LakeShore372, [('INNAME 6,"Cold plate"', None)]) as ls:
        ls.ch_6.name = "Cold plate"


@pytest.mark.parametrize(("value", "sent"), [(0, "0"), (4.5, "4.5"), (1500.25, "1500.25")])
def test_temperature_limit(value: float, sent: str) -> None:
    with expected_protocol(
        LakeShore372, [(f"TLIMIT 2,{sent}", None), ("TLIMIT? 2", "+4.5000E+00")]
    ) as ls:
        ls.ch_2.temperature_limit = value
        assert ls.ch_2.temperature_limit == 4.5


@pytest.mark.parametrize("hz", list(FREQUENCIES))
def test_frequency_of_the_measurement_input_and_of_the_control_input(hz: float) -> None:
    index = FREQUENCIES[hz]
    with expected_protocol(
        LakeShore372,
        [(f"FREQ 0,{index}", None), ("FREQ? 0", str(index)),
         (f"FREQ A,{index}", None), ("FREQ? A", str(index))],
    ) as ls:
        ls.measurement_frequency = hz  # one frequency for all sixteen scanner channels
        assert ls.measurement_frequency == hz
        ls.ch_A.excitation_frequency = hz
        assert ls.ch_A.excitation_frequency == hz
        assert not hasattr(ls.ch_5, "excitation_frequency")


# ---- scanner ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "state"), [("01,1", ScanState(1, True)), ("16,0", ScanState(16, False))]
)
def test_scanner_get(reply: str, state: ScanState) -> None:
    with expected_protocol(LakeShore372, [("SCAN?", reply)]) as ls:
        assert ls.scanner == state


def test_scanner_set_and_fields() -> None:
    with expected_protocol(
        LakeShore372,
        [
            ("SCAN 5,0", None),
            ("SCAN?", "05,0"),
            ("SCAN 12,0", None),
            ("SCAN?", "12,0"),
            ("SCAN 12,1", None),
            ("SCAN 3,1", None),
        ],
    ) as ls:
        ls.scanner = ScanState(5, False)
        assert ls.scan.active == 5
        ls.active_channel = 12
        ls.autoscan = True
        ls.select_channel(3, autoscan=True)
        assert ls.scan.active == 3 and ls.scan.autoscan


# ---- outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", OUTPUTS)
def test_output_setup(n: int) -> None:
    setup = OutputSetup(OutputMode.CLOSED_LOOP, "A", False, Polarity.UNIPOLAR, True, 1)
    with expected_protocol(
        LakeShore372,
        [
            (f"OUTMODE? {n}", "5,A,0,0,1,1"),
            (f"OUTMODE {n},5,A,0,0,1,1", None),
            (f"OUTMODE? {n}", "2,06,1,1,0,255"),
        ],
    ) as ls:
        assert output(ls, n).setup == setup
        output(ls, n).setup = setup
        other = output(ls, n).setup
        assert other == OutputSetup(OutputMode.OPEN_LOOP, 6, True, Polarity.BIPOLAR, False, 255)


@pytest.mark.parametrize(
    ("attr", "value", "sent"),
    [
        ("mode", OutputMode.OFF, "OUTMODE 0,0,A,0,0,1,1"),
        ("control_input", 16, "OUTMODE 0,5,16,0,0,1,1"),
        ("control_input", 0, "OUTMODE 0,5,0,0,0,1,1"),
        ("powerup_enable", True, "OUTMODE 0,5,A,1,0,1,1"),
        ("polarity", Polarity.BIPOLAR, "OUTMODE 0,5,A,0,1,1,1"),
        ("output_filter", False, "OUTMODE 0,5,A,0,0,0,1"),
        ("delay", 30, "OUTMODE 0,5,A,0,0,1,30"),
    ],
)
def test_output_setup_fields(attr: str, value: Any, sent: str) -> None:
    with expected_protocol(LakeShore372, [("OUTMODE? 0", "5,A,0,0,1,1"), (sent, None)]) as ls:
        setattr(ls.sample_heater, attr, value)


def test_heater_setup_per_output() -> None:
    with expected_protocol(
        LakeShore372,
        [
            ("HTRSET? 0", "+120.000,0,+000.000,1"),
            ("HTRSET 0,1500.5,0,0,2", None),
            ("HTRSET? 1", "2,2,+000.000,1"),
            ("HTRSET 1,1,0,0.3,1", None),
        ],
    ) as ls:
        assert ls.sample_heater.heater_setup == SampleHeaterSetup(120.0, HeaterDisplay.CURRENT)
        ls.sample_heater.heater_setup = SampleHeaterSetup(1500.5, HeaterDisplay.POWER)
        assert ls.warmup_heater.heater_setup == WarmupHeaterSetup(
            50.0, 0.63, 0.0, HeaterDisplay.CURRENT)
        ls.warmup_heater.heater_setup = WarmupHeaterSetup(25.0, 0.0, 0.3, HeaterDisplay.CURRENT)


@pytest.mark.parametrize("amps", list(SAMPLE_HEATER_RANGES))
def test_sample_heater_range(amps: float) -> None:
    index = SAMPLE_HEATER_RANGES[amps]
    with expected_protocol(
        LakeShore372, [(f"RANGE 0,{index}", None), ("RANGE? 0", str(index))]
    ) as ls:
        ls.sample_heater.heater_range = amps
        assert ls.sample_heater.heater_range == amps


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize(("on", "code"), [(True, 1), (False, 0)])
def test_warmup_and_still_range(n: int, on: bool, code: int) -> None:
    with expected_protocol(
        LakeShore372, [(f"RANGE {n},{code}", None), (f"RANGE? {n}", str(code))]
    ) as ls:
        output(ls, n).heater_range = on
        assert output(ls, n).heater_range is on


@pytest.mark.parametrize("n", OUTPUTS)
@pytest.mark.parametrize(
    ("attr", "cmd", "value", "sent", "reply", "read"),
    [
        ("manual_output", "MOUT", 12.5, "12.5", "+12.500E+00", 12.5),
        ("manual_output", "MOUT", 0, "0", "+0.000E+00", 0.0),
        ("setpoint", "SETP", 0.015, "0.015", "+15.000E-03", 0.015),
        ("setpoint", "SETP", 1e-5, "0.00001", "+10.000E-06", 1e-5),
        ("setpoint_ohms", "SETP", 25000, "25000", "+25.000E+03", 25000.0),
    ],
)
def test_output_numbers(
    n: int, attr: str, cmd: str, value: float, sent: str, reply: str, read: float
) -> None:
    with expected_protocol(
        LakeShore372, [(f"{cmd} {n},{sent}", None), (f"{cmd}? {n}", reply)]
    ) as ls:
        setattr(output(ls, n), attr, value)
        assert getattr(output(ls, n), attr) == pytest.approx(read)


@pytest.mark.parametrize("n", OUTPUTS)
def test_pid(n: int) -> None:
    with expected_protocol(
        LakeShore372,
        [(f"PID {n},10,20.5,0", None), (f"PID? {n}", "+0010.0,+0020.5,+0000.0")],
    ) as ls:
        output(ls, n).pid = PID372(10, 20.5, 0)
        assert output(ls, n).pid == PID372(10.0, 20.5, 0.0)


@pytest.mark.parametrize("n", OUTPUTS)
def test_ramp(n: int) -> None:
    with expected_protocol(
        LakeShore372,
        [
            (f"RAMP {n},1,0.5", None),
            (f"RAMP? {n}", "1,0.500"),
            (f"RAMP? {n}", "1, 0.500"),
            (f"RAMP {n},1,2", None),
            (f"RAMP? {n}", "1,2.000"),
            (f"RAMP {n},0,2", None),
            (f"RAMPST? {n}", "1"),
            (f"RAMPST? {n}", "0"),
        ],
    ) as ls:
        out = output(ls, n)
        out.ramp = Ramp372(True, 0.5)
        assert out.ramp == Ramp372(True, 0.5)
        out.ramp_rate = 2
        out.ramp_enabled = False
        assert out.ramping is True
        assert out.ramping is False


@pytest.mark.parametrize("n", OUTPUTS)
def test_start_and_stop_ramp(n: int) -> None:
    with expected_protocol(
        LakeShore372,
        [
            (f"RAMP {n},1,0.1", None),
            (f"SETP {n},0.05", None),
            (f"RAMP? {n}", "1,0.100"),
            (f"RAMP {n},0,0.1", None),
        ],
    ) as ls:
        output(ls, n).start_ramp(0.05, 0.1)
        output(ls, n).stop_ramp()


@pytest.mark.parametrize("n", OUTPUTS)
@pytest.mark.parametrize(
    ("reply", "status"),
    [("0", HeaterStatus.OK), ("1", HeaterStatus.OPEN_LOAD), ("2", HeaterStatus.SHORT)],
)
def test_heater_status(n: int, reply: str, status: HeaterStatus) -> None:
    with expected_protocol(LakeShore372, [(f"HTRST? {n}", reply)]) as ls:
        assert output(ls, n).heater_status == status


def test_still_output_has_no_heater_setup() -> None:
    with expected_protocol(LakeShore372, []) as ls:
        assert not hasattr(type(ls.still_heater), "heater_setup")


def test_heater_output_and_still() -> None:
    with expected_protocol(
        LakeShore372,
        [("HTR?", "+12.5000E+00"), ("STILL?", "+10.60"), ("STILL 25.5", None)],
    ) as ls:
        assert ls.sample_heater.heater_output == 12.5
        assert ls.still_heater.still_output == 10.6
        ls.still_heater.still_output = 25.5


def test_heaters_off() -> None:
    with expected_protocol(
        LakeShore372,
        [("RANGE 0,0", None), ("RANGE 0,0", None), ("RANGE 1,0", None), ("RANGE 2,0", None)],
    ) as ls:
        ls.sample_heater.off()
        ls.all_heaters_off()


# ---- curves ----------------------------------------------------------------------------------


def test_curve_header_get_and_set() -> None:
    header = CurveHeader("RX-102A", "U01234", CurveFormat.OHM_PER_K, 40.0, Tempco.NEGATIVE)
    with expected_protocol(
        LakeShore372,
        [
            ("CRVHDR? 21", "RX-102A        ,U01234    ,3,+40.000,1"),
            ('CRVHDR 21,"RX-102A","U01234",3,40,1', None),
        ],
    ) as ls:
        assert ls.curve_header(21) == header
        ls.set_curve_header(21, header)


def test_curve_point_get_and_set() -> None:
    with expected_protocol(
        LakeShore372,
        [("CRVPT? 21,3", "+1234.56,+0.012500,+0.00000"), ("CRVPT 21,3,1234.56,0.0125", None)],
    ) as ls:
        assert ls.curve_point(21, 3) == (1234.56, 0.0125)
        ls.set_curve_point(21, 3, 1234.56, 0.0125)


def test_upload_curve_sends_header_sorted_points_and_a_terminator() -> None:
    points = [(20000.0, 0.01), (1500.0, 4.0), (5000.0, 0.1)]
    with expected_protocol(
        LakeShore372,
        [
            ('CRVHDR 22,"MXC","X1",3,4,1', None),
            ("CRVPT 22,1,1500,4", None),
            ("CRVPT 22,2,5000,0.1", None),
            ("CRVPT 22,3,20000,0.01", None),
            ("CRVPT 22,4,0,0", None),
        ],
    ) as ls:
        header = ls.upload_curve(22, points, name="MXC", serial="X1", verify=False,
                                 pacer=NO_WAIT)
    assert header.coefficient == Tempco.NEGATIVE and header.limit == 4.0


def test_upload_curve_in_log_format_sends_log10_ohms() -> None:
    with expected_protocol(
        LakeShore372,
        [
            ('CRVHDR 30,"log","",4,10,1', None),
            ("CRVPT 30,1,2,10", None),
            ("CRVPT 30,2,4,0.1", None),
            ("CRVPT 30,3,0,0", None),
        ],
    ) as ls:
        ls.upload_curve(
            30, [(1e4, 0.1), (100.0, 10.0)], name="log", format=CurveFormat.LOG_OHM_PER_K,
            verify=False, pacer=NO_WAIT,
        )


def test_read_curve_back() -> None:
    with expected_protocol(
        LakeShore372,
        [
            ("CRVHDR? 23", '"MXC","X1",4,+10.000,1'),
            ("CRVPT? 23,1", "+2.00000,+10.0000"),
            ("CRVPT? 23,2", "+4.00000,+0.10000"),
            ("CRVPT? 23,3", "+0.00000,+0.00000"),
        ],
    ) as ls:
        header, points = ls.read_curve(23, pacer=NO_WAIT)
    assert header.name == "MXC" and header.format == CurveFormat.LOG_OHM_PER_K
    assert points == [(pytest.approx(100.0), 10.0), (pytest.approx(1e4), 0.1)]


@pytest.mark.parametrize(
    ("kwargs", "command"),
    [
        ({"number": 20}, "curve number"),
        ({"number": 60}, "curve number"),
        ({"points": [(1.0, 1.0)]}, "curve points"),
        ({"points": [(1.0, 1.0), (-5.0, 2.0)]}, "curve point"),
        ({"name": "x" * 16}, "curve name"),
        ({"serial": 'bad"q'}, "curve serial"),
        ({"limit": 0.0}, "curve limit"),
    ],
)
def test_upload_curve_refuses_before_sending(kwargs: dict[str, Any], command: str) -> None:
    args: dict[str, Any] = {
        "number": 21,
        "points": [(100.0, 10.0), (1000.0, 1.0)],
        "name": "ok",
        "serial": "s",
        "limit": None,
    }
    args.update(kwargs)
    number, points = args.pop("number"), args.pop("points")
    with expected_protocol(LakeShore372, []) as ls, pytest.raises(SettingOutOfRange) as info:
        ls.upload_curve(number, points, **args)
    assert info.value.command == command
    assert info.value.instrument == "Lake Shore 372"


# ---- refusals send nothing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "attr", "value", "instrument", "command", "unit", "allowed"),
    [
        ("sample_heater", "heater_range", 0.2, "output 0", "heater_range", "A", "0.1"),
        ("sample_heater", "heater_range", 5e-3, "output 0", "heater_range", "A", "0.00316"),
        ("sample_heater", "setpoint", -1, "output 0", "setpoint", "K", "0 to 2000"),
        ("sample_heater", "manual_output", 101, "output 0", "manual_output", "%", "0 to 100"),
        ("sample_heater", "pid", (1001, 1, 1), "output 0", "pid.p", "", "0 to 1000"),
        ("sample_heater", "pid", (1, 10001, 1), "output 0", "pid.i", "", "0 to 10000"),
        ("sample_heater", "pid", (1, 1, -1), "output 0", "pid.d", "", "0 to 2500"),
        ("sample_heater", "ramp", (True, 0.0001), "output 0", "ramp.rate", "K/min", "0.001"),
        ("sample_heater", "ramp_rate", 101, "output 0", "ramp_rate", "K/min", "0.001 to 100"),
        ("sample_heater", "mode", 7, "output 0", "mode", "", "closed_loop (5)"),
        ("sample_heater", "control_input", 17, "output 0", "control_input", "", "A"),
        ("sample_heater", "delay", 0, "output 0", "delay", "s", "1 to 255"),
        (
            "sample_heater",
            "heater_setup",
            (2500.0, 1),
            "output 0",
            "heater_setup.resistance",
            "Ohm",
            "1 to 2000",
        ),
        (
            "warmup_heater",
            "heater_setup",
            (100.0, 0.45, 0.0, 1),
            "output 1",
            "heater_setup.resistance",
            "Ohm",
            "25, 50",
        ),
        (
            "warmup_heater",
            "heater_setup",
            (50.0, 0.5, 0.0, 1),
            "output 1",
            "heater_setup.max_current",
            "A",
            "0.45",
        ),
        (
            "warmup_heater",
            "heater_setup",
            (50.0, 0.0, 0.0, 1),
            "output 1",
            "heater_setup.max_user_current",
            "A",
            "above 0",
        ),
        ("still_heater", "still_output", 100.5, "output 2", "still_output", "%", "0 to 100"),
        ("warmup_heater", "heater_range", 2, "output 1", "heater_range", "", "False, True"),
        ("ch_5", "dwell", 201, "input 5", "dwell", "s", "1 to 200"),
        ("ch_5", "pause", 2, "input 5", "pause", "s", "3 to 200"),
        ("ch_5", "curve", 60, "input 5", "curve", "", "0 to 59"),
        ("ch_5", "voltage_excitation", 1e-3, "input 5", "voltage_excitation", "V", "0.000632"),
        ("ch_8", "current_excitation", 0.1, "input 8", "current_excitation", "A", "0.0316"),
        ("ch_A", "current_excitation", 1e-6, "input A", "current_excitation", "A", "1e-07"),
        ("ch_5", "resistance_range", 1e9, "input 5", "resistance_range", "Ohm", "6.32e+07"),
        ("ch_5", "filter", (True, 10, 81), "input 5", "filter.window_pct", "%", "1 to 80"),
        ("ch_A", "excitation_frequency", 50, "input A", "excitation_frequency", "Hz", "9.8"),
        (None, "measurement_frequency", 9.9, "", "measurement_frequency", "Hz", "18.2"),
        ("ch_5", "temperature_limit", -1, "input 5", "temperature_limit", "K", "0 to 2000"),
        ("ch_5", "name", 'with"quote', "input 5", "name", "", "without quotes"),
        (None, "active_channel", 0, "", "active_channel", "", "1 to 16"),
        (None, "scanner", (17, True), "", "scanner.channel", "", "1 to 16"),
    ],
)
def test_out_of_range_settings_raise_before_anything_is_sent(
    target: str | None,
    attr: str,
    value: Any,
    instrument: str,
    command: str,
    unit: str,
    allowed: str,
) -> None:
    with expected_protocol(LakeShore372, []) as ls:
        obj = ls if target is None else getattr(ls, target)
        with pytest.raises(SettingOutOfRange) as info:
            setattr(obj, attr, value)
    err = info.value
    assert err.instrument == f"Lake Shore 372 {instrument}".strip()
    assert err.command == command
    assert err.value == value or err.value in (value if isinstance(value, tuple) else ())
    assert err.unit == unit
    assert allowed in err.allowed
    assert repr(err.value) in str(err) or str(err.value) in str(err)


def test_start_ramp_refuses_before_sending() -> None:
    with (
        expected_protocol(LakeShore372, []) as ls,
        pytest.raises(SettingOutOfRange, match="setpoint"),
    ):
        ls.sample_heater.start_ramp(5000, 0.1)
        with pytest.raises(SettingOutOfRange, match="rate"):
            ls.sample_heater.start_ramp(0.1, 1000)


# ---- the daemon's view ---------------------------------------------------------------------------


def _inset_pairs(enabled: set[Any]) -> list[tuple[str, str]]:
    return [(f"INSET? {ch}", f"{int(ch in enabled)},007,003,21,1") for ch in range(1, 17)]


def test_poll_specs_cover_enabled_channels_only() -> None:
    pairs = [*_inset_pairs({1, 2, 6}), ("SCAN?", "06,1"), ("INSET? A", "0,001,003,00,1")]
    with expected_protocol(LakeShore372, pairs) as ls:
        specs = {s.name: s for s in ls.poll_specs()}
    assert set(specs) == {
        "ch1",
        "ch1_ohms",
        "ch2",
        "ch2_ohms",
        "ch6",
        "ch6_ohms",
        "sample_heater",
        "warmup_heater",
        "still",
    }
    assert specs["ch6"].unit == "K" and specs["ch6_ohms"].unit == "Ohm"
    assert specs["ch6"].fresh is not None
    assert specs["sample_heater"].fresh is None


def test_poll_spec_reads_and_marks_the_channel_read() -> None:
    pairs = [
        *_inset_pairs({6}),
        ("SCAN?", "06,0"),
        ("INSET? A", "1,001,003,00,1"),
        ("RDGK? 6;RDGST? 6", "+12.000E-03;000"),
        ("RDGK? A;RDGST? A", "+15.000E-03;000"),
    ]
    with expected_protocol(LakeShore372, pairs) as ls:
        specs = {s.name: s for s in ls.poll_specs()}
        assert "A" in specs and specs["A"].fresh is None
        assert specs["ch6"].read().value == 0.012
        assert specs["A"].read().value == 0.015
        assert (6, "K") in ls.scan._last_read


def test_control_specs_validate_without_sending() -> None:
    with expected_protocol(LakeShore372, []) as ls:
        specs = {c.name: c for c in ls.control_specs()}
        assert specs["heater_range"].validate(3.162e-3) == 3.16e-3
        assert specs["heater_range"].unit == "A"
        assert "0.1" in specs["heater_range"].allowed
        assert specs["setpoint"].validate(0.02) == 0.02
        for name, bad in [
            ("setpoint", 2001),
            ("heater_range", 1.0),
            ("pid", (0, 0, 9999)),
            ("ramp_rate", 0),
            ("scan_channel", 17),
            ("heater_mode", 9),
            ("still_output", -1),
            ("manual_output", 200),
        ]:
            with pytest.raises(SettingOutOfRange) as info:
                specs[name].validate(bad)
            assert info.value.instrument.startswith("Lake Shore 372")


def test_control_specs_set_and_get() -> None:
    with expected_protocol(
        LakeShore372, [("SETP 0,0.02", None), ("SETP? 0", "+20.000E-03"), ("RANGE 0,4", None)]
    ) as ls:
        specs = {c.name: c for c in ls.control_specs()}
        specs["setpoint"].set(0.02)
        assert specs["setpoint"].get is not None and specs["setpoint"].get() == 0.02
        specs["heater_range"].set(1e-3)


def test_action_specs_call_the_instrument() -> None:
    with expected_protocol(
        LakeShore372,
        [
            ("RAMP 0,1,0.2", None),
            ("SETP 0,0.1", None),
            ("RANGE 0,0", None),
            ("RANGE 1,0", None),
            ("RANGE 2,0", None),
            ("SCAN 4,1", None),
        ],
    ) as ls:
        actions = {a.name: a for a in ls.action_specs()}
        assert actions["start_ramp"].params == ("target", "rate")
        actions["start_ramp"].call(0.1, 0.2)
        actions["all_heaters_off"].call()
        actions["select_channel"].call(4, True)
        assert {"stop_ramp", "upload_curve"} <= set(actions)


# ---- scan timing ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def tracker(
    enabled: dict[int, tuple[float, float]], time_scale: float = 1.0
) -> tuple[ScanTracker, FakeClock]:
    clock = FakeClock()
    scan = ScanTracker(clock=clock, time_scale=time_scale)
    for ch in range(1, 17):
        dwell, pause = enabled.get(ch, (10.0, 3.0))
        scan.set_timing(ch, ch in enabled, dwell, pause)
    return scan, clock


def test_tracker_pause_then_dwell_then_next_channel() -> None:
    scan, clock = tracker({1: (7, 3), 6: (10, 5)})
    scan.observe(1, True)
    assert scan.reading_channel() is None  # pausing
    assert scan.next_fresh(1) == 1003.0
    assert scan.next_fresh(6) == 1000 + 10 + 5  # after channel 1's visit and 6's pause
    clock.t = 1004.0
    assert scan.reading_channel() == 1
    assert scan.next_fresh(1) == 1004.0
    assert scan.scan_order(1) == [6, 1]
    assert scan.next_fresh(3) is None  # not enabled


def test_tracker_fresh_follows_the_scanner() -> None:
    scan, clock = tracker({1: (7, 3), 6: (10, 5)})
    scan.observe(1, True)
    assert scan.is_fresh(6)  # never read: its held reading is worth one read
    scan.mark_read(6)
    clock.t = 1002.0
    scan.mark_read(1, key="K")
    assert not scan.is_fresh(1, key="K")  # still in the pause
    clock.t = 1005.0
    assert scan.is_fresh(1, key="K")
    scan.mark_read(1, key="K")
    assert not scan.is_fresh(6)  # 6 has not been scanned since it was read
    clock.t = 1016.0
    scan.observe(6, True)  # switched at the predicted 1010, settles at 1015
    assert scan.is_fresh(6)
    assert scan.is_fresh(1, key="K")  # 1 was measured until it was left at 1010
    scan.mark_read(1, key="K")
    clock.t = 1020.0
    assert not scan.is_fresh(1, key="K")


def test_tracker_manual_switch_restarts_the_pause() -> None:
    scan, clock = tracker({2: (10, 3)})
    scan.switched(2, False)
    scan.mark_read(2)
    clock.t = 1002.0
    assert not scan.is_fresh(2)
    clock.t = 1100.0
    assert scan.is_fresh(2)  # autoscan off: the channel is read continuously
    assert scan.next_fresh(2) == 1100.0
    assert scan.next_fresh(5) is None


def test_tracker_time_scale() -> None:
    scan, clock = tracker({1: (10, 3), 2: (10, 3)}, time_scale=100.0)
    scan.observe(1, True)
    assert scan.next_fresh(1) == pytest.approx(1000.03)
    assert scan.next_fresh(2) == pytest.approx(1000 + 0.13 + 0.03)
    with pytest.raises(ValueError):
        ScanTracker(time_scale=0)


def test_tracker_channels_skipped_between_observations_were_measured() -> None:
    scan, clock = tracker({1: (1, 3), 2: (1, 3), 3: (1, 3)})
    scan.observe(1, True)
    for ch in (1, 2, 3):
        scan.mark_read(ch)
    clock.t = 1009.0
    scan.observe(3, True)  # went through 2 unseen
    assert scan.is_fresh(2)
    assert scan.is_fresh(1)


def test_scanner_fresh_asks_scan_at_most_every_refresh_interval() -> None:
    pairs = [*_inset_pairs({1, 2}), ("SCAN?", "01,1")]
    with expected_protocol(LakeShore372, pairs) as ls:
        clock = FakeClock()
        ls.scan.clock = clock
        assert ls.scanner_fresh(1)  # first call: INSET? x16 and SCAN?
        assert ls.scanner_fresh(2)  # within scan_refresh_s: no query
