"""Alarms: the banner across every view, and the list with guidance, acknowledge and shelve.

:class:`AlarmBanner` sits above the views: the worst active critical alarm
(:meth:`gui.models.alarms.AlarmBook.banner`) in white on red, blinking while
it is unacknowledged, with a sound where the machine has one (QtMultimedia
when installed, else the system beep; silence otherwise). A click opens the
alarm list.

:class:`AlarmsView` lists the alarms that are not normal (unacknowledged
first, by severity), their state in words, reason and guidance; the selected
alarm can be acknowledged (with a comment) or shelved (for a duration, with a
reason: both go to the audit trail). The alarm service's answer, or its
refusal word for word, is shown under the buttons. Below: the recent
transitions.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import wave
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from gui import theme
from gui.models.alarms import (
    SHELVE_CHOICES_S,
    Alarm,
    AlarmBook,
    Banner,
    ack_command,
    shelve_command,
    unshelve_command,
    why_not_operable,
)
from gui.models.control import Answer, Command
from gui.models.format import Tone, format_age
from gui.widgets.common import selected_row, settle_table


def _tone_file() -> str:
    """A short two-tone chime as a WAV file (written once per process)."""
    path = Path(tempfile.gettempdir()) / f"qupdaq-alarm-{os.getpid()}.wav"
    if not path.exists():
        rate = 22050
        t = np.arange(int(0.5 * rate)) / rate
        tone = np.where(t < 0.25, np.sin(2 * np.pi * 880 * t), np.sin(2 * np.pi * 660 * t))
        samples = (0.4 * 32767 * tone * np.minimum(1, (0.5 - t) * 20)).astype("<i2")
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples.tobytes())
    return str(path)


class _Sound:
    """An alarm tone where QtMultimedia exists; the system beep otherwise; never an error."""

    def __init__(self) -> None:
        self.effect = None
        with contextlib.suppress(Exception):  # PySide6-Essentials has no QtMultimedia
            from PySide6 import QtMultimedia  # type: ignore[attr-defined,unused-ignore]

            effect = QtMultimedia.QSoundEffect()
            effect.setSource(QtCore.QUrl.fromLocalFile(_tone_file()))
            self.effect = effect

    def play(self) -> None:
        with contextlib.suppress(Exception):
            if self.effect is not None and self.effect.source().isValid():
                self.effect.play()
            else:
                QtWidgets.QApplication.beep()


class AlarmBanner(QtWidgets.QLabel):
    """The critical alarm, visible from every view (see the module docstring)."""

    clicked = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setVisible(False)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(54)
        self.setWordWrap(True)
        # A long reason wraps; it never widens the window.
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                           QtWidgets.QSizePolicy.Policy.Minimum)
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.banner: Banner | None = None
        self._sound = _Sound()
        self._sounded: set[str] = set()
        self._blink = False

    def show_banner(self, banner: Banner | None) -> None:
        self.banner = banner
        if banner is None:
            self.setVisible(False)
            self._sounded.clear()
            return
        self._blink = not self._blink if banner.unacknowledged else False
        back = theme.TONE_COLOURS[Tone.ALARM] if not self._blink else "#a01818"
        self.setStyleSheet(f"background: {back}; color: white; font-size: 22px; "
                           "font-weight: bold; padding: 8px;")
        self.setText(banner.text + ("   — click for the alarm list" if banner.unacknowledged
                                    else ""))
        self.setVisible(True)
        if banner.unacknowledged and banner.alarm not in self._sounded:
            self._sounded.add(banner.alarm)
            self._sound.play()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self.clicked.emit()
        super().mousePressEvent(event)


class AlarmsView(QtWidgets.QWidget):
    """The alarm list and the operators' actions (see the module docstring).

    Args:
        book: the alarms.
        send: sends a command through a daemon's control endpoint.
        daemon: which daemon forwards alarm operations (any of a facility's).
    """

    COLUMNS = ("Severity", "Alarm", "State", "Reason", "Raised")

    def __init__(self, book: AlarmBook, send: Callable[[Command], None], daemon: str | None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.book = book
        self.send = send
        self.daemon = daemon
        self.allowed = True
        self.allowed_reason = ""
        layout = QtWidgets.QVBoxLayout(self)
        self.summary = QtWidgets.QLabel("")
        self.summary.setStyleSheet("font-size: 17px; font-weight: bold;")
        layout.addWidget(self.summary)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        left = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        lists = QtWidgets.QWidget()
        stack = QtWidgets.QStackedLayout(lists)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.itemSelectionChanged.connect(self._selected)
        self.calm = QtWidgets.QLabel("No active alarms")
        self.calm.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.calm.setStyleSheet(f"color: {theme.GOOD_DOT}; font-size: 26px; font-weight: bold;")
        stack.addWidget(self.table)
        stack.addWidget(self.calm)
        self.lists = stack
        left.addWidget(lists)
        recent = QtWidgets.QWidget()
        r = QtWidgets.QVBoxLayout(recent)
        r.setContentsMargins(0, 4, 0, 0)
        r.addWidget(QtWidgets.QLabel("Recent transitions"))
        self.recent = QtWidgets.QPlainTextEdit()
        self.recent.setReadOnly(True)
        self.recent.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.recent.setStyleSheet("font-family: 'DejaVu Sans Mono'; font-size: 13px;")
        r.addWidget(self.recent)
        left.addWidget(recent)
        left.setSizes([420, 260])
        split.addWidget(left)

        detail = QtWidgets.QWidget()
        d = QtWidgets.QVBoxLayout(detail)
        d.setContentsMargins(10, 0, 0, 0)
        self.detail = QtWidgets.QLabel("Select an alarm.")
        self.detail.setWordWrap(True)
        self.detail.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.detail.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.detail.setStyleSheet("font-size: 15px;")
        self.detail.setMinimumWidth(320)
        d.addWidget(self.detail, 1)
        self.comment = QtWidgets.QLineEdit()
        self.comment.setPlaceholderText("comment (optional)")
        d.addWidget(self.comment)
        self.ack_button = QtWidgets.QPushButton("Acknowledge")
        self.ack_button.clicked.connect(lambda _=False: self.acknowledge())
        d.addWidget(self.ack_button)
        d.addSpacing(12)
        shelf = QtWidgets.QHBoxLayout()
        self.duration = QtWidgets.QComboBox()
        for seconds in SHELVE_CHOICES_S:
            self.duration.addItem(f"shelve {format_age(seconds)}", seconds)
        shelf.addWidget(self.duration)
        self.reason = QtWidgets.QLineEdit()
        self.reason.setPlaceholderText("reason for shelving (required)")
        shelf.addWidget(self.reason, 1)
        d.addLayout(shelf)
        buttons = QtWidgets.QHBoxLayout()
        self.shelve_button = QtWidgets.QPushButton("Shelve")
        self.shelve_button.clicked.connect(lambda _=False: self.shelve())
        buttons.addWidget(self.shelve_button)
        self.unshelve_button = QtWidgets.QPushButton("Unshelve")
        self.unshelve_button.clicked.connect(lambda _=False: self.unshelve())
        buttons.addWidget(self.unshelve_button)
        d.addLayout(buttons)
        self.answer = QtWidgets.QLabel("")
        self.answer.setWordWrap(True)
        self.answer.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        d.addWidget(self.answer)
        split.addWidget(detail)
        split.setSizes([1000, 480])
        split.setStretchFactor(0, 1)
        layout.addWidget(split, 1)
        self._shown_version = -1
        self._rows: list[Alarm] = []
        self.selected: Alarm | None = None
        self._pending: Command | None = None
        self._update_buttons()

    # ---- rendering ----------------------------------------------------------------------------

    def refresh(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        counts = self.book.counts(now)
        self.summary.setText(f"{counts['active']} active · {counts['unacknowledged']} "
                             f"unacknowledged · {counts['shelved']} shelved"
                             + ("" if self.book.service_seen else
                                "   (no alarm service heard: the daemons' interlock events "
                                "only)"))
        if self.book.version == self._shown_version:
            return
        self._shown_version = self.book.version
        keep = self.selected.key if self.selected else None
        self._rows = self.book.listed(now)
        self.lists.setCurrentWidget(self.table if self._rows else self.calm)
        self.table.setRowCount(len(self._rows))
        for r, alarm in enumerate(self._rows):
            raised = alarm.t_raised or alarm.t_changed
            cells = (alarm.severity.name, alarm.id, alarm.state_text(now), alarm.reason,
                     datetime.fromtimestamp(raised).strftime("%m-%d %H:%M:%S") if raised else "")
            for c, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if c == 0 and alarm.active:  # active: filled in its severity's colour
                    item.setBackground(theme.colour(alarm.tone))
                    item.setForeground(QtGui.QColor("#000000"))
                elif c == 0:  # cleared, waiting for its acknowledgement: coloured text
                    item.setForeground(theme.colour(alarm.tone))
                if c == 0 or alarm.unacknowledged:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        row = settle_table(self.table, 3, [alarm.key for alarm in self._rows], keep)
        if row is not None:
            self.selected = self._rows[row]
        self._show_detail()
        self.recent.setPlainText("\n".join(
            f"{datetime.fromtimestamp(e.t).strftime('%m-%d %H:%M:%S')}  "
            f"{e.severity.name:<8} {e.alarm}: {e.what}" for e in self.book.recent))

    def _selected(self) -> None:
        row = selected_row(self.table, len(self._rows))
        self.selected = None if row is None else self._rows[row]
        self._show_detail()

    def select(self, alarm_id: str) -> Alarm:
        """Select the alarm ``alarm_id`` (for scripts and tests)."""
        self.refresh()
        for r, alarm in enumerate(self._rows):
            if alarm.id == alarm_id:
                self.table.selectRow(r)
                self.selected = alarm
                self._show_detail()
                return alarm
        raise KeyError(f"alarm {alarm_id!r} is not listed")

    def _show_detail(self) -> None:
        alarm = self.selected
        if alarm is None:
            self.detail.setText("Select an alarm.")
        else:
            colour = theme.TONE_COLOURS[alarm.tone]
            parts = [f"<b style='color:{colour}; font-size:18px'>{alarm.severity.name} "
                     f"{alarm.id}</b> — {alarm.state_text(time.time())}",
                     f"<b>Reason:</b> {alarm.reason or '—'}"]
            if alarm.description:
                parts.append(f"<b>What:</b> {alarm.description}")
            if alarm.guidance:
                parts.append(f"<b>What to do:</b> {alarm.guidance}")
            if alarm.action:
                parts.append(f"<b>Action taken:</b> {alarm.action}")
            if alarm.group:
                parts.append(f"<b>Grouped under:</b> {alarm.group}")
            why = why_not_operable(alarm)
            if why:
                parts.append(f"<i style='color:{theme.DIM}'>{why}</i>")
            self.detail.setText("<br>".join(parts))
        self._update_buttons()

    def _update_buttons(self) -> None:
        alarm = self.selected
        operable = alarm is not None and not why_not_operable(alarm) and self.allowed
        self.ack_button.setEnabled(operable and alarm is not None and alarm.unacknowledged)
        self.shelve_button.setEnabled(operable)
        self.unshelve_button.setEnabled(operable and alarm is not None
                                        and alarm.shelved(time.time()))
        tip = self.allowed_reason if not self.allowed else ""
        for button in (self.ack_button, self.shelve_button, self.unshelve_button):
            button.setToolTip(tip)

    def set_allowed(self, allowed: bool, reason: str) -> None:
        self.allowed, self.allowed_reason = allowed, reason
        self._update_buttons()

    # ---- operations ---------------------------------------------------------------------------

    def _send(self, command: Command) -> None:
        self._pending = command
        self.answer.setText(f"sent: {command.describe()} …")
        self.answer.setStyleSheet(f"color: {theme.DIM};")
        self.send(command)

    def acknowledge(self) -> None:
        if self.selected is not None:
            self._send(ack_command(self.selected, self.comment.text(), self.daemon))

    def shelve(self) -> None:
        if self.selected is None:
            return
        try:
            command = shelve_command(self.selected, float(self.duration.currentData()),
                                     self.reason.text(), self.daemon)
        except ValueError as exc:
            self.answer.setText(str(exc))
            self.answer.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.WARN]};")
            return
        self._send(command)

    def unshelve(self) -> None:
        if self.selected is not None:
            self._send(unshelve_command(self.selected, self.daemon))

    def on_answer(self, answer: Answer) -> bool:
        if self._pending is None or answer.command.id != self._pending.id:
            return False
        self._pending = None
        if answer.ok:
            self.answer.setText(f"OK — {answer.command.describe()}")
            self.answer.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.GOOD]};")
        else:
            prefix = "REFUSED: " if answer.refused else "NO ANSWER: "
            self.answer.setText(prefix + answer.error)
            self.answer.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.ALARM]};")
        return True
