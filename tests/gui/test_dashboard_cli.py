"""``qupdaq dashboard`` and ``qupdaq bench gui`` on the command line; ``qupdaq up`` opens the
dashboard only where a window can open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daq.up import plan
from tests.gui.conftest import write_config
from tests.procs import ROOT, qupdaq, sim_lab_config


def test_up_opens_the_dashboard_when_there_is_a_display(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, _, _ = sim_lab_config(tmp_path)
    monkeypatch.setenv("DISPLAY", ":0")
    children = plan(path, headless=False)
    assert children[-1].name == "dashboard" and children[-1].argv[-2:] == ["dashboard",
                                                                        str(path)]
    assert all(c.name != "dashboard" for c in plan(path, headless=True))
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(key, raising=False)
    assert all(c.name != "dashboard" for c in plan(path, headless=False))
    assert "no display" in capsys.readouterr().out


def test_the_dashboard_command_says_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path)
    write_config(path, data)
    dashboard = qupdaq("dashboard", str(path), "--read-only", "--settings",
                       str(tmp_path / "d.ini"), env={"QT_QPA_PLATFORM": "offscreen"})
    try:
        line = dashboard.wait_line("dashboard ready", timeout_s=60)
        assert "title='Simulated lab'" in line and "fridges=1" in line and "charts=2" in line
    finally:
        code = dashboard.stop()
    assert code == 0 and "dashboard stopped" in dashboard.lines
    assert (tmp_path / "d.ini").exists()  # the layout was saved on the way out


def test_a_bad_daemon_name_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "daq.cli", "dashboard",
                             str(ROOT / "configs" / "facility.yaml"), "--daemon", "fridge9"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no daemon named 'fridge9'" in result.stderr


def test_bench_gui_prints_its_figures() -> None:
    result = subprocess.run([sys.executable, "-m", "daq.cli", "bench", "gui", "--scale", "0.1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    out = result.stdout
    assert "frames per second" in out and "publish-to-paint latency p99" in out, \
        out + result.stderr[-2000:]
    assert out.count("points held per chart") == 2  # as drawn, and the worst case
    fps = [float(line.split()[-4]) for line in out.splitlines()
           if "frames per second (window" in line]
    assert len(fps) == 2 and min(fps) > 5  # the goals (30) are the bench's own verdict
