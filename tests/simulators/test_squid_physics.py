"""SQUID V-Phi and flux-locked loop: periodicity, locked gain, flux jumps, rails, reset."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.physics.squid import PHI0, FluxLockedLoop, SquidVPhi, biased_squid


def _ramp(n0: int, n_ramp: int, n1: int, total: float) -> np.ndarray:
    return np.concatenate([np.zeros(n0), np.linspace(0.0, total, n_ramp), np.full(n1, total)])


def test_v_phi_is_periodic_in_phi0_with_the_documented_slope():
    squid = SquidVPhi(v0=100e-6, dv=40e-6)
    phi = np.linspace(-3 * PHI0, 3 * PHI0, 601)
    v = np.asarray(squid.voltage(phi))
    assert np.allclose(squid.voltage(phi + PHI0), v, atol=1e-15)
    assert v.max() == pytest.approx(120e-6, rel=1e-4)
    assert v.min() == pytest.approx(80e-6, rel=1e-4)
    slope = np.max(np.gradient(v, phi))
    assert slope == pytest.approx(squid.max_slope, rel=1e-3)
    assert squid.max_slope == pytest.approx(np.pi * 40e-6 / PHI0)


def test_bias_dependence_of_the_modulation():
    assert biased_squid(10e-6).dv == 0.0  # below the critical current: superconducting
    depths = [biased_squid(i).dv for i in (18e-6, 25e-6, 40e-6)]
    assert depths[1] == pytest.approx(40e-6) and depths[1] > depths[0] and depths[1] > depths[2]
    assert biased_squid(40e-6).v0 > biased_squid(25e-6).v0


def test_tune_mode_output_is_v_phi_with_period_phi0_in_the_input_coil():
    fll = FluxLockedLoop(SquidVPhi(v0=100e-6, dv=40e-6), mode="tune", offset=0.0)
    current = np.linspace(0.0, 4 * PHI0 / fll.m_in, 4001)
    out = fll.process(current, 1e-6)
    assert np.allclose(out, fll.squid.voltage(fll.m_in * current))
    # Four periods of V(Phi) over four flux quanta: four rising zero crossings of V - V0.
    centred = out - 100e-6
    rising = np.nonzero((centred[:-1] < 0) & (centred[1:] >= 0))[0]
    assert np.diff(current[rising]) == pytest.approx(PHI0 / fll.m_in, rel=1e-3)


def test_test_signal_traces_v_phi_with_period_phi0_on_the_flux_line():
    fll = FluxLockedLoop(SquidVPhi(v0=100e-6, dv=40e-6), mode="tune", offset=100e-6)
    fll.test_flux_pp = 3 * PHI0
    fll.test_frequency = 1e3
    dt = 1e-7
    out = fll.process(np.zeros(5000), dt)  # the rising half of one triangle: 3 flux quanta
    rising = np.nonzero((out[:-1] < 0) & (out[1:] >= 0))[0]
    assert len(rising) == 3
    flux_per_sample = 2 * 3 * PHI0 * fll.test_frequency * dt
    assert np.diff(rising) * flux_per_sample == pytest.approx(PHI0, rel=2e-3)


def test_locked_output_is_minus_min_over_mf_times_rf_times_current():
    fll = FluxLockedLoop()
    t = np.arange(20000) * 1e-6
    current = 0.3e-6 * np.sin(2 * np.pi * 200 * t)  # slow compared with the loop
    out = fll.process(current, 1e-6)
    expected = -(fll.m_in / fll.m_f) * fll.r_f * current
    assert np.max(np.abs(out - expected)) < 2e-3 * np.max(np.abs(expected))
    assert fll.gain == pytest.approx(-(fll.m_in / fll.m_f) * fll.r_f)
    assert fll.flux_jumps == 0


def test_loop_settles_with_its_time_constant():
    fll = FluxLockedLoop()
    tau = fll.loop_time_constant()
    dt = tau / 50
    step = 0.1 * PHI0 / fll.m_in
    out = fll.process(np.concatenate([np.zeros(10), np.full(1000, step)]), dt)
    final = fll.gain * step
    assert out[-1] == pytest.approx(final, rel=1e-6)
    assert out[10 + 50] == pytest.approx(final * (1 - np.exp(-1)), rel=0.05)


def test_fast_slew_slips_by_exactly_one_flux_quantum():
    fll = FluxLockedLoop()
    total = 0.8 * PHI0 / fll.m_in
    dt = 1e-8
    # 0.8 Phi0 in 0.1 us: 8e6 Phi0/s, well above the 1e6 Phi0/s slew limit.
    out = fll.process(_ramp(20, 10, 2000, total), dt)
    ideal = fll.gain * total
    assert fll.flux_jumps in (1, -1)
    assert abs(out[-1] - ideal) == pytest.approx(fll.jump_step, rel=1e-6)
    assert fll.jump_step == pytest.approx(fll.r_f * PHI0 / fll.m_f)


def test_same_flux_change_slowly_does_not_jump():
    fll = FluxLockedLoop()
    total = 0.8 * PHI0 / fll.m_in
    out = fll.process(_ramp(20, 2000, 2000, total), 1e-8)  # 4e4 Phi0/s
    assert fll.flux_jumps == 0
    assert out[-1] == pytest.approx(fll.gain * total, rel=1e-6)


def test_bigger_integrator_capacitor_slews_slower_and_slips():
    total = 0.6 * PHI0 / FluxLockedLoop().m_in
    ramp = _ramp(20, 500, 20000, total)  # 0.6 Phi0 in 5 us: 1.2e5 Phi0/s
    fast = FluxLockedLoop(c_int=1.5e-9)
    slow = FluxLockedLoop(c_int=150e-9)
    assert slow.flux_slew_limit == pytest.approx(fast.flux_slew_limit / 100)
    fast.process(ramp, 1e-8)
    slow.process(ramp, 1e-8)
    assert fast.flux_jumps == 0
    assert abs(slow.flux_jumps) >= 1


def test_output_saturates_at_the_rail_and_reset_relocks():
    fll = FluxLockedLoop(v_rail=10.0)
    big = 40e-6  # 4e5 V/A * 40 uA = 16 V: beyond the rail
    out = fll.process(np.linspace(0.0, big, 20000), 1e-6)
    assert out.min() == -10.0
    assert out[-1] < -9.9  # pinned at the rail while the flux keeps moving
    fll.reset()
    assert fll.resets == 1
    more = fll.process(big + np.linspace(0.0, 1e-6, 5000), 1e-6)
    # Relocked at the present flux: output starts near 0 and follows the gain again.
    assert abs(more[0]) < fll.jump_step
    assert more[-1] - more[0] == pytest.approx(fll.gain * 1e-6, rel=1e-2)


def test_auto_reset_returns_from_the_rail():
    fll = FluxLockedLoop(v_rail=10.0, auto_reset=True)
    out = fll.process(np.linspace(0.0, 40e-6, 20000), 1e-6)
    assert np.max(np.abs(out)) <= 10.0
    assert fll.resets >= 1
    assert abs(out[-1]) < 10.0


def test_without_a_lock_point_the_integrator_runs_into_a_rail():
    fll = FluxLockedLoop(SquidVPhi(v0=100e-6, dv=40e-6), offset=200e-6)  # above the curve
    out = fll.process(np.zeros(2000), 1e-5)
    assert abs(out[-1]) == pytest.approx(fll.v_rail)


def test_reset_held_and_idle_give_zero_output():
    fll = FluxLockedLoop()
    fll.reset_held = True
    assert np.all(fll.process(np.full(100, 1e-6), 1e-6) == 0.0)
    fll.reset_held = False
    fll.mode = "idle"
    assert np.all(fll.process(np.full(100, 1e-6), 1e-6) == 0.0)
