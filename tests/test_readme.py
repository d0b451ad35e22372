"""Every command block of the README runs as written against the simulated lab.

The README's examples are what a new user types first, so they are run here
verbatim: the main job (`qupdaq up --headless configs/sim_lab.yaml`) is
started, the everyday commands and the Python example are run against it in
another process each, and the deployment commands write a starter config
and its units. Two things are adapted, and only these: the `configs/`
directory is a copy whose sim_lab.yaml listens on free ports (so tests can
run side by side), and `qupdaq` / `.venv/bin/qupdaq` / `python` mean this
interpreter's `python -m daq.cli` / `python`. Creating the virtual
environment and installing into it is what `.ci/run` does with the test
command (checked below to be the README's, verbatim) and what
`tests/test_deploy.py` does with the wheel.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daq.config import load_config
from daq.logger.history import HistoryClient
from tests.procs import ROOT, Service, sim_lab_config

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of ``language``, in order."""
    return [body for lang, body in _BLOCK.findall(README.read_text()) if lang == language]


def commands(block: str) -> list[str]:
    """The shell commands of a block (comments stripped, continuation lines joined)."""
    joined = block.replace("\\\n", " ")
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def argv(command: str) -> list[str]:
    """``command`` as this interpreter runs it."""
    words = shlex.split(command)
    head = words[0].removeprefix(".venv/bin/")
    if head == "qupdaq":
        return [sys.executable, "-m", "daq.cli", *words[1:]]
    raise AssertionError(f"README command {command!r}: not a qupdaq command")


def test_the_readme_has_exactly_two_setup_commands_and_ci_runs_the_second() -> None:
    setup = [commands(b) for b in blocks("bash")[:2]]
    assert all(len(c) == 1 for c in setup), setup
    main, tests = setup[0][0], setup[1][0]
    assert main.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert main.endswith(".venv/bin/qupdaq up --headless configs/sim_lab.yaml")
    assert tests.startswith("python3 -m venv .venv && .venv/bin/pip install")
    assert tests.endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "CI must run the README's test command verbatim"


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    """A working directory whose configs/ is the shipped one, sim_lab.yaml on free ports."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    state = tmp_path / "lab"
    state.mkdir()
    path, _, _ = sim_lab_config(state, time_scale=10.0)
    shutil.copy(path, tmp_path / "configs" / "sim_lab.yaml")
    return tmp_path


def _env(cwd: Path) -> dict[str, str]:
    return {"QUPDAQ_DATA_DIR": str(cwd / "userdata")}  # never the user's own data directory


def _run(args: list[str], cwd: Path, timeout: float = 180) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **_env(cwd)})
    assert done.returncode == 0, f"{shlex.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_every_readme_example_runs_as_written_against_the_simulated_lab(
        lab_dir: Path) -> None:
    main = commands(blocks("bash")[0])[0].split(" && ")[-1]
    # The README's paths are relative to where the user stands: start the main job there.
    up = Service(*argv(main)[1:], name="up", cwd=lab_dir, env=_env(lab_dir))
    try:
        up.wait_line("qupdaq up: everything is running", timeout_s=120)
        config = load_config(lab_dir / "configs" / "sim_lab.yaml")
        assert config.logger is not None
        _wait_for_archive(config.logger.history_endpoint, "fridge1/t4k")

        everyday = commands(blocks("bash")[2])
        outputs = {cmd: _run(argv(cmd), lab_dir) for cmd in everyday}
        assert "data/fridge1/t4k" in outputs[everyday[0]]
        rows = (lab_dir / "t4k.csv").read_text().splitlines()
        assert rows[0].endswith(",quality") and len(rows) > 1
        assert any("fridge1_4k_rising" in out and "shelved" in out.lower()
                   for out in outputs.values()), "the shelve shows in its answer"
        vphi = next(out for cmd, out in outputs.items() if "vphi" in cmd)
        assert "period" in vphi.lower()

        python = blocks("python")[0]
        out = subprocess.run([sys.executable, "-c", python], cwd=lab_dir, capture_output=True,
                             text=True, timeout=60, env={**os.environ, **_env(lab_dir)})
        assert out.returncode == 0, out.stderr
        setpoint, reading = out.stdout.splitlines()[:2]
        assert float(setpoint) == pytest.approx(0.015)
        value, units, quality = reading.split()
        assert units == "K" and quality == "0" and 0 < float(value) < 1
    finally:
        up.proc.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
        try:
            assert up.proc.wait(60) == 0
        finally:
            up.stop()

    deploy = commands(blocks("bash")[3])
    for cmd in deploy:
        _run(argv(cmd), lab_dir)
    starter = yaml.safe_load((lab_dir / "mylab" / "lab.yaml").read_text())
    assert starter["instruments"], "the starter names the usual instruments"
    units = sorted(p.name for p in (lab_dir / "mylab" / "units").iterdir())
    assert "qupdaq-daemon.service" in units and "qupdaq-broker.service" in units


def _wait_for_archive(history_url: str, stream: str) -> None:
    """Until the archive holds a sample of ``stream`` (the export then has rows)."""
    import time

    client = HistoryClient(history_url)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if len(client.query(stream)[0]):
                    return
            except Exception:  # the logger is still starting  # noqa: BLE001
                pass
            time.sleep(0.5)
        raise AssertionError(f"no {stream} in the archive after 60 s")
    finally:
        client.close()
