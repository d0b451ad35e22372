"""The daemon's outbound stage: one thread that owns both publishing sockets.

Workers and the control server hand messages to :meth:`OutboundStage.put`
(any thread). The stage stamps each message once (stream seq, session
epoch, publisher name: :class:`daq.bus.Publisher`), sends it on the live
path, and gives the same stamped message to the reliable path
(:class:`daq.reliable.ReliableSender`) when a logger is configured. It also
feeds every scalar sample to the interlocks and, on every loop, lets them
check staleness; trips are passed to ``on_trip`` (the daemon acts on them).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from daq.bus import Publisher
from daq.daemon.safety import Interlocks, Trip
from daq.messages import Kind, Message
from daq.reliable import ReliableSender

log = logging.getLogger(__name__)


class OutboundStage:
    """Stamps and sends every message of the daemon; evaluates interlocks.

    Args:
        publish_url: the broker's publish endpoint.
        name: publisher name.
        logger_url: the logger's reliable endpoint, or None.
        interlocks: evaluated on every sample and every loop.
        on_trip: called (in this thread) with each interlock trip.
        heartbeat_s: live and reliable heartbeat period.
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
    ) -> None:
        self.publish_url = publish_url
        self.name = name
        self.logger_url = logger_url
        self.interlocks = interlocks or Interlocks([])
        self.on_trip = on_trip or (lambda trip: None)
        self.heartbeat_s = heartbeat_s
        self.hwm = hwm
        self.published = 0
        self.epoch = 0
        self.sender: ReliableSender | None = None
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._flush_s = 2.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbound", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, flush_s: float = 2.0) -> None:
        """Stop after sending what is queued; give the logger ``flush_s`` to acknowledge."""
        self._flush_s = flush_s
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(flush_s + 5)

    def put(self, msg: Message) -> None:
        """Queue a message for publishing (thread-safe)."""
        self._queue.put(msg)

    @property
    def unacked(self) -> int:
        """Messages the logger has not acknowledged yet (0 without a logger)."""
        return self.sender.unacked if self.sender is not None else 0

    def _run(self) -> None:
        pub = Publisher(self.publish_url, name=self.name, heartbeat_s=self.heartbeat_s,
                        hwm=self.hwm)
        self.epoch = pub.epoch
        if self.logger_url:
            self.sender = ReliableSender(self.logger_url, pub=pub.name, epoch=pub.epoch,
                                         heartbeat_s=self.heartbeat_s)
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch, stopping = self._take(timeout_s=0.05)
                for item in batch:
                    self._send(pub, item)
                pub.tick()
                if self.sender is not None:
                    self.sender.poll(0)
                for trip in self.interlocks.on_tick(time.monotonic()):
                    self.on_trip(trip)
        finally:
            if self.sender is not None:
                if not self.sender.flush(self._flush_s):
                    log.warning("stopping with %d messages not acknowledged by the logger",
                                self.sender.unacked)
                self.sender.close()
            pub.close()

    def _take(self, timeout_s: float) -> tuple[list[Message], bool]:
        """Everything queued (up to 1000), waiting up to ``timeout_s`` for the first; stop flag."""
        try:
            items = [self._queue.get(timeout=timeout_s)]
        except queue.Empty:
            return [], False
        while len(items) < 1000:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [m for m in items if m is not None], any(m is None for m in items)

    def _send(self, pub: Publisher, msg: Message) -> None:
        pub.publish(msg)
        self.published += 1
        if self.sender is not None:
            self.sender.send(msg)
        if msg.kind is Kind.DATA and msg.data is not None and len(msg.data):
            stream = f"{msg.source}/{msg.channel}"
            if stream in self.interlocks.streams:
                for trip in self.interlocks.on_sample(stream, msg.value, time.monotonic(),
                                                      msg.quality,
                                                      str(msg.meta.get("note", ""))):
                    self.on_trip(trip)
