"""Complex impedance (dI/dV) of a TES: transfer functions, readout calibration, model fit.

A small square or sine wave from a function generator is added to the TES
bias; the loop output answers with the TES's small-signal response times the
transfer function of everything else (coupling resistor, shunt, SQUID loop,
amplifiers, filters), which is not known well enough to take from a data
sheet. The measurement is therefore made three times with the same drive
(Lindeman et al. 2004): superconducting, normal and at the operating point.
With ``Z_c = R_L + j omega L`` the circuit seen by the TES and ``A(omega)``
the unknown readout factor::

    H_sc = A / Z_c,   H_n = A / (Z_c + R_n),   H = A / (Z_c + Z_TES)
    A = R_n / (1/H_n - 1/H_sc),   Z_c = A / H_sc,   Z_TES = A (1/H - 1/H_sc)

so the two calibration states give A and Z_c (hence R_L and L) at every
frequency of the drive. Z_TES is then fitted with the one-body model
(Irwin & Hilton 2005)::

    Z_TES = R_0 (1 + beta) + R_0 L_I (2 + beta) / (1 - L_I + j omega tau)

with R_0 from the I-V at the same bias, for beta, the loop gain L_I and the
natural time constant tau = C/G; tau_I = tau / (1 - L_I) and the
electrothermal time constant
``tau_eff = tau (1 + beta + R_L/R_0) / (1 + beta + R_L/R_0 + (1 - R_L/R_0) L_I)``
follow.

Interface: :func:`transfer_function` (drive and response records ->
:class:`TransferFunction` at the drive's harmonics),
:func:`merge_transfer_functions` (a sine sweep), :func:`calibrate_readout`
-> :class:`ReadoutCalibration`, :func:`fit_impedance` -> :class:`ImpedanceFit`,
:func:`analyze_impedance` -> :class:`ImpedanceResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

__all__ = ["ImpedanceFit", "ImpedanceResult", "ReadoutCalibration", "TransferFunction",
           "analyze_impedance", "calibrate_readout", "fit_impedance", "merge_transfer_functions",
           "one_body_impedance", "transfer_function"]


@dataclass(frozen=True)
class TransferFunction:
    """Response per unit drive at the drive's harmonics.

    Attributes:
        freqs_hz: frequencies, Hz.
        h: complex response / drive (e.g. V of loop output per V of generator).
        sigma: standard deviation of the real and of the imaginary part of h.
    """

    freqs_hz: np.ndarray
    h: np.ndarray
    sigma: np.ndarray


def transfer_function(
    drive: np.ndarray,
    response: np.ndarray,
    dt: float,
    frequency_hz: float,
    *,
    min_relative_drive: float = 1e-3,
    max_frequency_hz: float | None = None,
    noise_bins: int = 3,
) -> TransferFunction:
    """Response / drive at every harmonic of a periodic drive.

    The records are cut to a whole number of periods, so each harmonic falls
    on one Fourier bin; bins between harmonics carry only noise and give the
    uncertainty.

    Args:
        drive: the drive record (e.g. the generator voltage), any unit.
        response: the simultaneous response record (e.g. the loop output).
        dt: sample interval, s.
        frequency_hz: the drive's fundamental; a period must be a whole
            number of samples.
        min_relative_drive: harmonics weaker than this fraction of the
            strongest are skipped (even harmonics of a square wave).
        max_frequency_hz: highest frequency kept (default: Nyquist).
        noise_bins: bins either side of a harmonic used for its noise.

    Returns:
        The transfer function.

    Raises:
        ValueError: a period is not a whole number of samples, or fewer than
            two periods were recorded.
    """
    d = np.asarray(drive, dtype=float)
    r = np.asarray(response, dtype=float)
    if d.shape != r.shape or d.ndim != 1:
        raise ValueError("drive and response must be 1-d records of the same length")
    exact = 1.0 / (frequency_hz * dt)
    per = int(round(exact))
    if per < 2 or abs(exact - per) > 1e-6 * exact:
        raise ValueError(f"a period is {exact:.6g} samples: choose the drive frequency so that it "
                         "is a whole number")
    n_periods = d.size // per
    if n_periods < 2:
        raise ValueError(f"record too short: {d.size} samples for a {per}-sample period")
    m = n_periods * per
    spec_d = np.fft.rfft(d[:m])
    spec_r = np.fft.rfft(r[:m])
    harm = np.arange(n_periods, spec_d.size, n_periods)
    strength = np.abs(spec_d[harm])
    keep = strength > min_relative_drive * strength.max()
    freqs = harm * (1.0 / (m * dt))
    if max_frequency_hz is not None:
        keep &= freqs <= max_frequency_hz
    harm, freqs = harm[keep], freqs[keep]
    sigma = np.empty(harm.size)
    for j, k in enumerate(harm):
        near = [k + o for o in range(-noise_bins, noise_bins + 1)
                if o != 0 and 0 < k + o < spec_r.size and (k + o) % n_periods != 0]
        power = float(np.mean(np.abs(spec_r[near]) ** 2)) if near else 0.0
        sigma[j] = math.sqrt(power / 2.0) / abs(spec_d[k])
    return TransferFunction(freqs, spec_r[harm] / spec_d[harm], sigma)


def merge_transfer_functions(*parts: TransferFunction) -> TransferFunction:
    """Join transfer functions measured at different drive frequencies (a sine sweep)."""
    freqs = np.concatenate([p.freqs_hz for p in parts])
    order = np.argsort(freqs, kind="stable")
    return TransferFunction(freqs[order], np.concatenate([p.h for p in parts])[order],
                            np.concatenate([p.sigma for p in parts])[order])


def _same_grid(a: TransferFunction, b: TransferFunction) -> None:
    if a.freqs_hz.shape != b.freqs_hz.shape or not np.allclose(a.freqs_hz, b.freqs_hz,
                                                                rtol=1e-9):
        raise ValueError("the measurements must share their frequencies (same drive and length)")


@dataclass(frozen=True)
class ReadoutCalibration:
    """The readout's transfer function from the superconducting and normal measurements.

    Attributes:
        freqs_hz: frequencies, Hz.
        readout: A(omega), response per drive times Ohm (H = A / Z).
        z_circuit_ohm: R_L + j omega L seen by the TES, Ohm, per frequency.
        r_l_ohm: load resistance R_sh + R_par (mean real part of z_circuit), Ohm.
        inductance_h: inductance (slope of the imaginary part), H.
        r_n_ohm: the normal resistance used, Ohm.
        superconducting: the superconducting transfer function.
        readout_sigma: standard deviation of |A| from the references' noise.
    """

    freqs_hz: np.ndarray
    readout: np.ndarray
    z_circuit_ohm: np.ndarray
    r_l_ohm: float
    inductance_h: float
    r_n_ohm: float
    superconducting: TransferFunction
    readout_sigma: np.ndarray

    def tes_impedance(self, measured: TransferFunction) -> tuple[np.ndarray, np.ndarray]:
        """Z_TES and its standard deviation (per component) from a measurement, Ohm.

        The uncertainty adds the noise of the measurement, of the
        superconducting reference and of the readout factor A (from the
        normal reference) in quadrature, to first order.
        """
        _same_grid(measured, self.superconducting)
        z = self.readout * (1.0 / measured.h - 1.0 / self.superconducting.h)
        a = np.abs(self.readout)
        sc = self.superconducting
        sigma = np.sqrt((a * measured.sigma / np.abs(measured.h) ** 2) ** 2
                        + (a * sc.sigma / np.abs(sc.h) ** 2) ** 2
                        + (np.abs(z) * self.readout_sigma / a) ** 2)
        return z, sigma


def calibrate_readout(superconducting: TransferFunction, normal: TransferFunction,
                      r_n_ohm: float) -> ReadoutCalibration:
    """The readout factor A(omega) and the circuit R_L + j omega L from the two reference states.

    Args:
        superconducting: transfer function with the TES superconducting.
        normal: the same drive with the TES normal.
        r_n_ohm: normal resistance (from the I-V), Ohm.

    Returns:
        The calibration.
    """
    _same_grid(superconducting, normal)
    inv_n, inv_sc = 1.0 / normal.h, 1.0 / superconducting.h
    readout = r_n_ohm / (inv_n - inv_sc)
    # dA = A^2 / R_n d(1/H_n - 1/H_sc), with |d(1/H)| = sigma / |H|^2 per component.
    readout_sigma = np.abs(readout) ** 2 / r_n_ohm * np.hypot(
        normal.sigma / np.abs(normal.h) ** 2, superconducting.sigma / np.abs(superconducting.h) ** 2)
    z_c = readout * inv_sc
    omega = 2.0 * np.pi * superconducting.freqs_hz
    # Weighted by the circuit's own noise so that the noisiest frequencies count least.
    sigma_c = np.abs(z_c) * readout_sigma / np.abs(readout) + 1e-30
    w = 1.0 / sigma_c**2
    r_l = float(np.sum(w * z_c.real) / np.sum(w))
    inductance = float(np.sum(w * omega * z_c.imag) / np.sum(w * omega**2))
    return ReadoutCalibration(superconducting.freqs_hz, readout, z_c, r_l, inductance, r_n_ohm,
                              superconducting, readout_sigma)


def one_body_impedance(freqs_hz: np.ndarray, r0_ohm: float, beta: float, loop_gain: float,
                       tau_s: float) -> np.ndarray:
    """The one-body model Z_TES at ``freqs_hz``, Ohm."""
    jw = 2j * np.pi * np.asarray(freqs_hz, dtype=float)
    return r0_ohm * (1.0 + beta) + r0_ohm * loop_gain * (2.0 + beta) / (1.0 - loop_gain
                                                                           + jw * tau_s)


@dataclass(frozen=True)
class ImpedanceFit:
    """The one-body model fitted to a measured Z_TES.

    Attributes:
        r0_ohm: TES resistance at the operating point (given), Ohm.
        beta: current sensitivity (I/R) dR/dI.
        loop_gain: L_I = P alpha / (G T).
        tau_s: natural time constant C/G, s.
        tau_i_s: constant-current time constant tau / (1 - L_I), s.
        tau_eff_s: electrothermal (voltage-biased) time constant, s.
        r_l_ohm: load resistance used for tau_eff, Ohm.
        beta_stderr: standard error of beta.
        loop_gain_stderr: standard error of L_I.
        tau_stderr_s: standard error of tau, s.
        chi2_reduced: chi-square per degree of freedom of the fit.
    """

    r0_ohm: float
    beta: float
    loop_gain: float
    tau_s: float
    tau_i_s: float
    tau_eff_s: float
    r_l_ohm: float
    beta_stderr: float
    loop_gain_stderr: float
    tau_stderr_s: float
    chi2_reduced: float

    def z_tes(self, freqs_hz: np.ndarray) -> np.ndarray:
        """The fitted model at ``freqs_hz``, Ohm."""
        return one_body_impedance(freqs_hz, self.r0_ohm, self.beta, self.loop_gain, self.tau_s)


def _start(freqs: np.ndarray, z: np.ndarray, sigma: np.ndarray, r0: float) -> list[float]:
    """Starting values: for fixed tau_I the model ``a + b / (1 + j omega tau_I)`` is linear.

    ``a = R_0 (1 + beta)`` and ``b = R_0 L_I (2 + beta) / (1 - L_I)`` are solved by
    weighted least squares on a grid of tau_I of both signs (L_I above 1 makes
    tau_I negative); the best grid point gives beta, L_I and tau.
    """
    w = 1.0 / sigma
    best = (math.inf, 0.0, 0.0, 1e-3)
    for tau_i in np.concatenate([np.geomspace(1e-7, 1.0, 141), -np.geomspace(1e-7, 1.0, 141)]):
        g = 1.0 / (1.0 + 2j * np.pi * freqs * tau_i)
        design = np.vstack([np.concatenate([w, 0 * w]),
                            np.concatenate([w * g.real, w * g.imag])]).T
        target = np.concatenate([w * z.real, w * z.imag])
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        cost = float(np.sum((design @ coef - target) ** 2))
        if cost < best[0]:
            best = (cost, float(coef[0]), float(coef[1]), float(tau_i))
    _, a, b, tau_i = best
    beta = a / r0 - 1.0
    ratio = b / (r0 * (2.0 + beta)) if abs(2.0 + beta) > 1e-9 else 0.0
    loop_gain = ratio / (1.0 + ratio) if abs(1.0 + ratio) > 1e-6 else 1e6
    return [beta, loop_gain, max(abs(tau_i * (1.0 - loop_gain)), 1e-9)]


def fit_impedance(
    freqs_hz: np.ndarray,
    z_ohm: np.ndarray,
    r0_ohm: float,
    *,
    sigma: np.ndarray | None = None,
    r_l_ohm: float = 0.0,
) -> ImpedanceFit:
    """Fit the one-body model for beta, L_I and tau with R_0 fixed.

    Args:
        freqs_hz: frequencies, Hz.
        z_ohm: measured Z_TES, Ohm (complex).
        r0_ohm: TES resistance at the operating point, Ohm.
        sigma: standard deviation of each component of ``z_ohm`` (default: equal weights).
        r_l_ohm: load resistance, Ohm (only for tau_eff).

    Returns:
        The fit.
    """
    f = np.asarray(freqs_hz, dtype=float)
    z = np.asarray(z_ohm, dtype=complex)
    s = np.ones(f.size) if sigma is None else np.asarray(sigma, dtype=float)
    s = np.where(s > 0, s, np.min(s[s > 0]) if np.any(s > 0) else 1.0)

    def resid(p: np.ndarray) -> np.ndarray:
        d = (one_body_impedance(f, r0_ohm, p[0], p[1], p[2]) - z) / s
        return np.concatenate([d.real, d.imag])

    p0 = np.array(_start(f, z, s, r0_ohm))
    scale = np.abs(p0) + np.array([1.0, 1.0, 1e-6])
    sol = least_squares(resid, p0, x_scale=scale, method="lm", xtol=1e-14, ftol=1e-14,
                        max_nfev=20000)
    beta, loop_gain, tau = (float(x) for x in sol.x)
    dof = max(2 * f.size - 3, 1)
    chi2 = float(np.sum(sol.fun**2)) / dof
    try:
        cov = np.linalg.inv(sol.jac.T @ sol.jac) * (chi2 if sigma is None else max(chi2, 1.0))
        errs = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        errs = np.full(3, np.nan)
    tau = abs(tau)
    x = 1.0 + beta + r_l_ohm / r0_ohm
    tau_eff = tau * x / (x + (1.0 - r_l_ohm / r0_ohm) * loop_gain)
    tau_i = tau / (1.0 - loop_gain) if loop_gain != 1.0 else math.inf
    return ImpedanceFit(r0_ohm, beta, loop_gain, tau, tau_i, tau_eff, r_l_ohm,
                        float(errs[0]), float(errs[1]), float(errs[2]), chi2)


@dataclass(frozen=True)
class ImpedanceResult:
    """A calibrated and fitted complex-impedance measurement.

    Attributes:
        freqs_hz: frequencies used, Hz.
        z_tes_ohm: measured Z_TES, Ohm.
        z_sigma_ohm: its standard deviation per component, Ohm.
        fit: the one-body fit.
        calibration: the readout calibration (R_L, L, A).
    """

    freqs_hz: np.ndarray
    z_tes_ohm: np.ndarray
    z_sigma_ohm: np.ndarray
    fit: ImpedanceFit
    calibration: ReadoutCalibration


def analyze_impedance(
    transition: TransferFunction,
    superconducting: TransferFunction,
    normal: TransferFunction,
    *,
    r_n_ohm: float,
    r0_ohm: float,
    min_snr: float = 5.0,
) -> ImpedanceResult:
    """Calibrate with the reference states and fit the operating point's impedance.

    Args:
        transition: transfer function at the operating point.
        superconducting: the same drive, TES superconducting.
        normal: the same drive, TES normal.
        r_n_ohm: normal resistance, Ohm.
        r0_ohm: TES resistance at the operating point, Ohm.
        min_snr: the fit stops at the frequency where the signal-to-noise
            ratio |H| / sigma of the weakest of the three measurements, as a
            running median over neighbouring frequencies, falls below this.
            Z_TES is a ratio of noisy numbers, biased by about (sigma / |H|)^2,
            and picking single frequencies by their own noisy signal would
            prefer the upward fluctuations: the cut is a band edge instead.

    Returns:
        The result.
    """
    cal = calibrate_readout(superconducting, normal, r_n_ohm)
    z, sigma = cal.tes_impedance(transition)
    snr = np.full(z.size, np.inf)
    for tf in (transition, superconducting, normal):
        with np.errstate(divide="ignore"):
            snr = np.minimum(snr, np.abs(tf.h) / (np.sqrt(2.0) * tf.sigma))
    order = np.argsort(cal.freqs_hz)
    smooth = np.array([np.median(snr[order][max(0, k - 4): k + 5]) for k in range(z.size)])
    low = np.nonzero(smooth < min_snr)[0]
    f_max = cal.freqs_hz[order][low[0]] if low.size else np.inf
    use = cal.freqs_hz < f_max
    if use.sum() < 4:
        raise ValueError(f"only {int(use.sum())} frequencies have a signal-to-noise ratio of "
                         f"{min_snr}: average longer or drive harder")
    fit = fit_impedance(cal.freqs_hz[use], z[use], r0_ohm, sigma=sigma[use],
                        r_l_ohm=cal.r_l_ohm)
    return ImpedanceResult(cal.freqs_hz[use], z[use], sigma[use], fit, cal)
