"""Measurement runs as the dashboard lists them: metadata, state, live progress, points.

A run tells itself on the bus as documents (:mod:`daq.runs.documents`):
``run/<id>/start`` (who, what, sample, parameters), ``run/<id>/progress``
(``done``/``total``, ``eta_s``, ``step``, ``phase``; live only),
``run/<id>/pause`` and ``resume``, one ``run/<id>/<stream>`` per data point
(``values`` and ``units`` per field), ``run/<id>/result`` and
``run/<id>/stop`` (status completed / aborted / failed). The logger keeps
every run (its ``runs`` history op lists them; ``run`` gives one with its
events).

:class:`RunBook` merges both: :meth:`RunBook.apply` takes live messages,
:meth:`RunBook.merge_listing` the logger's list, :meth:`RunBook.load_events`
a stored run's events when it is opened. :meth:`RunEntry.curves` gives the
plots of a run's point streams: every field against the stream's first field
(the swept quantity, by the procedures' convention), or against the point
index when a stream has one field. Qt-free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from daq.messages import Kind, Message
from gui.models.format import Tone, format_age

#: Channels of ``run/<id>/`` that are not data streams.
RESERVED = frozenset({"start", "attach", "pause", "resume", "result", "stop", "progress"})


@dataclass
class PointStream:
    """The points of one of a run's data streams, field by field."""

    name: str
    fields: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    index: list[int] = field(default_factory=list)

    def add(self, i: int, values: dict[str, Any], units: dict[str, Any]) -> None:
        if i in self.index:
            return  # the same point from the live path and the archive
        n = len(self.index)
        self.index.append(int(i))
        for key, value in values.items():
            column = self.fields.setdefault(str(key), [math.nan] * n)
            column.append(float(value) if isinstance(value, int | float)
                          and not isinstance(value, bool) else math.nan)
        for column in self.fields.values():
            if len(column) < n + 1:
                column.append(math.nan)
        self.units.update({str(k): str(v) for k, v in units.items()})


@dataclass
class RunEntry:
    """One run.

    Attributes:
        run_id: the id (``20260130T101500-iv-1a2b``).
        procedure, recipe, sample, operator, description: from the start document.
        status: running, paused, completed, aborted or failed ("" when unknown).
        t_start, t_stop: s since the epoch.
        done, total, eta_s, step, phase: the newest progress.
        result: the analysis' numbers.
        reason: why it stopped (aborted, failed) or paused.
        streams: the point streams received or loaded.
        parameters: the procedure's parameters.
    """

    run_id: str
    procedure: str = ""
    recipe: str = ""
    sample: str = ""
    operator: str = ""
    description: str = ""
    status: str = ""
    t_start: float | None = None
    t_stop: float | None = None
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    step: str = ""
    phase: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    streams: dict[str, PointStream] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    @property
    def fraction(self) -> float | None:
        """done / total, None without a total; a completed run is whole, whatever its last
        progress message said (the last steps may finish between two of them)."""
        if self.status == "completed":
            return 1.0
        return self.done / self.total if self.total else None

    @property
    def tone(self) -> Tone:
        return {"running": Tone.GOOD, "paused": Tone.WARN, "completed": Tone.GOOD,
                "aborted": Tone.WARN, "failed": Tone.ALARM}.get(self.status, Tone.NONE)

    def progress_text(self) -> str:
        """``"37 / 120 · sweep bias 2.10 V · 4 min left"`` for a running run."""
        if not self.running:
            return self.reason if self.status in ("aborted", "failed") else ""
        parts = [f"{self.done} / {self.total}" if self.total else f"{self.done} done"]
        if self.step:
            parts.append(self.step)
        if self.phase and self.phase != "running":
            parts.append(self.phase.upper() + (f" ({self.reason})" if self.reason else ""))
        if self.eta_s is not None and math.isfinite(self.eta_s):
            parts.append(f"{format_age(self.eta_s)} left")
        return " · ".join(parts)

    def curves(self) -> list[tuple[str, str, list[float], list[float], str, str]]:
        """Plots of the point streams: ``(stream, field, x, y, x label, y unit)`` each, in
        point order; fields that never change (flags, a fixed setting) are left out."""
        out = []
        for name, stream in self.streams.items():
            names = list(stream.fields)
            if not names:
                continue
            order = sorted(range(len(stream.index)), key=stream.index.__getitem__)
            columns = {f: [stream.fields[f][k] for k in order] for f in names}
            if len(names) == 1:
                x_label, x = "point", [float(stream.index[k]) for k in order]
                ys = names
            else:
                x_label, x = names[0], columns[names[0]]
                ys = [f for f in names[1:] if len({v for v in columns[f] if v == v}) > 1]
                unit = stream.units.get(names[0], "")
                x_label = f"{x_label} ({unit})" if unit else x_label
            for y in ys:
                out.append((name, y, x, columns[y], x_label, stream.units.get(y, "")))
        return out


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 1e9 if value > 1e12 else float(value)  # ns or s since the epoch
    return None


class RunBook:
    """Every run heard of (see the module docstring)."""

    def __init__(self) -> None:
        self.runs: dict[str, RunEntry] = {}
        self.version = 0

    def entry(self, run_id: str) -> RunEntry:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = RunEntry(run_id)
        return run

    def apply(self, msg: Message) -> RunEntry | None:
        """Take one live ``run`` message (other kinds are ignored)."""
        if msg.kind is not Kind.RUN:
            return None
        self._document(msg.source, msg.channel, msg.meta, msg.t)
        self.version += 1
        return self.runs.get(msg.source)

    def _document(self, run_id: str, channel: str, meta: dict[str, Any], t_ns: int) -> None:
        run = self.entry(run_id)
        doc = str(meta.get("doc", channel))
        if doc == "start" or channel == "start":
            start = meta.get("start") if isinstance(meta.get("start"), dict) else {}
            assert isinstance(start, dict)
            run.procedure = str(start.get("procedure", run.procedure) or "")
            run.recipe = str(start.get("recipe_name", run.recipe) or "")
            run.sample = str(start.get("sample", run.sample) or "")
            run.operator = str(start.get("operator", run.operator) or "")
            run.description = str(start.get("description", run.description) or "")
            params = start.get("parameters")
            if isinstance(params, dict):
                run.parameters = params
            run.t_start = _seconds(start.get("t_start_ns")) or run.t_start or _seconds(t_ns)
            if not run.status:
                run.status = "running"
        elif doc == "progress":
            run.done = int(meta.get("done", run.done) or 0)
            run.total = int(meta.get("total", run.total) or 0)
            eta = meta.get("eta_s")
            run.eta_s = float(eta) if isinstance(eta, int | float) else None
            run.step = str(meta.get("step", "") or "")
            run.phase = str(meta.get("phase", "") or "")
            if run.status in ("", "running", "paused"):
                run.status = "paused" if run.phase == "paused" else "running"
        elif doc == "pause":
            run.status, run.phase = "paused", "paused"
            run.reason = str(meta.get("reason", "") or meta.get("condition", ""))
        elif doc == "resume":
            run.status, run.phase, run.reason = "running", "running", ""
        elif doc == "result":
            result = meta.get("result")
            if isinstance(result, dict):
                run.result = result
        elif doc == "stop" or channel == "stop":
            stop = meta.get("stop") if isinstance(meta.get("stop"), dict) else {}
            assert isinstance(stop, dict)
            run.status = str(stop.get("status", "completed") or "completed")
            run.reason = str(stop.get("reason", "") or "")
            run.t_stop = _seconds(stop.get("t_stop_ns")) or _seconds(t_ns)
            run.phase = ""
        elif doc == "point" and channel not in RESERVED:
            values = meta.get("values")
            units = meta.get("units")
            index = meta.get("i")
            if isinstance(values, dict) and isinstance(index, int):
                stream = run.streams.setdefault(channel, PointStream(channel))
                stream.add(index, values, units if isinstance(units, dict) else {})

    def merge_listing(self, rows: Iterable[dict[str, Any]]) -> None:
        """Take the logger's ``runs`` list (one dict per run, whatever fields it has)."""
        for row in rows:
            run_id = row.get("run") or row.get("run_id")
            if not isinstance(run_id, str) or not run_id:
                continue
            run = self.entry(run_id)
            meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
            assert isinstance(meta, dict)
            start = meta.get("start") if isinstance(meta.get("start"), dict) else {}
            assert isinstance(start, dict)
            merged = {**start, **meta, **row}
            for attr, keys in (("procedure", ("procedure",)), ("recipe", ("recipe", "recipe_name")),
                               ("sample", ("sample",)), ("operator", ("operator",))):
                for key in keys:
                    if not getattr(run, attr) and isinstance(merged.get(key), str):
                        setattr(run, attr, merged[key])
            run.t_start = run.t_start or _seconds(merged.get("t_start")) or _seconds(
                merged.get("t_start_ns"))
            stopped = _seconds(merged.get("t_stop")) or _seconds(merged.get("t_stop_ns"))
            if stopped and not run.t_stop:
                run.t_stop = stopped
            status = merged.get("status")
            if isinstance(status, str) and status and not (run.running and status == "running"):
                run.status = status
            elif not run.status:
                run.status = "completed" if stopped else "running"
        self.version += 1

    def load_events(self, run_id: str, events: Iterable[dict[str, Any]]) -> RunEntry:
        """Take a stored run's events (the logger's ``events`` under ``run/<id>/``)."""
        run = self.entry(run_id)
        for event in events:
            stream = str(event.get("stream", ""))
            parts = stream.split("/")
            meta = event.get("meta")
            if len(parts) != 3 or parts[0] != "run" or not isinstance(meta, dict):
                continue
            t = event.get("t", 0)
            self._document(parts[1], parts[2], meta, int(t) if isinstance(t, int) else 0)
        run.loaded = True
        self.version += 1
        return run

    def listed(self) -> list[RunEntry]:
        """Running runs first, then the rest newest first."""
        return sorted(self.runs.values(),
                      key=lambda r: (not r.running, -(r.t_start or 0.0), r.run_id))
