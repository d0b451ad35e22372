"""Strip charts: any set of channels, minutes to weeks, history backfilled, extended live.

A :class:`StripChart` renders a :class:`~gui.models.chart.ChartModel` with
pyqtgraph: one line per stream, a date axis, a logarithmic value axis for
temperatures and pressures. The model decides what is drawn (history before
the live buffer, min/max per pixel column, clip to view, NaN at gaps); the
widget only hands the points to pyqtgraph's curves (their own downsampling
and clipping are off: the points are already at screen resolution).

Mouse: drag to pan, wheel to zoom (both leave the live edge; "Live" returns
to it); "Cursor" shows a vertical line that reads every stream's nearest
sample (exact values: a decimated history point is marked ≈ until the
logger has sent the sample itself). "PNG" and "CSV" export the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui import theme
from gui.models.chart import NS, SPANS_S, ChartModel, HistoryRequest
from gui.models.series import Points, to_seconds
from gui.widgets.common import SteadyRange, cache_axes, opaque

pg.setConfigOptions(antialias=False, background=theme.BACKGROUND, foreground=theme.DIM)

SPAN_LABELS = {60: "1 min", 600: "10 min", 3600: "1 h", 6 * 3600: "6 h", 86400: "1 d",
               7 * 86400: "1 w", 28 * 86400: "4 w"}
#: Curves with more points than this are drawn with a 1-pixel pen (Qt's fast path);
#: sparser ones with 2 pixels, to be seen from across the room.
THIN_ABOVE = 400


class StripChart(QtWidgets.QFrame):
    """One chart (see the module docstring).

    Args:
        model: what to draw.
        request_history: where the chart sends history requests (the window's worker).
        on_close: called when a person closes a chart they added (None: not closable).
    """

    #: Skip handing unchanged points to the plot (False: redraw every frame, for the bench's
    #: worst case).
    skip_unchanged = True

    def __init__(self, model: ChartModel, request_history: Callable[[HistoryRequest], None],
                 on_close: Callable[[str], None] | None = None,
                 label: Callable[[str], str] = str,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.label = label
        self.request_history = request_history
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setStyleSheet(f"StripChart {{ border: 1px solid {theme.PANEL_EDGE}; }}")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(2)
        head = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel(model.title)
        self.title.setStyleSheet("font-size: 17px; font-weight: bold;")
        head.addWidget(self.title)
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet(f"color: {theme.DIM};")
        # Its text never resizes the chart (a resize re-bins every column).
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                  QtWidgets.QSizePolicy.Policy.Preferred)
        head.addWidget(self.status, 1)
        self.live_button = self._button("Live", head, self._follow, checkable=True)
        self.fit_button = self._button("Fit Y", head, self._fit_y)
        self.cursor_button = self._button("Cursor", head, self._toggle_cursor, checkable=True)
        self._button("PNG", head, self._ask_png)
        self._button("CSV", head, self._ask_csv)
        if on_close is not None:
            self._button("✕", head, lambda: on_close(model.key))
        layout.addLayout(head)

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setMinimumHeight(180)
        opaque(self.plot)
        item = self.plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.18)
        item.setMenuEnabled(False)
        item.hideButtons()
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTextPen(theme.DIM)
            item.getAxis(axis).setStyle(tickFont=theme.font(13))
        item.getAxis("left").setLogMode(model.log_y)
        item.getAxis("left").setWidth(64)
        cache_axes(item)
        self.vb = item.getViewBox()
        self.vb.disableAutoRange()
        self.vb.sigRangeChangedManually.connect(self._user_range)
        self.legend = item.addLegend(offset=(8, 4), labelTextSize="12pt")
        # The legend changes with the streams, not with the data: keep it as a pixmap.
        self.legend.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.curves: dict[str, pg.PlotCurveItem] = {}
        for k, stream in enumerate(model.streams):
            colour = theme.SERIES_COLOURS[k % len(theme.SERIES_COLOURS)]
            curve = pg.PlotCurveItem(pen=pg.mkPen(colour, width=2), name=label(stream),
                                     connect="finite", skipFiniteCheck=True)
            item.addItem(curve)
            self.curves[stream] = curve
        self.cursor_line = pg.InfiniteLine(angle=90, movable=True,
                                      pen=pg.mkPen("#ffffff", width=1, style=QtCore.Qt.PenStyle.DashLine))
        self.cursor_line.setVisible(False)
        self.cursor_line.sigPositionChanged.connect(self._cursor_moved)
        self.cursor_line.sigPositionChangeFinished.connect(self._cursor_settled)
        item.addItem(self.cursor_line, ignoreBounds=True)
        layout.addWidget(self.plot, 1)
        self.readout = QtWidgets.QLabel("")
        self.readout.setStyleSheet("font-family: 'DejaVu Sans Mono'; font-size: 13px;")
        self.readout.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                   QtWidgets.QSizePolicy.Policy.Preferred)
        self.readout.setVisible(False)
        layout.addWidget(self.readout)
        self._y = SteadyRange()
        self._y_auto = True
        self._drawn: dict[str, Points] = {}
        self._extent: dict[str, tuple[float, float]] = {}
        self._setting_range = False
        self._x_shown: tuple[int, int] | None = None
        self.frames = 0
        self.points_drawn = 0

    def _button(self, text: str, layout: QtWidgets.QHBoxLayout, slot: Callable[[], None], *,
                checkable: bool = False) -> QtWidgets.QPushButton:
        button = QtWidgets.QPushButton(text)
        button.setCheckable(checkable)
        button.clicked.connect(lambda _=False: slot())
        layout.addWidget(button)
        return button

    # ---- drawing ------------------------------------------------------------------------------

    @property
    def columns(self) -> int:
        """Pixel columns of the plot area, in steps of 8: a plot a few pixels narrower
        (a longer tick label) keeps its columns, and its cached min/max with them."""
        width = int(self.vb.width()) or self.plot.width()
        return max(96, width - width % 8)

    def draw(self, now_ns: int) -> None:
        """Bring the chart to ``now_ns``: scroll, ask for missing history, redraw the lines."""
        model = self.model
        columns = self.columns
        model.tick(now_ns, columns)
        for request in model.wanted_history(columns, now_ns):
            self.request_history(request)
        x0, x1 = model.view
        if (x0, x1) != self._x_shown:
            self._setting_range = True
            self.vb.setXRange(x0 / NS, x1 / NS, padding=0)
            self._setting_range = False
            self._x_shown = (x0, x1)
        lo, hi = math.inf, -math.inf
        drawn = 0
        changed = False
        for k, (stream, curve) in enumerate(self.curves.items()):
            pts = model.points(stream, columns)
            drawn += len(pts)
            last = self._drawn.get(stream)
            if self.skip_unchanged and last is not None and np.array_equal(last.t, pts.t) \
                    and np.array_equal(last.v, pts.v, equal_nan=True):
                continue  # nothing new on screen: no repaint
            self._drawn[stream] = pts
            changed = True
            y = pts.v
            if model.log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
            curve.setData(to_seconds(pts.t), y)
            width = 1 if len(pts) > THIN_ABOVE else 2
            if curve.opts["pen"].width() != width:
                curve.setPen(pg.mkPen(theme.SERIES_COLOURS[k % len(theme.SERIES_COLOURS)],
                                      width=width))
            finite = y[np.isfinite(y)]
            if len(finite):
                self._extent[stream] = (float(finite.min()), float(finite.max()))
            else:
                self._extent.pop(stream, None)
        if changed and self._y_auto and self._extent:
            lo = min(e[0] for e in self._extent.values())
            hi = max(e[1] for e in self._extent.values())
            new = self._y.update(lo, hi)
            if new is not None:
                self._setting_range = True
                self.vb.setYRange(*new, padding=0)
                self._setting_range = False
        self.live_button.setChecked(model.following)
        status = model.status
        if not status and drawn == 0:
            status = "no data in view"
        self.status.setText(status)
        self.frames += 1
        self.points_drawn = drawn

    # ---- interaction --------------------------------------------------------------------------

    def _user_range(self, changed: list[bool]) -> None:
        if self._setting_range:
            return
        now = _now_ns()
        (x0, x1), _ = self.vb.viewRange()
        if changed[0] if changed else True:
            self.model.set_view(int(x0 * NS), int(x1 * NS), now)
            self._x_shown = self.model.view
        if len(changed) > 1 and changed[1]:
            self._y_auto = False

    def _follow(self) -> None:
        self.model.follow(_now_ns(), self.columns)
        self.live_button.setChecked(True)

    def _fit_y(self) -> None:
        self._y_auto = True
        self._y = SteadyRange()
        self._drawn.clear()  # redraw, and scale to what is drawn

    def set_span(self, span_s: float) -> None:
        """Show the last ``span_s`` seconds and follow."""
        self.model.set_span(span_s, _now_ns(), self.columns)

    def _toggle_cursor(self) -> None:
        on = self.cursor_button.isChecked()
        self.cursor_line.setVisible(on)
        self.readout.setVisible(on)
        if on:
            x0, x1 = self.model.view
            self.cursor_line.setValue((x0 + (x1 - x0) * 0.8) / NS)
            self._cursor_moved()

    def place_cursor(self, t_ns: int) -> None:
        """Show the cursor at ``t_ns`` (for scripts and tests) and ask for exact values."""
        self.cursor_button.setChecked(True)
        self.cursor_line.setVisible(True)
        self.readout.setVisible(True)
        self.cursor_line.setValue(t_ns / NS)
        self._cursor_settled()

    def _cursor_moved(self) -> None:
        t_ns = int(self.cursor_line.value() * NS)
        values = self.model.cursor(t_ns)
        stamp = datetime.fromtimestamp(t_ns / NS).strftime("%Y-%m-%d %H:%M:%S")
        self.readout.setText(stamp + "   " + "   ".join(f"{self.label(v.stream)}: {v.text}"
                                                       for v in values))

    def _cursor_settled(self) -> None:
        for request in self.model.exact_request(int(self.cursor_line.value() * NS)):
            self.request_history(request)
        self._cursor_moved()

    def refresh_cursor(self) -> None:
        """Re-read the cursor (an exact sample arrived)."""
        if self.cursor_line.isVisible():
            self._cursor_moved()

    # ---- export -------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> Path:
        """Save the chart as it is on screen."""
        path = Path(path)
        if not self.grab().save(str(path)):
            raise OSError(f"could not write {path}")
        return path

    def export_csv(self, path: str | Path) -> Path:
        """Save the points of the view as CSV (see :meth:`ChartModel.to_csv`)."""
        path = Path(path)
        path.write_text(self.model.to_csv(), encoding="utf-8")
        return path

    def _ask_png(self) -> None:
        name, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save chart as PNG",
                                                        f"{self.model.key}.png", "PNG (*.png)")
        if name:
            self.export_png(name)

    def _ask_csv(self) -> None:
        name, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save chart data as CSV",
                                                        f"{self.model.key}.csv", "CSV (*.csv)")
        if name:
            self.export_csv(name)


def _now_ns() -> int:
    import time

    return time.time_ns()


class AddChartDialog(QtWidgets.QDialog):
    """Pick streams, a title and the axis for a new chart."""

    def __init__(self, streams: list[str], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a chart")
        layout = QtWidgets.QVBoxLayout(self)
        self.title = QtWidgets.QLineEdit("New chart")
        layout.addWidget(QtWidgets.QLabel("Title"))
        layout.addWidget(self.title)
        layout.addWidget(QtWidgets.QLabel("Channels"))
        self.list = QtWidgets.QListWidget()
        for stream in streams:
            entry = QtWidgets.QListWidgetItem(stream)
            entry.setFlags(entry.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(QtCore.Qt.CheckState.Unchecked)
            self.list.addItem(entry)
        layout.addWidget(self.list)
        self.log_y = QtWidgets.QCheckBox("Logarithmic value axis")
        layout.addWidget(self.log_y)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).checkState() == QtCore.Qt.CheckState.Checked]


class ChartsView(QtWidgets.QWidget):
    """The strip charts in a grid, with spans for all of them and "Add chart".

    Args:
        request_history: where charts send history requests.
        streams: the streams offered by "Add chart" (called when the dialog opens).
        on_add: called with (title, streams, log_y) when a person adds a chart.
        on_remove: called with a chart's key when a person closes a chart they added.
    """

    def __init__(self, request_history: Callable[[HistoryRequest], None],
                 streams: Callable[[], list[str]],
                 on_add: Callable[[str, list[str], bool], object],
                 on_remove: Callable[[str], None],
                 label: Callable[[str], str] = str,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.request_history = request_history
        self.streams = streams
        self.on_add = on_add
        self.on_remove = on_remove
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Span (all charts):"))
        for span in SPANS_S:
            button = QtWidgets.QPushButton(SPAN_LABELS[span])
            button.clicked.connect(lambda _=False, s=span: self.set_span(s))
            bar.addWidget(button)
        bar.addStretch(1)
        add = QtWidgets.QPushButton("Add chart…")
        add.clicked.connect(self._add)
        bar.addWidget(add)
        layout.addLayout(bar)
        self.grid_host = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(8)
        # Many charts on a small screen scroll rather than push the window beyond it.
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.grid_host)
        layout.addWidget(scroll, 1)
        self.charts: dict[str, StripChart] = {}

    def add_chart(self, model: ChartModel, closable: bool) -> StripChart:
        chart = StripChart(model, self.request_history,
                           on_close=self.on_remove if closable else None, label=self.label)
        self.charts[model.key] = chart
        self._relayout()
        return chart

    def remove_chart(self, key: str) -> None:
        chart = self.charts.pop(key, None)
        if chart is not None:
            self.grid.removeWidget(chart)
            chart.deleteLater()
            self._relayout()

    def _relayout(self) -> None:
        for chart in self.charts.values():
            self.grid.removeWidget(chart)
        cols = 1 if len(self.charts) <= 2 else 2
        for k, chart in enumerate(self.charts.values()):
            self.grid.addWidget(chart, k // cols, k % cols)

    def set_span(self, span_s: float) -> None:
        for chart in self.charts.values():
            chart.set_span(span_s)

    def _add(self) -> None:
        dialog = AddChartDialog(self.streams(), self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.chosen():
            self.on_add(dialog.title.text() or "Chart", dialog.chosen(),
                        dialog.log_y.isChecked())

    def refresh(self, now_ns: int) -> None:
        for chart in self.charts.values():
            chart.draw(now_ns)
