"""TES current noise: model PSDs and time series with a given PSD.

Part of the electrothermal TES model documented in :mod:`simulators.physics.tes`
(import from there): :class:`NoiseModel`, :class:`NoisePSD`, :func:`phonon_factor`,
:func:`noise_psd` and :func:`noise_trace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.physics.tes_device import K_B, OperatingPoint, TESParams
from simulators.physics.tes_response import small_signal


@dataclass(frozen=True)
class NoiseModel:
    """Noise sources besides the device itself.

    Attributes:
        squid_flux_noise: SQUID white flux noise sqrt(S_Phi), Wb/sqrt(Hz).
        m_in: SQUID input-coil mutual inductance, H (flux noise -> current noise).
        f_knee: 1/f knee of the SQUID noise, Hz.
        gamma: 1/f exponent.
        phonon: thermal-link regime for the factor F: ``"ballistic"`` uses
            F = (t^(n+1) + 1)/2, ``"diffusive"`` F = n/(2n+1) (1 - t^(2n+1))/(1 - t^n),
            t = T_bath / T.
        nonlinear_johnson: multiply the TES Johnson noise by 1 + 2 beta.
    """

    squid_flux_noise: float = 0.5e-6 * 2.067833848e-15
    m_in: float = 2.067833848e-15 / 5e-6
    f_knee: float = 10.0
    gamma: float = 1.0
    phonon: Literal["ballistic", "diffusive"] = "ballistic"
    nonlinear_johnson: bool = True


@dataclass(frozen=True)
class NoisePSD:
    """One-sided current-noise PSDs at the TES, A^2/Hz, on ``freqs``.

    Attributes:
        freqs: frequencies, Hz.
        tes_johnson: TES Johnson noise.
        load_johnson: shunt + parasitic Johnson noise.
        phonon: thermal-fluctuation noise of the link.
        squid: SQUID noise referred to the input coil.
    """

    freqs: np.ndarray
    tes_johnson: np.ndarray
    load_johnson: np.ndarray
    phonon: np.ndarray
    squid: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Sum of all components, A^2/Hz."""
        return self.tes_johnson + self.load_johnson + self.phonon + self.squid


def phonon_factor(p: TESParams, op: OperatingPoint, regime: str = "ballistic") -> float:
    """Dimensionless F of the phonon noise 4 k_B T^2 G F."""
    t = op.t_bath / op.t
    if regime == "ballistic":
        return 0.5 * (t ** (p.n + 1.0) + 1.0)
    if abs(1.0 - t) < 1e-9:
        return 1.0
    return p.n / (2.0 * p.n + 1.0) * (1.0 - t ** (2.0 * p.n + 1.0)) / (1.0 - t**p.n)


def noise_psd(
    p: TESParams, op: OperatingPoint, freqs: np.ndarray, model: NoiseModel | None = None
) -> NoisePSD:
    """Current-noise PSD at the TES for an operating point on the transition.

    Each voltage or power noise source drives the linearized electrothermal
    equations; the TES current responds through the 2x2 transfer matrix.

    Args:
        p: the device.
        op: the operating point.
        freqs: frequencies, Hz (0 allowed; the 1/f term is then taken as 0).
        model: SQUID and phonon-link choices.

    Returns:
        The components on ``freqs``.
    """
    m = model or NoiseModel()
    ss = small_signal(p, op)
    f = np.asarray(freqs, dtype=float)
    jw = 2j * np.pi * f
    m11 = 1.0 / ss.tau_el
    m12 = ss.loop_gain * ss.g / (op.i * p.inductance)
    m21 = -op.i * op.r * (2.0 + ss.beta) / p.c
    m22 = 1.0 / ss.tau_i
    det = (jw + m11) * (jw + m22) - m12 * m21
    # delta-I per unit source: electrical drive u1 (into dI/dt), thermal drive u2 (into dT/dt).
    h_el = (jw + m22) / det
    h_th = -m12 / det
    xi = 1.0 + 2.0 * ss.beta if m.nonlinear_johnson else 1.0
    s_v_tes = 4.0 * K_B * op.t * op.r * xi
    t_load = p.t_load if p.t_load is not None else op.t_bath
    s_v_load = 4.0 * K_B * t_load * p.r_l
    s_p = 4.0 * K_B * op.t**2 * ss.g * phonon_factor(p, op, m.phonon)
    tes_j = np.abs(h_el / p.inductance - h_th * op.i / p.c) ** 2 * s_v_tes
    load_j = np.abs(h_el / p.inductance) ** 2 * s_v_load
    phonon = np.abs(h_th / p.c) ** 2 * s_p
    with np.errstate(divide="ignore"):
        pink = np.where(f > 0, (m.f_knee / np.where(f > 0, f, 1.0)) ** m.gamma, 0.0)
    squid = (m.squid_flux_noise / m.m_in) ** 2 * (1.0 + pink)
    return NoisePSD(f, tes_j, load_j, phonon, squid)


def noise_trace(
    psd: Callable[[np.ndarray], np.ndarray],
    n: int,
    dt: float,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A real time series whose one-sided PSD is ``psd(f)``.

    White Gaussian noise is shaped in the frequency domain (random phases,
    Rayleigh amplitudes), so the periodogram averages to ``psd`` at every
    Fourier frequency; the mean is zero.

    Args:
        psd: one-sided PSD as a function of frequency (Hz), units^2/Hz.
        n: number of samples.
        dt: sample interval, s.
        rng: random generator (default: a fresh one).

    Returns:
        ``n`` samples.
    """
    gen = rng if rng is not None else np.random.default_rng()
    freqs = np.fft.rfftfreq(n, dt)
    level = np.asarray(psd(freqs), dtype=float)
    fs = 1.0 / dt
    # One-sided S: E|X_k|^2 = S fs n / 2 for 0 < k < n/2 (periodogram 2|X|^2/(fs n) -> S).
    scale = np.sqrt(level * fs * n / 4.0)
    spec = scale * (gen.standard_normal(freqs.size) + 1j * gen.standard_normal(freqs.size))
    spec[0] = 0.0
    if n % 2 == 0:
        spec[-1] = np.sqrt(level[-1] * fs * n) * gen.standard_normal()
    return np.fft.irfft(spec, n)
