"""CURVE on every endpoint that leaves the machine, with real processes: a client without the
keys cannot publish to the broker, feed the logger or query history; with the keys it can."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
import zmq
import zmq.auth

from daq import messages
from daq.bus import Publisher, Subscriber
from daq.config import load_config
from daq.errors import BusError
from daq.logger.history import HistoryClient
from daq.reliable import ReliableSender
from daq.security import ClientKeys
from tests.procs import bus_section, free_port, logger_section, qupdaq


def _keys(directory: Path, name: str) -> tuple[str, bytes]:
    public_file, secret_file = zmq.auth.create_certificates(directory, name)
    public, secret = zmq.auth.load_certificate(secret_file)
    assert secret is not None
    return public.decode(), secret


@pytest.fixture
def secured(tmp_path: Path):  # type: ignore[no-untyped-def]
    keys = tmp_path / "keys"
    keys.mkdir()
    broker_pub, _ = _keys(keys, "broker")
    logger_pub, _ = _keys(keys, "logger")
    daemon_pub, _ = _keys(keys, "daemon")
    reader_pub, reader_secret = _keys(keys, "reader")
    data = {
        "bus": bus_section(curve={"server_secret_file": "keys/broker.key_secret",
                                  "clients": {daemon_pub: "publisher", logger_pub: "publisher",
                                              reader_pub: "subscriber"}}),
        "identity": {"public_key": daemon_pub, "secret_key_file": "keys/daemon.key_secret"},
        "logger": logger_section(
            tmp_path, "logger-sec",
            curve={"server_secret_file": "keys/logger.key_secret",
                   "clients": {daemon_pub: "daemon-sec", reader_pub: "reader"}}),
        "daemon": {"name": "daemon-sec", "state_dir": str(tmp_path / "state"),
                   "control": {"bind": f"tcp://127.0.0.1:{free_port()}"}},
        "instruments": {"box": {"driver": "fake:FakeInstrument", "resource": "FAKE::1",
                                "source": "fridge1", "options": {"period_s": 0.2},
                                "poll": [{"spec": "A", "channel": "t0", "period_s": 0.2}]}},
    }
    data["daemon"]["logger_url"] = data["logger"]["endpoint"]
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    services = [qupdaq("broker", str(path))]
    services[-1].wait_line("broker ready")
    services.append(qupdaq("logger", str(path)))
    services[-1].wait_line("logger ready")
    services.append(qupdaq("daemon", str(path)))
    services[-1].wait_line("daemon ready")
    config = load_config(path)
    server_bus = config.bus.curve.public() if config.bus.curve else b""
    server_logger = config.logger.curve.public() if config.logger and config.logger.curve else b""
    reader = (ClientKeys(server_bus, reader_pub.encode(), reader_secret),
              ClientKeys(server_logger, reader_pub.encode(), reader_secret))
    yield config, reader
    for service in reversed(services):
        service.stop()


def test_without_keys_nothing_gets_in_and_with_them_everything_works(secured) -> None:  # type: ignore[no-untyped-def]
    config, (reader_bus, reader_logger) = secured
    stranger_public, stranger_secret = zmq.curve_keypair()
    strangers = {"bus": ClientKeys(reader_bus.server_public, stranger_public, stranger_secret),
                 "logger": ClientKeys(reader_logger.server_public, stranger_public,
                                      stranger_secret)}
    assert config.logger is not None
    # With the keys: the daemon's data are live on the bus and archived, history answers.
    sub = Subscriber(config.bus.subscribe_url, ["data/fridge1/"], curve=reader_bus)
    try:
        assert sub.recv(10.0) is not None
    finally:
        sub.close()
    with HistoryClient(config.logger.history_endpoint, curve=reader_logger, timeout_s=5) as hist:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            times, _ = hist.query("data/fridge1/t0")
            if times.size:
                break
        assert times.size > 0
    # Without the keys (plain, or keys not on the list): no data, no history, no archive.
    for keys in (None, strangers["bus"]):
        sub = Subscriber(config.bus.subscribe_url, ["data/fridge1/"], curve=keys)
        try:
            assert sub.recv(1.5) is None
        finally:
            sub.close()
    for keys in (None, strangers["logger"]):
        with (HistoryClient(config.logger.history_endpoint, curve=keys, timeout_s=1.5) as hist,
              pytest.raises(BusError, match="no reply")):
            hist.status()
    # A stranger publishing to the broker reaches no one; feeding the logger gets no ack.
    watcher = Subscriber(config.bus.subscribe_url, ["data/evil/"], curve=reader_bus)
    forger = Publisher(config.bus.publish_url, name="evil", curve=strangers["bus"])
    try:
        for _ in range(10):
            forger.publish(messages.scalar("evil", "x", 1.0))
            time.sleep(0.05)
        assert watcher.recv(1.0) is None
    finally:
        forger.close()
        watcher.close()
    sender = ReliableSender(config.logger.endpoint, pub="evil", epoch=1, instance="evil-1",
                            spool_path=None, curve=strangers["logger"])
    try:
        stamped = messages.scalar("evil", "x", 1.0)
        stamped.seq, stamped.epoch, stamped.pub = 0, 1, "evil"
        sender.send(stamped)
        assert not sender.flush(2.0)  # never acknowledged
    finally:
        sender.close()
    with HistoryClient(config.logger.history_endpoint, curve=reader_logger) as hist:
        assert not any(s.get("stream", "").startswith("data/evil/") for s in hist.streams())
