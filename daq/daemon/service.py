"""The daemon assembled: workers, outbound stage, control server, interlocks, supervision.

:class:`Daemon` is what ``qupdaq daemon CONFIG`` runs. ``start()`` brings up
the outbound stage, one worker per instrument and the control endpoint;
``supervise()`` (the main thread's loop) restarts a worker whose thread died
and reports it; ``stop()`` switches nothing off by itself (an orderly stop
of the acquisition must not change the fridge), stops the threads and
gives the logger a moment to acknowledge what is in flight.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import partial

from daq import messages
from daq.config import LabConfig
from daq.daemon.alarm_ops import AlarmForwarder
from daq.daemon.check import check_config
from daq.daemon.control import ControlServer
from daq.daemon.enforce import TripEnforcer
from daq.daemon.outbound import BATCH_S, OutboundStage
from daq.daemon.safety import Interlocks, Limits, Trip
from daq.daemon.worker import InstrumentWorker, warm_up_visa
from daq.dastard.bridge import DastardBridge
from daq.messages import InstrumentState, Message
from daq.sdnotify import notify, watchdog_period_s
from daq.supervisor import RunMarker, Supervisor

log = logging.getLogger(__name__)


class Daemon:
    """The single owner of every instrument in its config.

    Args:
        config: the whole lab config (bus, daemon, instruments, limits, interlocks).
    """

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        settings = config.daemon
        self.name = settings.name
        self.interlocks = Interlocks(config.interlocks)
        self.outbound = OutboundStage(
            config.bus.publish_url, name=settings.name, logger_url=settings.logger_url,
            interlocks=self.interlocks, on_trip=self._on_trip,
            heartbeat_s=config.bus.heartbeat_s, hwm=config.bus.hwm,
            spool_path=settings.state_path / "spool.sqlite",
            logger_curve=config.keys_for("logger") if settings.logger_url else None,
            bus_curve=config.keys_for("bus"), batch_s=BATCH_S,
        )
        # Import and check every driver here, in the main thread, before any worker starts:
        # concurrent first imports of pyvisa's backends from several threads can leave a
        # module half initialised; and a misspelt driver, spec, target or limit is a config
        # error now, not a retry loop later.
        check_config(config)
        if config.instruments:
            warm_up_visa()
        self.workers = {
            name: InstrumentWorker(name, instrument, self.emit,
                                   status_period_s=settings.status_period_s,
                                   stale_after_periods=settings.stale_after_periods,
                                   state_dir=settings.state_path)
            for name, instrument in config.instruments.items()
        }
        self.control = ControlServer(settings.control, self.workers, Limits(config.limits),
                                     self.emit, daemon_name=settings.name,
                                     alarm_ops=AlarmForwarder(
                                         settings.alarms_url, curve=config.keys_for("alarms")
                                         if settings.alarms_url else None))
        self.enforcer = TripEnforcer(
            lambda target, value, reason, done: self.control.submit_internal(
                "enforce", target, value, reason, done),
            self.emit, daemon_name=settings.name)
        self._stop = threading.Event()
        self.supervisor = Supervisor(f"daemon {self.name}")
        self.dastard: DastardBridge | None = None
        self.run_marker = RunMarker(settings.state_path / "daemon.run")

    def emit(self, msg: Message) -> None:
        """Hand a message to the outbound stage (any thread)."""
        self.outbound.put(msg)

    def start(self) -> str:
        """Start everything; returns the control endpoint."""
        last_stop = self.run_marker.begin()
        if last_stop.startswith("not clean"):
            log.warning("the previous run %s", last_stop.removeprefix("not clean: "))
        self.outbound.start()
        if self.config.dastard is not None:
            self.dastard = DastardBridge(self.config.dastard, self.emit)
            self.dastard.start()
        for worker in self.workers.values():
            worker.start()
        endpoint = self.control.start()
        self.emit(messages.status(self.name, "daemon", InstrumentState.CONNECTED,
                                  f"control on {endpoint}", instruments=sorted(self.workers),
                                  last_stop=last_stop))
        return endpoint

    def supervise(self, period_s: float = 0.5) -> None:
        """Restart dead workers, retry interlock actions and publish the daemon's status
        until :meth:`request_stop`; run it in the main thread.

        Raises:
            ServiceFailed: a part that cannot be restarted in place died (the
                control endpoint, the outbound stage), or a worker keeps dying;
                the caller stops the rest and exits non-zero with the reason.
        """
        for name, worker in self.workers.items():
            self.supervisor.watch(f"worker {name}", partial(getattr, worker, "alive"),
                                  restart=partial(self._restart_worker, worker),
                                  error=partial(getattr, worker, "last_error"))
        self.supervisor.watch("control", lambda: self.control.alive,
                              error=lambda: self.control.last_error)
        self.supervisor.watch("outbound", lambda: self.outbound.alive)
        if self.dastard is not None:
            # Its threads, not DASTARD's presence: a DASTARD that is away is reported stale
            # by the bridge; restarting the bridge would not bring it back.
            self.supervisor.watch("dastard bridge", lambda: self.dastard is not None
                                  and self.dastard.running, restart=self._restart_dastard)
        next_status = 0.0
        watchdog = watchdog_period_s()  # under systemd: prove liveness while healthy
        next_beat = 0.0
        while not self._stop.wait(period_s):
            self.supervisor.check()
            if watchdog is not None and time.monotonic() >= next_beat:
                next_beat = time.monotonic() + watchdog
                notify("WATCHDOG=1")
            self.enforcer.tick()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.config.daemon.status_period_s
                self._publish_status()

    def _restart_dastard(self) -> None:
        assert self.config.dastard is not None and self.dastard is not None
        self.dastard.stop()
        self.dastard = DastardBridge(self.config.dastard, self.emit)
        self.dastard.start()

    def _restart_worker(self, worker: InstrumentWorker) -> None:
        worker.restarts += 1
        log.error("worker %s died (%s); restarting (restart %d)", worker.name,
                  worker.last_error or "?", worker.restarts)
        self.emit(messages.status(worker.source, worker.name, InstrumentState.ERROR,
                                  f"worker restarted (restart {worker.restarts}) after: "
                                  f"{worker.last_error or 'its thread ended'}"))
        worker.start()

    def _publish_status(self) -> None:
        """``status/<daemon>/daemon``: the workers' states and the interlocks' actions."""
        interlocks = self.enforcer.snapshot()
        failing = [name for name, s in interlocks.items() if s["state"] == "failing"]
        state = InstrumentState.ERROR if failing else InstrumentState.CONNECTED
        text = (f"interlock action failing: {', '.join(failing)}" if failing
                else f"control on {self.control.endpoint}")
        self.emit(messages.status(
            self.name, "daemon", state, text, interlocks=interlocks,
            instruments={name: {"state": w.state.value, "message": w.state_message}
                         for name, w in self.workers.items()},
            unacked=self.outbound.unacked, parts=self.supervisor.as_dict(),
            reliable=stats.as_dict() if (stats := self.outbound.stats) is not None else None,
            last_stop=self.run_marker.last_stop, pid=os.getpid()))

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, failure: str = "") -> None:
        """Stop control, workers and outbound (flushing to the logger) in that order.

        Args:
            failure: why the daemon is stopping when a part failed ("" for a clean stop);
                the status says so and the next start reports the run as not clean.
        """
        self._stop.set()
        self.control.stop()
        for worker in self.workers.values():
            worker.stop()
        if self.dastard is not None:
            self.dastard.stop()
        if failure:
            self.emit(messages.status(self.name, "daemon", InstrumentState.ERROR,
                                      f"stopping after a failure: {failure}"))
        else:
            self.emit(messages.status(self.name, "daemon", InstrumentState.DISCONNECTED,
                                      "stopped cleanly"))
        self.outbound.stop()
        self.run_marker.end(clean=not failure, reason=failure)

    def _on_trip(self, trip: Trip) -> None:
        self.enforcer.on_trip(trip)
        self._publish_status()

