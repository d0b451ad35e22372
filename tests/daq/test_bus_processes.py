"""The live bus in real processes on random ports: bursts, late joiners, dead publishers, restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from daq.bus import Subscriber
from tests.procs import Service, qupdaq


class BrokerProcess:
    """``qupdaq broker`` as a child process; remembers its ports so it can be restarted."""

    def __init__(self, ports: tuple[int, int, int] = (0, 0, 0), hwm: int = 1_000_000) -> None:
        self.ports = ports
        self.hwm = hwm
        self.proc: Service | None = None
        self.urls: dict[str, str] = {}

    def start(self) -> BrokerProcess:
        pub, sub, snap = self.ports
        self.proc = qupdaq("broker", "--hwm", str(self.hwm), "--publish-port", str(pub),
                           "--subscribe-port", str(sub), "--snapshot-port", str(snap))
        line = self.proc.wait_line("broker ready")
        self.urls = dict(part.split("=", 1) for part in line.split()[2:])
        self.ports = tuple(int(self.urls[k].rsplit(":", 1)[1])  # type: ignore[assignment]
                           for k in ("publish", "subscribe", "snapshot"))
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    b = BrokerProcess().start()
    yield b
    b.stop()


def _run_burst(broker: BrokerProcess, count: int, *, slow: bool, hwm: int) -> dict:
    counter = Service("-m", "tests.daq.bus_peer", "count", broker.urls["subscribe"],
                     "--count", str(count), "--prefix", "data/burst", "--hwm", str(hwm),
                     *(["--slow"] if slow else []))
    counter.wait_line("subscribed")
    publisher = Service("-m", "tests.daq.bus_peer", "burst", broker.urls["publish"],
                       "--count", str(count), "--streams", "4", "--hwm", str(hwm))
    try:
        assert publisher.wait_line("sending") == "sending"
        report = json.loads(counter.wait_line("{", timeout_s=180))
    finally:
        publisher.stop()
        counter.stop()
    return report


def test_burst_of_100k_arrives_whole_when_the_subscriber_keeps_up(broker: BrokerProcess) -> None:
    report = _run_burst(broker, 100_000, slow=False, hwm=1_000_000)
    assert report["missed"] == 0
    assert report["received"] == 100_000
    assert all(not missing for missing in report["true_missing"].values())
    assert report["first_seq"] == {f"data/burst/s{i}": 0 for i in range(4)}


def test_burst_gaps_reported_are_exactly_the_gaps_that_occurred() -> None:
    # Small queues everywhere and a slow consumer: the live path must drop, and say so.
    small = BrokerProcess(hwm=200).start()
    try:
        report = _run_burst(small, 100_000, slow=True, hwm=200)
    finally:
        small.stop()
    assert report["missed"] > 0, "the test did not provoke any loss"
    assert report["received"] + report["missed"] == 100_000
    for stream, missing in report["true_missing"].items():
        assert report["reported_missing"].get(stream, []) == missing


def test_late_joiner_gets_snapshot_then_only_newer_live_data(broker: BrokerProcess) -> None:
    publisher = Service("-m", "tests.daq.bus_peer", "steady", broker.urls["publish"],
                       "--rate", "2000", "--streams", "5")
    try:
        publisher.wait_line("publishing")
        sub = Subscriber(broker.urls["subscribe"], ["data/steady"],
                         snapshot_url=broker.urls["snapshot"])
        # Wait until the cache has every stream (the publisher only sends once subscribed-to
        # through the broker's own cache subscription, which exists from the start).
        snapshot = []
        end = time.monotonic() + 10
        while len(snapshot) < 5 and time.monotonic() < end:
            sub.close()
            sub = Subscriber(broker.urls["subscribe"], ["data/steady"],
                             snapshot_url=broker.urls["snapshot"])
            snapshot = sub.snapshot("data/steady")
        assert sorted(m.stream for m in snapshot) == [f"data/steady/s{i}" for i in range(5)]
        snap_seq = {m.stream: m.seq for m in snapshot}
        first_live: dict[str, int] = {}
        for _ in range(2000):
            msg = sub.recv(5.0)
            assert msg is not None
            assert msg.seq > snap_seq[msg.stream], "a live value older than the snapshot"
            first_live.setdefault(msg.stream, msg.seq)
        # Every stream went on live after its snapshot, and nothing was lost after joining.
        assert set(first_live) == set(snap_seq)
        assert sub.gaps.missed == 0
        sub.close()
    finally:
        publisher.stop()


def test_killed_publisher_is_reported_stale_within_two_heartbeats(broker: BrokerProcess) -> None:
    period = 0.25
    publisher = Service("-m", "tests.daq.bus_peer", "steady", broker.urls["publish"],
                       "--rate", "50", "--heartbeat", str(period), "--name", "doomed")
    sub = Subscriber(broker.urls["subscribe"], ["data/steady"])
    try:
        publisher.wait_line("publishing")
        end = time.monotonic() + 10
        while "doomed" not in sub.publishers and time.monotonic() < end:
            sub.recv(0.1)
        assert "doomed" in sub.publishers
        # Alive and beating: never stale over several periods.
        watch_end = time.monotonic() + 4 * period
        while time.monotonic() < watch_end:
            sub.recv(0.05)
            assert sub.stale_publishers() == []
        last_beat = sub.publishers["doomed"].last_beat
        os.kill(publisher.proc.pid, signal.SIGKILL)
        publisher.proc.wait()
        while not sub.stale_publishers():
            sub.recv(0.02)
        detected = time.monotonic()
        # Stale is declared two periods after the last heartbeat that arrived.
        assert sub.stale_publishers() == ["doomed"]
        assert detected - last_beat <= 2 * period + 0.1
    finally:
        sub.close()
        publisher.stop()


def test_restarted_broker_is_rejoined_without_restarting_peers(broker: BrokerProcess) -> None:
    publisher = Service("-m", "tests.daq.bus_peer", "steady", broker.urls["publish"],
                       "--rate", "200", "--name", "survivor")
    sub = Subscriber(broker.urls["subscribe"], ["data/steady"])
    try:
        publisher.wait_line("publishing")
        before = sub.recv(10.0)
        assert before is not None
        broker.kill()
        # With the broker dead nothing can arrive: drain what was already delivered.
        newest = before.seq
        while (msg := sub.recv(0.5)) is not None:
            newest = max(newest, msg.seq)
        restarted = BrokerProcess(broker.ports).start()
        try:
            after = sub.recv(20.0)
            assert after is not None, "no traffic through the restarted broker"
            assert after.seq > newest and after.epoch == before.epoch  # same publisher session
            assert publisher.proc.poll() is None
            # Whatever the restart lost (if anything) is counted, never silent.
            state = sub.gaps.streams[after.stream]
            assert state.received + state.missed == after.seq - before.seq + 1
        finally:
            restarted.stop()
    finally:
        sub.close()
        publisher.stop()
