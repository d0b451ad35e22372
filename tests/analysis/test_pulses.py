"""Pulses of the simulated TES: template, rise / fall, optimal filter and resolution."""

from __future__ import annotations

import numpy as np
import pytest

from daq.analysis.noise import average_psd
from daq.analysis.pulses import (
    FWHM_PER_SIGMA,
    OptimalFilter,
    analyze_pulses,
    average_pulse,
    fit_pulse_shape,
)
from tests.analysis.simdata import pulse_data


@pytest.fixture(scope="module")
def data():
    return pulse_data()


@pytest.fixture(scope="module")
def result(data):
    noise = average_psd(data.noise_a, data.dt)
    return analyze_pulses(data.pulses_a, data.presamples, data.dt, noise, data.energy_ev)


def test_rise_and_fall_times_are_the_small_signal_time_constants(data, result) -> None:
    assert result.shape.fall_s == pytest.approx(data.true_fall_s, rel=0.10, abs=0)
    assert result.shape.rise_s == pytest.approx(data.true_rise_s, rel=0.15, abs=0)
    assert result.template.peak_a < 0  # the current drops when a photon heats the TES
    assert result.template.n_averaged + result.template.n_rejected == len(data.pulses_a)


def test_optimal_filter_resolution_matches_the_model_and_the_measured_spread(data,
                                                                             result) -> None:
    assert np.median(result.energies) == pytest.approx(data.energy_ev, rel=0.01, abs=0)
    assert result.resolution_fwhm_predicted == pytest.approx(data.true_fwhm_ev, rel=0.2, abs=0)
    assert result.resolution_fwhm_measured == pytest.approx(result.resolution_fwhm_predicted,
                                                            rel=0.25)


def test_filter_normalisation_on_white_noise_by_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    n, dt, sigma = 1024, 1e-6, 1.0
    t = np.arange(n) * dt
    template = np.where(t >= 200e-6, np.exp(-(t - 200e-6) / 50e-6), 0.0)
    noise = average_psd(rng.normal(0, sigma, (400, n)), dt, window="boxcar", veto_threshold=None)
    of = OptimalFilter(template, noise, dt)
    trials = 3.0 * template + rng.normal(0, sigma, (2000, n))
    amps = of.amplitudes(trials)
    assert np.mean(amps) == pytest.approx(3.0, abs=4 * of.sigma_amplitude / np.sqrt(2000))
    assert np.std(amps) == pytest.approx(of.sigma_amplitude, rel=0.06, abs=0)
    # For white noise the filter is the matched filter: sigma^2 / sum((s - mean s)^2).
    centred = template - template.mean()
    assert of.sigma_amplitude == pytest.approx(sigma / np.sqrt(centred @ centred), rel=0.03, abs=0)
    assert of.resolution_fwhm(5.9) == pytest.approx(FWHM_PER_SIGMA * 5.9 * of.sigma_amplitude)


def test_pile_up_records_are_left_out_of_the_template(data) -> None:
    records = data.pulses_a.copy()
    later = data.presamples + 600
    records[:5, later:] += records[:5, data.presamples:-600] * 0.8  # a second photon
    template = average_pulse(records, data.presamples, data.dt)
    assert template.n_rejected >= 5
    shape = fit_pulse_shape(template)
    assert shape.fall_s == pytest.approx(data.true_fall_s, rel=0.10, abs=0)


def test_mismatched_noise_grid_is_refused(data) -> None:
    noise = average_psd(data.noise_a, data.dt, segment_samples=1024)
    with pytest.raises(ValueError, match="record length"):
        OptimalFilter(np.ones(2048), noise, data.dt)
