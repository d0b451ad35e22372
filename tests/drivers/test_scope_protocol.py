"""Protocol replay for the InfiniiVision digitizer: settings, capture, block transfer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.keysight import infiniivision
from drivers.keysight.infiniivision import (
    ByteOrder,
    CaptureTimeout,
    InfiniiVision,
    Preamble,
    PreambleFormat,
    WaveformFormat,
    parse_block_header,
)

PREAMBLE_WORD = "+1,+0,+4,+1,+1.00000E-06,-2.00000E-06,+0,+1.00000E-03,+5.00000E-01,+0"
PREAMBLE_BYTE = "+0,+0,+3,+1,+2.00000E-09,+0.00000E+00,+0,+4.00000E-02,+0.00000E+00,+128"

SETTINGS = [
    # (property, value to set, command sent, reply to the query, value read back)
    ("waveform_source", "CHAN2", ":WAV:SOUR CHAN2", "CHAN2", "CHAN2"),
    ("waveform_format", WaveformFormat.WORD, ":WAV:FORM WORD", "WORD", WaveformFormat.WORD),
    ("waveform_format", "BYTE", ":WAV:FORM BYTE", "BYTE", WaveformFormat.BYTE),
    ("waveform_byte_order", ByteOrder.MSB_FIRST, ":WAV:BYT MSBF", "MSBF", ByteOrder.MSB_FIRST),
    ("waveform_unsigned", True, ":WAV:UNS 1", "1", True),
    ("waveform_unsigned", False, ":WAV:UNS 0", "0", False),
    ("waveform_points", 10_000, ":WAV:POIN 10000", "+10000", 10_000),
    ("waveform_points_mode", "RAW", ":WAV:POIN:MODE RAW", "RAW", "RAW"),
    ("trigger_source", "EXT", ":TRIG:EDGE:SOUR EXT", "EXT", "EXT"),
    ("trigger_level", -0.02, ":TRIG:EDGE:LEV -0.02", "-2.00000E-02", -0.02),
    ("trigger_slope", "NEG", ":TRIG:EDGE:SLOP NEG", "NEG", "NEG"),
    ("trigger_sweep", "NORM", ":TRIG:SWE NORM", "NORM", "NORM"),
    ("timebase_scale", 5e-6, ":TIM:SCAL 5e-06", "+5.00000E-06", 5e-6),
    ("timebase_position", -1e-5, ":TIM:POS -1e-05", "-1.00000E-05", -1e-5),
    ("acquisition_type", "AVER", ":ACQ:TYPE AVER", "AVER", "AVER"),
    ("acquisition_count", 16, ":ACQ:COUN 16", "+16", 16),
]

CHANNEL_SETTINGS = [
    ("display", True, ":CHAN3:DISP 1", "1", True),
    ("scale", 0.05, ":CHAN3:SCAL 0.05", "+5.00000E-02", 0.05),
    ("offset", -0.1, ":CHAN3:OFFS -0.1", "-1.00000E-01", -0.1),
    ("coupling", "AC", ":CHAN3:COUP AC", "AC", "AC"),
    ("impedance", "FIFT", ":CHAN3:IMP FIFT", "FIFT", "FIFT"),
]

OUT_OF_RANGE = [
    ("waveform_source", "CHAN5"),
    ("waveform_format", "ASC"),
    ("waveform_byte_order", "LE"),
    ("waveform_points", 50),
    ("waveform_points", 1000.5),
    ("waveform_points_mode", "FAST"),
    ("trigger_source", "CHAN9"),
    ("trigger_level", 41.0),
    ("trigger_slope", "UP"),
    ("trigger_sweep", "SINGLE"),
    ("timebase_scale", 100.0),
    ("timebase_position", 600.0),
    ("acquisition_type", "SMOOTH"),
    ("acquisition_count", 1),
]


def block(data: bytes, digits: int = 8) -> bytes:
    """An IEEE 488.2 definite-length block as the scope sends it, with its final LF."""
    return b"#%d%0*d" % (digits, digits, len(data)) + data + b"\n"


def test_block_helper_matches_the_documented_header() -> None:
    assert block(b"ab") == b"#800000002ab\n"


@pytest.mark.parametrize(("name", "value", "command", "reply", "readback"), SETTINGS)
def test_setting_setter_and_getter(
    name: str, value: object, command: str, reply: str, readback: object
) -> None:
    query = command.split(" ")[0] + "?"
    with expected_protocol(InfiniiVision, [(command, None), (query, reply)]) as scope:
        setattr(scope, name, value)
        assert getattr(scope, name) == readback


@pytest.mark.parametrize(("name", "value", "command", "reply", "readback"), CHANNEL_SETTINGS)
def test_channel_setter_and_getter(
    name: str, value: object, command: str, reply: str, readback: object
) -> None:
    query = command.split(" ")[0] + "?"
    with expected_protocol(InfiniiVision, [(command, None), (query, reply)]) as scope:
        setattr(scope.ch_3, name, value)
        assert getattr(scope.ch_3, name) == readback


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_is_refused_before_sending(name: str, value: object) -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange) as info:
        setattr(scope, name, value)
    assert info.value.instrument == "InfiniiVision"
    assert info.value.command == name
    assert info.value.allowed


def test_channel_refusal_names_the_channel_and_unit() -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange) as info:
        scope.ch_2.scale = 10.0
    assert info.value.instrument == "InfiniiVision channel 2"
    assert info.value.unit == "V/div"


def test_identity_via_scpi() -> None:
    reply = "KEYSIGHT TECHNOLOGIES,DSOX3034T,MY00000000,07.50"
    with expected_protocol(InfiniiVision, [("*IDN?", reply)]) as scope:
        assert scope.id == reply


def test_trigger_event_register() -> None:
    with expected_protocol(InfiniiVision, [(":TER?", "+1"), (":TER?", "+0")]) as scope:
        assert scope.trigger_event is True
        assert scope.trigger_event is False


def test_preamble_parse_and_scaling() -> None:
    preamble = Preamble.parse(PREAMBLE_WORD)
    assert preamble.format is PreambleFormat.WORD
    assert preamble.points == 4
    assert preamble.x_increment == 1e-6
    raw = np.array([0, 100, -100], dtype=np.int16)
    np.testing.assert_allclose(preamble.volts(raw), [0.5, 0.6, 0.4])
    np.testing.assert_allclose(preamble.time_axis(3), [-2e-6, -1e-6, 0.0])


@pytest.mark.parametrize("reply", ["1,0,4", "1,0,4,1,a,b,c,d,e,f", "9,0,4,1,1,1,1,1,1,1"])
def test_bad_preamble_is_a_reply_error(reply: str) -> None:
    with pytest.raises(InstrumentReplyError):
        Preamble.parse(reply)


def test_fetch_word_lsb_signed() -> None:
    raw = np.array([0, 1000, -1000, 32767], dtype="<i2")
    comm = [
        (":WAV:SOUR?", "CHAN1"),
        (":WAV:PRE?", PREAMBLE_WORD),
        (":WAV:UNS?", "0"),
        (":WAV:BYT?", "LSBF"),
        (":WAV:DATA?", block(raw.tobytes())),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.fetch_waveform()
    assert record.source == "CHAN1"
    np.testing.assert_allclose(record.volts, [0.5, 1.5, -0.5, 0.5 + 32.767])
    np.testing.assert_allclose(record.time, [-2e-6, -1e-6, 0.0, 1e-6])
    assert record.sample_interval == 1e-6


def test_fetch_word_msb_unsigned() -> None:
    raw = np.array([0, 1, 65535], dtype=">u2")
    comm = [
        (":WAV:SOUR?", "CHAN2"),
        (":WAV:PRE?", PREAMBLE_WORD),
        (":WAV:UNS?", "1"),
        (":WAV:BYT?", "MSBF"),
        (":WAV:DATA?", block(raw.tobytes())),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.fetch_waveform()
    np.testing.assert_allclose(record.volts, [0.5, 0.501, 0.5 + 65.535])


def test_fetch_byte_unsigned_needs_no_byte_order() -> None:
    comm = [
        (":WAV:SOUR?", "CHAN1"),
        (":WAV:PRE?", PREAMBLE_BYTE),
        (":WAV:UNS?", "1"),
        (":WAV:DATA?", block(bytes([128, 129, 0]))),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.fetch_waveform()
    np.testing.assert_allclose(record.volts, [0.0, 0.04, -5.12])
    np.testing.assert_allclose(record.time, [0.0, 2e-9, 4e-9])


def test_fetch_refuses_ascii_format() -> None:
    ascii_preamble = "+4,+0,+3,+1,+1E-06,+0,+0,+1E-03,+0,+0"
    comm = [(":WAV:SOUR?", "CHAN1"), (":WAV:PRE?", ascii_preamble)]
    with expected_protocol(InfiniiVision, comm) as scope, pytest.raises(InstrumentReplyError):
        scope.fetch_waveform()


@pytest.mark.parametrize("reply", [b"#800000002abX", b"@8", b"#8000000xx", b"#0"])
def test_malformed_block_is_a_reply_error(reply: bytes) -> None:
    with expected_protocol(InfiniiVision, [(":WAV:DATA?", reply)]) as scope:
        scope.write(":WAV:DATA?")
        with pytest.raises(InstrumentReplyError):
            scope.read_block()


def test_block_header_parser() -> None:
    assert parse_block_header(b"#800001000") == 1000
    assert parse_block_header(b"#3010") == 10
    with pytest.raises(InstrumentReplyError):
        parse_block_header(b"#9123")


def test_single_waits_for_the_trigger_then_completion() -> None:
    comm = [
        (":TER?", "+1"),  # stale event from an earlier capture, cleared
        (":SING", None),
        (":TER?", "+0"),
        (":TER?", "+1"),
        ("*OPC?", "1"),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        scope.single(timeout_s=5)


def test_single_times_out_without_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(0.0, 1.0)  # every look at the clock is one second later
    monkeypatch.setattr(infiniivision.time, "monotonic", lambda: next(clock))
    comm = [(":TER?", "+0"), (":SING", None), (":TER?", "+0"), (":TER?", "+0")]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        with pytest.raises(CaptureTimeout) as info:
            scope.single(timeout_s=1.5)
    assert "no trigger within 1.5 s" in str(info.value)


def test_single_timeout_is_validated() -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange):
        scope.single(timeout_s=0)


def test_acquire_single_returns_the_record() -> None:
    raw = np.array([10, 20], dtype="<i2")
    comm = [
        (":TER?", "+0"),
        (":SING", None),
        (":TER?", "+1"),
        ("*OPC?", "1"),
        (":WAV:SOUR?", "CHAN1"),
        (":WAV:PRE?", PREAMBLE_WORD),
        (":WAV:UNS?", "0"),
        (":WAV:BYT?", "LSBF"),
        (":WAV:DATA?", block(raw.tobytes())),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.acquire_single(timeout_s=1)
    np.testing.assert_allclose(record.volts, [0.51, 0.52])


def test_run_and_stop() -> None:
    with expected_protocol(InfiniiVision, [(":RUN", None), (":STOP", None)]) as scope:
        scope.run()
        scope.stop()


def test_configure_waveform_sends_everything() -> None:
    comm = [
        (":WAV:SOUR CHAN1", None),
        (":WAV:FORM WORD", None),
        (":WAV:BYT LSBF", None),
        (":WAV:UNS 0", None),
        (":WAV:POIN:MODE RAW", None),
        (":WAV:POIN 2000", None),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.configure_waveform("CHAN1", points=2000)


def test_configure_waveform_checks_all_before_sending() -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange) as info:
        scope.configure_waveform("CHAN1", points=10)
    assert info.value.command == "waveform_points"


def test_specs() -> None:
    raw = np.array([0, 10], dtype="<i2")
    comm = [
        (":WAV:SOUR?", "CHAN1"),
        (":WAV:PRE?", PREAMBLE_WORD),
        (":WAV:UNS?", "0"),
        (":WAV:BYT?", "LSBF"),
        (":WAV:DATA?", block(raw.tobytes())),
        (":TRIG:EDGE:LEV 0.1", None),
        (":RUN", None),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        polls = {spec.name: spec for spec in scope.poll_specs()}
        controls = {spec.name: spec for spec in scope.control_specs()}
        actions = {spec.name: spec for spec in scope.action_specs()}
        assert polls["waveform"].kind == "waveform"
        np.testing.assert_allclose(polls["waveform"].read().volts, [0.5, 0.51])
        assert controls["trigger_level"].allowed == "-40 to 40 V"
        with pytest.raises(SettingOutOfRange):
            controls["trigger_level"].validate(100)
        controls["trigger_level"].set(0.1)
        assert set(actions) == {"single", "run", "stop"}
        assert actions["single"].params == ("timeout_s",)
        actions["run"].call()
