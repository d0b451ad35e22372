"""Time series for the screen: live buffers, min/max per pixel column, clip to view, gaps.

* :class:`LiveSeries` keeps every sample of one stream received since the
  dashboard started (oldest dropped beyond a bound); a flagged sample is
  kept as NaN, so it is drawn as a gap, never as a number.
* :func:`screen_points` is what a chart draws of ``(t, v)`` arrays in a view
  ``[x0, x1]`` that is ``columns`` pixels wide: the samples in view plus one
  either side (clip to view, so a line runs to the edge); when there are more
  than two per pixel column, each column's minimum and maximum (so a
  one-sample spike survives at any zoom); and a NaN wherever the data stop
  for longer than the series' gap threshold (so a gap is drawn as a gap).
* :class:`ColumnCache` does the same for a live series incrementally: the
  columns are aligned to multiples of their width since the epoch, so while
  a strip chart scrolls at a constant span the columns already computed stay
  valid and each frame bins only the samples that arrived since the last one.
  A week at 1 Hz (600 000 samples) scrolls at the cost of its new samples.

Times are int64 ns since the epoch throughout; :func:`to_seconds` converts for
the plot's date axis. Qt-free; numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A series' gap threshold: this many times the 90th percentile of its sample intervals...
GAP_INTERVALS = 3.0
#: ...and never less than this (ns): a late poll is not a gap.
MIN_GAP_NS = 2_000_000_000
#: Samples kept per live stream (2 Mi: three weeks at 1 Hz); the oldest quarter goes beyond.
LIVE_CAPACITY = 1 << 21


def to_seconds(times_ns: np.ndarray) -> np.ndarray:
    """ns since the epoch (int64) to s since the epoch (float64), for the date axis."""
    return np.asarray(times_ns, dtype=np.int64) / 1e9


def gap_threshold_ns(times: np.ndarray, *, minimum: int = MIN_GAP_NS, tail: int = 512) -> int:
    """The gap threshold of a series from the intervals of its last ``tail`` samples."""
    if len(times) < 3:
        return minimum
    diffs = np.diff(np.asarray(times[-tail:], dtype=np.int64))
    diffs = diffs[diffs > 0]
    if not len(diffs):
        return minimum
    return max(minimum, int(GAP_INTERVALS * float(np.percentile(diffs, 90))))


class LiveSeries:
    """Every sample of one stream since the dashboard started, oldest first, bounded.

    Args:
        capacity: samples kept; beyond it the oldest quarter is dropped.
    """

    def __init__(self, capacity: int = LIVE_CAPACITY) -> None:
        self.capacity = max(16, int(capacity))
        self._t = np.empty(1024, np.int64)
        self._v = np.empty(1024, np.float64)
        self.n = 0
        #: Bumped on every change (drawing caches compare it).
        self.version = 0
        #: Bumped when samples were inserted before the end or dropped from the start.
        self.layout = 0
        self.units = ""
        self._gap_ns = MIN_GAP_NS
        self._gap_at = 0

    @property
    def times(self) -> np.ndarray:
        """Sample times, ns since the epoch (a view; do not keep across appends)."""
        return self._t[:self.n]

    @property
    def values(self) -> np.ndarray:
        """Sample values (NaN where the instrument flagged the reading)."""
        return self._v[:self.n]

    @property
    def first_ns(self) -> int | None:
        """Time of the oldest sample kept (None when empty)."""
        return int(self._t[0]) if self.n else None

    @property
    def last_ns(self) -> int | None:
        """Time of the newest sample (None when empty)."""
        return int(self._t[self.n - 1]) if self.n else None

    @property
    def gap_ns(self) -> int:
        """The gap threshold (ns), re-estimated every 256 samples."""
        if self.n - self._gap_at >= 256 or (self._gap_at == 0 and self.n >= 3):
            self._gap_ns = gap_threshold_ns(self.times)
            self._gap_at = self.n
        return self._gap_ns

    def append(self, times: np.ndarray, values: np.ndarray, *, bad: bool = False) -> None:
        """Add samples (times in ns); ``bad`` samples are kept as NaN (drawn as gaps)."""
        t = np.asarray(times, dtype=np.int64).ravel()
        v = np.full(t.shape, np.nan) if bad else np.asarray(values, dtype=np.float64).ravel()
        k = len(t)
        if k == 0:
            return
        if k > self.capacity:  # more than fits at all: the newest fill the buffer
            t, v, k = t[-self.capacity:], v[-self.capacity:], self.capacity
        if self.n + k > self.capacity:
            drop = min(self.n, max(self.capacity // 4, self.n + k - self.capacity))
            self._t[:self.n - drop] = self._t[drop:self.n]
            self._v[:self.n - drop] = self._v[drop:self.n]
            self.n -= drop
            self.layout += 1
            self._gap_at = 0
        if self.n + k > len(self._t):
            size = min(self.capacity, max(2 * len(self._t), self.n + k))
            self._t = np.resize(self._t, size)
            self._v = np.resize(self._v, size)
        ordered = bool(np.all(t[1:] >= t[:-1])) if k > 1 else True
        if self.n and t[0] < self._t[self.n - 1] or not ordered:
            # Out of order (a log file backfilled after a restart): merge, rarely.
            at = int(np.searchsorted(self._t[:self.n], t.min(), side="right"))
            merged_t = np.concatenate([self._t[at:self.n], t])
            merged_v = np.concatenate([self._v[at:self.n], v])
            order = np.argsort(merged_t, kind="stable")
            self._t[at:self.n + k] = merged_t[order]
            self._v[at:self.n + k] = merged_v[order]
            self.layout += 1
        else:
            self._t[self.n:self.n + k] = t
            self._v[self.n:self.n + k] = v
        self.n += k
        self.version += 1


@dataclass(frozen=True)
class Points:
    """What a chart draws of one series in one view.

    Attributes:
        t: times, ns since the epoch (NaN-separated runs are drawn as separate lines).
        v: values; NaN marks a gap (or a flagged reading).
        decimated: True when the points are per-column minima and maxima.
        raw_in_view: how many samples the view holds.
    """

    t: np.ndarray
    v: np.ndarray
    decimated: bool
    raw_in_view: int

    @staticmethod
    def empty() -> Points:
        return Points(np.empty(0, np.int64), np.empty(0, np.float64), False, 0)

    def __len__(self) -> int:
        return len(self.t)


def _with_gaps(t: np.ndarray, v: np.ndarray, gap_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN point wherever consecutive points are more than ``gap_ns`` apart."""
    if len(t) < 2:
        return t, v
    breaks = np.flatnonzero(np.diff(t) > gap_ns) + 1
    if not len(breaks):
        return t, v
    t_mid = (t[breaks - 1] + (t[breaks] - t[breaks - 1]) // 2).astype(np.int64)
    return np.insert(t, breaks, t_mid), np.insert(v, breaks, np.nan)


def _bins(t: np.ndarray, v: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """Per aligned column (index ``t // width``): index, first/last time, min, max.

    NaN (flagged) samples do not count; a column of only NaN gives NaN.
    """
    idx = t // width
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    ends = np.r_[starts[1:] - 1, len(t) - 1]
    lo = np.fmin.reduceat(v, starts)
    hi = np.fmax.reduceat(v, starts)
    return idx[starts], t[starts], t[ends], lo, hi


def _bin_points(idx: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: int,
                gap_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column a vertical stroke from its minimum to its maximum at the column's centre
    (one point when they are equal), NaN between columns further apart than ``gap_bins``.

    Drawing both extremes at the column's centre keeps each column's points where they
    are while samples arrive: a frame whose new samples set no new extreme draws exactly
    what the last one did (and the chart skips the repaint).
    """
    n = len(idx)
    single = (lo == hi) | np.isnan(lo)
    centre = idx * width + width // 2
    t = np.repeat(centre, 2)
    v = np.empty(2 * n, np.float64)
    v[0::2], v[1::2] = lo, hi
    keep = np.ones(2 * n, bool)
    keep[1::2] = ~single
    t, v = t[keep], v[keep]
    col = np.repeat(idx, np.where(single, 1, 2))
    breaks = np.flatnonzero(np.diff(col) > gap_bins) + 1
    if len(breaks):
        t_mid = t[breaks - 1] + (t[breaks] - t[breaks - 1]) // 2
        t, v = np.insert(t, breaks, t_mid), np.insert(v, breaks, np.nan)
    return t, v


def column_width(x0: int, x1: int, columns: int) -> int:
    """The width (ns) of one pixel column of the view ``[x0, x1]``."""
    return max(1, -(-(int(x1) - int(x0)) // max(1, int(columns))))


def screen_points(t: np.ndarray, v: np.ndarray, x0: int, x1: int, columns: int,
                  gap_ns: int) -> Points:
    """What to draw of sorted ``(t, v)`` in ``[x0, x1]`` at ``columns`` pixels (see the module)."""
    if not len(t) or x1 <= x0:
        return Points.empty()
    i0 = max(0, int(np.searchsorted(t, x0, side="left")) - 1)
    i1 = min(len(t), int(np.searchsorted(t, x1, side="right")) + 1)
    ts, vs = t[i0:i1], v[i0:i1]
    if len(ts) <= 2 * columns:
        out_t, out_v = _with_gaps(ts, vs, gap_ns)
        return Points(out_t, out_v, False, len(ts))
    width = column_width(x0, x1, columns)
    idx, _, _, lo, hi = _bins(ts, vs, width)
    out_t, out_v = _bin_points(idx, lo, hi, width, max(1, -(-gap_ns // width)))
    return Points(out_t, out_v, True, len(ts))


class ColumnCache:
    """Incremental :func:`screen_points` of one :class:`LiveSeries` (see the module docstring).

    The complete columns (every column but the newest, which may still grow)
    are kept from where the cache was started; each call bins only samples
    newer than them. A change of column width, a view left of the cache's
    start, or a change of the series' layout (samples inserted or dropped)
    starts it afresh.
    """

    #: Columns kept left of the view before the cache is trimmed.
    KEEP_LEFT_VIEWS = 2

    def __init__(self, series: LiveSeries) -> None:
        self.series = series
        self.width = 0
        self.layout = -1
        self.start_idx = 0  # first column the cache covers
        self.end_idx = 0  # columns < end_idx are complete and cached
        self._cols: tuple[np.ndarray, ...] = ()
        self.rebuilds = 0
        self._last: tuple[int, int, int, int] | None = None
        self._last_points = Points.empty()

    def _reset(self, width: int, start_idx: int) -> None:
        self.width = width
        self.layout = self.series.layout
        self.start_idx = self.end_idx = start_idx
        empty_i = np.empty(0, np.int64)
        empty_f = np.empty(0, np.float64)
        self._cols = (empty_i, empty_i, empty_i, empty_f, empty_f)
        self.rebuilds += 1

    def points(self, x0: int, x1: int, columns: int) -> Points:
        """What to draw of the series in ``[x0, x1]`` at ``columns`` pixels."""
        series = self.series
        key = (x0, x1, columns, series.version)
        if key == self._last:
            return self._last_points
        t, v = series.times, series.values
        gap_ns = series.gap_ns
        if not len(t) or x1 <= x0:
            return Points.empty()
        i0 = max(0, int(np.searchsorted(t, x0, side="left")) - 1)
        i1 = min(len(t), int(np.searchsorted(t, x1, side="right")) + 1)
        if i1 - i0 <= 2 * columns:  # few enough to draw every sample
            out_t, out_v = _with_gaps(t[i0:i1], v[i0:i1], gap_ns)
            result = Points(out_t, out_v, False, i1 - i0)
        else:
            result = self._decimated(t, v, x0, x1, columns, gap_ns, i1 - i0)
        self._last, self._last_points = key, result
        return result

    def _decimated(self, t: np.ndarray, v: np.ndarray, x0: int, x1: int, columns: int,
                   gap_ns: int, raw: int) -> Points:
        width = column_width(x0, x1, columns)
        view_first, view_last = x0 // width, x1 // width  # the columns the view touches
        span_cols = view_last - view_first
        if (width != self.width or self.layout != self.series.layout
                or view_first < self.start_idx):
            self._reset(width, view_first - span_cols)
        newest_idx = int(t[-1]) // width  # the newest column may still grow: not cached
        if newest_idx > self.end_idx:
            a = int(np.searchsorted(t, self.end_idx * width, side="left"))
            b = int(np.searchsorted(t, newest_idx * width, side="left"))
            if b > a:
                cols = _bins(t[a:b], v[a:b], width)
                self._cols = tuple(np.concatenate([old, new])
                                   for old, new in zip(self._cols, cols, strict=True))
            self.end_idx = newest_idx
        idx = self._cols[0]
        keep_from = view_first - self.KEEP_LEFT_VIEWS * span_cols
        if len(idx) > 4 * span_cols and idx[0] < keep_from:
            cut = int(np.searchsorted(idx, keep_from))
            self._cols = tuple(c[cut:] for c in self._cols)
            self.start_idx = keep_from
            idx = self._cols[0]
        a = int(np.searchsorted(idx, view_first, side="left"))
        b = int(np.searchsorted(idx, view_last, side="right"))
        parts = [c[a:b] for c in self._cols]
        if view_last >= self.end_idx:  # the growing column(s), binned afresh each time
            tail_from = int(np.searchsorted(t, max(self.end_idx, view_first) * width))
            tail_to = int(np.searchsorted(t, (view_last + 1) * width))
            if tail_to > tail_from:
                tail = _bins(t[tail_from:tail_to], v[tail_from:tail_to], width)
                parts = [np.concatenate([p, q]) for p, q in zip(parts, tail, strict=True)]
        idx, _, _, lo, hi = parts
        out_t, out_v = _bin_points(idx, lo, hi, width, max(1, -(-gap_ns // width)))
        return Points(out_t, out_v, True, raw)


@dataclass(frozen=True)
class HistorySlice:
    """One answer of the logger's history endpoint for one stream.

    Attributes:
        t0, t1: the range asked for (ns).
        times, values: the points (min/max per bucket when ``decimated``).
        decimated: whether the logger decimated.
        bucket_ns: the logger's bucket width for this request (0 when not decimated).
        raw_count: samples the range holds in the archive.
    """

    t0: int
    t1: int
    times: np.ndarray
    values: np.ndarray
    decimated: bool
    bucket_ns: int
    raw_count: int

    @property
    def gap_ns(self) -> int:
        """The gap threshold of these points (a decimated slice: three buckets at least)."""
        base = gap_threshold_ns(self.times, tail=4096)
        return max(base, 3 * self.bucket_ns) if self.decimated else base

    @property
    def resolution_ns(self) -> int:
        """How finely the slice resolves time (its bucket width, or 0 for raw samples)."""
        return self.bucket_ns if self.decimated else 0

    def covers(self, t0: int, t1: int) -> bool:
        """Whether the slice was asked for a range containing ``[t0, t1]``."""
        return self.t0 <= t0 and t1 <= self.t1


def nearest(t: np.ndarray, v: np.ndarray, at: int) -> tuple[int, float] | None:
    """The sample of sorted ``(t, v)`` nearest to ``at`` (None when empty)."""
    if not len(t):
        return None
    i = int(np.searchsorted(t, at))
    candidates = [j for j in (i - 1, i) if 0 <= j < len(t)]
    j = min(candidates, key=lambda k: abs(int(t[k]) - at))
    return int(t[j]), float(v[j])


class SeriesStore:
    """A :class:`LiveSeries` per scalar stream (``source/channel``), fed by ``data`` messages.

    Every data stream is kept from the moment it is first heard (a chart opened
    later has its live part at once); ``capacity`` bounds each one.
    """

    def __init__(self, capacity: int = LIVE_CAPACITY) -> None:
        self.capacity = capacity
        self.series: dict[str, LiveSeries] = {}

    def get(self, stream: str) -> LiveSeries:
        """The series of ``stream`` (created empty when not heard yet)."""
        series = self.series.get(stream)
        if series is None:
            series = self.series[stream] = LiveSeries(self.capacity)
        return series

    def add(self, stream: str, times: np.ndarray, values: np.ndarray, *, units: str = "",
            bad: bool = False) -> None:
        """Append samples of ``stream`` (flagged ones as NaN)."""
        series = self.get(stream)
        if units:
            series.units = units
        series.append(times, values, bad=bad)
