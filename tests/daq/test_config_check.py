"""Misspelt specs, targets and limits are config errors at start, naming the valid names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.config import DEFAULT_CONFIG, load_config
from daq.daemon.check import check_config
from daq.errors import ConfigError


def _config(tmp_path: Path, edit: Any) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    edit(data)
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_embedded_config_passes() -> None:
    check_config(load_config(DEFAULT_CONFIG))


@pytest.mark.parametrize("edit,key_path,message", [
    (lambda d: d["instruments"]["ls372"]["controls"][0].update(spec="setpiont"),
     "instruments.ls372.controls[0].spec", "control 'setpiont' does not exist; valid: "),
    (lambda d: d["instruments"]["scope"]["poll"][0].update(spec="wavefrom"),
     "instruments.scope.poll[0].spec", "poll spec 'wavefrom' does not exist; valid: noise, segments, trigger_rate, waveform"),
    (lambda d: d["instruments"]["sim900"]["actions"][0].update(spec="port1.off"),
     "instruments.sim900.actions[0].spec", "action 'port1.off' does not exist"),
    (lambda d: d["limits"].update({"fridge1/mxc_setpiont": {"max": 1}}),
     "limits.fridge1/mxc_setpiont", "control target 'fridge1/mxc_setpiont' does not exist"),
    (lambda d: d["interlocks"][0].update(target="fridge1/heater"),
     "interlocks[0].target", "control target 'fridge1/heater' does not exist"),
    (lambda d: d["instruments"]["ls372"].update(setup={"tlimit_Z": 1.0}),
     "instruments.ls372.setup.tlimit_Z", "control 'tlimit_Z' does not exist"),
])
def test_a_misspelt_name_is_refused_with_file_key_path_and_valid_names(
        tmp_path: Path, edit: Any, key_path: str, message: str) -> None:
    path = _config(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        check_config(load_config(path))
    assert info.value.file == str(path) and info.value.key_path == key_path
    assert message in str(info.value)
