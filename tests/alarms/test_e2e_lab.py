"""The alarm system end to end against the simulated lab, with real notifications.

Broker, logger, daemon, the alarm service and a separately started ls336
simulator (the victim) run as real processes on random ports; the rest of
the simulated lab runs in this test process so that the test reaches the
372's fault API. Notices go through Apprise to a real SMTP server
(``aiosmtpd``) and a real HTTP server in this process. Each test drives the
lab into one rule's condition and follows the alarm on the bus: raised,
latched (cleared but unacknowledged), acknowledged, in that order, and the
notices that reached the servers:

* the mixing chamber heated through the 372's heater (setpoint and heater
  range through ``Lab``), then let cool: a threshold rule;
* the MXC thermometer made open: a bad-quality rule; the alarm service is
  killed (SIGKILL) while the alarm is active and unacknowledged and started
  again: the alarm is still there, unacknowledged, and nothing is sent twice;
* the ls336 simulator killed and started again: an instrument-status rule;
* the daemon stopped: the dead-man alarm, acknowledged once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.logger.history import HistoryClient
from daq.messages import Kind
from simulators.config import load_simulation_config
from simulators.lab import SimLab
from tests.alarms.receivers import HttpReceiver, SmtpReceiver
from tests.procs import Service, qupdaq, sim_lab_config
from tests.waiting import Feed, wait_until

NAME = "alarms-e2e"
TIME_SCALE = 50.0
MXC_LIMIT_K = 0.018  # the simulated fridge sits at ~13 mK


class System:
    """The processes, the in-process simulated lab and the two notification receivers."""

    def __init__(self, tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver) -> None:
        self.http, self.smtp = http, smtp
        self.path, victim_path, data = sim_lab_config(tmp_path, time_scale=TIME_SCALE,
                                                      victim="ls336")
        assert victim_path is not None
        self.victim_path = victim_path
        sim = data["simulation"]
        sim["bluefors_log"]["directory"] = ""
        for name, item in sim["instruments"].items():
            item["enabled"] = name == "ls372"  # ls336 is the victim, served apart
        data["instruments"] = {k: v for k, v in data["instruments"].items()
                               if k in ("ls372", "ls336")}
        data["limits"] = {k: v for k, v in data["limits"].items() if k.startswith("fridge1/")}
        alarms = data["alarms"]
        alarms.update({
            "name": NAME, "period_s": 0.2, "status_period_s": 1.0,
            "flood": {"window_s": 0.3, "min_alarms": 10},
            "system": {"daemon_lost_s": 3.0, "interlock_severity": "warning"},
            "lab_states": {},
            "notifications": {"routes": {"critical": [http.url(), smtp.url()],
                                         "warning": [http.url("warning")]},
                              "min_interval_s": 0, "retry_s": 0.5, "title_prefix": "[e2e] "},
            "rules": [
                {"name": "mxc_warm", "severity": "critical", "delay_s": 1.0,
                 "when": {"stream": "fridge1/mxc_control", "above": MXC_LIMIT_K,
                          "deadband": 0.001},
                 "guidance": "Switch the sample heater off.",
                 "action": {"op": "set", "target": "fridge1/sample_heater_range",
                            "value": 0}},
                {"name": "mxc_thermometer", "severity": "critical",
                 "when": {"stream": "fridge1/mxc_control", "bad_quality": True},
                 "guidance": "Check the thermometer wiring."},
                {"name": "ls336_link", "severity": "warning",
                 "when": {"instrument": "fridge1/ls336",
                          "status_in": ["stale", "reconnecting", "disconnected"]}},
            ]})
        self.path.write_text(yaml.safe_dump(data))
        self.config = load_config(self.path)
        self.services: list[Service] = []
        self.sim = SimLab(load_simulation_config(self.path)).start()
        self.victim: Service | None = None
        self.daemon: Service | None = None
        self.alarms: Service | None = None
        try:
            self._start(qupdaq("broker", str(self.path)), "broker ready")
            self._start(qupdaq("logger", str(self.path)), "logger ready")
            self.start_victim()
            self.start_daemon()
            self.start_alarms()
        except BaseException:
            self.stop()
            raise

    def _start(self, service: Service, ready: str) -> Service:
        self.services.append(service)
        service.wait_line(ready)
        return service

    def start_victim(self) -> None:
        self.victim = self._start(qupdaq("sim", str(self.victim_path), name="victim"),
                                  "sim ready")

    def start_daemon(self) -> None:
        self.daemon = self._start(qupdaq("daemon", str(self.path)), "daemon ready")

    def start_alarms(self) -> str:
        self.alarms = qupdaq("alarms", str(self.path))
        self.services.append(self.alarms)
        return self.alarms.wait_line("alarms ready")

    @property
    def ls372(self) -> Any:
        return self.sim.servers["ls372"]

    def lab(self, client: str = "night-shift") -> Lab:
        return Lab(self.config, client=client, timeout_s=15)

    def feed(self) -> Feed:
        bus = self.config.bus
        return Feed(Subscriber(bus.subscribe_url, [f"alarm/{NAME}/", f"status/{NAME}/"],
                               snapshot_url=bus.snapshot_url))

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        running = System(tmp_path_factory.mktemp("alarms-lab"), http, smtp)
        try:
            yield running
        finally:
            running.stop()


def _states(feed: Feed, alarm: str) -> list[str]:
    """The state changes of ``alarm`` in order (deliveries and actions left out)."""
    return [t for a, t, _ in feed.transitions(alarm) if t not in ("notified", "action")]


def test_heated_mixing_chamber_raises_latches_and_is_acknowledged_from_the_terminal(
        system: System) -> None:
    feed = system.feed()
    try:
        with system.lab() as lab:
            lab.set("fridge1/sample_heater_mode", 5)  # closed loop on the control input
            lab.set("fridge1/mxc_setpoint", 0.05)
            lab.set("fridge1/sample_heater_range", 0.00316)
            started = time.monotonic()
            raised = feed.transition("mxc_warm", "raised", 90)
            print(f"mxc_warm raised {time.monotonic() - started:.1f} s after the heater went on:"
                  f" {raised.meta['reason']}")
            assert raised.meta["state"] == "active_unack" and raised.meta["severity"] == "critical"
            assert raised.meta["value"] > MXC_LIMIT_K
            # the rule's automated action switches the heater off through the daemon
            action = feed.transition("mxc_warm", "action", 30)
            assert action.meta["detail"]["ok"] is True, action.meta["detail"]
            assert action.meta["detail"]["target"] == "fridge1/sample_heater_range"
            assert lab.get("fridge1/sample_heater_range") == 0
            assert system.ls372.state.outputs[0].loop.range == 0  # off at the instrument
            cleared = feed.transition("mxc_warm", "cleared", 90)
            assert cleared.meta["state"] == "cleared_unack"  # latched: waits for a person
        # the person on call, on SSH at night
        ack = qupdaq("alarms", "ack", str(system.path), "mxc_warm", "--comment", "heater off",
                     "--client", "night-shift")
        assert ack.proc.wait(timeout=60) == 0, ack.lines
        assert any("mxc_warm" in line and "normal" in line for line in ack.lines)
        done = feed.transition("mxc_warm", "acknowledged", 30)
        assert done.meta["state"] == "normal" and done.meta["acked_by"].startswith("night-shift")
        assert done.meta["ack_comment"] == "heater off"
        assert _states(feed, "mxc_warm") == ["raised", "cleared", "acknowledged"]
        notified = feed.transition("mxc_warm", "notified", 30)
        assert notified.meta["detail"]["notice"] == "raise"
    finally:
        feed.close()
    titles = wait_until(lambda: [t for t in system.http.titles() if "mxc_warm" in t],
                        "the web hook's notice")
    subjects = wait_until(lambda: [s for s in system.smtp.subjects() if "mxc_warm" in s],
                          "the e-mail")
    assert titles == ["[e2e] CRITICAL mxc_warm: fridge1/mxc_control = "
                      f"{raised.meta['value']:.4g} is above {MXC_LIMIT_K:g}"]
    assert subjects == titles
    [mail] = [m for m in system.smtp.mails() if "mxc_warm" in m["subject"]]
    assert "What to do: Switch the sample heater off." in mail["body"]
    assert f"qupdaq alarms ack {system.path} mxc_warm" in mail["body"]
    # the audit trail: the action (by the alarm) and the acknowledgement (by the person)
    assert system.config.logger is not None
    with HistoryClient(system.config.logger.history_endpoint) as history:
        def audits() -> list[dict[str, Any]]:
            return [e["meta"] for e in history.events(kind="audit", limit=10000)]
        acted = wait_until(lambda: [a for a in audits()
                                    if a["who"]["client"].startswith("alarm mxc_warm")],
                           "the action's audit event")
        acked = wait_until(lambda: [a for a in audits() if a["op"] == "alarm_ack"],
                           "the acknowledgement's audit event")
    assert acted[0]["target"] == "fridge1/sample_heater_range" and acted[0]["outcome"] == "ok"
    assert acked[0]["target"] == "mxc_warm" and acked[0]["who"]["client"] == "night-shift"
    assert acked[0]["outcome"] == "ok" and acked[0]["value"] == {"comment": "heater off"}


def test_open_thermometer_survives_a_killed_alarm_service_without_a_second_notice(
        system: System) -> None:
    feed = system.feed()
    http_start, smtp_start = len(system.http.bodies), len(system.smtp.envelopes)
    try:
        system.ls372.set_open_sensor("A", True)
        raised = feed.transition("mxc_thermometer", "raised", 30)
        assert "SENSOR_ERROR" in raised.meta["reason"]
        # killed when every notice this fault causes is delivered and known to the service:
        # the thermometer's alarm (web hook and mail) and the two interlocks the blind
        # thermometer trips (web hook). A kill while a notice is in flight is the subject
        # of test_e2e_crash.py.
        daemon = system.config.daemon.name
        for alarm, routes in (("mxc_thermometer", 2), (f"interlock.{daemon}.mxc_blind", 1),
                              (f"interlock.{daemon}.mxc_overheat", 1)):
            feed.wait(lambda m, alarm=alarm, routes=routes: m.kind is Kind.ALARM
                      and m.channel == alarm
                      and len(m.meta.get("delivered", {}).get("raise", [])) >= routes, 30,
                      f"{alarm} delivered to {routes} address(es)")
        wait_until(lambda: len([s for s in system.smtp.subjects()
                                if "mxc_thermometer" in s]) == 1, "the e-mail")
        sent_before = (len(system.http.bodies), len(system.smtp.envelopes))
        titles_before = set(system.http.titles()[http_start:]
                            + system.smtp.subjects()[smtp_start:])
        assert system.alarms is not None
        system.alarms.kill()  # SIGKILL: no clean stop, no last words
        ready = system.start_alarms()
        assert "restored=" in ready and "restored=0" not in ready
        # the new process has evaluated and published its status a few times
        new_pid = feed.wait(lambda m: m.kind is Kind.STATUS and m.source == NAME
                            and m.meta.get("pid") == system.alarms.proc.pid
                            and "not clean" in m.meta.get("last_stop", ""), 30,
                            "status of the restarted service")
        assert new_pid.meta["last_stop"].startswith("not clean")
        with system.lab() as lab:
            rows = {r["alarm"]: r for r in lab.alarm_list()}
        assert rows["mxc_thermometer"]["state"] == "active_unack"
        assert rows["mxc_thermometer"]["occurrence"] == raised.meta["occurrence"]
        time.sleep(3.0)  # what would be resent would have been by now (retry 0.5 s)
        after = system.http.titles()[sent_before[0]:] + system.smtp.subjects()[sent_before[1]:]
        assert not after, f"sent again after the restart: {after} (before: {titles_before})"
        system.ls372.clear_faults()
        cleared = feed.transition("mxc_thermometer", "cleared", 30)
        assert cleared.meta["state"] == "cleared_unack"
        with system.lab() as lab:
            [row] = lab.alarm_ack("mxc_thermometer", comment="wiring fixed")
        assert row["state"] == "normal"
        feed.transition("mxc_thermometer", "acknowledged", 30)
        assert _states(feed, "mxc_thermometer") == ["raised", "cleared", "acknowledged"]
    finally:
        system.ls372.clear_faults()
        feed.close()
    assert len([s for s in system.smtp.subjects() if "mxc_thermometer" in s]) == 1


def test_killed_instrument_raises_its_link_alarm_and_clears_when_it_is_back(
        system: System) -> None:
    feed = system.feed()
    try:
        assert system.victim is not None
        system.victim.kill()
        raised = feed.transition("ls336_link", "raised", 60)
        assert "fridge1/ls336 is" in raised.meta["reason"]
        wait_until(lambda: [t for t in system.http.titles() if "ls336_link" in t],
                   "the warning's notice")
        system.start_victim()
        cleared = feed.transition("ls336_link", "cleared", 60)
        assert cleared.meta["state"] == "cleared_unack"
        with system.lab() as lab:
            lab.alarm_ack("ls336_link")
        feed.transition("ls336_link", "acknowledged", 30)
        assert _states(feed, "ls336_link") == ["raised", "cleared", "acknowledged"]
    finally:
        feed.close()
    assert not [s for s in system.smtp.subjects() if "ls336_link" in s]  # warnings: web only


def test_stopped_daemon_raises_the_dead_man_alarm(system: System) -> None:
    feed = system.feed()
    alarm = f"daemon_lost.{system.config.daemon.name}"
    try:
        assert system.daemon is not None
        system.daemon.stop()
        raised = feed.transition(alarm, "raised", 30)
        assert "no heartbeat from daemon" in raised.meta["reason"]
        assert "stopped cleanly" in raised.meta["reason"]
        wait_until(lambda: [s for s in system.smtp.subjects() if alarm in s], "the e-mail")
        system.start_daemon()
        cleared = feed.transition(alarm, "cleared", 30)
        assert cleared.meta["state"] == "cleared_unack"
        with system.lab() as lab:
            lab.alarm_ack(alarm, comment="restarted")
        feed.transition(alarm, "acknowledged", 30)
        assert _states(feed, alarm) == ["raised", "cleared", "acknowledged"]
    finally:
        feed.close()
