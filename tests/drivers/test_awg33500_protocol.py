"""Protocol replay for the Keysight 33500-series generator driver: every property, both channels."""

from __future__ import annotations

import math

import pytest
from pymeasure.test import expected_protocol

from drivers.common import Describable
from drivers.errors import InstrumentError, InstrumentReplyError, SettingOutOfRange
from drivers.keysight.awg33500 import (
    ErrorCode,
    ErrorEntry,
    Function,
    Keysight33500,
    OutputPolarity,
    VoltageUnit,
    max_peak_volts,
)

NO_ERROR = ("SYST:ERR?", '+0,"No error"')

# property, value set, command sent, reply to the query, value read back
CASES = [
    ("output_enabled", True, "OUTP{ch} ON", "1", True),
    ("output_enabled", False, "OUTP{ch} OFF", "0", False),
    ("function", Function.SQUARE, "SOUR{ch}:FUNC SQU", "SQU", Function.SQUARE),
    ("function", "RAMP", "SOUR{ch}:FUNC RAMP", "RAMP", Function.RAMP),
    ("frequency", 1000.0, "SOUR{ch}:FREQ 1000", "+1.000000000000000E+03", 1000.0),
    ("frequency", 1234.5678, "SOUR{ch}:FREQ 1234.5678", "+1.234567800000000E+03", 1234.5678),
    ("amplitude", 2.5, "SOUR{ch}:VOLT 2.5", "+2.500000000000000E+00", 2.5),
    ("offset", -1.25, "SOUR{ch}:VOLT:OFFS -1.25", "-1.250000000000000E+00", -1.25),
    ("voltage_unit", VoltageUnit.VRMS, "SOUR{ch}:VOLT:UNIT VRMS", "VRMS", VoltageUnit.VRMS),
    ("duty_cycle", 20, "SOUR{ch}:FUNC:SQU:DCYC 20", "+2.000000000000000E+01", 20.0),
    ("phase", 90.0, "SOUR{ch}:PHAS 90", "+9.000000000000000E+01", 90.0),
    ("load", 50, "OUTP{ch}:LOAD 50", "+5.000000000000000E+01", 50.0),
    ("load", math.inf, "OUTP{ch}:LOAD INF", "+9.900000000000000E+37", math.inf),
    ("load", "inf", "OUTP{ch}:LOAD INF", "+9.900000000000000E+37", math.inf),
    ("polarity", OutputPolarity.INVERTED, "OUTP{ch}:POL INV", "INV", OutputPolarity.INVERTED),
]


def _query(command: str) -> str:
    head, _, _ = command.partition(" ")
    return head + "?"


@pytest.mark.parametrize("ch", [1, 2])
@pytest.mark.parametrize(("prop", "value", "command", "reply", "read"), CASES,
                         ids=[f"{c[0]}-{c[2].split()[-1]}" for c in CASES])
def test_property_set_and_get(ch: int, prop: str, value, command: str, reply: str, read) -> None:
    sent = command.format(ch=ch)
    comm = [(sent, None), (_query(sent), reply)]
    with expected_protocol(Keysight33500, comm) as awg:
        channel = getattr(awg, f"ch_{ch}")
        setattr(channel, prop, value)
        got = getattr(channel, prop)
    assert got == read and type(got) is type(read)


@pytest.mark.parametrize(
    ("prop", "value"),
    [("frequency", 31e6), ("frequency", 0.0), ("amplitude", 25.0), ("amplitude", 1e-4),
     ("offset", 10.5), ("duty_cycle", 0.0), ("duty_cycle", 100.0), ("phase", 400.0),
     ("load", 0.5), ("load", 20e3), ("load", -math.inf), ("load", "open"),
     ("function", "SINE"), ("voltage_unit", "V"), ("polarity", "NEG"),
     ("output_enabled", "yes"), ("frequency", float("nan"))],
)
def test_out_of_range_values_are_refused_before_sending(prop: str, value) -> None:
    with (expected_protocol(Keysight33500, []) as awg,
          pytest.raises(SettingOutOfRange) as info):
        setattr(awg.ch_1, prop, value)
    assert "Keysight 33500 channel 1" in str(info.value) and prop in str(info.value)


@pytest.mark.parametrize("reply", ["2", "maybe"])
def test_bad_output_reply_is_a_reply_error(reply: str) -> None:
    with (expected_protocol(Keysight33500, [("OUTP1?", reply)]) as awg,
          pytest.raises(InstrumentReplyError)):
        _ = awg.ch_1.output_enabled


def test_identity_reset_and_error_queue() -> None:
    comm = [("*IDN?", "Keysight Technologies,33522B,MY52600670,4.03-1.19-2.00-58-00"),
            ("*RST", None),
            ("SYST:ERR?", '-222,"Data out of range;value clipped to upper limit"'),
            ("SYST:ERR?", '-113,"Undefined header"'), NO_ERROR]
    with expected_protocol(Keysight33500, comm) as awg:
        assert awg.identify().startswith("Keysight Technologies,33522B")
        awg.reset()
        errors = awg.errors()
    assert [e.known for e in errors] == [ErrorCode.DATA_OUT_OF_RANGE, ErrorCode.UNDEFINED_HEADER]
    assert errors[0].message.startswith("Data out of range")
    assert ErrorEntry.parse('+0,"No error"') == ErrorEntry(0, "No error")
    assert ErrorEntry(-999, "x").known is None
    with pytest.raises(InstrumentReplyError):
        ErrorEntry.parse("garbage")


def test_configure_validates_the_whole_wave_then_writes_in_a_safe_order() -> None:
    # Growing the swing: the offset goes first; raising the frequency: the duty cycle first.
    comm = [("OUTP1:LOAD INF", None), ("SOUR1:FUNC SQU", None),
            ("SOUR1:FREQ?", "+1.000000000000000E+02"),
            ("SOUR1:FUNC:SQU:DCYC 30", None), ("SOUR1:FREQ 1000", None),
            ("SOUR1:VOLT:UNIT VPP", None),
            ("SOUR1:VOLT?", "+1.000000000000000E-01"),
            ("SOUR1:VOLT:OFFS 0.5", None), ("SOUR1:VOLT 4", None), NO_ERROR]
    with expected_protocol(Keysight33500, comm) as awg:
        awg.ch_1.configure(function="SQU", frequency=1000, amplitude=4.0, offset=0.5,
                           duty_cycle=30, load=math.inf)


def test_configure_shrinking_writes_the_amplitude_first_and_reads_the_load() -> None:
    comm = [("OUTP2:LOAD?", "+5.000000000000000E+01"), ("SOUR2:FUNC?", "SIN"),
            ("SOUR2:VOLT:UNIT VPP", None), ("SOUR2:VOLT?", "+8.000000000000000E+00"),
            ("SOUR2:VOLT 0.2", None), ("SOUR2:VOLT:OFFS 4", None),
            ("SYST:ERR?", '-221,"Settings conflict"'), NO_ERROR]
    with (expected_protocol(Keysight33500, comm) as awg,
          pytest.raises(InstrumentError, match="Settings conflict")):
        awg.ch_2.configure(amplitude=0.2, offset=4.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"function": "TRI", "frequency": 1e6}, "frequency"),
     ({"frequency": 20e6, "duty_cycle": 99.9}, "duty_cycle"),
     ({"function": "SIN", "amplitude": 6.0, "offset": 2.5, "load": 50}, "amplitude"),
     ({"function": "SQU", "amplitude": 0.1, "offset": 5.5, "load": 50}, "offset"),
     ({"amplitude": 30.0, "offset": 0.0, "load": math.inf}, "amplitude")],
)
def test_configure_refuses_impossible_combinations_without_sending(kwargs, match) -> None:
    with (expected_protocol(Keysight33500, []) as awg,
          pytest.raises(SettingOutOfRange, match=match)):
        awg.ch_1.configure(**kwargs)


def test_level_limits_follow_the_load() -> None:
    assert max_peak_volts(50.0) == pytest.approx(5.0)
    assert max_peak_volts(math.inf) == 10.0
    assert max_peak_volts(1e3) == pytest.approx(10 * 1000 / 1050)


def test_daemon_description() -> None:
    comm = [("OUTP1?", "1"), ("SOUR2:FREQ?", "+2.000000000000000E+02"), ("OUTP1 OFF", None),
            ("SOUR1:VOLT 0.3", None), ("OUTP2:LOAD?", "+9.900000000000000E+37")]
    with expected_protocol(Keysight33500, comm) as awg:
        assert isinstance(awg, Describable)
        polls = {s.name: s for s in awg.poll_specs()}
        assert set(polls) == {f"ch{c}.{n}" for c in (1, 2)
                              for n in ("output_enabled", "frequency", "amplitude", "offset")}
        assert polls["ch1.output_enabled"].sample("awg")[0].value == 1.0
        assert polls["ch2.frequency"].sample("awg")[0].value == 200.0
        actions = {s.name: s for s in awg.action_specs()}
        assert {"ch1.output_off", "ch2.configure", "reset", "errors"} <= set(actions)
        actions["ch1.output_off"].invoke("awg")
        controls = {s.name: s for s in awg.control_specs()}
        assert len(controls) == 20
        with pytest.raises(SettingOutOfRange):
            controls["ch1.amplitude"].check(50.0, "awg")
        controls["ch1.amplitude"].apply(0.3, "awg")
        assert controls["ch2.load"].read_back("awg") == math.inf
        assert controls["ch2.load"].allowed.startswith("1 to 10000 Ohm")
        assert controls["ch1.frequency"].allowed == "1e-06 to 3e+07 Hz"
