"""The lab's data directory: outside the package by default, named by the config otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.config import load_config


def test_data_go_to_the_users_data_directory_unless_the_config_names_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUPDAQ_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "lab.yaml"
    path.write_text("lab: {name: Cryo Lab 2}\nlogger: {}\n")
    config = load_config(path)
    assert config.logger is not None
    root = tmp_path / "xdg" / "qupdaq" / "Cryo-Lab-2"
    assert config.logger.storage_dir == root
    assert config.daemon.state_path == root / "state" / "daemon"
    monkeypatch.setenv("QUPDAQ_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_config(path).daemon.state_path == (tmp_path / "elsewhere" / "Cryo-Lab-2" /
                                                   "state" / "daemon")
    path.write_text("lab: {name: x, data_dir: here}\nlogger: {directory: /abs/archive}\n"
                    "daemon: {state_dir: st}\n")
    config = load_config(path)
    assert config.logger is not None and config.logger.storage_dir == Path("/abs/archive")
    assert config.daemon.state_path == tmp_path / "st" / "daemon"
    path.write_text("lab: {name: x, data_dir: here}\nlogger: {}\n")
    assert load_config(path).daemon.state_path == tmp_path / "here" / "state" / "daemon"
