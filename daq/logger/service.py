"""The logging service: the reliable path in, batches to the sinks, acks out, history served.

Its threads, each owning its sockets:

* the *router* thread owns the ROUTER socket of the reliable path (any
  number of daemons' DEALERs connect to it). It parses frame sets
  (:func:`daq.reliable.parse`; malformed ones are counted and dropped),
  collects them into a batch, hands the batch to the writer when it holds
  ``batch_size`` messages or ``batch_bytes`` bytes or its oldest message has
  waited ``max_batch_delay_s``, and sends the writer's replies (ACK/ERROR).
  While the writer is busy the next batch fills up (double buffering);
  when it is full, reading pauses and ZeroMQ's queues push back on the senders.
* the *writer* thread owns the sinks (:class:`daq.logger.writer.Writer`);
  it wakes the router through an inproc PAIR when a cycle is done. When
  idle it still gets a cycle every ``tick_s`` for gap grace periods,
  retention and retrying a store that could not be opened.
* the *history* thread serves queries (:mod:`daq.logger.history_server`)
  with its own read connection to the store.
* the *status* thread (when a bus is configured) publishes the logger's
  own status on the live bus (:mod:`daq.logger.status`).

A writer cycle that raises anyway (a bug) is answered with ERROR to every
sender in it: a sender never waits on silence.

CURVE: when the reliable endpoint is a CURVE server (``CURVE_SERVER`` set
on the ROUTER before it binds, a ZAP handler installed), each connection's
ZAP ``User-Id`` (the client's public key) is read from its frames and
handed to the writer with the batch (``keys``): identities are then keys,
and a claimed instance id no longer counts (:func:`daq.logger.sessions.identity_of`);
with ``Writer.key_names`` (the allow-list: key -> daemon name) a key may
only speak for its own name.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import zmq

from daq import messages, reliable
from daq.errors import BusError, MessageDecodeError
from daq.links import keep_alive
from daq.logger.config import LoggerConfig
from daq.logger.history_server import HistoryServer
from daq.logger.stats import LoggerStats
from daq.logger.status import StatusPublisher
from daq.logger.writer import Item, Reply, Writer, describe
from daq.security import ClientKeys, Gatekeeper, user_key

log = logging.getLogger(__name__)

_LOG_FIRST_MALFORMED = 10


@dataclass(frozen=True)
class LoggerEndpoints:
    """Where a started logger listens (with the real port when port 0 was configured)."""

    endpoint: str
    history: str


class LoggerService:
    """The logger; :meth:`start` it, :meth:`stop` it (see the module docstring).

    Args:
        config: the ``logger:`` section.
        context: zmq context (the process-wide instance by default).
        publish_url: the live bus's publish endpoint (``bus.publish_url`` of the lab
            config) for the logger's own status; None: no status on the bus.
        publish_keys: this host's keys for the bus, when the bus runs CURVE.
    """

    def __init__(self, config: LoggerConfig, *, context: zmq.Context | None = None,
                 publish_url: str | None = None, publish_keys: ClientKeys | None = None) -> None:
        self.config = config
        self.stats = LoggerStats()
        self.tick_s = min(1.0, config.gap_grace_s / 4)
        self._ctx = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._jobs: queue.Queue[tuple[list[Item], bool, dict[bytes, str]] | None] = \
            queue.Queue()
        self._results: queue.Queue[list[Reply]] = queue.Queue()
        self._wake_url = f"inproc://qupdaq-logger-{id(self)}"
        self._endpoint = ""
        self._start_error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._history: HistoryServer | None = None
        self.status: StatusPublisher | None = None
        if publish_url and config.status_period_s > 0:
            self.status = StatusPublisher(publish_url, config, self.stats, context=self._ctx,
                                          curve=publish_keys)
        self._curve = False

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> LoggerEndpoints:
        """Open the store, bind both endpoints, start the threads; return the endpoints.

        A store that cannot be opened does not stop the start: the logger
        runs, answers ERROR and retries (``stats.store_ok`` tells).

        Raises:
            BusError: an endpoint cannot be bound.
        """
        router = threading.Thread(target=self._router_main, name="logger-router", daemon=True)
        self._threads.append(router)
        router.start()
        if not self._ready.wait(timeout_s):
            raise BusError(f"logger did not start within {timeout_s} s")
        if self._start_error is not None:
            raise BusError(f"logger endpoint {self.config.endpoint}: {self._start_error}")
        self._history = HistoryServer(self.config, self.stats, context=self._ctx)
        try:
            history = self._history.start()
        except BaseException:
            self.stop()
            raise
        if self.status is not None:
            self.status.start()
        return LoggerEndpoints(self._endpoint, history)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write what was received, send the last acks, close the sinks and sockets."""
        self._stop.set()
        if self.status is not None:
            self.status.stop()
        if self._history is not None:
            self._history.stop()
        for thread in self._threads:
            thread.join(timeout_s)

    # ---- the writer thread ------------------------------------------------------------------

    def _writer_main(self, writer: Writer, started: threading.Event) -> None:
        wake = self._ctx.socket(zmq.PAIR)
        wake.connect(self._wake_url)
        writer.try_open()
        started.set()
        try:
            while (job := self._jobs.get()) is not None:
                items, tick, keys = job
                try:
                    replies = writer.process(items, tick=tick, keys=keys)
                except Exception as exc:  # a bug must not wedge the service nor go unanswered
                    log.exception("write cycle failed unexpectedly")
                    why = f"logger: write cycle failed unexpectedly: {describe(exc)}"
                    self.stats.write_errors += 1
                    self.stats.error(why)
                    replies = [(peer, reliable.error_frames(why))
                               for peer in dict.fromkeys(peer for peer, _ in items)]
                self._results.put(replies)
                wake.send(b"")
        finally:
            writer.close()
            wake.close(linger=0)

    # ---- the router thread ------------------------------------------------------------------

    def _router_main(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        wake = self._ctx.socket(zmq.PAIR)
        try:
            sock.setsockopt(zmq.LINGER, 1000)
            keep_alive(sock)
            # Inbound HWM is flow control, not loss: a full queue stops reading the peer's TCP
            # stream, so a flood (or a slow store) pushes back instead of growing memory.
            sock.setsockopt(zmq.RCVHWM, 2 * self.config.batch_size)
            sock.setsockopt(zmq.SNDHWM, 100_000)  # replies only; a lost ACK is asked for again
            sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
            if self.config.curve is not None:
                # Daemons only: a key allow-listed as "reader" may query history, not archive.
                daemons = {key: name for key, name in self.config.curve.clients.items()
                           if name != "reader"}
                Gatekeeper.for_context(self._ctx).arm_server(sock, "logger", self.config.curve,
                                                             daemons)
            sock.bind(self.config.endpoint)
            self._curve = bool(sock.getsockopt(zmq.CURVE_SERVER))
            self._endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            wake.bind(self._wake_url)
        except zmq.ZMQError as exc:
            self._start_error = exc
            sock.close(linger=0)
            wake.close(linger=0)
            self._ready.set()
            return
        writer = Writer(self.config, self.stats)
        if self.config.curve is not None:  # a key may speak only for its allow-listed name
            writer.key_names = {key: name for key, name in self.config.curve.clients.items()
                                if name != "reader"}
        started = threading.Event()
        writer_thread = threading.Thread(target=self._writer_main, args=(writer, started),
                                         name="logger-writer", daemon=True)
        self._threads.append(writer_thread)
        writer_thread.start()
        started.wait()
        self._ready.set()
        try:
            self._route(sock, wake)
        finally:
            self._jobs.put(None)
            writer_thread.join()
            sock.close()
            wake.close(linger=0)

    def _route(self, sock: zmq.Socket, wake: zmq.Socket) -> None:
        cfg = self.config
        batch: list[Item] = []
        keys: dict[bytes, str] = {}
        size = 0
        first_at = 0.0
        busy = False
        next_tick = time.monotonic() + self.tick_s
        poller = zmq.Poller()
        poller.register(wake, zmq.POLLIN)
        reading = False
        while True:
            full = len(batch) >= cfg.batch_size or size >= cfg.batch_bytes
            stopping = self._stop.is_set()
            want_read = not full and not stopping
            if want_read != reading:
                if want_read:
                    poller.register(sock, zmq.POLLIN)
                else:
                    poller.unregister(sock)
                reading = want_read
            now = time.monotonic()
            if not busy:
                due = (full or (batch and now - first_at >= cfg.max_batch_delay_s)
                       or now >= next_tick or stopping)
                if due and (batch or now >= next_tick):
                    tick = now >= next_tick
                    if tick:
                        next_tick = now + self.tick_s
                    self._jobs.put((batch, tick, keys))
                    batch, keys, size, busy = [], {}, 0, True
                    continue
                if stopping:
                    return
            if busy:  # the writer's wake-up (or new frames) ends the wait; never spin
                timeout_ms = 100
            else:
                deadline = next_tick if not batch else min(next_tick,
                                                            first_at + cfg.max_batch_delay_s)
                timeout_ms = max(1, min(100, int((deadline - now) * 1000) + 1))
            events = dict(poller.poll(timeout_ms))
            if wake in events:
                wake.recv()
                self._send_replies(sock, self._results.get())
                busy = False
            if sock in events:
                before = len(batch)
                if self._take(sock, batch, keys, cfg.batch_size - before):
                    if before == 0:
                        first_at = time.monotonic()
                    size += sum(_payload_size(item) for _, item in batch[before:])

    def _take(self, sock: zmq.Socket, batch: list[Item], keys: dict[bytes, str],
              room: int) -> int:
        """Receive up to ``room`` frame sets without blocking; return how many were kept."""
        kept = 0
        for _ in range(max(1, room)):
            if kept >= max(1, room):  # a MSGS brought many at once
                break
            try:
                # Copies are cheaper for small frames, but a MSGS payload frame of megabytes is
                # taken as it is (records are views of it up to the HDF5 write); with CURVE
                # the frames' User-Id is needed too.
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.stats.received += 1
            try:
                if len(frames) < 2:
                    raise MessageDecodeError("no routing id")
                peer = bytes(messages.frame_view(frames[0]))
                if self._curve and isinstance(frames[-1], zmq.Frame):
                    key = user_key(frames[-1])
                    if key:
                        keys[peer] = key
                parsed = reliable.parse(frames[1:])
            except MessageDecodeError as exc:
                self._malformed(exc)
                continue
            except Exception as exc:  # whatever a hostile frame provokes, never fatal
                self._malformed(exc)
                continue
            if isinstance(parsed, list):  # MSGS: many messages in one frame set
                batch.extend((peer, msg) for msg in parsed)
                kept += len(parsed)
                self.stats.received += len(parsed) - 1
            else:
                batch.append((peer, parsed))
                kept += 1
        return kept

    def _malformed(self, exc: BaseException) -> None:
        self.stats.malformed += 1
        count = self.stats.malformed
        if count <= _LOG_FIRST_MALFORMED or count % 1000 == 0:
            log.warning("reliable path: dropped a malformed frame set (%d so far): %s",
                        count, exc)

    def _send_replies(self, sock: zmq.Socket, replies: list[Reply]) -> None:
        for peer, frames in replies:
            try:
                sock.send_multipart([peer, *frames], zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # a peer gone meanwhile: it asks again with HELLO
                log.debug("reply to a departed peer dropped: %s", exc)


def _payload_size(item: Any) -> int:
    data = getattr(item, "data", None)
    return int(data.nbytes) if data is not None else 0
