"""Controls, alarms and runs as the dashboard decides them (headless, no Qt)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
import zmq

from daq import messages
from daq.config import load_config
from daq.messages import Kind
from daq.runs import documents
from gui.models.alarms import (
    AlarmBook,
    AlarmState,
    Severity,
    ack_command,
    shelve_command,
    why_not_operable,
)
from gui.models.control import (
    Answer,
    Command,
    ControlRequest,
    RequestState,
    TargetInfo,
    confirmation,
    control_permission,
    panel_rows,
    parse_number,
    parse_value,
)
from gui.models.dashboard import Layout
from gui.models.runs import RunBook

LIST_REPLY = [
    {"target": "fridge1/mxc_setpoint", "kind": "control", "instrument": "ls372", "unit": "K",
     "allowed": "0 to 2000 K", "limits": "0 to 0.5 K", "value": 0.02},
    {"target": "fridge1/sample_heater_range", "kind": "control", "instrument": "ls372",
     "unit": "A", "allowed": "one of 0, 3.16e-05, 0.0001 A", "limits": "0 to 0.00316 A",
     "value": 0.0001},
    {"target": "fridge1/mxc_pid", "kind": "control", "unit": "", "allowed": "p 0 to 1000",
     "value": "PID372(p=100.0, i=100.0, d=0.0)"},
    {"target": "fridge1/mxc_ramp", "kind": "action", "params": ["target", "rate"]},
    {"target": "fridge1/all_heaters_off", "kind": "action"},
    {"target": "fridge1/scan_channel", "kind": "control", "value": 6},
    {"target": "tes1/bias_voltage", "kind": "control", "unit": "V", "limits": "-12 to 12 V",
     "value": 3.093},
    {"target": "tes1/squid_reset", "kind": "action"},
]


def _rows() -> dict[str, object]:
    rows = panel_rows(None, [TargetInfo.from_item(i) for i in LIST_REPLY])
    return {r.target: r for r in rows}


def test_the_panel_offers_the_known_roles_in_order_with_limits_beside() -> None:
    rows = panel_rows(None, [TargetInfo.from_item(i) for i in LIST_REPLY])
    assert [r.role.label for r in rows] == ["MXC setpoint", "Ramp setpoint to", "Heater range",
                                            "PID gains", "All heaters off", "TES bias",
                                            "SQUID reset"]
    assert rows[0].limits_text == "limits 0 to 0.5 K" and rows[0].current_text == "0.02 K"
    assert panel_rows("fridge2", [TargetInfo.from_item(i) for i in LIST_REPLY],
                      ["fridge2"]) == []


def test_what_heats_the_fridge_or_changes_the_bias_asks_first() -> None:
    rows = _rows()
    setpoint, heater = rows["fridge1/mxc_setpoint"], rows["fridge1/sample_heater_range"]
    assert "heats the fridge" in str(confirmation(setpoint, 0.05))  # type: ignore[arg-type]
    assert confirmation(setpoint, 0.01) is None  # type: ignore[arg-type]  # cooler
    assert confirmation(heater, 0.0) is None  # type: ignore[arg-type]  # heater off
    assert confirmation(heater, 0.001) is not None  # type: ignore[arg-type]
    assert "can heat" in str(confirmation(rows["fridge1/mxc_pid"], [1, 2, 3]))  # type: ignore[arg-type]
    assert "bias" in str(confirmation(rows["tes1/bias_voltage"], 2.0))  # type: ignore[arg-type]
    assert confirmation(rows["fridge1/all_heaters_off"], None) is None  # type: ignore[arg-type]
    assert confirmation(rows["tes1/squid_reset"], None) is None  # type: ignore[arg-type]
    assert confirmation(rows["fridge1/mxc_ramp"], None,  # type: ignore[arg-type]
                        {"target": 0.1, "rate": 0.01}) is not None


def test_typed_values_are_parsed_in_the_targets_unit() -> None:
    assert parse_number("0.05") == 0.05
    assert parse_number("50 mK", "K") == pytest.approx(0.05)
    assert parse_number("3.2V", "V") == 3.2
    assert parse_value(_rows()["fridge1/mxc_pid"].role, "100, 20 0") == [100, 20, 0]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="not a number"):
        parse_number("fifty")
    with pytest.raises(ValueError, match="unit 'mV'"):
        parse_number("5 mV", "K")


def test_a_request_goes_through_its_states_and_keeps_the_daemons_words() -> None:
    request = ControlRequest()
    command = Command(None, "set", {"target": "fridge1/mxc_setpoint", "value": 0.9})
    assert request.propose(command, "This heats the fridge: ...?") is None
    assert request.state is RequestState.CONFIRMING and request.busy
    assert request.confirm() is command and request.state is RequestState.SENT
    words = "fridge1/mxc_setpoint = 0.9 K is outside its limits 0 to 0.5 K"
    assert not request.answered(Answer(Command(None, "set", {}), False, error="other"))
    assert request.answered(Answer(command, False, error=words, refused=True))
    assert request.state is RequestState.REFUSED and request.answer == words
    again = Command(None, "set", {"target": "fridge1/mxc_setpoint", "value": 0.01})
    assert request.propose(again, None) is again
    request.answered(Answer(again, False, error="no reply from the daemon within 5 s"))
    assert request.state is RequestState.FAILED
    third = Command(None, "set", {"target": "fridge1/mxc_setpoint", "value": 0.01})
    request.propose(third, None)
    request.answered(Answer(third, True, {"value": 0.01}))
    assert request.state is RequestState.OK and request.answer == "done: 0.01"
    cancelled = ControlRequest()
    cancelled.propose(command, "sure?")
    cancelled.cancel()
    assert cancelled.state is RequestState.IDLE and cancelled.answer == "cancelled"


def _config(tmp_path: Path, control: dict[str, object], **extra: object) -> Path:
    data = {"bus": {"host": "127.0.0.1"},
            "daemon": {"control": control},
            "instruments": {"ls372": {"driver": "lakeshore.ls372:LakeShore372",
                                      "resource": "TCPIP::127.0.0.1::1::SOCKET",
                                      "source": "fridge1"}}, **extra}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_read_only_connection_is_known_before_any_request(tmp_path: Path) -> None:
    operator = load_config(_config(tmp_path, {"bind": "tcp://127.0.0.1:7110"}))
    assert control_permission(operator).allowed
    denied = control_permission(operator, read_only=True)
    assert not denied.allowed and "--read-only" in denied.reason
    viewer = load_config(_config(tmp_path, {"bind": "tcp://127.0.0.1:7110",
                                            "default_role": "read-only"}))
    reason = control_permission(viewer).reason
    assert "default_role is 'read-only'" in reason and "operator role" in reason
    server_public, server_secret = zmq.curve_keypair()
    me_public, me_secret = zmq.curve_keypair()
    keyed = load_config(_config(
        tmp_path, {"bind": "tcp://127.0.0.1:7110",
                   "curve": {"server_public": server_public.decode(),
                             "clients": {me_public.decode(): "read-only"}}},
        identity={"public_key": me_public.decode(), "secret_key": me_secret.decode()}))
    assert "allow-list for this host's key is 'read-only'" in control_permission(keyed).reason


def _alarm(alarm: str, state: str, severity: str = "critical", **meta: object) -> messages.Message:
    msg = messages.event(Kind.ALARM, "alarms-sim", alarm, alarm=alarm, severity=severity,
                         state=state, reason=f"{alarm} reason", guidance="Check it.",
                         transition="raised", t_changed=time.time(), **meta)
    msg.t_recv = msg.t
    return msg


def test_alarm_records_are_listed_worst_first_and_the_banner_shows_the_critical_one() -> None:
    book = AlarmBook()
    book.apply(_alarm("still_low", "active_unack", "warning"))
    book.apply(_alarm("mxc_warm", "active_ack"))
    book.apply(_alarm("mxc_thermometer", "active_unack"))
    book.apply(_alarm("gauges", "normal", "warning"))
    listed = book.listed()
    assert [a.id for a in listed] == ["mxc_thermometer", "still_low", "mxc_warm"]
    banner = book.banner()
    assert banner is not None and banner.unacknowledged and "mxc_thermometer" in banner.text
    assert "(+1 more)" in banner.text
    book.apply(_alarm("mxc_thermometer", "active_unack", shelved_until=time.time() + 600,
                      shelve_reason="rewiring"))
    banner = book.banner()
    assert banner is not None and "mxc_warm" in banner.text and not banner.unacknowledged
    assert "shelved for" in book.alarms["alarms-sim/mxc_thermometer"].state_text(time.time())
    book.apply(_alarm("mxc_warm", "cleared_unack"))
    assert book.banner() is None  # cleared: latched in the list, no longer on the banner
    assert book.alarms["alarms-sim/mxc_warm"].state is AlarmState.CLEARED_UNACK


def test_a_daemons_interlock_event_is_listed_until_the_alarm_service_speaks() -> None:
    book = AlarmBook()
    trip = messages.event(Kind.ALARM, "daemon-sim", "mxc_blind", level="critical",
                          reason="fridge1/mxc_control flagged SENSOR_ERROR", state="tripped",
                          action="set fridge1/sample_heater_range = 0")
    alarm = book.apply(trip)
    assert alarm is not None and alarm.severity is Severity.CRITICAL and not alarm.service
    assert "not running" in why_not_operable(alarm)
    assert book.banner() is not None
    book.apply(_alarm("interlock.daemon-sim.mxc_blind", "active_unack"))
    assert [a.id for a in book.listed()] == ["interlock.daemon-sim.mxc_blind"]


def test_ack_and_shelve_are_control_ops_and_shelving_needs_a_reason() -> None:
    book = AlarmBook()
    alarm = book.apply(_alarm("mxc_warm", "active_unack"))
    assert alarm is not None
    ack = ack_command(alarm, "seen, heater off")
    assert ack.op == "alarm_ack" and ack.fields == {"alarm": "mxc_warm",
                                                    "comment": "seen, heater off"}
    shelve = shelve_command(alarm, 3600, " service work ")
    assert shelve.fields == {"alarm": "mxc_warm", "duration_s": 3600.0,
                             "reason": "service work"}
    with pytest.raises(ValueError, match="reason"):
        shelve_command(alarm, 3600, "  ")


def test_a_run_is_followed_from_start_through_progress_to_its_points_and_stop() -> None:
    book = RunBook()
    start = documents.StartDocument(
        run_id="20260130T101500-iv-1a2b", procedure="iv", recipe_name="iv-sweep",
        recipe_path="", operator="alice", sample="TES A3", description="", parameters={},
        detector={}, config_path="", daemon="", settings=[], targets=())
    book.apply(documents.start_message(start))
    run = book.runs["20260130T101500-iv-1a2b"]
    assert run.running and run.operator == "alice" and run.sample == "TES A3"
    book.apply(documents.progress_message(run.run_id, documents.Progress(
        37, 120, 60.0, 240.0, "bias 2.1 V", documents.Phase.RUNNING)))
    assert run.fraction == pytest.approx(37 / 120)
    assert run.progress_text() == "37 / 120 · bias 2.1 V · 4 min left"
    for i, bias in enumerate(np.linspace(0, 3, 5)):
        book.apply(documents.point_message(run.run_id, "iv", i, {"bias_v": bias,
                                                                 "current_a": 2 * bias},
                                           {"bias_v": "V", "current_a": "A"}))
    ((stream, field, x, y, x_label, unit),) = run.curves()
    assert (stream, field, x_label, unit) == ("iv", "current_a", "bias_v (V)", "A")
    assert y == pytest.approx([2 * b for b in x])
    book.apply(documents.stop_message(run.run_id, documents.StopDocument(
        documents.RunStatus.ABORTED, "operator stopped it", time.time_ns(), {"iv": 5}, 0,
        0.0)))
    assert run.status == "aborted" and not run.running and run.reason == "operator stopped it"
    assert run.fraction == pytest.approx(37 / 120)  # an aborted run shows how far it got
    run.status = "completed"
    assert run.fraction == 1.0  # a completed one is whole, whatever its last progress said
    # the logger's `runs` op: one row per run, its start document in meta, times in ns
    stored = documents.start_message(documents.StartDocument(
        run_id="20260101T000000-rt-0000", procedure="rt", recipe_name="rt", recipe_path="",
        operator="bob", sample="TES B1", description="", parameters={}, detector={},
        config_path="", daemon="", settings=[], targets=(), t_start_ns=1_767_225_600 * 10**9))
    book.merge_listing([{"run": "20260101T000000-rt-0000",
                         "stream": "run/20260101T000000-rt-0000/start",
                         "t_start": 1_767_225_600 * 10**9, "t_stop": 1_767_229_200 * 10**9,
                         "meta": stored.meta}])
    old = book.runs["20260101T000000-rt-0000"]
    assert (old.procedure, old.operator, old.sample, old.status) == ("rt", "bob", "TES B1",
                                                                    "completed")
    assert old.t_start == 1_767_225_600.0 and old.t_stop == 1_767_229_200.0
    assert [r.run_id for r in book.listed()][-1] == "20260101T000000-rt-0000"


def test_the_layout_round_trips_and_garbage_gives_the_default() -> None:
    layout = Layout("Charts", [{"title": "MXC", "streams": ["fridge1/mxc"], "log_y": True,
                                "span_s": 600}], {"mxc": 600.0}, "tes1")
    assert Layout.from_json(layout.to_json()) == layout
    assert Layout.from_json("{not json") == Layout()
    assert Layout.from_json('{"view": "Nope", "charts": [{"title": 1}]}') == Layout()
