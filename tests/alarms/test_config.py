"""The alarms section: typed, validated at load; every mistake names file, key path and reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from daq.alarms.config import ActionOp, AlarmsConfig, Severity
from daq.alarms.notify import check_urls
from daq.config import load_config
from daq.config_schema import from_mapping
from daq.errors import ConfigError
from daq.messages import InstrumentState
from tests.procs import ROOT, Service

GOOD = """
alarms:
  name: alarms-test
  lab_states:
    warm: {stream: fridge1/mxc_control, above: 1.0, deadband: 0.1}
  rules:
    - name: mxc_warm
      severity: critical
      when: {stream: fridge1/mxc_control, above: 0.03, deadband: 0.002}
      delay_s: 60
      suppress_in: [warm]
      guidance: Check the still heater.
      action: {op: set, target: fridge1/sample_heater_range, value: 0}
    - name: t4k_rising
      when: {stream: fridge1/t4k, rate_above: 1.0, per: h, window_s: 600}
    - name: ls336_gone
      when: {instrument: fridge1/ls336, status_in: [disconnected, reconnecting]}
    - name: still_combo
      when:
        all:
          - {stream: fridge1/still_heater, above: 0.001}
          - {stream: fridge1/p_still, below: 0.01}
  notifications:
    routes: {critical: ["json://127.0.0.1:9/hook"]}
    escalation: [{after_s: 600, urls: ["mailto://127.0.0.1:25?from=alarms@lab.local&to=a@b.c"]}]
"""


def _load(tmp_path: Path, text: str) -> AlarmsConfig:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    config = load_config(path).alarms
    assert config is not None
    return config


def test_a_full_section_loads_typed(tmp_path: Path) -> None:
    config = _load(tmp_path, GOOD)
    assert config.name == "alarms-test"
    warm = config.rules[0]
    assert warm.severity is Severity.CRITICAL and warm.when.kind == "threshold"
    assert warm.action is not None and warm.action.op is ActionOp.SET
    assert config.rules[1].when.kind == "rate" and config.rules[1].severity is Severity.WARNING
    assert config.rules[2].when.status_in == (InstrumentState.DISCONNECTED,
                                              InstrumentState.RECONNECTING)
    assert config.rules[3].when.streams() == {"fridge1/still_heater", "fridge1/p_still"}
    assert config.state_path.parts[-2:] == ("state", "alarms-test")
    check_urls(config.notifications)  # Apprise understands every URL


@pytest.mark.parametrize(("change", "where", "why"), [
    ("when: {stream: fridge1/mxc_control, above: 0.03, rate_above: 1.0}",
     "alarms.rules[0].when", "a condition is exactly one of"),
    ("when: {stream: fridge1/mxc_control, above: 0.03, below: 0.01}",
     "alarms.rules[0].when", "give above or below, not both"),
    ("when: {stream: fridge1/mxc_control, abov: 0.03}", "alarms.rules[0].when.abov",
     "unknown key 'abov'"),
    ("when: {stream: mxc_control, above: 0.03}", "alarms.rules[0].when",
     "must be source/channel"),
    ("when: {instrument: fridge1/ls336, status_in: [gone]}",
     "alarms.rules[0].when.status_in[0]", "expected one of"),
    ("severity: fatal", "alarms.rules[0].severity", "expected one of 'info', 'warning', "
                                                   "'critical'"),
    ("suppress_in: [wram]", "alarms", "rules[0].suppress_in[0]: no lab state 'wram'"),
])
def test_a_malformed_rule_names_file_key_path_and_reason(tmp_path: Path, change: str,
                                                         where: str, why: str) -> None:
    key = change.split(":", 1)[0]
    rule = {"when": "      when: {stream: fridge1/mxc_control, above: 0.03}",
            "severity": "      severity: warning",
            "suppress_in": "      suppress_in: []"}
    lines = [f"      {change}" if k == key else line for k, line in rule.items()]
    text = ("alarms:\n  lab_states: {warm: {stream: fridge1/mxc_control, above: 1.0}}\n"
            "  rules:\n    - name: r1\n" + "\n".join(lines) + "\n")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key_path == where
    assert why in str(err.value)


def test_duplicate_names_and_bad_urls_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"rules\[1\].name: 'a' is already the name of "
                                          r"rules\[0\]"):
        from_mapping(AlarmsConfig, {"rules": [
            {"name": "a", "when": {"stream": "f/x", "above": 1}},
            {"name": "a", "when": {"stream": "f/y", "above": 1}}]}, path="alarms")
    with pytest.raises(ConfigError, match="alarms.notifications: routes.critical.0.: 'smtp.lab' "
                                          "is not an Apprise URL"):
        from_mapping(AlarmsConfig, {"notifications": {"routes": {"critical": ["smtp.lab"]}}},
                     path="alarms")
    config = from_mapping(AlarmsConfig, {"notifications": {"routes": {
        "warning": ["json://127.0.0.1:9/ok", "nosuchscheme://x"]}}}, path="alarms")
    with pytest.raises(ConfigError, match=r"lab.yaml:alarms.notifications.routes.warning\[1\]: "
                                          "Apprise does not understand nosuchscheme://x"):
        check_urls(config.notifications, file="lab.yaml")


def test_an_endpoint_beyond_loopback_needs_curve() -> None:
    with pytest.raises(ConfigError, match="alarms endpoint tcp://192.0.2.1:7130 is not "
                                          "loopback"):
        from_mapping(AlarmsConfig, {"bind": "tcp://192.0.2.1:7130"}, path="alarms")


def test_the_service_refuses_to_start_on_a_malformed_rule(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("alarms:\n  rules:\n    - name: mxc_warm\n"
                    "      when: {stream: fridge1/mxc_control, above: 0.03, "
                    "rate_above: 1.0}\n")
    service = Service("-m", "daq.cli", "alarms", str(path), name="alarms")
    code = service.proc.wait(timeout=60)
    service.stop()
    assert code == 2
    text = "\n".join(service.lines)
    print(text)
    assert f"{path}:alarms.rules[0].when: a condition is exactly one of" in text
    assert "this one has threshold, rate" in text
    assert ROOT.exists() and sys.executable


def test_the_shipped_configs_run_the_alarm_service() -> None:
    from daq.alarms.actions import resolve_daemons
    from daq.up import plan

    for name in ("sim_lab.yaml", "facility.yaml"):
        path = ROOT / "configs" / name
        lab = load_config(path)
        assert lab.alarms is not None and lab.alarms.rules
        check_urls(lab.alarms.notifications, file=str(path))
        resolve_daemons(lab)
        names = [child.name for child in plan(path, headless=True)]
        assert names[-1] == "alarms" and names.index("alarms") > names.index("daemon")
    facility = load_config(ROOT / "configs" / "facility.yaml")
    assert facility.alarms is not None
    assert {r.name.split("_")[0] for r in facility.alarms.rules} == {
        "fridge1", "fridge2", "fridge3", "fridge4"}
    urls = {facility.for_daemon(n).daemon.alarms_url for n in facility.daemon_names}
    assert urls == {facility.alarms.bind}
