"""Recipes: typed loading, every mistake named with file, key path and reason, the examples.

The checks against the lab (targets, limits, streams) run on the embedded
simulated lab's config and a daemon's target list as ``Lab.list()`` gives it;
the end-to-end tests (test_runs_e2e) check them against a running daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.config import load_config
from daq.errors import ConfigError
from daq.runs.procedures import procedure_for
from daq.runs.recipe import ProcedureName, RecipeError, check_recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "configs" / "recipes").glob("*.yaml"))

#: What the simulated lab's daemon lists (target, kind, allowed range), as Lab.list() says it.
TARGETS: list[dict[str, Any]] = [
    {"target": t, "kind": kind, "allowed": allowed, "unit": unit}
    for t, kind, allowed, unit in [
        ("tes1/bias_voltage", "control", "-20 to 20 V", "V"),
        ("tes1/squid_feedback", "control", "one of ...", "Ohm"),
        ("tes1/squid_mode", "control", "one of lock, tune", ""),
        ("tes1/squid_reset", "action", "", ""), ("tes1/squid_lock", "action", "", ""),
        ("tes1/squid_flux", "control", "0 to 0.0001 A", "A"),
        ("tes1/squid_bias", "control", "0 to 0.002 A", "A"),
        *[(f"tes1/{n}", "control", "", "") for n in (
            "trigger_source", "trigger_level", "trigger_slope", "waveform_points",
            "timebase_scale", "timebase_position", "acquisition_type")],
        ("tes1/trigger_gen_configure", "action", "", ""),
        ("tes1/trigger_gen_output", "control", "", ""),
        *[(f"tes1/bias_mod_{n}", "control", "", "") for n in (
            "output", "function", "frequency", "amplitude", "offset", "duty")],
        *[(f"tes1/lockin_{n}", "control", "", "") for n in (
            "amplitude", "frequency", "time_constant", "sensitivity")],
        ("fridge1/mxc_setpoint", "control", "0 to 2000 K", "K"),
        ("fridge1/mxc_ramp", "action", "", ""), ("fridge1/mxc_stop_ramp", "action", "", ""),
        ("fridge1/sample_heater_range", "control", "", "A"),
        ("fridge1/sample_heater_mode", "control", "", ""),
    ]]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _check(path: Path) -> None:
    recipe = load_recipe(path)
    config = load_config(ROOT / "configs" / "sim_lab.yaml")
    check_recipe(recipe, config, TARGETS, procedure_for(recipe.procedure).uses(recipe))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_example_recipe_loads_and_passes_the_checks(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.lab == "../sim_lab.yaml" and recipe.text.startswith("#")
    _check(path)


def test_the_examples_cover_every_procedure() -> None:
    named = {load_recipe(p).procedure for p in RECIPES}
    assert named == set(ProcedureName)


def test_a_typo_in_a_key_names_file_and_key_path(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "procedure": "iv",
                             "iv": {"bias_v": [{"start": 1, "stop": 0, "stpe": 0.1}]}})
    with pytest.raises(ConfigError, match=r"recipe.yaml:iv.bias_v\[0\].stpe: unknown key"):
        load_recipe(path)


def test_a_wrong_type_and_a_bad_value_name_their_key(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "procedure": "noise", "noise": {"records": "many"}})
    with pytest.raises(ConfigError, match=r"noise.records"):
        load_recipe(path)
    path = _write(tmp_path, {"name": "x", "procedure": "iv",
                             "iv": {"bias_v": [{"start": 1, "stop": -1, "step": 0.1}]}})
    with pytest.raises(ConfigError, match=r"recipe.yaml:iv: .*one side of zero"):
        load_recipe(path)
    path = _write(tmp_path, {"name": "x", "procedure": "iv", "noise": {}})
    with pytest.raises(ConfigError, match="only its own section"):
        load_recipe(path)


def test_an_unknown_target_is_named_with_its_wiring_key(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "procedure": "iv",
                             "detector": {"wiring": {"bias": "tes1/bias_voltag"}}})
    with pytest.raises(RecipeError) as info:
        _check(path)
    assert "detector.wiring.bias: unknown target 'tes1/bias_voltag'" in str(info.value)
    assert "did you mean 'tes1/bias_voltage'" in str(info.value)
    assert str(path) in str(info.value)


def test_an_out_of_limit_sweep_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "procedure": "iv",
                             "iv": {"bias_v": [{"start": 14.0, "stop": 3.0, "step": 0.1},
                                               {"start": 3.0, "stop": 0.0, "step": 0.02}]}})
    with pytest.raises(RecipeError, match=r"iv.bias_v: 14 V is outside the limits of "
                                          r"tes1/bias_voltage \(-12 to 12 V\)"):
        _check(path)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, {"name": "x", "procedure": "transition",
                             "detector": {"wiring": {"lockin_x": "tes1/lockin_y"}},
                             "transition": {"start_k": 0.6, "stop_k": 0.7}})
    with pytest.raises(RecipeError) as info:
        _check(path)
    text = str(info.value)
    assert "detector.wiring.lockin_x: unknown stream 'tes1/lockin_y'" in text
    assert "transition.start_k: 0.6 K is outside the limits of fridge1/mxc_setpoint" in text
    assert len(info.value.problems) == 2
