"""What a measurement run says on the wire: its documents and their messages.

A run is told as a sequence of documents, in the spirit of Bluesky's
start / event / stop documents, each one a :mod:`daq.messages` message whose
source is the run id (so ``run/<id>/...`` and ``wave/<id>/...`` hold
everything about it) and whose ``meta`` carries ``run`` (the id) and
``doc`` (:class:`DocType`):

==========  =================================  ===============================================
doc         topic                              meta / payload
==========  =================================  ===============================================
start       ``run/<id>/start``                 ``state: "start"``, ``start``: the
                                               :class:`StartDocument` (who, what, sample,
                                               parameters, every setting read back)
attach      ``run/<id>/attach``                ``name``, ``part``, ``parts``, ``text``: the recipe
                                               and the lab config as written (in parts, so a
                                               header stays far below its 64 KiB limit)
point       ``run/<id>/<stream>``              ``stream``, ``i`` (index in the stream), ``t`` (ns),
                                               ``values`` {field: number}, ``units`` {field: unit}
record      ``wave/<id>/<stream>``             a waveform record (raw samples + ``dt``, ``scale``,
                                               ``offset``, ``presamples``), ``stream``, ``i``,
                                               ``tags`` {name: number}, ``tag_units``, ``origin``
                                               (the daemon's record it copies: stream, epoch, seq)
pause       ``run/<id>/pause``                 ``i``, ``t``, ``reason``, ``condition``, ``step``
resume      ``run/<id>/resume``                ``i``, ``t``, ``paused_s``, ``step``
result      ``run/<id>/result``                ``result``: the analysis' numbers (JSON)
plot        ``wave/<id>/plot.<name>``          the PNG's bytes (uint8), ``name``, ``title``
stop        ``run/<id>/stop``                  ``state: "stop"``, ``stop``: the
                                               :class:`StopDocument` (status, points per stream)
progress    ``run/<id>/progress``              live only (never archived): ``done``, ``total``,
                                               ``eta_s``, ``step``, ``phase``
==========  =================================  ===============================================

``state: "start"`` / ``"stop"`` are what the logger's generic run handling
keys on (the ``runs`` table, record files named after the run); the run
sink (:mod:`daq.logger.run_sink`) writes everything into one HDF5 file per
run. Stream names are ``[a-z][a-z0-9_.]*`` and may not be one of
:data:`RESERVED_CHANNELS`.

Interface: the dataclasses, :func:`new_run_id`, the builders ``*_message``
and :func:`parse` (message -> :class:`RunMessage`).
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TypeAlias

import numpy as np

from daq import messages
from daq.messages import Kind, Message

JsonValue: TypeAlias = (str | int | float | bool | None | list["JsonValue"]
                        | dict[str, "JsonValue"])
"""A JSON-able value (what ``meta`` may hold)."""
JsonObject = dict[str, JsonValue]

#: Channels of ``run/<id>/`` the engine uses itself; a data stream may not take these names.
RESERVED_CHANNELS = frozenset({"start", "attach", "pause", "resume", "result", "stop",
                               "progress"})
STREAM_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,60}$")
#: Text of an attachment travels in parts of at most this many characters.
ATTACH_PART_CHARS = 24_000
#: The format tag of a run file (written by the run sink, checked by ``open_run``).
FILE_FORMAT = "qupdaq-run-1"


class DocType(enum.StrEnum):
    """The kinds of run documents (``meta["doc"]``)."""

    START = "start"
    ATTACH = "attach"
    POINT = "point"
    RECORD = "record"
    PAUSE = "pause"
    RESUME = "resume"
    RESULT = "result"
    PLOT = "plot"
    STOP = "stop"
    PROGRESS = "progress"


class RunStatus(enum.StrEnum):
    """How a run ended (or that it has not)."""

    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"  # stopped by the operator (Ctrl-C) or by a condition that never cleared
    FAILED = "failed"  # an error ended it


class Phase(enum.StrEnum):
    """What a running run is doing (progress messages)."""

    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"


def new_run_id(recipe_name: str, when: datetime | None = None) -> str:
    """A unique, sortable run id: ``YYYYMMDDTHHMMSS-<recipe>-<4 hex>`` (UTC)."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", recipe_name).strip("-")[:40] or "run"
    return f"{stamp}-{name}-{secrets.token_hex(2)}"


def check_stream_name(name: str) -> str:
    """Return ``name`` if it may name a run's data stream, else raise ValueError."""
    if not STREAM_NAME.match(name) or name in RESERVED_CHANNELS:
        raise ValueError(f"stream name {name!r} must match {STREAM_NAME.pattern} and not be "
                         f"one of {', '.join(sorted(RESERVED_CHANNELS))}")
    return name


@dataclass(frozen=True)
class StartDocument:
    """Everything needed to know (and redo) what a run did, taken at its start.

    Attributes:
        run_id: the run's id (also the source of its messages).
        procedure: the procedure's name (``iv``, ``impedance``, ...).
        recipe_name: the recipe's ``name``.
        recipe_path: the recipe file it came from ("" for a run started from Python).
        operator: who ran it.
        sample: what was measured.
        description: the recipe's free text.
        parameters: the procedure's validated parameters (JSON).
        detector: the readout circuit used to convert volts to currents (JSON).
        config_path: the lab config file.
        daemon: the daemon the run controlled.
        settings: every control target as the daemon read it back at the start
            (``Lab.list()``: target, instrument, unit, allowed, limits, value).
        targets: the targets the run leased.
        host: the machine the run ran on.
        pid: the run process.
        t_start_ns: start time, ns since the epoch.
        software: versions of qupdaq, Python, numpy, scipy.
        attachments: names of the texts sent as ``attach`` documents.
    """

    run_id: str
    procedure: str
    recipe_name: str
    recipe_path: str
    operator: str
    sample: str
    description: str
    parameters: JsonObject
    detector: JsonObject
    config_path: str
    daemon: str
    settings: list[JsonObject]
    targets: tuple[str, ...]
    host: str = field(default_factory=lambda: socket.gethostname())
    pid: int = field(default_factory=os.getpid)
    t_start_ns: int = field(default_factory=messages.now_ns)
    software: dict[str, str] = field(default_factory=dict)
    attachments: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        """The document as JSON-able data."""
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["attachments"] = list(self.attachments)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> StartDocument:
        """The document from :meth:`to_json`'s output."""
        known = {f for f in cls.__dataclass_fields__}
        values: dict[str, object] = {k: v for k, v in data.items() if k in known}
        values["targets"] = tuple(_strings(data.get("targets", [])))
        values["attachments"] = tuple(_strings(data.get("attachments", [])))
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StopDocument:
    """How a run ended.

    Attributes:
        status: completed, aborted or failed.
        reason: why it ended that way ("" when completed).
        t_stop_ns: stop time, ns since the epoch.
        points: points (or records) per stream.
        pauses: how often it was suspended.
        paused_s: time spent suspended, s.
        safe_state: what was done to leave the lab safe (one line per action).
    """

    status: RunStatus
    reason: str
    t_stop_ns: int
    points: dict[str, int]
    pauses: int
    paused_s: float
    safe_state: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        """The document as JSON-able data."""
        return {"status": self.status.value, "reason": self.reason, "t_stop_ns": self.t_stop_ns,
                "points": dict(self.points), "pauses": self.pauses, "paused_s": self.paused_s,
                "safe_state": list(self.safe_state)}

    @classmethod
    def from_json(cls, data: Mapping[str, JsonValue]) -> StopDocument:
        """The document from :meth:`to_json`'s output."""
        points = data.get("points") or {}
        assert isinstance(points, dict)
        return cls(RunStatus(str(data["status"])), str(data.get("reason", "")),
                   _int(data.get("t_stop_ns", 0)), {str(k): _int(v) for k, v in points.items()},
                   _int(data.get("pauses", 0)), _float(data.get("paused_s", 0.0)),
                   tuple(_strings(data.get("safe_state", []))))


@dataclass(frozen=True)
class Pause:
    """One suspension of a run.

    Attributes:
        t_pause_ns: when it was suspended.
        t_resume_ns: when it went on (None: it never did).
        condition: the condition that went bad (its name in the recipe).
        reason: what the condition saw.
        step: the step that was interrupted (and repeated).
    """

    t_pause_ns: int
    t_resume_ns: int | None
    condition: str
    reason: str
    step: str


@dataclass(frozen=True)
class Progress:
    """Where a running run stands (live only).

    Attributes:
        done: steps done.
        total: steps in all.
        elapsed_s: wall time since the start, s (time paused included).
        eta_s: estimated time to the end, s (None until a step is done).
        step: the step being done.
        phase: running, paused or stopping.
    """

    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    step: str
    phase: Phase

    @property
    def fraction(self) -> float:
        """done / total (0 without a total)."""
        return self.done / self.total if self.total else 0.0


# ---- building messages -------------------------------------------------------------------------


def _event(run_id: str, channel: str, doc: DocType, **meta: JsonValue) -> Message:
    return messages.event(Kind.RUN, run_id, channel, run=run_id, doc=doc.value, **meta)


def start_message(start: StartDocument) -> Message:
    """``run/<id>/start``."""
    return _event(start.run_id, "start", DocType.START, state="start", start=start.to_json())


def attach_messages(run_id: str, name: str, text: str) -> list[Message]:
    """``run/<id>/attach`` messages carrying ``text`` in parts."""
    parts = [text[k:k + ATTACH_PART_CHARS] for k in range(0, len(text), ATTACH_PART_CHARS)] or [""]
    return [_event(run_id, "attach", DocType.ATTACH, name=name, part=k, parts=len(parts),
                   text=part) for k, part in enumerate(parts)]


def point_message(run_id: str, stream: str, index: int, values: Mapping[str, float],
                  units: Mapping[str, str], t_ns: int | None = None) -> Message:
    """One point of a data stream (``run/<id>/<stream>``)."""
    clean: JsonObject = {k: _finite_or_none(v) for k, v in values.items()}
    return _event(run_id, stream, DocType.POINT, stream=stream, i=int(index),
                  t=messages.now_ns() if t_ns is None else int(t_ns), values=clean,
                  units=dict(units))


def record_message(run_id: str, stream: str, index: int, origin: Message,
                   tags: Mapping[str, float], tag_units: Mapping[str, str]) -> Message:
    """A copy of a daemon's waveform record as record ``index`` of the run's ``stream``."""
    assert origin.data is not None
    meta = {k: v for k, v in origin.meta.items() if k in ("dt", "t0", "scale", "offset",
                                                           "presamples")}
    msg = messages.waveform(run_id, stream, np.array(origin.data), dt=float(meta["dt"]),
                            t0=int(meta.get("t0", origin.t)), scale=float(meta["scale"]),
                            offset=float(meta["offset"]), presamples=int(meta["presamples"]),
                            units=origin.units, quality=origin.quality,
                            meta={"run": run_id, "doc": DocType.RECORD.value, "stream": stream,
                                  "i": int(index),
                                  "tags": {k: _finite_or_none(v) for k, v in tags.items()},
                                  "tag_units": dict(tag_units),
                                  "origin": {"stream": origin.stream, "epoch": origin.epoch,
                                             "seq": origin.seq, "t": origin.t}})
    msg.t = origin.t
    return msg


def pause_message(run_id: str, index: int, pause: Pause) -> Message:
    """``run/<id>/pause``."""
    return _event(run_id, "pause", DocType.PAUSE, i=int(index), t=pause.t_pause_ns,
                  condition=pause.condition, reason=pause.reason, step=pause.step)


def resume_message(run_id: str, index: int, pause: Pause) -> Message:
    """``run/<id>/resume`` (the pause with its resume time)."""
    assert pause.t_resume_ns is not None
    return _event(run_id, "resume", DocType.RESUME, i=int(index), t=pause.t_resume_ns,
                  paused_s=(pause.t_resume_ns - pause.t_pause_ns) / 1e9, step=pause.step,
                  condition=pause.condition)


def result_message(run_id: str, result: JsonObject) -> Message:
    """``run/<id>/result``: the analysis' numbers."""
    return _event(run_id, "result", DocType.RESULT, result=result)


def plot_message(run_id: str, name: str, title: str, png: bytes) -> Message:
    """``wave/<id>/plot.<name>``: one PNG figure as bytes."""
    msg = messages.waveform(run_id, f"plot.{name}", np.frombuffer(png, dtype=np.uint8),
                            dt=1.0, units="png",
                            meta={"run": run_id, "doc": DocType.PLOT.value, "name": name,
                                  "title": title, "content_type": "image/png"})
    return msg


def stop_message(run_id: str, stop: StopDocument) -> Message:
    """``run/<id>/stop``."""
    return _event(run_id, "stop", DocType.STOP, state="stop", stop=stop.to_json())


def progress_message(run_id: str, progress: Progress) -> Message:
    """``run/<id>/progress`` (live path only)."""
    return _event(run_id, "progress", DocType.PROGRESS, done=progress.done, total=progress.total,
                  fraction=round(progress.fraction, 4), elapsed_s=round(progress.elapsed_s, 3),
                  eta_s=None if progress.eta_s is None else round(progress.eta_s, 1),
                  step=progress.step, phase=progress.phase.value)


# ---- reading messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunMessage:
    """A message recognised as a run document.

    Attributes:
        run_id: the run.
        doc: which document.
        msg: the message itself.
    """

    run_id: str
    doc: DocType
    msg: Message


def parse(msg: Message) -> RunMessage | None:
    """The run document ``msg`` carries, or None when it is no run document."""
    run = msg.meta.get("run")
    doc = msg.meta.get("doc")
    if msg.kind not in (Kind.RUN, Kind.WAVE) or run != msg.source or not isinstance(doc, str):
        return None
    try:
        return RunMessage(str(run), DocType(doc), msg)
    except ValueError:
        return None


def to_json(value: object) -> JsonValue:
    """A result value (dataclass fields, numpy scalars, tuples) as JSON-able data.

    Arrays become lists; non-finite floats become None (JSON has no NaN).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def dumps(value: JsonValue) -> str:
    """Compact, deterministic JSON text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _strings(value: JsonValue) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _int(value: JsonValue) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _float(value: JsonValue) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
