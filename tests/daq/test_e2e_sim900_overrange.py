"""A SIM921 over range end to end: flagged on the bus, and the SIM928 bias stays settable.

Real processes on random ports: the simulated lab (serving only the SIM900
mainframe, its SIM921 thermometer wire open from the start), the broker and
the daemon. The bridge's over-range answers arrive as readings flagged
``OVERRANGE`` -- many more of them than the daemon's limit of malformed
replies in a row -- while the bias in port 1 of the same mainframe is set
through the daemon's control endpoint (``daq.client.Lab``) and read back at
the simulator, and the instrument stays connected throughout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import LabConfig, load_config
from daq.messages import Kind, Message
from drivers.readings import Quality
from tests.procs import Service, qupdaq, sim_lab_config
from tests.waiting import wait_until


class Mainframe:
    """Broker, a simulated lab with only the SIM900, and a daemon owning only it."""

    def __init__(self, tmp_path: Path) -> None:
        path, _, data = sim_lab_config(tmp_path)
        sim = data["simulation"]
        sim["bluefors_log"]["directory"] = ""
        for name, item in sim["instruments"].items():
            item["enabled"] = name == "sim900"
        sim["instruments"]["sim900"]["open_sensor"] = ["2"]  # the SIM921's sensor wire is open
        data["instruments"] = {"sim900": data["instruments"]["sim900"]}
        data["limits"] = {k: v for k, v in data["limits"].items() if k in ("tes1/bias_voltage",)}
        data["interlocks"] = []
        path.write_text(yaml.safe_dump(data))
        self.sim_port = int(sim["instruments"]["sim900"]["port"])
        self.config: LabConfig = load_config(path)
        self.services: list[Service] = []
        for args, ready in ((("broker",), "broker ready"), (("sim",), "sim ready"),
                            (("daemon",), "daemon ready")):
            service = qupdaq(*args, str(path))
            self.services.append(service)
            service.wait_line(ready)

    def subscriber(self, *prefixes: str) -> Subscriber:
        bus = self.config.bus
        return Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url)

    def bias_at_the_simulator(self) -> float:
        """``VOLT?`` of the SIM928 in port 1, asked over a connection of our own.

        The simulated mainframe gives every connection its own port queues, so
        this never takes an answer meant for the daemon.
        """
        with socket.create_connection(("127.0.0.1", self.sim_port), timeout=5) as sock:
            sock.sendall(b'SNDT 1,"VOLT?"\nGETN? 1,128\n')
            data = b""
            while not data.endswith(b"\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, "the simulator closed the connection"
                data += chunk
        assert data.startswith(b"#3"), data
        return float(data[5 : 5 + int(data[2:5])])

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


@pytest.fixture
def mainframe(tmp_path: Path) -> Iterator[Mainframe]:
    running = Mainframe(tmp_path)
    yield running
    running.stop()


def _wait_for(sub: Subscriber, predicate: object, timeout_s: float = 30.0) -> Message:
    end = time.monotonic() + timeout_s
    while (left := end - time.monotonic()) > 0:
        msg = sub.recv(left)
        if msg is not None and predicate(msg):  # type: ignore[operator]
            return msg
    raise AssertionError("the expected message never came")


def test_over_range_arrives_flagged_and_the_bias_stays_settable(mainframe: Mainframe) -> None:
    sub = mainframe.subscriber("data/tes1/", "status/tes1/sim900")
    seen: list[Message] = []
    try:
        first = _wait_for(sub, lambda m: m.kind is Kind.DATA and m.channel == "bath_temperature")
        assert first.quality & Quality.OVERRANGE, first
        assert first.value == pytest.approx(9.9e37)  # the bridge's own answer, kept
        assert "over range" in first.meta["note"]
        with Lab(mainframe.config, client="overrange-e2e", timeout_s=15) as lab:
            for volts in (0.5, -1.25, 0.125):
                assert lab.set("tes1/bias_voltage", volts) == pytest.approx(volts)
                # the set is done when the daemon has written it; the mainframe executes
                # the SNDT in its own time, which a loaded machine makes visible
                wait_until(lambda v=volts: mainframe.bias_at_the_simulator()
                           == pytest.approx(v), f"the SIM928 at {volts} V", timeout_s=10)
                assert lab.get("tes1/bias_voltage") == pytest.approx(volts)
                end = time.monotonic() + 2.0  # let over-range polls run in between
                while (left := end - time.monotonic()) > 0:
                    msg = sub.recv(left)
                    if msg is not None:
                        seen.append(msg)
    finally:
        sub.close()
    bath = [m for m in seen if m.kind is Kind.DATA and m.channel == "bath_temperature"]
    bias = [m for m in seen if m.kind is Kind.DATA and m.channel == "bias_voltage"]
    states = [m.meta["state"] for m in seen if m.kind is Kind.STATUS]
    # more over-range polls than the malformed replies the daemon tolerates in a row
    assert len(bath) >= 4 and all(m.quality & Quality.OVERRANGE for m in bath)
    assert bias and bias[-1].value == pytest.approx(0.125) and bias[-1].quality == 0
    assert states and set(states) == {"connected"}, states
    assert mainframe.services[-1].proc.poll() is None  # the same daemon throughout
