"""Protocol replay for the SIM928 voltage source in a SIM900 port."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.srs.sim900 import SIM900
from drivers.srs.sim928 import SIM928, BatteryState, BatteryStatus

PORT = 2


def sent(text: str) -> tuple[str, None]:
    """The mainframe command that carries ``text`` to the module."""
    return (f'SNDT {PORT},"{text}"', None)


def answer(text: str) -> tuple[str, bytes]:
    """The GETN? exchange returning the module's reply ``text``: block, then the frame's CR LF."""
    data = text.encode() + b"\r\n"
    return (f"GETN? {PORT},128", b"#3%03d" % len(data) + data + b"\r\n")


def test_answer_helper_builds_the_documented_block() -> None:
    assert answer("+1.000") == ("GETN? 2,128", b"#3008+1.000\r\n\r\n")


@pytest.mark.parametrize(
    ("value", "command"),
    [
        (0.125, "VOLT 0.125"),
        (-20, "VOLT -20.000"),
        (20.0, "VOLT 20.000"),
        (1.23449, "VOLT 1.234"),
        (0.0, "VOLT 0.000"),
    ],
)
def test_voltage_setter(value: float, command: str) -> None:
    with expected_protocol(SIM900, [sent(command)], modules={PORT: SIM928}) as frame:
        frame.port2.voltage = value


def test_voltage_getter() -> None:
    with expected_protocol(SIM900, [sent("VOLT?"), answer("-1.250")], modules={PORT: SIM928}) as f:
        assert f.port2.voltage == -1.25


@pytest.mark.parametrize(("value", "command"), [(True, "OPON"), (False, "OPOF"), (1, "OPON")])
def test_output_setter(value: object, command: str) -> None:
    with expected_protocol(SIM900, [sent(command)], modules={PORT: SIM928}) as frame:
        frame.port2.output_enabled = value


@pytest.mark.parametrize(("reply", "state"), [("1", True), ("0", False)])
def test_output_getter(reply: str, state: bool) -> None:
    with expected_protocol(SIM900, [sent("EXON?"), answer(reply)], modules={PORT: SIM928}) as f:
        assert f.port2.output_enabled is state


def test_enable_disable_methods() -> None:
    with expected_protocol(SIM900, [sent("OPON"), sent("OPOF")], modules={PORT: SIM928}) as f:
        f.port2.enable_output()
        f.port2.disable_output()


def test_battery_state() -> None:
    comm = [sent("BATS?"), answer("1,2,0"), sent("BATS?"), answer("3,1,1")]
    with expected_protocol(SIM900, comm, modules={PORT: SIM928}) as frame:
        assert frame.port2.battery_state == BatteryState(
            BatteryStatus.IN_USE, BatteryStatus.CHARGING, False
        )
        assert frame.port2.battery_state.service_needed is True


@pytest.mark.parametrize("reply", ["1,7,0", "2", "x,y,z"])
def test_bad_battery_reply_is_a_reply_error(reply: str) -> None:
    with (
        expected_protocol(SIM900, [sent("BATS?"), answer(reply)], modules={PORT: SIM928}) as f,
        pytest.raises(InstrumentReplyError),
    ):
        _ = f.port2.battery_state


def test_identity() -> None:
    reply = "Stanford_Research_Systems,SIM928,s/n012345,ver2.2"
    with expected_protocol(SIM900, [sent("*IDN?"), answer(reply)], modules={PORT: SIM928}) as f:
        assert f.port2.identity == reply


def test_zero_and_disable() -> None:
    comm = [sent("VOLT 0.000"), sent("OPOF")]
    with expected_protocol(SIM900, comm, modules={PORT: SIM928}) as frame:
        frame.port2.zero_and_disable()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("voltage", 20.001),
        ("voltage", -25),
        ("voltage", float("nan")),
        ("voltage", "1"),
        ("output_enabled", "yes"),
        ("output_enabled", 2),
    ],
)
def test_out_of_range_is_refused_before_sending(name: str, value: object) -> None:
    with (
        expected_protocol(SIM900, [], modules={PORT: SIM928}) as frame,
        pytest.raises(SettingOutOfRange) as info,
    ):
        setattr(frame.port2, name, value)
    assert info.value.instrument == "SIM900 port 2"
    assert info.value.command == name


def test_refusal_message_has_range_and_unit() -> None:
    with (
        expected_protocol(SIM900, [], modules={PORT: SIM928}) as frame,
        pytest.raises(SettingOutOfRange) as info,
    ):
        frame.port2.voltage = 21
    assert info.value.allowed == "-20 to 20"
    assert info.value.unit == "V"
    assert "21" in str(info.value)


def test_specs() -> None:
    comm = [sent("VOLT?"), answer("+0.500"), sent("BATS?"), answer("1,3,1"), sent("VOLT 0.250")]
    with expected_protocol(SIM900, comm, modules={PORT: SIM928}) as frame:
        module = frame.port2
        polls = {spec.name: spec for spec in module.poll_specs()}
        controls = {spec.name: spec for spec in module.control_specs()}
        assert polls["bias_voltage"].unit == "V"
        assert polls["bias_voltage"].read().value == 0.5
        assert polls["battery_service"].read().value == 1.0
        assert controls["bias_voltage"].allowed == "-20 to 20 V"
        with pytest.raises(SettingOutOfRange):
            controls["bias_voltage"].validate(30)
        with pytest.raises(SettingOutOfRange):
            controls["bias_voltage"].set(-30)
        controls["bias_voltage"].set(0.25)
        assert [a.name for a in module.action_specs()] == ["zero_and_disable"]
