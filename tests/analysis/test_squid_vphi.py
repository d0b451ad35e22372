"""V-Phi analysis of the simulated SQUID's tune-mode output swept through the feedback coil."""

from __future__ import annotations

import numpy as np
import pytest

from daq.analysis.squid import PHI0_WB, analyze_vphi
from tests.analysis.simdata import vphi_data


@pytest.fixture(scope="module")
def data():
    return vphi_data()


def test_period_is_one_flux_quantum_in_the_feedback_coil(data) -> None:
    result = analyze_vphi(data.coil_current_a, data.output_v)
    assert result.period_a == pytest.approx(data.true_period_a, rel=0.01, abs=0)
    assert result.mutual_inductance_h == pytest.approx(PHI0_WB / data.true_period_a, rel=0.01, abs=0)
    assert result.amplitude_v == pytest.approx(data.true_amplitude_v, rel=0.02, abs=0)
    assert result.slope_v_per_a == pytest.approx(data.true_slope_v_per_a, rel=0.03, abs=0)
    assert result.residual_rms_v < 3e-3  # the noise added, 2 mV


def test_lock_points_sit_on_the_steepest_slope_of_either_sign(data) -> None:
    rising = analyze_vphi(data.coil_current_a, data.output_v, slope_sign=1)
    falling = analyze_vphi(data.coil_current_a, data.output_v, slope_sign=-1)
    assert falling.slope_v_per_a == pytest.approx(-rising.slope_v_per_a, rel=0.02, abs=0)
    # The two lock points are half a period apart, at the curve's mid level.
    gap = (falling.lock_current_a - rising.lock_current_a) % rising.period_a
    assert gap == pytest.approx(0.5 * rising.period_a, rel=0.02, abs=0)
    for r in (rising, falling):
        assert r.lock_voltage_v == pytest.approx(r.mean_v, abs=0.02 * r.amplitude_v)
        assert len(r.lock_points_a) == 5
        assert np.all(np.diff(r.lock_points_a) == pytest.approx(r.period_a))
        assert min(r.coil_current_a) <= r.lock_current_a <= max(r.coil_current_a)


def test_a_sweep_shorter_than_a_period_and_a_half_is_refused(data) -> None:
    short = data.coil_current_a < 25e-6
    with pytest.raises(ValueError, match="1.5 periods"):
        analyze_vphi(data.coil_current_a[short], data.output_v[short])
