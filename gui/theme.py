"""Colours and fonts: a dark control-room palette where only trouble is coloured.

A good value is written in plain bright text; colour is kept for what needs
a look (PyDM's alarm-severity rule): amber for a warning or a reconnecting
instrument, red for an error or a critical alarm, magenta on a hatched field
for a reading the instrument flagged (never mistaken for a number), grey for
an old value or a silent publisher. Each :class:`~gui.models.format.Tone` has
one colour here and nowhere else.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from gui.models.format import Tone

BACKGROUND = "#11161b"
PANEL = "#1a2128"
PANEL_EDGE = "#2c3640"
TEXT = "#eef3f7"
DIM = "#8a96a3"

TONE_COLOURS: dict[Tone, str] = {
    Tone.GOOD: "#eef3f7",
    Tone.STALE: "#7d8894",
    Tone.BAD: "#f050f0",
    Tone.WARN: "#ffb52e",
    Tone.ALARM: "#ff4a4a",
    Tone.NONE: "#5b6570",
}
#: The state dot of a good instrument (the text stays plain; the dot says "fine").
GOOD_DOT = "#3ccf74"

#: Line colours of chart series (distinct on the dark background, colour-blind friendly first).
SERIES_COLOURS = ("#4fc3f7", "#ffb74d", "#81c784", "#f06292", "#ba68c8", "#fff176",
                  "#4db6ac", "#e57373", "#90a4ae", "#aed581")


def colour(tone: Tone) -> QtGui.QColor:
    return QtGui.QColor(TONE_COLOURS[tone])


def dot_colour(tone: Tone) -> QtGui.QColor:
    return QtGui.QColor(GOOD_DOT if tone is Tone.GOOD else TONE_COLOURS[tone])


def hatch_brush(tone: Tone = Tone.BAD) -> QtGui.QBrush:
    """The hatching behind a flagged value."""
    brush = QtGui.QBrush(QtGui.QColor(TONE_COLOURS[tone]), QtCore.Qt.BrushStyle.BDiagPattern)
    return brush


def font(px: int, bold: bool = False, mono: bool = False) -> QtGui.QFont:
    """A font of ``px`` pixels (numbers in a tabular face so digits do not jump)."""
    f = QtGui.QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
    f.setPixelSize(max(6, int(px)))
    f.setBold(bold)
    if mono:
        f.setStyleHint(QtGui.QFont.StyleHint.TypeWriter)
    return f


STYLESHEET = f"""
QWidget {{ background: {BACKGROUND}; color: {TEXT}; font-size: 14px; }}
QTabWidget::pane {{ border: 1px solid {PANEL_EDGE}; }}
QTabBar::tab {{ background: {PANEL}; color: {DIM}; padding: 8px 18px; font-size: 15px;
               border: 1px solid {PANEL_EDGE}; border-bottom: none; }}
QTabBar::tab:selected {{ background: {BACKGROUND}; color: {TEXT}; font-weight: bold; }}
QGroupBox {{ border: 1px solid {PANEL_EDGE}; margin-top: 14px; padding: 8px;
             font-weight: bold; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; }}
QPushButton {{ background: {PANEL}; border: 1px solid {PANEL_EDGE}; padding: 5px 12px; }}
QPushButton:hover {{ border-color: #4fc3f7; }}
QPushButton:disabled {{ color: #555f69; border-color: #242c33; }}
QPushButton:checked {{ background: #23415a; border-color: #4fc3f7; }}
QLineEdit, QComboBox, QPlainTextEdit {{ background: #0c1014; border: 1px solid {PANEL_EDGE};
                                         padding: 4px; }}
QLineEdit:disabled {{ color: #555f69; }}
QTableWidget {{ gridline-color: {PANEL_EDGE}; selection-background-color: #23415a; }}
QHeaderView::section {{ background: {PANEL}; color: {DIM}; padding: 4px;
                        border: 1px solid {PANEL_EDGE}; }}
QStatusBar {{ color: {DIM}; }}
QProgressBar {{ border: 1px solid {PANEL_EDGE}; text-align: center; background: #0c1014; }}
QProgressBar::chunk {{ background: #2f6f9a; }}
"""


def apply(app: QtWidgets.QApplication) -> None:
    """Dress ``app`` in the control-room palette."""
    app.setStyle("Fusion")
    app.setStyleSheet(STYLESHEET)
    # The plots keep their axes and grids as cached pixmaps (gui.widgets.common.cache_axes),
    # about 1 MB each on a large screen: Qt's default 10 MB cache would evict them every
    # frame and every axis would be redrawn from scratch.
    QtGui.QPixmapCache.setCacheLimit(256 * 1024)
