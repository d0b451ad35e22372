"""The reliable path: daemon -> logger, acknowledged, resent until acknowledged.

The live path (:mod:`daq.bus`) may drop under load; the archive must not. So
every message a daemon publishes is also handed to a :class:`ReliableSender`
(DEALER), which keeps it in a replay spool until the logger (ROUTER)
acknowledges that it is durable.

Frames (every one starts with :data:`PROTOCOL`)::

    sender -> logger
      [PROTOCOL, b"HELLO", json {"pub": name, "epoch": e}]
      [PROTOCOL, b"MSG", topic, header, payload?]      a daq.messages frame set
      [PROTOCOL, b"HB", json {"pub": name, "epoch": e, "streams": {stream: last_seq}}]
    logger -> sender
      [PROTOCOL, b"ACK", json {"epoch": e, "streams": {stream: seq}}]
      [PROTOCOL, b"ERROR", json {"why": text}]

Rules both ends keep:

* ``seq`` is per stream and per publisher session (``epoch``), stamped once by
  the daemon's outbound stage (:class:`daq.bus.Publisher`), so the same message
  has the same (stream, epoch, seq) on both paths.
* An ACK names, per stream, the highest seq such that it and everything before
  it in this epoch is durable (committed). The sender forgets those and keeps
  the rest. ACKs are cumulative and idempotent; the logger may repeat them.
* The logger answers HELLO with an ACK of what it already holds for that
  epoch (possibly empty). The sender sends HELLO when it starts and, with
  every unacknowledged message again, whenever acknowledgements stall for
  ``resend_after_s`` (a restarted logger is caught up within that time);
  the logger deduplicates by (stream, epoch, seq).
* HB tells the logger the newest seq of every stream even when the messages
  themselves are lost (the daemon died with them in its spool): the logger
  records that range as a gap, it never invents data.
* ERROR (disk full, read-only store) changes nothing at the sender: the data
  stays spooled and is resent later.

The spool lives in memory and is bounded (``max_spool`` messages); when it
overflows, the oldest unacknowledged messages are dropped and counted in
``overflowed`` (the daemon reports it in its status). Nothing acknowledged is
ever the sender's concern again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from daq import messages
from daq.errors import MessageDecodeError
from daq.messages import Message

log = logging.getLogger(__name__)

PROTOCOL = b"QDR1"
HELLO = b"HELLO"
MSG = b"MSG"
HB = b"HB"
ACK = b"ACK"
ERROR = b"ERROR"


# ---- frame builders and parsers shared by both ends ---------------------------------------------


def hello_frames(pub: str, epoch: int) -> list[bytes]:
    return [PROTOCOL, HELLO, json.dumps({"pub": pub, "epoch": epoch}).encode()]


def heartbeat_frames(pub: str, epoch: int, streams: dict[str, int]) -> list[bytes]:
    return [PROTOCOL, HB, json.dumps({"pub": pub, "epoch": epoch, "streams": streams}).encode()]


def ack_frames(epoch: int, streams: dict[str, int]) -> list[bytes]:
    return [PROTOCOL, ACK, json.dumps({"epoch": epoch, "streams": streams}).encode()]


def error_frames(why: str) -> list[bytes]:
    return [PROTOCOL, ERROR, json.dumps({"why": why}).encode()]


@dataclass(frozen=True)
class Control:
    """A decoded non-MSG frame set: HELLO, HB, ACK or ERROR with its JSON body."""

    verb: bytes
    body: dict[str, Any]


def parse(frames: Sequence[Any]) -> Message | Control:
    """Parse one frame set of the reliable path (either direction).

    Raises:
        MessageDecodeError: for anything malformed (counted and dropped by callers).
    """
    if len(frames) < 3:
        raise MessageDecodeError(f"reliable path: expected >= 3 frames, got {len(frames)}")
    proto = bytes(messages.frame_view(frames[0]))
    if proto != PROTOCOL:
        raise MessageDecodeError(f"reliable path: protocol {proto[:16]!r}, expected {PROTOCOL!r}",
                                 frame=0)
    verb = bytes(messages.frame_view(frames[1]))
    if verb == MSG:
        return messages.decode(frames[2:])
    if verb not in (HELLO, HB, ACK, ERROR) or len(frames) != 3:
        raise MessageDecodeError(f"reliable path: unknown verb {verb[:16]!r}", frame=1)
    try:
        body = json.loads(bytes(messages.frame_view(frames[2])))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"reliable path: {verb.decode()} body is not JSON ({exc})",
                                 frame=2) from None
    if not isinstance(body, dict):
        raise MessageDecodeError(f"reliable path: {verb.decode()} body is not an object", frame=2)
    if verb in (HELLO, HB, ACK):
        epoch = body.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise MessageDecodeError(f"reliable path: {verb.decode()} without an integer epoch",
                                     frame=2)
    if verb in (HB, ACK):
        streams = body.get("streams")
        if not isinstance(streams, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in streams.items()
        ):
            raise MessageDecodeError(
                f"reliable path: {verb.decode()} streams must map names to integers", frame=2)
    return Control(verb, body)


# ---- the daemon side -----------------------------------------------------------------------------


class ReliableSender:
    """Sends stamped messages to the logger and keeps them until acknowledged.

    Owned by one thread (the daemon's outbound stage); call :meth:`poll`
    from that thread's loop to take in acknowledgements, send heartbeats and
    resend after a stall.

    Args:
        url: the logger's endpoint (ROUTER).
        pub: publisher name (the same as on the live path).
        epoch: publisher session id (the same as on the live path).
        window: at most this many messages in flight before waiting for acks.
        resend_after_s: resend everything unacknowledged when no ack came for this long.
        heartbeat_s: period of HB frames.
        max_spool: spool bound in messages (see the module docstring).
    """

    def __init__(
        self,
        url: str,
        *,
        pub: str,
        epoch: int,
        window: int = 20_000,
        resend_after_s: float = 2.0,
        heartbeat_s: float = 1.0,
        max_spool: int = 2_000_000,
        context: zmq.Context | None = None,
    ) -> None:
        self.url = url
        self.pub = pub
        self.epoch = epoch
        self.window = window
        self.resend_after_s = resend_after_s
        self.heartbeat_s = heartbeat_s
        self.max_spool = max_spool
        self.acked: dict[str, int] = {}
        self.last_seq: dict[str, int] = {}
        self.overflowed = 0
        self.resends = 0
        self.logger_errors: list[str] = []
        self.decode_errors = 0
        # stream -> deque of (seq, frames); OrderedDict keeps streams in first-seen order.
        self._spool: OrderedDict[str, deque[tuple[int, list[Any]]]] = OrderedDict()
        self._spooled = 0
        self._in_flight = 0
        # Spooled but not yet transmitted (window full): (stream, seq, frames).
        self._pending: deque[tuple[str, int, list[Any]]] = deque()
        self._last_progress = time.monotonic()
        self._next_beat = 0.0
        ctx = context or zmq.Context.instance()
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, 0)  # never drop here: the window bounds the queue
        self._sock.connect(url)
        self._sock.send_multipart(hello_frames(pub, epoch))

    def close(self) -> None:
        self._sock.close()

    @property
    def unacked(self) -> int:
        """Messages spooled and not yet acknowledged."""
        return self._spooled

    def send(self, msg: Message) -> None:
        """Spool a stamped message (seq, epoch set) and transmit it when the window allows."""
        if msg.epoch != self.epoch or msg.seq < 0:
            raise ValueError(f"{msg.stream}: message not stamped by this publisher session")
        frames = [PROTOCOL, MSG, *messages.encode(msg)]
        if msg.data is not None:
            # The spool outlives the caller's array: keep our own bytes.
            frames[-1] = bytes(frames[-1])
        stream = msg.stream
        self._spool.setdefault(stream, deque()).append((msg.seq, frames))
        self.last_seq[stream] = msg.seq
        self._spooled += 1
        if self._spooled > self.max_spool:
            self._drop_oldest()
        if self._in_flight < self.window and not self._pending:
            self._transmit(frames)
        else:
            self._pending.append((stream, msg.seq, frames))

    def _transmit(self, frames: list[Any]) -> None:
        self._sock.send_multipart(frames, copy=False)
        self._in_flight += 1

    def _drop_oldest(self) -> None:
        stream = next(iter(self._spool))
        queue = self._spool[stream]
        queue.popleft()
        self._spooled -= 1
        self.overflowed += 1
        if not queue:
            del self._spool[stream]

    def poll(self, timeout_s: float = 0.0) -> None:
        """Take in acks (waiting up to ``timeout_s`` for the first), heartbeat, resend if stalled."""
        if self._sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            while True:
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_reply(frames)
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            self._sock.send_multipart(heartbeat_frames(self.pub, self.epoch, self.last_seq))
        if self._spooled and now - self._last_progress > self.resend_after_s:
            log.info("reliable path: no ack for %.1f s, resending %d messages",
                     now - self._last_progress, self._spooled)
            self._sock.send_multipart(hello_frames(self.pub, self.epoch))
            self.resend_all()
        self._release_pending()

    def _on_reply(self, frames: list[bytes]) -> None:
        try:
            reply = parse(frames)
        except MessageDecodeError as exc:
            self.decode_errors += 1
            log.warning("reliable path: dropped a malformed reply: %s", exc)
            return
        if not isinstance(reply, Control):
            self.decode_errors += 1
            return
        if reply.verb == ERROR:
            why = str(reply.body.get("why", "?"))
            self.logger_errors.append(why)
            log.error("logger reports: %s (data stays spooled)", why)
            return
        if reply.verb == ACK and reply.body["epoch"] == self.epoch:
            self._on_ack(reply.body["streams"])

    def _on_ack(self, streams: dict[str, int]) -> None:
        progressed = False
        for stream, seq in streams.items():
            if seq <= self.acked.get(stream, -1):
                continue
            self.acked[stream] = seq
            progressed = True
            queue = self._spool.get(stream)
            while queue and queue[0][0] <= seq:
                queue.popleft()
                self._spooled -= 1
                self._in_flight = max(0, self._in_flight - 1)
            if queue is not None and not queue:
                del self._spool[stream]
        if progressed or not self._spooled:
            self._last_progress = time.monotonic()

    def resend_all(self) -> None:
        """Transmit every unacknowledged message again, oldest first per stream."""
        self.resends += 1
        self._pending.clear()
        self._in_flight = 0
        for queue in self._spool.values():
            for _seq, frames in queue:
                self._transmit(frames)
        self._last_progress = time.monotonic()

    def _release_pending(self) -> None:
        while self._pending and self._in_flight < self.window:
            stream, seq, frames = self._pending.popleft()
            if seq > self.acked.get(stream, -1):
                self._transmit(frames)

    def flush(self, timeout_s: float) -> bool:
        """Poll until everything is acknowledged or ``timeout_s`` passes; True when all acked."""
        end = time.monotonic() + timeout_s
        while self._spooled:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.1))
        return True
