"""The daemon's alarm forwarder alone: correlation, busy, timeout, no alarm service; and the
ops protocol's parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from daq.alarms.ops import AlarmOp, OpError, parse
from daq.daemon.alarm_ops import AlarmForwarder
from tests.procs import free_port


class Finished:
    """Collects what the forwarder answers (the control server's _finish)."""

    def __init__(self) -> None:
        self.answers: list[tuple[bytes, dict[str, Any], dict[str, Any]]] = []

    def __call__(self, identity: bytes, request: dict[str, Any], who: dict[str, str],
                 result: dict[str, Any], *, audited: dict[str, Any]) -> None:
        self.answers.append((identity, result, audited))


@pytest.fixture
def service() -> Iterator[tuple[zmq.Socket, str]]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    url = f"tcp://127.0.0.1:{free_port()}"
    sock.bind(url)
    yield sock, url
    sock.close()


def _pump_until(forwarder: AlarmForwarder, finished: Finished, count: int,
                timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while len(finished.answers) < count and time.monotonic() < end:
        forwarder.pump(finished)
        time.sleep(0.01)


def test_requests_are_forwarded_with_who_and_answers_matched_by_id(
        service: tuple[zmq.Socket, str]) -> None:
    sock, url = service
    forwarder = AlarmForwarder(url, timeout_s=5)
    forwarder.open(zmq.Context.instance())
    finished = Finished()
    try:
        who = {"role": "operator", "key": "", "client": "alice"}
        forwarder.forward(b"c1", {"op": "alarm_ack", "alarms": ["a", "b"], "comment": "ok",
                                  "target": "sneaky"}, who, finished)
        forwarder.forward(b"c2", {"op": "alarm_list"}, who, finished)
        got = []
        end = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < end:
            forwarder.pump(finished)  # sends what waited for the connection
            if sock.poll(10):
                got.append(sock.recv_multipart())
        assert not finished.answers
        bodies = [json.loads(frames[-1]) for frames in got]
        assert bodies[0] == {"alarms": ["a", "b"], "comment": "ok", "id": 1, "op": "ack",
                             "who": who}
        assert bodies[1]["op"] == "list"
        for frames, body in reversed(list(zip(got, bodies, strict=True))):  # out of order
            sock.send_multipart([frames[0], b"", json.dumps({"id": body["id"], "ok": True,
                                                             "alarms": [body["op"]]}).encode()])
        _pump_until(forwarder, finished, 2)
    finally:
        forwarder.close()
    answers = {identity: (result, audited) for identity, result, audited in finished.answers}
    assert answers[b"c1"][0] == {"ok": True, "alarms": ["ack"]}
    assert answers[b"c2"][0] == {"ok": True, "alarms": ["list"]}
    assert answers[b"c1"][1]["target"] == "a, b" and answers[b"c1"][1]["value"] == {
        "comment": "ok"}


def test_busy_and_timeout_get_clear_answers(service: tuple[zmq.Socket, str]) -> None:
    _, url = service
    forwarder = AlarmForwarder(url, timeout_s=0.3, max_pending=2)
    forwarder.open(zmq.Context.instance())
    finished = Finished()
    try:
        for i in range(3):
            forwarder.forward(f"c{i}".encode(), {"op": "alarm_list"}, {}, finished)
        assert finished.answers[0][0] == b"c2"
        assert finished.answers[0][1]["error"].startswith("busy: 2 alarm requests are waiting")
        _pump_until(forwarder, finished, 3)
    finally:
        forwarder.close()
    assert [a[1]["error"] for a in finished.answers[1:]] == [
        f"the alarm service at {url} did not answer within 0.3 s"] * 2
    assert forwarder.pending == 0 and forwarder.timeouts == 2


def test_without_an_alarm_service_every_op_is_refused_saying_so() -> None:
    finished = Finished()
    nobody = AlarmForwarder(None)
    nobody.open(zmq.Context.instance())
    nobody.forward(b"c", {"op": "alarm_ack", "alarm": "x"}, {}, finished)
    assert "set daemon.alarms_url" in finished.answers[0][1]["error"]
    gone = AlarmForwarder(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.3)
    gone.open(zmq.Context.instance())
    try:
        gone.forward(b"c", {"op": "alarm_ack", "alarm": "x"}, {}, finished)
        _pump_until(gone, finished, 2)
    finally:
        gone.close()
    assert finished.answers[1][1]["error"].endswith("is not reachable (nothing was sent)")


def test_the_protocol_parses_and_refuses() -> None:
    request = parse(json.dumps({"id": 1, "op": "shelve", "alarm": "a", "duration_s": 60,
                                "reason": "work", "who": {"client": "bob", "role": "operator"}})
                    .encode())
    assert request.op is AlarmOp.SHELVE and request.alarms == ("a",)
    assert request.duration_s == 60.0 and request.who.text == "bob (operator)"
    for body, why in (({"op": "ack"}, "ack needs the alarm id"),
                      ({"op": "shelve", "alarms": ["a", "b"], "duration_s": 1},
                       "shelve takes one alarm at a time"),
                      ({"op": "list", "everything": "yes"}, "'everything' must be"),
                      ({"op": "ack", "alarms": "a"}, "'alarms' must be a list")):
        with pytest.raises(OpError, match=why):
            parse(json.dumps(body).encode())
