"""Config loading: typed values, and errors that name the file, the key path and the expectation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daq.config import DEFAULT_CONFIG, BusConfig, load_config
from daq.config_schema import from_mapping
from daq.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_the_embedded_default_loads() -> None:
    config = load_config()
    assert config.source == str(DEFAULT_CONFIG)
    assert config.bus.subscribe_url.startswith("tcp://127.0.0.1:")
    assert config.lab.name


def test_values_are_typed_and_defaults_fill_in(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "bus:\n  publish_port: 9000\n  heartbeat_s: 2\n"))
    assert config.bus.publish_port == 9000
    assert config.bus.heartbeat_s == 2.0 and isinstance(config.bus.heartbeat_s, float)
    assert config.bus.subscribe_port == BusConfig().subscribe_port


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bus:\n  publsh_port: 9000\n", "lab.yaml:bus.publsh_port: unknown key 'publsh_port'"),
        ("bus:\n  publish_port: nine\n", "lab.yaml:bus.publish_port: expected a whole number"),
        ("bus:\n  publish_port: 70000\n", "lab.yaml:bus: publish_port 70000 is not a TCP port"),
        ("bus:\n  heartbeat_s: true\n", "lab.yaml:bus.heartbeat_s: expected a number"),
        ("bus: [1, 2]\n", "lab.yaml:bus: expected a mapping (BusConfig)"),
        ("colour: blue\n", "lab.yaml:colour: unknown key 'colour'"),
        ("- 1\n- 2\n", "expected a mapping at the top"),
        ("bus:\n  host: [\n", "line 3"),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


@dataclass(frozen=True)
class Channel:
    name: str
    period_s: float = 1.0


@dataclass(frozen=True)
class Instrument:
    driver: str
    channels: list[Channel] = field(default_factory=list)
    options: dict[str, int] = field(default_factory=dict)
    mode: str | None = None


def test_nested_lists_and_mappings_report_the_full_key_path() -> None:
    data = {"driver": "ls372", "channels": [{"name": "mxc"}, {"name": "still", "period_s": "x"}]}
    with pytest.raises(ConfigError, match=r"instruments\.ls372\.channels\[1\]\.period_s"):
        from_mapping(Instrument, data, path="instruments.ls372")
    with pytest.raises(ConfigError, match="missing required key 'driver'"):
        from_mapping(Instrument, {})
    with pytest.raises(ConfigError, match=r"options\.timeout: expected a whole number"):
        from_mapping(Instrument, {"driver": "x", "options": {"timeout": 1.5}})
    ok = from_mapping(Instrument, {"driver": "x", "channels": [{"name": "a"}], "mode": None})
    assert ok.channels == [Channel("a", 1.0)] and ok.mode is None
