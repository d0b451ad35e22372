"""The state model alone: ISA-18.2 transitions, latching, shelving, suppression."""

from __future__ import annotations

import pytest

from daq.alarms.config import Severity
from daq.alarms.state import AlarmRecord, AlarmState, StateError, Transition
from daq.alarms.store import record_from_meta, record_meta


def test_the_full_cycle_of_a_latching_alarm() -> None:
    rec = AlarmRecord("a", Severity.CRITICAL)
    assert rec.condition(True, "hot", 0.04, 1.0) is Transition.RAISED
    assert rec.state is AlarmState.ACTIVE_UNACK and rec.occurrence == 1
    assert rec.condition(True, "hot", 0.05, 2.0) is None
    assert rec.condition(False, "ok", 0.01, 3.0) is Transition.CLEARED
    assert rec.state is AlarmState.CLEARED_UNACK and rec.t_cleared == 3.0
    assert rec.condition(True, "hot", 0.04, 4.0) is Transition.REACTIVATED
    assert rec.occurrence == 1 and rec.activations == 2  # the same occurrence
    assert rec.acknowledge("bob", "on it", 5.0) is Transition.ACKNOWLEDGED
    assert rec.state is AlarmState.ACTIVE_ACK
    with pytest.raises(StateError, match="acknowledged already by bob"):
        rec.acknowledge("carol", "", 6.0)
    assert rec.condition(False, "ok", 0.01, 7.0) is Transition.RETURNED
    assert rec.state is AlarmState.NORMAL
    assert rec.condition(True, "hot", 0.04, 8.0) is Transition.RAISED
    assert rec.occurrence == 2 and rec.acked_by == "" and rec.delivered == {}


def test_non_latching_returns_to_normal_unacknowledged() -> None:
    rec = AlarmRecord("a", Severity.INFO, latch=False)
    rec.condition(True, "x", None, 1.0)
    assert rec.condition(False, "y", None, 2.0) is Transition.RETURNED
    assert rec.state is AlarmState.NORMAL


def test_cleared_unacknowledged_is_acknowledged_to_normal() -> None:
    rec = AlarmRecord("a", Severity.WARNING)
    rec.condition(True, "x", None, 1.0)
    rec.condition(False, "y", None, 2.0)
    assert rec.acknowledge("bob", "", 3.0) is Transition.ACKNOWLEDGED
    assert rec.state is AlarmState.NORMAL


def test_shelf_and_suppression_are_flags_beside_the_state() -> None:
    rec = AlarmRecord("a", Severity.WARNING)
    with pytest.raises(StateError, match="must end in the future"):
        rec.shelve(1.0, "bob", "work", 2.0)
    assert rec.shelve(100.0, "bob", "work", 2.0) is Transition.SHELVED
    assert rec.shelved(50.0) and not rec.shelved(100.0)
    assert rec.unshelve("carol") is Transition.UNSHELVED and rec.shelved_until is None
    assert rec.suppress("warm") is Transition.SUPPRESSED
    assert rec.suppress("warm") is None
    assert rec.suppress("") is Transition.UNSUPPRESSED


def test_a_record_survives_the_wire() -> None:
    rec = AlarmRecord("a", Severity.CRITICAL, guidance="do this", description="what")
    rec.condition(True, "hot", float("nan"), 1.0)
    rec.shelve(10.0, "bob", "work", 2.0)
    rec.delivered = {"raise": ["abc"]}
    back = record_from_meta(record_meta(rec))
    assert back.value is None  # NaN is not JSON
    rec.value = None
    assert back == rec
    with pytest.raises(ValueError, match="no 'severity'"):
        record_from_meta({"alarm": "a", "state": "normal"})
