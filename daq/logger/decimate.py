"""Min/max decimation: many samples to few plot points without losing a spike.

The range [t0, t1] is cut into equal buckets; each non-empty bucket becomes
at most two points: its minimum at the time of its first sample and its
maximum at the time of its last (one point when it holds one sample, or
when min equals max). So every bucket's extremes survive, a one-sample
spike included; its time is exact to within one bucket. The SQL stores
compute the per-bucket aggregates server-side; these functions turn them
into plot-ready arrays and also decimate arrays already in memory.
"""

from __future__ import annotations

import numpy as np


def bucket_width(t0: int, t1: int, max_points: int) -> int:
    """Bucket width (ns) so that [t0, t1] gives at most ``max_points`` points (2 per bucket)."""
    buckets = max(1, max_points // 2)
    span = t1 - t0 + 1
    return max(1, -(-span // buckets))


def points_from_buckets(
    bucket: np.ndarray,
    count: np.ndarray,
    vmin: np.ndarray,
    vmax: np.ndarray,
    tfirst: np.ndarray,
    tlast: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Plot points from per-bucket aggregates; rows sharing a bucket index are merged first.

    Args:
        bucket: bucket index of each row (rows of one bucket need not be adjacent).
        count: samples in each row.
        vmin, vmax: minimum and maximum of each row.
        tfirst, tlast: time (ns) of each row's first and last sample.

    Returns:
        ``(times_ns int64, values float64)``, ascending in time.
    """
    if len(bucket) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    order = np.argsort(bucket, kind="stable")
    bucket = np.asarray(bucket)[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    n = np.add.reduceat(np.asarray(count, np.int64)[order], starts)
    lo = np.minimum.reduceat(np.asarray(vmin, np.float64)[order], starts)
    hi = np.maximum.reduceat(np.asarray(vmax, np.float64)[order], starts)
    tf = np.minimum.reduceat(np.asarray(tfirst, np.int64)[order], starts)
    tl = np.maximum.reduceat(np.asarray(tlast, np.int64)[order], starts)
    single = (n == 1) | (tf == tl) | (lo == hi)
    times = np.empty(2 * len(n), np.int64)
    values = np.empty(2 * len(n), np.float64)
    times[0::2], values[0::2] = tf, lo
    times[1::2], values[1::2] = tl, hi
    keep = np.ones(2 * len(n), bool)
    keep[1::2] = ~single
    return times[keep], values[keep]


def minmax_decimate(
    times: np.ndarray, values: np.ndarray, t0: int, t1: int, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decimate in-memory samples (sorted by time) to at most ``max_points`` points."""
    times = np.asarray(times, np.int64)
    values = np.asarray(values, np.float64)
    if len(times) <= max_points:
        return times.copy(), values.copy()
    width = bucket_width(t0, t1, max_points)
    bucket = (times - t0) // width
    return points_from_buckets(bucket, np.ones(len(times), np.int64), values, values, times,
                               times)
