"""The PFL-102 shadow survives a restart: the first write after it keeps the SQUID locked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymeasure.test import expected_protocol

from drivers.star import pfl102_state
from drivers.star.pfl102 import PFL102, FeedbackResistor, LoopMode, ShadowStateError
from tests.drivers.conftest import RecordingAdapter

# Frames (channel 1, odd parity) for the sequence below.
BIAS_25UA = "01E00332;"  # parameter word: SQUID bias code 51
LOCKED = "01500408;"  # LOCK + feedback on the SQUID stage, 100 kOhm, 1.5 nF


def lock_and_bias(state: Path) -> None:
    """The first daemon run: bias the SQUID and lock it."""
    with expected_protocol(PFL102, [(BIAS_25UA, None), (LOCKED, None)], state_file=state) as pfl:
        pfl.ch_1.bias_current = 25e-6
        pfl.ch_1.write_control(0x0408)


def test_the_constructor_touches_no_file(tmp_path: Path) -> None:
    state = tmp_path / "state" / "pfl102.json"
    PFL102(RecordingAdapter(), state_file=state)
    assert list(tmp_path.iterdir()) == []


def test_every_frame_is_persisted_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state" / "pfl102.json"
    lock_and_bias(state)
    document = json.loads(state.read_text())
    assert document["version"] == pfl102_state.STATE_VERSION
    card = document["cards"]["1"]
    assert card["control_word"] == 0x0408
    assert card["codes"]["squid_bias"] == 51 and card["codes"]["output_offset"] == 0
    assert [p.name for p in state.parent.iterdir()] == ["pfl102.json"]  # no temporary left


def test_after_a_restart_a_field_change_keeps_the_lock(tmp_path: Path) -> None:
    state = tmp_path / "pfl102.json"
    lock_and_bias(state)
    # A new driver instance (the restarted daemon): nothing is sent on start, and the
    # first control word carries the LOCK bit the card already has.
    comm = [("01D0040C;", None), ("0150040D;", None), ("01D0040C;", None)]
    with expected_protocol(PFL102, comm, state_file=state) as pfl:
        squid = pfl.ch_1
        assert squid.mode is LoopMode.LOCK
        assert squid.bias_current == pytest.approx(2000e-6 * 51 / 4095)
        squid.feedback_resistor = FeedbackResistor.R_10K
        squid.reset_integrator()
        assert squid.control_word == 0x040C


def test_without_the_state_file_the_same_change_would_unlock(tmp_path: Path) -> None:
    lock_and_bias(tmp_path / "pfl102.json")
    with expected_protocol(PFL102, [("01500804;", None)]) as pfl:  # no state file given
        pfl.ch_1.feedback_resistor = FeedbackResistor.R_10K
        assert pfl.ch_1.mode is LoopMode.TUNE  # the word it sent opens the loop


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"version": 99, "cards": {}}',
        '{"version": 1, "cards": {"1": {"control_word": 70000, "codes": {}}}}',
        '{"version": 1, "cards": {"1": {"control_word": 1032, "codes": {"squid_bias": 5000}}}}',
        '{"version": 1, "cards": {"1": {"control_word": 1032, "codes": {"nonsense": 1}}}}',
    ],
)
def test_an_unusable_state_file_stops_every_write(tmp_path: Path, content: str) -> None:
    state = tmp_path / "pfl102.json"
    state.write_text(content)
    with expected_protocol(PFL102, [], state_file=state) as pfl:
        with pytest.raises(ShadowStateError) as info:
            pfl.ch_1.bias_current = 25e-6
        assert "delete it" in str(info.value)
    assert state.read_text() == content  # never silently replaced


def test_cards_this_configuration_does_not_use_are_kept(tmp_path: Path) -> None:
    state = tmp_path / "pfl102.json"
    other = {"control_word": 0x0408, "codes": {"squid_bias": 7}}
    state.write_text(json.dumps({"version": 1, "cards": {"5": other}}))
    with expected_protocol(PFL102, [(BIAS_25UA, None)], state_file=state) as pfl:
        pfl.ch_1.bias_current = 25e-6
    cards = json.loads(state.read_text())["cards"]
    assert cards["5"] == other and cards["1"]["codes"]["squid_bias"] == 51


def test_a_crash_while_saving_leaves_the_previous_state(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "pfl102.json"
    lock_and_bias(state)
    before = state.read_text()

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pfl102_state.json, "dump", crash)
    with expected_protocol(PFL102, [("01500808;", None)], state_file=state) as pfl, \
            pytest.raises(OSError):
        pfl.ch_1.mode = LoopMode.TUNE
    assert state.read_text() == before


def test_the_daemon_is_told_to_hand_over_a_state_file() -> None:
    assert PFL102.KEEPS_STATE is True
