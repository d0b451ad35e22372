"""The alarm service as a process with a broker and a logger, fed by a publisher in this test.

* a flapping input is one alarm and a bounded number of notices (the bound is printed);
* a notice to an address nobody answers is retried and becomes the ``notify_failed``
  alarm (told to the addresses that work), never lost silently;
* the daemon's control endpoint (CURVE, roles, audit) forwards alarm operations: a
  read-only client's acknowledgement and shelve are refused and audited, an
  operator's shelf ends by itself;
* every transition is in the logger's store, and the ``events`` query with a stream
  prefix gives the history of an alarm and the newest state of each;
* malformed ops requests are answered and the service goes on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq

from daq.bus import Publisher
from daq.client import Lab
from daq.config import LabConfig, load_config
from daq.daemon.alarm_ops import AlarmForwarder
from daq.daemon.config import ControlEndpointConfig, CurveServerConfig
from daq.daemon.control import ControlServer
from daq.daemon.safety import Limits
from daq.errors import ControlError
from daq.logger.history import HistoryClient
from daq.messages import Kind, Message, scalar
from tests.alarms.receivers import HttpReceiver
from tests.procs import Service, bus_section, free_port, logger_section, qupdaq
from tests.waiting import Feed, wait_until

NAME = "alarms-svc"
MIN_INTERVAL_S = 2.0


class Services:
    """Broker, logger and the alarm service; a publisher of our own for the inputs."""

    def __init__(self, tmp_path: Path, http: HttpReceiver) -> None:
        self.dead_url = f"json://user:s3cret@127.0.0.1:{free_port()}/nobody"
        data: dict[str, Any] = {
            "lab": {"name": "svc-lab"},
            "bus": bus_section(),
            "logger": logger_section(tmp_path, "logger-svc", sinks=["sqlite"],
                                     status_period_s=1.0),
            "alarms": {
                "name": NAME, "bind": f"tcp://127.0.0.1:{free_port()}",
                "state_dir": str(tmp_path / "state"), "period_s": 0.1, "status_period_s": 1.0,
                "flood": {"window_s": 0.2, "min_alarms": 10},
                "system": {"notify_failed_severity": "warning"},
                "notifications": {
                    "routes": {"warning": [http.url("warning")], "critical": [self.dead_url]},
                    "min_interval_s": MIN_INTERVAL_S, "retry_s": 0.2, "max_retry_s": 0.5,
                    "alarm_after_failures": 2},
                "rules": [
                    {"name": "flappy", "severity": "warning", "latch": False,
                     "when": {"stream": "f1/x", "above": 1.0}},
                    {"name": "unreachable", "severity": "critical",
                     "when": {"stream": "f1/y", "above": 1.0}},
                    {"name": "shelvable", "severity": "warning",
                     "when": {"stream": "f1/z", "above": 1.0}},
                ]},
        }
        self.path = tmp_path / "lab.yaml"
        self.path.write_text(yaml.safe_dump(data))
        self.config = load_config(self.path)
        self.services: list[Service] = []
        self.pub: Publisher | None = None
        try:
            for args, ready in ((("broker",), "broker ready"), (("logger",), "logger ready"),
                                (("alarms",), "alarms ready")):
                service = qupdaq(*args, str(self.path))
                self.services.append(service)
                service.wait_line(ready)
            bus = self.config.bus
            self.pub = Publisher(bus.publish_url, name="test-inputs", heartbeat_s=0.5)
            assert self.pub.wait_for_subscriber("data/f1/x", timeout_s=20)
        except BaseException:
            self.stop()
            raise

    def send(self, channel: str, value: float) -> None:
        assert self.pub is not None
        self.pub.publish(scalar("f1", channel, value))

    def feed(self) -> Feed:
        from daq.bus import Subscriber

        bus = self.config.bus
        return Feed(Subscriber(bus.subscribe_url, [f"alarm/{NAME}/"],
                               snapshot_url=bus.snapshot_url))

    def stop(self) -> None:
        if self.pub is not None:
            self.pub.close()
        for service in reversed(self.services):
            service.stop()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, HttpReceiver]]:
    with HttpReceiver() as http:
        running = Services(tmp_path_factory.mktemp("alarms-svc"), http)
        try:
            yield running, http
        finally:
            running.stop()


def test_a_flapping_input_is_one_alarm_with_a_bounded_number_of_notices(
        services: tuple[Services, HttpReceiver]) -> None:
    svc, http = services
    feed = svc.feed()
    try:
        flap_s, step_s = 8.0, 0.25
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < flap_s:
            svc.send("x", 2.0 if i % 2 == 0 else 0.0)
            i += 1
            time.sleep(step_s)  # the input's own pace: it flips every 0.25 s
        svc.send("x", 0.0)
        raised = [m for m in _drain(feed, 1.0) if m.channel == "flappy"
                  and m.meta["transition"] == "raised"]
        # after the flapping: the last digest comes within one interval
        time.sleep(MIN_INTERVAL_S + 0.5)
        notices = [b for b in http.bodies if "flappy" in b["title"]]
    finally:
        feed.close()
    bound = 1 + math.ceil(flap_s / MIN_INTERVAL_S) + 1
    print(f"flapping for {flap_s:g} s: {len(raised)} raises, {len(notices)} notices "
          f"(bound {bound} = 1 + {flap_s:g} s / {MIN_INTERVAL_S:g} s + 1 final digest)")
    assert len(raised) >= 10
    assert {m.channel for m in feed.messages if m.meta.get("transition") == "raised"
            and m.channel.startswith("flap")} == {"flappy"}  # one alarm
    assert 2 <= len(notices) <= bound
    assert notices[0]["title"].startswith("WARNING flappy")
    assert any("changes held back" in n["title"] for n in notices[1:])


def _drain(feed: Feed, quiet_s: float) -> list[Message]:
    """Everything the feed receives until ``quiet_s`` of silence."""
    while (msg := feed.sub.recv(quiet_s)) is not None:
        feed.messages.append(msg)
    return feed.messages


def test_an_undeliverable_notice_becomes_an_alarm_itself(
        services: tuple[Services, HttpReceiver]) -> None:
    svc, http = services
    feed = svc.feed()
    try:
        svc.send("y", 5.0)
        feed.transition("unreachable", "raised", 20)
        failed = feed.transition("notify_failed", "raised", 20)
    finally:
        feed.close()
    reason = failed.meta["reason"]
    assert reason.startswith(f"json://127.0.0.1:{svc.dead_url.rsplit(':', 1)[1].split('/')[0]}")
    assert "s3cret" not in json.dumps(failed.meta)  # the address's secret never travels
    wait_until(lambda: [b for b in http.bodies if "notify_failed" in b["title"]],
               "the notify_failed notice at the address that works")


def _curve_control(config: LabConfig, audits: list[Message]) -> tuple[ControlServer, dict[str,
                                                                                         Any]]:
    server_public, server_secret = zmq.curve_keypair()
    op_public, op_secret = zmq.curve_keypair()
    ro_public, ro_secret = zmq.curve_keypair()
    assert config.alarms is not None
    endpoint = ControlEndpointConfig(
        bind="tcp://127.0.0.1:0",
        curve=CurveServerConfig(server_secret=server_secret.decode(),
                                clients={op_public.decode(): "operator",
                                         ro_public.decode(): "read-only"}))
    control = ControlServer(endpoint, {}, Limits({}), audits.append, daemon_name="d-curve",
                            alarm_ops=AlarmForwarder(config.alarms.bind))
    keys = {"server_key": server_public.decode(),
            "operator": (op_public.decode(), op_secret.decode()),
            "reader": (ro_public.decode(), ro_secret.decode())}
    return control, keys


def test_roles_apply_to_alarm_operations_and_a_shelf_ends_by_itself(
        services: tuple[Services, HttpReceiver]) -> None:
    svc, _ = services
    audits: list[Message] = []
    control, keys = _curve_control(svc.config, audits)
    url = control.start()
    feed = svc.feed()
    try:
        svc.send("z", 5.0)
        feed.transition("shelvable", "raised", 20)

        def client(role: str) -> Lab:
            public, secret = keys[role]
            return Lab(svc.config, control_url=url, server_key=keys["server_key"],
                       public_key=public, secret_key=secret, client=role, timeout_s=10)

        with client("reader") as reader:
            rows = {r["alarm"]: r for r in reader.alarm_list()}
            assert rows["shelvable"]["state"] == "active_unack"
            with pytest.raises(ControlError, match="alarm_ack needs the operator role; this "
                                                   "client is read-only"):
                reader.alarm_ack("shelvable")
            with pytest.raises(ControlError, match="alarm_shelve needs the operator role"):
                reader.alarm_shelve("shelvable", 60, "not mine to shelve")
        with client("operator") as operator:
            with pytest.raises(ControlError, match="shelving needs a reason"):
                operator.alarm_shelve("shelvable", 1.5, "")
            [row] = operator.alarm_shelve("shelvable", 1.5, "pump service")
            assert row["shelved"] is True and row["shelved_by"] == "operator (operator)"
            shelved_at = time.monotonic()
            with pytest.raises(ControlError, match="no alarm 'nonesuch'"):
                operator.alarm_ack("nonesuch")
        unshelved = feed.transition("shelvable", "unshelved", 10)
        assert unshelved.meta["detail"]["who"] == "shelf time over"
        assert 1.0 < time.monotonic() - shelved_at < 4.0
        assert unshelved.meta["state"] == "active_unack"  # still there, still unacknowledged
    finally:
        feed.close()
        control.stop()
    refused = [a.meta for a in audits if a.kind is Kind.AUDIT and a.meta["outcome"] == "refused"
               and a.meta["who"]["role"] == "read-only"]
    assert [a["op"] for a in refused] == ["alarm_ack", "alarm_shelve"]
    ok = [a.meta for a in audits if a.meta["op"] == "alarm_shelve" and a.meta["outcome"] == "ok"]
    assert ok and ok[0]["target"] == "shelvable" and ok[0]["who"]["client"] == "operator"
    assert ok[0]["value"] == {"duration_s": 1.5, "reason": "pump service"}


def test_the_history_of_every_alarm_is_in_the_store(
        services: tuple[Services, HttpReceiver]) -> None:
    svc, _ = services
    assert svc.config.logger is not None
    with HistoryClient(svc.config.logger.history_endpoint) as history:
        def flappy() -> list[dict[str, Any]]:
            return [e for e in history.events_under(f"alarm/{NAME}/flappy", kind="alarm",
                                                    limit=10000)]
        events = wait_until(lambda: len(flappy()) >= 20 and flappy(), "flappy's history")
        latest = history.events_under(f"alarm/{NAME}/", kind="alarm", latest=True)
    transitions = [e["meta"]["transition"] for e in events]
    assert transitions[0] == "raised" and {"raised", "returned", "notified"} <= set(transitions)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    streams = [e["stream"] for e in latest]
    assert len(streams) == len(set(streams))  # one per alarm: its newest
    assert {f"alarm/{NAME}/flappy", f"alarm/{NAME}/unreachable"} <= set(streams)
    newest = next(e for e in latest if e["stream"].endswith("/flappy"))
    assert newest["t"] == events[-1]["t"]


def test_malformed_ops_requests_are_answered_and_the_service_goes_on(
        services: tuple[Services, HttpReceiver]) -> None:
    svc, _ = services
    assert svc.config.alarms is not None
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(svc.config.alarms.bind)
    try:
        for body, error in ((b"not json", "not JSON"), (b"[1]", "not a JSON object"),
                            (json.dumps({"id": 3, "op": "explode"}).encode(), "unknown op"),
                            (json.dumps({"id": 4, "op": "shelve", "alarm": "flappy",
                                         "duration_s": "soon"}).encode(), "duration_s")):
            sock.send_multipart([b"", body])
            assert sock.poll(5000)
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["ok"] is False and error in reply["error"], reply
        sock.send_multipart([b"", json.dumps({"id": 5, "op": "ping"}).encode()])
        assert sock.poll(5000)
        assert json.loads(sock.recv_multipart()[-1]) == {"ok": True, "value": NAME, "id": 5}
    finally:
        sock.close()
