"""A daemon restart never unlocks a locked SQUID: the PFL-102 end to end, real processes.

The broker and the daemon run as child processes; the simulated lab (only
its PFL-102 served) runs in this process, because the PFL-102 cannot be
read back: the card's state is checked where it lives, in the simulator.
The daemon locks the SQUID through ``daq.client.Lab``, is stopped and
started again, and the restarted daemon's first writes (a new SQUID bias,
an integrator reset, which rewrites the whole control word) keep the loop
locked, because the driver's shadow came back from the daemon's state
directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.messages import Kind
from simulators.config import simulation_from_mapping
from simulators.lab import SimLab
from simulators.servers.pfl102 import PFL102Server
from tests.procs import Service, qupdaq, sim_lab_config

LOCKED_SQUID = 0x0408  # LOCK, feedback on the SQUID stage, 100 kOhm, 1.5 nF


class Setup:
    """Broker and daemon as processes, the simulated PFL-102 in this process."""

    def __init__(self, tmp_path: Path) -> None:
        path, _, data = sim_lab_config(tmp_path, time_scale=1.0)
        pfl = data["instruments"]["pfl102"]
        pfl["controls"] = [*pfl["controls"], {"spec": "ch1.feedback_stage",
                                               "target": "squid_stage"}]
        data["instruments"] = {"pfl102": pfl}
        data["limits"], data["interlocks"] = {}, []
        data["daemon"]["state_dir"] = str(tmp_path / "state")
        for name, item in data["simulation"]["instruments"].items():
            item["enabled"] = name == "pfl102"
        path.write_text(yaml.safe_dump(data))
        self.path = path
        self.config = load_config(path)
        self.state_file = tmp_path / "state" / self.config.daemon.name / "pfl102.json"
        self.lab = SimLab(simulation_from_mapping(data)).start()
        server = self.lab.servers["pfl102"]
        assert isinstance(server, PFL102Server)
        self.card = server
        self.frames_at_start = server.frames  # the lab locked the SQUID "last night"
        self.services: list[Service] = []
        self.broker = self._start(qupdaq("broker", str(path)), "broker ready")
        self.daemon: Service | None = None

    def _start(self, service: Service, ready: str) -> Service:
        self.services.append(service)
        service.wait_line(ready)
        return service

    def start_daemon(self) -> None:
        """Start the daemon and wait until it has connected the PFL-102."""
        bus = self.config.bus
        sub = Subscriber(bus.subscribe_url, ["status/tes1/pfl102"], snapshot_url=bus.snapshot_url)
        try:
            self.daemon = self._start(qupdaq("daemon", str(self.path)), "daemon ready")
            end = time.monotonic() + 60  # a loaded machine: the first connect may be retried
            while time.monotonic() < end:
                msg = sub.recv(0.5)
                if msg is not None and msg.kind is Kind.STATUS \
                        and msg.meta["state"] == "connected":
                    return
        finally:
            sub.close()
        lines = "\n".join(self.daemon.lines[-30:]) if self.daemon else ""
        raise AssertionError(f"the daemon never connected the PFL-102:\n{lines}")

    def stop_daemon(self) -> None:
        assert self.daemon is not None
        assert self.daemon.stop() == 0
        self.services.remove(self.daemon)
        self.daemon = None

    def client(self) -> Lab:
        return Lab(self.config, client="e2e-restart", timeout_s=15)

    @property
    def frames(self) -> int:
        """Frames the card accepted from the daemon (the link is one-way: count them)."""
        return self.card.frames - self.frames_at_start

    def wait_frames(self, count: int) -> None:
        """Wait until the card has accepted ``count`` frames from the daemon in all."""
        end = time.monotonic() + 10
        while self.frames < count:
            assert time.monotonic() < end, f"only {self.frames} of {count} frames arrived"
            time.sleep(0.01)
        assert self.card.malformed == 0 and self.card.undefined == 0

    def fll_state(self) -> dict[str, Any]:
        """What the simulator's card and loop hold now."""
        state = self.card.state(1)
        fll = self.lab.readout.fll
        return {"word": state.word, "mode": state.mode, "reset": state.reset,
                "loop": fll.mode, "reset_held": fll.reset_held}

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.lab.stop()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    running = Setup(tmp_path)
    yield running
    running.stop()


LOCKED = {"word": LOCKED_SQUID, "mode": "locked", "reset": False, "loop": "locked",
          "reset_held": False}


def test_a_daemon_restart_keeps_the_squid_locked(setup: Setup) -> None:
    setup.start_daemon()
    with setup.client() as lab:
        lab.set("tes1/squid_stage", "squid")
        lab.call("tes1/squid_lock")
        lab.call("tes1/squid_reset")
    setup.wait_frames(4)
    before = setup.fll_state()
    assert before == LOCKED
    assert json.loads(setup.state_file.read_text())["cards"]["1"]["control_word"] == LOCKED_SQUID

    setup.stop_daemon()
    assert setup.fll_state() == before
    setup.start_daemon()
    time.sleep(0.5)  # anything a careless driver sent on connect would have arrived by now
    assert setup.frames == 4  # connecting sends nothing
    assert setup.fll_state() == before

    with setup.client() as lab:
        assert lab.set("tes1/squid_bias", 26e-6) == pytest.approx(26e-6)
        lab.call("tes1/squid_reset")  # rewrites the whole control word: the lock must be in it
    setup.wait_frames(4 + 3)
    assert setup.fll_state() == before
    assert setup.card.state(1).value("squid_bias") == pytest.approx(26e-6, rel=0.01)
    # The loop holds the new bias: the output stays in range, far from its rails.
    fll = setup.lab.readout.fll
    trace = setup.lab.readout.acquire(4000, 5e-7)
    assert np.all(np.abs(trace) < 0.5 * fll.v_rail)
    assert fll.mode == "locked" and fll.flux_jumps == 0
