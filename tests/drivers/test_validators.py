"""Tests of drivers.validators: refusals name instrument, property, value, range and unit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import pytest
from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range
from pymeasure.test import expected_protocol

from drivers import validators as v
from drivers.errors import InstrumentReplyError, SettingOutOfRange


class Colour(IntEnum):
    RED = 1
    GREEN = 2


def parse_number(reply: Any) -> float:
    try:
        return float(reply)
    except ValueError:
        raise v.bad_reply(reply, "expected a number") from None


@dataclass(frozen=True)
class Pair:
    a: int
    b: float

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "a": (v.int_in_range, (0, 9), ""),
        "b": (v.in_range, (0.0, 1.0), "V"),
    }


def pair_validator(value: Any, values: Any) -> tuple[int, float]:
    for field, (validator, allowed, unit) in values.RULES.items():
        try:
            validator(getattr(value, field), allowed)
        except SettingOutOfRange as exc:
            raise v.refuse(getattr(value, field), exc.allowed, field=field, unit=unit) from None
    return (value.a, value.b)


class Output(Channel):
    channel_label = "output"
    hook_calls: list[Any] = []

    setpoint = v.control(
        "SETP? {ch}",
        "SETP {ch},%g",
        "Setpoint.",
        values=(0.0, 300.0),
        unit="K",
        get_process=parse_number,
        after_set=lambda ch, value: Output.hook_calls.append((ch.id, value)),
    )
    current = v.control(
        "CUR? {ch}",
        "CUR {ch},%d",
        "Range.",
        validator=v.in_set,
        values={0.0: 0, 31.6e-6: 1, 1e-4: 2},
        map_values=True,
        unit="A",
    )
    legacy = v.control(
        "LEG? {ch}",
        "LEG {ch},%g",
        "Uses PyMeasure's strict_range.",
        validator=strict_range,
        values=(1, 5),
        unit="s",
    )
    legacy_set = v.control(
        "LS? {ch}",
        "LS {ch},%s",
        "Uses PyMeasure's strict_discrete_set.",
        validator=strict_discrete_set,
        values=("ON", "OFF"),
    )
    pair = v.control(
        "PAIR? {ch}",
        "PAIR {ch},%d,%g",
        "Structured.",
        validator=pair_validator,
        values=Pair,
    )
    reading = v.measurement("RDG? {ch}", "A reading.", unit="K", get_process=parse_number)


class Box(Instrument):
    out = Instrument.ChannelCreator(Output, 2)
    colour = v.control(
        "COL?",
        "COL %d",
        "Colour.",
        validator=v.in_set,
        values=list(Colour),
        get_process=int,
    )
    count = v.setting("CNT %d", "Count.", validator=v.int_in_range, values=(1, 200), unit="s")

    def __init__(self, adapter: Any, name: str = "Test box", **kwargs: Any) -> None:
        super().__init__(adapter, name, includeSCPI=False, **kwargs)


# ---- plain validators ----------------------------------------------------------------------


def test_in_range_accepts_bounds_and_refuses_outside() -> None:
    assert v.in_range(0.0, (0.0, 1.0)) == 0.0
    assert v.in_range(1, (0.0, 1.0)) == 1
    for bad in (-0.001, 1.001, math.nan, "0.5", True, None):
        with pytest.raises(SettingOutOfRange) as info:
            v.in_range(bad, (0.0, 1.0))
        assert info.value.allowed == "0 to 1"


def test_int_in_range_requires_integers() -> None:
    assert v.int_in_range(5, (1, 200)) == 5
    assert v.int_in_range(7.0, (1, 200)) == 7
    assert isinstance(v.int_in_range(7.0, (1, 200)), int)
    for bad in (0, 201, 2.5, math.inf, "3"):
        with pytest.raises(SettingOutOfRange, match="integers 1 to 200"):
            v.int_in_range(bad, (1, 200))


def test_in_set_matches_floats_within_one_percent_and_returns_the_table_entry() -> None:
    table = {0.0: 0, 3.16e-3: 5, 0.01: 6}
    assert v.in_set(3.1623e-3, table) == 3.16e-3
    assert v.in_set(0.00316, table) == 3.16e-3
    assert v.in_set(0, table) == 0.0
    with pytest.raises(SettingOutOfRange, match="one of 0, 0.00316, 0.01"):
        v.in_set(5e-3, table)


def test_in_set_with_enums_bools_and_strings() -> None:
    assert v.in_set(2, list(Colour)) is Colour.GREEN
    assert v.in_set(Colour.RED, list(Colour)) is Colour.RED
    assert v.in_set(True, {False: 0, True: 1}) is True
    assert v.in_set("ON", ["ON", "OFF"]) == "ON"
    with pytest.raises(SettingOutOfRange, match=r"red \(1\), green \(2\)"):
        v.in_set(3, list(Colour))
    with pytest.raises(SettingOutOfRange):
        v.in_set(True, [0, 1, 2])  # a bool is not a channel number


def test_in_discrete_range_checks_the_grid() -> None:
    assert v.in_discrete_range(0.003, (-20.0, 20.0, 0.001)) == 0.003
    for bad in (0.0005, 20.001, math.nan):
        with pytest.raises(SettingOutOfRange, match="-20 to 20 in steps of 0.001"):
            v.in_discrete_range(bad, (-20.0, 20.0, 0.001))


def test_require_helpers_name_everything() -> None:
    with pytest.raises(SettingOutOfRange) as info:
        v.require_in_range(250, 0, 100, instrument="Box", command="rate", unit="K/min")
    assert str(info.value) == "Box 'rate': value 250 K/min is out of range; allowed: 0 to 100 K/min"
    assert v.require_in_range(3.0, 1, 5, instrument="Box", command="n", integer=True) == 3
    assert v.require_in_set(2, [1, 2], instrument="Box", command="x") == 2
    with pytest.raises(
        SettingOutOfRange, match="Box 'x': value 3 is out of range; allowed: one of 1, 2"
    ):
        v.require_in_set(3, [1, 2], instrument="Box", command="x")


def test_setting_out_of_range_is_a_value_error() -> None:
    assert issubclass(SettingOutOfRange, ValueError)


# ---- properties ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        (
            "setpoint",
            400,
            "Test box output 2 'setpoint': value 400 K is out of range; allowed: 0 to 300 K",
        ),
        ("setpoint", -1.5, "Test box output 2 'setpoint': value -1.5 K"),
        ("current", 1e-3, "allowed: one of 0, 3.16e-05, 0.0001 A"),
        ("legacy", 9, "Test box output 2 'legacy': value 9 s is out of range; allowed: 1 to 5 s"),
        ("legacy_set", "MAYBE", "allowed: one of ON, OFF"),
        (
            "pair",
            Pair(3, 2.0),
            "Test box output 2 'pair.b': value 2.0 V is out of range; allowed: 0 to 1 V",
        ),
    ],
)
def test_channel_property_refusals_are_named_and_send_nothing(
    attr: str, value: Any, message: str
) -> None:
    with expected_protocol(Box, []) as box, pytest.raises(SettingOutOfRange) as info:
        setattr(box.out, attr, value)
    assert message in str(info.value)
    assert info.value.instrument == "Test box output 2"
    assert info.value.command.startswith(attr)


def test_instrument_property_refusals_name_the_instrument() -> None:
    with (
        expected_protocol(Box, []) as box,
        pytest.raises(SettingOutOfRange) as info,
    ):
        box.count = 0
        with pytest.raises(SettingOutOfRange, match="Test box 'colour'"):
            box.colour = 7
    assert str(info.value) == (
        "Test box 'count': value 0 s is out of range; allowed: integers 1 to 200 s"
    )


def test_valid_settings_are_sent_exactly() -> None:
    with expected_protocol(
        Box,
        [
            ("SETP 2,12.5", None),
            ("CUR 2,1", None),
            ("COL 2", None),
            ("CNT 7", None),
            ("PAIR 2,3,0.5", None),
            ("SETP? 2", "12.5"),
            ("COL?", "1"),
        ],
    ) as box:
        box.out.setpoint = 12.5
        box.out.current = 3.162e-5
        box.colour = Colour.GREEN
        box.count = 7
        box.out.pair = Pair(3, 0.5)
        assert box.out.setpoint == 12.5
        assert box.colour == 1


def test_after_set_hook_runs_only_after_a_successful_write() -> None:
    Output.hook_calls.clear()
    with expected_protocol(Box, [("SETP 2,1", None)]) as box:
        box.out.setpoint = 1
        with pytest.raises(SettingOutOfRange):
            box.out.setpoint = 1000
    assert Output.hook_calls == [(2, 1)]


def test_bad_reply_is_named_on_get() -> None:
    with (
        expected_protocol(Box, [("RDG? 2", "garbage")]) as box,
        pytest.raises(InstrumentReplyError) as info,
    ):
        _ = box.out.reading
    assert info.value.instrument == "Test box output 2"
    assert info.value.command == "reading"
    assert "expected a number" in str(info.value)


def test_validate_setting_and_allowed_text_send_nothing() -> None:
    with expected_protocol(Box, []) as box:
        assert v.validate_setting(box.out, "current", 0.0001) == 1e-4
        assert v.validate_setting(box.out, "setpoint", 300) == 300
        with pytest.raises(SettingOutOfRange, match="Test box output 2 'setpoint'"):
            v.validate_setting(box.out, "setpoint", 301)
        assert v.allowed_text(box.out, "setpoint") == "0 to 300 K"
        assert v.allowed_text(box.out, "pair") == "a integers 0 to 9; b 0 to 1 V"
        with pytest.raises(AttributeError):
            v.validate_setting(box.out, "reading", 1)


def test_instrument_name_never_reads_properties() -> None:
    with expected_protocol(Box, []) as box:
        assert v.instrument_name(box) == "Test box"
        assert v.instrument_name(box.out) == "Test box output 2"
    assert v.instrument_name(object()) == "object"


def test_dynamic_properties_are_refused_at_definition() -> None:
    with pytest.raises(TypeError):
        v.control("A?", "A %d", "doc", dynamic=True)


def test_checked_properties_keep_their_docstrings() -> None:
    assert Output.setpoint.__doc__ == "Setpoint."
    assert Output.reading.__doc__ == "A reading."
    assert Output.setpoint.unit == "K"
    assert Output.setpoint.attr_name == "setpoint"
