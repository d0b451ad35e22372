"""Small pieces shared by the views: a live value label, a steady autoscale, list tables.

:class:`ValueLabel` is for text that changes many times a second (a rate, a
value): a :class:`QtWidgets.QLabel` asks its layout to recompute on every
``setText``, and that ripples up to a repaint of the whole window; this label
has a fixed size and repaints only itself.

:class:`SteadyRange` is an autoscale with hysteresis: it moves when the data
leave the range or fill less than a third of it, not at every new sample (a
steady axis is readable, and redrawing an axis is the dearest part of a plot).

:func:`settle_table` and :func:`selected_row` serve the list views (alarms,
runs) that refill a table and keep the operator's selection across refills.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gui import theme
from gui.models.format import Tone


class ValueLabel(QtWidgets.QWidget):
    """Text in a tone, repainted alone when it changes (see the module docstring).

    Args:
        template: a text as wide as the widest expected (sets the fixed width).
        px: font size in pixels.
        bold: bold face.
    """

    def __init__(self, template: str = "00000000", px: int = 20, bold: bool = True,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._font = theme.font(px, bold=bold)
        metrics = QtGui.QFontMetrics(self._font)
        # As wide as the template when there is room, narrower (elided) when there is not;
        # the size never depends on the text, so a new text never asks for a new layout.
        self._hint = QtCore.QSize(metrics.horizontalAdvance(template) + 8, metrics.height() + 6)
        self.setMinimumSize(min(self._hint.width(), 4 * px), self._hint.height())
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                           QtWidgets.QSizePolicy.Policy.Fixed)
        self._text = ""
        self._tone = Tone.GOOD

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt's name
        return self._hint

    def text(self) -> str:
        return self._text

    @property
    def tone(self) -> Tone:
        return self._tone

    def set(self, text: str, tone: Tone = Tone.GOOD) -> None:
        if text != self._text or tone != self._tone:
            self._text, self._tone = text, tone
            self.setToolTip(text)
            self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        p.setFont(self._font)
        p.setPen(theme.colour(self._tone))
        shown = QtGui.QFontMetrics(self._font).elidedText(
            self._text, QtCore.Qt.TextElideMode.ElideRight, self.width() - 4)
        p.drawText(self.rect().adjusted(2, 0, -2, 0),
                   QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                   shown)
        p.end()


class SteadyRange:
    """An autoscale with hysteresis (see the module docstring)."""

    def __init__(self, margin: float = 0.12) -> None:
        self.lo = math.nan
        self.hi = math.nan
        self.margin = margin

    def reset(self) -> None:
        self.lo = self.hi = math.nan

    def update(self, lo: float, hi: float) -> tuple[float, float] | None:
        """The new range for data spanning ``[lo, hi]``, or None to keep the current one."""
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return None
        span = max(hi - lo, abs(hi) * 1e-6, 1e-12)
        current = self.hi - self.lo
        inside = self.lo <= lo and hi <= self.hi
        if math.isfinite(current) and inside and span > current / 3:
            return None
        self.lo, self.hi = lo - self.margin * span, hi + self.margin * span
        return self.lo, self.hi


def cache_axes(plot_item: Any) -> None:
    """Keep a pyqtgraph plot's axes (and the grid they draw) as pixmaps.

    An axis replays its drawing, grid lines across the whole plot included, at
    every repaint of anything in the plot; as a cached pixmap it is redrawn only
    when its range changes, which makes a plot's frame several times cheaper.
    """
    for name in ("left", "bottom", "right", "top"):
        axis = plot_item.getAxis(name)
        if axis is not None:
            axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)


def opaque(widget: Any) -> None:
    """Mark a plot widget (and its viewport) as painting every pixel of itself, so that
    its parents are not asked to paint behind it."""
    widget.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
    if hasattr(widget, "viewport"):
        widget.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)


class DecadeAxis(pg.AxisItem):
    """A logarithmic axis labelled at whole decades only, with SI prefixes (``10 kHz``,
    ``100 p``): pyqtgraph's default also labels 2..9 of each decade, which piles up
    unreadably, and its automatic SI scaling would hide the decades from the labels."""

    _PREFIXES = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G"}

    def __init__(self, orientation: str, unit: str = "", **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        self.unit = unit
        self.enableAutoSIPrefix(False)
        self.setLogMode(True)

    def tickStrings(self, values: list[float], scale: float,  # noqa: N802 - pyqtgraph's name
                    spacing: float) -> list[str]:
        out = []
        for v in values:
            if abs(v - round(v)) > 1e-6:
                out.append("")
                continue
            exponent = int(round(v))
            power = 3 * (exponent // 3)
            if power in self._PREFIXES:
                out.append(f"{10 ** (exponent - power)} {self._PREFIXES[power]}{self.unit}"
                           .rstrip())
            else:
                out.append(f"1e{exponent}")
        return out


def settle_table(table: QtWidgets.QTableWidget, stretch: int, keys: list[Any],
                 keep: Any) -> int | None:
    """After a refill: columns fitted, ``stretch`` taking the rest of the width, and the
    row whose key (``keys[row]``) is ``keep`` selected again; returns that row (or None)."""
    table.resizeColumnsToContents()
    table.horizontalHeader().setSectionResizeMode(stretch, QtWidgets.QHeaderView.ResizeMode.Stretch)
    if keep is None:
        return None
    for row, key in enumerate(keys):
        if key == keep:
            table.selectRow(row)
            return row
    return None


def selected_row(table: QtWidgets.QTableWidget, rows: int) -> int | None:
    """The selected row, if one is selected and still among the ``rows`` shown."""
    chosen = table.selectionModel().selectedRows()
    return chosen[0].row() if chosen and chosen[0].row() < rows else None
