"""Complex impedance: transfer functions, the SC / normal calibration and the one-body fit.

The data are the simulated TES's answer to a square wave from the generator,
integrated with the full nonlinear electrothermal equations and read out by a
flux-locked loop with its finite bandwidth (the "unknown" readout); R_n and
R_0 come from an I-V of the same device, as in a lab.
"""

from __future__ import annotations

import numpy as np
import pytest

from daq.analysis.impedance import (
    analyze_impedance,
    fit_impedance,
    merge_transfer_functions,
    one_body_impedance,
    transfer_function,
)
from daq.analysis.iv import IVCircuit, analyze_iv
from simulators.physics.tes import SET_A_30NH, SET_B
from tests.analysis.simdata import R_BIAS, impedance_data, iv_data


def test_transfer_function_of_a_known_filter_on_a_square_wave() -> None:
    dt, f0, per = 1e-5, 50.0, 2000
    t = np.arange(per * 8) * dt
    drive = np.where(np.mod(t * f0, 1.0) < 0.5, 1.0, -1.0)
    freqs = np.fft.rfftfreq(t.size, dt)
    h_true = 2.5 / (1 + 1j * freqs / 3e3)
    response = np.fft.irfft(np.fft.rfft(drive) * h_true, t.size)
    tf = transfer_function(drive, response, dt, f0)
    assert np.allclose(tf.freqs_hz, f0 * np.arange(1, tf.freqs_hz.size * 2, 2))  # odd harmonics
    assert np.allclose(tf.h, 2.5 / (1 + 1j * tf.freqs_hz / 3e3), rtol=1e-9)
    assert np.all(tf.sigma < 1e-9)
    with pytest.raises(ValueError, match="whole number"):
        transfer_function(drive, response, dt, 47.0)


def test_sine_sweep_pieces_merge_in_frequency_order() -> None:
    dt = 1e-5
    t = np.arange(20000) * dt
    parts = []
    for f in (400.0, 100.0):
        drive = np.sin(2 * np.pi * f * t)
        parts.append(transfer_function(drive, 3 * np.roll(drive, 1), dt, f))
    merged = merge_transfer_functions(*parts)
    assert list(merged.freqs_hz) == [100.0, 400.0]
    assert np.allclose(np.abs(merged.h), 3.0)


def test_fit_recovers_the_model_from_noise_free_data() -> None:
    f = np.geomspace(10, 1e5, 80)
    z = one_body_impedance(f, 8e-3, 0.7, 25.0, 0.9e-3)
    fit = fit_impedance(f, z, 8e-3, r_l_ohm=0.34e-3)
    assert fit.loop_gain == pytest.approx(25.0, rel=1e-6, abs=0)
    assert fit.beta == pytest.approx(0.7, rel=1e-6, abs=0)
    assert fit.tau_s == pytest.approx(0.9e-3, rel=1e-6, abs=0)
    assert fit.tau_i_s == pytest.approx(0.9e-3 / (1 - 25.0), rel=1e-6, abs=0)


def _chain(params, r_fraction):
    ivd = iv_data(params)
    iv = analyze_iv(ivd.bias_v, ivd.v_out, IVCircuit(params.r_sh, ivd.gain, R_BIAS),
                    bias_is_voltage=True)
    data = impedance_data(params, r_fraction=r_fraction)
    down = slice(0, iv.latch_index)
    order = np.argsort(iv.i_bias_a[down])
    r0 = float(np.interp(data.op.i_bias, iv.i_bias_a[down][order], iv.r_tes_ohm[down][order]))
    tfs = {name: transfer_function(data.drive_v[name], data.output_v[name], data.dt,
                                   data.frequency_hz) for name in data.drive_v}
    result = analyze_impedance(tfs["transition"], tfs["superconducting"], tfs["normal"],
                               r_n_ohm=iv.r_n_ohm, r0_ohm=r0)
    return data, result


@pytest.mark.parametrize(("params", "r_fraction"), [(SET_B, 0.6), (SET_A_30NH, 0.2)],
                         ids=["B-0.6Rn", "A30-0.2Rn"])
def test_loop_gain_and_time_constants_from_the_full_chain(params, r_fraction) -> None:
    data, result = _chain(params, r_fraction)
    fit = result.fit
    assert fit.loop_gain == pytest.approx(data.true_loop_gain, rel=0.10, abs=0)
    assert fit.tau_s == pytest.approx(data.true_tau_s, rel=0.10, abs=0)
    assert fit.tau_i_s == pytest.approx(data.true_tau_i_s, rel=0.10, abs=0)
    assert fit.beta == pytest.approx(data.true_beta, rel=0.10, abs=0)
    rl = params.r_l / data.op.r
    x = 1 + data.true_beta + rl
    true_tau_eff = data.true_tau_s * x / (x + (1 - rl) * data.true_loop_gain)
    assert fit.tau_eff_s == pytest.approx(true_tau_eff, rel=0.10, abs=0)
    assert fit.chi2_reduced < 3.0
    cal = result.calibration
    assert cal.r_l_ohm == pytest.approx(params.r_l, rel=0.02, abs=0)
    assert cal.inductance_h == pytest.approx(params.inductance, rel=0.02, abs=0)
