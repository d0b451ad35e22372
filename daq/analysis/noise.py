"""Averaged current-noise spectra of a TES readout, with a pulse veto.

Noise records (untriggered traces of the loop output, volts) are converted
to TES current with the readout gain (V per A at the TES), records that
contain a pulse are vetoed, and the one-sided power spectral density is
averaged over windowed segments of every remaining record (Welch's method).

Normalisation: for a segment ``x`` of ``N`` samples at rate ``fs`` with
window ``w``, the one-sided density is ``2 |FFT(w x)|^2 / (fs sum(w^2))``
(the DC and Nyquist bins are not doubled), so that white noise of variance
``s^2`` reads ``2 s^2 / fs`` at every frequency whatever the window.

The veto: each record is high-passed (its running mean over ``veto_window_s``
subtracted), and a record whose largest excursion exceeds
``veto_threshold`` robust standard deviations (median absolute deviation
over all records) is dropped. A pulse is a fast step that decays slowly;
the high-pass keeps its edge and drops slow drifts and 1/f noise, which
must not veto records.

Interface: :func:`average_psd` -> :class:`NoiseSpectrum`
(:meth:`NoiseSpectrum.level` gives the noise at a frequency in A/sqrt(Hz)),
:func:`veto_pulses`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import get_window

__all__ = ["NoiseSpectrum", "average_psd", "veto_pulses"]


@dataclass(frozen=True)
class NoiseSpectrum:
    """An averaged one-sided current-noise spectrum.

    Attributes:
        freqs_hz: frequencies, Hz (0 to fs/2).
        psd_a2_per_hz: one-sided PSD of the TES current, A^2/Hz.
        segment_samples: samples per Welch segment (sets the resolution).
        sample_interval_s: sample interval, s.
        window: the window's name.
        n_records: records averaged.
        n_vetoed: records dropped by the pulse veto.
        n_segments: segments averaged in all.
    """

    freqs_hz: np.ndarray
    psd_a2_per_hz: np.ndarray
    segment_samples: int
    sample_interval_s: float
    window: str
    n_records: int
    n_vetoed: int
    n_segments: int

    @property
    def asd_a_per_rthz(self) -> np.ndarray:
        """Amplitude spectral density sqrt(PSD), A/sqrt(Hz)."""
        return np.sqrt(self.psd_a2_per_hz)

    @property
    def resolution_hz(self) -> float:
        """Frequency bin width, Hz."""
        return 1.0 / (self.segment_samples * self.sample_interval_s)

    def level(self, freq_hz: float, rel_band: float = 0.2) -> float:
        """Noise at ``freq_hz``: sqrt of the mean PSD in a band around it, A/sqrt(Hz).

        Args:
            freq_hz: frequency, Hz.
            rel_band: full width of the band as a fraction of ``freq_hz``
                (at least one bin is used).

        Returns:
            The amplitude spectral density.
        """
        half = max(0.5 * rel_band * freq_hz, 0.5 * self.resolution_hz)
        sel = np.abs(self.freqs_hz - freq_hz) <= half
        if not np.any(sel):
            raise ValueError(f"{freq_hz} Hz is outside the spectrum (0 to "
                             f"{self.freqs_hz[-1]:.6g} Hz)")
        return float(np.sqrt(np.mean(self.psd_a2_per_hz[sel])))


def veto_pulses(
    records: np.ndarray,
    dt: float,
    *,
    threshold: float = 6.0,
    window_s: float | None = None,
) -> np.ndarray:
    """Which records hold a pulse (or a glitch): a boolean mask, True = vetoed.

    Args:
        records: 2-d array, one record per row (any units).
        dt: sample interval, s.
        threshold: excursion that vetoes, in robust standard deviations of
            the high-passed data.
        window_s: length of the running mean removed as the high-pass, s
            (default: 1/50 of a record, at least 8 samples).

    Returns:
        One flag per record.
    """
    data = np.atleast_2d(np.asarray(records, dtype=float))
    n = data.shape[1]
    width = max(8, int(round(window_s / dt)) if window_s else n // 50)
    high = data - uniform_filter1d(data, size=width, axis=1, mode="nearest")
    centred = high - np.median(high, axis=1, keepdims=True)
    # Pooled over all records, the median absolute deviation ignores the few pulses.
    sigma = float(np.median(np.abs(centred))) / 0.6745
    if sigma == 0.0:
        return np.zeros(data.shape[0], dtype=bool)
    return np.max(np.abs(centred), axis=1) > threshold * sigma


def average_psd(
    records: np.ndarray,
    dt: float,
    *,
    gain_v_per_a: float = 1.0,
    segment_samples: int | None = None,
    window: str = "hann",
    veto_threshold: float | None = 6.0,
    veto_window_s: float | None = None,
) -> NoiseSpectrum:
    """Averaged one-sided current-noise PSD of noise records.

    Args:
        records: 2-d array of loop-output records, V (one per row; a 1-d
            array is one record).
        dt: sample interval, s.
        gain_v_per_a: readout gain, V per A at the TES (its sign does not matter).
        segment_samples: Welch segment length (default: the whole record);
            segments overlap by half.
        window: any window name :func:`scipy.signal.get_window` knows.
        veto_threshold: pulse-veto threshold in robust sigmas; None: no veto.
        veto_window_s: high-pass window of the veto, s.

    Returns:
        The averaged spectrum.

    Raises:
        ValueError: bad segment length or every record vetoed.
    """
    data = np.atleast_2d(np.asarray(records, dtype=float)) / abs(gain_v_per_a)
    n = data.shape[1]
    seg = n if segment_samples is None else int(segment_samples)
    if not 8 <= seg <= n:
        raise ValueError(f"segment length {seg} must be between 8 and the record length {n}")
    vetoed = (veto_pulses(data, dt, threshold=veto_threshold, window_s=veto_window_s)
              if veto_threshold is not None else np.zeros(data.shape[0], dtype=bool))
    kept = data[~vetoed]
    if kept.shape[0] == 0:
        raise ValueError("every record was vetoed: lower the rate or raise the threshold")
    w = get_window(window, seg, fftbins=True)
    fs = 1.0 / dt
    norm = fs * float(np.sum(w**2))
    step = max(seg // 2, 1)
    starts = range(0, n - seg + 1, step)
    total = np.zeros(seg // 2 + 1)
    count = 0
    for s in starts:
        chunk = kept[:, s : s + seg]
        chunk = chunk - chunk.mean(axis=1, keepdims=True)
        spec = np.abs(np.fft.rfft(chunk * w, axis=1)) ** 2
        total += spec.sum(axis=0)
        count += chunk.shape[0]
    psd = total / (count * norm)
    psd[1 : (seg + 1) // 2] *= 2.0  # one-sided: fold the negative frequencies (not DC, Nyquist)
    return NoiseSpectrum(
        freqs_hz=np.fft.rfftfreq(seg, dt),
        psd_a2_per_hz=psd,
        segment_samples=seg,
        sample_interval_s=dt,
        window=window,
        n_records=int(kept.shape[0]),
        n_vetoed=int(vetoed.sum()),
        n_segments=count,
    )
