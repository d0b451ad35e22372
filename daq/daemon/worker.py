"""One thread per instrument: the instrument's single owner.

An :class:`InstrumentWorker` connects its driver (``drivers.common.Connection``),
polls the configured :class:`~drivers.common.PollSpec` s on their periods,
executes control requests queued to it between polls, and reports what
happens as messages handed to ``emit`` (the daemon's outbound stage):

* ``data/<source>/<channel>`` scalar samples, or ``wave/...`` records;
* ``status/<source>/<instrument>``: connected; stale (a read failed, with the
  reason, or a channel had no fresh value for its ``stale_s``); reconnecting
  (with the reason and the next retry); error (the worker itself died).

Faults never escape the thread: a timeout, a dropped connection or a garbage
reply is reported, the link is closed and reopened with exponential backoff,
and requests that arrive meanwhile are answered with a clear error. A
hanging instrument stalls only its own thread (bounded by its VISA timeout).

Scanner-aware scheduling: a PollSpec with ``fresh`` (the Lake Shore 372
scanner) is read when the instrument says a new reading exists, not
blindly; until then it is re-checked every :data:`FRESH_RECHECK_S` (or a
quarter of its period, if shorter). Such a channel may legitimately be
silent for a whole scan cycle: give it ``stale_s`` in the config.
"""

from __future__ import annotations

import enum
import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from daq import messages
from daq.daemon.config import InstrumentConfig, PollConfig
from daq.errors import (
    ControlError,
    InstrumentConnectionError,
    InstrumentError,
    QupdaqError,
)
from daq.failpoints import failpoint
from daq.messages import InstrumentState, Message
from drivers.common import ActionSpec, Connection, ControlSpec, PollSpec, classify_fault
from drivers.readings import PollKind, Quality, Reading, WaveRecord, describe_quality, is_bad

log = logging.getLogger(__name__)

Reply = Callable[[dict[str, Any]], None]

#: How often a scanner-gated channel is asked whether it has a fresh reading.
FRESH_RECHECK_S = 0.5

#: Malformed replies in a row after which the link is reopened: a single garbled
#: line is a reply error (published as an INVALID reading), but a run of them
#: means the conversation itself is out of step.
REPLY_ERRORS_BEFORE_RECONNECT = 3

#: Set-and-read-back attempts of an interlock's action within one request.
ENFORCE_ATTEMPTS = 3


def load_driver(spec: str) -> type:
    """``'lakeshore.ls372:LakeShore372'`` -> the class ``drivers.lakeshore.ls372.LakeShore372``."""
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(f"drivers.{module_name}")
    except ImportError as exc:
        raise ControlError(f"driver module drivers.{module_name} cannot be imported: {exc}") \
            from None
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise ControlError(f"drivers.{module_name} has no class {class_name!r}") from None
    return cls


def warm_up_visa() -> None:
    """Load PyVISA and its pure-Python backend once, in the calling thread.

    PyVISA imports its backends lazily, on the first ``ResourceManager``;
    doing that from several worker threads at once can leave a module half
    initialised for good, so the daemon calls this before starting workers.
    """
    import pyvisa

    manager = pyvisa.ResourceManager()
    manager.close()


@dataclass
class Request:
    """A control request queued to a worker; ``reply`` is called from the worker thread."""

    op: str  # "get", "set", "enforce" (set and read back), "call", "describe"
    target: str = ""
    spec: str = ""
    value: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    reply: Reply = lambda result: None  # noqa: E731 - a harmless default sink
    counted: bool = False  # counted against the worker's queue bound


@dataclass
class PollState:
    """Schedule and freshness of one polled channel."""

    spec: PollSpec
    channel: str
    period_s: float
    units: str
    next_due: float = 0.0
    last_good: float = 0.0
    stale_s: float = 0.0
    stale_reported: bool = False
    flagged: str = ""  # the instrument's verdict on the last reading, when it was bad


class TargetKind(enum.StrEnum):
    """What a target is: a setting with a value, or a command."""

    CONTROL = "control"
    ACTION = "action"


@dataclass(frozen=True)
class TargetInfo:
    """A control or action target as the daemon exposes it."""

    target: str  # source/name
    kind: TargetKind
    spec: str
    unit: str = ""
    allowed: str = ""
    params: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Specs:
    """What a connected driver offers, mapped to the config's names; replaced whole, never
    edited, so other threads may read :attr:`InstrumentWorker.targets` at any time."""

    controls: Mapping[str, ControlSpec]
    actions: Mapping[str, ActionSpec]
    targets: Mapping[str, TargetInfo]


class Busy(ControlError):
    """The instrument's request queue is full; the client should try again."""


class InstrumentWorker:
    """Owns one instrument: connect, poll, execute requests, reconnect.

    Args:
        name: instrument name in the config (``ls372``).
        config: its :class:`InstrumentConfig`.
        emit: called with every message to publish (thread-safe sink).
        status_period_s: republish status at least this often.
        stale_after_periods: a channel without a fresh value for this many
            periods is reported stale.
        connection: for tests; built from the config by default.
        state_dir: where a driver that keeps state across restarts
            (``KEEPS_STATE = True``) gets its ``state_file``, named after the instrument.
        max_queued: client requests that may wait for this instrument; more are
            refused with :class:`Busy` (the daemon's own requests always queue).
    """

    def __init__(
        self,
        name: str,
        config: InstrumentConfig,
        emit: Callable[[Message], None],
        *,
        status_period_s: float = 2.0,
        stale_after_periods: float = 3.0,
        connection: Connection | None = None,
        state_dir: Path | None = None,
        max_queued: int = 64,
    ) -> None:
        self.name = name
        self.config = config
        self.source = config.source
        self._emit = emit
        self.status_period_s = status_period_s
        self.stale_after_periods = stale_after_periods
        self._connection = connection
        self.state_dir = state_dir
        self._requests: queue.Queue[Request] = queue.Queue()
        self.max_queued = max_queued
        self._queued = 0  # client requests queued, not yet taken (bounded by max_queued)
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = InstrumentState.DISCONNECTED
        self.state_message = ""
        self.restarts = 0
        self.errors = 0
        self.last_error = ""  # why the thread last died, for the supervisor
        self._polls: list[PollState] = []
        # Targets named in the config are known before the first connection, so a
        # request for one is queued (and answered) instead of refused as unknown.
        self._specs = Specs({}, {}, MappingProxyType({
            f"{self.source}/{item.target or item.spec}": TargetInfo(
                f"{self.source}/{item.target or item.spec}", kind, item.spec)
            for kind, items in ((TargetKind.CONTROL, config.controls),
                                (TargetKind.ACTION, config.actions))
            for item in items or ()
        }))
        self._next_status = 0.0
        self._backoff = config.reconnect.initial_s
        self._reply_errors = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread (and restart it if it died)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_guarded, name=f"worker-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._requests.put(Request("wake"))
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def targets(self) -> Mapping[str, TargetInfo]:
        """The targets this worker serves (a read-only snapshot; any thread)."""
        return self._specs.targets

    def submit(self, request: Request, *, internal: bool = False) -> None:
        """Queue a request for the worker thread (any thread may call this).

        Raises:
            Busy: ``max_queued`` client requests are already waiting (the daemon's
                own ``internal`` requests, e.g. interlock actions, always queue).
        """
        if not internal:
            with self._queued_lock:
                if self._queued >= self.max_queued:
                    raise Busy(f"{self.name} is busy: {self._queued} requests are waiting; "
                               "try again")
                self._queued += 1
            request.counted = True
        self._requests.put(request)

    def _take(self, timeout_s: float | None) -> Request | None:
        """The next queued request, waiting up to ``timeout_s`` (0: do not wait)."""
        try:
            request = (self._requests.get(timeout=timeout_s) if timeout_s
                       else self._requests.get_nowait())
        except queue.Empty:
            return None
        if request.counted:
            with self._queued_lock:
                self._queued -= 1
        return request

    # ---- the thread --------------------------------------------------------------------------

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported; the daemon's supervisor restarts the worker
            log.exception("worker %s died", self.name)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._set_state(InstrumentState.ERROR, f"worker died: {exc!r}", force=True)
        finally:
            self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            failpoint(f"worker:{self.name}")
            disconnected = self._connection is None or not self._connection.connected
            if disconnected and not self._try_connect():
                self._back_off()
                continue
            if not self._serve_once():
                self._back_off()

    def _back_off(self) -> None:
        """Wait before the next connection attempt; the wait doubles until a poll succeeds."""
        self._wait_serving_errors(self._backoff)
        self._backoff = min(self._backoff * 2, self.config.reconnect.max_s)

    def _try_connect(self) -> bool:
        self._set_state(InstrumentState.RECONNECTING if self.state is not
                        InstrumentState.DISCONNECTED else InstrumentState.DISCONNECTED,
                        f"connecting to {self.config.resource}")
        try:
            if self._connection is None:
                driver = load_driver(self.config.driver)
                options = dict(self.config.options)
                if getattr(driver, "KEEPS_STATE", False) and self.state_dir is not None:
                    options.setdefault("state_file", str(self.state_dir / f"{self.name}.json"))
                self._connection = Connection(driver, self.config.resource, **options)
            instrument = self._connection.connect()
            for method in self.config.on_connect:
                getattr(instrument, method)()
            # After on_connect: a gauge controller that streams at power-up is stopped first.
            self._connection.identify()
            self._apply_setup(instrument)
            self._learn(instrument)
        except Exception as exc:  # any failure to connect is reported and retried
            self._close()
            self._set_state(InstrumentState.RECONNECTING,
                            f"cannot connect to {self.config.resource}: {_describe(exc)}; "
                            f"retry in {self._backoff:.1f} s")
            return False
        self._set_state(InstrumentState.CONNECTED, f"connected to {self.config.resource}")
        return True

    def _apply_setup(self, instrument: Any) -> None:
        """Set the config's ``setup`` values and read each back (hardware backstops).

        Raises:
            ControlError: a value does not hold (the connection attempt fails, so
                polling never starts on an instrument whose backstop is not set).
        """
        if not self.config.setup:
            return
        controls = {s.name: s for s in instrument.control_specs()}
        for name, value in self.config.setup.items():
            spec = controls.get(name)
            if spec is None:
                raise ControlError(f"{self.name}: setup names {name!r}, which the driver "
                                   f"cannot set; it has {', '.join(sorted(controls))}")
            result = self._enforce(spec, value)
            log.info("%s: setup %s = %r (read back %r)", self.name, name, value,
                     result["value"])

    def _learn(self, instrument: Any) -> None:
        """Map the driver's specs to the config's channel and target names."""
        polls = {s.name: s for s in instrument.poll_specs()}
        controls = {s.name: s for s in instrument.control_specs()}
        actions = {s.name: s for s in instrument.action_specs()}
        now = time.monotonic()
        previous = {p.channel: p for p in self._polls}
        self._polls = []
        chosen = self.config.poll
        if chosen is None:
            chosen = [PollConfig(spec=name) for name in polls]
        for item in chosen:
            if item.spec not in polls:
                raise ControlError(f"{self.name}: driver has no poll spec {item.spec!r}; "
                                   f"it has {', '.join(sorted(polls))}")
            spec = polls[item.spec]
            channel = item.channel or spec.name
            old = previous.get(channel)
            self._polls.append(PollState(
                spec=spec, channel=channel, period_s=item.period_s or spec.period_s,
                units=item.units if item.units is not None else spec.unit, next_due=now,
                last_good=old.last_good if old else now,
                stale_s=item.stale_s or self.stale_after_periods * (item.period_s or spec.period_s),
            ))
        chosen_controls: dict[str, ControlSpec] = {}
        chosen_actions: dict[str, ActionSpec] = {}
        targets: dict[str, TargetInfo] = {}
        for kind, config_items, specs in (
                (TargetKind.CONTROL, self.config.controls, controls),
                (TargetKind.ACTION, self.config.actions, actions)):
            names = ([(c.spec, c.target or c.spec) for c in config_items]
                     if config_items is not None else [(n, n) for n in specs])
            for spec_name, target_name in names:
                if spec_name not in specs:
                    raise ControlError(f"{self.name}: driver has no {kind} {spec_name!r}; "
                                       f"it has {', '.join(sorted(specs)) or 'none'}")
                target = f"{self.source}/{target_name}"
                spec_obj = specs[spec_name]
                if isinstance(spec_obj, ControlSpec):
                    chosen_controls[target] = spec_obj
                    targets[target] = TargetInfo(target, kind, spec_name, spec_obj.unit,
                                                 spec_obj.allowed)
                else:
                    assert isinstance(spec_obj, ActionSpec)
                    chosen_actions[target] = spec_obj
                    targets[target] = TargetInfo(target, kind, spec_name,
                                                 params=tuple(spec_obj.params), doc=spec_obj.doc)
        # One assignment: a reader in another thread sees the old table or the new, never half.
        self._specs = Specs(MappingProxyType(chosen_controls), MappingProxyType(chosen_actions),
                            MappingProxyType(targets))

    def _serve_once(self) -> bool:
        """Serve one request and the due polls; False after a link fault (link closed)."""
        now = time.monotonic()
        next_due = min((p.next_due for p in self._polls), default=now + 0.5)
        wait = max(0.0, min(next_due - now, self._next_status - now, 0.5))
        request = self._take(wait)
        try:
            if request is not None:
                self._execute(request)
            self._poll_due()
        except Exception as exc:  # I/O trouble: report, drop the link, reconnect with backoff
            self.errors += 1
            # The data stop being fresh now: say so with the reason, then try again.
            self._set_state(InstrumentState.STALE, f"no fresh data: {_describe(exc)}",
                            force=True)
            self._close()
            self._set_state(InstrumentState.RECONNECTING,
                            f"reconnecting after: {_describe(exc)}; retry in "
                            f"{self._backoff:.1f} s")
            return False
        self._check_stale()
        if time.monotonic() >= self._next_status:
            self._set_state(self.state, self.state_message, force=True)
        return True

    def _poll_due(self) -> None:
        for poll in self._polls:
            now = time.monotonic()
            if now < poll.next_due:
                continue
            spec = poll.spec
            if spec.fresh is not None:
                try:
                    fresh = spec.fresh()
                except Exception as exc:
                    self._read_failed(poll, classify_fault(exc, instrument=self.name,
                                                           command=f"fresh {spec.name}"))
                    continue
                if not fresh:
                    poll.next_due = now + min(poll.period_s / 4, FRESH_RECHECK_S)
                    continue
            t_ns = time.time_ns()
            poll.next_due = max(poll.next_due + poll.period_s, time.monotonic())
            try:
                samples = spec.sample(self.name)
            except InstrumentError as exc:
                self._read_failed(poll, exc)
                continue
            self._reply_errors = 0
            self._backoff = self.config.reconnect.initial_s  # the link works: start afresh
            if not samples:
                continue
            poll.last_good = time.monotonic()
            if poll.stale_reported:
                poll.stale_reported = False
                self._set_state(InstrumentState.CONNECTED, f"{poll.channel} is fresh again",
                                force=True)
            for msg in self._messages(poll, samples, t_ns):
                self._emit(msg)
            self._note_verdict(poll, samples[-1].quality, samples[-1].note)

    def _read_failed(self, poll: PollState, exc: InstrumentError) -> None:
        """A read raised: a link fault propagates (reconnect); a bad reply is published."""
        if isinstance(exc, InstrumentConnectionError):
            raise exc
        self._reply_errors += 1
        self.errors += 1
        if self._reply_errors >= REPLY_ERRORS_BEFORE_RECONNECT:
            raise InstrumentConnectionError(
                f"{self._reply_errors} malformed replies in a row (last: {exc}); "
                "reopening the link", instrument=self.name) from exc
        note = str(exc)
        if poll.spec.kind is PollKind.SCALAR:
            self._emit(self._messages(poll, [Reading(float("nan"), Quality.INVALID,
                                                     note=note)], time.time_ns())[0])
        self._note_verdict(poll, Quality.INVALID, note)

    def _note_verdict(self, poll: PollState, quality: int, note: str) -> None:
        """Report in the instrument's status when a channel turns bad or good again."""
        verdict = f"{describe_quality(quality)}: {note}" if is_bad(quality) else ""
        if verdict == poll.flagged:
            return
        was_bad, poll.flagged = bool(poll.flagged), verdict
        if verdict:
            self._set_state(self.state, f"{poll.channel} flagged {verdict}", force=True)
        elif was_bad:
            self._set_state(self.state, f"{poll.channel} reads ok again", force=True)

    def _messages(self, poll: PollState, samples: list[Reading] | list[WaveRecord],
                  t_poll: int) -> list[Message]:
        """Messages for one poll's samples: records one each; scalars batched by verdict."""
        meta = {"instrument": self.name, "spec": poll.spec.name}
        out: list[Message] = []
        if poll.spec.kind is PollKind.WAVEFORM:
            for rec in samples:
                assert isinstance(rec, WaveRecord)
                out.append(messages.record(self.source, poll.channel, rec, units=poll.units,
                                           t_default=t_poll, meta=meta))
            return out
        run: list[Reading] = []
        for reading in samples:
            assert isinstance(reading, Reading)
            if run and (reading.quality, reading.note) != (run[0].quality, run[0].note):
                out.append(self._scalar_message(poll, run, t_poll, meta))
                run = []
            run.append(reading)
        if run:
            out.append(self._scalar_message(poll, run, t_poll, meta))
        return out

    def _scalar_message(self, poll: PollState, run: list[Reading], t_poll: int,
                        meta: dict[str, Any]) -> Message:
        first = run[0]
        extra = {**meta, "note": first.note} if first.note else meta
        if len(run) == 1:
            return messages.scalar(self.source, poll.channel, first.value, units=poll.units,
                                   t=t_poll if first.t_ns is None else first.t_ns,
                                   quality=int(first.quality), meta=extra)
        return messages.scalar_batch(
            self.source, poll.channel,
            [t_poll if r.t_ns is None else r.t_ns for r in run], [r.value for r in run],
            units=poll.units, quality=int(first.quality), meta=extra)

    def _check_stale(self) -> None:
        now = time.monotonic()
        for poll in self._polls:
            if not poll.stale_reported and now - poll.last_good > poll.stale_s:
                poll.stale_reported = True
                self._set_state(InstrumentState.STALE,
                                f"{poll.channel}: no fresh value for {now - poll.last_good:.1f} s",
                                force=True)

    # ---- requests ----------------------------------------------------------------------------

    def _wait_serving_errors(self, seconds: float) -> None:
        """Wait out a backoff, answering requests with 'not connected' meanwhile."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            request = self._take(min(left, 0.2))
            if request is None:
                continue
            if request.op == "describe":
                request.reply({"ok": True, "targets": self._describe_targets(False)})
            elif request.op != "wake":
                request.reply({"ok": False, "error": f"{self.name} is not connected "
                                                     f"({self.state_message})"})

    def _execute(self, request: Request) -> None:
        if request.op == "wake":
            return
        try:
            result = self._perform(request)
        except InstrumentConnectionError as exc:
            request.reply({"ok": False, "error": f"{request.target}: {exc}"})
            raise  # the link failed: the caller reconnects
        except QupdaqError as exc:  # refused, or the instrument's reply made no sense
            request.reply({"ok": False, "error": str(exc)})
        except Exception as exc:  # a driver bug: answer it, keep the link
            log.exception("%s: %s %s failed", self.name, request.op, request.target)
            request.reply({"ok": False, "error": f"{request.target}: {_describe(exc)}"})
        else:
            self._backoff = self.config.reconnect.initial_s  # the link works: start afresh
            request.reply({"ok": True, **result})

    def _perform(self, request: Request) -> dict[str, Any]:
        if request.op == "describe":
            return {"targets": self._describe_targets(True)}
        if request.op in ("get", "set", "enforce"):
            spec = self._specs.controls.get(request.target)
            if spec is None:
                raise ControlError(f"{request.target}: no such control target on {self.name}")
            if request.op == "get":
                return {"value": _jsonable(spec.read_back(self.name))}
            if request.op == "enforce":
                return self._enforce(spec, request.value)
            return {"value": _jsonable(spec.apply(request.value, self.name))}
        if request.op == "call":
            action = self._specs.actions.get(request.target)
            if action is None:
                raise ControlError(f"{request.target}: no such action on {self.name}")
            return {"value": _jsonable(action.invoke(self.name, **request.kwargs))}
        raise ControlError(f"unknown operation {request.op!r}")

    def _enforce(self, spec: ControlSpec, value: Any) -> dict[str, Any]:
        """Set ``value`` and read it back until it holds (a safety action).

        Raises:
            ControlError: the value did not hold after :data:`ENFORCE_ATTEMPTS` tries.
        """
        sent = spec.apply(value, self.name)
        if spec.get is None:
            return {"value": _jsonable(sent), "verified": False}
        readback: Any = None
        for attempt in range(ENFORCE_ATTEMPTS):
            if attempt:
                spec.apply(value, self.name)
            readback = spec.read_back(self.name)
            if _same_setting(readback, sent):
                return {"value": _jsonable(readback), "verified": True, "attempts": attempt + 1}
        raise ControlError(f"{self.name} {spec.name}: set {_jsonable(sent)!r} but it reads "
                           f"back {_jsonable(readback)!r} after {ENFORCE_ATTEMPTS} attempts")

    def _describe_targets(self, read_values: bool) -> list[dict[str, Any]]:
        out = []
        for info in self.targets.values():
            item: dict[str, Any] = {
                "target": info.target, "kind": info.kind, "instrument": self.name,
                "unit": info.unit, "allowed": info.allowed, "params": list(info.params),
                "doc": info.doc,
            }
            spec = self._specs.controls.get(info.target)
            if read_values and spec is not None and spec.get is not None:
                try:
                    item["value"] = _jsonable(spec.get())
                except Exception as exc:  # listing must not fail because one read did
                    item["value_error"] = _describe(exc)
            out.append(item)
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def _set_state(self, state: InstrumentState, message: str, force: bool = False) -> None:
        changed = state is not self.state or message != self.state_message
        self.state, self.state_message = state, message
        if changed:
            log.log(logging.WARNING if state in (InstrumentState.ERROR, InstrumentState.STALE)
                    else logging.INFO, "%s: %s (%s)", self.name, state.value, message)
        if changed or force:
            self._next_status = time.monotonic() + self.status_period_s
            self._emit(messages.status(self.source, self.name, state, message,
                                       resource=self.config.resource, errors=self.errors))


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if isinstance(exc, QupdaqError) else f"{exc.__class__.__name__}: {text}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    if isinstance(value, int | float | str | bool | list | dict) or value is None:
        return value
    return str(value)


def _same_setting(readback: Any, sent: Any) -> bool:
    """Whether a read-back value is the value sent (numbers to a relative 1e-6)."""
    a, b = _jsonable(readback), _jsonable(sent)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=1e-12))
    return bool(a == b)
