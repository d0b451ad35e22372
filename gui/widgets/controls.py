"""Controls: MXC setpoint, ramp, heater range, PID, still heater, TES bias, SQUID lock/reset.

Each daemon has a panel of the targets it offers (its ``list`` reply, picked
by role: :func:`gui.models.control.panel_rows`). A row shows the current value,
the field, the limits beside it, and after a request the daemon's answer, or
its refusal word for word. Anything that can heat the fridge or changes the
bias asks first, in the row itself (:func:`gui.models.control.confirmation`):
the question, Confirm, Cancel. A read-only connection shows every control
disabled and says why at the top. Requests go out through the window's
control workers: a dead daemon leaves its row "sent" until the worker's
timeout answers FAILED, while the rest of the screen carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtWidgets

from gui import theme
from gui.models.control import (
    Answer,
    Command,
    ControlRequest,
    ControlRow,
    Permission,
    RequestState,
    TargetInfo,
    confirmation,
    panel_rows,
    parse_value,
)
from gui.models.format import Tone

LABEL_WIDTH = 230
CURRENT_WIDTH = 210
FIELD_WIDTH = 170

STATE_TONES = {RequestState.IDLE: Tone.STALE, RequestState.CONFIRMING: Tone.WARN,
               RequestState.SENT: Tone.STALE, RequestState.OK: Tone.GOOD,
               RequestState.REFUSED: Tone.ALARM, RequestState.FAILED: Tone.ALARM}


class ControlRowWidget(QtWidgets.QWidget):
    """One control (see the module docstring).

    Attributes:
        row: the control it offers.
        request: where its request stands.
    """

    def __init__(self, row: ControlRow, send: Callable[[Command], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.row = row
        self.send = send
        self.request = ControlRequest()
        self._args: dict[str, Any] | None = None
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 2, 0, 2)
        line = QtWidgets.QHBoxLayout()
        self.label = QtWidgets.QLabel(row.role.label)
        self.label.setFixedWidth(LABEL_WIDTH)
        self.label.setStyleSheet("font-weight: bold; font-size: 15px;")
        self.label.setToolTip(f"{row.target} ({row.info.instrument}) {row.info.doc}")
        line.addWidget(self.label)
        self.current = QtWidgets.QLabel(row.current_text)
        self.current.setFixedWidth(CURRENT_WIDTH)
        self.current.setToolTip("the value the daemon read from the instrument")
        self.current.setStyleSheet("font-family: 'DejaVu Sans Mono'; font-size: 15px;")
        line.addWidget(self.current)
        self.fields: dict[str, QtWidgets.QLineEdit] = {}
        if row.role.value == "action":
            for name, label in row.role.args:
                edit = QtWidgets.QLineEdit()
                edit.setPlaceholderText(label)
                edit.setMaximumWidth(120)
                self.fields[name] = edit
                line.addWidget(edit)
            self.button = QtWidgets.QPushButton(row.role.label if not row.role.args else "Start")
        else:
            placeholder = {"pid": "P, I, D", "bool": "on / off"}.get(
                row.role.value, f"value ({row.info.unit})" if row.info.unit else "value")
            if row.choices:  # a list the instrument takes: offered, and still typeable
                combo = QtWidgets.QComboBox()
                combo.setEditable(True)
                combo.addItems(row.choices)
                combo.setCurrentIndex(-1)
                combo.setFixedWidth(FIELD_WIDTH)
                editor = combo.lineEdit()
                assert editor is not None  # an editable combo has one
                edit = editor
                edit.setPlaceholderText(placeholder)
                line.addWidget(combo)
            else:
                edit = QtWidgets.QLineEdit()
                edit.setPlaceholderText(placeholder)
                edit.setFixedWidth(FIELD_WIDTH)
                line.addWidget(edit)
            edit.returnPressed.connect(self._apply)
            self.fields["value"] = edit
            self.button = QtWidgets.QPushButton("Set")
        self.button.clicked.connect(lambda _=False: self._apply())
        line.addWidget(self.button)
        self.limits = QtWidgets.QLabel(row.limits_text)
        self.limits.setStyleSheet(f"color: {theme.DIM};")
        line.addWidget(self.limits, 1)
        outer.addLayout(line)
        confirm = QtWidgets.QHBoxLayout()
        self.question = QtWidgets.QLabel("")
        self.question.setWordWrap(True)
        self.question.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.WARN]}; "
                                    "font-weight: bold;")
        self.confirm_button = QtWidgets.QPushButton("Confirm")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.confirm_button.clicked.connect(lambda _=False: self._confirm())
        self.cancel_button.clicked.connect(lambda _=False: self._cancel())
        confirm.addSpacing(LABEL_WIDTH)
        confirm.addWidget(self.question, 1)
        confirm.addWidget(self.confirm_button)
        confirm.addWidget(self.cancel_button)
        self.confirm_box = QtWidgets.QWidget()
        self.confirm_box.setLayout(confirm)
        outer.addWidget(self.confirm_box)
        self.answer = QtWidgets.QLabel("")
        self.answer.setWordWrap(True)
        self.answer.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.answer)
        self._render()

    def update_info(self, row: ControlRow) -> None:
        """The daemon listed the target again (current value, limits)."""
        self.row = row
        self.current.setText(row.current_text)
        self.limits.setText(row.limits_text)

    def set_enabled(self, allowed: bool) -> None:
        for edit in self.fields.values():
            edit.setEnabled(allowed)
            combo = edit.parent()
            if isinstance(combo, QtWidgets.QComboBox):  # the whole choice, not only its text
                combo.setEnabled(allowed)
        self.button.setEnabled(allowed and not self.request.busy)
        self.confirm_button.setEnabled(allowed)

    # ---- the request --------------------------------------------------------------------------

    def _apply(self) -> None:
        role = self.row.role
        try:
            if role.value == "action":
                args = {name: parse_value(role, edit.text()) if edit.text().strip() else None
                        for name, edit in self.fields.items()}
                missing = [n for n, v in args.items() if v is None]
                if missing:
                    raise ValueError(f"give {', '.join(missing)}")
                command = Command(self.row.daemon, "call", {"target": self.row.target,
                                                            "args": args})
                question = confirmation(self.row, None, args)
            else:
                value = parse_value(role, self.fields["value"].text(), self.row.info.unit)
                command = Command(self.row.daemon, "set", {"target": self.row.target,
                                                           "value": value})
                question = confirmation(self.row, value)
            ready = self.request.propose(command, question)
        except ValueError as exc:
            self.answer.setText(str(exc))
            self.answer.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.WARN]};")
            return
        if ready is not None:
            self.send(ready)
        self._render()

    def _confirm(self) -> None:
        try:
            command = self.request.confirm()
        except ValueError:
            return
        self.send(command)
        self._render()

    def _cancel(self) -> None:
        self.request.cancel()
        self._render()

    def on_answer(self, answer: Answer) -> bool:
        """Take an answer; True when it was this row's."""
        if not self.request.answered(answer):
            return False
        self._render()
        return True

    def _render(self) -> None:
        state = self.request.state
        self.confirm_box.setVisible(state is RequestState.CONFIRMING)
        self.question.setText(self.request.question)
        self.button.setEnabled(self.isEnabled() and not self.request.busy
                               and all(e.isEnabled() for e in self.fields.values()))
        at = time.strftime("%H:%M:%S", time.localtime(self.request.answered_at))
        text = {RequestState.IDLE: self.request.answer,
                RequestState.CONFIRMING: "",
                RequestState.SENT: f"sent: {self.request.command.describe()} …"
                if self.request.command else "sent …",
                RequestState.OK: f"OK ({at}) — {self.request.answer}",
                RequestState.REFUSED: f"REFUSED by the daemon ({at}): {self.request.answer}",
                RequestState.FAILED: f"NO ANSWER ({at}): {self.request.answer}"}[state]
        self.answer.setText(text)
        self.answer.setVisible(bool(text))
        self.answer.setStyleSheet(f"color: {theme.TONE_COLOURS[STATE_TONES[state]]}; "
                                  "font-size: 14px;")


class DaemonPanel(QtWidgets.QGroupBox):
    """One daemon's controls."""

    def __init__(self, daemon: str | None, title: str, sources: list[str] | None,
                 send: Callable[[Command], None], refresh: Callable[[str | None], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.daemon = daemon
        self.sources = sources
        self.send = send
        layout = QtWidgets.QVBoxLayout(self)
        head = QtWidgets.QHBoxLayout()
        self.state = QtWidgets.QLabel("asking the daemon for its targets …")
        self.state.setStyleSheet(f"color: {theme.DIM};")
        head.addWidget(self.state, 1)
        again = QtWidgets.QPushButton("Refresh")
        again.clicked.connect(lambda _=False: refresh(daemon))
        head.addWidget(again)
        layout.addLayout(head)
        self.rows_box = QtWidgets.QVBoxLayout()
        layout.addLayout(self.rows_box)
        self.rows: dict[str, ControlRowWidget] = {}
        self.headed: set[str] = set()
        self.allowed = True

    def update_targets(self, targets: list[TargetInfo]) -> None:
        for row in panel_rows(self.daemon, targets, self.sources):
            widget = self.rows.get(row.target)
            if widget is None:
                if row.source not in self.headed:  # the fridge's rows, then the detector's
                    self.headed.add(row.source)
                    heading = QtWidgets.QLabel(row.source.upper())
                    heading.setStyleSheet(f"color: {theme.DIM}; font-weight: bold; "
                                          "font-size: 13px; margin-top: 8px;")
                    self.rows_box.addWidget(heading)
                widget = self.rows[row.target] = ControlRowWidget(row, self.send)
                self.rows_box.addWidget(widget)
                widget.set_enabled(self.allowed)
            else:
                widget.update_info(row)
        if not self.rows:
            self.state.setText("this daemon offers none of the dashboard's controls")

    def set_state(self, text: str, tone: Tone) -> None:
        self.state.setText(text)
        self.state.setStyleSheet(f"color: {theme.TONE_COLOURS[tone]};")

    def set_allowed(self, permission: Permission) -> None:
        self.allowed = permission.allowed
        for widget in self.rows.values():
            widget.set_enabled(permission.allowed)


class ControlsView(QtWidgets.QScrollArea):
    """Every daemon's controls, with the permission said at the top."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        host = QtWidgets.QWidget()
        self.layout_ = QtWidgets.QVBoxLayout(host)
        self.permission = QtWidgets.QLabel("")
        self.permission.setWordWrap(True)
        self.permission.setStyleSheet(f"color: {theme.TONE_COLOURS[Tone.WARN]}; "
                                      "font-size: 16px; font-weight: bold;")
        self.permission.setVisible(False)
        self.layout_.addWidget(self.permission)
        self.panels: dict[str | None, DaemonPanel] = {}
        self.panels_box = QtWidgets.QVBoxLayout()
        self.layout_.addLayout(self.panels_box)
        self.layout_.addStretch(1)
        self.setWidget(host)
        self._denied: dict[str, str] = {}

    def add_panel(self, panel: DaemonPanel) -> None:
        self.panels[panel.daemon] = panel
        self.panels_box.addWidget(panel)

    def set_permission(self, daemon: str | None, permission: Permission) -> None:
        """Enable or disable ``daemon``'s controls; a refusal is said at the top."""
        panel = self.panels.get(daemon)
        if panel is not None:
            panel.set_allowed(permission)
        name = panel.title() if panel is not None else str(daemon)
        if permission.allowed:
            self._denied.pop(name, None)
        else:
            self._denied[name] = permission.reason
        reasons = sorted(set(self._denied.values()))
        self.permission.setText("Controls disabled: " + "; ".join(reasons) if reasons else "")
        self.permission.setVisible(bool(reasons))

    def row(self, target: str) -> ControlRowWidget:
        """The row of ``target`` (targets are unique across a facility's daemons)."""
        for panel in self.panels.values():
            if target in panel.rows:
                return panel.rows[target]
        raise KeyError(f"no control row for {target}")

    def on_answer(self, answer: Answer) -> bool:
        panel = self.panels.get(answer.command.daemon)
        if panel is None:
            return False
        return any(widget.on_answer(answer) for widget in panel.rows.values())
