"""The daemon's pieces with an in-memory instrument: worker faults, control checks, audit, CURVE."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from daq.daemon.config import (
    ControlEndpointConfig,
    CurveServerConfig,
    InstrumentConfig,
    LimitConfig,
    PollConfig,
    TargetConfig,
)
from daq.daemon.control import ControlServer
from daq.daemon.safety import Limits
from daq.daemon.worker import InstrumentWorker, Request
from daq.errors import BusError, ConfigError, ControlError
from daq.messages import InstrumentState, Kind, Message
from tests.daq.fake_instrument import FakeConnection, FakeInstrument

CONFIG = InstrumentConfig(
    driver="fake:Fake", resource="FAKE::1", source="fridge1",
    poll=[PollConfig(spec="A", channel="mxc", period_s=0.05)],
    controls=[TargetConfig(spec="setpoint", target="mxc_setpoint"),
              TargetConfig(spec="heater_range")],
)


class Sink:
    """Collects what the worker emits."""

    def __init__(self) -> None:
        self.q: queue.Queue[Message] = queue.Queue()

    def __call__(self, msg: Message) -> None:
        self.q.put(msg)

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> Message:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                msg = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if predicate(msg):
                return msg
        raise AssertionError("expected message never came")


@pytest.fixture
def rig() -> Iterator[tuple[InstrumentWorker, FakeInstrument, FakeConnection, Sink]]:
    instrument = FakeInstrument()
    connection = FakeConnection(instrument)
    sink = Sink()
    config = InstrumentConfig(**{**CONFIG.__dict__})
    worker = InstrumentWorker("fake1", config, sink, status_period_s=0.5,
                              connection=connection)  # type: ignore[arg-type]
    worker.start()
    yield worker, instrument, connection, sink
    worker.stop()


def _request(worker: InstrumentWorker, **fields: Any) -> dict[str, Any]:
    box: queue.Queue[dict[str, Any]] = queue.Queue()
    worker.submit(Request(reply=box.put, **fields))
    return box.get(timeout=10)


def test_worker_polls_and_names_samples_as_configured(rig: Any) -> None:
    worker, instrument, _, sink = rig
    first = sink.wait_for(lambda m: m.kind is Kind.DATA)
    second = sink.wait_for(lambda m: m.kind is Kind.DATA)
    assert first.stream == "data/fridge1/mxc" and first.units == "K"
    assert first.meta == {"instrument": "fake1", "spec": "A"}
    assert second.sample_time > first.sample_time
    assert worker.state is InstrumentState.CONNECTED


def test_worker_waits_for_fresh_readings(rig: Any) -> None:
    worker, instrument, _, sink = rig
    sink.wait_for(lambda m: m.kind is Kind.DATA)
    instrument.fresh = False
    time.sleep(0.1)  # let an in-flight poll finish before counting
    reads = instrument.reads
    time.sleep(0.3)  # six periods without a fresh reading: nothing may be read
    assert instrument.reads == reads
    instrument.fresh = True
    sink.wait_for(lambda m: m.kind is Kind.DATA)
    assert instrument.reads > reads


def test_set_validates_before_sending_and_get_reads_back(rig: Any) -> None:
    worker, instrument, _, _ = rig
    assert _request(worker, op="set", target="fridge1/mxc_setpoint", value=0.5) == \
        {"ok": True, "value": 0.5}
    assert _request(worker, op="get", target="fridge1/mxc_setpoint")["value"] == 0.5
    refused = _request(worker, op="set", target="fridge1/mxc_setpoint", value=5)
    assert not refused["ok"]
    assert "value 5 K is out of range; allowed: 0 to 2 K" in refused["error"]
    assert instrument.sets == [("setpoint", 0.5)]


def test_fault_goes_stale_then_reconnecting_then_connected(rig: Any) -> None:
    worker, instrument, connection, sink = rig
    sink.wait_for(lambda m: m.kind is Kind.DATA)
    connection.refuse = True
    instrument.fail_reads = True
    stale = sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "stale")
    assert "no fresh data: fake: timeout on KRDG? A" in stale.meta["message"]
    sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "reconnecting")
    answer = _request(worker, op="get", target="fridge1/mxc_setpoint")
    assert not answer["ok"] and "not connected" in answer["error"]
    instrument.fail_reads = False
    connection.refuse = False
    sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "connected")
    sink.wait_for(lambda m: m.kind is Kind.DATA)
    assert connection.attempts >= 2


def test_stale_channel_is_reported(rig: Any) -> None:
    worker, instrument, _, sink = rig
    sink.wait_for(lambda m: m.kind is Kind.DATA)
    instrument.fresh = False
    stale = sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "stale")
    assert "mxc: no fresh value" in stale.meta["message"]


# ---- the control endpoint -------------------------------------------------------------------


class ControlRig:
    def __init__(self, endpoint: ControlEndpointConfig, limits: dict[str, LimitConfig]) -> None:
        self.instrument = FakeInstrument()
        self.sink = Sink()
        self.worker = InstrumentWorker("fake1", CONFIG, self.sink,
                                       connection=FakeConnection(self.instrument))  # type: ignore[arg-type]
        self.worker.start()
        self.sink.wait_for(lambda m: m.kind is Kind.DATA)  # connected, targets known
        self.server = ControlServer(endpoint, {"fake1": self.worker}, Limits(limits),
                                    self.sink, daemon_name="d1")
        self.url = self.server.start()

    def close(self) -> None:
        self.server.stop()
        self.worker.stop()

    def client(self, **keys: str) -> Any:
        from daq.client import Lab

        return Lab(control_url=self.url, timeout_s=3, client="tester", **keys)

    def audits(self) -> list[Message]:
        out = []
        while True:
            try:
                msg = self.sink.q.get_nowait()
            except queue.Empty:
                return out
            if msg.kind is Kind.AUDIT:
                out.append(msg)


@pytest.fixture
def control() -> Iterator[ControlRig]:
    rig = ControlRig(ControlEndpointConfig(bind="tcp://127.0.0.1:0"),
                     {"fridge1/mxc_setpoint": LimitConfig(min=0, max=0.8, unit="K")})
    yield rig
    rig.close()


def test_control_set_get_list_and_every_command_is_audited(control: ControlRig) -> None:
    with control.client() as lab:
        assert lab.ping() == "d1"
        assert lab.set("fridge1/mxc_setpoint", 0.3) == 0.3
        assert lab.get("fridge1/mxc_setpoint") == 0.3
        targets = {t["target"]: t for t in lab.list()}
        assert targets["fridge1/mxc_setpoint"]["value"] == 0.3
        assert targets["fridge1/mxc_setpoint"]["limits"] == "0 to 0.8 K"
        assert targets["fridge1/mxc_setpoint"]["unit"] == "K"
        with pytest.raises(ControlError, match="outside the lab's limits; allowed: 0 to 0.8 K"):
            lab.set("fridge1/mxc_setpoint", 0.9)
        with pytest.raises(ControlError, match="outside the lab's limits"):
            lab.set("fridge1/mxc_setpoint", -1)
        # No lab limit on the heater range: the driver's own validator refuses, before sending.
        with pytest.raises(ControlError, match="value 99 is out of range; allowed: 0..8"):
            lab.set("fridge1/heater_range", 99)
        with pytest.raises(ControlError, match="unknown target 'fridge1/nope'"):
            lab.set("fridge1/nope", 1)
        with pytest.raises(ControlError, match="no value given"):
            lab.request("set", target="fridge1/mxc_setpoint")
        with pytest.raises(ControlError, match="unknown op 'explode'"):
            lab.request("explode")
    assert control.instrument.sets == [("setpoint", 0.3)]  # refused values never arrived
    deadline = time.monotonic() + 5
    audits: list[Message] = []
    while len(audits) < 9 and time.monotonic() < deadline:
        audits += control.audits()
        time.sleep(0.02)
    summary = [(a.meta["op"], a.meta["target"], a.meta["outcome"]) for a in audits]
    assert ("set", "fridge1/mxc_setpoint", "ok") in summary
    assert ("get", "fridge1/mxc_setpoint", "ok") in summary
    assert ("list", None, "ok") in summary
    assert summary.count(("set", "fridge1/mxc_setpoint", "refused")) == 3
    assert ("set", "fridge1/nope", "refused") in summary
    assert ("set", "fridge1/heater_range", "refused") in summary
    assert ("explode", None, "refused") in summary
    assert all(a.meta["who"]["client"] == "tester" for a in audits)


def test_malformed_requests_get_clear_errors_and_the_server_keeps_going(
    control: ControlRig,
) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(control.url)
    try:
        for bad in (b"not json", b"[1,2]", b"\xff\xfe", b'{"op": "set", "target": 5}'):
            sock.send(bad)
            assert sock.poll(3000)
            reply = sock.recv_json()
            assert reply["ok"] is False and reply["error"]
        sock.send_multipart([b"two", b"frames"])
        assert sock.poll(3000) and "expected one JSON frame" in sock.recv_json()["error"]
    finally:
        sock.close(linger=0)
    with control.client() as lab:
        assert lab.ping() == "d1"


def test_non_loopback_control_without_keys_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="needs CURVE keys"):
        ControlEndpointConfig(bind="tcp://0.0.0.0:7110")
    from daq.config_schema import from_mapping

    with pytest.raises(ConfigError, match="daemon.control: control endpoint tcp://192.0.2.7"):
        from_mapping(ControlEndpointConfig, {"bind": "tcp://192.0.2.7:7110"},
                     path="daemon.control")


def test_curve_roles_and_allow_list() -> None:
    server_public, server_secret = zmq.curve_keypair()
    op_public, op_secret = zmq.curve_keypair()
    ro_public, ro_secret = zmq.curve_keypair()
    stranger_public, stranger_secret = zmq.curve_keypair()
    endpoint = ControlEndpointConfig(
        bind="tcp://127.0.0.1:0",
        curve=CurveServerConfig(server_secret=server_secret.decode(),
                          clients={op_public.decode(): "operator",
                                   ro_public.decode(): "read-only"}),
    )
    rig = ControlRig(endpoint, {})
    server_key = server_public.decode()
    try:
        with rig.client(server_key=server_key, public_key=op_public.decode(),
                        secret_key=op_secret.decode()) as operator:
            assert operator.set("fridge1/mxc_setpoint", 0.2) == 0.2
        with rig.client(server_key=server_key, public_key=ro_public.decode(),
                        secret_key=ro_secret.decode()) as reader:
            assert reader.get("fridge1/mxc_setpoint") == 0.2
            assert any(t["target"] == "fridge1/mxc_setpoint" for t in reader.list())
            with pytest.raises(ControlError, match="set needs the operator role; this client "
                                                   "is read-only"):
                reader.set("fridge1/mxc_setpoint", 0.4)
        with rig.client(server_key=server_key, public_key=stranger_public.decode(),
                        secret_key=stranger_secret.decode()) as stranger:
            stranger.timeout_s = 1.0
            with pytest.raises(BusError, match="no reply"):
                stranger.ping()  # the handshake is refused: nothing ever reaches the daemon
        assert rig.instrument.sets == [("setpoint", 0.2)]
        audits = rig.audits()
        refused = [a for a in audits if a.meta["outcome"] == "refused"]
        assert refused and refused[0].meta["who"]["role"] == "read-only"
        assert refused[0].meta["who"]["key"] == ro_public.decode()
    finally:
        rig.close()


def test_a_dead_worker_is_restarted_and_reported(tmp_path: Any) -> None:
    from daq.config import load_config
    from daq.daemon.service import Daemon

    config_file = tmp_path / "lab.yaml"
    config_file.write_text("daemon:\n  control: {bind: 'tcp://127.0.0.1:0'}\n")
    daemon = Daemon(load_config(config_file))
    instrument = FakeInstrument()
    sink = Sink()
    worker = InstrumentWorker("fake1", CONFIG, sink, connection=FakeConnection(instrument))  # type: ignore[arg-type]
    daemon.workers["fake1"] = worker
    daemon.emit = sink  # type: ignore[method-assign]
    daemon.start()  # control endpoint and outbound stage: the supervisor watches them too
    sink.wait_for(lambda m: m.kind is Kind.DATA)

    instrument.crash = True  # SystemExit is no Exception: it ends the worker thread
    import threading

    supervisor = threading.Thread(target=daemon.supervise, args=(0.05,), daemon=True)
    supervisor.start()
    try:
        report = sink.wait_for(lambda m: m.kind is Kind.STATUS
                               and "worker restarted" in m.meta["message"])
        assert report.meta["state"] == "error" and worker.restarts >= 1
    finally:
        daemon.request_stop()
        supervisor.join(5)
        daemon.stop()
