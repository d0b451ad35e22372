"""The facility config: four fridges in one file, one daemon each, one simulated lab each."""

from __future__ import annotations

from pathlib import Path

import pytest

from daq.config import load_config
from daq.daemon.check import check_config
from daq.errors import ConfigError
from daq.up import plan
from simulators.config import load_simulation_config
from simulators.facility import SimFacility

FACILITY = Path(__file__).resolve().parents[1] / "configs" / "facility.yaml"


def test_each_daemon_of_the_facility_is_a_valid_config_of_its_own() -> None:
    config = load_config(FACILITY)
    assert config.daemon_names == ["fridge1", "fridge2", "fridge3", "fridge4"]
    sources = set()
    for name in config.daemon_names:
        view = config.for_daemon(name)
        check_config(view)
        sources |= {inst.source for inst in view.instruments.values()}
        assert view.daemon.name == f"daemon-{name}" and view.bus == config.bus
        assert view.daemon.state_path.name == f"daemon-{name}"
    assert sources == {"fridge1", "fridge2", "fridge3", "fridge4", "tes1"}
    with pytest.raises(ConfigError, match="name the daemon"):
        config.for_daemon(None)
    with pytest.raises(ConfigError, match="no daemon named 'fridge9'"):
        config.for_daemon("fridge9")


def test_up_starts_one_daemon_per_fridge() -> None:
    children = plan(FACILITY, headless=True)
    daemons = [c.argv[-1] for c in children if c.name == "daemon"]
    assert daemons == ["fridge1", "fridge2", "fridge3", "fridge4"]


def test_the_simulated_facility_has_four_fridges_and_one_detector() -> None:
    sim = load_simulation_config(FACILITY)
    facility = SimFacility(sim)
    assert list(facility.labs) == ["fridge1", "fridge2", "fridge3", "fridge4"]
    served = {fridge: sorted(lab.servers) for fridge, lab in facility.labs.items()}
    assert "scope" in served["fridge1"] and "scope" not in served["fridge2"]
    assert served["fridge2"] == ["ls336", "ls372", "tpg366"]
    # fridge3 starts warm (a cool-down), the others at base: their physics are separate
    assert facility.labs["fridge3"].fridge.mxc_temperature() > 1.0
    assert facility.labs["fridge2"].fridge.mxc_temperature() < 0.05


def test_top_level_instruments_and_daemons_do_not_mix(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("instruments: {a: {driver: 'fake:FakeInstrument', resource: X, "
                    "source: f}}\ndaemons: {d1: {}}\n")
    with pytest.raises(ConfigError, match="keeps instruments, limits and interlocks inside"):
        load_config(path)
