"""Screen decimation, gaps, history backfill, cursors and CSV of the strip charts (headless)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from gui.models.chart import NS, ChartModel, HistoryAnswer
from gui.models.series import ColumnCache, LiveSeries, SeriesStore, column_width, screen_points

T0 = 1_800_000_000 * NS


def _walk(n: int, seed: int = 0) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def test_minmax_per_column_keeps_every_extreme_and_a_one_sample_spike() -> None:
    t = T0 + np.arange(200_000, dtype=np.int64) * NS // 10
    v = _walk(len(t))
    v[123_457] = 1e6
    x0, x1 = int(t[1000]), int(t[-1000])
    pts = screen_points(t, v, x0, x1, 800, 10 * NS)
    assert pts.decimated and len(pts) <= 2 * 800 + 4
    width = column_width(x0, x1, 800)
    first, last = (x0 // width) * width, (x1 // width + 1) * width
    inside = (t >= first) & (t < last)
    assert np.nanmax(pts.v) == 1e6 and np.nanmin(pts.v) == v[inside].min()
    # each column's extremes, drawn at the column's centre
    idx = (t[inside] // width)
    for col in np.unique(idx)[1:-1:97]:  # the edge columns are cut by the view
        sel = v[inside][idx == col]
        drawn = pts.v[pts.t == col * width + width // 2]
        assert drawn.min() == sel.min() and drawn.max() == sel.max()


def test_few_samples_are_drawn_as_they_are_clipped_to_the_view_with_a_neighbour_each_side() -> None:
    t = T0 + np.arange(100, dtype=np.int64) * NS
    v = np.arange(100.0)
    pts = screen_points(t, v, int(t[10]) + NS // 2, int(t[20]) + NS // 2, 800, 5 * NS)
    assert not pts.decimated
    assert list(pts.v) == list(range(10, 22))  # 10 and 21 lie just outside: lines to the edges


def test_a_pause_in_the_data_is_drawn_as_a_gap_and_a_flagged_sample_as_none() -> None:
    series = LiveSeries()
    t = T0 + np.r_[np.arange(50), np.arange(200, 250)].astype(np.int64) * NS
    series.append(t, np.ones(100))
    series.append(np.array([T0 + 251 * NS]), np.array([5.0]), bad=True)
    pts = screen_points(series.times, series.values, T0, T0 + 260 * NS, 1000, series.gap_ns)
    gaps = np.flatnonzero(np.isnan(pts.v))
    assert len(gaps) == 2  # the pause, and the flagged sample (kept as NaN, never as 5.0)
    assert T0 + 49 * NS < pts.t[gaps[0]] < T0 + 200 * NS
    assert not np.any(pts.v == 5.0)


def test_the_column_cache_scrolls_incrementally_and_matches_a_full_recompute() -> None:
    series = LiveSeries()
    t = T0 + np.arange(120_000, dtype=np.int64) * NS
    v = _walk(len(t), 1)
    series.append(t[:100_000], v[:100_000])
    cache = ColumnCache(series)
    span = 90_000 * NS
    for k in range(100_000, 120_000, 500):
        series.append(t[k:k + 500], v[k:k + 500])
        x1 = int(t[k + 499])
        got = cache.points(x1 - span, x1, 700)
        ref = screen_points(series.times, series.values, x1 - span, x1, 700, series.gap_ns)
        width = column_width(x1 - span, x1, 700)
        # the first column is cut by the view's edge in one and whole in the other
        inner = (x1 - span) // width * width + width
        assert got.decimated
        assert np.array_equal(np.unique(got.t[got.t > inner]), np.unique(ref.t[ref.t > inner]))
        assert np.nanmax(got.v[got.t > inner]) == np.nanmax(ref.v[ref.t > inner])
        assert np.nanmin(got.v[got.t > inner]) == np.nanmin(ref.v[ref.t > inner])
    assert cache.rebuilds == 1  # the whole scroll reused its columns


def test_a_live_series_is_bounded_and_takes_late_samples_in_order() -> None:
    series = LiveSeries(capacity=1000)
    series.append(T0 + np.arange(1500, dtype=np.int64) * NS, np.arange(1500.0))
    assert series.n <= 1000 and series.last_ns == T0 + 1499 * NS
    series.append(np.array([T0 + 1400 * NS + 1]), np.array([-1.0]))  # a backfilled line
    assert np.all(np.diff(series.times) >= 0)
    assert series.values[np.searchsorted(series.times, T0 + 1400 * NS + 1)] == -1.0


def _chart(store: SeriesStore, span_s: float = 600.0) -> ChartModel:
    return ChartModel("mxc", "MXC", ["f1/mxc"], store, log_y=True, span_s=span_s)


def _answer(request, times: np.ndarray, values: np.ndarray, decimated: bool = False,
            ok: bool = True) -> HistoryAnswer:
    return HistoryAnswer(request, ok, times, values, decimated, len(times),
                         "" if ok else "no reply from the logger")


def test_history_is_asked_for_what_lies_before_the_live_buffer_then_joined_to_it() -> None:
    store = SeriesStore()
    now = T0 + 3600 * NS
    live_t = now - np.arange(60, 0, -1, dtype=np.int64) * NS
    store.add("f1/mxc", live_t, np.full(60, 0.013), units="K")
    chart = _chart(store)
    chart.tick(now, 600)
    (request,) = chart.wanted_history(600, now)
    assert request.topic == "data/f1/mxc" and request.t1 == live_t[0]
    assert request.t0 <= chart.x0 and request.max_points >= 1200
    assert chart.wanted_history(600, now) == []  # one in flight, not again every frame
    assert chart.status == "loading history…"
    hist_t = np.arange(request.t0, request.t1, 2 * NS, dtype=np.int64)
    assert chart.on_history(_answer(request, hist_t, np.full(len(hist_t), 0.012)), now)
    pts = chart.points("f1/mxc", 600)
    assert pts.t[0] <= chart.x0 + 3 * NS and pts.t[-1] == live_t[-1]  # history, then live
    assert set(np.round(pts.v[np.isfinite(pts.v)], 3)) == {0.012, 0.013}
    assert chart.wanted_history(600, now) == [] and chart.status == ""
    # zoomed out to a day: the coarser view needs a new (decimated) request
    chart.set_span(86400, now, 600)
    (wide,) = chart.wanted_history(600, now)
    assert wide.t0 <= now - 86400 * NS and wide.bucket_ns <= 2 * 86400 * NS // 600


def test_a_failed_history_request_is_shown_and_asked_again_later() -> None:
    store = SeriesStore()
    now = T0
    chart = _chart(store)
    chart.tick(now)
    (request,) = chart.wanted_history(600, now)
    chart.on_history(_answer(request, np.empty(0, np.int64), np.empty(0), ok=False), now)
    assert "no reply from the logger" in chart.status
    assert chart.wanted_history(600, now + NS) == []
    assert len(chart.wanted_history(600, now + 6 * NS)) == 1


def test_an_answer_to_a_superseded_request_is_ignored() -> None:
    store = SeriesStore()
    chart = _chart(store)
    chart.tick(T0)
    (old,) = chart.wanted_history(600, T0)
    chart.set_span(86400, T0)
    (new,) = chart.wanted_history(600, T0)
    assert not chart.on_history(_answer(old, np.array([T0]), np.array([1.0])), T0)
    assert chart.on_history(_answer(new, np.array([T0]), np.array([1.0])), T0)


def test_a_following_view_moves_in_whole_pixel_columns() -> None:
    chart = _chart(SeriesStore(), span_s=3600)
    chart.tick(T0, 600)
    view = chart.view
    chart.tick(T0 + NS, 600)  # a second later: still inside the same 6 s column
    assert chart.view == view and chart.x1 >= T0 + NS
    chart.tick(T0 + 7 * NS, 600)
    assert chart.view != view


def test_panning_to_the_past_stops_following_and_follow_returns() -> None:
    chart = _chart(SeriesStore())
    chart.set_view(T0 - 3600 * NS, T0 - 3000 * NS, T0)
    assert not chart.following
    chart.follow(T0)
    assert chart.following and chart.x1 >= T0


def test_the_cursor_reads_exact_samples_and_asks_for_them_under_decimated_history() -> None:
    store = SeriesStore()
    now = T0 + 7200 * NS
    store.add("f1/mxc", np.array([now - 10 * NS, now - 5 * NS]), np.array([0.0131, 0.0132]),
              units="K")
    chart = _chart(store, span_s=7200)
    chart.tick(now)
    (request,) = chart.wanted_history(600, now)
    hist_t = np.linspace(request.t0, request.t1 - NS, 1000).astype(np.int64)
    chart.on_history(_answer(request, hist_t, np.full(1000, 0.02), decimated=True), now)
    live = chart.cursor(now - 6 * NS)[0]
    assert live.exact and live.text == "13.20 mK"
    at = int(hist_t[500])
    approx = chart.cursor(at)[0]
    assert not approx.exact and approx.text.startswith("≈ ")
    (exact,) = chart.exact_request(at)
    assert exact.purpose == "cursor" and exact.t0 < at < exact.t1
    chart.on_history(_answer(exact, np.array([at - 1]), np.array([0.0199])), now)
    read = chart.cursor(at)[0]
    assert read.exact and read.text == "19.90 mK"


def test_csv_holds_the_view_and_says_what_each_row_is() -> None:
    store = SeriesStore()
    now = T0 + 600 * NS
    store.add("f1/mxc", np.array([now - 2 * NS, now - NS]), np.array([0.013, np.nan]),
              units="K")
    chart = _chart(store)
    chart.tick(now)
    (request,) = chart.wanted_history(600, now)
    chart.on_history(_answer(request, np.array([now - 300 * NS]), np.array([0.012]),
                             decimated=True), now)
    rows = list(csv.DictReader(io.StringIO(chart.to_csv())))
    assert [r["kind"] for r in rows] == ["bucket min/max", "sample", "flagged"]
    assert rows[0]["value"] == "0.012" and rows[1]["units"] == "K"
    assert rows[2]["value"] == ""  # a flagged sample is no number
    assert rows[1]["time_utc"].endswith("+00:00")


@pytest.mark.parametrize("span_s", [60, 3600, 7 * 86400])
def test_a_week_at_1_hz_draws_at_most_two_points_per_pixel(span_s: int) -> None:
    store = SeriesStore()
    n = 7 * 86400
    store.add("f1/mxc", T0 + np.arange(n, dtype=np.int64) * NS, _walk(n), units="K")
    chart = _chart(store, span_s=span_s)
    chart.tick(T0 + n * NS, 1000)
    pts = chart.points("f1/mxc", 1000)
    assert 0 < len(pts) <= 2 * 1000 + 10
