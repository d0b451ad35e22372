"""``qupdaq bench gui``: frames per second and publish-to-paint latency of the dashboard.

The dashboard's own pipeline, offscreen, under a control-room load:

* a source process (:mod:`gui.bench_source`: a broker and a publisher, as a
  daemon would be) publishes 8 scalar streams at 50 Hz and an 8192-sample
  waveform record at 50 Hz;
* the dashboard window (:class:`BenchWindow`, a
  :class:`~gui.window.DashboardWindow` showing its 8 strip charts and the
  detector view together) receives them on its bus thread; each chart
  already holds 100 000 points of its stream over the hour it shows, scrolls
  with the live edge and is min/max decimated to its pixel columns every
  frame;
* every paint of a chart or of the record is timed against the publish time
  of the newest sample it shows.

Figures: frames painted per second (the slowest chart), publish-to-paint
latency p50/p99 over every chart and record paint, the frame's own work
(drain + models + drawing) p50/p99, and messages received. Goals: at least
30 frames/s, p99 latency under 100 ms. ``--scale`` stretches the measuring time.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtWidgets  # noqa: E402 - after choosing the platform

from daq.config import load_config  # noqa: E402
from gui import theme  # noqa: E402
from gui.widgets.charts import StripChart  # noqa: E402
from gui.window import DashboardWindow, settings_at  # noqa: E402

CHARTS = 8
POINTS = 100_000
RATE_HZ = 50.0
SAMPLES = 8192
SPAN_S = 3600.0
GOAL_FPS = 30.0
GOAL_P99_MS = 100.0


class _PaintProbe(QtCore.QObject):
    """Times the paints of one view against the publish time of what it shows."""

    def __init__(self, newest: object, sink: list[float], counts: list[int]) -> None:
        super().__init__()
        self.newest = newest  # callable -> ns of the newest sample drawn
        self.sink = sink
        self.counts = counts
        self.last = 0

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802
        if event.type() == QtCore.QEvent.Type.Paint:
            t = self.newest()  # type: ignore[operator]
            self.counts[0] += 1
            if t and t != self.last:
                self.last = t
                self.sink.append((time.time_ns() - t) / 1e6)
        return False


class BenchWindow(DashboardWindow):
    """The dashboard with its charts and detector side by side (both repainted every frame)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        split = QtWidgets.QSplitter()
        for view in (self.charts, self.detector):
            self.tabs.removeTab(self.tabs.indexOf(view))
            split.addWidget(view)
            view.show()  # a former tab page stays hidden after moving until told otherwise
        split.setSizes([1300, 620])
        self.tabs.addTab(split, "Bench")
        self.tabs.setCurrentWidget(split)

    def refresh_views(self, view: str, now_ns: int, mono: float) -> None:
        self.charts.refresh(now_ns)
        self.detector.refresh(now_ns, mono)


def _config(tmp: Path, publish: str, subscribe: str, snapshot: str) -> Path:
    def port(url: str) -> int:
        return int(url.rsplit(":", 1)[1])

    data = {
        "lab": {"name": "bench"},
        "bus": {"host": "127.0.0.1", "publish_port": port(publish),
                "subscribe_port": port(subscribe), "snapshot_port": port(snapshot),
                "heartbeat_s": 0.5},
        "dashboard": {
            "title": "qupdaq bench gui",
            "detectors": {"bench": {"record": "bench/record", "amps_per_volt": -2.5e-6,
                                    "trigger_level_v": 0.05}},
            "charts": [{"title": f"Channel {k}", "streams": [f"bench/ch{k}"], "log_y": True}
                       for k in range(CHARTS)],
        },
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _preload(window: DashboardWindow, now_ns: int) -> None:
    """100 000 points per chart over the hour it shows (what a long session has gathered)."""
    rng = np.random.default_rng(0)
    times = now_ns - np.linspace(SPAN_S * 1e9, 1e8, POINTS).astype(np.int64)
    for k in range(CHARTS):
        values = 0.015 * np.exp(np.cumsum(rng.normal(0, 0.002, POINTS)))
        window.model.store.add(f"bench/ch{k}", times, values, units="K")
    for chart in window.model.charts.values():
        chart.set_span(SPAN_S, now_ns)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(seconds: float = 10.0, warmup_s: float = 3.0, *,
        redraw_all: bool = False) -> dict[str, float]:
    """Measure; returns the figures (see the module docstring).

    Args:
        seconds: how long to measure.
        warmup_s: how long to run before measuring.
        redraw_all: hand every chart its points every frame, changed or not (the worst
            case: every chart repaints every frame).
    """
    StripChart.skip_unchanged = not redraw_all
    source = subprocess.Popen([sys.executable, "-m", "gui.bench_source", str(CHARTS),
                               str(RATE_HZ), str(SAMPLES)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert source.stdout is not None
        line = source.stdout.readline()
        if not line.startswith("source ready"):
            raise RuntimeError(f"bench source did not start: {line!r}")
        ends = dict(part.split("=", 1) for part in line.split()[2:])
        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["qupdaq-bench"])
        assert isinstance(app, QtWidgets.QApplication)
        theme.apply(app)
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            config = load_config(_config(tmp, ends["publish"], ends["subscribe"],
                                         ends["snapshot"]))
            window = BenchWindow(config, settings=settings_at(tmp / "bench.ini"), fps=60.0)
            window.resize(1920, 1080)
            window.show()
            _preload(window, time.time_ns())
            gc.freeze()  # as `qupdaq dashboard` does once its window is up
            latencies: list[float] = []
            counts = [[0] for _ in range(CHARTS + 1)]
            probes = []
            for k, chart in enumerate(window.charts.charts.values()):
                series = window.model.store.get(chart.model.streams[0])
                probe = _PaintProbe(lambda s=series: s.last_ns or 0, latencies, counts[k])
                chart.plot.viewport().installEventFilter(probe)
                probes.append(probe)
            panel = next(iter(window.detector.panels.values()))
            record_probe = _PaintProbe(lambda: panel.painted_t_ns, latencies, counts[-1])
            panel.scope.viewport().installEventFilter(record_probe)
            probes.append(record_probe)

            def spin(duration: float) -> None:
                # The real event loop (paints are delivered as in the dashboard itself).
                loop = QtCore.QEventLoop()
                QtCore.QTimer.singleShot(int(duration * 1000), loop.quit)
                loop.exec()

            spin(warmup_s)
            latencies.clear()
            for c in counts:
                c[0] = 0
            frames0 = window.frame_count
            received0 = window.feed.received
            window.frame_times.clear()
            t0 = time.monotonic()
            spin(seconds)
            elapsed = time.monotonic() - t0
            frame_ms = [1000 * f for f in window.frame_times]
            figures = {
                "fps": (window.frame_count - frames0) / elapsed,
                "chart_paints": min(c[0] for c in counts[:-1]) / elapsed,
                "record_fps": counts[-1][0] / elapsed,
                "latency_p50_ms": _percentile(latencies, 50),
                "latency_p99_ms": _percentile(latencies, 99),
                "frame_p50_ms": _percentile(frame_ms, 50),
                "frame_p99_ms": _percentile(frame_ms, 99),
                "messages_per_s": (window.feed.received - received0) / elapsed,
                "points_per_chart": float(min(c.model.store.get(c.model.streams[0]).n
                                              for c in window.charts.charts.values())),
                "samples": float(len(latencies)),
                "dropped": float(window.feed.dropped),
            }
            window.shutdown()
            window.close()
            del probes
            StripChart.skip_unchanged = True
    finally:
        if source.stdin is not None:
            source.stdin.close()
        try:
            source.wait(10)
        except subprocess.TimeoutExpired:
            source.kill()
    return figures


def _report(title: str, f: dict[str, float]) -> bool:
    ok = f["fps"] >= GOAL_FPS and f["latency_p99_ms"] < GOAL_P99_MS
    print(f"  {title}  (load average after: {os.getloadavg()[0]:.1f})")
    print(f"    frames per second (window, everything drawn)  {f['fps']:7.1f}   "
          f"goal >= {GOAL_FPS:g}")
    print(f"    chart repaints per second (slowest chart)     {f['chart_paints']:7.1f}")
    print(f"    record repaints per second                    {f['record_fps']:7.1f}")
    print(f"    publish-to-paint latency p50                  {f['latency_p50_ms']:7.1f} ms")
    print(f"    publish-to-paint latency p99                  {f['latency_p99_ms']:7.1f} ms   "
          f"goal < {GOAL_P99_MS:g} ms")
    print(f"    frame work (drain, models, drawing) p50 / p99 {f['frame_p50_ms']:7.1f} / "
          f"{f['frame_p99_ms']:.1f} ms")
    print(f"    messages received per second                  {f['messages_per_s']:7.0f}   "
          f"({f['dropped']:.0f} dropped)")
    print(f"    points held per chart                         {f['points_per_chart']:7.0f}")
    print("    goals met" if ok else "    GOALS NOT MET", flush=True)
    return ok


def main(scale: float = 1.0, argv: list[str] | None = None) -> int:
    """Run the bench (as the dashboard draws, then with every chart redrawn every frame)
    and print its figures; 0 when the goals are met in both.

    Args:
        scale: stretches the measuring time (``--scale``; 0.1 for a quick look).
        argv: the rest of the command line (``--scale S`` after ``gui`` lands here).
    """
    parser = argparse.ArgumentParser(prog="qupdaq bench gui")
    parser.add_argument("--scale", type=float, default=scale)
    scale = parser.parse_args(argv or []).scale
    seconds = max(2.0, 10.0 * scale)
    warmup = max(1.0, 3.0 * min(scale, 1.0))
    print(f"qupdaq bench gui: {CHARTS} strip charts x {POINTS} points (1 h each, following "
          f"the live edge), {CHARTS} streams at {RATE_HZ:g} Hz, a {SAMPLES}-sample record at "
          f"{RATE_HZ:g} Hz; offscreen, {seconds:g} s each", flush=True)
    # Other work on the machine shows in every figure below: say how busy it was.
    print(f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the "
          "run", flush=True)
    ok = _report("as the dashboard draws (a chart repaints when its pixels change):",
                 run(seconds, warmup))
    ok &= _report("worst case (every chart redrawn every frame):",
                  run(seconds, warmup, redraw_all=True))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(1.0, sys.argv[1:]))
