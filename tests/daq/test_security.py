"""CURVE on the bus: keys from the config, allow-lists with roles, loopback-only without keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
import zmq
import zmq.auth

from daq import messages
from daq.bus import Broker, Publisher, Subscriber
from daq.config import load_config
from daq.errors import ConfigError
from daq.security import ClientKeys, CurveServerConfig, IdentityConfig, client_keys


def test_an_endpoint_beyond_loopback_without_keys_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("bus: {host: 192.0.2.10}\n")
    with pytest.raises(ConfigError, match="bus: bus host tcp://192.0.2.10:7100 is not "
                                          "loopback: it needs CURVE keys"):
        load_config(path)


def test_keys_come_from_certificate_files_relative_to_the_config(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    broker_public, _ = zmq.auth.create_certificates(keys, "broker")
    host_public, _ = zmq.auth.create_certificates(keys, "host1")
    public = zmq.auth.load_certificate(host_public)[0].decode()
    data = {"bus": {"host": "192.0.2.10",
                    "curve": {"server_secret_file": "keys/broker.key_secret",
                              "clients": {public: "publisher"}}},
            "identity": {"public_key": public, "secret_key_file": "keys/host1.key_secret"}}
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "lab.yaml")
    got = config.keys_for("bus")
    assert got is not None
    assert got.server_public == zmq.auth.load_certificate(broker_public)[0]
    assert got.public == public.encode()


def test_a_curve_endpoint_without_an_identity_names_what_is_missing() -> None:
    server = CurveServerConfig(server_public=zmq.curve_keypair()[0].decode())
    with pytest.raises(ConfigError, match="identity section"):
        client_keys(server, None)
    with pytest.raises(ValueError, match="z85"):
        IdentityConfig(public_key="x" * 39, secret_key="y" * 40)


def test_the_broker_admits_only_keys_on_its_list_in_their_roles() -> None:
    server_public, server_secret = zmq.curve_keypair()
    pub_public, pub_secret = zmq.curve_keypair()
    sub_public, sub_secret = zmq.curve_keypair()
    stranger_public, stranger_secret = zmq.curve_keypair()
    curve = CurveServerConfig(server_secret=server_secret.decode(),
                              clients={pub_public.decode(): "publisher",
                                       sub_public.decode(): "subscriber"})
    broker = Broker(curve=curve, context=zmq.Context())
    endpoints = broker.start()
    keyed = Publisher(endpoints.publish, name="keyed",
                      curve=ClientKeys(server_public, pub_public, pub_secret))
    plain = Publisher(endpoints.publish, name="plain")
    stranger = Publisher(endpoints.publish, name="stranger",
                         curve=ClientKeys(server_public, stranger_public, stranger_secret))
    # a subscriber key may not publish
    wrong_role = Publisher(endpoints.publish, name="wrongrole",
                           curve=ClientKeys(server_public, sub_public, sub_secret))
    sub = Subscriber(endpoints.subscribe, ["data/"], snapshot_url=endpoints.snapshot,
                     curve=ClientKeys(server_public, sub_public, sub_secret))
    unkeyed_sub = Subscriber(endpoints.subscribe, ["data/"])
    try:
        keyed.wait_for_subscriber(timeout_s=5)
        for _ in range(10):
            for pub in (keyed, plain, stranger, wrong_role):
                pub.publish(messages.scalar("f", pub.name, 1.0))
            time.sleep(0.05)
        got = set()
        while (msg := sub.recv(0.5)) is not None:
            got.add(msg.channel)
        assert got == {"keyed"}
        assert unkeyed_sub.recv(0.3) is None
        assert [m.channel for m in sub.snapshot("data/")] == ["keyed"]
        assert broker.gatekeeper is not None
        assert broker.gatekeeper.refused.get("broker-publish", 0) >= 2  # stranger, wrong role
    finally:
        for closable in (keyed, plain, stranger, wrong_role, sub, unkeyed_sub):
            closable.close()
        broker.stop()
