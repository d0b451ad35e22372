"""I-V analysis on sweeps of the simulated TES: R_n, R_par, P_sat, branches, latching, offsets."""

from __future__ import annotations

import numpy as np
import pytest

from daq.analysis.iv import IVCircuit, analyze_iv
from daq.analysis.plots import plot_iv
from simulators.physics.tes import SET_A_30NH, SET_B
from tests.analysis.simdata import R_BIAS, iv_data


def _circuit(data) -> IVCircuit:
    return IVCircuit(r_shunt_ohm=data.params.r_sh, gain_v_per_a=data.gain, r_bias_ohm=R_BIAS)


@pytest.fixture(scope="module", params=[SET_B, SET_A_30NH], ids=["B", "A30"])
def sweep(request):
    data = iv_data(request.param)
    return data, analyze_iv(data.bias_v, data.v_out, _circuit(data), bias_is_voltage=True)


def test_normal_and_parasitic_resistance(sweep) -> None:
    data, result = sweep
    p = data.params
    assert result.r_n_ohm == pytest.approx(p.r_n, rel=0.02, abs=0)
    assert result.r_par_ohm == pytest.approx(p.r_par, rel=0.05, abs=0)
    assert result.output_offset_v == pytest.approx(data.offset_v, abs=1e-4)
    assert abs(result.normal_intercept_a) < 20e-9  # no flux jump: both branches meet at 0


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_saturation_power_at_a_fraction_of_rn(sweep, fraction: float) -> None:
    data, result = sweep
    assert result.p_at(fraction) == pytest.approx(data.true_p(fraction), rel=0.03, abs=0)
    if fraction == result.p_sat_fraction:
        assert result.p_sat_w == pytest.approx(data.true_p(fraction), rel=0.03, abs=0)


def test_branches_and_the_latch(sweep) -> None:
    data, result = sweep
    assert result.latch_index == data.truth_latch_index
    truth = np.array(data.truth_branch)
    ours = np.array(result.branch)
    assert np.array_equal(ours == "superconducting", truth == "superconducting")
    # Points within 2 % of R_n count as normal in the simulator; here only the straight line does.
    assert np.mean(ours == truth) > 0.95
    trans = result.transition_points()
    assert np.all(np.diff(result.r_tes_ohm[trans]) < 0)  # R falls on the way down
    assert np.all(result.r_tes_ohm[result.mask("superconducting")][:-1] < 1e-3 * data.params.r_n)


def test_bias_current_input_and_negative_polarity_agree() -> None:
    data = iv_data(SET_B)
    circuit = _circuit(data)
    ref = analyze_iv(data.bias_v, data.v_out, circuit, bias_is_voltage=True)
    in_amps = analyze_iv(data.bias_v / R_BIAS, data.v_out, circuit)
    assert in_amps.r_n_ohm == pytest.approx(ref.r_n_ohm, rel=1e-12, abs=0)
    # The negative sweep: bias and TES current change sign, the offset does not.
    mirrored = analyze_iv(-data.bias_v, 2 * data.offset_v - data.v_out, circuit,
                          bias_is_voltage=True)
    assert mirrored.r_n_ohm == pytest.approx(ref.r_n_ohm, rel=1e-9, abs=0)
    assert mirrored.p_sat_w == pytest.approx(ref.p_sat_w, rel=1e-9, abs=0)
    assert np.all(mirrored.i_tes_a[:-1] <= 0) and mirrored.latch_index == ref.latch_index


def test_a_flux_jump_at_the_latch_is_flagged_and_the_normal_offset_recovers() -> None:
    data = iv_data(SET_B, flux_jump=True)
    circuit = _circuit(data)
    naive = analyze_iv(data.bias_v, data.v_out, circuit, bias_is_voltage=True)
    assert abs(naive.normal_intercept_a) > 1e-6  # the branches no longer meet at zero
    fixed = analyze_iv(data.bias_v, data.v_out, circuit, bias_is_voltage=True,
                       offset_branch="normal")
    assert fixed.r_n_ohm == pytest.approx(data.params.r_n, rel=0.02, abs=0)
    assert fixed.p_sat_w == pytest.approx(data.true_p(0.9), rel=0.03, abs=0)


def test_refusals() -> None:
    data = iv_data(SET_B)
    circuit = _circuit(data)
    with pytest.raises(ValueError, match="polarity"):
        analyze_iv(np.concatenate([data.bias_v, -data.bias_v]),
                   np.concatenate([data.v_out, data.v_out]), circuit, bias_is_voltage=True)
    high = data.bias_v > 0.5 * R_BIAS * 1e-3  # the sweep stops above the latch
    with pytest.raises(ValueError, match="no superconducting branch"):
        analyze_iv(data.bias_v[high], data.v_out[high], circuit, bias_is_voltage=True)
    result = analyze_iv(data.bias_v[high], data.v_out[high], circuit, bias_is_voltage=True,
                        offset_branch="normal")
    assert result.latch_index is None
    assert result.r_n_ohm == pytest.approx(data.params.r_n + data.params.r_par, rel=0.02, abs=0)
    assert result.r_par_ohm is None  # unknown without a superconducting branch, not 0
    figure = plot_iv(result)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert any("R_par = unknown (no superconducting branch)" in t for t in texts)
    with pytest.raises(ValueError, match="r_bias_ohm"):
        analyze_iv(data.bias_v, data.v_out, IVCircuit(data.params.r_sh, data.gain),
                   bias_is_voltage=True)
