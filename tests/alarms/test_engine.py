"""The engine with made-up times: rules, delays, latching, shelving, suppression, floods,
rate limits, escalation, system alarms and the restore."""

from __future__ import annotations

from typing import Any

import pytest

from daq import messages
from daq.alarms.config import AlarmsConfig
from daq.alarms.engine import AlarmEngine, Outbox, Who
from daq.alarms.journal import DeliveryStep, JournalEntry
from daq.alarms.notify import DeliveryResult, Notice, url_key
from daq.alarms.state import AlarmRecord, AlarmState, StateError, Transition
from daq.alarms.store import record_from_meta
from daq.config_schema import from_mapping
from daq.messages import InstrumentState, Kind, Message

URL = "json://127.0.0.1:9/alarms"
BOSS = "json://127.0.0.1:9/boss"
T0 = 1_800_000_000.0
OPERATOR = Who("alice@host", "operator")


def _config(rules: list[dict[str, Any]], **extra: Any) -> AlarmsConfig:
    section = {"rules": rules, "notifications": {"routes": {"critical": [URL],
                                                            "warning": [URL]},
                                                 "min_interval_s": 0},
               **extra}
    return from_mapping(AlarmsConfig, section, path="alarms")


def _data(stream: str, value: float, t: float, quality: int = 0) -> Message:
    source, channel = stream.split("/")
    msg = messages.scalar(source, channel, value, t=int(t * 1e9), quality=quality)
    msg.t_recv = int(t * 1e9)
    return msg


def _transitions(out: Outbox) -> list[tuple[str, str, str]]:
    return [(e.alarm, e.transition.value, e.record["state"]) for e in out.events]


MXC = {"name": "mxc_warm", "severity": "critical", "delay_s": 60,
       "when": {"stream": "fridge1/mxc", "above": 0.030, "deadband": 0.002},
       "guidance": "Check the heater.",
       "action": {"op": "set", "target": "fridge1/heater_range", "value": 0}}


def test_raise_after_the_delay_latch_clear_and_acknowledge() -> None:
    engine = AlarmEngine(_config([MXC]), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.035, T0), T0)
    assert not _transitions(engine.tick(T0))  # the on-delay runs
    engine.on_message(_data("fridge1/mxc", 0.036, T0 + 59), T0 + 59)
    assert not _transitions(engine.tick(T0 + 59))
    out = engine.tick(T0 + 60)
    assert _transitions(out) == [("mxc_warm", "raised", "active_unack")]
    assert out.events[0].record["reason"] == "fridge1/mxc = 0.036 is above 0.03"
    [notice] = out.notices
    assert notice.key == "raise" and notice.urls == (URL,)
    assert "CRITICAL mxc_warm" in notice.title and "What to do: Check the heater." in notice.body
    [action] = out.actions
    assert action.action.target == "fridge1/heater_range" and action.action.value == 0
    engine.on_message(_data("fridge1/mxc", 0.020, T0 + 70), T0 + 70)
    out = engine.tick(T0 + 70)
    assert _transitions(out) == [("mxc_warm", "cleared", "cleared_unack")]  # latched
    assert not out.notices
    out = engine.acknowledge(["mxc_warm"], OPERATOR, "heater fixed", T0 + 80)
    assert _transitions(out) == [("mxc_warm", "acknowledged", "normal")]
    assert out.events[0].detail["who"] == "alice@host (operator)"
    with pytest.raises(StateError, match="mxc_warm is normal: nothing to acknowledge"):
        engine.acknowledge(["mxc_warm"], OPERATOR, "", T0 + 81)


def test_acknowledged_alarm_returns_to_normal_when_it_clears() -> None:
    rule = {**MXC, "delay_s": 0}
    engine = AlarmEngine(_config([rule]), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.035, T0), T0)
    engine.tick(T0)
    out = engine.acknowledge(["*"], OPERATOR, "", T0 + 1)
    assert _transitions(out) == [("mxc_warm", "acknowledged", "active_ack")]
    engine.on_message(_data("fridge1/mxc", 0.01, T0 + 2), T0 + 2)
    assert _transitions(engine.tick(T0 + 2)) == [("mxc_warm", "returned", "normal")]


def test_a_flapping_condition_is_one_occurrence_while_unacknowledged() -> None:
    engine = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0)
    notices = 0
    for i in range(20):
        engine.on_message(_data("fridge1/mxc", 0.04 if i % 2 == 0 else 0.01, T0 + i), T0 + i)
        notices += len(engine.tick(T0 + i).notices)
    rec = engine.records["mxc_warm"]
    assert rec.occurrence == 1 and rec.activations == 10 and notices == 1


def test_shelving_silences_and_ends_by_itself() -> None:
    engine = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0)
    out = engine.shelve("mxc_warm", 30, OPERATOR, "heater work", T0)
    assert _transitions(out) == [("mxc_warm", "shelved", "normal")]
    assert out.events[0].record["shelved_by"] == "alice@host (operator)"
    engine.on_message(_data("fridge1/mxc", 0.04, T0 + 1), T0 + 1)
    out = engine.tick(T0 + 1)
    assert _transitions(out) == [("mxc_warm", "raised", "active_unack")] and not out.notices
    assert engine.listing(T0 + 2)[0]["shelved"] is True
    out = engine.tick(T0 + 31)
    assert _transitions(out) == [("mxc_warm", "unshelved", "active_unack")]
    assert out.events[0].detail["who"] == "shelf time over"
    assert [n.key for n in out.notices] == ["raise"]  # told once it is off the shelf
    with pytest.raises(StateError, match="needs a reason"):
        engine.shelve("mxc_warm", 30, OPERATOR, " ", T0 + 32)
    with pytest.raises(StateError, match="is not shelved"):
        engine.unshelve("mxc_warm", OPERATOR, T0 + 32)


def test_a_lab_state_suppresses_a_rule() -> None:
    rule = {**MXC, "delay_s": 0, "suppress_in": ["warm"]}
    engine = AlarmEngine(_config([rule], lab_states={
        "warm": {"stream": "fridge1/mxc_control", "above": 1.0}}), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc_control", 4.0, T0), T0)
    engine.on_message(_data("fridge1/mxc", 4.0, T0), T0)
    out = engine.tick(T0)
    assert _transitions(out) == [("mxc_warm", "suppressed", "normal")]
    assert engine.lab_states == {"warm": True}
    engine.on_message(_data("fridge1/mxc_control", 0.02, T0 + 1), T0 + 1)
    out = engine.tick(T0 + 1)
    assert _transitions(out) == [("mxc_warm", "unsuppressed", "normal"),
                                 ("mxc_warm", "raised", "active_unack")]


def test_a_flood_keeps_the_first_cause_on_top_and_tells_one_summary() -> None:
    rules = [{"name": f"r{i}", "severity": "warning",
              "when": {"stream": f"f/x{i}", "above": 1.0}} for i in range(6)]
    engine = AlarmEngine(_config(rules, flood={"window_s": 5, "min_alarms": 4}),
                         daemons=[], now=T0)
    notices = []
    for i in (3, 0, 1, 2, 4, 5):  # r3 first: the cause
        engine.on_message(_data(f"f/x{i}", 2.0, T0 + i * 0.5), T0 + i * 0.5)
        notices += engine.tick(T0 + i * 0.5).notices
    assert [n.alarm for n in notices] == ["r3"]  # the first cause at once
    listing = engine.listing(T0 + 3)
    assert [row["alarm"] for row in listing] == ["r3", "r0", "r1", "r2", "r4", "r5"]
    assert [row["grouped"] for row in listing] == [False] + [True] * 5
    assert all(row["group"] == "r3" for row in listing[1:])
    out = engine.tick(T0 + 10)
    [summary] = out.notices
    assert summary.key == "flood" and "5 more alarms after r3" in summary.title
    assert len(summary.covers) == 5 and engine.floods == 1


def test_rate_limit_holds_a_flapping_alarm_to_one_notice_per_interval() -> None:
    rule = {"name": "flappy", "severity": "warning", "latch": False,
            "when": {"stream": "f/x", "above": 1.0}}
    config = _config([rule])
    config = from_mapping(AlarmsConfig, {
        "rules": [rule], "notifications": {"routes": {"warning": [URL]},
                                           "min_interval_s": 10}}, path="alarms")
    engine = AlarmEngine(config, daemons=[], now=T0)
    sent = []
    raises = 0
    for i in range(60):  # 30 s of a sensor flapping every 0.5 s
        t = T0 + i * 0.5
        engine.on_message(_data("f/x", 2.0 if i % 2 == 0 else 0.0, t), t)
        out = engine.tick(t)
        raises += sum(1 for e in out.events if e.transition is Transition.RAISED)
        sent += out.notices
    sent += engine.tick(T0 + 40).notices
    bound = 1 + 30 / 10
    assert raises == 30 and len(sent) <= bound
    assert [n.key for n in sent][:2] == ["raise", "digest"]
    assert "changes held back" in sent[1].title


def test_escalation_of_an_unacknowledged_critical_alarm() -> None:
    config = from_mapping(AlarmsConfig, {
        "rules": [{**MXC, "delay_s": 0}],
        "notifications": {"routes": {"critical": [URL]},
                          "escalation": [{"after_s": 600, "urls": [BOSS]}]}}, path="alarms")
    engine = AlarmEngine(config, daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.04, T0), T0)
    assert [n.key for n in engine.tick(T0).notices] == ["raise"]
    assert not engine.tick(T0 + 599).notices
    [escalated] = engine.tick(T0 + 600).notices
    assert escalated.key == "escalate1" and escalated.urls == (BOSS,)
    assert "ESCALATED, unacknowledged for 10 min" in escalated.title
    assert not engine.tick(T0 + 700).notices  # once


def test_deliveries_are_recorded_and_failures_raise_notify_failed() -> None:
    engine = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.04, T0), T0)
    [notice] = engine.tick(T0).notices
    out = engine.delivered(DeliveryResult(notice, url_key(URL), "json://127.0.0.1:9", False, 3,
                                          failing=True, error="refused"), T0 + 1)
    assert not out.events
    out = engine.tick(T0 + 1)
    assert _transitions(out) == [("notify_failed", "raised", "active_unack")]
    assert out.events[0].record["reason"] == "json://127.0.0.1:9: refused"
    out = engine.delivered(DeliveryResult(notice, url_key(URL), "json://127.0.0.1:9", True, 4),
                           T0 + 2)
    assert _transitions(out) == [("mxc_warm", "notified", "active_unack")]
    assert out.events[0].record["delivered"] == {"raise": [url_key(URL)]}
    assert _transitions(engine.tick(T0 + 2)) == [("notify_failed", "cleared", "cleared_unack")]


def _status(source: str, channel: str, state: str, **meta: Any) -> Message:
    return messages.status(source, channel, InstrumentState(state), "", **meta)


def test_system_alarms_dead_man_backlog_disk_and_interlocks() -> None:
    engine = AlarmEngine(_config([]), daemons=["daemon-a"], now=T0)
    beat = messages.heartbeat("daemon-a", 1.0, {})
    engine.on_message(beat, T0 + 5)
    assert not _transitions(engine.tick(T0 + 14))
    out = engine.tick(T0 + 16)
    assert _transitions(out) == [("daemon_lost.daemon-a", "raised", "active_unack")]
    assert "no heartbeat from daemon daemon-a for 11.0 s" in out.events[0].record["reason"]
    engine.on_message(beat, T0 + 17)
    engine.on_message(_status("daemon-a", "daemon", "connected",
                              reliable={"unacked": 12, "oldest_unacked_age_s": 300.0},
                              interlocks={}), T0 + 17)
    engine.on_message(_status("logger-1", "logger", "connected", disk_free_bytes=10**9,
                              disk_total_bytes=10**12), T0 + 17)
    alarm = messages.event(Kind.ALARM, "daemon-a", "mxc_overheat", level="critical",
                           reason="fridge1/mxc_control = 0.9 is above 0.8",
                           action="set fridge1/heater_range = 0", state="tripped")
    engine.on_message(alarm, T0 + 17)
    out = engine.tick(T0 + 17)
    assert set(_transitions(out)) == {
        ("daemon_lost.daemon-a", "cleared", "cleared_unack"),
        ("logger_backlog.daemon-a", "raised", "active_unack"),
        ("disk_low.logger-1", "raised", "active_unack"),
        ("interlock.daemon-a.mxc_overheat", "raised", "active_unack")}
    # the interlock's trip is an event: it latches at once unless its action keeps failing
    assert _transitions(engine.tick(T0 + 18)) == [
        ("interlock.daemon-a.mxc_overheat", "cleared", "cleared_unack")]


def test_restore_keeps_state_and_never_repeats_a_delivered_notice() -> None:
    engine = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.04, T0), T0)
    [notice] = engine.tick(T0).notices
    delivered = engine.delivered(DeliveryResult(notice, url_key(URL), "json", True, 1), T0 + 1)
    stored = record_from_meta(delivered.events[-1].record)
    again = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 10)
    out = again.restore([stored], T0 + 10)
    assert not out.notices
    again.on_message(_data("fridge1/mxc", 0.04, T0 + 10), T0 + 10)
    assert not _transitions(again.tick(T0 + 10))  # still active: no new occurrence, no clear
    rec = again.records["mxc_warm"]
    assert rec.state is AlarmState.ACTIVE_UNACK and rec.occurrence == 1
    undelivered = record_from_meta(delivered.events[-1].record)
    undelivered.delivered = {}
    third = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 20)
    assert [n.key for n in third.restore([undelivered], T0 + 20).notices] == ["raise"]


def _raised_and_stored() -> tuple[Notice, AlarmRecord]:
    """A raised MXC alarm whose notice went out, as the archive has it (delivery unknown)."""
    engine = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0)
    engine.on_message(_data("fridge1/mxc", 0.04, T0), T0)
    out = engine.tick(T0)
    [notice] = out.notices
    return notice, record_from_meta(out.events[-1].record)


def _entry(state: DeliveryStep, occurrence: int = 1) -> JournalEntry:
    return JournalEntry("mxc_warm", occurrence, "raise", url_key(URL), state, T0 + 1)


def test_restore_takes_a_delivery_only_the_journal_knows_and_tells_the_archive() -> None:
    _, stored = _raised_and_stored()
    assert stored.delivered == {}  # killed before the notified transition was spooled
    again = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 10)
    out = again.restore([stored], T0 + 10, [_entry(DeliveryStep.SENT)])
    assert not out.notices
    [event] = out.events
    assert event.transition is Transition.NOTIFIED
    assert event.detail == {"notice": "raise", "url": "json://127.0.0.1:9",
                            "from": "delivery journal"}
    assert event.record["delivered"] == {"raise": [url_key(URL)]}
    assert not again.tick(T0 + 11).notices


def test_restore_sends_a_notice_in_flight_at_the_kill_again_marked_as_a_possible_repeat(
        ) -> None:
    first, stored = _raised_and_stored()
    again = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 10)
    [notice] = again.restore([stored], T0 + 10, [_entry(DeliveryStep.SENDING)]).notices
    assert notice.key == "raise" and notice.urls == (URL,)
    assert notice.title == first.title.replace("mxc_warm: ", "mxc_warm: possibly a repeat: ")
    assert notice.body.startswith(first.body)
    assert notice.body.endswith("it may have reached you already.")
    # a journal row of an earlier occurrence says nothing about this one
    third = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 20)
    [fresh] = third.restore([stored], T0 + 20, [_entry(DeliveryStep.SENT, occurrence=0)]).notices
    assert fresh.title == first.title and fresh.body == first.body
    # nor does one written before this occurrence was raised (an archive started afresh
    # numbers its occurrences from 1 again; the state directory kept the old journal)
    stale = JournalEntry("mxc_warm", 1, "raise", url_key(URL), DeliveryStep.SENT, T0 - 86400)
    fourth = AlarmEngine(_config([{**MXC, "delay_s": 0}]), daemons=[], now=T0 + 30)
    assert [n.key for n in fourth.restore([stored], T0 + 30, [stale]).notices] == ["raise"]
