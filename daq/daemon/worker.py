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

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daq import messages
from daq.daemon.config import InstrumentConfig, PollConfig
from daq.errors import ControlError, QupdaqError
from daq.messages import InstrumentState, Message, Quality
from drivers.common import ActionSpec, Connection, ControlSpec, PollSpec

log = logging.getLogger(__name__)

Reply = Callable[[dict[str, Any]], None]

#: How often a scanner-gated channel is asked whether it has a fresh reading.
FRESH_RECHECK_S = 0.5


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

    op: str  # "get", "set", "call", "describe"
    target: str = ""
    spec: str = ""
    value: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    reply: Reply = lambda result: None  # noqa: E731 - a harmless default sink


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


@dataclass
class TargetInfo:
    """A control or action target as the daemon exposes it."""

    target: str  # source/name
    kind: str  # "control" or "action"
    spec: str
    unit: str = ""
    allowed: str = ""
    params: tuple[str, ...] = ()
    doc: str = ""


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
    ) -> None:
        self.name = name
        self.config = config
        self.source = config.source
        self._emit = emit
        self.status_period_s = status_period_s
        self.stale_after_periods = stale_after_periods
        self._connection = connection
        self._requests: queue.Queue[Request] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = InstrumentState.DISCONNECTED
        self.state_message = ""
        self.restarts = 0
        self.errors = 0
        self._polls: list[PollState] = []
        self._controls: dict[str, ControlSpec] = {}
        self._actions: dict[str, ActionSpec] = {}
        # Targets named in the config are known before the first connection, so a
        # request for one is queued (and answered) instead of refused as unknown.
        self.targets: dict[str, TargetInfo] = {
            f"{self.source}/{item.target or item.spec}": TargetInfo(
                f"{self.source}/{item.target or item.spec}", kind, item.spec)
            for kind, items in (("control", config.controls), ("action", config.actions))
            for item in items or ()
        }
        self._next_status = 0.0
        self._backoff = config.reconnect.initial_s

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

    def submit(self, request: Request) -> None:
        """Queue a request for the worker thread (any thread may call this)."""
        self._requests.put(request)

    # ---- the thread --------------------------------------------------------------------------

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported; the daemon's supervisor restarts the worker
            log.exception("worker %s died", self.name)
            self._set_state(InstrumentState.ERROR, f"worker died: {exc!r}", force=True)
        finally:
            self._close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._connection is None or not self._connection.connected:
                if not self._try_connect():
                    self._wait_serving_errors(self._backoff)
                    self._backoff = min(self._backoff * 2, self.config.reconnect.max_s)
                    continue
                self._backoff = self.config.reconnect.initial_s
            self._serve_once()

    def _try_connect(self) -> bool:
        self._set_state(InstrumentState.RECONNECTING if self.state is not
                        InstrumentState.DISCONNECTED else InstrumentState.DISCONNECTED,
                        f"connecting to {self.config.resource}")
        try:
            if self._connection is None:
                driver = load_driver(self.config.driver)
                self._connection = Connection(driver, self.config.resource,
                                              **self.config.options)
            instrument = self._connection.connect()
            for method in self.config.on_connect:
                getattr(instrument, method)()
            self._learn(instrument)
        except Exception as exc:  # any failure to connect is reported and retried
            self._close()
            self._set_state(InstrumentState.RECONNECTING,
                            f"cannot connect to {self.config.resource}: {_describe(exc)}; "
                            f"retry in {self._backoff:.1f} s")
            return False
        self._set_state(InstrumentState.CONNECTED, f"connected to {self.config.resource}")
        return True

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
        self._controls, self._actions, self.targets = {}, {}, {}
        for kind, config_items, specs in (("control", self.config.controls, controls),
                                          ("action", self.config.actions, actions)):
            names = ([(c.spec, c.target or c.spec) for c in config_items]
                     if config_items is not None else [(n, n) for n in specs])
            for spec_name, target_name in names:
                if spec_name not in specs:
                    raise ControlError(f"{self.name}: driver has no {kind} {spec_name!r}; "
                                       f"it has {', '.join(sorted(specs)) or 'none'}")
                target = f"{self.source}/{target_name}"
                spec_obj = specs[spec_name]
                if isinstance(spec_obj, ControlSpec):
                    self._controls[target] = spec_obj
                    self.targets[target] = TargetInfo(target, kind, spec_name, spec_obj.unit,
                                                      spec_obj.allowed)
                else:
                    assert isinstance(spec_obj, ActionSpec)
                    self._actions[target] = spec_obj
                    self.targets[target] = TargetInfo(target, kind, spec_name,
                                                      params=tuple(spec_obj.params),
                                                      doc=spec_obj.doc)

    def _serve_once(self) -> None:
        now = time.monotonic()
        next_due = min((p.next_due for p in self._polls), default=now + 0.5)
        wait = max(0.0, min(next_due - now, self._next_status - now, 0.5))
        try:
            request = self._requests.get(timeout=wait) if wait > 0 else self._requests.get_nowait()
        except queue.Empty:
            request = None
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
                            f"reconnecting after: {_describe(exc)}")
            return
        self._check_stale()
        if time.monotonic() >= self._next_status:
            self._set_state(self.state, self.state_message, force=True)

    def _poll_due(self) -> None:
        for poll in self._polls:
            now = time.monotonic()
            if now < poll.next_due:
                continue
            spec = poll.spec
            if spec.fresh is not None and not spec.fresh():
                poll.next_due = now + min(poll.period_s / 4, FRESH_RECHECK_S)
                continue
            t_ns = time.time_ns()
            value = spec.read()
            poll.next_due = max(poll.next_due + poll.period_s, time.monotonic())
            poll.last_good = time.monotonic()
            if poll.stale_reported:
                poll.stale_reported = False
                self._set_state(InstrumentState.CONNECTED, f"{poll.channel} is fresh again",
                                force=True)
            self._emit(self._message(poll, value, t_ns))

    def _message(self, poll: PollState, value: Any, t_ns: int) -> Message:
        meta = {"instrument": self.name, "spec": poll.spec.name}
        if poll.spec.kind == "waveform":
            return _waveform_message(self.source, poll.channel, value, t_ns, poll.units, meta)
        number = float(value)
        quality = Quality.OK if np.isfinite(number) else Quality.INVALID
        return messages.scalar(self.source, poll.channel, number, units=poll.units, t=t_ns,
                               quality=quality, meta=meta)

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
            try:
                request = self._requests.get(timeout=min(left, 0.2))
            except queue.Empty:
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
        except QupdaqError as exc:
            request.reply({"ok": False, "error": str(exc)})
            return
        except ValueError as exc:  # a driver validator refused the value
            request.reply({"ok": False, "error": f"{request.target}: {exc}"})
            return
        except Exception as exc:
            request.reply({"ok": False, "error": f"{request.target}: {_describe(exc)}"})
            raise  # an I/O failure: the caller reconnects
        request.reply({"ok": True, **result})

    def _perform(self, request: Request) -> dict[str, Any]:
        if request.op == "describe":
            return {"targets": self._describe_targets(True)}
        if request.op in ("get", "set"):
            spec = self._controls.get(request.target)
            if spec is None:
                raise ControlError(f"{request.target}: no such control target on {self.name}")
            if request.op == "get":
                if spec.get is None:
                    raise ControlError(f"{request.target}: cannot be read back")
                return {"value": _jsonable(spec.get())}
            value = spec.validate(request.value)
            spec.set(value)
            return {"value": _jsonable(value)}
        if request.op == "call":
            action = self._actions.get(request.target)
            if action is None:
                raise ControlError(f"{request.target}: no such action on {self.name}")
            unknown = set(request.kwargs) - set(action.params)
            if unknown:
                raise ControlError(f"{request.target}: unknown parameter(s) "
                                   f"{', '.join(sorted(unknown))}; takes "
                                   f"{', '.join(action.params) or 'none'}")
            return {"value": _jsonable(action.call(**request.kwargs))}
        raise ControlError(f"unknown operation {request.op!r}")

    def _describe_targets(self, read_values: bool) -> list[dict[str, Any]]:
        out = []
        for info in self.targets.values():
            item: dict[str, Any] = {
                "target": info.target, "kind": info.kind, "instrument": self.name,
                "unit": info.unit, "allowed": info.allowed, "params": list(info.params),
                "doc": info.doc,
            }
            spec = self._controls.get(info.target)
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


def _waveform_message(source: str, channel: str, value: Any, t_ns: int, units: str,
                      meta: dict[str, Any]) -> Message:
    """A ``wave`` message from a waveform read.

    Accepts ``(volts, dt)``, or a record object with ``volts`` and ``dt`` (or
    ``sample_interval``). When the object also has the transferred integer
    samples (``raw``) with ``scale`` and ``offset``, those are published
    instead of float volts: exact, and a quarter of the bytes for int16.
    """
    if isinstance(value, tuple) and len(value) == 2:
        return messages.waveform(source, channel, np.asarray(value[0], dtype=np.float64),
                                 dt=float(value[1]), t0=t_ns, units=units, meta=meta)
    volts = getattr(value, "volts", None)
    dt = getattr(value, "dt", None) or getattr(value, "sample_interval", None)
    if volts is None or dt is None:
        raise ControlError("a waveform poll must return (volts, dt) or an object with "
                           ".volts and .dt (or .sample_interval)")
    raw = getattr(value, "raw", None)
    presamples = int(getattr(value, "presamples", 0) or 0)
    if raw is not None and hasattr(value, "scale") and hasattr(value, "offset"):
        return messages.waveform(source, channel, np.asarray(raw), dt=float(dt), t0=t_ns,
                                 scale=float(value.scale), offset=float(value.offset),
                                 presamples=presamples, units=units, meta=meta)
    return messages.waveform(source, channel, np.asarray(volts, dtype=np.float64), dt=float(dt),
                             t0=t_ns, presamples=presamples, units=units, meta=meta)
