"""The README's main job: `qupdaq up --headless` runs the whole system against the simulated lab.

Broker, simulated lab, logger and daemon start as child processes of one
command; live data reach a subscriber, the archive fills through the
acknowledged path (queried through the logger's history endpoint, and
present as real SQLite/HDF5 files), a control request is audited, and
Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import h5py

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import load_config
from daq.logger.history import HistoryClient
from daq.messages import Kind
from tests.procs import qupdaq, sim_lab_config


def test_up_headless_runs_the_whole_system_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    path, _, _ = sim_lab_config(tmp_path, time_scale=10.0)
    config = load_config(path)
    assert config.logger is not None
    up = qupdaq("up", "--headless", str(path))
    try:
        up.wait_line("qupdaq up: everything is running", timeout_s=120)
        for name in ("broker", "sim", "logger", "daemon"):  # where everything is, in order
            assert f"{name} ready" in up.wait_line(f"  {name} ", timeout_s=10)
        sub = Subscriber(config.bus.subscribe_url, ["data/fridge1/mxc_control", "wave/tes1"])
        try:
            live = {}
            end = time.monotonic() + 30
            while len(live) < 2 and time.monotonic() < end:
                msg = sub.recv(1.0)
                if msg is not None:
                    live[msg.kind] = msg
        finally:
            sub.close()
        assert set(live) == {Kind.DATA, Kind.WAVE}
        with Lab(config, client="up-test") as lab:
            assert lab.ping() == config.daemon.name
            lab.set("fridge1/mxc_setpoint", 0.02)
        history = HistoryClient(config.logger.history_endpoint)
        times, values = history.query("data/fridge1/mxc_control")
        end = time.monotonic() + 30
        while len(values) < 3 and time.monotonic() < end:
            time.sleep(0.5)  # the archive fills at the poll rate; ask again
            times, values = history.query("data/fridge1/mxc_control")
        assert len(values) >= 3 and all(0.005 < v < 0.05 for v in values)
        assert all(b >= a for a, b in zip(times, times[1:], strict=False))
        audits = history.events(kind="audit")
        end = time.monotonic() + 15
        while not audits and time.monotonic() < end:
            time.sleep(0.5)
            audits = history.events(kind="audit")
        assert any("mxc_setpoint" in str(event) for event in audits)
    finally:
        up.proc.send_signal(signal.SIGINT)
        code = up.proc.wait(timeout=60)
    assert code == 0, "\n".join(up.lines[-40:])
    assert up.lines[-1] == "qupdaq up: stopped"
    # Stopped in order: the daemon handed everything to the logger before the logger went.
    assert "[daemon] daemon stopped" in up.lines
    assert not [line for line in up.lines if "not acknowledged by the logger" in line]
    files = sorted((tmp_path / "data").rglob("*.h5"))
    assert files, "no HDF5 file was written"
    rows = 0
    for h5 in files:
        with h5py.File(h5, "r") as f:  # readable by plain h5py, no qupdaq needed
            if "wave/tes1/squid_out/records" in f:
                records = f["wave/tes1/squid_out/records"]
                rows += records.shape[0]
                assert records.attrs.get("units", f["wave/tes1/squid_out"].attrs.get("units"))
    assert rows >= 1, "no SQUID record reached the archive"
