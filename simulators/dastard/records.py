"""Many DASTARD headers and summaries at once, in the exact wire layouts of :mod:`daq.dastard.wire`.

The summaries are what DASTARD's ``AnalyzeData`` (``process_data.go``)
computes per record, vectorised over a batch: the pretrigger mean, the
peak (largest post-trigger sample, never below the pretrigger mean, minus
it), the post-trigger average and RMS about the pretrigger mean, and, with
projectors loaded, the projection coefficients and the standard deviation of
the residual (0 without projectors, as in DASTARD).
"""

from __future__ import annotations

import numpy as np

from daq.dastard.wire import (
    HEADER_VERSION,
    RECORD_HEADER_DTYPE,
    SUMMARY_HEADER_DTYPE,
    SampleType,
)


def record_headers(channels: np.ndarray, frames: np.ndarray, times_ns: np.ndarray, *,
                   sample_type: SampleType, presamples: int, samples: int,
                   sample_period_s: float, volts_per_arb: float) -> bytes:
    """The 36-byte headers of a batch of records, concatenated."""
    hdr = np.empty(len(channels), dtype=RECORD_HEADER_DTYPE)
    hdr["channel"] = channels
    hdr["version"] = HEADER_VERSION
    hdr["sample_type"] = int(sample_type)
    hdr["presamples"] = presamples
    hdr["samples"] = samples
    hdr["sample_period"] = sample_period_s
    hdr["volts_per_arb"] = volts_per_arb
    hdr["trigger_ns"] = times_ns
    hdr["trigger_frame"] = frames
    return hdr.tobytes()


def projection_basis(pulses: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """An orthonormal basis of ``k`` record-long vectors: constant, the pulses, then random.

    Returns:
        (samples, k) float64 with orthonormal columns (``basis.T`` is the projector).
    """
    n = pulses.shape[1]
    columns = [np.ones(n), *pulses.astype(np.float64)]
    while len(columns) < k:
        columns.append(rng.standard_normal(n))
    q, _ = np.linalg.qr(np.stack(columns[:k], axis=1))
    return q


def summaries(rows: np.ndarray, channels: np.ndarray, frames: np.ndarray, times_ns: np.ndarray,
              *, presamples: int, basis: np.ndarray | None) -> tuple[bytes, np.ndarray]:
    """The 48-byte summary headers of a batch of records and their coefficients.

    Args:
        rows: the records' samples as sent (int16 or uint16), one per row.
        channels, frames, times_ns: the records' channel, trigger frame and time.
        presamples: samples before the trigger.
        basis: (samples, k) orthonormal basis, or None (no projectors).

    Returns:
        (concatenated headers, (len(rows), k) float64 coefficients; k = 0 without basis).
    """
    x = rows.astype(np.float64)
    ptm = x[:, :presamples].mean(axis=1)
    post = x[:, presamples:]
    n_post = post.shape[1]
    total = post.sum(axis=1)
    total2 = np.einsum("ij,ij->i", post, post)
    hdr = np.empty(len(rows), dtype=SUMMARY_HEADER_DTYPE)
    hdr["channel"] = channels
    hdr["version"] = HEADER_VERSION
    hdr["presamples"] = presamples
    hdr["samples"] = rows.shape[1]
    hdr["pretrig_mean"] = ptm
    hdr["peak"] = np.maximum(post.max(axis=1), ptm) - ptm
    hdr["pulse_average"] = total / n_post - ptm
    mean_square = total2 / n_post - 2.0 * ptm * (total / n_post) + ptm * ptm
    hdr["pulse_rms"] = np.sqrt(np.maximum(mean_square, 0.0))
    if basis is None:
        coefs = np.empty((len(rows), 0))
        hdr["residual_std"] = 0.0
    else:
        coefs = x @ basis
        residual = x - coefs @ basis.T
        hdr["residual_std"] = residual.std(axis=1)
    hdr["trigger_ns"] = times_ns
    hdr["trigger_frame"] = frames
    return hdr.tobytes(), np.ascontiguousarray(coefs)
