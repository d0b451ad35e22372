"""The facility overview: every refrigerator side by side, painted from its model.

One :class:`FridgeColumn` per fridge of the config's ``dashboard:`` section
paints a :class:`~gui.models.overview.FridgePicture`: the stages as nested
plates, warmest at the top, each temperature in large type; the pressures,
flow and heaters below; each instrument's state with the age of its last
sample. A flagged reading is hatched magenta with the flag in words where the
number would be; an old one is grey with its age. The column's frame turns
the colour of the worst thing in it, so trouble is seen from across the room.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from daq.dashboard_config import FridgeView
from gui import theme
from gui.models.format import Tone
from gui.models.live import LiveState
from gui.models.overview import FridgePicture, InstrumentRow, ValueRow, fridge_picture

Rect = QtCore.QRectF


class FridgeColumn(QtWidgets.QWidget):
    """One refrigerator's column (see the module docstring).

    Attributes:
        picture: the picture last painted (what the screen shows).
    """

    def __init__(self, name: str, view: FridgeView, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.view = view
        self.picture: FridgePicture | None = None
        self._tips: list[tuple[Rect, str]] = []
        self.setMinimumSize(300, 560)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                           QtWidgets.QSizePolicy.Policy.Expanding)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_picture(self, picture: FridgePicture) -> None:
        """Repaint with ``picture`` when it differs from the one shown."""
        if picture != self.picture:
            self.picture = picture
            self.update()

    # ---- painting -----------------------------------------------------------------------------

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
        w, h = float(self.width()), float(self.height())
        p.fillRect(self.rect(), QtGui.QColor(theme.BACKGROUND))
        self._tips = []
        pic = self.picture
        if pic is None:
            p.end()
            return
        tone = pic.tone
        troubled = tone not in (Tone.GOOD, Tone.NONE)
        edge = theme.TONE_COLOURS[tone] if troubled else theme.PANEL_EDGE
        p.setPen(QtGui.QPen(QtGui.QColor(edge), 4 if troubled else 1))
        p.setBrush(QtGui.QColor(theme.PANEL))
        p.drawRoundedRect(Rect(2, 2, w - 4, h - 4), 8, 8)
        scale = min(w / 420.0, h / 900.0) ** 0.5
        pad = 12.0
        y = pad
        # ---- header: the fridge, and whether its daemon is heard
        p.setPen(QtGui.QColor(theme.TEXT))
        p.setFont(theme.font(int(26 * scale), bold=True))
        head = Rect(pad, y, w - 2 * pad, 34 * scale)
        p.drawText(head, QtCore.Qt.AlignmentFlag.AlignLeft
                   | QtCore.Qt.AlignmentFlag.AlignVCenter, pic.name)
        text, source_tone = pic.source
        if text:
            p.setFont(theme.font(int(14 * scale), bold=source_tone is not Tone.GOOD))
            p.setPen(theme.colour(source_tone) if source_tone is not Tone.GOOD
                     else QtGui.QColor(theme.DIM))
            p.drawText(head, QtCore.Qt.AlignmentFlag.AlignRight
                       | QtCore.Qt.AlignmentFlag.AlignVCenter, text)
        y += 40 * scale
        # ---- stages: nested plates, warmest on top
        n = max(1, len(pic.stages))
        groups = [("PRESSURES", pic.pressures), ("FLOW", (pic.flow,) if pic.flow else ()),
                  ("HEATERS", pic.heaters)]
        line_h = 42 * scale
        rest = sum(22 * scale + ((len(rows) + 1) // 2) * line_h for _, rows in groups if rows)
        rest += 24 * scale + 25 * scale * len(pic.instruments) + 16 * scale
        stage_h = max(58.0, min(112.0 * scale, (h - y - rest) / n))
        p.setPen(QtGui.QPen(QtGui.QColor(theme.PANEL_EDGE), 6))
        p.drawLine(QtCore.QPointF(w / 2, y + 4), QtCore.QPointF(w / 2, y + n * stage_h - 8))
        for i, row in enumerate(pic.stages):
            frac = 1.0 - 0.22 * i / max(1, n - 1)
            pw = (w - 2 * pad) * frac
            rect = Rect((w - pw) / 2, y + 4, pw, stage_h - 12)
            self._plate(p, rect, row, scale, coldest=i == n - 1)
            y += stage_h
        y += 4 * scale
        # ---- pressures, flow, heaters: each under its own heading, two per line
        cell_w = (w - 2 * pad) / 2
        for heading, rows in groups:
            if not rows:
                continue
            p.setPen(QtGui.QColor(theme.DIM))
            p.setFont(theme.font(int(13 * scale), bold=True))
            p.drawText(Rect(pad, y, w, 20 * scale), QtCore.Qt.AlignmentFlag.AlignLeft, heading)
            y += 20 * scale
            for k, row in enumerate(rows):
                assert row is not None
                cx = pad + (k % 2) * cell_w
                cy = y + (k // 2) * line_h
                self._small_value(p, Rect(cx, cy, cell_w - 8, line_h - 4), row, scale)
            y += ((len(rows) + 1) // 2) * line_h + 2 * scale
        # ---- instruments
        p.setPen(QtGui.QColor(theme.DIM))
        p.setFont(theme.font(int(13 * scale), bold=True))
        p.drawText(Rect(pad, y, w, 20 * scale), QtCore.Qt.AlignmentFlag.AlignLeft, "INSTRUMENTS")
        y += 22 * scale
        for inst in pic.instruments:
            self._instrument(p, Rect(pad, y, w - 2 * pad, 24 * scale), inst, scale)
            y += 25 * scale
        p.end()

    def _plate(self, p: QtGui.QPainter, rect: Rect, row: ValueRow, scale: float,
               coldest: bool) -> None:
        shown = row.shown
        p.setPen(QtGui.QPen(QtGui.QColor(theme.PANEL_EDGE), 1.5))
        p.setBrush(QtGui.QColor("#212a33" if not coldest else "#1d2a36"))
        p.drawRoundedRect(rect, 6, 6)
        if shown.hatched:
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(theme.hatch_brush())
            p.setOpacity(0.35)
            p.drawRoundedRect(rect, 6, 6)
            p.setOpacity(1.0)
            p.setPen(QtGui.QPen(theme.colour(Tone.BAD), 2))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, 6, 6)
        if row.alarm:
            p.setPen(QtGui.QPen(theme.colour(Tone.ALARM), 4))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 6, 6)
        inner = rect.adjusted(10, 4, -10, -4)
        p.setPen(QtGui.QColor(theme.DIM))
        p.setFont(theme.font(int(15 * scale), bold=True))
        p.drawText(inner, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop,
                   row.label)
        if row.alarm:
            p.setPen(theme.colour(Tone.ALARM))
            p.setFont(theme.font(int(13 * scale), bold=True))
            p.drawText(inner, QtCore.Qt.AlignmentFlag.AlignLeft
                       | QtCore.Qt.AlignmentFlag.AlignBottom, "ALARM")
        # the number (or the flag in words), as large as the plate allows
        big = int(min(40 * scale, rect.height() * 0.48))
        text = shown.text if not shown.is_number else f"{shown.text} {shown.unit}".rstrip()
        if not shown.is_number:
            big = int(big * 0.72)
        p.setFont(theme.font(big, bold=True, mono=shown.is_number))
        metrics = QtGui.QFontMetricsF(p.font())
        while metrics.horizontalAdvance(text) > inner.width() * 0.98 and big > 12:
            big -= 2
            p.setFont(theme.font(big, bold=True, mono=shown.is_number))
            metrics = QtGui.QFontMetricsF(p.font())
        p.setPen(theme.colour(shown.tone))
        value_rect = Rect(inner.left(), inner.top() + inner.height() * 0.18, inner.width(),
                          inner.height() * 0.62)
        p.drawText(value_rect, QtCore.Qt.AlignmentFlag.AlignRight
                   | QtCore.Qt.AlignmentFlag.AlignVCenter, text)
        if shown.badge:
            p.setFont(theme.font(int(13 * scale)))
            p.setPen(theme.colour(shown.tone if shown.tone is not Tone.GOOD else Tone.STALE))
            badge = QtGui.QFontMetricsF(p.font()).elidedText(
                shown.badge, QtCore.Qt.TextElideMode.ElideRight, inner.width())
            p.drawText(inner, QtCore.Qt.AlignmentFlag.AlignRight
                       | QtCore.Qt.AlignmentFlag.AlignBottom, badge)
        self._tips.append((rect, f"{row.label} ({row.stream}): {shown.detail}"))

    def _small_value(self, p: QtGui.QPainter, rect: Rect, row: ValueRow, scale: float) -> None:
        shown = row.shown
        if shown.hatched:
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(theme.hatch_brush())
            p.setOpacity(0.35)
            p.drawRect(rect)
            p.setOpacity(1.0)
        if row.alarm:
            p.setPen(QtGui.QPen(theme.colour(Tone.ALARM), 3))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRect(rect)
        p.setPen(QtGui.QColor(theme.DIM))
        p.setFont(theme.font(int(13 * scale)))
        p.drawText(rect, QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop,
                   row.label)
        text = f"{shown.text} {shown.unit}".rstrip() if shown.is_number else shown.text
        p.setPen(theme.colour(shown.tone))
        p.setFont(theme.font(int(19 * scale), bold=True, mono=shown.is_number))
        p.drawText(rect, QtCore.Qt.AlignmentFlag.AlignRight
                   | QtCore.Qt.AlignmentFlag.AlignBottom, text)
        self._tips.append((rect, f"{row.label} ({row.stream}): {shown.detail}"))

    def _instrument(self, p: QtGui.QPainter, rect: Rect, inst: InstrumentRow,
                    scale: float) -> None:
        r = 6 * scale
        p.setPen(QtCore.Qt.PenStyle.NoPen)
        p.setBrush(theme.dot_colour(inst.tone))
        p.drawEllipse(QtCore.QPointF(rect.left() + r, rect.center().y()), r, r)
        p.setFont(theme.font(int(15 * scale), bold=True))
        p.setPen(QtGui.QColor(theme.TEXT))
        name_w = 90 * scale
        p.drawText(Rect(rect.left() + 3 * r, rect.top(), name_w, rect.height()),
                   QtCore.Qt.AlignmentFlag.AlignVCenter, inst.name)
        state = inst.state.upper() if inst.tone is not Tone.GOOD else inst.state
        tail = f"{state} · last sample {inst.age} ago" if inst.age else state
        p.setFont(theme.font(int(14 * scale)))
        p.setPen(theme.colour(inst.tone) if inst.tone is not Tone.GOOD
                 else QtGui.QColor(theme.DIM))
        p.drawText(Rect(rect.left() + 3 * r + name_w, rect.top(),
                        rect.width() - 3 * r - name_w, rect.height()),
                   QtCore.Qt.AlignmentFlag.AlignVCenter, tail)
        self._tips.append((rect, f"{inst.stream}: {inst.state} {inst.message}"))

    def event(self, event: QtCore.QEvent) -> bool:
        if event.type() == QtCore.QEvent.Type.ToolTip:
            assert isinstance(event, QtGui.QHelpEvent)
            pos = QtCore.QPointF(event.pos())
            for rect, text in self._tips:
                if rect.contains(pos):
                    QtWidgets.QToolTip.showText(event.globalPos(), text, self)
                    return True
            QtWidgets.QToolTip.hideText()
            return True
        return super().event(event)


class OverviewView(QtWidgets.QWidget):
    """Every fridge of the config side by side.

    Args:
        fridges: the config's fridges.
        live: the newest readings and states.
        publishers: each fridge's daemon as the bus knows it (for the column's header).
        alarmed: returns the streams an active alarm watches now.
    """

    #: A column never grows wider than this (px): a lone fridge is not stretched thin.
    MAX_COLUMN_WIDTH = 640

    def __init__(self, fridges: dict[str, FridgeView], live: LiveState,
                 publishers: dict[str, str] | None = None,
                 alarmed: Callable[[], set[str]] | None = None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.live = live
        self.publishers = publishers or {}
        self.alarmed = alarmed or set
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(10)
        self.columns = {name: FridgeColumn(name, view) for name, view in fridges.items()}
        layout.addStretch(1)
        for column in self.columns.values():
            column.setMaximumWidth(self.MAX_COLUMN_WIDTH)
            layout.addWidget(column, 100)
        layout.addStretch(1)
        if not self.columns:
            note = QtWidgets.QLabel("The config's dashboard section names no refrigerator "
                                    "(dashboard: fridges: ...).")
            note.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(note)

    def refresh(self, now_ns: int) -> None:
        """Rebuild every column's picture at ``now_ns`` (cheap; repaints only on change)."""
        alarmed = self.alarmed()
        for name, column in self.columns.items():
            column.show_picture(fridge_picture(name, column.view, self.live, now_ns,
                                               publisher=self.publishers.get(name),
                                               alarmed=alarmed))
