"""Measurements made on the simulated lab's physics, with the true values next to them.

Each function plays one characterisation measurement on the simulator's TES,
SQUID and bias circuit the way a lab records it (bias in volts across the bias
resistor, loop output with an arbitrary offset and noise, thermometer
readings, generator voltages) and returns the data with the simulator's own
answer. Only the tests import this (``daq`` never imports ``simulators``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.physics.readout import TESReadout, center_lock
from simulators.physics.squid import PHI0, FluxLockedLoop, biased_squid
from simulators.physics.tes import (
    EV,
    SET_B,
    TES,
    OperatingPoint,
    TESParams,
    bias_for_resistance,
    iv_sweep,
    noise_psd,
    operating_point,
    resistance,
    small_signal,
    small_signal_pulse,
)
from simulators.physics.tes_modulation import simulate_bias_modulation

R_BIAS = 10e3  # the SIM928's bias resistor in the simulated lab, Ohm


@dataclass(frozen=True)
class IVData:
    """An I-V sweep as recorded: SIM928 volts and loop output volts."""

    params: TESParams
    bias_v: np.ndarray
    v_out: np.ndarray
    gain: float
    offset_v: float
    truth_branch: tuple[str, ...]
    truth_latch_index: int

    def true_p(self, r_fraction: float) -> float:
        """The simulator's Joule power at R = r_fraction R_n on the transition, W."""
        p = self.params
        return operating_point(p, bias_for_resistance(p, r_fraction)).p


def iv_data(params: TESParams = SET_B, *, points: int = 301, top_a: float = 1.5e-3,
            noise_a: float = 2e-9, offset_v: float = 0.37, seed: int = 1,
            flux_jump: bool = False) -> IVData:
    """A downward I-V sweep through the FLL at R_f = 1 kOhm, with noise and an output offset."""
    fll = FluxLockedLoop(r_f=1e3)
    bias_a = np.linspace(top_a, 0.0, points)
    iv = iv_sweep(params, bias_a)
    rng = np.random.default_rng(seed)
    v = fll.gain * (iv.i_tes + rng.normal(0.0, noise_a, points)) + offset_v
    latch = next(k for k, b in enumerate(iv.branch) if b == "superconducting")
    if flux_jump:  # the loop slips one flux quantum as the device latches
        v[latch:] += fll.jump_step
    return IVData(params, bias_a * R_BIAS, v, fll.gain, offset_v, iv.branch, latch)


@dataclass(frozen=True)
class TransitionData:
    """R(T) as the lock-in and thermometer see it: a cooling then a warming sweep."""

    params: TESParams
    temperature_k: np.ndarray
    resistance_ohm: np.ndarray
    true_width_k: float


def transition_data(params: TESParams = SET_B, *, lag_s: float = 0.0, seed: int = 2) -> \
        TransitionData:
    """Cool from T_c + 5 mK to T_c - 5 mK and warm back, 400 readings each way.

    The thermometer may lag the device by ``lag_s`` (first order) while the
    bath ramps at 10 uK/s; the lock-in sees R(T) plus the shunt and parasitic
    resistance in series.
    """
    rng = np.random.default_rng(seed)
    rate = 10e-6  # K/s
    t_dev = np.concatenate([np.linspace(params.t_c + 5e-3, params.t_c - 5e-3, 400),
                            np.linspace(params.t_c - 5e-3, params.t_c + 5e-3, 400)])
    step = 10e-3 / 399 / rate  # seconds between readings
    thermo = np.empty_like(t_dev)
    thermo[0] = t_dev[0]
    for k in range(1, t_dev.size):  # the thermometer relaxes towards the device
        a = 1.0 - math.exp(-step / lag_s) if lag_s > 0 else 1.0
        thermo[k] = thermo[k - 1] + a * (t_dev[k] - thermo[k - 1])
    r = resistance(params, t_dev, 0.0) + params.r_l + rng.normal(0.0, 20e-6, t_dev.size)
    w = 2.0 * math.log(2.0) * params.t_w
    return TransitionData(params, thermo + rng.normal(0.0, 2e-6, t_dev.size), r,
                          2.0 * math.atanh(0.8) * w)


@dataclass(frozen=True)
class VPhiData:
    """A tune-mode sweep of the feedback-coil current and the amplified SQUID voltage."""

    coil_current_a: np.ndarray
    output_v: np.ndarray
    true_period_a: float
    true_amplitude_v: float
    true_slope_v_per_a: float


def vphi_data(*, seed: int = 3) -> VPhiData:
    """A triangle sweep of 0-100 uA through the feedback coil (5 flux quanta), up and down."""
    preamp = 5040.0
    fll = FluxLockedLoop(biased_squid(25e-6), mode="tune", preamp_gain=preamp)
    rng = np.random.default_rng(seed)
    coil = np.concatenate([np.linspace(0, 100e-6, 600), np.linspace(100e-6, 0, 600)])
    out = np.empty(coil.size)
    for k, current in enumerate(coil):
        fll.phi_bias = fll.m_f * current
        out[k] = fll.process(np.zeros(4), 1e-6).mean()
    return VPhiData(coil, out + rng.normal(0.0, 2e-3, coil.size), PHI0 / fll.m_f,
                    preamp * fll.squid.dv, preamp * fll.squid.max_slope * fll.m_f)


@dataclass(frozen=True)
class NoiseData:
    """Untriggered loop-output records with photons arriving at random."""

    records_v: np.ndarray
    dt: float
    gain: float
    model_psd: object  # f -> A^2/Hz, the simulator's model at the operating point
    rate: float


def noise_data(*, records: int = 60, samples: int = 8192, dt: float = 4e-6, rate: float = 5.0,
               seed: int = 4) -> NoiseData:
    """Records from the default readout (design A, 30 nH, R = 0.2 R_n) with 5 photons/s."""
    readout = TESReadout(rate=rate, seed=seed)
    data = np.array([readout.acquire(samples, dt) for _ in range(records)])
    p, op = readout.tes.params, readout.tes.state

    def model(f: np.ndarray) -> np.ndarray:
        return noise_psd(p, op, np.asarray(f, dtype=float)).total

    return NoiseData(data, dt, readout.fll.gain, model, rate)


@dataclass(frozen=True)
class PulseData:
    """Triggered pulse records and pulse-free records (same length), in A at the TES."""

    pulses_a: np.ndarray
    noise_a: np.ndarray
    dt: float
    presamples: int
    energy_ev: float
    true_rise_s: float
    true_fall_s: float
    true_fwhm_ev: float


def pulse_data(*, records: int = 150, samples: int = 2048, dt: float = 1e-6,
               presamples: int = 512, energy_ev: float = 10.0, seed: int = 5) -> PulseData:
    """10 eV photons on design A (30 nH) at R = 0.2 R_n, read out through the locked loop."""
    readout = TESReadout(rate=0.0, energy=energy_ev * EV, seed=seed)
    gain = readout.fll.gain
    pulses = np.array([readout.acquire(samples, dt, event_at=presamples)
                       for _ in range(records)]) / gain
    noise = np.array([readout.acquire(samples, dt) for _ in range(records)]) / gain
    p, op = readout.tes.params, readout.tes.state
    ss = small_signal(p, op)
    return PulseData(pulses, noise, dt, presamples, energy_ev, ss.tau_plus, ss.tau_minus,
                     model_fwhm_ev(p, op))


def model_fwhm_ev(p: TESParams, op: OperatingPoint) -> float:
    """2.355 sigma_E from the analytic pulse and the model noise (long record), eV."""
    n, dt = 2**17, 0.5e-6
    t = np.arange(n) * dt
    s = np.fft.rfft(small_signal_pulse(p, op, 1.0, t)) * dt  # per joule
    f = np.fft.rfftfreq(n, dt)
    inv = float(np.sum(4.0 * np.abs(s[1:]) ** 2 / noise_psd(p, op, f[1:]).total) * f[1])
    return 2.355 / math.sqrt(inv) / EV


@dataclass(frozen=True)
class ImpedanceData:
    """Generator voltage and loop output in three states, with the truth at the operating point."""

    drive_v: dict[str, np.ndarray]
    output_v: dict[str, np.ndarray]
    dt: float
    frequency_hz: float
    op: OperatingPoint
    params: TESParams
    true_loop_gain: float
    true_beta: float
    true_tau_s: float
    true_tau_i_s: float


def _state(params: TESParams, i_bias: float, from_normal: bool) -> TES:
    tes = TES(params)
    if from_normal:
        tes.set_bias(i_bias, from_normal=True)
    else:
        tes.set_bias(i_bias)  # from the bath: stays superconducting
    return tes


#: Generator amplitude per state, Vpp: the normal state answers weakly and takes a larger one.
DRIVE_VPP = {"superconducting": 0.2, "normal": 2.0, "transition": 0.2}


def impedance_data(params: TESParams = SET_B, *, r_fraction: float = 0.6,
                   frequency_hz: float = 100.0, dt: float = 1e-6, r_couple: float = 100e3,
                   periods: int = 100, seed: int = 6) -> ImpedanceData:
    """A square wave from the generator through ``r_couple`` onto the bias, in three states.

    The TES current is integrated in time with the full nonlinear equations
    (two periods, the second one is the periodic steady state), passed through
    a flux-locked loop re-locked at each state's current, repeated for
    ``periods`` periods and given the state's own current noise.
    """
    per = int(round(1.0 / (frequency_hz * dt)))
    t = np.arange(2 * per) * dt
    square = np.where(np.mod(t * frequency_hz, 1.0) < 0.5, 0.5, -0.5)
    states = {
        "superconducting": _state(params, 50e-6, from_normal=False),
        "normal": _state(params, 2.0e-3, from_normal=True),
        "transition": _state(params, bias_for_resistance(params, r_fraction), from_normal=True),
    }
    drives: dict[str, np.ndarray] = {}
    outputs: dict[str, np.ndarray] = {}
    for k, (name, tes) in enumerate(states.items()):
        op = tes.state
        drive = DRIVE_VPP[name] * square
        current = simulate_bias_modulation(params, op, op.i_bias + drive / (r_couple + 50.0), dt)
        fll = FluxLockedLoop()
        center_lock(fll, op.i)
        steady = fll.process(current, dt)[per:]
        readout = TESReadout(tes, fll, rate=0.0, seed=seed + k)
        noise = readout.current_noise(per * periods, dt) * fll.gain
        drives[name] = np.tile(drive[:per], periods)
        outputs[name] = np.tile(steady, periods) + noise
    op = states["transition"].state
    ss = small_signal(params, op)
    return ImpedanceData(drives, outputs, dt, frequency_hz, op, params, ss.loop_gain, ss.beta,
                         ss.tau, ss.tau_i)
