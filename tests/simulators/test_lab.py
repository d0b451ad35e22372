"""The simulated lab as a whole: config, wiring, the ``qupdaq sim`` command."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from daq.errors import ConfigError
from simulators.cli import READY_LINE, main
from simulators.config import (
    INSTRUMENT_NAMES,
    SimulationConfig,
    load_simulation_config,
    simulation_from_mapping,
)
from simulators.lab import SimLab
from simulators.servers.sr830 import SR830Server

from .conftest import RawClient

EXAMPLE = Path(__file__).parent / "data" / "sim_lab_test.yaml"
FIXED_PORTS = {
    "ls372": 17372,
    "ls336": 17336,
    "tpg366": 18000,
    "sim900": 17900,
    "pfl102": 17102,
    "scope": 15025,
    "sr830": 17830,
    "keithley2400": 17240,
    "awg33500": 15026,
}


def free_port_config(tmp_path: Path, **simulation: object) -> Path:
    """The example config with every port 0 (and some overrides), written to a file."""
    data = yaml.safe_load(EXAMPLE.read_text())
    for item in data["simulation"]["instruments"].values():
        item["port"] = 0
    data["simulation"].update(simulation)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def frozen_lab() -> Iterator[SimLab]:
    lab = SimLab(SimulationConfig(time_scale=0.0)).start()
    yield lab
    lab.stop()


def test_example_config_has_the_fixed_ports() -> None:
    config = load_simulation_config(EXAMPLE)
    assert {name: item.port for name, item in config.instruments.items()} == FIXED_PORTS
    assert config.bluefors_log.timezone == "Europe/Helsinki"


def test_every_instrument_is_served_and_answers(
    frozen_lab: SimLab, connect: Callable[..., RawClient]
) -> None:
    rows = frozen_lab.describe()
    assert [name for name, _, _ in rows] == list(INSTRUMENT_NAMES)
    ports = set()
    for _name, model, resource in rows:
        host, port = resource.split("::")[1:3]
        assert resource == f"TCPIP::127.0.0.1::{port}::SOCKET" and host == "127.0.0.1"
        assert int(port) > 0 and model
        ports.add(int(port))
    assert len(ports) == len(rows)
    servers = frozen_lab.servers
    assert connect(servers["ls372"].port).ask("*IDN?").startswith("LSCI,MODEL372")
    assert connect(servers["ls336"].port).ask("*IDN?").startswith("LSCI,MODEL336")
    assert connect(servers["tpg366"].port).query("AYT") == b"\x06\r\n"
    for name in ("sim900", "scope", "sr830", "keithley2400"):
        assert connect(servers[name].port).ask("*IDN?"), name
    connect(servers["pfl102"].port)  # writes only: a connection is all it offers


def test_372_heater_warms_the_mixing_chamber_and_the_tes_bath_follows(
    frozen_lab: SimLab, connect: Callable[..., RawClient]
) -> None:
    client = connect(frozen_lab.servers["ls372"].port)
    base = frozen_lab.fridge.mxc_temperature()
    lock_in = frozen_lab.servers["sr830"]
    assert isinstance(lock_in, SR830Server)
    r_cold = lock_in.sample_resistance()
    assert r_cold < 0.01 * frozen_lab.tes.params.r_n + 1e-3  # superconducting when cold
    for command in ("OUTMODE 0,5,A,0,0,1,1", "PID 0,1000,30,0", "RANGE 0,6", "SETP 0,0.09"):
        client.send(command)
    assert client.ask("*OPC?") == "1"
    for _ in range(30):
        frozen_lab.clock.advance(60.0)
        client.ask("KRDG? A")
    assert frozen_lab.fridge.mxc_temperature() == pytest.approx(0.09, rel=0.02)
    assert frozen_lab.tes.state.t_bath == pytest.approx(0.09, rel=0.05)
    assert frozen_lab.tes.state.t_bath > 3 * base
    reading = frozen_lab.sim921.reading()
    assert reading is not None and reading[1] == pytest.approx(0.09, rel=0.1)
    # above Tc the unbiased TES is normal: the lock-in sees R_n
    r_hot = lock_in.sample_resistance()
    assert r_hot == pytest.approx(frozen_lab.tes.params.r_n, rel=0.1)


def test_sim928_output_biases_the_tes(
    frozen_lab: SimLab, connect: Callable[..., RawClient]
) -> None:
    assert frozen_lab.tes.state.branch(frozen_lab.tes.params) == "transition"
    client = connect(frozen_lab.servers["sim900"].port)
    client.send(b'SNDT 1,"VOLT 0.5"\n')
    client.send(b"*IDN?\n")
    client.read_line()  # the mainframe handled everything before
    assert frozen_lab.tes.state.i_bias == pytest.approx(0.5 / frozen_lab.sim928.r_bias)
    client.send(b'SNDT 1,"OPOF"\n')
    client.send(b"*IDN?\n")
    client.read_line()
    assert frozen_lab.tes.state.i_bias == 0.0
    assert frozen_lab.tes.state.branch(frozen_lab.tes.params) == "superconducting"


def test_faults_from_the_config(connect: Callable[..., RawClient]) -> None:
    config = simulation_from_mapping(
        {
            "simulation": {
                "time_scale": 0.0,
                "instruments": {
                    "ls372": {"overrange": ["A"]},
                    "ls336": {"open_sensor": ["B"]},
                    "keithley2400": {"faults": {"garbage": True}},
                    "scope": {"enabled": False},
                },
            }
        }
    )
    with SimLab(config) as lab:
        assert "scope" not in lab.servers
        ls372 = connect(lab.servers["ls372"].port)
        assert ls372.ask("*OPC?") == "1"
        lab.clock.advance(1.0)
        assert ls372.ask("RDGST? A") == "016"
        assert connect(lab.servers["ls336"].port).ask("RDGST? B") == "129"
        keithley = connect(lab.servers["keithley2400"].port)
        assert keithley.query("*IDN?").startswith(b"\x1b?#!ERR")


@pytest.mark.parametrize(
    ("simulation", "where"),
    [
        ({"time_scal": 2}, "simulation.time_scal"),
        ({"time_scale": -1}, "simulation"),
        ({"detector": "C"}, "simulation.detector"),
        ({"instruments": {"ls372": {"port": 70000}}}, "simulation.instruments.ls372"),
        ({"instruments": {"ls372": {"overrange": ["17"]}}}, "simulation.instruments"),
        ({"instruments": {"ls372": {"port": 5}, "ls336": {"port": 5}}}, "simulation.instruments"),
        ({"instruments": {"sr830": {"streaming": True}}}, "simulation.instruments"),
        ({"fridge": {"start": "room"}}, "simulation.fridge.start"),
    ],
)
def test_bad_configs_name_the_key(simulation: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        simulation_from_mapping({"simulation": simulation}, file="lab.yaml")
    assert info.value.key_path == where
    assert str(info.value).startswith(f"lab.yaml:{where}")


def test_missing_section_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="simulation"):
        simulation_from_mapping({"daemon": {}}, file="x.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("simulation: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_simulation_config(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_simulation_config(tmp_path / "missing.yaml")


def test_cli_list_with_fixed_ports_starts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FIXED_PORTS)
    for line, (name, port) in zip(lines, FIXED_PORTS.items(), strict=True):
        assert line.split()[0] == name
        assert line.endswith(f"TCPIP::127.0.0.1::{port}::SOCKET")


def test_cli_list_with_free_ports_reports_the_chosen_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(free_port_config(tmp_path)), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FIXED_PORTS)
    assert all(not line.endswith("::0::SOCKET") for line in lines)


def test_cli_bad_config_exits_2_with_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("simulation:\n  instruments:\n    ls372: {prot: 1}\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "simulation.instruments.ls372.prot" in err and str(path) in err


def _read_lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)


def test_cli_serves_until_sigint_then_exits_0(
    tmp_path: Path, connect: Callable[..., RawClient]
) -> None:
    config = free_port_config(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.cli", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        served = {}
        deadline = time.monotonic() + 30
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic())).strip()
            if line == READY_LINE:
                break
            name, *_, resource = line.split()
            served[name] = int(resource.split("::")[2])
        assert set(served) == set(FIXED_PORTS)
        assert connect(served["ls372"]).ask("*IDN?").startswith("LSCI,MODEL372")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_lab_writes_a_bluefors_log_directory(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    config = simulation_from_mapping(
        {"simulation": {"bluefors_log": {"directory": str(logs), "period_s": 0.05}}}
    )
    with SimLab(config.with_ports(0)) as lab:
        assert lab.wait_for_log_samples(2, timeout=10.0)
    (path,) = logs.glob("*/CH6 T *.log")
    first = path.read_bytes().split(b"\r\n")[0].split(b",")
    assert 0.007 < float(first[2]) < 0.02


def test_the_squid_starts_locked_so_the_scope_shows_pulses_not_a_rail(frozen_lab: SimLab) -> None:
    import numpy as np

    fll = frozen_lab.readout.fll
    assert fll.mode == "locked"
    trace = frozen_lab.readout.acquire(4000, 5e-7, event_at=1000)
    assert np.all(np.abs(trace) < 0.5 * fll.v_rail)  # in range, not railed
    assert trace[1000:1200].max() - np.median(trace[:900]) > 0.2  # the photon's pulse
