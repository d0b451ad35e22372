"""The tooling is part of the test suite: ruff (with bugbear) and mypy must pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed; install the dev extra: pip install -e '.[dev]'"
    return found


def test_ruff_passes() -> None:
    result = subprocess.run([_tool("ruff"), "check", "daq", "drivers", "gui", "simulators",
                             "tests"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_daq_and_drivers() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
