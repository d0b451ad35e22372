"""Measurement runs: the list with metadata and state, live progress, a run's plots.

Renders a :class:`~gui.models.runs.RunBook`: one row per run (running ones
first) with its procedure, sample, operator, status and a progress bar that
moves with the run's ``progress`` messages. Selecting a run shows its
parameters, result and plots (each point stream's fields against its first
field, :meth:`gui.models.runs.RunEntry.curves`); a finished run's points are
fetched from the logger when it is opened. "Refresh" asks the logger for its
list of runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gui import theme
from gui.models.runs import RunBook, RunEntry
from gui.widgets.common import cache_axes, selected_row, settle_table


class RunsView(QtWidgets.QWidget):
    """The runs (see the module docstring).

    Args:
        book: the runs.
        ask_listing: asks the logger for its list of runs.
        ask_events: asks the logger for a stored run's events (by run id).
    """

    COLUMNS = ("Run", "Procedure", "Sample", "Operator", "Status", "Started", "Progress")

    def __init__(self, book: RunBook, ask_listing: Callable[[], None],
                 ask_events: Callable[[str], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self.ask_listing = ask_listing
        self.ask_events = ask_events
        layout = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        self.note = QtWidgets.QLabel("")
        self.note.setStyleSheet(f"color: {theme.DIM};")
        bar.addWidget(self.note, 1)
        refresh = QtWidgets.QPushButton("Refresh from the archive")
        refresh.clicked.connect(lambda _=False: self.ask_listing())
        bar.addWidget(refresh)
        layout.addLayout(bar)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            6, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        split.addWidget(self.table)
        detail = QtWidgets.QWidget()
        d = QtWidgets.QHBoxLayout(detail)
        self.meta = QtWidgets.QLabel("Select a run.")
        self.meta.setWordWrap(True)
        self.meta.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.meta.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.meta.setMinimumWidth(320)
        d.addWidget(self.meta, 1)
        self.plots = pg.GraphicsLayoutWidget()
        d.addWidget(self.plots, 3)
        split.addWidget(detail)
        split.setSizes([260, 420])
        layout.addWidget(split, 1)
        self._rows: list[RunEntry] = []
        self.selected: RunEntry | None = None
        self._shown_version = -1
        self._plotted: tuple[str, int] | None = None
        self.bars: dict[str, QtWidgets.QProgressBar] = {}

    def refresh(self) -> None:
        if self.book.version == self._shown_version:
            return
        self._shown_version = self.book.version
        keep = self.selected.run_id if self.selected else None
        self._rows = self.book.listed()
        n = len(self._rows)
        self.note.setText(f"{n} run{'s' if n != 1 else ''} · "
                          f"{sum(r.running for r in self._rows)} running")
        self.table.setRowCount(len(self._rows))
        self.bars = {}
        for r, run in enumerate(self._rows):
            started = datetime.fromtimestamp(run.t_start).strftime("%Y-%m-%d %H:%M") \
                if run.t_start else ""
            for c, text in enumerate((run.run_id, run.procedure, run.sample, run.operator,
                                      run.status.upper() if run.running else run.status,
                                      started)):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 4:
                    item.setForeground(theme.colour(run.tone))
                self.table.setItem(r, c, item)
            bar = QtWidgets.QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * (run.fraction or 0.0)))  # the model says when it is whole
            bar.setFormat(run.progress_text() or run.status)
            self.table.setCellWidget(r, 6, bar)
            self.bars[run.run_id] = bar
        row = settle_table(self.table, 6, [run.run_id for run in self._rows], keep)
        if row is not None:
            self.selected = self._rows[row]
        self._show_detail()

    def _selected(self) -> None:
        row = selected_row(self.table, len(self._rows))
        self.selected = None if row is None else self._rows[row]
        # A finished run's points come from the archive (the broker's snapshot holds only
        # each stream's newest point, and a window opened later saw nothing else live).
        if self.selected is not None and not self.selected.running \
                and not self.selected.loaded:
            self.ask_events(self.selected.run_id)
        self._show_detail()

    def select(self, run_id: str) -> RunEntry:
        """Open the run ``run_id`` (for scripts and tests)."""
        self._shown_version = -1
        self.refresh()
        for r, run in enumerate(self._rows):
            if run.run_id == run_id:
                self.table.selectRow(r)
                return run
        raise KeyError(f"run {run_id!r} is not listed")

    def _show_detail(self) -> None:
        run = self.selected
        if run is None:
            self.meta.setText("Select a run.")
            self.plots.clear()
            self._plotted = None
            return
        lines = [f"<b style='font-size:17px'>{run.run_id}</b>",
                 f"<b>{run.procedure or '?'}</b> · recipe {run.recipe or '—'}",
                 f"sample {run.sample or '—'} · operator {run.operator or '—'}",
                 f"status <b style='color:{theme.TONE_COLOURS[run.tone]}'>{run.status}</b> "
                 f"{run.progress_text()}"]
        if run.description:
            lines.append(run.description)
        if run.parameters:
            lines.append("<b>Parameters</b><br><tt>" + json.dumps(run.parameters)[:600]
                         + "</tt>")
        if run.result:
            lines.append("<b>Result</b><br><tt>" + json.dumps(run.result)[:800] + "</tt>")
        self.meta.setText("<br>".join(lines))
        points = sum(len(s.index) for s in run.streams.values())
        if self._plotted == (run.run_id, points):
            return
        self._plotted = (run.run_id, points)
        self.plots.clear()
        for k, (stream, name, x, y, x_label, unit) in enumerate(run.curves()[:6]):
            plot = self.plots.addPlot(row=k // 2, col=k % 2, title=f"{stream}: {name}")
            plot.setLabel("bottom", x_label)
            plot.setLabel("left", name, units=unit or None)
            plot.showGrid(x=True, y=True, alpha=0.2)
            cache_axes(plot)
            plot.plot(x, y, pen=pg.mkPen(theme.SERIES_COLOURS[k % len(theme.SERIES_COLOURS)],
                                         width=2), symbol="o", symbolSize=4)
