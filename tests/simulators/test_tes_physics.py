"""TES electrothermal model: design values, I-V branches and latching, pulses, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.physics import tes_device
from simulators.physics.readout import TESReadout
from simulators.physics.tes import (
    EV,
    K_B,
    SET_A,
    SET_A_30NH,
    SET_B,
    TES,
    NoiseModel,
    bias_for_resistance,
    iv_sweep,
    noise_psd,
    noise_trace,
    operating_point,
    phonon_factor,
    resistance,
    simulate_pulse,
    small_signal,
    small_signal_pulse,
    steady_states,
)


@pytest.fixture(scope="module")
def op_a():
    """Design A (30 nH) on the transition at R = 0.2 R_n."""
    return operating_point(SET_A_30NH, bias_for_resistance(SET_A_30NH, 0.2))


@pytest.fixture(scope="module")
def iv_down_up():
    """Design A swept down from the normal branch to zero and back up."""
    down = np.linspace(1.2e-3, 0.0, 241)
    return iv_sweep(SET_A_30NH, np.concatenate([down, down[::-1]]))


# ---- design values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "r_frac", "alpha", "beta", "g"),
    [(SET_A, 0.2, 197.0, 1.6, 170e-12), (SET_B, 0.15, 120.0, 1.69, 130e-12)],
)
def test_presets_reproduce_the_published_operating_point(params, r_frac, alpha, beta, g):
    op = operating_point(params, bias_for_resistance(params, r_frac))
    ss = small_signal(params, op)
    assert op.r / params.r_n == pytest.approx(r_frac, rel=1e-6)
    assert ss.alpha == pytest.approx(alpha, rel=1e-6)
    assert ss.beta == pytest.approx(beta, rel=1e-6)
    assert ss.g == pytest.approx(g, rel=1e-6)
    assert params.r_l == pytest.approx({0.2: 0.35e-3, 0.15: 0.34e-3}[r_frac])


def test_worked_check_for_set_a(op_a):
    ss = small_signal(SET_A_30NH, op_a)
    assert op_a.p == pytest.approx(2.1e-12, rel=0.1)
    assert op_a.i == pytest.approx(28e-6, rel=0.1)
    assert ss.loop_gain == pytest.approx(49, rel=0.1)
    assert ss.tau == pytest.approx(0.78e-3, rel=0.1)
    assert ss.overdamped
    assert ss.tau_plus == pytest.approx(6.9e-6, rel=0.1)
    assert ss.tau_minus == pytest.approx(28e-6, rel=0.1)


def test_set_a_at_67_nh_rings_but_is_stable():
    op = operating_point(SET_A, bias_for_resistance(SET_A, 0.2))
    ss = small_signal(SET_A, op)
    assert not ss.overdamped
    assert ss.rate_plus.real > 0 and ss.rate_minus.real > 0


def test_alpha_and_beta_match_finite_differences(op_a):
    p = SET_A_30NH
    ss = small_signal(p, op_a)
    dt, di = 1e-9, 1e-10
    dr_dt = (resistance(p, op_a.t + dt, op_a.i) - resistance(p, op_a.t - dt, op_a.i)) / (2 * dt)
    dr_di = (resistance(p, op_a.t, op_a.i + di) - resistance(p, op_a.t, op_a.i - di)) / (2 * di)
    assert ss.alpha == pytest.approx(op_a.t / op_a.r * dr_dt, rel=1e-4)
    assert ss.beta == pytest.approx(op_a.i / op_a.r * dr_di, rel=1e-4)


def test_operating_point_is_in_power_balance(op_a):
    p = SET_A_30NH
    v = op_a.i_bias * p.r_sh
    assert op_a.i * (p.r_l + op_a.r) == pytest.approx(v, rel=1e-9)
    assert op_a.p == pytest.approx(p.k * (op_a.t**p.n - p.t_bath**p.n), rel=1e-6)


# ---- I-V curve -----------------------------------------------------------------------------


def test_iv_down_sweep_has_normal_transition_superconducting_in_order(iv_down_up):
    down = iv_down_up.branch[:241]
    order = [b for k, b in enumerate(down) if k == 0 or b != down[k - 1]]
    assert order == ["normal", "transition", "superconducting"]


def test_iv_normal_and_superconducting_branches_follow_the_divider(iv_down_up):
    p = SET_A_30NH
    br = np.array(iv_down_up.branch)
    normal = (br == "normal") & (iv_down_up.r_tes > 0.999 * p.r_n)  # well above the edge
    sc = br == "superconducting"
    assert normal.sum() > 50
    expect_n = iv_down_up.i_bias * p.r_sh / (p.r_sh + p.r_par + p.r_n)
    expect_s = iv_down_up.i_bias * p.r_sh / (p.r_sh + p.r_par)
    assert np.allclose(iv_down_up.i_tes[normal], expect_n[normal], rtol=1e-3)
    assert np.allclose(iv_down_up.i_tes[sc], expect_s[sc], rtol=1e-6, atol=1e-15)


def test_iv_transition_is_constant_power_with_current_rising_as_voltage_falls(iv_down_up):
    br = np.array(iv_down_up.branch[:241])
    trans = np.nonzero(br == "transition")[0]
    assert trans.size > 20
    r_frac = iv_down_up.r_tes[trans] / SET_A_30NH.r_n
    mid = trans[(r_frac > 0.1) & (r_frac < 0.7)]
    power = iv_down_up.power[mid]
    assert power.max() / power.min() < 1.1  # roughly constant Joule power
    v, i = iv_down_up.v_tes[mid], iv_down_up.i_tes[mid]
    assert np.all(np.diff(v) < 0) and np.all(np.diff(i) > 0)  # I ~ 1/V


def test_latches_superconducting_on_the_way_down_and_stays_on_the_way_up(iv_down_up):
    down, up = np.array(iv_down_up.branch[:241]), np.array(iv_down_up.branch[241:])
    # The transition ends while the bias is still finite: the device latches.
    last_transition_bias = iv_down_up.i_bias[:241][down == "transition"].min()
    assert last_transition_bias > 0.1e-3
    assert np.all(up == "superconducting")  # hysteresis: no way back up without going normal
    assert "transition" in down


def test_hysteresis_region_has_two_stable_states():
    ib = bias_for_resistance(SET_A_30NH, 0.2)
    states = steady_states(SET_A_30NH, ib)
    stable = [s for s in states if s.stable]
    assert [s.branch(SET_A_30NH) for s in stable] == ["superconducting", "transition"]
    assert any(not s.stable for s in states)
    from_cold = operating_point(SET_A_30NH, ib, start_temperature=SET_A_30NH.t_bath)
    from_hot = operating_point(SET_A_30NH, ib)
    assert from_cold.branch(SET_A_30NH) == "superconducting"
    assert from_hot.branch(SET_A_30NH) == "transition"


def test_stateful_tes_follows_bias_history_and_bath_temperature():
    bath = {"t": 0.030}
    device = TES(SET_A_30NH, bath_temperature=lambda: bath["t"])
    ib = bias_for_resistance(SET_A_30NH, 0.2)
    assert device.set_bias(ib).branch(SET_A_30NH) == "superconducting"
    on = device.set_bias(ib, from_normal=True)
    assert on.branch(SET_A_30NH) == "transition"
    bath["t"] = 0.040
    warmer = device.refresh()
    assert warmer.t_bath == 0.040
    assert warmer.p < on.p  # less power needed to hold the TES at T_c


# ---- pulses --------------------------------------------------------------------------------


def _fit_decay(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(t, np.log(np.abs(y)), 1)
    return -1.0 / slope, math.exp(intercept) * np.sign(y[0])


def test_time_domain_pulse_matches_small_signal_formula(op_a):
    dt, n = 0.2e-6, 1500
    t = np.arange(n) * dt
    numeric = simulate_pulse(SET_A_30NH, op_a, 5 * EV, dt, n) - op_a.i
    analytic = small_signal_pulse(SET_A_30NH, op_a, 5 * EV, t)
    assert numeric.min() < 0  # the current drops
    assert np.max(np.abs(numeric - analytic)) < 0.02 * np.abs(analytic).max()


def test_rise_and_fall_times_from_time_domain_match_small_signal(op_a):
    ss = small_signal(SET_A_30NH, op_a)
    dt, n = 0.2e-6, 1500
    t = np.arange(n) * dt
    pulse = simulate_pulse(SET_A_30NH, op_a, 5 * EV, dt, n) - op_a.i
    tail = (t > 6 * ss.tau_plus) & (t < 8 * ss.tau_minus)
    tau_fall, amp_fall = _fit_decay(t[tail], pulse[tail])
    early = (t > 0.1 * ss.tau_plus) & (t < 2.5 * ss.tau_plus)
    residual = pulse[early] - amp_fall * np.exp(-t[early] / tau_fall)
    tau_rise, _ = _fit_decay(t[early], residual)
    assert tau_fall == pytest.approx(ss.tau_minus, rel=0.1)
    assert tau_rise == pytest.approx(ss.tau_plus, rel=0.1)
    assert tau_fall == pytest.approx(28e-6, rel=0.1)
    assert tau_rise == pytest.approx(6.9e-6, rel=0.1)


def test_large_pulses_saturate(op_a):
    dt, n = 0.5e-6, 400
    small = simulate_pulse(SET_A_30NH, op_a, 5 * EV, dt, n) - op_a.i
    large = simulate_pulse(SET_A_30NH, op_a, 2000 * EV, dt, n) - op_a.i
    linear_peak = small.min() * 400
    assert abs(large.min()) < 0.8 * abs(linear_peak)
    assert np.isfinite(large).all()


def test_pulse_waits_for_its_pretrigger(op_a):
    pulse = simulate_pulse(SET_A_30NH, op_a, 50 * EV, 1e-6, 300, n_pre=100)
    assert np.all(pulse[:101] == op_a.i)  # absorption at sample 100: current still unchanged
    assert pulse[110] < op_a.i


# ---- noise ---------------------------------------------------------------------------------


def test_noise_components_have_the_model_levels(op_a):
    p = SET_A_30NH
    model = NoiseModel()
    ss = small_signal(p, op_a)
    f = np.array([1.0, 10.0, 1e7])
    psd = noise_psd(p, op_a, f, model)
    # Phonon noise at low frequency through the DC power-to-current responsivity
    # (Irwin & Hilton eq. for s_I(0)).
    s_i0 = (
        -1.0
        / (op_a.i * op_a.r)
        / (p.inductance / (ss.tau_el * op_a.r * ss.loop_gain) + 1.0 - p.r_l / op_a.r)
    )
    s_p = 4 * K_B * op_a.t**2 * ss.g * phonon_factor(p, op_a)
    assert psd.phonon[0] == pytest.approx(s_i0**2 * s_p, rel=1e-3)
    # SQUID noise: white level (S_Phi / M_in^2) with the 1/f knee.
    white = (model.squid_flux_noise / model.m_in) ** 2
    assert psd.squid[1] == pytest.approx(2 * white, rel=1e-9)  # at the 10 Hz knee
    assert psd.squid[2] == pytest.approx(white, rel=1e-4)
    # Far above every pole the Johnson noise is limited by the inductance alone.
    xi = 1 + 2 * ss.beta
    s_v = 4 * K_B * (op_a.t * op_a.r * xi + op_a.t_bath * p.r_l)
    omega_l = 2 * math.pi * f[2] * p.inductance
    assert psd.tes_johnson[2] + psd.load_johnson[2] == pytest.approx(s_v / omega_l**2, rel=0.01)
    assert psd.phonon[2] < 1e-3 * psd.phonon[0]
    assert np.allclose(psd.total, psd.tes_johnson + psd.load_johnson + psd.phonon + psd.squid)


def test_ballistic_and_diffusive_phonon_factors(op_a):
    t = op_a.t_bath / op_a.t
    n = SET_A_30NH.n
    assert phonon_factor(SET_A_30NH, op_a) == pytest.approx((t ** (n + 1) + 1) / 2)
    diffusive = n / (2 * n + 1) * (1 - t ** (2 * n + 1)) / (1 - t**n)
    assert phonon_factor(SET_A_30NH, op_a, "diffusive") == pytest.approx(diffusive)


def test_noise_trace_has_the_model_psd(op_a):
    def psd(f: np.ndarray) -> np.ndarray:
        return noise_psd(SET_A_30NH, op_a, f).total

    n, dt, traces = 4096, 1e-6, 64
    rng = np.random.default_rng(3)
    freqs = np.fft.rfftfreq(n, dt)
    periodograms = np.array(
        [2 * np.abs(np.fft.rfft(noise_trace(psd, n, dt, rng))) ** 2 * dt / n for _ in range(traces)]
    )
    mean = periodograms.mean(axis=0)
    expected = psd(freqs)
    edges = np.geomspace(freqs[1], freqs[-2], 12)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = (freqs >= lo) & (freqs < hi)
        assert mean[band].mean() == pytest.approx(expected[band].mean(), rel=0.1)
    assert np.mean(noise_trace(psd, n, dt, rng)) == pytest.approx(0.0, abs=1e-15)


def test_internal_current_solver_is_consistent():
    # The transition coordinate makes R, I and T explicit; check it against the circuit.
    p = SET_A_30NH
    v = 3e-4 * p.r_sh
    x = np.linspace(-5, 5, 11)
    r, i, t = tes_device._state_at(p, x, v)
    assert np.allclose(i * (p.r_l + r), v)
    assert np.allclose(resistance(p, t, i), r, rtol=1e-9)


def test_readout_resettles_when_the_bath_warms():
    bath = {"t": 0.030}
    device = TES(SET_A_30NH, bath_temperature=lambda: bath["t"])
    before = device.set_bias(bias_for_resistance(SET_A_30NH, 0.2), from_normal=True)
    readout = TESReadout(device, noise=None, rate=0.0, seed=1)
    cold = readout.acquire(200, 1e-6)
    bath["t"] = 0.032
    warm = readout.acquire(200, 1e-6)
    after = device.state
    assert after.t_bath == 0.032
    assert after.p < before.p and after.i < before.i  # less power to reach T_c: less current
    expected = readout.fll.gain * (after.i - before.i)  # positive: the current dropped
    assert warm[-1] - cold[-1] == pytest.approx(expected, rel=0.01)
