"""The run engine: lease, documents, repeatable steps, suspend and resume, progress, safe stop.

:class:`RunEngine` runs one recipe (:mod:`daq.runs.recipe`) against a
running daemon, in this order:

1. lease every target the procedure drives (others' sets are refused with the
   run's name; a keeper thread renews the lease, a crashed run's lease expires);
2. read every setting back (``Lab.list()``) into the start document; send it,
   with the recipe and the lab config as attachments;
3. start watching the recipe's conditions (:mod:`daq.runs.conditions`);
4. run the procedure: it does its work in :meth:`Run.step` s. A step during
   which a condition went bad is thrown away; the run pauses (a ``pause``
   document), waits until every condition has been good for ``settle_s``,
   resumes (``resume``) and does the step again. Steps report progress (a
   terminal bar with ETA, ``run/<id>/progress`` on the bus);
5. analyse (the same code :func:`daq.runs.reanalyze` runs on the stored file),
   send the result and the PNG figures;
6. whatever happened: leave the recipe's safe state (bias, modulation,
   heaters), send the stop document (completed, aborted or failed, with the
   points of each stream), wait for the logger's acknowledgement, release
   the lease.

Ctrl-C (SIGINT) or SIGTERM asks the run to stop at its next checkpoint (a
second Ctrl-C interrupts at once); either way the safe state is applied and
the run is stored as aborted.

Interface: :class:`RunEngine` (``run(recipe) -> RunOutcome``), :class:`Run`
(what a procedure is given), :class:`RunOutcome`, :class:`RunAborted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypeVar

import numpy as np
from matplotlib.figure import Figure

from daq.client import Lab, LeaseHandle
from daq.config import LabConfig
from daq.errors import BusError, ControlError, QupdaqError
from daq.messages import Message, now_ns
from daq.runs import documents as docs
from daq.runs.conditions import Watcher
from daq.runs.data import RunData
from daq.runs.documents import JsonObject, Pause, Phase, Progress, RunStatus, StartDocument
from daq.runs.outbound import RunOutbound
from daq.runs.params import Detector, SafeState
from daq.runs.progress import ProgressBar
from daq.runs.recipe import Recipe

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a paused or waiting run looks at its conditions and its stop flag, s.
POLL_S = 0.1
#: Progress messages at most this often, s.
PROGRESS_EVERY_S = 0.5


class RunAborted(QupdaqError):
    """The run was asked to stop (Ctrl-C, SIGTERM) or a pause lasted too long."""


class StepInterrupted(Exception):
    """A condition went bad during a step: it is thrown away and done again."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run went.

    Attributes:
        run_id: the run's id.
        status: completed, aborted or failed.
        reason: why it was not completed ("" when it was).
        result: the analysis' numbers (empty when it did not get that far).
        points: points per stream.
        pauses: the suspensions, in order.
        archived: the logger acknowledged every document.
        data: what was measured.
    """

    run_id: str
    status: RunStatus
    reason: str
    result: JsonObject
    points: dict[str, int]
    pauses: tuple[Pause, ...]
    archived: bool
    data: RunData


class Run:
    """What a procedure works with: the lab (through the run's lease), steps, data, results.

    Created by :class:`RunEngine`; procedures call its methods from the main thread.
    """

    def __init__(self, engine: RunEngine, run_id: str, recipe: Recipe, lab: Lab) -> None:
        self.engine = engine
        self.run_id = run_id
        self.recipe = recipe
        self.lab = lab
        self.config = engine.config
        self.detector: Detector = recipe.detector
        self.data = RunData()
        self.result: JsonObject = {}
        self.figures: list[tuple[str, str, Figure]] = []
        self.pauses: list[Pause] = []
        self._indices: dict[str, int] = {}
        self._pending: list[Callable[[], None]] | None = None
        self._depth = 0
        self._step_label = ""
        self._done = 0
        self._total = 0
        self._fixed_plan = False
        self._t_start = time.monotonic()
        self._active_s = 0.0  # time spent in completed steps (ETA excludes pauses)
        self._last_progress = 0.0
        self.record_readers: list[object] = []

    # ---- the lab, through the lease -------------------------------------------------------

    def set(self, target: str, value: object) -> object:
        """Set a target (carries the run's lease)."""
        self.checkpoint()
        return self.lab.set(target, value)

    def get(self, target: str) -> object:
        """Read a target back from its instrument."""
        return self.lab.get(target)

    def call(self, action: str, /, **args: object) -> object:
        """Run an action (carries the run's lease); its arguments by name (``target`` too)."""
        self.checkpoint()
        return self.lab.request("call", target=action, args=args)["value"]

    # ---- steps, waiting, stopping ---------------------------------------------------------

    def checkpoint(self) -> None:
        """Raise :class:`RunAborted` when a stop was asked; inside a step, raise
        :class:`StepInterrupted` when a condition is bad (the step is done again)."""
        self.engine.check_stop()
        self._maybe_progress()
        if self._depth and self.engine.watcher.current() is not None:
            raise StepInterrupted(self.engine.watcher.current())

    @contextlib.contextmanager
    def exempt(self, *streams: str) -> Iterator[None]:
        """Suspend the conditions on ``streams`` while the procedure moves them on purpose."""
        with self.engine.watcher.exempt(*streams):
            yield

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass (settling after a change) while watching stop and conditions."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.checkpoint()
            time.sleep(min(left, POLL_S))

    def step(self, label: str, fn: Callable[[], T], *, count: bool = True) -> T:
        """Do ``fn`` as one repeatable step.

        Before it starts, every condition must be good (else the run pauses).
        What it emits is kept back until it ends; if a condition was bad at any
        time during it, that is thrown away, the run pauses until the
        conditions have been good for the settle time, and ``fn`` runs again.
        Steps inside a step are part of it.

        Args:
            label: what the step does (progress, pause records).
            fn: the work; it sets what it needs itself, so it can be repeated.
            count: the step counts towards the progress total.
        """
        if self._depth:
            return fn()
        verdict = None
        while True:
            self._wait_until_good(label, verdict)
            t0 = time.monotonic()
            self._pending = []
            self._depth = 1
            self._step_label = label
            interrupted = False
            try:
                value = fn()
            except StepInterrupted:
                interrupted = True
            finally:
                self._depth = 0
            verdict = self.engine.watcher.bad_since(t0)
            if interrupted and verdict is None:
                verdict = self.engine.watcher.current()
            if interrupted or verdict is not None:
                log.info("step %r interrupted (%s): repeating it", label,
                         verdict.reason if verdict else "condition")
                self._pending = None
                continue
            pending, self._pending = self._pending, None
            for emit in pending:
                emit()
            self._active_s += time.monotonic() - t0
            if count:
                self._done += 1
            self._maybe_progress(force=True)
            return value

    def _wait_until_good(self, label: str, verdict: object | None) -> None:
        watcher = self.engine.watcher
        settle = self.recipe.suspend.settle_s
        current = watcher.current()
        if current is None and verdict is None:
            return
        first = current or verdict
        condition = getattr(first, "condition", "condition")
        reason = getattr(first, "reason", "")
        pause = Pause(now_ns(), None, str(condition), str(reason), label)
        index = len(self.pauses)
        self.pauses.append(pause)
        self.engine.send(docs.pause_message(self.run_id, index, pause))
        log.warning("run paused at %r: %s (%s)", label, condition, reason)
        started = time.monotonic()
        self._progress(Phase.PAUSED, f"paused: {reason}"[:200])
        while watcher.good_for() < settle:
            self.engine.check_stop()
            if time.monotonic() - started > self.recipe.suspend.max_pause_s:
                raise RunAborted(f"paused for more than {self.recipe.suspend.max_pause_s:g} s "
                                 f"({condition}: {reason})")
            if time.monotonic() - self._last_progress > 1.0:
                now_bad = watcher.current()
                self._progress(Phase.PAUSED, f"paused: {now_bad.reason if now_bad else 'settling'}"
                               [:200])
            time.sleep(POLL_S)
        pause = dataclasses.replace(pause, t_resume_ns=now_ns())
        self.pauses[index] = pause
        self.engine.send(docs.resume_message(self.run_id, index, pause))
        log.info("run resumed after %.1f s: repeating %r",
                 (pause.t_resume_ns or 0) / 1e9 - pause.t_pause_ns / 1e9, label)

    # ---- progress --------------------------------------------------------------------------

    def plan(self, total_steps: int, *, fixed: bool = False) -> None:
        """Say how many counted steps the run will take (for the ETA); may be called again.

        ``fixed``: the total is known for the whole run (a procedure that nests others):
        the nested procedures' :meth:`add_steps` are then already counted.
        """
        self._total = max(int(total_steps), self._done)
        self._fixed_plan = self._fixed_plan or fixed
        self.engine.bar.reset(self._total)
        self._maybe_progress(force=True)

    def add_steps(self, n: int) -> None:
        """Add ``n`` steps to the plan (unless a fixed plan counts them already)."""
        if not self._fixed_plan:
            self.plan(self._total + n)

    def _eta(self) -> float | None:
        if not self._done or not self._total:
            return None
        return self._active_s / self._done * max(0, self._total - self._done)

    def _maybe_progress(self, force: bool = False) -> None:
        if force or time.monotonic() - self._last_progress > PROGRESS_EVERY_S:
            self._progress(Phase.RUNNING, self._step_label)

    def _progress(self, phase: Phase, step: str) -> None:
        self._last_progress = time.monotonic()
        progress = Progress(self._done, self._total, time.monotonic() - self._t_start,
                            self._eta(), step, phase)
        self.engine.send(docs.progress_message(self.run_id, progress), archive=False)
        self.engine.bar.update(progress)

    # ---- data ------------------------------------------------------------------------------

    def emit(self, stream: str, values: Mapping[str, float], units: Mapping[str, str]) -> None:
        """One point of ``stream`` (kept back until the step ends well)."""
        docs.check_stream_name(stream)
        vals = {k: float(v) for k, v in values.items()}
        unit_map = dict(units)

        def send() -> None:
            index = self._indices.get(stream, 0)
            self._indices[stream] = index + 1
            msg = docs.point_message(self.run_id, stream, index, vals, unit_map)
            self.data.add_point(stream, int(msg.meta["t"]), _finite_values(vals), unit_map)
            self.engine.send(msg)

        self._defer(send)

    def emit_record(self, stream: str, record: Message, tags: Mapping[str, float] | None = None,
                    tag_units: Mapping[str, str] | None = None) -> None:
        """A daemon's record as the next record of ``stream`` (kept back until the step ends)."""
        docs.check_stream_name(stream)
        tag_values = {k: float(v) for k, v in (tags or {}).items()}
        units = dict(tag_units or {})

        def send() -> None:
            index = self._indices.get(stream, 0)
            self._indices[stream] = index + 1
            msg = docs.record_message(self.run_id, stream, index, record, tag_values, units)
            meta = msg.meta
            assert msg.data is not None
            self.data.add_record(stream, msg.data, scale=float(meta["scale"]),
                                 offset=float(meta["offset"]), dt_s=float(meta["dt"]),
                                 presamples=int(meta["presamples"]), units=msg.units,
                                 t0_ns=int(meta["t0"]),
                                 tags=_finite_values(tag_values), tag_units=units)
            self.engine.send(msg)

        self._defer(send)

    def _defer(self, send: Callable[[], None]) -> None:
        if self._pending is not None:
            self._pending.append(send)
        else:
            send()

    def add_figure(self, name: str, title: str, figure: Figure) -> None:
        """A figure to store with the run (as PNG) once the analysis is done."""
        self.figures.append((name, title, figure))


class RunEngine:
    """Runs recipes against a daemon (see the module docstring).

    Args:
        config: the lab config.
        lab: a client of the daemon (default: one made from ``config``).
        state_dir: where the run's spool lives (default: beside the daemon's state).
        progress_bar: draw a progress bar on the terminal (stderr).
        flush_s: how long to wait for the logger's acknowledgements at the end, s.
        handle_signals: stop safely on SIGINT / SIGTERM (main thread only).
    """

    def __init__(self, config: LabConfig, *, lab: Lab | None = None,
                 state_dir: Path | None = None, progress_bar: bool = True,
                 flush_s: float = 20.0, handle_signals: bool = True) -> None:
        self.config = config
        self._own_lab = lab is None
        self.lab = lab or Lab(config, client=f"run@{os.getpid()}", timeout_s=15.0)
        self.state_dir = state_dir
        self.flush_s = flush_s
        self.handle_signals = handle_signals
        self.bar = ProgressBar(enabled=progress_bar)
        self.watcher = Watcher(config, [])
        self.outbound: RunOutbound | None = None
        self._stop = threading.Event()
        self._stop_reason = ""
        self._signals = 0

    # ---- stop ------------------------------------------------------------------------------

    def request_stop(self, reason: str = "stopped by the operator") -> None:
        """Ask the run to stop at its next checkpoint (any thread)."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    def check_stop(self) -> None:
        """Raise :class:`RunAborted` when a stop was asked."""
        if self._stop.is_set():
            raise RunAborted(self._stop_reason)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: now (the safe state still follows)
        print(f"\n{name}: stopping at the next checkpoint; the safe state follows "
              "(Ctrl-C again to interrupt at once)", file=sys.stderr, flush=True)
        self.request_stop(f"{name} (stopped by the operator)")

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    # ---- sending ---------------------------------------------------------------------------

    def send(self, msg: Message, *, archive: bool = True) -> None:
        """Hand a document to the run's outbound thread."""
        if self.outbound is not None:
            self.outbound.put(msg, archive=archive)

    # ---- the run ---------------------------------------------------------------------------

    def run(self, recipe: Recipe) -> RunOutcome:
        """Run ``recipe`` (validated: :func:`daq.runs.recipe.check_recipe`) to its end.

        Returns:
            The outcome; a run that was aborted or failed is stored as such too.

        Raises:
            BusError / ControlError: the run could not even start (no daemon, no
                lease, no spool); nothing was moved then.
        """
        from daq.runs.procedures import procedure_for  # the procedures import this module

        proc = procedure_for(recipe.procedure)
        params = recipe.params()
        targets = sorted(proc.targets(recipe))
        run_id = docs.new_run_id(recipe.name)
        holder = f"run '{run_id}' ({recipe.procedure.value}) by {recipe.operator}"
        lease = self.lab.lease(targets, holder=holder, ttl_s=recipe.lease_ttl_s)
        keeper = _LeaseKeeper(self.config, self.lab, lease)
        keeper.start()
        run = Run(self, run_id, recipe, self.lab)
        status, reason = RunStatus.COMPLETED, ""
        safe_lines: list[str] = []
        archived = False
        try:
            self.outbound = RunOutbound(self.config, self.state_dir)
            self.outbound.start()
            start = self._start_document(run_id, recipe, targets)
            self.send(docs.start_message(start))
            for name, text in (("recipe.yaml", recipe.text), ("lab.yaml", _read(
                    self.config.source))):
                for msg in docs.attach_messages(run_id, name, text):
                    self.send(msg)
            log.info("run %s started: %s on %s, leased %s", run_id, recipe.procedure.value,
                     recipe.sample or "?", ", ".join(targets))
            self.watcher = Watcher(self.config, recipe.suspend.conditions)
            self.watcher.start()
            with self._signal_handlers():
                try:
                    proc.measure(run, params)
                    self.check_stop()
                    analysis = proc.analyze(run.data, params, recipe.detector)
                    run.result = analysis.result
                    for name, title, fig in analysis.figures:
                        run.add_figure(name, title, fig)
                except (RunAborted, KeyboardInterrupt) as exc:
                    status = RunStatus.ABORTED
                    reason = str(exc) or "interrupted (Ctrl-C)"
                except Exception as exc:
                    log.exception("run %s failed", run_id)
                    status, reason = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
                finally:
                    safe_lines = apply_safe_state(self.lab, recipe.detector, recipe.safe_state)
            if run.result:
                self.send(docs.result_message(run_id, run.result))
            for name, title, fig in run.figures:
                self.send(docs.plot_message(run_id, name, title, _png(fig)))
            stop = docs.StopDocument(status, reason, now_ns(), run.data.counts(),
                                     len(run.pauses), sum(
                                         ((p.t_resume_ns or now_ns()) - p.t_pause_ns) / 1e9
                                         for p in run.pauses), tuple(safe_lines))
            self.send(docs.stop_message(run_id, stop))
            self.bar.close(status.value)
        finally:
            self.watcher.stop()
            if self.outbound is not None:
                archived = self.outbound.close(self.flush_s)
            keeper.stop()
            with contextlib.suppress(QupdaqError):
                lease.release()
            if self._own_lab:
                self.lab.close()
        log.info("run %s %s%s", run_id, status.value, f": {reason}" if reason else "")
        return RunOutcome(run_id, status, reason, run.result, run.data.counts(),
                          tuple(run.pauses), archived, run.data)

    def _start_document(self, run_id: str, recipe: Recipe, targets: list[str]) -> StartDocument:
        settings: list[JsonObject] = []
        for item in self.lab.list():
            settings.append({k: docs.to_json(v) if not isinstance(v, str) else v
                             for k, v in item.items() if k != "doc"})
        import scipy  # noqa: PLC0415 - versions only

        from daq import __name__ as package  # noqa: PLC0415
        software = {"python": platform.python_version(), "numpy": np.__version__,
                    "scipy": scipy.__version__, "qupdaq": _version(package)}
        return StartDocument(
            run_id=run_id, procedure=recipe.procedure.value, recipe_name=recipe.name,
            recipe_path=recipe.path, operator=recipe.operator, sample=recipe.sample,
            description=recipe.description, parameters=recipe.params_json(),
            detector=recipe.detector_json(), config_path=self.config.source,
            daemon=self.config.daemon.name, settings=settings, targets=tuple(targets),
            software=software, attachments=("recipe.yaml", "lab.yaml"))


class _LeaseKeeper:
    """Renews the run's lease from its own thread and its own connection to the daemon."""

    def __init__(self, config: LabConfig, lab: Lab, lease: LeaseHandle) -> None:
        self.config = config
        self.control_url = lab.control_url
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        lab = Lab(self.config, control_url=self.control_url, client=f"run-lease@{os.getpid()}",
                  timeout_s=5.0)
        try:
            while not self._stop.wait(self.lease.ttl_s / 4):
                try:
                    lab.request("renew", lease=self.lease.token)
                except (BusError, ControlError) as exc:
                    log.error("renewing the run's lease failed: %s", exc)
        finally:
            lab.close()


def apply_safe_state(lab: Lab, detector: Detector, safe: SafeState) -> list[str]:
    """Leave the lab as the recipe says (each action tried even if another fails).

    Returns:
        One line per action: what was done, or why it failed.
    """
    w = detector.wiring
    actions: list[tuple[str, Callable[[], object]]] = []
    if safe.modulation_off:
        actions.append((f"{w.modulation('output')} = False",
                        lambda: lab.set(w.modulation("output"), False)))
    if safe.trigger_gen_off:
        actions.append((f"{w.trigger_gen('output')} = False",
                        lambda: lab.set(w.trigger_gen("output"), False)))
    if safe.bias_v is not None:
        bias = safe.bias_v
        actions.append((f"{w.bias} = {bias:g} V", lambda: lab.set(w.bias, bias)))
    if safe.mxc_setpoint_k is not None:
        setpoint = safe.mxc_setpoint_k
        actions.append((f"{w.mxc_setpoint} = {setpoint:g} K",
                        lambda: lab.set(w.mxc_setpoint, setpoint)))
    if safe.heater_off:
        actions.append((f"{w.heater_range} = 0 (heater off)",
                        lambda: lab.set(w.heater_range, 0.0)))
    lines = []
    for what, action in actions:
        for attempt in range(3):
            try:
                action()
                lines.append(what)
                break
            except QupdaqError as exc:
                if attempt == 2:
                    lines.append(f"FAILED {what}: {exc}")
                    log.error("safe state: %s failed: %s", what, exc)
    return lines


def _png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    return buffer.getvalue()


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8") if path else ""
    except OSError as exc:
        return f"# could not read {path}: {exc}\n"


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version("qup-daq")
    except metadata.PackageNotFoundError:
        return package


def finite(value: float) -> float | None:
    """``value`` if finite, else None (JSON results)."""
    return value if math.isfinite(value) else None


def _finite_values(values: Mapping[str, float]) -> dict[str, float | None]:
    """What a point's values read back as from its document (non-finite: None)."""
    return {k: finite(v) for k, v in values.items()}
