"""The dashboard's main window: the views, the banner, the workers and the frame timer.

:class:`DashboardWindow` owns a :class:`~gui.models.dashboard.DashboardModel`
and the I/O threads (:mod:`gui.models.workers`: the bus feed, one control
worker per daemon, the history worker). Nothing on the GUI thread waits on a
socket: a frame timer (at most ``fps`` per second) drains what the threads
queued, within a time budget, into the models, hands answers to whoever
asked, and repaints only the view on screen (the overview a few times a
second, the charts and the detector every frame, the lists when they
changed). A slow or dead daemon, logger or broker therefore shows up as
"silent" or "no answer" within seconds while the window keeps its pace.

The window remembers its geometry, the open view, the charts a person added
and each chart's span (:class:`~gui.models.dashboard.Layout`) in a
:class:`QtCore.QSettings` whose file a test (or ``--settings``) chooses.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections import deque
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from daq.config import LabConfig
from daq.messages import Message
from gui import theme
from gui.models.chart import HistoryAnswer, HistoryRequest
from gui.models.control import Answer, Command, Permission, TargetInfo, control_permission
from gui.models.dashboard import VIEWS, DashboardModel, Layout
from gui.models.format import Tone
from gui.models.workers import BusFeed, CallAnswer, ControlWorker, HistoryCall, HistoryWorker
from gui.widgets.alarms import AlarmBanner, AlarmsView
from gui.widgets.charts import ChartsView
from gui.widgets.controls import ControlsView, DaemonPanel
from gui.widgets.detector import DetectorView
from gui.widgets.overview import OverviewView
from gui.widgets.runs import RunsView

#: How long one frame may spend taking messages in (s); the rest waits for the next frame.
DRAIN_BUDGET_S = 0.012
#: How often each daemon's targets are listed again (s).
LIST_EVERY_S = 15.0
#: How often the logger's list of runs is asked for (s).
RUNS_EVERY_S = 30.0


def settings_at(path: str | Path | None) -> QtCore.QSettings:
    """The window's settings: an INI file at ``path``, else the user's qupdaq settings."""
    if path:
        return QtCore.QSettings(str(path), QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat,
                            QtCore.QSettings.Scope.UserScope, "qupdaq", "dashboard")


class DashboardWindow(QtWidgets.QMainWindow):
    """The control-room window (see the module docstring).

    Args:
        config: the lab config; its ``dashboard:`` section says what to show.
        daemon: control only this daemon of a facility (None: every daemon).
        read_only: disable every control (a visitor's screen).
        settings: where geometry and layout are remembered.
        fps: the most frames per second.
        feed: the bus feed (started here when None).
        history: the history worker (started here when None and the config has a logger).
        control_timeout_s: how long a control request waits for its daemon.
    """

    def __init__(self, config: LabConfig, *, daemon: str | None = None, read_only: bool = False,
                 settings: QtCore.QSettings | None = None, fps: float = 50.0,
                 feed: BusFeed | None = None, history: HistoryWorker | None = None,
                 control_timeout_s: float = 5.0) -> None:
        super().__init__()
        self.config = config
        self.model = DashboardModel(config)
        for detector in self.model.detectors.values():
            detector.background = True  # noise spectra off the GUI thread
        self.settings = settings if settings is not None else settings_at(None)
        title = config.dashboard.title
        self.setWindowTitle(f"{title} — qupdaq" if title != "qupdaq" else "qupdaq dashboard")
        # ---- threads
        self.feed = feed if feed is not None else BusFeed(config).start()
        self.history = history
        if self.history is None and config.logger is not None:
            self.history = HistoryWorker(config.logger.history_endpoint, config).start()
        daemons = self.model.daemons if daemon is None else [daemon]
        self.workers = {d: ControlWorker(config, d, timeout_s=control_timeout_s).start()
                        for d in daemons}
        self.permissions: dict[str | None, Permission] = {
            d: control_permission(config, d, read_only=read_only) for d in daemons}
        # ---- views
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(4, 4, 4, 4)
        self.banner = AlarmBanner()
        self.banner.clicked.connect(lambda: self.show_view("Alarms"))
        outer.addWidget(self.banner)
        self.tabs = QtWidgets.QTabWidget()
        outer.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        publishers = {name: self.model.publisher_of(self.model.daemon_for(name))
                      for name in config.dashboard.fridges if self.model.daemons}
        self.overview = OverviewView(config.dashboard.fridges, self.model.live, publishers,
                                     self.model.alarmed_streams)
        self.charts = ChartsView(self._ask_history, self.model.all_streams, self.add_chart,
                                 self.remove_chart, label=self.model.stream_label)
        for chart in self.model.charts.values():
            self.charts.add_chart(chart, closable=False)
        self.detector = DetectorView(self.model.detectors, self.model.live)
        alarm_daemon = next((d for d in daemons if self.permissions[d].allowed),
                            daemons[0] if daemons else None)
        self.alarms = AlarmsView(self.model.alarms, self.send, alarm_daemon)
        if not daemons:
            self.alarms.set_allowed(False, "the config names no daemon to forward alarm "
                                           "operations")
        elif not self.permissions[alarm_daemon].allowed:
            self.alarms.set_allowed(False, self.permissions[alarm_daemon].reason)
        self.runs = RunsView(self.model.runs, self._ask_runs, self._ask_run_events)
        self.controls = ControlsView()
        for d in daemons:
            publisher = self.model.publisher_of(d)
            name = f"{d} · {publisher}" if d else publisher
            sources = self.model.sources_of(d) if config.daemons else None
            self.controls.add_panel(DaemonPanel(d, name, sources, self.send, self._ask_list))
            self.controls.set_permission(d, self.permissions[d])
        self.views: dict[str, QtWidgets.QWidget] = {
            "Overview": self.overview, "Charts": self.charts, "Detector": self.detector,
            "Alarms": self.alarms, "Runs": self.runs, "Controls": self.controls}
        for name in VIEWS:
            self.tabs.addTab(self.views[name], name)
        # ---- status bar
        self.status_bus = QtWidgets.QLabel("")
        self.status_services = QtWidgets.QLabel("")
        self.status_frames = QtWidgets.QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.status_bus, 1)
        bar.addWidget(self.status_services, 1)
        self.status_frames.setMinimumWidth(110)
        bar.addPermanentWidget(self.status_frames)
        # ---- timing
        self.fps = fps
        self.frame_count = 0
        self.frame_times: deque[float] = deque(maxlen=240)
        self.max_frame_gap_s = 0.0
        self._last_frame = 0.0
        self._due: dict[str, float] = {}
        self._list_due: dict[str | None, float] = {d: 0.0 for d in daemons}
        self._listing: set[str | None] = set()
        self._alarms_seen = -1
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._frame)
        self.timer.start(max(1, int(1000 / fps)))
        self._restore()

    # ---- commands and queries -----------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Send a control command through its daemon's worker."""
        worker = self.workers.get(command.daemon)
        if worker is None:
            self._route_answer(Answer(command, False, error=f"no control worker for daemon "
                                                            f"{command.daemon!r}"))
            return
        permission = self.permissions.get(command.daemon)
        if permission is not None and not permission.allowed and command.op != "list":
            self._route_answer(Answer(command, False, error=permission.reason, refused=True))
            return
        worker.submit(command)

    def _ask_list(self, daemon: str | None) -> None:
        if daemon in self._listing:
            return
        self._listing.add(daemon)
        self._list_due[daemon] = time.monotonic() + LIST_EVERY_S
        self.send(Command(daemon, "list", {}))

    def _ask_history(self, request: HistoryRequest) -> None:
        if self.history is None:
            chart = self.model.charts.get(request.chart)
            if chart is not None:
                chart.on_history(HistoryAnswer(request, False, error="the config has no "
                                               "logger section"), time.time_ns())
            return
        self.history.submit(request)

    def _ask_runs(self) -> None:
        if self.history is not None:
            self.history.call(HistoryCall("runs", "runs"))

    def _ask_run_events(self, run_id: str) -> None:
        if self.history is not None:
            self.history.call(HistoryCall(f"run:{run_id}", "events",
                                          {"prefix": f"run/{run_id}/", "limit": 100_000}))

    # ---- charts a person adds -----------------------------------------------------------------

    def add_chart(self, title: str, streams: list[str], log_y: bool = False,
                  span_s: float = 3600.0) -> str:
        chart = self.model.add_chart(title, streams, log_y=log_y, span_s=span_s)
        self.charts.add_chart(chart, closable=True)
        return chart.key

    def remove_chart(self, key: str) -> None:
        self.model.remove_chart(key)
        self.charts.remove_chart(key)

    def show_view(self, name: str) -> None:
        self.tabs.setCurrentWidget(self.views[name])

    @property
    def current_view(self) -> str:
        return self.tabs.tabText(self.tabs.currentIndex())

    # ---- the frame ----------------------------------------------------------------------------

    def _frame(self) -> None:
        start = time.perf_counter()
        if self._last_frame:
            self.max_frame_gap_s = max(self.max_frame_gap_s, start - self._last_frame)
        self._last_frame = start
        self._drain_feed(start)
        self._drain_answers()
        now_ns = time.time_ns()
        mono = time.monotonic()
        view = self.current_view
        self.refresh_views(view, now_ns, mono)
        alarms_changed = self.model.alarms.version != self._alarms_seen
        if self._every("lists", 0.5, mono) or alarms_changed:
            # An alarm's change is shown in the same frame; the banner also blinks on this
            # half-second beat while it waits for an acknowledgement.
            self._alarms_seen = self.model.alarms.version
            if view == "Alarms":
                self.alarms.refresh()
            elif view == "Runs":
                self.runs.refresh()
            self.banner.show_banner(self.model.alarms.banner())
        if self._every("status", 1.0, mono):
            self._status()
            for d, due in self._list_due.items():
                if mono >= due:
                    self._ask_list(d)
        if self._every("runs", RUNS_EVERY_S, mono):
            self._ask_runs()
        self.frame_count += 1
        self.frame_times.append(time.perf_counter() - start)

    def refresh_views(self, view: str, now_ns: int, mono: float) -> None:
        """Repaint what is on screen: the charts and the detector every frame (they draw only
        what changed), the overview four times a second (ages tick in seconds)."""
        if view == "Charts":
            self.charts.refresh(now_ns)
        elif view == "Detector":
            self.detector.refresh(now_ns, mono)
        if self._every("overview", 0.25, mono) and view == "Overview":
            self.overview.refresh(now_ns)

    def _every(self, key: str, period_s: float, now: float) -> bool:
        if now >= self._due.get(key, 0.0):
            self._due[key] = now + period_s
            return True
        return False

    def _drain_feed(self, start: float) -> None:
        feed_out = self.feed.out
        while time.perf_counter() - start < DRAIN_BUDGET_S:
            try:
                item = feed_out.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Message):
                self.model.apply(item)
            else:
                self.model.apply_liveness(item)

    def _drain_answers(self) -> None:
        for worker in self.workers.values():
            while True:
                try:
                    answer = worker.out.get_nowait()
                except queue.Empty:
                    break
                self._route_answer(answer)
        if self.history is not None:
            while True:
                try:
                    item = self.history.out.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, HistoryAnswer):
                    chart = self.model.charts.get(item.request.chart)
                    if chart is not None and chart.on_history(item, time.time_ns()):
                        widget = self.charts.charts.get(chart.key)
                        if widget is not None and item.request.purpose == "cursor":
                            widget.refresh_cursor()
                else:
                    self._on_call(item)

    def _route_answer(self, answer: Answer) -> None:
        command = answer.command
        if command.op == "list":
            self._listing.discard(command.daemon)
            panel = self.controls.panels.get(command.daemon)
            if panel is None:
                return
            if answer.ok:
                targets = [TargetInfo.from_item(t) for t in answer.reply.get("targets", [])]
                panel.update_targets(targets)
                for detector in self.model.detectors.values():
                    for target in targets:
                        if target.target == detector.trigger_target:
                            detector.set_trigger_level(target.value)
                if panel.rows:
                    panel.set_state(f"{len(targets)} targets listed at "
                                    f"{time.strftime('%H:%M:%S')}", Tone.STALE)
            else:
                panel.set_state(("refused: " if answer.refused else "no answer: ")
                                + answer.error, Tone.ALARM)
            return
        if command.op.startswith("alarm_"):
            self.alarms.on_answer(answer)
            return
        self.controls.on_answer(answer)
        if answer.ok:  # read the new values back soon
            self._list_due[command.daemon] = time.monotonic() + 0.5

    def _on_call(self, answer: CallAnswer) -> None:
        call = answer.call
        if call.op == "runs":
            if answer.ok:
                self.model.runs.merge_listing(answer.reply.get("runs", []))
        elif call.op == "events" and call.key.startswith("run:") and answer.ok:
            self.model.runs.load_events(call.key[4:], answer.reply.get("events", []))

    def _status(self) -> None:
        live = self.model.live
        # The services this lab runs: a silent one is news. (A finished run's publisher is
        # silent too, and rightly so: it is not named here.)
        expected = {self.model.publisher_of(d) for d in self.model.daemons}
        if self.config.logger is not None:
            expected.add(self.config.logger.name)
        if self.config.alarms is not None:
            expected.add(self.config.alarms.name)
        silent = sorted(live.stale_publishers & expected)
        if live.bus_connected:
            n = len(live.known_publishers)
            text = f"bus: connected · {n} publisher{'s' if n != 1 else ''}"
            colour = theme.DIM
            if silent:
                text += f" · SILENT: {', '.join(silent)}"
                colour = theme.TONE_COLOURS[Tone.WARN]
        else:
            text = f"bus: NOT CONNECTED ({live.bus_error or 'waiting'})"
            colour = theme.TONE_COLOURS[Tone.ALARM]
        if self.model.dropped:
            text += f" · {self.model.dropped} messages dropped (display behind)"
        self.status_bus.setText(text)
        self.status_bus.setStyleSheet(f"color: {colour};")
        parts = []
        if self.config.logger is not None:
            parts.append(f"logger {live.service_state(self.config.logger.name)}")
        if self.config.alarms is not None:
            parts.append(f"alarms {live.service_state(self.config.alarms.name)}")
        for d in self.workers:
            publisher = self.model.publisher_of(d)
            parts.append(f"{publisher} {live.service_state(publisher)}")
        self.status_services.setText(" · ".join(parts))
        frames = list(self.frame_times)
        if frames:
            self.status_frames.setText(f"frame {1000 * sum(frames) / len(frames):.1f} ms")

    # ---- memory -------------------------------------------------------------------------------

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QtCore.QByteArray | bytes):
            self.restoreGeometry(QtCore.QByteArray(geometry))
        else:
            self.resize(1600, 1000)
        layout = Layout.from_json(self.settings.value("layout", ""))
        for chart in layout.charts:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                self.add_chart(str(chart["title"]), list(chart["streams"]),
                               bool(chart.get("log_y", False)),
                               float(chart.get("span_s", 3600.0)))
        now = time.time_ns()
        for key, span in layout.spans.items():
            chart_model = self.model.charts.get(key)
            if chart_model is not None:
                chart_model.set_span(span, now)
        self.show_view(layout.view)

    def save_settings(self) -> None:
        """Remember geometry and layout (also done on close)."""
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("layout", Layout.of(self.model, self.current_view).to_json())
        self.settings.sync()

    def shutdown(self) -> None:
        """Stop the timer and every thread (idempotent)."""
        self.timer.stop()
        # Short joins: the threads are daemons, and one stuck in a request to a dead service
        # must not hold the window's closing for its timeout.
        self.feed.stop(0.5)
        if self.history is not None:
            self.history.stop(0.2)
        for worker in self.workers.values():
            worker.stop(0.2)
        for detector in self.model.detectors.values():
            detector.close()

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

