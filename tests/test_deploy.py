"""Deploying in a real lab: the installed product, its starter config, its systemd units."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import yaml

from daq.config import load_config
from daq.daemon.check import check_config
from daq.units import write_units
from tests.procs import ROOT, free_port, qupdaq

QUPDAQ = str(Path(sys.executable).with_name("qupdaq"))


def test_init_writes_a_starter_that_loads_and_validates(tmp_path: Path) -> None:
    done = subprocess.run([QUPDAQ, "init", str(tmp_path / "lab"), "--name", "Cryo Lab 3"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = load_config(tmp_path / "lab" / "lab.yaml")
    check_config(config)
    assert config.lab.name == "Cryo-Lab-3" and set(config.instruments) >= {"ls372", "tpg366"}
    assert config.instruments["ls372"].setup == {"tlimit_A": 0.8}
    again = subprocess.run([QUPDAQ, "init", str(tmp_path / "lab")], capture_output=True,
                           text=True, timeout=60)
    assert again.returncode != 0 and "exists already" in again.stderr


@pytest.mark.parametrize("user", [False, True])
def test_the_generated_units_pass_systemd_analyze_verify(tmp_path: Path, user: bool) -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze is installed by .ci/run"
    paths = write_units(ROOT / "configs" / "facility.yaml", tmp_path / "units", user=user,
                        command=QUPDAQ)
    names = sorted(p.name for p in paths)
    assert names == ["qupdaq-alarms.service", "qupdaq-broker.service",
                     "qupdaq-daemon-fridge1.service",
                     "qupdaq-daemon-fridge2.service", "qupdaq-daemon-fridge3.service",
                     "qupdaq-daemon-fridge4.service", "qupdaq-logger.service"]
    daemon = (tmp_path / "units" / "qupdaq-daemon-fridge2.service").read_text()
    assert "Type=notify" in daemon and "WatchdogSec=" in daemon
    assert "Restart=on-failure" in daemon and "After=qupdaq-broker.service" in daemon
    env = {**os.environ}
    args = ["systemd-analyze", "verify"]
    if user:
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        args.append("--user")
    done = subprocess.run([*args, *map(str, paths)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_daemon_speaks_the_service_managers_notify_protocol(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump({
        "bus": {"publish_port": free_port(), "subscribe_port": free_port(),
                "snapshot_port": free_port()},
        "daemon": {"name": "daemon-notify", "state_dir": str(tmp_path / "state"),
                   "control": {"bind": f"tcp://127.0.0.1:{free_port()}"}},
        "instruments": {"box": {"driver": "fake:FakeInstrument", "resource": "FAKE::1",
                                "source": "fridge1"}}}))
    daemon = qupdaq("daemon", str(config), env={"NOTIFY_SOCKET": str(notify_path),
                                                "WATCHDOG_USEC": "1000000"})
    try:
        said: list[str] = []
        while not any("WATCHDOG=1" in s for s in said):
            said.append(listener.recv(4096).decode())
        assert said[0].startswith("READY=1")
        daemon.proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in s for s in said):
            said.append(listener.recv(4096).decode())
    finally:
        daemon.stop()
        listener.close()


def test_the_wheel_installed_outside_the_source_tree_runs_the_simulated_lab(
        tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # a copy: the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "artifacts", "data", "*.egg-info", "__pycache__",
        ".*_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(wheels), str(source)], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this environment's site-packages (a path entry, not its
    # .pth files: the editable checkout stays out); qupdaq itself only from the wheel.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps",
                                str(next(wheels.glob("*.whl")))], capture_output=True,
                               text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "PYTHONPATH": ""}
    env.pop("QUPDAQ_DATA_DIR", None)
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import daq.config as c; print(c.__file__, c.DEFAULT_CONFIG)"],
                           capture_output=True, text=True, cwd=work, env=env, check=True)
    module, default = where.stdout.split()
    assert not module.startswith(str(ROOT)) and Path(default).is_file()
    up = subprocess.Popen([str(venv / "bin" / "qupdaq"), "up", "--headless"], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    lines: list[str] = []
    try:
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line)
            if "everything is running" in line:
                break
        assert any("everything is running" in line for line in lines), "".join(lines[-30:])
        time.sleep(5)  # let the archive fill
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=120)
    assert up.returncode == 0, rest[-3000:]
    archive = tmp_path / "xdg" / "qupdaq" / "sim-lab"
    assert (archive / "qupdaq.sqlite").is_file()
    assert (archive / "state" / "daemon-sim" / "spool.sqlite").is_file()
