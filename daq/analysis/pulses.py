"""TES pulses: average template, rise and fall times, optimal filter, energy resolution.

* :func:`average_pulse` -- the mean of triggered records (current at the TES,
  baseline from the pre-trigger samples subtracted), after dropping records
  that do not look like the mean (pile-up, glitches): each record is scaled
  to the mean by least squares and records with a large residual are dropped.
* :func:`fit_pulse_shape` -- ``A (exp(-(t - t0)/tau_fall) - exp(-(t - t0)/tau_rise))``
  for ``t > t0``, the two-pole shape of a small-signal TES pulse, fitted by
  least squares: rise and fall time constants.
* :class:`OptimalFilter` -- the frequency-domain optimal filter for a template
  S(f) in noise of one-sided PSD J(f): amplitude
  ``A = sum S* X / J / sum |S|^2 / J`` (DC excluded: the baseline is unknown),
  whose standard deviation for noise alone is
  ``sigma_A = (integral of 4 |S(f)|^2 / J(f) df)^(-1/2)``
  with ``S(f)`` the continuous Fourier transform of the template. With the
  template made from photons of a known energy E, ``sigma_E = E sigma_A`` and
  the resolution is ``Delta E_FWHM = 2.355 sigma_E``
  (:meth:`OptimalFilter.resolution_fwhm`).
* :func:`analyze_pulses` -- all of the above for a set of records of one
  line, with the measured spread of the filtered energies next to the
  prediction: :class:`PulseResult`.

Records are in amperes at the TES (divide loop volts by the readout gain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from daq.analysis.noise import NoiseSpectrum

__all__ = ["FWHM_PER_SIGMA", "OptimalFilter", "PulseResult", "PulseShape", "PulseTemplate",
           "analyze_pulses", "average_pulse", "fit_pulse_shape"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM of a Gaussian in units of its standard deviation (2.355)."""


@dataclass(frozen=True)
class PulseTemplate:
    """The average pulse.

    Attributes:
        current_a: mean baseline-subtracted pulse, A, one value per sample.
        dt_s: sample interval, s.
        presamples: samples before the trigger.
        n_averaged: records in the mean.
        n_rejected: records dropped as unlike the mean.
    """

    current_a: np.ndarray
    dt_s: float
    presamples: int
    n_averaged: int
    n_rejected: int

    @property
    def time_s(self) -> np.ndarray:
        """Time of each sample relative to the trigger, s."""
        return (np.arange(self.current_a.size) - self.presamples) * self.dt_s

    @property
    def peak_a(self) -> float:
        """The pulse's extreme value (signed), A."""
        return float(self.current_a[np.argmax(np.abs(self.current_a))])


def _baselined(records: np.ndarray, presamples: int) -> np.ndarray:
    data = np.atleast_2d(np.asarray(records, dtype=float))
    if not 2 <= presamples < data.shape[1]:
        raise ValueError(f"presamples {presamples} must leave a baseline and a pulse")
    return data - data[:, :presamples].mean(axis=1, keepdims=True)


def average_pulse(records: np.ndarray, presamples: int, dt: float, *,
                  max_residual: float = 3.0) -> PulseTemplate:
    """Average triggered records into a pulse template.

    Args:
        records: 2-d array of records, A, the trigger at sample ``presamples``.
        presamples: samples before the trigger (the baseline).
        dt: sample interval, s.
        max_residual: drop records whose rms residual after scaling to the
            median pulse exceeds this many times the median residual.

    Returns:
        The template.
    """
    data = _baselined(records, presamples)
    first = np.median(data, axis=0)
    norm = float(first @ first)
    if norm == 0.0:
        raise ValueError("the records hold no pulse")
    scale = data @ first / norm
    resid = np.sqrt(np.mean((data - np.outer(scale, first)) ** 2, axis=1))
    good = resid <= max_residual * np.median(resid)
    return PulseTemplate(data[good].mean(axis=0), dt, presamples, int(good.sum()),
                         int((~good).sum()))


@dataclass(frozen=True)
class PulseShape:
    """A two-exponential fit to a pulse.

    Attributes:
        amplitude_a: A of the model, A (signed; the peak is smaller).
        t0_s: pulse onset relative to the trigger, s.
        rise_s: rise time constant, s.
        fall_s: fall time constant, s.
        rise_stderr_s: standard error of the rise time, s.
        fall_stderr_s: standard error of the fall time, s.
    """

    amplitude_a: float
    t0_s: float
    rise_s: float
    fall_s: float
    rise_stderr_s: float
    fall_stderr_s: float

    def current(self, t_s: np.ndarray) -> np.ndarray:
        """The fitted pulse at times ``t_s`` (relative to the trigger), A."""
        return _two_exp(np.asarray(t_s, dtype=float), self.amplitude_a, self.t0_s,
                        self.rise_s, self.fall_s)


def _two_exp(t: np.ndarray, amp: float, t0: float, rise: float, fall: float) -> np.ndarray:
    x = np.maximum(t - t0, 0.0)
    return np.where(t > t0, amp * (np.exp(-x / fall) - np.exp(-x / rise)), 0.0)


def fit_pulse_shape(template: PulseTemplate) -> PulseShape:
    """Fit rise and fall time constants to a template.

    Starting values come from the data: the onset where the pulse first
    passes 10 % of its peak, the 10-90 % rise time / 2.2 and the 1/e decay
    time after the peak.
    """
    t = template.time_s
    y = template.current_a
    k_peak = int(np.argmax(np.abs(y)))
    peak = y[k_peak]
    rel = y / peak
    k10 = int(np.argmax(rel[: k_peak + 1] > 0.1))
    k90 = int(np.argmax(rel[: k_peak + 1] > 0.9))
    rise0 = max((t[k90] - t[k10]) / 2.2, template.dt_s)
    tail = np.nonzero(rel[k_peak:] < 1.0 / math.e)[0]
    fall0 = max((t[k_peak + tail[0]] - t[k_peak]) if tail.size else 10 * rise0, 2 * rise0)
    t00 = t[k10] - 0.1 * rise0
    amp0 = peak / max(np.exp(-(t[k_peak] - t00) / fall0) - np.exp(-(t[k_peak] - t00) / rise0),
                      1e-3)
    popt, pcov = curve_fit(_two_exp, t, y, p0=[amp0, t00, rise0, fall0], maxfev=20000)
    amp, t0, a, b = (float(x) for x in popt)
    errs = np.sqrt(np.clip(np.diag(pcov), 0.0, None))
    # The model is symmetric in the two time constants (up to the sign of A): order them.
    if a > b:
        a, b, amp = b, a, -amp
        errs[[2, 3]] = errs[[3, 2]]
    return PulseShape(amp, t0, a, b, float(errs[2]), float(errs[3]))


class OptimalFilter:
    """The frequency-domain optimal filter for one template and one noise spectrum.

    Args:
        template: the pulse shape, A per unit amplitude (e.g. the average
            pulse: then an amplitude of 1 is the average pulse).
        noise: the noise PSD; its segment length must equal the template's
            length (it is then on the same frequency grid).
        dt: sample interval, s.
    """

    def __init__(self, template: np.ndarray, noise: NoiseSpectrum, dt: float) -> None:
        s = np.asarray(template, dtype=float)
        if noise.segment_samples != s.size:
            raise ValueError(f"the noise spectrum has {noise.segment_samples}-sample segments, "
                             f"the template {s.size} samples: use the record length for both")
        self.dt = dt
        self.n = s.size
        self.template_fft = np.fft.rfft(s)
        psd = noise.psd_a2_per_hz.copy()
        # Bin weights: interior bins stand for themselves and their negative twin;
        # the Nyquist bin (even n) carries a real, twice-as-large noise; DC is excluded.
        weight = np.ones(psd.size)
        weight[0] = 0.0
        if self.n % 2 == 0:
            weight[-1] = 0.25
        self.weights = np.where(psd > 0, weight / np.where(psd > 0, psd, 1.0), 0.0)
        self._norm = float(np.sum(self.weights * np.abs(self.template_fft) ** 2))
        if not self._norm > 0:
            raise ValueError("the template has no power where the noise is known")

    @property
    def sigma_amplitude(self) -> float:
        """Standard deviation of the amplitude for noise alone (units of the template)."""
        # 1/sigma^2 = integral 4 |S(f)|^2/J(f) df with S(f) = dt S_k and df = 1/(n dt).
        return 1.0 / math.sqrt(4.0 * self._norm * self.dt / self.n)

    def amplitudes(self, records: np.ndarray) -> np.ndarray:
        """Filtered amplitude of each record (units of the template), at zero delay."""
        data = np.atleast_2d(np.asarray(records, dtype=float))
        spec = np.fft.rfft(data, axis=1)
        num = np.real(spec * np.conj(self.template_fft)) @ self.weights
        return num / self._norm

    def resolution_fwhm(self, energy_per_amplitude: float) -> float:
        """Expected energy resolution, FWHM, in the units of ``energy_per_amplitude``."""
        return FWHM_PER_SIGMA * self.sigma_amplitude * abs(energy_per_amplitude)


@dataclass(frozen=True)
class PulseResult:
    """A set of pulses of one line, analysed.

    Attributes:
        template: the average pulse.
        shape: its rise / fall fit.
        energies: optimally filtered energy of each record, in the units of
            the line energy given.
        line_energy: energy of the line the template represents.
        resolution_fwhm_predicted: 2.355 sigma_E from the filter and the noise.
        resolution_fwhm_measured: 2.355 times the robust spread of the energies.
        noise: the noise spectrum used.
    """

    template: PulseTemplate
    shape: PulseShape
    energies: np.ndarray
    line_energy: float
    resolution_fwhm_predicted: float
    resolution_fwhm_measured: float
    noise: NoiseSpectrum


def analyze_pulses(records: np.ndarray, presamples: int, dt: float, noise: NoiseSpectrum,
                   line_energy: float) -> PulseResult:
    """Template, shape, optimal-filter energies and resolution for pulses of one line.

    Args:
        records: 2-d array of triggered records, A.
        presamples: samples before the trigger.
        dt: sample interval, s.
        noise: noise spectrum of pulse-free records of the same length.
        line_energy: the photons' energy (any unit; the results carry it).

    Returns:
        The analysis.
    """
    template = average_pulse(records, presamples, dt)
    shape = fit_pulse_shape(template)
    of = OptimalFilter(template.current_a, noise, dt)
    energies = of.amplitudes(_baselined(records, presamples)) * line_energy
    # A robust spread (the central part of the distribution) ignores the odd pile-up.
    q16, q84 = np.percentile(energies, [15.865, 84.135])
    return PulseResult(template, shape, energies, line_energy,
                       of.resolution_fwhm(line_energy), FWHM_PER_SIGMA * 0.5 * float(q84 - q16),
                       noise)
