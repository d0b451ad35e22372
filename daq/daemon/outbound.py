"""The daemon's outbound stage: one thread that owns both publishing sockets.

Workers and the control server hand messages to :meth:`OutboundStage.put`
(any thread). The stage stamps each message once (stream seq, session
epoch, publisher name: :class:`daq.bus.Publisher`), sends it on the live
path, and gives the same stamped message to the reliable path
(:class:`daq.reliable.ReliableSender`) when a logger is configured; the
sender writes each batch the loop took to its spool (``spool_path``, in the
daemon's state directory) in one transaction before anything of it goes to
the logger. It also feeds every scalar sample to the interlocks and, on
every loop, lets them check staleness; trips are passed to ``on_trip`` (the
daemon acts on them).

Per message the stage does as little as it can: each is encoded once (the
live path and the spool share the frames; payloads are never copied), and
the scalar samples of one stream that come within ``batch_s`` (the daemon:
:data:`BATCH_S`, 5 ms) leave
as one ``data`` message of many rows (:class:`daq.bus.ScalarBatcher`),
stamped once, on both paths. The interlocks see every sample as it comes,
before batching.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daq import messages
from daq.bus import Publisher, ScalarBatcher
from daq.daemon.safety import Interlocks, Trip
from daq.errors import BusError
from daq.failpoints import failpoint
from daq.messages import Kind, Message
from daq.reliable import ReliableSender, SenderStats, SpoolLimits
from daq.security import ClientKeys

log = logging.getLogger(__name__)

#: Messages taken from the queue per loop at most (one spool transaction each loop).
BATCH = 1000
#: Scalar samples of one stream within this long leave as one message.
BATCH_S = 0.005


class OutboundStage:
    """Stamps and sends every message of the daemon; evaluates interlocks.

    Args:
        publish_url: the broker's publish endpoint.
        name: publisher name.
        logger_url: the logger's reliable endpoint, or None.
        interlocks: evaluated on every sample and every loop.
        on_trip: called (in this thread) with each interlock trip.
        heartbeat_s: live and reliable heartbeat period.
        hwm: the live path's send high-water mark.
        spool_path: the reliable path's spool (``<state dir>/spool.sqlite``; the
            daemon's instance id is kept beside it); None keeps the spool in memory
            (nothing survives a restart, and every start is a new instance).
        spool_limits: the spool's bound (:class:`daq.reliable.SpoolLimits`).
        instance: the instance id to use instead of the one kept beside the spool.
        logger_curve: client keys when the logger's endpoint runs CURVE
            (``LabConfig.keys_for("logger")``).
        bus_curve: client keys when the broker runs CURVE (``LabConfig.keys_for("bus")``).
        batch_s: scalar samples of one stream within this long leave as one message
            (0: every message as it comes; the daemon uses :data:`BATCH_S`).
    """

    def __init__(
        self,
        publish_url: str,
        *,
        name: str,
        logger_url: str | None = None,
        interlocks: Interlocks | None = None,
        on_trip: Callable[[Trip], None] | None = None,
        heartbeat_s: float = 1.0,
        hwm: int = 100_000,
        spool_path: Path | None = None,
        spool_limits: SpoolLimits | None = None,
        instance: str | None = None,
        logger_curve: ClientKeys | None = None,
        bus_curve: ClientKeys | None = None,
        batch_s: float = 0.0,
    ) -> None:
        self.publish_url = publish_url
        self.batcher = ScalarBatcher(batch_s) if batch_s > 0 else None
        self.name = name
        self.logger_url = logger_url
        self.interlocks = interlocks or Interlocks([])
        self.on_trip = on_trip or (lambda trip: None)
        self.heartbeat_s = heartbeat_s
        self.hwm = hwm
        self.spool_path = spool_path
        self.spool_limits = spool_limits
        self.instance = instance
        self.logger_curve = logger_curve
        self.bus_curve = bus_curve
        self.published = 0
        self.epoch = 0
        self.sender: ReliableSender | None = None
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._flush_s = 2.0

    def start(self) -> None:
        """Start the thread; return once both paths are set up.

        Raises:
            BusError: the reliable path could not be set up (the spool is held by
                another process, or cannot be opened).
        """
        self._thread = threading.Thread(target=self._run, name="outbound", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._start_error is not None:
            error = self._start_error
            if isinstance(error, BusError):
                raise error
            raise BusError(f"reliable path: spool {self.spool_path}: {error}") from error

    def stop(self, flush_s: float = 2.0) -> None:
        """Stop after sending what is queued; give the logger ``flush_s`` to acknowledge.

        What it does not acknowledge in time stays in the spool for the next start.
        """
        self._flush_s = flush_s
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(flush_s + 5)

    def put(self, msg: Message) -> None:
        """Queue a message for publishing (thread-safe)."""
        self._queue.put(msg)

    @property
    def alive(self) -> bool:
        """Whether the outbound thread runs (the supervisor checks it)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def unacked(self) -> int:
        """Messages the logger has not acknowledged yet (0 without a logger)."""
        stats = self.stats
        return stats.unacked if stats is not None else 0

    @property
    def stats(self) -> SenderStats | None:
        """The reliable path's latest snapshot (any thread); None without a logger."""
        sender = self.sender
        return sender.last_stats if sender is not None else None

    def _run(self) -> None:
        pub = Publisher(self.publish_url, name=self.name, heartbeat_s=self.heartbeat_s,
                        hwm=self.hwm, curve=self.bus_curve)
        self.epoch = pub.epoch
        if self.logger_url:
            try:
                self.sender = ReliableSender(
                    self.logger_url, pub=pub.name, epoch=pub.epoch, instance=self.instance,
                    spool_path=self.spool_path, limits=self.spool_limits,
                    heartbeat_s=self.heartbeat_s, curve=self.logger_curve)
            except Exception as exc:
                self._start_error = exc
                pub.close()
                self._ready.set()
                return
            log.info("reliable path: instance %s, session %d, %d messages of %d earlier "
                     "session(s) to resend", self.sender.instance[:8], pub.epoch,
                     self.sender.unacked,
                     sum(1 for e in self.sender.spool.sessions if e != pub.epoch))
        self._ready.set()
        try:
            stopping = False
            batcher = self.batcher
            while not stopping:
                failpoint("outbound")
                wait = 0.05
                if batcher is not None and batcher.pending:
                    wait = min(wait, max(0.0, batcher.next_due() - time.monotonic()))
                batch, stopping = self._take(timeout_s=wait)
                for item in batch:
                    self._check(item)
                    if batcher is None:
                        self._send(pub, item)
                        continue
                    for ready in batcher.add(item):
                        self._send(pub, ready)
                if batcher is not None and batcher.pending:
                    for ready in (batcher.flush() if stopping
                                  else batcher.due(time.monotonic())):
                        self._send(pub, ready)
                pub.tick()
                if self.sender is not None:
                    self.sender.poll(0)  # the batch goes to the spool in one transaction
                for trip in self.interlocks.on_tick(time.monotonic()):
                    self.on_trip(trip)
        finally:
            if self.sender is not None:
                self._finish(self.sender)
            pub.close()

    def _finish(self, sender: ReliableSender) -> None:
        try:
            if sender.finish(self._flush_s):
                return
            if sender.unacked and self.spool_path is None:
                log.warning("stopping with %d messages not acknowledged by the logger (the "
                            "spool is in memory: they are lost)", sender.unacked)
            elif sender.unacked:
                log.info("stopping with %d messages not acknowledged by the logger; they stay "
                         "in the spool %s for the next start", sender.unacked, self.spool_path)
            else:
                log.info("the logger did not confirm the end of this session in time; the "
                         "next start closes it")
        finally:
            sender.close()

    def _take(self, timeout_s: float) -> tuple[list[Message], bool]:
        """Everything queued (up to BATCH), waiting up to ``timeout_s`` for the first; stop flag."""
        try:
            items = [self._queue.get(timeout=timeout_s) if timeout_s > 0
                     else self._queue.get_nowait()]
        except queue.Empty:
            return [], False
        while len(items) < BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [m for m in items if m is not None], any(m is None for m in items)

    def _send(self, pub: Publisher, msg: Message) -> None:
        pub.stamp(msg)
        frames = messages.encode(msg)  # once, for both paths
        pub.send_frames(frames)
        self.published += 1
        if self.sender is not None:
            self.sender.send(msg, frames)

    def _check(self, msg: Message) -> None:
        """Feed a scalar sample to the interlocks (each sample, before any batching)."""
        if msg.kind is Kind.DATA and msg.data is not None and len(msg.data):
            stream = f"{msg.source}/{msg.channel}"
            if stream in self.interlocks.streams:
                for trip in self.interlocks.on_sample(stream, msg.value, time.monotonic(),
                                                      msg.quality,
                                                      str(msg.meta.get("note", ""))):
                    self.on_trip(trip)
