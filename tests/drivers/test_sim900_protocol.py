"""Protocol replay for the SIM900 mainframe: SNDT / GETN? / FLSH behind module objects."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
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


def test_a_silent_module_is_a_reply_error_of_its_port_not_a_link_fault() -> None:
    comm = [('SNDT 4,"TVAL?"', None), ("GETN? 4,128", b"#3000\r\n")]
    with (
        expected_protocol(SIM900, comm, reply_timeout_s=0.0) as frame,
        pytest.raises(InstrumentReplyError) as info,
    ):
        frame.ask_port(4, "TVAL?")
    assert info.value.instrument == "SIM900 port 4"  # the mainframe answered: the link is fine
    assert "no complete reply" in str(info.value)


def test_after_a_timeout_only_that_port_is_flushed_before_its_next_query() -> None:
    comm = [
        ('SNDT 2,"TVAL?"', None),
        ("GETN? 2,128", b"#3000\r\n"),  # the bridge is slow: nothing yet
        ('SNDT 1,"VOLT?"', None),  # port 1 is not touched by port 2's trouble
        ("GETN? 1,128", b"#3008+0.500\r\n\r\n"),
        ("FLSH 2", None),  # the late TVAL? answer must not be taken for the next query
        ('SNDT 2,"EXON?"', None),
        ("GETN? 2,128", b"#30031\r\n\r\n"),
        ('SNDT 2,"RANG?"', None),  # back in step: no flush any more
        ("GETN? 2,128", b"#30037\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm, reply_timeout_s=0.0) as frame:
        with pytest.raises(InstrumentReplyError):
            frame.ask_port(2, "TVAL?")
        assert frame.ask_port(1, "VOLT?") == "+0.500"
        assert frame.ask_port(2, "EXON?") == "1"
        assert frame.ask_port(2, "RANG?") == "7"


def test_a_partial_line_left_from_a_timeout_is_dropped_with_its_port_queue() -> None:
    comm = [
        ('SNDT 3,"*IDN?"', None),
        ("GETN? 3,128", b"#3004Stan\r\n"),  # half an answer, then nothing
        ("GETN? 3,128", b"#3000\r\n"),
        ("FLSH 3", None),
        ('SNDT 3,"VOLT?"', None),
        ("GETN? 3,128", b"#3008+1.000\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm, reply_timeout_s=0.0) as frame:
        with pytest.raises(InstrumentReplyError):
            frame.ask_port(3, "*IDN?")
        assert frame.ask_port(3, "VOLT?") == "+1.000"


def test_module_properties_query_through_ask_port() -> None:
    comm = [
        ('SNDT 5,"RANG?"', None),
        ("GETN? 5,128", b"#3006" + b"5\r\n7\r\n" + b"\r\n"),  # a stray extra line
        ("FLSH 5", None),  # ... is dropped with the port's queue before the next query
        ('SNDT 5,"EXCI?"', None),
        ("GETN? 5,128", b"#30033\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm, modules={5: SIM921}) as frame:
        assert frame.port5.range == 2e3
        assert frame.port5.excitation == 100e-6


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
    comm = [("FLSH", None), ("FLSH 5", None), ("SRST 6", None),
            ("FLSH 6", None), ('SNDT 6,"*IDN?"', None), ("GETN? 6,128", b"#3004ok\r\n\r\n")]
    with expected_protocol(SIM900, comm) as frame:
        frame.flush()
        frame.flush(5)
        frame.reset_port(6)
        assert frame.ask_port(6, "*IDN?") == "ok"  # what was queued before the reset is dropped


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


def test_a_setting_after_a_timeout_follows_the_flush_never_precedes_it() -> None:
    comm = [
        ('SNDT 1,"VOLT?"', None),
        ("GETN? 1,128", b"#3000\r\n"),
        ("FLSH 1", None),  # emptied before the new command, which cannot be in transit then
        ('SNDT 1,"VOLT 0.250"', None),
        ('SNDT 1,"VOLT?"', None),  # in step again: no second flush
        ("GETN? 1,128", b"#3008+0.250\r\n\r\n"),
    ]
    with expected_protocol(SIM900, comm, modules={1: SIM928}, reply_timeout_s=0.0) as frame:
        with pytest.raises(InstrumentReplyError):
            _ = frame.port1.voltage
        frame.port1.voltage = 0.25
        assert frame.port1.voltage == 0.25
