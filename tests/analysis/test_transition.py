"""R(T) fits on the simulated TES's transition seen through a (lagging) thermometer."""

from __future__ import annotations

import numpy as np
import pytest

from daq.analysis.transition import analyze_transition, fit_transition, split_sweeps
from simulators.physics.tes import SET_A_30NH, SET_B
from tests.analysis.simdata import transition_data


@pytest.mark.parametrize("params", [SET_B, SET_A_30NH], ids=["B", "A30"])
def test_tc_width_and_rn_per_direction(params) -> None:
    data = transition_data(params)
    result = analyze_transition(data.temperature_k, data.resistance_ohm)
    assert [f.direction for f in result.fits] == ["cooling", "warming"]
    for fit in result.fits:
        assert abs(fit.t_c_k - params.t_c) < 1e-3
        assert abs(fit.t_c_k - params.t_c) < 5 * fit.t_c_stderr_k + 5e-6
        assert fit.width_k == pytest.approx(data.true_width_k, rel=0.05, abs=0)
        assert fit.r_n_ohm == pytest.approx(params.r_n, rel=0.01, abs=0)
        assert fit.r_series_ohm == pytest.approx(params.r_l, abs=5e-6)
    assert abs(result.hysteresis_k) < 20e-6


def test_a_lagging_thermometer_splits_the_directions_symmetrically() -> None:
    lag, rate = 20.0, 10e-6
    data = transition_data(SET_B, lag_s=lag)
    result = analyze_transition(data.temperature_k, data.resistance_ohm)
    # Cooling, the thermometer still reads warm when the device passes T_c (and vice versa).
    assert result.by_direction("cooling")[0].t_c_k > SET_B.t_c
    assert result.by_direction("warming")[0].t_c_k < SET_B.t_c
    assert result.hysteresis_k == pytest.approx(-2 * rate * lag, rel=0.2, abs=0)
    assert abs(result.t_c_k - SET_B.t_c) < 1e-3


def test_error_function_model() -> None:
    data = transition_data(SET_B)
    cooling = split_sweeps(data.temperature_k)[0]
    fit = fit_transition(data.temperature_k[cooling], data.resistance_ohm[cooling], model="erf")
    assert fit.direction == "cooling" and fit.model == "erf"
    assert abs(fit.t_c_k - SET_B.t_c) < 1e-3
    assert fit.width_k == pytest.approx(data.true_width_k, rel=0.15, abs=0)  # a different step shape
    assert np.allclose(fit.resistance(np.array([SET_B.t_c])), SET_B.r_l + SET_B.r_n / 2,
                       rtol=0.02)


def test_sweeps_split_at_turning_points_not_at_noise() -> None:
    rng = np.random.default_rng(0)
    ramp = np.concatenate([np.linspace(0.06, 0.09, 300), np.linspace(0.09, 0.06, 300),
                           np.linspace(0.06, 0.08, 200)])
    noisy = ramp + rng.normal(0.0, 3e-6, ramp.size)
    pieces = split_sweeps(noisy)
    assert len(pieces) == 3
    assert [p.stop - p.start for p in pieces] == pytest.approx([300, 301, 201], abs=3)
    with pytest.raises(ValueError, match="misses the transition"):
        fit_transition(np.linspace(0.01, 0.02, 20), np.full(20, 0.3))
