"""Errors that show: the logger's status on the live bus, the sender's stats snapshot."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from daq import messages
from daq.bus import Broker, Subscriber
from daq.daemon.outbound import OutboundStage
from daq.messages import Kind, Message
from daq.reliable import SenderStats
from tests.logger.conftest import LoggerProcess, write_config
from tests.procs import free_port


@pytest.fixture
def broker() -> Iterator[Broker]:
    bus = Broker(publish_port=free_port())
    bus.start()
    yield bus
    bus.stop()


def _next(sub: Subscriber, predicate: Callable[[Message], bool], timeout_s: float) -> Message:
    end = time.monotonic() + timeout_s
    while (left := end - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is not None and predicate(msg):
            return msg
    raise AssertionError("the expected message never came")


def test_the_logger_publishes_its_status_on_the_bus_of_its_config(
        tmp_path: Path, broker: Broker, logger_process: Callable[..., LoggerProcess]) -> None:
    assert broker.endpoints is not None
    port = int(broker.endpoints.publish.rsplit(":", 1)[1])
    cfg = write_config(tmp_path / "lab.yaml", directory=str(tmp_path / "store"),
                       name="arch1", status_period_s=0.2)
    data = yaml.safe_load(cfg.read_text())
    data["bus"]["publish_port"] = port  # the lab's bus: where the logger's status goes
    cfg.write_text(yaml.safe_dump(data))
    with Subscriber(broker.endpoints.subscribe, ["status/arch1/"]) as sub:
        logger_process(cfg)
        msg = _next(sub, lambda m: m.kind is Kind.STATUS, 20)
    assert msg.topic == b"status/arch1/logger" and msg.meta["state"] == "connected"
    meta = msg.meta
    for key in ("stored_messages", "duplicates", "malformed", "write_errors",
                "refused_sessions", "poisoned", "errors", "sessions", "store_ok"):
        assert key in meta, key
    assert meta["disk_free_bytes"] > 0 and meta["store"] == str(tmp_path / "store")
    assert isinstance(meta["errors"], list)


def test_the_sender_s_stats_are_a_frozen_snapshot_the_daemon_can_publish(
        tmp_path: Path) -> None:
    stage = OutboundStage(f"tcp://127.0.0.1:{free_port()}", name="d1",
                          logger_url=f"tcp://127.0.0.1:{free_port()}",  # nobody listens
                          spool_path=tmp_path / "state" / "spool.sqlite", heartbeat_s=0.1)
    stage.start()
    try:
        for i in range(50):
            stage.put(messages.scalar("f", "x", float(i)))
        end = time.monotonic() + 10
        while (stage.stats is None or stage.stats.unacked < 50) and time.monotonic() < end:
            time.sleep(0.05)  # the snapshot is refreshed by the stage's own thread
        stats = stage.stats
        assert isinstance(stats, SenderStats) and stats.unacked == 50 == stage.unacked
        assert stats.spooled_bytes > 0 and stats.spool_file_bytes > 0
        assert stats.as_dict()["logger_errors"] == [] and stats.last_reply_age_s is None
        with pytest.raises(AttributeError):
            stats.unacked = 0  # type: ignore[misc]
        assert json.loads(json.dumps(stats.as_dict()))["unacked"] == 50  # JSON-able
    finally:
        stage.stop(flush_s=0.2)
    assert (tmp_path / "state" / "instance.id").exists()
