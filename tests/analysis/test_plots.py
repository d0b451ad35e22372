"""Every analysis result renders to a PNG from simulator data (artifacts/analysis/, git-ignored).

The figures are for a person to look at; the tests check that each one is
made without pyplot, has labelled axes with units, and is written as a PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from daq.analysis import plots
from daq.analysis.impedance import analyze_impedance, transfer_function
from daq.analysis.iv import IVCircuit, analyze_iv
from daq.analysis.noise import average_psd
from daq.analysis.pulses import analyze_pulses
from daq.analysis.squid import analyze_vphi
from daq.analysis.transition import analyze_transition
from simulators.physics.tes import SET_B
from tests.analysis.simdata import (
    R_BIAS,
    impedance_data,
    iv_data,
    noise_data,
    pulse_data,
    transition_data,
    vphi_data,
)

OUT = Path(__file__).resolve().parents[2] / "artifacts" / "analysis"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check(fig: Figure, name: str) -> None:
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), name
        assert "(" in ax.get_xlabel() or ax.get_xlabel().startswith("R /"), ax.get_xlabel()
    path = plots.save(fig, OUT / f"{name}.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000


def test_no_pyplot_figures_are_left_behind() -> None:
    # Rendering goes through Figure + the Agg canvas; pyplot's figure manager stays empty.
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    data = vphi_data()
    plots.plot(analyze_vphi(data.coil_current_a, data.output_v))
    assert plt.get_fignums() == before
    assert matplotlib.get_backend()  # any backend; ours never switches it


def test_iv_figure() -> None:
    data = iv_data(SET_B)
    result = analyze_iv(data.bias_v, data.v_out, IVCircuit(SET_B.r_sh, data.gain, R_BIAS),
                        bias_is_voltage=True)
    _check(plots.plot(result, title="TES I-V (design B, T_bath = 55 mK)"), "iv")


def test_impedance_figure() -> None:
    data = impedance_data(SET_B, r_fraction=0.6)
    tfs = {k: transfer_function(data.drive_v[k], data.output_v[k], data.dt, data.frequency_hz)
           for k in data.drive_v}
    result = analyze_impedance(tfs["transition"], tfs["superconducting"], tfs["normal"],
                               r_n_ohm=SET_B.r_n, r0_ohm=data.op.r)
    _check(plots.plot(result, title="Z_TES at R = 0.6 R_n (design B)"), "impedance")


def test_transition_figure() -> None:
    data = transition_data(SET_B, lag_s=20.0)
    _check(plots.plot(analyze_transition(data.temperature_k, data.resistance_ohm)),
           "transition")


def test_vphi_figure() -> None:
    data = vphi_data()
    _check(plots.plot(analyze_vphi(data.coil_current_a, data.output_v)), "vphi")


def test_noise_figure() -> None:
    data = noise_data()
    spectrum = average_psd(data.records_v, data.dt, gain_v_per_a=data.gain)
    f = spectrum.freqs_hz[1:]
    _check(plots.plot(spectrum, model=(f, data.model_psd(f)),
                      model_label="model at the TES (before the loop's roll-off)"), "noise")


def test_pulse_figure() -> None:
    data = pulse_data()
    noise = average_psd(data.noise_a, data.dt)
    result = analyze_pulses(data.pulses_a, data.presamples, data.dt, noise, data.energy_ev)
    _check(plots.plot(result, title="Average 10 eV pulse (design A, 30 nH)"), "pulses")


def test_unknown_results_are_refused() -> None:
    with pytest.raises(TypeError, match="no figure"):
        plots.plot(np.zeros(3))
