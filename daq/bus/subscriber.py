"""The receiving end of the live path.

A :class:`Subscriber` connects to the broker's XPUB port with topic-prefix
filters (``data/fridge1`` gets every data stream of fridge 1), decodes every
message with :mod:`daq.messages`, counts malformed frames instead of
failing on them, and keeps the books:

* gaps: every stream's sequence numbers go through a
  :class:`daq.bus.gaps.GapTracker`; heartbeats carry each stream's last seq
  so a loss at the end of a burst is counted too;
* staleness: publishers are known by their heartbeats; one silent for more
  than two heartbeat periods is reported by :meth:`Subscriber.stale_publishers`;
* late joining: :meth:`Subscriber.snapshot` asks the broker for the newest
  value of every stream (after subscribing, the clone pattern) and from
  then on drops live messages that are not newer than the snapshot.

Heartbeats are always subscribed to and are consumed here, not returned by
:meth:`recv`, unless ``deliver_heartbeats`` is set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import zmq

from daq import messages
from daq.bus.gaps import GapTracker
from daq.errors import BusError, MessageDecodeError
from daq.links import keep_alive
from daq.messages import Kind, Message
from daq.security import ClientKeys, arm_client

log = logging.getLogger(__name__)


@dataclass
class PublisherState:
    """What heartbeats told us about one publisher."""

    name: str
    epoch: int
    period_s: float
    last_beat: float  # time.monotonic() of the last heartbeat received
    streams: tuple[str, ...] = ()


class Subscriber:
    """Subscribes to the live path with prefix filters; counts gaps and stale publishers.

    Args:
        url: the broker's subscribe endpoint (``BusConfig.subscribe_url``).
        prefixes: topic prefixes to receive (``""`` for everything).
        snapshot_url: the broker's snapshot endpoint, for :meth:`snapshot`.
        hwm: receive high-water mark.
        deliver_heartbeats: also return heartbeat messages from :meth:`recv`.
        context: zmq context (the process-wide instance by default).
        curve: client keys when the broker requires CURVE (``LabConfig.keys_for("bus")``).
    """

    def __init__(
        self,
        url: str,
        prefixes: Iterable[str] = ("",),
        *,
        snapshot_url: str | None = None,
        hwm: int = 100_000,
        deliver_heartbeats: bool = False,
        context: zmq.Context | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.url = url
        self.snapshot_url = snapshot_url
        self.prefixes = tuple(prefixes)
        self.deliver_heartbeats = deliver_heartbeats
        self.gaps = GapTracker()
        self.publishers: dict[str, PublisherState] = {}
        self.decode_errors = 0
        self.filtered_by_snapshot = 0
        self._snapshot_seqs: dict[str, tuple[int, int]] = {}
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        keep_alive(self._sock)
        for prefix in {*self.prefixes, "hb/"}:
            self._sock.setsockopt(zmq.SUBSCRIBE, prefix.encode("ascii"))
        self.curve = curve
        arm_client(self._sock, curve)
        self._sock.connect(url)

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- receiving ---------------------------------------------------------------------------

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """The next message, or None after ``timeout_s`` (None waits forever).

        Malformed frames are counted in ``decode_errors``, logged and skipped.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            wait_ms = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self._sock.poll(wait_ms, zmq.POLLIN):
                return None
            msg = self._receive_one()
            if msg is not None:
                return msg

    def recv_nowait(self) -> Message | None:
        """A queued message, or None at once."""
        while self._sock.poll(0, zmq.POLLIN):
            msg = self._receive_one()
            if msg is not None:
                return msg
        return None

    def _receive_one(self) -> Message | None:
        sock = self._sock
        # Topic and header are small: plain copies are cheaper than zmq.Frame objects. The
        # payload is taken without a copy when it is big (a record), copied when small.
        frames: list[Any] = [sock.recv()]
        if sock.get(zmq.RCVMORE):
            frames.append(sock.recv())
        if len(frames) == 2 and sock.get(zmq.RCVMORE):
            frame = sock.recv(copy=False)
            frames.append(frame.bytes if len(frame) < 65536 else frame)
            while frame.more:  # not one of ours: let decode refuse it
                frame = sock.recv(copy=False)
                frames.append(frame)
        try:
            msg = messages.decode(frames)
        except MessageDecodeError as exc:
            self.decode_errors += 1
            log.warning("dropped a malformed message (%d so far): %s", self.decode_errors, exc)
            return None
        return self._account(msg)

    def _account(self, msg: Message) -> Message | None:
        if msg.kind is Kind.HEARTBEAT:
            self._on_heartbeat(msg)
            return msg if self.deliver_heartbeats else None
        stream = msg.stream
        snap = self._snapshot_seqs.get(stream)
        if snap is not None:
            if snap[0] == msg.epoch and msg.seq <= snap[1]:
                self.filtered_by_snapshot += 1
                return None
            del self._snapshot_seqs[stream]
            # The first live message marks where our subscription began. Values between a
            # (lagging) snapshot and it were superseded before we joined: history, not loss.
            self.gaps.streams.pop(stream, None)
        self.gaps.observe(stream, msg.epoch, msg.seq)
        return msg

    def _on_heartbeat(self, beat: Message) -> None:
        streams = beat.meta.get("streams", {})
        if not isinstance(streams, dict):
            self.decode_errors += 1
            return
        period = beat.meta.get("period", 1.0)
        self.publishers[beat.source] = PublisherState(
            name=beat.source,
            epoch=beat.epoch,
            period_s=float(period) if isinstance(period, int | float) else 1.0,
            last_beat=time.monotonic(),
            streams=tuple(streams),
        )
        for stream, last in streams.items():
            if isinstance(last, int) and any(stream.startswith(p) for p in self.prefixes):
                self.gaps.observe_tail(stream, beat.epoch, last)

    # ---- health ------------------------------------------------------------------------------

    def stale_publishers(self, missed_beats: float = 2.0) -> list[str]:
        """Publishers whose last heartbeat is older than ``missed_beats`` periods."""
        now = time.monotonic()
        return sorted(
            name for name, state in self.publishers.items()
            if now - state.last_beat > missed_beats * state.period_s
        )

    # ---- late joining ------------------------------------------------------------------------

    def snapshot(self, prefix: str = "", timeout_s: float = 5.0) -> list[Message]:
        """The newest message of every stream under ``prefix``, from the broker's cache.

        Subscribe first (the constructor did), then ask: live messages that
        arrive afterwards and are not newer than the snapshot are dropped, so
        the caller sees the snapshot, then only newer live data.

        Raises:
            BusError: no snapshot endpoint configured, or no answer in time.
        """
        if self.snapshot_url is None:
            raise BusError("no snapshot endpoint configured for this subscriber")
        req = self._ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        arm_client(req, self.curve)
        try:
            req.connect(self.snapshot_url)
            req.send_multipart([b"SNAPSHOT", prefix.encode("ascii")])
            if not req.poll(int(timeout_s * 1000), zmq.POLLIN):
                raise BusError(f"no snapshot from {self.snapshot_url} within {timeout_s} s")
            reply = req.recv_multipart(copy=False)
        finally:
            req.close()
        if len(reply) < 2 or reply[0].bytes != b"SNAPSHOT":
            raise BusError(f"snapshot endpoint {self.snapshot_url} answered something else")
        counts = json.loads(reply[1].bytes)
        result: list[Message] = []
        index = 2
        for count in counts:
            frames = reply[index:index + count]
            index += count
            try:
                msg = messages.decode(frames)
            except MessageDecodeError as exc:
                self.decode_errors += 1
                log.warning("dropped a malformed snapshot entry: %s", exc)
                continue
            if msg.kind is Kind.HEARTBEAT:
                self._on_heartbeat(msg)
                continue
            self._snapshot_seqs[msg.stream] = (msg.epoch, msg.seq)
            self.gaps.observe(msg.stream, msg.epoch, msg.seq)
            result.append(msg)
        return result
