"""The daemon as 24/7 software, with real processes: hostile or heavy control traffic never
silences it, every request that runs is audited, and a dead part is restarted or ends the
process with its reason. The instruments are the in-package double (drivers.fake)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.errors import BusError, ControlError
from daq.messages import Kind
from tests.procs import bus_section, free_port, qupdaq


def fake_lab_config(tmp_path: Path, boxes: int = 2, period_s: float = 0.2) -> Path:
    data: dict[str, Any] = {
        "lab": {"name": "hardening"},
        "bus": bus_section(),
        "daemon": {"name": "daemon-h", "status_period_s": 0.5,
                   "control": {"bind": f"tcp://127.0.0.1:{free_port()}"},
                   "state_dir": str(tmp_path / "state")},
        "instruments": {
            f"box{i}": {"driver": "fake:FakeInstrument", "resource": f"FAKE::box{i}",
                        "source": "fridge1", "options": {"period_s": period_s},
                        "poll": [{"spec": "A", "channel": f"t{i}", "period_s": period_s}],
                        "controls": [{"spec": "setpoint", "target": f"setpoint{i}"},
                                     {"spec": "heater_range", "target": f"heater{i}"},
                                     {"spec": "fault", "target": f"fault{i}"}],
                        "actions": []}
            for i in range(boxes)},
        "limits": {"fridge1/setpoint0": {"min": 0, "max": 1, "unit": "K"}},
    }
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class FakeLab:
    """Broker and daemon (fake instruments) as real processes."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.path = fake_lab_config(tmp_path)
        self.config = load_config(self.path)
        self.broker = qupdaq("broker", str(self.path))
        self.broker.wait_line("broker ready")
        self.daemon = qupdaq("daemon", str(self.path), env=env)
        self.daemon.wait_line("daemon ready")

    def lab(self, timeout_s: float = 10.0) -> Lab:
        return Lab(self.config, client="hardening-test", timeout_s=timeout_s)

    def subscriber(self, *prefixes: str) -> Subscriber:
        bus = self.config.bus
        return Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url)

    def threads(self) -> int:
        status = Path(f"/proc/{self.daemon.proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("Threads:")))

    def stop(self) -> None:
        self.daemon.stop()
        self.broker.stop()


@pytest.fixture
def fake_lab(tmp_path: Path) -> Iterator[FakeLab]:
    running = FakeLab(tmp_path)
    yield running
    running.stop()


def _wait(sub: Subscriber, predicate: Any, timeout_s: float = 20.0) -> Any:
    end = time.monotonic() + timeout_s
    while (left := end - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is not None and predicate(msg):
            return msg
    raise AssertionError("the expected message never came")


def test_a_thousand_concurrent_requests_leave_threads_bounded_and_gets_prompt(
        fake_lab: FakeLab) -> None:
    with fake_lab.lab() as lab:
        lab.ping()
    threads_before = fake_lab.threads()
    ctx = zmq.Context.instance()
    socks = []
    for _ in range(20):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(fake_lab.config.daemon.control.bind)
        socks.append(sock)
    try:
        for n in range(1000):
            request = ({"id": n, "op": "list"} if n % 2 else
                       {"id": n, "op": "get", "target": f"fridge1/setpoint{n % 4 // 2}"})
            socks[n % len(socks)].send(json.dumps({**request, "client": "flood"}).encode())
        peak = fake_lab.threads()
        # While the flood is being answered, a healthy instrument's get is answered within
        # one poll period of that instrument (0.2 s), allowing a scheduling margin.
        with fake_lab.lab() as lab:
            started = time.monotonic()
            lab.get("fridge1/setpoint1")
            waited = time.monotonic() - started
        replies: list[dict[str, Any]] = []
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        end = time.monotonic() + 30
        while len(replies) < 1000 and time.monotonic() < end:
            for sock, _ in poller.poll(1000):
                while sock.poll(0):
                    replies.append(json.loads(sock.recv()))
        peak = max(peak, fake_lab.threads())
    finally:
        for sock in socks:
            sock.close()
    print(f"threads before {threads_before}, peak {peak}; get answered in {waited:.3f} s; "
          f"{len(replies)} replies, {sum(not r['ok'] for r in replies)} refused as busy")
    assert len(replies) == 1000  # every request is answered: served, or refused as busy
    assert all(r["ok"] or "busy" in r["error"] for r in replies)
    assert sum(r["ok"] for r in replies if "targets" in r or r.get("id", 1) % 2) > 0
    assert peak <= threads_before + 2
    assert waited < 1.0


def test_hostile_values_are_refused_and_the_endpoint_keeps_answering(fake_lab: FakeLab) -> None:
    sub = fake_lab.subscriber("audit/")
    try:
        with fake_lab.lab() as lab:
            with pytest.raises(ControlError, match="not a number"):
                lab.set("fridge1/setpoint0", 10**400)  # limits: no float holds it
            with pytest.raises(ControlError, match="OverflowError|out of range"):
                lab.set("fridge1/setpoint1", 10**400)  # no limit: the driver refuses
            assert lab.ping() == "daemon-h"
            assert lab.set("fridge1/setpoint0", 0.5) == 0.5
            # 45 KB with many non-ASCII characters: under the request limit, over the
            # header limit once JSON-escaped; it runs (refused by the validator) and its
            # audit event is stored truncated, never dropped.
            big = "Ω" * 22_000
            with pytest.raises(ControlError, match="out of range"):
                lab.set("fridge1/setpoint1", big)
        audit = _wait(sub, lambda m: m.kind is Kind.AUDIT
                      and "truncated" in json.dumps(m.meta.get("value")))
        assert audit.meta["target"] == "fridge1/setpoint1" and audit.meta["outcome"] == "refused"
    finally:
        sub.close()


def test_a_client_refused_by_curve_gets_an_error_every_time_not_a_hang() -> None:
    server_public, _ = zmq.curve_keypair()
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.curve_server = True
    router.curve_secretkey = zmq.curve_keypair()[1]  # not the key the client expects
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        from daq.config import LabConfig

        lab = Lab(LabConfig(), control_url=f"tcp://127.0.0.1:{port}",
                  server_key=server_public.decode(), public_key=public.decode(),
                  secret_key=secret.decode(), timeout_s=0.5)
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(BusError, match="no reply"):
                lab.ping()
            assert time.monotonic() - started < 3.0
        lab.close()
    finally:
        router.close(linger=0)


@pytest.mark.parametrize("part,restarted", [("worker:box0", True), ("control", False)])
def test_a_dead_part_is_restarted_or_ends_the_daemon_with_its_reason(
        tmp_path: Path, part: str, restarted: bool) -> None:
    running = FakeLab(tmp_path, env={"QUPDAQ_FAILPOINTS": f"{part}@1.5"})
    try:
        if restarted:
            sub = running.subscriber("status/")
            try:
                msg = _wait(sub, lambda m: m.kind is Kind.STATUS
                            and "worker restarted" in m.meta.get("message", ""))
            finally:
                sub.close()
            assert "FailpointError" in msg.meta["message"]
            with running.lab() as lab:
                assert lab.ping() == "daemon-h"
        else:
            code = running.daemon.proc.wait(timeout=30)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                    "daemon failed" in line for line in running.daemon.lines):
                time.sleep(0.05)
            last = [line for line in running.daemon.lines if line.strip()][-1]
            assert code == 3
            assert last.startswith("daemon failed: daemon daemon-h: control died "
                                   "(FailpointError"), last
            marker = json.loads((tmp_path / "state" / "daemon-h" / "daemon.run").read_text())
            assert marker["state"] == "failed" and "control died" in marker["reason"]
    finally:
        running.stop()



def test_a_malformed_data_message_on_the_broker_leaves_status_working(fake_lab: FakeLab) -> None:
    import subprocess
    import sys

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 1000)
    pub.connect(fake_lab.config.bus.publish_url)
    header = json.dumps({"v": 1, "seq": 0, "epoch": 1, "pub": "evil", "t": 0, "units": "",
                         "q": 0, "meta": {}, "dtype": "<f8", "shape": [3]}).encode()
    sub = fake_lab.subscriber("data/fridge1/t0")
    try:
        _wait(sub, lambda m: m.kind is Kind.DATA)  # the daemon publishes
        for _ in range(20):  # the slow-joiner window: send a few
            pub.send_multipart([b"data/evil/poison", header, bytes(24)])
            time.sleep(0.05)
    finally:
        sub.close()
        pub.close()
    done = subprocess.run([sys.executable, "-m", "daq.cli", "status", str(fake_lab.path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "data/fridge1/t0" in done.stdout and "poison" not in done.stdout
