"""Noise spectra: window normalisation, the pulse veto, and the simulated TES's model noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from daq.analysis.noise import average_psd, veto_pulses
from tests.analysis.simdata import noise_data


@pytest.mark.parametrize("window", ["hann", "boxcar", "blackman"])
def test_white_noise_reads_two_sigma_squared_over_fs_whatever_the_window(window: str) -> None:
    rng = np.random.default_rng(1)
    sigma, dt = 3e-9, 1e-5
    records = rng.normal(0.0, sigma, (40, 4096))
    spectrum = average_psd(records, dt, segment_samples=1024, window=window,
                           veto_threshold=None)
    assert np.mean(spectrum.psd_a2_per_hz[1:-1]) == pytest.approx(2 * sigma**2 * dt, rel=0.02, abs=0)
    f, ref = welch(records, 1 / dt, window=window, nperseg=1024, axis=1)
    assert np.allclose(spectrum.psd_a2_per_hz, ref.mean(axis=0), rtol=1e-9)
    assert spectrum.n_segments == 40 * 7  # half-overlapping segments
    assert spectrum.resolution_hz == pytest.approx(f[1])


def test_gain_converts_loop_volts_to_tes_amperes() -> None:
    rng = np.random.default_rng(2)
    amps = rng.normal(0.0, 1e-9, (10, 2048))
    direct = average_psd(amps, 1e-6, veto_threshold=None)
    via = average_psd(-4e5 * amps, 1e-6, gain_v_per_a=-4e5, veto_threshold=None)
    assert np.allclose(direct.psd_a2_per_hz, via.psd_a2_per_hz)


@pytest.fixture(scope="module")
def tes_noise():
    return noise_data()


def test_tes_noise_at_1khz_matches_the_model(tes_noise) -> None:
    data = tes_noise
    spectrum = average_psd(data.records_v, data.dt, gain_v_per_a=data.gain)
    for freq in (300.0, 1e3, 1e4):
        model = float(np.sqrt(data.model_psd(np.array([freq]))[0]))
        assert spectrum.level(freq) == pytest.approx(model, rel=0.2, abs=0), freq
    # Poisson: a 33 ms record at 5 photons/s holds a photon with probability 15 %.
    expected = len(data.records_v) * (1 - np.exp(-data.rate * data.records_v.shape[1] * data.dt))
    assert 0.4 * expected <= spectrum.n_vetoed <= 2.0 * expected
    assert spectrum.n_records + spectrum.n_vetoed == len(data.records_v)


def test_without_the_veto_pulses_swamp_the_low_frequencies(tes_noise) -> None:
    data = tes_noise
    vetoed = average_psd(data.records_v, data.dt, gain_v_per_a=data.gain)
    raw = average_psd(data.records_v, data.dt, gain_v_per_a=data.gain, veto_threshold=None)
    assert raw.level(300.0) > 3 * vetoed.level(300.0)


def test_slow_drifts_do_not_veto() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(4096) * 1e-5
    records = rng.normal(0, 1.0, (20, t.size)) + 50.0 * np.sin(2 * np.pi * 3.0 * t)
    records[7, 2000:] += 30.0 * np.exp(-(t[2000:] - t[2000]) / 2e-3)  # one pulse
    flags = veto_pulses(records, 1e-5)
    assert list(np.nonzero(flags)[0]) == [7]
