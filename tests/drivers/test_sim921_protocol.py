"""Protocol replay for the SIM921 AC resistance bridge in a SIM900 port."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.readings import Quality, Reading
from drivers.srs.sim900 import SIM900
from drivers.srs.sim921 import SIM921

PORT = 5


def sent(text: str) -> tuple[str, None]:
    """The mainframe command that carries ``text`` to the module."""
    return (f'SNDT {PORT},"{text}"', None)


def answer(text: str) -> tuple[str, bytes]:
    """The GETN? exchange returning the module's reply ``text``: block, then the frame's CR LF."""
    data = text.encode() + b"\r\n"
    return (f"GETN? {PORT},128", b"#3%03d" % len(data) + data + b"\r\n")


@pytest.mark.parametrize(
    ("name", "command", "reply", "value"),
    [
        ("resistance", "RVAL?", "+1.23456E+03", 1234.56),
        ("temperature", "TVAL?", "+1.0250E-02", 0.01025),
        ("range", "RANG?", "5", 2e3),
        ("range", "RANG?", "0", 20e-3),
        ("excitation", "EXCI?", "3", 100e-6),
        ("excitation_enabled", "EXON?", "1", True),
        ("excitation_enabled", "EXON?", "0", False),
        ("frequency", "FREQ?", "+13.700", 13.7),
        ("time_constant", "TCON?", "2", 3.0),
        ("time_constant", "TCON?", "-1", 0.0),
        ("identity", "*IDN?", "Stanford_Research_Systems,SIM921,s/n1,ver1", None),
    ],
)
def test_getters(name: str, command: str, reply: str, value: object) -> None:
    with expected_protocol(SIM900, [sent(command), answer(reply)], modules={PORT: SIM921}) as f:
        got = getattr(f.port5, name)
    if isinstance(got, Reading):  # measurements carry the bridge's verdict
        assert got.ok
        got = got.value
    assert got == (reply if value is None else value)


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("range", 2e3, "RANG 5"),
        ("range", 20e6, "RANG 9"),
        ("range", 0.02, "RANG 0"),
        ("excitation", 3e-6, "EXCI 0"),
        ("excitation", 1e-4, "EXCI 3"),
        ("excitation", 30e-3, "EXCI 8"),
        ("excitation_enabled", True, "EXON 1"),
        ("excitation_enabled", False, "EXON 0"),
        ("frequency", 13.7, "FREQ 13.700"),
        ("frequency", 1.95, "FREQ 1.950"),
        ("time_constant", 0.3, "TCON 0"),
        ("time_constant", 300, "TCON 6"),
        ("time_constant", 0, "TCON -1"),
    ],
)
def test_setters(name: str, value: object, command: str) -> None:
    with expected_protocol(SIM900, [sent(command)], modules={PORT: SIM921}) as frame:
        setattr(frame.port5, name, value)


@pytest.mark.parametrize(
    ("name", "value", "unit"),
    [
        ("range", 5e3, "Ohm"),
        ("range", 200e6, "Ohm"),
        ("excitation", 50e-3, "V"),
        ("excitation", 0, "V"),
        ("excitation_enabled", "on", ""),
        ("frequency", 1.9, "Hz"),
        ("frequency", 62.0, "Hz"),
        ("time_constant", 1000, "s"),
    ],
)
def test_out_of_range_is_refused_before_sending(name: str, value: object, unit: str) -> None:
    with (
        expected_protocol(SIM900, [], modules={PORT: SIM921}) as frame,
        pytest.raises(SettingOutOfRange) as info,
    ):
        setattr(frame.port5, name, value)
    assert info.value.instrument == "SIM900 port 5"
    assert info.value.command == name
    assert info.value.unit == unit
    assert info.value.allowed


@pytest.mark.parametrize(("name", "command"), [("resistance", "RVAL?"), ("temperature", "TVAL?")])
@pytest.mark.parametrize("reply", ["+9.900000E+37", "+9.9E+37"])
def test_over_range_is_a_flagged_reading_with_the_bridges_value(
    name: str, command: str, reply: str
) -> None:
    with expected_protocol(SIM900, [sent(command), answer(reply)], modules={PORT: SIM921}) as f:
        reading = getattr(f.port5, name)
    assert reading.quality == Quality.OVERRANGE
    assert reading.value == 9.9e37  # what the bridge sent
    assert "over range" in reading.note and "+9.9E+37" in reading.note


@pytest.mark.parametrize(("name", "command"), [("resistance", "RVAL?"), ("temperature", "TVAL?")])
def test_garbage_reading_is_a_reply_error(name: str, command: str) -> None:
    comm = [sent(command), answer("garbage")]
    with (
        expected_protocol(SIM900, comm, modules={PORT: SIM921}) as frame,
        pytest.raises(InstrumentReplyError) as info,
    ):
        getattr(frame.port5, name)
    assert info.value.instrument == "SIM900 port 5"
    assert info.value.command == name


def test_over_range_poll_is_flagged_not_raised_and_the_next_poll_is_in_step() -> None:
    comm = [sent("TVAL?"), answer("+9.900000E+37"), sent("TVAL?"), answer("+2.000000E-02")]
    with expected_protocol(SIM900, comm, modules={PORT: SIM921}) as frame:
        spec = {s.name: s for s in frame.poll_specs()}["port5.temperature"]
        first, second = spec.sample("sim900")[0], spec.sample("sim900")[0]
    assert first.quality == Quality.OVERRANGE and second.ok and second.value == 0.02


def test_specs() -> None:
    comm = [sent("RVAL?"), answer("+5.0000E+04"), sent("EXCI 1")]
    with expected_protocol(SIM900, comm, modules={PORT: SIM921}) as frame:
        polls = {spec.name: spec for spec in frame.port5.poll_specs()}
        controls = {spec.name: spec for spec in frame.port5.control_specs()}
        assert polls["resistance"].read().value == 5e4
        assert polls["temperature"].unit == "K"
        assert set(controls) == {
            "range",
            "excitation",
            "excitation_enabled",
            "frequency",
            "time_constant",
        }
        assert controls["frequency"].allowed == "1.95 to 61.1 Hz"
        assert controls["excitation"].validate(10e-6) == 10e-6
        with pytest.raises(SettingOutOfRange):
            controls["range"].validate(1.0)
        controls["excitation"].set(1e-5)
