"""The publishing end of the live path.

A :class:`Publisher` stamps every message with its stream's next sequence
number, the publisher's session ``epoch`` and its name, and sends it to the
broker. It also sends a heartbeat every ``heartbeat_s`` carrying the last
seq of each of its streams, so subscribers tell a silent publisher from a
dead one and see losses at the end of a burst.

The socket is an XPUB connected to the broker's XSUB: it behaves like a
PUB, and it also *receives* the subscriptions that flow upstream, which is
how :meth:`Publisher.wait_for_subscriber` knows, without sleeping, that a
subscriber is listening. Like every ZeroMQ socket it belongs to the one
thread that created it; call :meth:`tick` from that thread's loop (or use
:meth:`serve`) so heartbeats go out while nothing else is sent.

Scalars in batches: with ``batch_s`` > 0, ``data`` messages are not sent one
by one: the samples of one stream published within ``batch_s`` (with the same
units, quality and meta) leave as one message of many ``(t, value)`` rows,
the format a single sample already has (:class:`ScalarBatcher`). A batch
leaves when it is ``batch_s`` old (checked on every :meth:`publish` and
:meth:`tick`), holds ``batch_rows`` rows, or another kind of message of the
same stream comes; :meth:`flush` sends them all. The daemon's outbound stage
uses the same batcher before it stamps, so that both paths carry the same
batches.

Encode once: :meth:`stamp` and :meth:`send_frames` let a caller that sends
the same message elsewhere too (the daemon's reliable path) encode it once.
"""

from __future__ import annotations

import os
import socket
import time
from types import TracebackType

import zmq

from daq import messages
from daq.bus.batching import ScalarBatcher
from daq.links import keep_alive
from daq.messages import Message
from daq.security import ClientKeys, arm_client

# Plain ints: flag enums cost more per frame than the send itself.
_MORE = int(zmq.SNDMORE)


class Publisher:
    """Publishes messages to the broker with per-stream sequence numbers and heartbeats.

    Args:
        url: the broker's publish endpoint (``BusConfig.publish_url``).
        name: publisher name, shown in heartbeats and staleness reports.
        heartbeat_s: heartbeat period.
        hwm: send high-water mark; beyond it the live path drops (and subscribers count it).
        context: zmq context (the process-wide instance by default).
        curve: client keys when the broker requires CURVE (``LabConfig.keys_for("bus")``).
        batch_s: batch the scalar samples of a stream published within this long
            into one message (0: send every message as it comes).
        batch_rows: rows per batch at most.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        heartbeat_s: float = 1.0,
        hwm: int = 100_000,
        context: zmq.Context | None = None,
        curve: ClientKeys | None = None,
        batch_s: float = 0.0,
        batch_rows: int = 1000,
    ) -> None:
        self.url = url
        self.batcher = ScalarBatcher(batch_s, batch_rows) if batch_s > 0 else None
        self.name = name or f"{socket.gethostname().split('.')[0]}-{os.getpid()}"
        messages.check_name(self.name, "publisher name")
        self.heartbeat_s = heartbeat_s
        self.epoch = time.time_ns()
        self.sent = 0
        self._seqs: dict[str, int] = {}
        self._subscriptions: set[bytes] = set()
        self._next_beat = 0.0
        ctx = context or zmq.Context.instance()
        self._sock = ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._sock.setsockopt(zmq.LINGER, 2000)
        keep_alive(self._sock)
        arm_client(self._sock, curve)
        self._sock.connect(url)

    def close(self) -> None:
        """Send held batches, close the socket (pending messages get up to 2 s to leave)."""
        self.flush()
        self._sock.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- sending -----------------------------------------------------------------------------

    def publish(self, msg: Message) -> Message:
        """Stamp ``msg`` (seq, epoch, publisher) and send it; returns the stamped message.

        With batching on, a ``data`` message is held (and returned unstamped): its
        batch is stamped and sent as one message later (see the module docstring).
        """
        batcher = self.batcher
        if batcher is not None:
            for ready in batcher.add(msg):
                self._send(ready)
            for ready in batcher.due(time.monotonic()):
                self._send(ready)
            self.tick()
            return msg
        self._send(msg)
        self.tick()
        return msg

    def _send(self, msg: Message) -> None:
        self.stamp(msg)
        self.send_frames(messages.encode(msg))

    def stamp(self, msg: Message) -> Message:
        """Give ``msg`` its stream's next seq, this session's epoch and the publisher name."""
        stream = msg.stream
        seq = self._seqs.get(stream, -1) + 1
        self._seqs[stream] = seq
        msg.seq, msg.epoch, msg.pub = seq, self.epoch, self.name
        return msg

    def send_frames(self, frames: list[bytes | memoryview]) -> None:
        """Send the frames of a message this publisher stamped (:meth:`stamp`)."""
        sock = self._sock
        # Small frames are copied by libzmq anyway; zero-copy pays off for big payloads only.
        last = len(frames) - 1
        for i, frame in enumerate(frames):
            sock.send(frame, _MORE if i < last else 0, copy=len(frame) < 65536)
        self.sent += 1

    def flush(self) -> None:
        """Send every batch held (with batching on)."""
        if self.batcher is not None:
            for ready in self.batcher.flush():
                self._send(ready)

    def tick(self) -> None:
        """Send due batches and a heartbeat if one is due; call it from the owning thread's loop."""
        now = time.monotonic()
        if self.batcher is not None and self.batcher.pending:
            for ready in self.batcher.due(now):
                self._send(ready)
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            self.send_heartbeat()

    def send_heartbeat(self) -> None:
        """Send a heartbeat now (with the last seq of every stream)."""
        beat = messages.heartbeat(self.name, self.heartbeat_s, self._seqs)
        beat.epoch, beat.pub = self.epoch, self.name
        self._sock.send_multipart(messages.encode(beat))

    def serve(self, duration_s: float) -> None:
        """Keep heartbeating (and noting subscriptions) for ``duration_s`` seconds."""
        end = time.monotonic() + duration_s
        while (left := end - time.monotonic()) > 0:
            self._poll_subscriptions(min(left, max(0.0, self._next_beat - time.monotonic())))
            self.tick()

    # ---- subscriptions -----------------------------------------------------------------------

    def _poll_subscriptions(self, timeout_s: float) -> None:
        if self._sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            while True:
                try:
                    event = self._sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    return
                if event[:1] == b"\x01":
                    self._subscriptions.add(event[1:])
                elif event[:1] == b"\x00":
                    self._subscriptions.discard(event[1:])

    def wait_for_subscriber(self, topic: str | bytes = b"", timeout_s: float = 10.0) -> bool:
        """Wait until some subscriber (through the broker) wants ``topic``; no sleeping.

        Returns False on timeout. Subscriptions reach the publisher through
        the broker, so this also tells that the broker is up and connected.
        """
        wanted = topic.encode() if isinstance(topic, str) else topic
        end = time.monotonic() + timeout_s
        while True:
            if any(wanted.startswith(prefix) for prefix in self._subscriptions):
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._poll_subscriptions(min(left, self.heartbeat_s))
            self.tick()
