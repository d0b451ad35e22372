"""The simulated 33500 generator's SCPI: forms it accepts, limits, conflicts and what it outputs."""

from __future__ import annotations

import math

import pytest

from simulators.physics.tes_bias_line import GeneratorOutput
from simulators.servers.awg33500 import AWG33500Server
from simulators.servers.awg33500_model import format_number, parse_number
from simulators.servers.scpi import ScpiError


@pytest.fixture
def awg() -> AWG33500Server:
    return AWG33500Server()


def ask(server: AWG33500Server, text: str) -> str | None:
    reply = server.handle(text)
    assert reply is None or isinstance(reply, str)
    return reply


def errors(server: AWG33500Server) -> list[str]:
    found = []
    while (entry := ask(server, "SYST:ERR?")) != '+0,"No error"':
        assert entry is not None
        found.append(entry)
    return found


def test_long_short_forms_default_channel_and_chaining(awg) -> None:
    ask(awg, "source1:function square;frequency 2.5KHZ;:OUTPut1:STATe ON")
    assert ask(awg, "FUNC?") == "SQU"
    assert ask(awg, "SOUR1:FREQ?") == "+2.500000000000000E+03"
    assert ask(awg, "OUTP?") == "1"
    ask(awg, "SOUR2:VOLT 100 mV")
    assert ask(awg, "SOUR2:VOLT?") == "+1.000000000000000E-01"
    assert ask(awg, "SOUR1:FREQ? MAX") == "+3.000000000000000E+07"
    assert errors(awg) == []
    assert ask(awg, "SOUR3:FREQ?") is None
    assert errors(awg) == ['-114,"Header suffix out of range"']


def test_values_out_of_range_are_clipped_with_an_error(awg) -> None:
    ask(awg, "FREQ 50MHZ")
    ask(awg, "PHAS -400")
    ask(awg, "OUTP1:LOAD 1e6")
    assert ask(awg, "FREQ?") == format_number(30e6)
    assert ask(awg, "PHAS?") == format_number(-360)
    assert ask(awg, "OUTP1:LOAD?") == format_number(10e3)
    assert errors(awg) == ['-222,"Data out of range;value clipped to upper limit"',
                           '-222,"Data out of range;value clipped to lower limit"',
                           '-222,"Data out of range;value clipped to upper limit"']


def test_conflicts_adjust_the_other_setting(awg) -> None:
    ask(awg, "FREQ 1MHZ")
    ask(awg, "FUNC TRI")  # a triangle stops at 200 kHz
    assert ask(awg, "FREQ?") == format_number(200e3)
    ask(awg, "FUNC SQU;FREQ 20MHZ;FUNC:SQU:DCYC 10")  # 16 ns minimum level: 32 % at 20 MHz
    assert ask(awg, "FUNC:SQU:DCYC?") == format_number(32.0)
    ask(awg, "OUTP1:LOAD 50;:VOLT 8;:VOLT:OFFS 2")  # peak 5 V into 50 Ohm: offset limited to 1 V
    assert ask(awg, "VOLT:OFFS?") == format_number(1.0)
    assert [e.split(",")[0] for e in errors(awg)] == ["-221", "-222", "-221"]


def test_load_rescales_the_levels_read_back_not_the_output(awg) -> None:
    ask(awg, "VOLT 1;:VOLT:OFFS 0.5")  # into the default 50 Ohm
    assert awg.output(1).vpp == pytest.approx(2.0) and awg.output(1).offset == pytest.approx(1.0)
    ask(awg, "OUTP1:LOAD INF")
    assert ask(awg, "VOLT?") == format_number(2.0)
    assert ask(awg, "OUTP1:LOAD?") == "+9.900000000000000E+37"
    assert awg.output(1).vpp == pytest.approx(2.0)
    assert ask(awg, "VOLT:HIGH?") == format_number(2.0) and ask(awg, "VOLT:LOW?") == \
        format_number(0.0)


def test_amplitude_units(awg) -> None:
    ask(awg, "VOLT:UNIT VRMS;:VOLT 1")  # a header without : stays in VOLT:
    ask(awg, "VOLT:UNIT VPP")
    assert float(ask(awg, "VOLT?") or "nan") == pytest.approx(2 * math.sqrt(2))
    ask(awg, "VOLT:UNIT DBM;:VOLT 10")  # 10 dBm into 50 Ohm: 0.707 Vrms
    ask(awg, "VOLT:UNIT VRMS")
    assert float(ask(awg, "VOLT?") or "nan") == pytest.approx(math.sqrt(0.5), rel=1e-6)
    ask(awg, "OUTP1:LOAD INF;:VOLT:UNIT DBM")  # no dBm into a high impedance
    assert errors(awg)[0].startswith("-221")


def test_apply_switches_the_output_on_and_reports(awg) -> None:
    seen: list[tuple[int, GeneratorOutput]] = []
    awg.on_output = lambda ch, out: seen.append((ch, out))
    ask(awg, "FUNC:SQU:DCYC 30")
    ask(awg, "SOUR2:APPL:SQU 1 KHZ,0.5,0.1")
    assert ask(awg, "SOUR2:APPL?") == '"SQU +1.000000000000000E+03,+5.000000000000000E-01,' \
                                      '+1.000000000000000E-01"'
    channel, out = seen[-1]
    assert channel == 2 and out.enabled and out.duty == 50.0 and out.function == "SQU"
    ask(awg, "*RST")
    assert not awg.output(2).enabled and seen[-1][1].frequency == 1e3


def test_parse_number_forms() -> None:
    assert parse_number("1.5 MHZ", "HZ") == 1.5e6
    assert parse_number("250mV", ("VPP", "V")) == pytest.approx(0.25)
    assert parse_number("0.3VPP", ("VPP", "V")) == pytest.approx(0.3)
    assert parse_number("max") == "MAX" and parse_number("DEFault") == "DEF"
    assert parse_number("INF", "OHM") == math.inf
    with pytest.raises(ScpiError):
        parse_number("fast")
    with pytest.raises(ScpiError):
        parse_number("3 parsecs", "HZ")
