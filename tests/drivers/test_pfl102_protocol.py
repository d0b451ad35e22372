"""Protocol replay for the PFL-102 driver: exact frames, the shadow, refusals, the heat procedure."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.squid import LoopMode, SquidController
from drivers.star.pfl102 import (
    PFL102,
    FeedbackResistor,
    FeedbackStage,
    IntegratorCapacitor,
    Register,
    SignalInjection,
    build_frame,
    parse_frame,
)

# Frames worked out by hand from the bit layout in simulators/servers/pfl102.py:
# data = (code << 4) | select, parity bit 0x80 when channel+opcode+data have even ones.
DAC_CASES = [
    ("bias_current", 25e-6, "01E00332;", 2000e-6 * 51 / 4095),
    ("flux_offset", 40e-6, "01606660;", 100e-6 * 1638 / 4095),
    ("array_bias", 100e-6, "0160FFF3;", 100e-6),
    ("array_flux", 10e-6, "01600CD1;", 200e-6 * 205 / 4095),
    ("output_offset", 1e-3, "01E08D04;", -9.8e-3 + 19.6e-3 * 2256 / 4095),
    ("output_offset", -9.8e-3, "01E00004;", -9.8e-3),
]

# Each starts from the safe word 0x0800 (tune, 100 kOhm, 1.5 nF).
FIELD_CASES = [
    ("feedback_resistor", FeedbackResistor.R_1K, "01500802;"),
    ("feedback_resistor", 1e4, "01500804;"),
    ("integrator_capacitor", IntegratorCapacitor.C_15N, "01500900;"),
    ("integrator_capacitor", 150e-9, "01500A00;"),
    ("mode", LoopMode.LOCK, "01D00400;"),
    ("feedback_stage", FeedbackStage.SQUID, "01500808;"),
    ("test_input", SignalInjection.SQUID_FLUX, "01500840;"),
    ("test_input", "array_bias", "01500820;"),
    ("heater_enabled", True, "01501800;"),
]

OUT_OF_RANGE = [
    ("bias_current", 2.1e-3),
    ("bias_current", -1e-6),
    ("flux_offset", 101e-6),
    ("array_bias", 0.2e-3),
    ("array_flux", 201e-6),
    ("output_offset", 9.9e-3),
    ("output_offset", float("nan")),
    ("feedback_resistor", 2e3),
    ("integrator_capacitor", 1e-9),
    ("mode", "locked"),
    ("mode", "idle"),  # the PFL-102 documents no idle: always tune or lock
    ("mode", LoopMode.IDLE),
    ("feedback_stage", "both"),
    ("test_input", "squid"),
]


def test_frames_match_the_documented_examples() -> None:
    assert build_frame(1, Register.DIGITAL_CONTROL, 0x0408) == "01500408;"
    assert build_frame(1, Register.DIGITAL_CONTROL, 0x0800) == "01D00800;"
    assert parse_frame("01D00800;") == (1, Register.DIGITAL_CONTROL, 0x0800)


@pytest.mark.parametrize("frame", ["01500800;", "01D0080;", "01X00800;", "01C00800;"])
def test_parse_frame_refuses_bad_frames(frame: str) -> None:
    with pytest.raises(InstrumentReplyError):
        parse_frame(frame)


@pytest.mark.parametrize(("name", "value", "frame", "readback"), DAC_CASES)
def test_dac_setting_sends_exact_frame_and_reads_back_quantised(
    name: str, value: float, frame: str, readback: float
) -> None:
    with expected_protocol(PFL102, [(frame, None)]) as pfl:
        setattr(pfl.ch_1, name, value)
        assert getattr(pfl.ch_1, name) == pytest.approx(readback, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("name", "value", "frame"), FIELD_CASES)
def test_control_field_sends_whole_word(name: str, value: object, frame: str) -> None:
    with expected_protocol(PFL102, [(frame, None)]) as pfl:
        setattr(pfl.ch_1, name, value)
        assert getattr(pfl.ch_1, name) == value


def test_shadow_starts_in_the_safe_tune_state_without_io() -> None:
    with expected_protocol(PFL102, []) as pfl:
        squid = pfl.ch_1
        assert squid.mode is LoopMode.TUNE
        assert squid.feedback_resistor is FeedbackResistor.R_100K
        assert squid.integrator_capacitor is IntegratorCapacitor.C_1N5
        assert squid.test_input is SignalInjection.OFF
        assert squid.bias_current == 0.0
        assert squid.output_offset == pytest.approx(-9.8e-3)


def test_fields_merge_into_the_shadow_word() -> None:
    comm = [("01500804;", None), ("01D00904;", None), ("01D00504;", None), ("0150050C;", None)]
    with expected_protocol(PFL102, comm) as pfl:
        squid = pfl.ch_1
        squid.feedback_resistor = FeedbackResistor.R_10K
        squid.integrator_capacitor = IntegratorCapacitor.C_15N
        squid.lock()
        squid.feedback_stage = FeedbackStage.SQUID
        assert squid.control_word == 0x050C
        assert squid.mode is LoopMode.LOCK


def test_reset_integrator_pulses_the_reset_bit() -> None:
    with expected_protocol(
        PFL102, [("01D00400;", None), ("01500401;", None), ("01D00400;", None)]
    ) as pfl:
        pfl.ch_1.mode = LoopMode.LOCK
        pfl.ch_1.reset_integrator()
        assert pfl.ch_1.control_word == 0x0400


def test_tune_is_the_interface_convenience() -> None:
    with expected_protocol(PFL102, [("01D00400;", None), ("01D00800;", None)]) as pfl:
        pfl.ch_1.lock()
        pfl.ch_1.tune()
        assert pfl.ch_1.mode is LoopMode.TUNE


def test_heat_follows_the_manual_procedure_and_waits_the_cool_down() -> None:
    slept: list[float] = []
    comm = [
        ("01E00332;", None),  # bias 25 uA (code 51)
        ("01500408;", None),  # locked on the SQUID stage
        ("01E00002;", None),  # heat: SQUID bias 0
        ("01600003;", None),  # heat: array bias 0
        ("01600000;", None),  # heat: SQUID flux 0
        ("01E00001;", None),  # heat: array flux 0
        ("01D01808;", None),  # heater on, loop open (tune) ...
        ("01D01808;", None),  # ... repeated every 0.1 s
        ("01D01808;", None),
        ("01500808;", None),  # heater off, still tune
        ("01E00332;", None),  # after the cool-down: SQUID bias restored
        ("01600003;", None),  # array bias restored (was 0)
        ("01600000;", None),  # SQUID flux restored
        ("01E00001;", None),  # array flux restored
        ("01D00409;", None),  # the locked word with the integrator reset ...
        ("01500408;", None),  # ... released: relocked at the present flux
    ]
    with expected_protocol(PFL102, comm) as pfl:
        pfl.ch_1.bias_current = 25e-6
        pfl.ch_1.write_control(0x0408)
        pfl.ch_1.heat(0.3, sleep=slept.append)
        assert pfl.ch_1.bias_current == pytest.approx(2000e-6 * 51 / 4095)
        assert pfl.ch_1.control_word == 0x0408
        assert pfl.ch_1.heater_enabled is False
    assert slept == pytest.approx([0.1, 0.1, 0.1, 10.0])


def test_heat_waits_longer_when_asked_but_never_less_than_documented() -> None:
    slept: list[float] = []
    comm = [(frame, None) for frame in (
        "01E00002;", "01600003;", "01600000;", "01E00001;",
        "01501800;", "01D00800;",
        "01E00002;", "01600003;", "01600000;", "01E00001;",
        "01500801;", "01D00800;",
    )]
    with expected_protocol(PFL102, comm) as pfl:
        pfl.ch_1.heat(0.1, cool_s=30.0, sleep=slept.append)
    assert slept == pytest.approx([0.1, 30.0])
    with expected_protocol(PFL102, []) as pfl, pytest.raises(SettingOutOfRange) as info:
        pfl.ch_1.heat(0.2, cool_s=5.0, sleep=slept.append)
    assert "heat cool_s" in str(info.value) and info.value.allowed == "10 to 600"


class LinkDropped(Exception):
    """Stands in for a link that drops while the heater is on."""


def test_a_failure_while_heating_still_switches_the_heater_off() -> None:
    frames = ("01E00002;", "01600003;", "01600000;", "01E00001;", "01501800;", "01D00800;")
    with expected_protocol(PFL102, [(f, None) for f in frames]) as pfl:
        def broken_sleep(seconds: float) -> None:
            raise LinkDropped

        with pytest.raises(LinkDropped):
            pfl.ch_1.heat(0.1, sleep=broken_sleep)
        assert pfl.ch_1.heater_enabled is False
        assert pfl.ch_1.bias_current == 0.0  # the currents stay off: safe


def test_heat_duration_is_checked_before_anything_is_sent() -> None:
    with expected_protocol(PFL102, []) as pfl, pytest.raises(SettingOutOfRange) as info:
        pfl.ch_1.heat(11.0, sleep=lambda s: None)
    assert "heat duration_s" in str(info.value)
    assert info.value.unit == "s"


def test_write_all_sends_the_whole_shadow() -> None:
    comm = [
        ("01D00800;", None),
        ("01600000;", None),
        ("01E00001;", None),
        ("01E00332;", None),
        ("01600003;", None),
        ("01E00004;", None),
    ]
    with expected_protocol(PFL102, [("01E00332;", None), *comm]) as pfl:
        pfl.ch_1.bias_current = 25e-6
        pfl.ch_1.write_all()


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_is_refused_before_sending(name: str, value: object) -> None:
    with expected_protocol(PFL102, []) as pfl:
        before = (pfl.ch_1.control_word, dict(pfl.ch_1.codes))
        with pytest.raises(SettingOutOfRange) as info:
            setattr(pfl.ch_1, name, value)
        assert (pfl.ch_1.control_word, dict(pfl.ch_1.codes)) == before
    error = info.value
    assert error.instrument == "PFL-102 channel 1"
    assert error.command == name
    assert error.allowed
    assert str(value) in str(error) or repr(value) in str(error)


def test_refusal_names_range_and_unit() -> None:
    with expected_protocol(PFL102, []) as pfl, pytest.raises(SettingOutOfRange) as info:
        pfl.ch_1.bias_current = 3e-3
    assert info.value.unit == "A"
    assert info.value.allowed == "0 to 0.002"
    assert "PFL-102 channel 1 'bias_current'" in str(info.value)


def test_channels_are_addressed_by_card_number() -> None:
    with expected_protocol(PFL102, [("02E00332;", None)], channels=(1, 2)) as pfl:
        pfl.channel(2).bias_current = 25e-6
        assert pfl.ch_1.bias_current == 0.0
        with pytest.raises(SettingOutOfRange):
            pfl.channel(3)


def test_channel_addresses_are_checked_at_construction() -> None:
    with pytest.raises(SettingOutOfRange):
        PFL102(None, channels=(9,))  # type: ignore[arg-type]


def test_channel_is_a_squid_controller() -> None:
    with expected_protocol(PFL102, []) as pfl:
        assert isinstance(pfl.ch_1, SquidController)


def test_specs_are_named_per_card_and_validate_without_sending() -> None:
    with expected_protocol(PFL102, [("02E00332;", None)], channels=(1, 2)) as pfl:
        controls = {spec.name: spec for spec in pfl.control_specs()}
        actions = {spec.name: spec for spec in pfl.action_specs()}
        assert {"ch1.bias_current", "ch2.mode", "ch2.array_flux", "ch1.test_input"} <= set(controls)
        assert controls["ch1.bias_current"].unit == "A"
        assert controls["ch1.bias_current"].allowed == "0 to 0.002 A"
        with pytest.raises(SettingOutOfRange):
            controls["ch1.bias_current"].validate(5e-3)
        assert controls["ch2.feedback_resistor"].validate(1e3) is FeedbackResistor.R_1K
        controls["ch2.bias_current"].set(25e-6)
        assert {"ch1.lock", "ch1.tune", "ch1.reset_integrator", "ch1.heat", "ch2.write_all"} <= set(
            actions
        )
        assert actions["ch1.heat"].params == ("duration_s", "cool_s")


def test_the_daemon_gets_no_readback_the_card_does_not_have() -> None:
    with expected_protocol(PFL102, [], channels=(1, 2)) as pfl:
        assert pfl.poll_specs() == []
        assert all(spec.get is None for spec in pfl.control_specs())
        assert pfl.ch_1.READS_BACK is False


@pytest.mark.parametrize("word", [0x0000, 0x0C00, 0x0406, 0x0B00, 0x2800, 0x1000])
def test_control_words_the_manual_does_not_define_are_refused(word: int) -> None:
    with expected_protocol(PFL102, []) as pfl, pytest.raises(SettingOutOfRange) as info:
        pfl.ch_1.write_control(word)
    assert info.value.command == "control word"
    assert word > 0x1FFF or "exactly one of LOCK" in info.value.allowed
    assert pfl.ch_1.control_word == 0x0800
