"""A strip chart, decided without Qt: view, history backfill, live growth, cursors, CSV.

A :class:`ChartModel` shows a set of streams over a time view. Its data
come from two places:

* the logger's history endpoint (:class:`daq.logger.history.HistoryClient`,
  min/max decimated server-side) for whatever lies before the dashboard
  started receiving a stream; :meth:`ChartModel.wanted_history` says which
  requests a view needs (at the view's resolution, with half a view of
  margin each side so a small pan needs nothing new), and
  :meth:`ChartModel.on_history` takes the answers;
* the live buffers (:class:`~gui.models.series.SeriesStore`) for everything
  since, drawn at full resolution where the pixels allow and min/max per
  pixel column where they do not (:class:`~gui.models.series.ColumnCache`).

:meth:`ChartModel.points` joins the two per stream. In *follow* mode the
view's right edge is "now" and it scrolls; any pan or zoom to the past
leaves follow mode, :meth:`ChartModel.follow` returns to it. Cursors read
the nearest sample (:meth:`ChartModel.cursor`): exact where the live buffer
or an undecimated history slice holds it, else marked approximate until a
narrow history request (:meth:`ChartModel.exact_request`) brings the sample.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from gui.models.format import format_number
from gui.models.series import (
    ColumnCache,
    HistorySlice,
    Points,
    SeriesStore,
    _with_gaps,
    column_width,
    nearest,
    screen_points,
)

NS = 1_000_000_000
#: Spans offered by the chart's span buttons (s): minutes to weeks.
SPANS_S = (60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 28 * 86400)
#: A failed history request is asked again after this long (ns).
RETRY_NS = 5 * NS
#: The most points one history request asks for.
MAX_HISTORY_POINTS = 200_000

_request_ids = itertools.count(1)


@dataclass(frozen=True)
class HistoryRequest:
    """One query to the logger's history endpoint.

    Attributes:
        id: unique per request; the answer carries it back.
        chart: the asking chart's key (a worker keeps only the newest per chart and stream).
        stream: ``source/channel`` (the query asks for ``data/<stream>``).
        t0, t1: the range (ns).
        max_points: the decimation bound.
        purpose: ``view`` (backfill) or ``cursor`` (one exact sample).
    """

    id: int
    chart: str
    stream: str
    t0: int
    t1: int
    max_points: int
    purpose: str = "view"

    @property
    def topic(self) -> str:
        return f"data/{self.stream}"

    @property
    def bucket_ns(self) -> int:
        """The bucket width the logger uses for this request (as daq.logger.decimate)."""
        buckets = max(1, self.max_points // 2)
        return max(1, -(-(self.t1 - self.t0 + 1) // buckets))


@dataclass(frozen=True)
class HistoryAnswer:
    """The logger's answer to a :class:`HistoryRequest` (or why there is none)."""

    request: HistoryRequest
    ok: bool
    times: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    decimated: bool = False
    raw_count: int = 0
    error: str = ""


@dataclass(frozen=True)
class CursorValue:
    """What a cursor reads on one stream.

    Attributes:
        stream: ``source/channel``.
        t_ns: the sample's time (None when there is no sample near).
        value: the sample's value (NaN for a flagged sample).
        exact: False while only a decimated bucket's extreme is known.
        text: ready to show: "12.97 mK" (with "≈" when not exact).
    """

    stream: str
    t_ns: int | None
    value: float
    exact: bool
    text: str


def _enough(have: HistorySlice | None, t0: int, t1: int, width: int) -> bool:
    """Whether a held slice covers ``[t0, t1]`` finely enough for columns ``width`` wide."""
    return (have is not None and have.t0 <= t0 and have.t1 >= t1
            and have.resolution_ns <= 2 * width)


@dataclass
class _StreamState:
    history: HistorySlice | None = None
    pending: HistoryRequest | None = None
    exact: HistorySlice | None = None  # a narrow raw slice around the cursor
    exact_pending: HistoryRequest | None = None
    error: str = ""
    retry_at: int = 0
    cache: ColumnCache | None = None


class ChartModel:
    """One strip chart (see the module docstring).

    Args:
        key: unique name of the chart (requests and settings refer to it).
        title: shown above the plot.
        streams: ``source/channel`` names.
        store: the live buffers.
        log_y: logarithmic value axis.
        span_s: initial view width in seconds.
    """

    def __init__(self, key: str, title: str, streams: Iterable[str], store: SeriesStore, *,
                 log_y: bool = False, span_s: float = 3600.0) -> None:
        self.key = key
        self.title = title
        self.streams = list(dict.fromkeys(streams))
        self.store = store
        self.log_y = log_y
        self.span_ns = int(span_s * NS)
        self.following = True
        self.x1 = 0
        self.x0 = -self.span_ns
        self.cursor_ns: int | None = None
        self._state = {s: _StreamState() for s in self.streams}

    # ---- the view -----------------------------------------------------------------------------

    @property
    def view(self) -> tuple[int, int]:
        """The view ``(x0, x1)`` in ns since the epoch."""
        return self.x0, self.x1

    def tick(self, now_ns: int, columns: int = 0) -> None:
        """Advance a following view to ``now_ns``.

        With ``columns`` (the plot's width in pixels) the view moves in whole pixel
        columns: its right edge is the end of the column holding ``now_ns``, so between
        two columns only the newest points change and the axes stay as they are
        (redrawing an axis is the dearest part of a chart's frame; an hour on 600
        pixels scrolls every 6 s, not 50 times a second).
        """
        if self.following:
            width = column_width(0, self.span_ns, columns) if columns > 0 else 1
            self.x1 = (now_ns // width + 1) * width
            self.x0 = self.x1 - self.span_ns

    def set_view(self, x0: int, x1: int, now_ns: int) -> None:
        """The user panned or zoomed to ``[x0, x1]``: follow only if it ends at "now"."""
        if x1 <= x0:
            return
        self.x0, self.x1 = int(x0), int(x1)
        self.span_ns = self.x1 - self.x0
        # Within 2 % of a view of now counts as "at now": a user dragging the live edge
        # back to the right expects the chart to keep scrolling.
        self.following = self.x1 >= now_ns - self.span_ns // 50

    def set_span(self, span_s: float, now_ns: int, columns: int = 0) -> None:
        """Show the last ``span_s`` seconds and follow."""
        self.span_ns = max(NS, int(span_s * NS))
        self.following = True
        self.tick(now_ns, columns)

    def follow(self, now_ns: int, columns: int = 0) -> None:
        """Back to the live edge at the current span."""
        self.following = True
        self.tick(now_ns, columns)

    # ---- history ------------------------------------------------------------------------------

    def _live_first(self, stream: str) -> int | None:
        series = self.store.series.get(stream)
        return None if series is None else series.first_ns

    def wanted_history(self, columns: int, now_ns: int) -> list[HistoryRequest]:
        """The history requests the current view needs (each stream at most one in flight)."""
        requests = []
        width = column_width(self.x0, self.x1, columns)
        margin = self.span_ns // 2
        for stream, state in self._state.items():
            live_first = self._live_first(stream)
            # History is needed up to where the live buffer starts; a stream not heard live
            # needs it up to now, with some slack so that a following view does not ask
            # again every frame.
            hist_end = now_ns if live_first is None else live_first
            slack = 0 if live_first is not None else max(2 * width, 30 * NS)
            need0, need1 = self.x0, min(self.x1, hist_end)
            if need1 <= need0:
                continue  # the live buffer holds the whole view
            if _enough(state.history, need0, need1 - slack, width):
                continue
            pending = state.pending
            if pending is not None and pending.t0 <= need0 and pending.t1 >= need1 - slack \
                    and pending.bucket_ns <= 2 * width:
                continue
            if state.error and now_ns < state.retry_at:
                continue
            t0 = need0 - margin
            t1 = min(need1 + margin, hist_end)
            points = min(MAX_HISTORY_POINTS,
                         max(100, int(2 * columns * (t1 - t0) / max(1, self.span_ns))))
            request = HistoryRequest(next(_request_ids), self.key, stream, t0, t1, points)
            state.pending = request
            requests.append(request)
        return requests

    def on_history(self, answer: HistoryAnswer, now_ns: int) -> bool:
        """Take an answer; False when it was for a request superseded since."""
        request = answer.request
        state = self._state.get(request.stream)
        if state is None:
            return False
        if request.purpose == "cursor":
            if state.exact_pending is None or state.exact_pending.id != request.id:
                return False
            state.exact_pending = None
            if answer.ok:
                state.exact = HistorySlice(request.t0, request.t1, answer.times, answer.values,
                                           answer.decimated, request.bucket_ns, answer.raw_count)
            return True
        if state.pending is None or state.pending.id != request.id:
            return False
        state.pending = None
        if not answer.ok:
            state.error = answer.error
            state.retry_at = now_ns + RETRY_NS
            return True
        state.error = ""
        state.history = HistorySlice(request.t0, request.t1, np.asarray(answer.times, np.int64),
                                     np.asarray(answer.values, np.float64), answer.decimated,
                                     request.bucket_ns if answer.decimated else 0,
                                     answer.raw_count)
        return True

    def history(self, stream: str) -> HistorySlice | None:
        """The history slice held for ``stream``."""
        return self._state[stream].history

    @property
    def status(self) -> str:
        """A one-line state of the history: loading, the logger's error, or ""."""
        errors = {s.error for s in self._state.values() if s.error}
        if errors:
            return "history unavailable: " + "; ".join(sorted(errors))[:300]
        if any(s.pending is not None for s in self._state.values()):
            return "loading history…"
        return ""

    # ---- drawing ------------------------------------------------------------------------------

    def points(self, stream: str, columns: int) -> Points:
        """What to draw of ``stream`` in the view: history before the live part, then live."""
        state = self._state[stream]
        series = self.store.series.get(stream)
        live_first = None if series is None else series.first_ns
        x0, x1 = self.x0, self.x1
        parts: list[Points] = []
        have = state.history
        if have is not None and len(have.times):
            end = len(have.times) if live_first is None else int(
                np.searchsorted(have.times, live_first, side="left"))
            if end:
                parts.append(screen_points(have.times[:end], have.values[:end], x0, x1, columns,
                                           have.gap_ns))
        if series is not None and series.n:
            if state.cache is None or state.cache.series is not series:
                state.cache = ColumnCache(series)
            parts.append(state.cache.points(x0, x1, columns))
        parts = [p for p in parts if len(p)]
        if not parts:
            return Points.empty()
        if len(parts) == 1:
            return parts[0]
        hist, live = parts
        gap = max(have.gap_ns if have is not None else 0,
                  series.gap_ns if series is not None else 0)
        t, v = _with_gaps(np.concatenate([hist.t, live.t]), np.concatenate([hist.v, live.v]),
                          gap)
        return Points(t, v, hist.decimated or live.decimated,
                      hist.raw_in_view + live.raw_in_view)

    def units(self, stream: str) -> str:
        series = self.store.series.get(stream)
        return "" if series is None else series.units

    # ---- cursors ------------------------------------------------------------------------------

    def cursor(self, at_ns: int) -> list[CursorValue]:
        """What a cursor at ``at_ns`` reads on every stream (see the module docstring)."""
        self.cursor_ns = int(at_ns)
        return [self._read(stream, int(at_ns)) for stream in self.streams]

    def _read(self, stream: str, at: int) -> CursorValue:
        state = self._state[stream]
        units = self.units(stream)
        series = self.store.series.get(stream)
        candidates: list[tuple[int, float, bool]] = []
        if series is not None and series.n:
            hit = nearest(series.times, series.values, at)
            if hit is not None:
                candidates.append((*hit, True))
        for slice_ in (state.exact, state.history):
            if slice_ is not None and len(slice_.times):
                hit = nearest(slice_.times, slice_.values, at)
                if hit is not None:
                    candidates.append((*hit, not slice_.decimated))
        if not candidates:
            return CursorValue(stream, None, math.nan, False, "—")
        exact_hits = [c for c in candidates if c[2]]
        rough_hits = [c for c in candidates if not c[2]]
        best = min(candidates, key=lambda c: abs(c[0] - at))
        if exact_hits and rough_hits:
            # A decimated point is only as precise as its bucket: an exact sample within a
            # bucket of the cursor is the better reading.
            exact_best = min(exact_hits, key=lambda c: abs(c[0] - at))
            rough_best = min(rough_hits, key=lambda c: abs(c[0] - at))
            slack = state.history.bucket_ns if state.history is not None else 0
            if abs(exact_best[0] - at) <= abs(rough_best[0] - at) + slack:
                best = exact_best
        t, value, exact = best
        number, unit = format_number(value, units)
        text = f"{'' if exact else '≈ '}{number} {unit}".strip() if math.isfinite(value) else \
            "flagged"
        return CursorValue(stream, t, value, exact, text)

    def exact_request(self, at_ns: int) -> list[HistoryRequest]:
        """Narrow history requests for the streams the cursor reads only approximately."""
        requests = []
        for value in self.cursor(at_ns):
            state = self._state[value.stream]
            if value.exact or value.t_ns is None or state.history is None:
                continue
            half = max(state.history.bucket_ns, NS)
            request = HistoryRequest(next(_request_ids), self.key, value.stream,
                                     at_ns - 2 * half, at_ns + 2 * half, 100_000, "cursor")
            state.exact_pending = request
            requests.append(request)
        return requests

    # ---- export -------------------------------------------------------------------------------

    def to_csv(self, columns: int = 100_000) -> str:
        """The chart's view as CSV: one row per point, saying whether it is a sample or a
        decimated bucket's extreme (full resolution: ``qupdaq export``)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["stream", "time_utc", "t_ns", "value", "units", "kind"])
        for stream in self.streams:
            units = self.units(stream)
            rows: list[tuple[int, float, str]] = []
            state = self._state[stream]
            series = self.store.series.get(stream)
            live_first = None if series is None else series.first_ns
            if state.history is not None:
                h = state.history
                sel = (h.times >= self.x0) & (h.times <= self.x1)
                if live_first is not None:
                    sel &= h.times < live_first
                kind = "bucket min/max" if h.decimated else "sample"
                rows += [(int(t), float(v), kind) for t, v in zip(h.times[sel], h.values[sel],
                                                                   strict=True)]
            if series is not None and series.n:
                t, v = series.times, series.values
                a = int(np.searchsorted(t, self.x0))
                b = int(np.searchsorted(t, self.x1, side="right"))
                rows += [(int(x), float(y), "sample") for x, y in zip(t[a:b], v[a:b],
                                                                       strict=True)]
            for t_ns, value, kind in sorted(rows):
                stamp = datetime.fromtimestamp(t_ns / NS, UTC).isoformat(timespec="milliseconds")
                writer.writerow([stream, stamp, t_ns, "" if math.isnan(value) else repr(value),
                                 units, kind if math.isfinite(value) else "flagged"])
        return out.getvalue()

    # ---- memory -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What the settings keep of this chart (title, streams, log axis, span)."""
        return {"key": self.key, "title": self.title, "streams": list(self.streams),
                "log_y": self.log_y, "span_s": self.span_ns / NS}
