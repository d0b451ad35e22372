"""Protocol replay for the InfiniiVision digitizer: settings, capture, block transfer."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.keysight import infiniivision
from drivers.keysight.infiniivision import (
    AcquisitionRunning,
    AcquisitionType,
    ByteOrder,
    CaptureTimeout,
    Coupling,
    Impedance,
    InfiniiVision,
    PointsMode,
    Preamble,
    PreambleFormat,
    TriggerSlope,
    TriggerSweep,
    WaveformFormat,
    parse_block_header,
)
from drivers.keysight.waveform import Completion, RecordType, Waveform, trigger_time
from drivers.readings import Quality

PREAMBLE_WORD = "+1,+0,+4,+1,+1.00000E-06,-2.00000E-06,+0,+1.00000E-03,+5.00000E-01,+0"
PREAMBLE_BYTE = "+0,+0,+3,+1,+2.00000E-09,+0.00000E+00,+0,+4.00000E-02,+0.00000E+00,+128"

SETTINGS = [
    # (property, value to set, command sent, reply to the query, value read back)
    ("waveform_source", "CHAN2", ":WAVeform:SOURce CHAN2", "CHAN2", "CHAN2"),
    ("waveform_format", WaveformFormat.WORD, ":WAVeform:FORMat WORD", "WORD",
     WaveformFormat.WORD),
    ("waveform_format", "BYTE", ":WAVeform:FORMat BYTE", "BYTE", WaveformFormat.BYTE),
    ("waveform_byte_order", ByteOrder.MSB_FIRST, ":WAVeform:BYTeorder MSBF", "MSBF",
     ByteOrder.MSB_FIRST),
    ("waveform_unsigned", True, ":WAVeform:UNSigned 1", "1", True),
    ("waveform_unsigned", False, ":WAVeform:UNSigned 0", "0", False),
    ("waveform_points", 10_000, ":WAVeform:POINts 10000", "+10000", 10_000),
    ("waveform_points_mode", "RAW", ":WAVeform:POINts:MODE RAW", "RAW", PointsMode.RAW),
    ("trigger_source", "EXT", ":TRIGger:EDGE:SOURce EXT", "EXT", "EXT"),
    ("trigger_level", -0.02, ":TRIGger:EDGE:LEVel -0.02", "-2.00000E-02", -0.02),
    ("trigger_slope", "NEG", ":TRIGger:EDGE:SLOPe NEG", "NEG", TriggerSlope.NEGATIVE),
    ("trigger_slope", TriggerSlope.EITHER, ":TRIGger:EDGE:SLOPe EITH", "EITH",
     TriggerSlope.EITHER),
    ("trigger_sweep", "NORM", ":TRIGger:SWEep NORM", "NORM", TriggerSweep.NORMAL),
    ("timebase_scale", 5e-6, ":TIMebase:SCALe 5e-06", "+5.00000E-06", 5e-6),
    ("timebase_position", -1e-5, ":TIMebase:POSition -1e-05", "-1.00000E-05", -1e-5),
    ("acquisition_type", "AVER", ":ACQuire:TYPE AVER", "AVER", AcquisitionType.AVERAGE),
    ("acquisition_type", AcquisitionType.HIGH_RESOLUTION, ":ACQuire:TYPE HRES", "HRES",
     AcquisitionType.HIGH_RESOLUTION),
    ("acquisition_count", 16, ":ACQuire:COUNt 16", "+16", 16),
]

CHANNEL_SETTINGS = [
    ("display", True, ":CHANnel3:DISPlay 1", "1", True),
    ("scale", 0.05, ":CHANnel3:SCALe 0.05", "+5.00000E-02", 0.05),
    ("offset", -0.1, ":CHANnel3:OFFSet -0.1", "-1.00000E-01", -0.1),
    ("coupling", "AC", ":CHANnel3:COUPling AC", "AC", Coupling.AC),
    ("impedance", "FIFT", ":CHANnel3:IMPedance FIFT", "FIFT", Impedance.FIFTY_OHM),
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
    ("acquisition_type", "PEAK"),  # (min, max) pairs are not a waveform record
    ("acquisition_count", 1),
]

STOPPED = (":OPERegister:CONDition?", "+0")
ARMED = (":OPERegister:CONDition?", "+40")  # Run (8) + Wait Trig (32)
TRIGGERED = (":OPERegister:CONDition?", "+8")  # Run: recording the post-trigger part


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


def test_operation_condition_and_running() -> None:
    with expected_protocol(InfiniiVision, [ARMED, ARMED, STOPPED]) as scope:
        assert scope.operation_condition == 40
        assert scope.running is True
        assert scope.running is False


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
        STOPPED,
        (":WAVeform:SOURce?", "CHAN1"),
        (":WAVeform:PREamble?", PREAMBLE_WORD),
        (":WAVeform:UNSigned?", "0"),
        (":WAVeform:BYTeorder?", "LSBF"),
        (":WAVeform:DATA?", block(raw.tobytes())),
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
        STOPPED,
        (":WAVeform:SOURce?", "CHAN2"),
        (":WAVeform:PREamble?", PREAMBLE_WORD),
        (":WAVeform:UNSigned?", "1"),
        (":WAVeform:BYTeorder?", "MSBF"),
        (":WAVeform:DATA?", block(raw.tobytes())),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.fetch_waveform()
    np.testing.assert_allclose(record.volts, [0.5, 0.501, 0.5 + 65.535])


def test_fetch_byte_unsigned_needs_no_byte_order() -> None:
    comm = [
        STOPPED,
        (":WAVeform:SOURce?", "CHAN1"),
        (":WAVeform:PREamble?", PREAMBLE_BYTE),
        (":WAVeform:UNSigned?", "1"),
        (":WAVeform:DATA?", block(bytes([128, 129, 0]))),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        record = scope.fetch_waveform()
    np.testing.assert_allclose(record.volts, [0.0, 0.04, -5.12])
    np.testing.assert_allclose(record.time, [0.0, 2e-9, 4e-9])


def test_a_running_scope_is_never_read() -> None:
    with expected_protocol(InfiniiVision, [TRIGGERED]) as scope, \
            pytest.raises(AcquisitionRunning) as info:
        scope.fetch_waveform()
    assert "stop it" in str(info.value)


def test_fetch_refuses_ascii_format() -> None:
    ascii_preamble = "+4,+0,+3,+1,+1E-06,+0,+0,+1E-03,+0,+0"
    comm = [STOPPED, (":WAVeform:SOURce?", "CHAN1"), (":WAVeform:PREamble?", ascii_preamble)]
    with expected_protocol(InfiniiVision, comm) as scope, pytest.raises(InstrumentReplyError):
        scope.fetch_waveform()


def test_fetch_refuses_peak_detect_pairs() -> None:
    peak = "+1,+1,+4,+1,+1E-06,+0,+0,+1E-03,+0,+0"
    comm = [STOPPED, (":WAVeform:SOURce?", "CHAN1"), (":WAVeform:PREamble?", peak)]
    with expected_protocol(InfiniiVision, comm) as scope, \
            pytest.raises(InstrumentReplyError, match="pairs"):
        scope.fetch_waveform()


def test_an_empty_block_is_no_record() -> None:
    comm = [
        STOPPED,
        (":WAVeform:SOURce?", "CHAN1"),
        (":WAVeform:PREamble?", PREAMBLE_BYTE),
        (":WAVeform:UNSigned?", "1"),
        (":WAVeform:DATA?", block(b"")),
    ]
    with expected_protocol(InfiniiVision, comm) as scope, \
            pytest.raises(InstrumentReplyError, match="no record"):
        scope.fetch_waveform()


@pytest.mark.parametrize("reply", [b"#800000002abX", b"@8", b"#8000000xx", b"#0"])
def test_malformed_block_is_a_reply_error(reply: bytes) -> None:
    with expected_protocol(InfiniiVision, [(":WAVeform:DATA?", reply)]) as scope:
        scope.write(":WAVeform:DATA?")
        with pytest.raises(InstrumentReplyError):
            scope.read_block()


def test_block_header_parser() -> None:
    assert parse_block_header(b"#800001000") == 1000
    assert parse_block_header(b"#3010") == 10
    with pytest.raises(InstrumentReplyError):
        parse_block_header(b"#9123")


def test_single_waits_until_the_run_bit_falls() -> None:
    comm = [(":SINGle", None), ARMED, ARMED, TRIGGERED, STOPPED]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        before = time.time_ns()
        completed = scope.single(timeout_s=5)
        after = time.time_ns()
    assert before <= completed.after_ns <= completed.by_ns <= after


def test_single_times_out_without_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = itertools.count(0.0, 1.0)  # every look at the clock is one second later
    monkeypatch.setattr(infiniivision.time, "monotonic", lambda: next(clock))
    comm = [(":SINGle", None), ARMED, ARMED]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        with pytest.raises(CaptureTimeout) as info:
            scope.single(timeout_s=1.5)
    assert "no complete acquisition within 1.5 s" in str(info.value)


def test_single_timeout_is_validated() -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange):
        scope.single(timeout_s=0)


RECORD = [
    (":WAVeform:SOURce?", "CHAN1"),
    (":WAVeform:PREamble?", PREAMBLE_WORD),
    (":WAVeform:UNSigned?", "0"),
    (":WAVeform:BYTeorder?", "LSBF"),
]


def test_acquire_single_returns_the_record_with_its_completion() -> None:
    raw = np.array([10, 20], dtype="<i2")
    comm = [(":SINGle", None), ARMED, STOPPED, *RECORD,
            (":WAVeform:DATA?", block(raw.tobytes()))]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        record = scope.acquire_single(timeout_s=1)
    np.testing.assert_allclose(record.volts, [0.51, 0.52])
    assert record.completed is not None


def test_a_poll_gives_one_record_with_trigger_time_and_clipping_verdict() -> None:
    # 8-bit ADC in signed WORD: the rails are -32768 and 127 << 8 = 32512.
    raw = np.array([0, 256, 32512, 32512, -32768, 512], dtype="<i2")
    preamble = "+1,+0,+6,+1,+1.00000E-06,-2.00000E-06,+0,+1.00000E-03,+0.00000E+00,+0"
    comm = [(":SINGle", None), ARMED, STOPPED, (":WAVeform:SOURce?", "CHAN1"),
            (":WAVeform:PREamble?", preamble), (":WAVeform:UNSigned?", "0"),
            (":WAVeform:BYTeorder?", "LSBF"), (":WAVeform:DATA?", block(raw.tobytes()))]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.poll_interval_s = 0.0
        before = time.time_ns()
        (record,) = scope.read_records()
        after = time.time_ns()
    assert record.quality is Quality.CLIPPED and not record.ok
    assert record.note == "3 of 6 samples at the ADC rails"
    assert record.raw.dtype == np.int16 and record.presamples == 2
    # Completed 4 us after the trigger (4 samples after it, the last included).
    assert record.t_ns is not None
    assert before - 4000 - 1 <= record.t_ns <= after - 4000 + 1
    assert 0 <= int(record.meta["t_uncertainty_ns"]) <= after - before


def test_a_poll_without_trigger_stops_the_scope_and_gives_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = itertools.count(0.0, 1.0)
    monkeypatch.setattr(infiniivision.time, "monotonic", lambda: next(clock))
    comm = [(":SINGle", None), ARMED, (":STOP", None)]
    with expected_protocol(InfiniiVision, comm, record_timeout_s=0.5) as scope:
        scope.poll_interval_s = 0.0
        assert scope.read_records() == []


def test_run_and_stop() -> None:
    with expected_protocol(InfiniiVision, [(":RUN", None), (":STOP", None)]) as scope:
        scope.run()
        scope.stop()


def test_configure_waveform_sends_everything() -> None:
    comm = [
        (":WAVeform:SOURce CHAN1", None),
        (":WAVeform:FORMat WORD", None),
        (":WAVeform:BYTeorder LSBF", None),
        (":WAVeform:UNSigned 0", None),
        (":WAVeform:POINts:MODE RAW", None),
        (":WAVeform:POINts 2000", None),
    ]
    with expected_protocol(InfiniiVision, comm) as scope:
        scope.configure_waveform("CHAN1", points=2000)


def test_configure_waveform_checks_all_before_sending() -> None:
    with expected_protocol(InfiniiVision, []) as scope, pytest.raises(SettingOutOfRange) as info:
        scope.configure_waveform("CHAN1", points=10)
    assert info.value.command == "waveform_points"


@pytest.mark.parametrize(("option", "value"), [("adc_bits", 9), ("record_timeout_s", 0.0)])
def test_constructor_options_are_checked(option: str, value: float) -> None:
    with pytest.raises(SettingOutOfRange):
        InfiniiVision(None, **{option: value})  # type: ignore[arg-type]


def test_specs() -> None:
    comm = [(":TRIGger:EDGE:LEVel 0.1", None), (":RUN", None)]
    with expected_protocol(InfiniiVision, comm) as scope:
        polls = {spec.name: spec for spec in scope.poll_specs()}
        controls = {spec.name: spec for spec in scope.control_specs()}
        actions = {spec.name: spec for spec in scope.action_specs()}
        assert polls["waveform"].kind == "waveform"
        assert polls["waveform"].read == scope.read_records
        assert controls["trigger_level"].allowed == "-40 to 40 V"
        assert {"timebase_position", "acquisition_type", "acquisition_count"} <= set(controls)
        with pytest.raises(SettingOutOfRange):
            controls["trigger_level"].validate(100)
        controls["trigger_level"].set(0.1)
        assert set(actions) == {"single", "run", "stop"}
        assert actions["single"].params == ("timeout_s",)
        actions["run"].call()


# ---- the record's own arithmetic -----------------------------------------------------------


def waveform(raw: np.ndarray, preamble: str, completed: Completion | None = None) -> Waveform:
    pre = Preamble.parse(preamble)
    return Waveform(pre.time_axis(raw.size), pre.volts(raw), pre, "CHAN1", raw, completed)


@pytest.mark.parametrize(
    ("dtype", "adc_bits", "rails"),
    [("<i2", 8, (-32768, 32512)), ("<u2", 8, (0, 65280)), ("i1", 8, (-128, 127)),
     ("u1", 8, (0, 255)), ("<i2", 12, (-32768, 32752)), ("u1", 12, (0, 255))],
)
def test_rails_are_the_adc_extremes_in_the_transfer_format(
    dtype: str, adc_bits: int, rails: tuple[int, int]
) -> None:
    assert waveform(np.zeros(2, dtype), PREAMBLE_WORD).rails(adc_bits) == rails


def test_an_unclipped_record_is_ok() -> None:
    record = waveform(np.array([0, 256, -256], "<i2"), PREAMBLE_WORD).record(adc_bits=8)
    assert record.quality is Quality.OK and record.note == ""


def test_trigger_time_is_completion_minus_the_post_trigger_span() -> None:
    pre = Preamble.parse(PREAMBLE_WORD)  # 4 points from -2 us at 1 us: 2 us after the trigger
    assert pre.post_trigger_s == pytest.approx(2e-6)
    assert trigger_time(Completion(1_000_000, 1_000_400), pre) == (1_000_200 - 2000, 200)
    record = waveform(np.zeros(4, "<i2"), PREAMBLE_WORD, Completion(1_000_000, 1_000_400))
    assert record.record().t_ns == 1_000_200 - 2000
    assert record.record(t_ns=5).t_ns == 5  # a caller's own time wins


def test_a_trigger_outside_the_record_is_kept_in_the_meta() -> None:
    delayed = "+1,+0,+4,+1,+1.00000E-06,+1.00000E-03,+0,+1.00000E-03,+0.00000E+00,+0"
    wf = waveform(np.zeros(4, "<i2"), delayed)
    record = wf.record(t_ns=10_000_000)
    assert record.presamples == 0
    assert record.meta["trigger_ns"] == 10_000_000
    assert record.t_ns == 10_000_000 + 1_000_000  # sample 0 is 1 ms after the trigger
    assert wf.preamble.type is RecordType.NORMAL
