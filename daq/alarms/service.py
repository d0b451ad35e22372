"""The alarm service assembled: what ``qupdaq alarms CONFIG`` runs.

Threads, each owning what it uses:

* *evaluation* (cannot be restarted in place: it owns the sockets): a
  :class:`daq.bus.Subscriber` on the live path (the rules' streams, every
  status, the daemons' heartbeats and interlock alarms; late-joining with the
  broker's snapshot), its own :class:`daq.bus.Publisher` for every
  transition (``alarm/<name>/<alarm id>``) and its status
  (``status/<name>/alarms``), its own :class:`daq.reliable.ReliableSender`
  (durable spool in the state directory) to the logger, and the ops ROUTER
  (:mod:`daq.alarms.ops`). It runs the :class:`daq.alarms.engine.AlarmEngine`;
* *notify*: :class:`daq.alarms.notify.Notifier` (Apprise deliveries, retries),
  writing each delivery down in the :class:`daq.alarms.journal.DeliveryJournal`
  (``deliveries.sqlite`` in the state directory) around the send;
* *actions*: :class:`daq.alarms.actions.ActionRunner` (the daemons' control
  endpoints);
* the main thread: :meth:`AlarmService.supervise` with a
  :class:`daq.supervisor.Supervisor` (a dead notify or actions thread is
  restarted; a dead evaluation thread ends the process non-zero with the
  reason) and a :class:`daq.supervisor.RunMarker` (``last_stop`` in the status).

Start: the spool's earlier sessions are handed to the logger first, then the
state is rebuilt from the logger's history (:func:`daq.alarms.store.rebuild`)
and the delivery journal (deliveries the archive never heard of), then the
live path is subscribed (snapshot first), then the ops endpoint is bound. A
logger that does not answer within ``rebuild_timeout_s`` fails the start: an
alarm service that forgot an unacknowledged alarm must not pretend otherwise.
Without a logger (no ``logger`` section, no ``logger_url``) the state lives in
memory only, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from daq import messages
from daq.alarms.actions import ActionRunner, resolve_daemons
from daq.alarms.config import AlarmsConfig
from daq.alarms.engine import AlarmEngine, Outbox
from daq.alarms.journal import DeliveryJournal, JournalEntry
from daq.alarms.notify import Notifier, Plugin, apprise_plugin, check_urls
from daq.alarms.ops import OpError, handle, parse
from daq.alarms.state import AlarmRecord, Transition
from daq.alarms.store import rebuild
from daq.bus import Publisher, Subscriber
from daq.config import LabConfig
from daq.errors import BusError, ConfigError, ControlError
from daq.failpoints import failpoint
from daq.logger.history import HistoryClient, HistoryError
from daq.messages import InstrumentState, Kind, Message
from daq.reliable import ReliableSender
from daq.security import Gatekeeper
from daq.supervisor import RunMarker, Supervisor

log = logging.getLogger(__name__)

#: Live messages taken per loop at most before the ops endpoint and the tick get a turn.
DRAIN = 5000
#: How often the delivery journal forgets what is older than the rebuild window.
JOURNAL_PRUNE_S = 3600.0


@dataclass(frozen=True)
class AlarmEndpoints:
    """Where a started alarm service listens, and what it restored."""

    ops: str
    restored: int
    active: int


def daemon_publishers(lab: LabConfig) -> list[str]:
    """The publisher names of the daemons a lab config describes (the dead-man watches them)."""
    if lab.daemons:
        return [section.daemon.name for section in lab.daemons.values()]
    return [lab.daemon.name] if (lab.instruments or lab.dastard is not None) else []


class AlarmService:
    """The alarm service (see the module docstring).

    Args:
        lab: the whole lab config (its ``alarms`` section is required).
        context: zmq context.
        make_plugin: URL -> Apprise plugin (tests give their own).

    Raises:
        ConfigError: no alarms section, an URL Apprise does not understand, an action's
            daemon that cannot be found.
    """

    def __init__(self, lab: LabConfig, *, context: zmq.Context | None = None,
                 make_plugin: Callable[[str], Plugin] = apprise_plugin) -> None:
        if lab.alarms is None:
            raise ConfigError("no alarms section", file=lab.source, key_path="alarms")
        self.lab = lab
        self.config: AlarmsConfig = lab.alarms
        self.name = self.config.name
        if make_plugin is apprise_plugin:
            check_urls(self.config.notifications, file=lab.source)
        self.action_daemons = resolve_daemons(lab)
        self.daemons = daemon_publishers(lab)
        logger = lab.logger
        self.logger_url = self.config.logger_url or (logger.endpoint if logger else None)
        self.history_url = self.config.history_url or (logger.history_endpoint
                                                       if logger else None)
        self.ctx = context or zmq.Context.instance()
        self.journal = DeliveryJournal(self.config.state_path / "deliveries.sqlite")
        self.notifier = Notifier(self.config.notifications, make_plugin=make_plugin,
                                 journal=self.journal)
        self.actions = ActionRunner(lab, self.action_daemons, service=self.name)
        self.supervisor = Supervisor(f"alarms {self.name}", on_restart=lambda part, why: log.error(
            "alarms: the %s thread died (%s) and was restarted", part, why))
        self.run_marker = RunMarker(self.config.state_path / "alarms.run")
        self.engine: AlarmEngine | None = None
        self.endpoint = ""
        self.restored = 0
        self.published = 0
        self.ops_requests = 0
        self.ops_refused = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._pending_out = Outbox()  # what the restore asks for, dispatched by the loop

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float | None = None) -> AlarmEndpoints:
        """Hand the spool to the logger, rebuild, subscribe, bind; return the endpoints.

        Raises:
            BusError: the logger did not answer in time, or an endpoint cannot be bound.
        """
        last_stop = self.run_marker.begin()
        if last_stop.startswith("not clean"):
            log.warning("the previous run %s", last_stop.removeprefix("not clean: "))
        self._thread = threading.Thread(target=self._main, name="alarms-eval", daemon=True)
        self._thread.start()
        wait = timeout_s if timeout_s is not None else 2 * self.config.rebuild_timeout_s + 30
        if not self._ready.wait(wait):
            self._stop.set()
            raise BusError(f"alarm service did not start within {wait:g} s")
        if self._error is not None:
            error = self._error
            raise error if isinstance(error, BusError | ConfigError) else BusError(str(error))
        self.notifier.start()
        self.actions.start()
        engine = self.engine
        assert engine is not None
        return AlarmEndpoints(self.endpoint, self.restored,
                              sum(1 for r in engine.records.values() if r.active))

    @property
    def alive(self) -> bool:
        """Whether the evaluation thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def supervise(self, period_s: float = 0.5) -> None:
        """Watch the threads until :meth:`request_stop` (the main thread).

        Raises:
            ServiceFailed: the evaluation thread died, or another keeps dying.
        """
        self.supervisor.watch("evaluation", lambda: self.alive, error=lambda: self.last_error)
        self.supervisor.watch("notify", lambda: self.notifier.alive,
                              restart=self.notifier.start,
                              error=lambda: self.notifier.last_error)
        self.supervisor.watch("actions", lambda: self.actions.alive,
                              restart=self.actions.start, error=lambda: self.actions.last_error)
        while not self._stopping.wait(period_s):
            self.supervisor.check()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, failure: str = "") -> None:
        """Stop every thread; the evaluation thread hands what is spooled to the logger."""
        self._stopping.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        self.notifier.stop()
        self.actions.stop()
        self.journal.close()
        self.run_marker.end(clean=not failure, reason=failure)

    # ---- the evaluation thread ---------------------------------------------------------------

    def _main(self) -> None:
        pub: Publisher | None = None
        sender: ReliableSender | None = None
        sub: Subscriber | None = None
        ops: zmq.Socket | None = None
        try:
            try:
                pub, sender, sub, ops = self._setup()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            self._loop(pub, sender, sub, ops)
        except BaseException as exc:  # the supervisor sees the thread gone and ends the service
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("alarm evaluation thread died")
            raise
        finally:
            if sender is not None:
                self._finish(sender)
            for closable in (sub, ops, pub):
                if closable is not None:
                    closable.close()

    def _setup(self) -> tuple[Publisher, ReliableSender | None, Subscriber, zmq.Socket]:
        cfg = self.config
        bus = self.lab.bus
        pub = Publisher(bus.publish_url, name=self.name, heartbeat_s=bus.heartbeat_s,
                        context=self.ctx, curve=self.lab.keys_for("bus"))
        sender = None
        records: dict[str, AlarmRecord] = {}
        if self.logger_url:
            state = cfg.state_path
            state.mkdir(parents=True, exist_ok=True)
            sender = ReliableSender(self.logger_url, pub=self.name, epoch=pub.epoch,
                                    spool_path=state / "spool.sqlite",
                                    heartbeat_s=bus.heartbeat_s,
                                    curve=self.lab.keys_for("logger"), context=self.ctx)
            # What an earlier run spooled (a transition, a delivery) must be in the archive
            # before the archive is asked what happened.
            if not sender.flush(cfg.rebuild_timeout_s):
                log.warning("the logger has not acknowledged %d spooled alarm events of an "
                            "earlier run; the rebuild may miss their latest changes",
                            sender.unacked)
            records = self._rebuild()
        else:
            log.warning("no logger: alarm state lives in memory only and is lost on restart")
        now = time.time()
        engine = AlarmEngine(cfg, daemons=self.daemons, now=now, lab=self.lab.lab.name,
                             how_to_ack=f"qupdaq alarms ack {self.lab.source or 'CONFIG'} "
                                        "{alarm}")
        self.restored = len(records)
        restored = engine.restore(records.values(), now, self._read_journal(now))
        self.engine = engine
        sub = self._subscribe(engine, now)
        ops = self.ctx.socket(zmq.ROUTER)
        try:
            ops.setsockopt(zmq.LINGER, 0)
            ops.setsockopt(zmq.MAXMSGSIZE, 64 * 1024)
            if cfg.curve is not None:
                Gatekeeper.for_context(self.ctx).arm_server(ops, "alarms", cfg.curve)
            ops.bind(cfg.bind)
        except zmq.ZMQError as exc:
            ops.close()
            sub.close()
            raise BusError(f"alarms endpoint cannot bind {cfg.bind}: {exc}") from None
        self.endpoint = ops.getsockopt_string(zmq.LAST_ENDPOINT)
        self._pending_out = restored
        return pub, sender, sub, ops

    def _read_journal(self, now: float) -> list[JournalEntry]:
        """The deliveries written down within the rebuild window (older rows forgotten)."""
        try:
            self.journal.open()
            self.journal.prune(now - self.config.rebuild_window_s)
            return self.journal.entries()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot use the delivery journal {self.journal.path}: {exc}",
                              file=self.lab.source, key_path="alarms.state_dir") from None

    def _prune_journal(self) -> None:
        """A service that runs for months forgets deliveries older than the rebuild window."""
        try:
            self.journal.prune(time.time() - self.config.rebuild_window_s)
        except sqlite3.Error as exc:  # the journal only narrows a window: log, go on
            log.warning("cannot prune the delivery journal %s: %s", self.journal.path, exc)

    def _rebuild(self) -> dict[str, AlarmRecord]:
        cfg = self.config
        if not self.history_url:
            log.warning("no history endpoint: the alarm state starts empty")
            return {}
        deadline = time.monotonic() + cfg.rebuild_timeout_s
        with HistoryClient(self.history_url, timeout_s=min(5.0, cfg.rebuild_timeout_s),
                           context=self.ctx, curve=self.lab.keys_for("logger")) as history:
            while True:
                try:
                    return rebuild(history, self.name, cfg.rebuild_window_s)
                except (BusError, HistoryError) as exc:
                    if time.monotonic() >= deadline:
                        raise BusError(f"cannot rebuild the alarm state from the logger's "
                                       f"history at {self.history_url}: {exc}") from None
                    log.info("waiting for the logger's history to rebuild the alarm state: %s",
                             exc)

    def _subscribe(self, engine: AlarmEngine, now: float) -> Subscriber:
        cfg = self.config
        streams = sorted({s for r in cfg.rules for s in r.when.streams()}
                         | {s for c in cfg.lab_states.values() for s in c.streams()})
        prefixes = [f"data/{s}" for s in streams] + ["status/", "alarm/"]
        bus = self.lab.bus
        sub = Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url,
                         deliver_heartbeats=True, context=self.ctx,
                         curve=self.lab.keys_for("bus"))
        try:
            for prefix in [f"data/{s}" for s in streams] + ["status/"]:
                for msg in sub.snapshot(prefix, timeout_s=5.0):
                    if msg.kind is not Kind.DATA or msg.stream[5:] in streams:
                        engine.on_message(msg, now, snapshot=True)
        except BusError as exc:  # no broker yet: the live messages fill in as they come
            log.warning("no snapshot from the broker (%s); starting from live messages", exc)
        return sub

    def _loop(self, pub: Publisher, sender: ReliableSender | None, sub: Subscriber,
              ops: zmq.Socket) -> None:
        engine = self.engine
        assert engine is not None
        cfg = self.config
        self._dispatch(self._pending_out, pub, sender)
        next_tick = 0.0
        next_status = 0.0
        next_prune = time.monotonic() + JOURNAL_PRUNE_S
        while not self._stop.is_set():
            failpoint("alarms-eval")
            taken = 0
            while taken < DRAIN and (msg := sub.recv_nowait()) is not None:
                taken += 1
                if msg.kind is Kind.ALARM and msg.source == self.name:
                    continue  # our own transitions
                engine.on_message(msg, time.time())
            if ops.poll(0 if taken else 20, zmq.POLLIN):
                self._serve_ops(ops, engine, pub, sender)
            out = Outbox()
            while True:
                try:
                    result = self.notifier.results.get_nowait()
                except queue.Empty:
                    break
                out.extend(engine.delivered(result, time.time()))
            while True:
                try:
                    request, answer = self.actions.results.get_nowait()
                except queue.Empty:
                    break
                out.extend(engine.action_done(request, answer, time.time()))
            now_mono = time.monotonic()
            if now_mono >= next_tick:
                next_tick = now_mono + cfg.period_s
                out.extend(engine.tick(time.time()))
            self._dispatch(out, pub, sender)
            if now_mono >= next_status:
                next_status = now_mono + cfg.status_period_s
                self._publish(pub, sender, self._status(engine, sender))
            if now_mono >= next_prune:
                next_prune = now_mono + JOURNAL_PRUNE_S
                self._prune_journal()
            pub.tick()
            if sender is not None:
                sender.poll(0)

    def _serve_ops(self, ops: zmq.Socket, engine: AlarmEngine, pub: Publisher,
                   sender: ReliableSender | None) -> None:
        while True:
            try:
                frames = ops.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.ops_requests += 1
            if len(frames) < 2:
                continue
            rid: Any = None
            try:
                request = parse(frames[-1])
                rid = request.id
                reply, out = handle(engine, request, time.time(), self.name)
                self._dispatch(out, pub, sender)
            except ControlError as exc:  # OpError and StateError included: a refusal
                self.ops_refused += 1
                reply = {"ok": False, "error": str(exc)}
                if isinstance(exc, OpError) and rid is None:
                    rid = _peek_id(frames[-1])
            except Exception as exc:  # a bug answers with its text; the service goes on
                self.ops_refused += 1
                log.exception("alarm op failed unexpectedly")
                reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: "
                                               f"{str(exc)[:200]}"}
            reply["id"] = rid
            ops.send_multipart([*frames[:-1], json.dumps(reply).encode()])

    # ---- publishing --------------------------------------------------------------------------

    def _dispatch(self, out: Outbox, pub: Publisher, sender: ReliableSender | None) -> None:
        for event in out.events:
            msg = messages.event(Kind.ALARM, self.name, event.alarm)
            msg.meta = {**event.record, "transition": event.transition.value,
                        "detail": event.detail}
            self._publish(pub, sender, msg)
            if event.transition not in (Transition.NOTIFIED,):
                log.info("alarm %s %s (%s): %s", event.alarm, event.transition.value,
                         event.record["state"], event.record["reason"])
        if out.events and sender is not None:
            # on disk before any notice about them goes out: a crash after this point
            # loses no transition, and a delivery journalled later always finds its alarm
            sender.sync()
        for notice in out.notices:
            self.notifier.submit(notice)
        for action in out.actions:
            self.actions.submit(action)

    def _publish(self, pub: Publisher, sender: ReliableSender | None, msg: Message) -> None:
        pub.publish(msg)
        self.published += 1
        if sender is not None:
            sender.send(msg)

    def _status(self, engine: AlarmEngine, sender: ReliableSender | None) -> Message:
        now = time.time()
        summary = engine.summary(now)
        states = summary["states"]
        active = states.get("active_unack", 0) + states.get("active_ack", 0)
        unack = states.get("active_unack", 0) + states.get("cleared_unack", 0)
        failing = bool(summary["failing_urls"])
        text = (f"{active} active, {unack} unacknowledged"
                + (f"; notifications failing: {', '.join(summary['failing_urls'])}"
                   if failing else ""))
        return messages.status(
            self.name, "alarms", InstrumentState.ERROR if failing else InstrumentState.CONNECTED,
            text[:500], **summary, ops=self.endpoint, pid=os.getpid(),
            last_stop=self.run_marker.last_stop, parts=self.supervisor.as_dict(),
            notices_delivered=self.notifier.delivered,
            notices_pending=self.notifier.pending,
            reliable=sender.last_stats.as_dict() if sender is not None else None)

    def _finish(self, sender: ReliableSender) -> None:
        try:
            if not sender.finish(3.0) and sender.unacked:
                log.info("%d alarm events wait in the spool for the next start",
                         sender.unacked)
        except Exception as exc:  # stopping anyway; the spool keeps what it has
            log.warning("closing the reliable path: %s", exc)
        finally:
            sender.close()


def _peek_id(body: bytes) -> Any:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value.get("id") if isinstance(value, dict) else None
