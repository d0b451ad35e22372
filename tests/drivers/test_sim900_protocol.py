"""Protocol replay for the SIM900 mainframe: SNDT / GETN? / FLSH behind module objects."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentConnectionError, InstrumentReplyError, SettingOutOfRange
from drivers.srs.sim900 import SIM900, SIMModule, module_type
from drivers.srs.sim921 import SIM921
from drivers.srs.sim928 import SIM928


def test_identity_of_the_mainframe() -> None:
    with expected_protocol(
        SIM900, [("*IDN?", "Stanford_Research_Systems,SIM900,s/n1,ver3.6")]
    ) as f:
        assert f.identity == "Stanford_Research_Systems,SIM900,s/n1,ver3.6"


def test_module_query_is_sndt_then_getn_block() -> None:
    comm = [
        ('SNDT 3,"*IDN?"', None),
        ("GETN? 3,128", b"#3044Stanford_Research_Systems,SIM928,s/n2,ver2\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm, modules={3: "SIM928"}) as frame:
        assert frame.port3.identity == "Stanford_Research_Systems,SIM928,s/n2,ver2"


def test_receive_polls_until_a_whole_line_arrived() -> None:
    comm = [
        ('SNDT 1,"VOLT?"', None),
        ("GETN? 1,128", b"#3000\r\n"),  # module not answered yet
        ("GETN? 1,128", b"#3003+0.\r\n"),
        ("GETN? 1,128", b"#3005125\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm) as frame:
        assert frame.ask_port(1, "VOLT?") == "+0.125"


def test_bytes_after_a_line_are_kept_for_the_next_reply() -> None:
    comm = [
        ('SNDT 2,"A?"', None),
        ('SNDT 2,"B?"', None),
        ("GETN? 2,128", b"#30071\r\n22\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm) as frame:
        frame.send(2, "A?")
        frame.send(2, "B?")
        assert frame.receive(2) == "1"
        assert frame.receive(2) == "22"  # from the kept bytes, no second GETN?


def test_gpib_line_feed_terminator_is_accepted() -> None:
    comm = [('SNDT 1,"X?"', None), ("GETN? 1,128", b"#3003ok\n\n")]
    with expected_protocol(SIM900, comm) as frame:
        assert frame.ask_port(1, "X?") == "ok"


def test_no_reply_times_out_with_a_connection_error() -> None:
    comm = [('SNDT 4,"TVAL?"', None), ("GETN? 4,128", b"#3000\r\n")]
    with (
        expected_protocol(SIM900, comm, reply_timeout_s=0.0) as frame,
        pytest.raises(InstrumentConnectionError) as info,
    ):
        frame.ask_port(4, "TVAL?")
    assert "port 4" in str(info.value)
    assert info.value.instrument == "SIM900"


@pytest.mark.parametrize("reply", [b"X3", b"#0", b"#3abc", b"#3010short", b"#3002ab;"])
def test_malformed_block_is_a_reply_error(reply: bytes) -> None:
    with (
        expected_protocol(SIM900, [("GETN? 1,16", reply)]) as frame,
        pytest.raises(InstrumentReplyError),
    ):
        frame.read_port(1, 16)


def test_quotes_in_module_text_are_doubled() -> None:
    with expected_protocol(SIM900, [('SNDT 2,"NAME ""a"""', None)]) as frame:
        frame.send(2, 'NAME "a"')


def test_flush_and_reset_port() -> None:
    comm = [("FLSH", None), ("FLSH 5", None), ("SRST 6", None)]
    with expected_protocol(SIM900, comm) as frame:
        frame.flush()
        frame.flush(5)
        frame.reset_port(6)


@pytest.mark.parametrize("port", [0, 9, "1", 1.5])
def test_bad_port_is_refused_before_sending(port: object) -> None:
    with expected_protocol(SIM900, []) as frame, pytest.raises(SettingOutOfRange) as info:
        frame.send(port, "VOLT?")  # type: ignore[arg-type]
    assert info.value.command == "port"
    assert "1, 2, 3, 4, 5, 6, 7, 8" in info.value.allowed


def test_getn_count_is_checked() -> None:
    with expected_protocol(SIM900, []) as frame, pytest.raises(SettingOutOfRange):
        frame.read_port(1, 1000)


def test_modules_by_class_or_name_and_typed_access() -> None:
    with expected_protocol(SIM900, [], modules={1: SIM928, 5: "sim921", 7: "SIM"}) as frame:
        assert isinstance(frame.port1, SIM928)
        assert frame.module(5, SIM921) is frame.port5
        assert type(frame.module(7)) is SIMModule
        assert sorted(frame.modules) == [1, 5, 7]
        with pytest.raises(TypeError):
            frame.module(1, SIM921)
        with pytest.raises(SettingOutOfRange):
            frame.module(2)


def test_unknown_module_name_is_refused() -> None:
    with pytest.raises(SettingOutOfRange):
        module_type("SIM960")


def test_refusals_name_the_port() -> None:
    with (
        expected_protocol(SIM900, [], modules={1: SIM928}) as frame,
        pytest.raises(SettingOutOfRange) as info,
    ):
        frame.port1.voltage = 25
    assert info.value.instrument == "SIM900 port 1"


def test_specs_are_prefixed_with_the_port() -> None:
    with expected_protocol(SIM900, [("FLSH", None)], modules={1: SIM928, 5: SIM921}) as frame:
        polls = [spec.name for spec in frame.poll_specs()]
        controls = [spec.name for spec in frame.control_specs()]
        actions = {spec.name: spec for spec in frame.action_specs()}
        assert polls == [
            "port1.bias_voltage",
            "port1.output_enabled",
            "port1.battery_service",
            "port5.resistance",
            "port5.temperature",
        ]
        assert "port1.bias_voltage" in controls
        assert "port5.excitation" in controls
        assert "port1.zero_and_disable" in actions
        actions["flush"].call()
