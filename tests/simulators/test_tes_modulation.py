"""TES answering a bias modulation: impedance model, time-domain physics, the generator's bias line."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.physics.readout import TESReadout, center_lock
from simulators.physics.squid import FluxLockedLoop
from simulators.physics.tes import (
    SET_B,
    TES,
    bias_for_resistance,
    operating_point,
    small_signal,
)
from simulators.physics.tes_bias_line import BiasLine, GeneratorOutput, ModulatedReadout
from simulators.physics.tes_modulation import (
    bias_current_response,
    periodic_response,
    simulate_bias_modulation,
    tes_impedance,
)

P = SET_B


@pytest.fixture(scope="module")
def op():
    """Design B on the transition at R = 0.6 R_n (loop gain ~ 11)."""
    return operating_point(P, bias_for_resistance(P, 0.6))


def test_impedance_limits_are_those_of_the_one_body_model(op) -> None:
    ss = small_signal(P, op)
    z = tes_impedance(P, op, np.array([0.0, 1e9]))
    z0 = op.r * (1 + ss.beta) + op.r * ss.loop_gain / (1 - ss.loop_gain) * (2 + ss.beta)
    assert z[0] == pytest.approx(z0, rel=1e-9)
    assert z[1].real == pytest.approx(op.r * (1 + ss.beta), rel=1e-6)
    assert z0 < 0  # strong electrothermal feedback: negative low-frequency impedance


def test_impedance_off_the_transition_is_ohmic() -> None:
    sc = operating_point(P, 50e-6)
    normal = operating_point(P, 2e-3)
    freqs = np.array([10.0, 1e4, 1e5])
    assert np.all(tes_impedance(P, sc, freqs) == 0)
    zn = tes_impedance(P, normal, freqs)
    assert np.allclose(zn, normal.r, rtol=1e-3)
    assert normal.r == pytest.approx(P.r_n, rel=0.01)


@pytest.mark.parametrize("freq", [1e3, 2e4])
def test_small_sine_on_the_full_physics_matches_the_linear_response(op, freq: float) -> None:
    dt = 1e-6
    n = int(round(3e-3 / dt))
    t = np.arange(n) * dt
    amp = 0.5e-6
    current = simulate_bias_modulation(P, op, op.i_bias + amp * np.sin(2 * np.pi * freq * t), dt)
    tail = slice(n // 2, n)  # after the start transient
    basis = np.vstack([np.sin(2 * np.pi * freq * t[tail]), np.cos(2 * np.pi * freq * t[tail]),
                       np.ones(n - n // 2)]).T
    c = np.linalg.lstsq(basis, current[tail], rcond=None)[0]
    measured = (c[0] + 1j * c[1]) / amp
    expected = bias_current_response(P, op, np.array([freq]))[0]
    assert abs(measured - expected) < 0.01 * abs(expected)


def test_square_wave_steady_state_matches_the_periodic_linear_response(op) -> None:
    dt, f0 = 1e-6, 500.0
    per = int(round(1 / (f0 * dt)))
    t = np.arange(2 * per) * dt
    square = np.where(np.mod(t * f0, 1.0) < 0.5, 0.5e-6, -0.5e-6)
    current = simulate_bias_modulation(P, op, op.i_bias + square, dt)
    linear = periodic_response(P, op, square[:per], per * dt)
    second = current[per:] - op.i
    assert np.std(second - linear) < 0.01 * np.std(linear)


def test_bias_line_sums_the_generator_and_resettles_the_tes() -> None:
    tes = TES(P)
    i0 = bias_for_resistance(P, 0.6)
    tes.set_bias(i0, from_normal=True)
    line = BiasLine(tes, r_couple=100e3)
    assert line.dc_bias() == pytest.approx(i0)
    # A 1 V offset through 100 kOhm + 50 Ohm adds ~10 uA: the TES moves along its branch.
    line.set_generator(GeneratorOutput("DC", offset=1.0, enabled=True))
    assert tes.state.i_bias == pytest.approx(i0 + 1.0 / 100050.0)
    # A square with 75 % duty has a mean of +vpp/4 above its offset.
    line.set_generator(GeneratorOutput("SQU", frequency=100.0, vpp=0.4, duty=75.0, enabled=True))
    assert line.dc_bias() == pytest.approx(i0 + 0.1 / 100050.0)
    line.set_generator(GeneratorOutput("SQU", frequency=100.0, vpp=0.4, enabled=False))
    assert line.dc_bias() == pytest.approx(i0)
    assert np.all(line.modulation_current(np.linspace(0, 0.01, 50), 1e-5) == 0)


def test_bias_line_sine_response_is_the_small_signal_response() -> None:
    tes = TES(P)
    tes.set_bias(bias_for_resistance(P, 0.6), from_normal=True)
    line = BiasLine(tes, r_couple=1e6, r_source=50.0)
    gen = GeneratorOutput("SIN", frequency=3e3, vpp=0.5, phase=30.0, enabled=True)
    line.set_generator(gen)
    t = np.arange(4000) * 1e-6
    got = line.modulation_current(t, 1e-6)
    h = bias_current_response(P, tes.state, np.array([3e3]))[0]
    amp = 0.25 * line.transconductance
    phase = 2 * np.pi * 3e3 * t + np.deg2rad(30.0)
    expected = amp * (h.real * np.sin(phase) + h.imag * np.cos(phase))
    assert np.max(np.abs(got - expected)) < 1e-3 * np.max(np.abs(expected))


def test_modulated_readout_shows_the_modulation_on_the_squid_output() -> None:
    tes = TES(P)
    tes.set_bias(bias_for_resistance(P, 0.6), from_normal=True)
    fll = FluxLockedLoop()
    center_lock(fll, tes.state.i)
    readout = TESReadout(tes, fll, rate=0.0, noise=None, seed=1)
    line = BiasLine(tes, r_couple=100e3)
    line.set_generator(GeneratorOutput("SQU", frequency=1e3, vpp=0.2, enabled=True))
    source = ModulatedReadout(readout, line)
    first = source.acquire(2000, 1e-6)
    second = source.acquire(2000, 1e-6)  # continues the same waveform: 4 whole periods
    volts = np.concatenate([first, second])
    t = np.arange(4000) * 1e-6
    expected = fll.gain * line.modulation_current(t, 1e-6)
    settled = slice(100, None)  # the loop relocks during its first microseconds
    assert np.std(volts[settled] - volts[settled].mean() - expected[settled]) < 0.02 * np.std(
        expected
    )
