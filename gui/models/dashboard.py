"""The whole dashboard's state in one place, fed message by message, and its remembered layout.

:class:`DashboardModel` owns the models of every view and routes each
received message to them (:meth:`DashboardModel.apply`): ``data`` to the
newest readings and the live buffers, ``status`` to the instrument states,
``alarm`` to the :class:`~gui.models.alarms.AlarmBook`, ``run`` to the
:class:`~gui.models.runs.RunBook`, ``wave`` to the detectors. It knows the
config's ``dashboard:`` section (which fridges, detectors and charts) and
which daemon controls what (:meth:`DashboardModel.daemon_for`).

:class:`Layout` is what the window remembers between sessions besides its
geometry: the open view, the charts a person added, each chart's span. It
travels as JSON (:meth:`Layout.to_json`), and garbage in the settings file
gives the default layout, never an error. Qt-free.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from daq.config import LabConfig
from daq.dashboard_config import DashboardConfig
from daq.messages import Kind, Message, is_bad
from gui.models.alarms import AlarmBook
from gui.models.chart import ChartModel
from gui.models.detector import DetectorModel
from gui.models.live import LiveState
from gui.models.runs import RunBook
from gui.models.series import SeriesStore
from gui.models.workers import Liveness

VIEWS = ("Overview", "Charts", "Detector", "Alarms", "Runs", "Controls")


def chart_key(title: str, taken: set[str] | None = None) -> str:
    """A chart's key from its title (``Stage temperatures`` -> ``stage_temperatures``)."""
    base = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "chart"
    key, n = base, 2
    while taken and key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


class DashboardModel:
    """Every view's model, fed from the bus (see the module docstring).

    Args:
        config: the lab config (its ``dashboard:`` section says what to show).
        capacity: samples kept per live stream.
    """

    def __init__(self, config: LabConfig, *, capacity: int | None = None) -> None:
        self.config = config
        self.dash: DashboardConfig = config.dashboard
        self.live = LiveState()
        self.store = SeriesStore() if capacity is None else SeriesStore(capacity)
        self.alarms = AlarmBook()
        self.runs = RunBook()
        self.detectors = {name: DetectorModel(name, view)
                          for name, view in self.dash.detectors.items()}
        self.charts: dict[str, ChartModel] = {}
        for chart in self.dash.charts:
            self.add_chart(chart.title, chart.streams, log_y=chart.log_y)
        self.dropped = 0
        self._alarm_streams = self._streams_of_alarms()

    # ---- charts -------------------------------------------------------------------------------

    def add_chart(self, title: str, streams: list[str], *, log_y: bool = False,
                  span_s: float = 3600.0, key: str | None = None) -> ChartModel:
        """Open a chart of ``streams`` (``source/channel``)."""
        key = key if key and key not in self.charts else chart_key(title, set(self.charts))
        chart = ChartModel(key, title, streams, self.store, log_y=log_y, span_s=span_s)
        self.charts[key] = chart
        return chart

    def remove_chart(self, key: str) -> None:
        self.charts.pop(key, None)

    @property
    def config_chart_keys(self) -> list[str]:
        """Keys of the charts the config offers (the rest were added by a person)."""
        return [chart_key(c.title, set()) for c in self.dash.charts]

    # ---- input --------------------------------------------------------------------------------

    def apply(self, msg: Message) -> None:
        """Route one received message to the models."""
        kind = msg.kind
        if kind is Kind.DATA:
            self.live.apply(msg)
            if msg.data is not None:
                self.store.add(f"{msg.source}/{msg.channel}", msg.data["t"], msg.data["value"],
                               units=msg.units, bad=is_bad(msg.quality))
        elif kind is Kind.STATUS:
            self.live.apply(msg)
        elif kind is Kind.WAVE:
            for detector in self.detectors.values():
                detector.apply(msg)
        elif kind is Kind.ALARM:
            self.alarms.apply(msg)
        elif kind is Kind.RUN:
            self.runs.apply(msg)

    def apply_liveness(self, liveness: Liveness) -> None:
        self.live.set_liveness(liveness.stale, liveness.known, connected=liveness.connected,
                               error=liveness.error)
        self.dropped = liveness.dropped

    # ---- alarms on streams ---------------------------------------------------------------------

    def _streams_of_alarms(self) -> dict[str, set[str]]:
        """Alarm ids (the alarm service's rules, the daemons' interlocks under both their
        names) -> the streams they watch."""
        found: dict[str, set[str]] = {}
        if self.config.alarms is not None:
            for rule in self.config.alarms.rules:
                found[rule.name] = set(rule.when.streams())
        daemons: list[str | None] = list(self.config.daemons) or [None]
        for daemon in daemons:
            sub = self.config.for_daemon(daemon) if self.config.daemons else self.config
            for lock in sub.interlocks:
                for alarm_id in (lock.name, f"interlock.{sub.daemon.name}.{lock.name}"):
                    found.setdefault(alarm_id, set()).add(lock.stream)
        return found

    def alarmed_streams(self, now: float | None = None) -> set[str]:
        """Streams an active alarm (not shelved, not suppressed) watches."""
        now = time.time() if now is None else now
        streams: set[str] = set()
        for alarm in self.alarms.listed(now):
            if alarm.active and not alarm.suppressed_by and not alarm.shelved(now):
                streams |= self._alarm_streams.get(alarm.id, set())
        return streams

    def stream_label(self, stream: str) -> str:
        """What a chart's legend calls ``stream``: the overview's words (``fridge1 MXC``)."""
        for name, fridge in self.dash.fridges.items():
            for label, s in fridge.stages.items():
                if s == stream:
                    return f"{name} {label}"
            for label, s in fridge.pressures.items():
                if s == stream:
                    return f"{name} p({label})"
            for label, s in fridge.heaters.items():
                if s == stream:
                    return f"{name} {label} heater"
            if fridge.flow == stream:
                return f"{name} flow"
        return stream

    # ---- who controls what --------------------------------------------------------------------

    @property
    def daemons(self) -> list[str | None]:
        """The daemons the dashboard can control: a facility's names, or [None] for the one
        daemon of a single-daemon config (empty when the config has none)."""
        if self.config.daemons:
            return list(self.config.daemons)
        if self.config.instruments or self.config.dastard is not None:
            return [None]
        return []

    def daemon_for(self, source: str) -> str | None:
        """The daemon that owns ``source`` (``fridge2``, ``tes1``) in a facility config."""
        if not self.config.daemons:
            return None
        for name, fridge in self.dash.fridges.items():
            if name == source and fridge.daemon:
                return fridge.daemon
        for detector in self.dash.detectors.values():
            if detector.record.split("/")[0] == source and detector.daemon:
                return detector.daemon
        for name in self.config.daemons:
            sub = self.config.for_daemon(name)
            if any(inst.source == source for inst in sub.instruments.values()):
                return name
        return None

    def sources_of(self, daemon: str | None) -> list[str]:
        """The sources whose instruments ``daemon`` owns (``fridge1``, ``tes1``)."""
        sub = self.config.for_daemon(daemon) if self.config.daemons else self.config
        return sorted({inst.source for inst in sub.instruments.values()})

    def publisher_of(self, daemon: str | None) -> str:
        """The bus publisher name of ``daemon`` (its ``daemon.name``)."""
        sub = self.config.for_daemon(daemon) if self.config.daemons else self.config
        return sub.daemon.name

    def all_streams(self) -> list[str]:
        """Every scalar stream heard so far or named by the dashboard section."""
        named = {s for f in self.dash.fridges.values() for s in f.streams}
        named |= {s for c in self.dash.charts for s in c.streams}
        return sorted(named | set(self.store.series))


@dataclass
class Layout:
    """What the window remembers between sessions (besides its geometry).

    Attributes:
        view: the open view (one of :data:`VIEWS`).
        charts: charts a person added: ``{key, title, streams, log_y, span_s}``.
        spans: span (s) of each chart by key.
        detector: the detector shown.
    """

    view: str = "Overview"
    charts: list[dict[str, Any]] = field(default_factory=list)
    spans: dict[str, float] = field(default_factory=dict)
    detector: str = ""

    def to_json(self) -> str:
        return json.dumps({"view": self.view, "charts": self.charts, "spans": self.spans,
                           "detector": self.detector})

    @classmethod
    def from_json(cls, text: Any) -> Layout:
        """The layout in ``text``; the default for anything unreadable."""
        try:
            data = json.loads(text) if isinstance(text, str | bytes) else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        layout = cls()
        if data.get("view") in VIEWS:
            layout.view = data["view"]
        charts = data.get("charts")
        if isinstance(charts, list):
            layout.charts = [c for c in charts if isinstance(c, dict)
                             and isinstance(c.get("title"), str)
                             and isinstance(c.get("streams"), list)
                             and all(isinstance(s, str) and s.count("/") == 1
                                     for s in c["streams"])]
        spans = data.get("spans")
        if isinstance(spans, dict):
            layout.spans = {str(k): float(v) for k, v in spans.items()
                            if isinstance(v, int | float) and v > 0}
        if isinstance(data.get("detector"), str):
            layout.detector = data["detector"]
        return layout

    @classmethod
    def of(cls, model: DashboardModel, view: str, detector: str = "") -> Layout:
        """The layout of ``model`` now."""
        configured = set(model.config_chart_keys)
        return cls(view=view,
                   charts=[c.describe() for k, c in model.charts.items() if k not in configured],
                   spans={k: c.span_ns / 1e9 for k, c in model.charts.items()},
                   detector=detector)
