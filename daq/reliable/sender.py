"""The daemon side of the reliable path: spool, send a window, take acks, resend when stalled.

:class:`ReliableSender` is owned by one thread (the daemon's outbound
stage). :meth:`~ReliableSender.send` takes stamped messages into a buffer;
:meth:`~ReliableSender.poll` (called from the owner's loop) writes the
buffer to the spool in one transaction, and only then transmits, takes in
the logger's replies, heartbeats, and goes back to the oldest
unacknowledged message after a stall. The protocol is in the package
docstring (:mod:`daq.reliable`).

Memory stays bounded whatever the logger does: the spool is on disk; in
memory live only the messages of the current window (``window`` messages,
``window_bytes`` bytes), the socket's queue (``SNDHWM`` = window) and the
buffer of one outbound batch. With ``ZMQ_IMMEDIATE`` nothing is queued for
a logger that is not connected, and after a stall the sender sends only
HELLO until the logger answers: an outage costs no resends, and what it
resends afterwards starts at the oldest unacknowledged message, one window
at a time.

Per message the sender costs one small spool row and, for a logger that takes
batches (its ACK says ``"batch": true``), a share of one MSGS frame set of up
to ``batch_messages`` messages: the window's unsent messages leave together,
grouped by stream. Payloads are never copied on the way: the spool writes
them to its segment file straight from the message's buffer, and the batch
joins them once into its payload frame.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import zmq

from daq import messages
from daq.errors import MessageDecodeError
from daq.links import keep_alive
from daq.messages import Message
from daq.reliable import protocol
from daq.reliable.identity import load_instance_id, new_instance_id
from daq.reliable.protocol import Control, ErrorCode, GapReason
from daq.reliable.spool import Entry, GapNotice, Key, Spool, SpoolLimits, given_up
from daq.reliable.stats import SenderStats
from daq.reliable.window import Window
from daq.security import ClientKeys, arm_client

log = logging.getLogger(__name__)

#: Logger errors kept for the status (the newest), and their length there: the daemon's
#: status message must stay well below the wire's 64 KiB header limit.
KEEP_ERRORS = 10
ERROR_CHARS = 300
# Plain ints: flag enums cost more per frame than the send itself.
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)

#: The stall timeout grows up to this multiple of resend_after_s for a slow logger.
MAX_STALL_FACTOR = 8

#: The default bound of a spool in memory (no spool_path): smaller than on disk.
MEMORY_LIMITS = SpoolLimits(max_bytes=256 << 20, max_messages=1_000_000)

#: Messages and bytes of one MSGS frame set at most.
BATCH_MESSAGES = 2000
BATCH_BYTES = 8 << 20


class ReliableSender:
    """Sends stamped messages to the logger and keeps them until acknowledged.

    Args:
        url: the logger's endpoint (ROUTER).
        pub: publisher name (the same as on the live path).
        epoch: publisher session id (the same as on the live path).
        instance: this daemon's instance id; by default the one kept beside the
            spool (``instance.id``), or a random one for a spool in memory.
        spool_path: the spool database (the daemon's state directory); None keeps
            the spool in memory (tests, tools: nothing survives a restart).
        limits: the spool's bound (:class:`SpoolLimits`; in memory 256 MiB by default).
        window: messages held in memory for transmission (and so in flight) at most.
        window_bytes: bytes held in memory for transmission at most.
        resend_after_s: no acknowledgement for this long while messages are in
            flight is a stall: HELLO, then resend from the oldest unacknowledged. A
            logger that answers only after a stall was declared (a slow store) gets
            up to 8 times longer; timely acknowledgements bring it back.
        heartbeat_s: period of HB frames.
        sync_every: buffered messages that force a spool write before the next poll.
        curve: client keys when the logger's endpoint runs CURVE
            (``LabConfig.keys_for("logger")``); the key is then the daemon's identity.
        context: zmq context.

    Raises:
        SpoolBusy: another process holds the spool.
    """

    def __init__(
        self,
        url: str,
        *,
        pub: str,
        epoch: int,
        instance: str | None = None,
        spool_path: Path | None = None,
        limits: SpoolLimits | None = None,
        window: int = 10_000,
        window_bytes: int = 32 << 20,
        resend_after_s: float = 2.0,
        heartbeat_s: float = 1.0,
        sync_every: int = 5000,
        curve: ClientKeys | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        self.url = url
        self.pub = pub
        self.epoch = epoch
        self.window = max(1, window)
        self.window_bytes = max(1, window_bytes)
        self.resend_after_s = resend_after_s
        self.heartbeat_s = heartbeat_s
        self.sync_every = max(1, sync_every)
        # An id made up for this process only (no spool on disk) does not survive a restart:
        # the logger is told, so that this process's clean stop frees the name.
        self.ephemeral = instance is None and spool_path is None
        if instance is None:
            instance = (load_instance_id(spool_path.parent) if spool_path is not None
                        else new_instance_id())
        self.instance = instance
        self.spool = Spool(spool_path, limits or (MEMORY_LIMITS if spool_path is None else None))
        self.spool.begin_session(epoch, pub)
        #: Acknowledged seq per stream of the current session.
        self.acked: dict[str, int] = {}
        #: Newest stamped seq per stream of the current session (what HB announces).
        self.last_seq: dict[str, int] = {}
        self.resends = 0
        self.resent_messages = 0
        self.identity_refusals = 0
        self.spool_errors = 0
        self.decode_errors = 0
        self.logger_errors: deque[str] = deque(maxlen=KEEP_ERRORS)
        self.logger_errors_total = 0
        self.parked_streams: set[str] = set()
        self._acked: dict[Key, int] = {}
        self._ack_pending: dict[Key, int] = {}
        self._closed_pending: set[int] = set()
        self._closing: dict[int, float] = {}  # CLOSE sent, not yet acknowledged: when
        self._volatile_gaps: list[GapNotice] = []  # dropped while the spool could not be written
        self._buffer: list[Entry] = []
        self._buffer_bytes = 0
        self._window = Window(self.spool, window, window_bytes)
        self._max_sent_id = 0
        self.batches = False  # the logger takes MSGS (its ACKs say so)
        self._awaiting = True  # send only HELLO until the logger answers
        self._hello_due = True
        self._hello_at = -1e9
        self._rewind_due = False
        self._controls_at = -1e9
        now = time.monotonic()
        self._last_progress = now
        # The stall timeout adapts: a logger that answers, only late (a slow store), gets
        # more time, so that a slow logger is not flooded with resends of what it still has.
        self._stall_s = resend_after_s
        self._last_reply: float | None = None
        self._next_beat = 0.0
        self._stats_at = -1e9
        self._oldest_t_ns: int | None = None
        self._file_bytes = 0
        self.last_stats = SenderStats()
        ctx = context or zmq.Context.instance()
        self._sock = ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        # Bounded queue (the window is what may be in flight), and nothing queued for a
        # logger that is not connected: an outage must not pile up resends in memory.
        self._sock.setsockopt(zmq.SNDHWM, self.window + 1000)
        self._sock.setsockopt(zmq.IMMEDIATE, 1)
        keep_alive(self._sock)
        arm_client(self._sock, curve)
        self._sock.connect(url)
        self._send_hello()
        self._refresh_stats(now)

    def close(self) -> None:
        """Write what is buffered, close the socket and the spool (its data stays)."""
        try:
            self.sync()
        finally:
            self._sock.close()
            self.spool.close()

    # ---- the caller's side ----------------------------------------------------------------

    @property
    def unacked(self) -> int:
        """Messages not acknowledged yet (spooled or buffered)."""
        return self.spool.count + len(self._buffer)

    def send(self, msg: Message, frames: list[bytes | memoryview] | None = None) -> None:
        """Take a stamped message (seq, epoch set); it is spooled, then sent, by :meth:`poll`.

        Args:
            msg: the message.
            frames: its frames when the caller has encoded it already (the live path).
        """
        if msg.epoch != self.epoch or msg.seq < 0:
            raise ValueError(f"{msg.stream}: message not stamped by this publisher session")
        if frames is None:
            frames = messages.encode(msg)
        # The payload stays a view of the message's array (kept alive by the view): no copy.
        payload = frames[2] if len(frames) == 3 else None
        entry = Entry(0, msg.epoch, msg.stream, msg.seq, time.time_ns(), bytes(frames[1]),
                      payload)
        self._buffer.append(entry)
        self._buffer_bytes += entry.nbytes
        self.last_seq[msg.stream] = msg.seq
        if len(self._buffer) >= self.sync_every or self._buffer_bytes >= self.window_bytes:
            self.sync()

    def sync(self) -> None:
        """Write the buffer (and the acknowledgements taken in) to the spool in one transaction."""
        if not (self._buffer or self._ack_pending or self._closed_pending):
            return
        backlog = self._window.backlog
        new = self._buffer
        try:
            dropped = self.spool.write(new, self._ack_pending, self._closed_pending)
        except (sqlite3.Error, OSError) as exc:
            self._spool_failed(exc)
            return
        self._buffer = []
        self._buffer_bytes = 0
        self._ack_pending = {}
        self._closed_pending = set()
        if not backlog:  # the new messages are next in spool order: keep them, no re-read
            for entry in new:
                if not self._window.room():
                    break
                self._window.admit(entry)
        if dropped is not None:
            log.warning("spool over its bound: dropped the oldest %d messages (reported to "
                        "the logger as gaps)", dropped.count)
            self._window.forget_upto(dropped.max_id)
            self._send_gaps(dropped.notices)

    def poll(self, timeout_s: float = 0.0) -> None:
        """Spool what was sent, take in replies (waiting up to ``timeout_s`` for the first),
        heartbeat, transmit the window; after a stall, HELLO and resend."""
        self.sync()
        if self._sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            while True:
                try:
                    frames = self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_reply(frames)
        now = time.monotonic()
        if self._rewind_due:
            self._rewind()
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_s
            self._try_send(protocol.heartbeat_frames(self.pub, self.epoch, self.instance,
                                                     self.last_seq))
        waiting = self._window.inflight or self._closing or self._pending_gaps()
        if not self._awaiting and waiting and now - self._last_progress > self._stall_s:
            log.info("reliable path: no acknowledgement for %.1f s, asking the logger where "
                     "it stands (%d unacknowledged)", now - self._last_progress, self.unacked)
            self._awaiting = True
            self._hello_due = True
        if self._awaiting:
            if self._hello_due or now - self._hello_at > self.resend_after_s:
                self._send_hello()
        else:
            if now - self._controls_at > self.resend_after_s:
                self._controls_at = now
                self._send_gaps(self._pending_gaps())
                self._close_finished_sessions(now)
            self._window.fill(self._acked)
            self._transmit()
        if now - self._stats_at > 0.5:
            self._refresh_stats(now)

    def flush(self, timeout_s: float) -> bool:
        """Poll until everything is acknowledged or ``timeout_s`` passes; True when all acked."""
        end = time.monotonic() + timeout_s
        while self.unacked or self._pending_gaps():
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.1))
        return True

    def finish(self, timeout_s: float) -> bool:
        """At a clean stop: flush, then close this session at the logger (True when done).

        What is not acknowledged within ``timeout_s`` stays in the spool and is
        sent, and the session closed, by the next start.
        """
        end = time.monotonic() + timeout_s
        if not self.flush(timeout_s):
            return False
        self._closing[self.epoch] = -1e9  # due now
        while self.epoch in self._closing:
            left = end - time.monotonic()
            if left <= 0:
                return False
            if not self._awaiting and self._closing.get(self.epoch, 0) < \
                    time.monotonic() - self.resend_after_s:
                self._send_close(self.epoch, time.monotonic())
            self.poll(min(left, 0.1))
        self.sync()
        return True

    def resend_all(self) -> None:
        """Go back to the oldest unacknowledged message now (normally done after a stall)."""
        self.sync()
        self._awaiting = False
        self._rewind()
        self._window.fill(self._acked)
        self._transmit()

    def stats(self) -> SenderStats:
        """A fresh snapshot (owner thread); other threads read :attr:`last_stats`."""
        self._refresh_stats(time.monotonic())
        return self.last_stats

    # ---- the window ---------------------------------------------------------------------

    def _transmit(self) -> None:
        if self.batches:
            self._transmit_batches()
            return
        window = self._window
        while (entry := window.next_unsent()) is not None:
            if not self._try_send(entry.frames()):
                return  # the socket's queue is full: the rest waits for the next poll
            if not window.inflight:
                self._last_progress = time.monotonic()  # a stall is counted from here
            window.sent(entry)
            if entry.id <= self._max_sent_id:
                self.resent_messages += 1
            else:
                self._max_sent_id = entry.id

    def _transmit_batches(self) -> None:
        """Send the unsent part of the window as MSGS frame sets, grouped by stream."""
        window = self._window
        while (entry := window.next_unsent()) is not None:
            taken: list[Entry] = []
            size = 0
            while entry is not None and len(taken) < BATCH_MESSAGES and size < BATCH_BYTES:
                window.sent(entry)
                taken.append(entry)
                size += entry.nbytes
                entry = window.next_unsent()
            # Grouped by stream (order within a stream kept): a stream's records become one
            # contiguous block of the payload frame, written to HDF5 without a copy.
            groups: dict[str, list[Entry]] = {}
            for item in taken:
                groups.setdefault(item.stream, []).append(item)
            ordered = [e for group in groups.values() for e in group]
            frames = protocol.batch_frames([(e.stream.encode("ascii"), e.header, e.payload)
                                            for e in ordered])
            if not self._try_send(frames):
                window.unsend(taken)  # the socket's queue is full: the rest waits for the next poll
                return
            now = time.monotonic()
            for item in taken:
                if item.id <= self._max_sent_id:
                    self.resent_messages += 1
                else:
                    self._max_sent_id = item.id
            if len(window.inflight) == len(taken):
                self._last_progress = now  # a stall is counted from here

    def _rewind(self) -> None:
        """Forget the window and start again at the oldest unacknowledged message."""
        self._rewind_due = False
        self.sync()
        if self._window.inflight:
            self.resends += 1
        self._window.clear()
        self._last_progress = time.monotonic()
        self._controls_at = -1e9  # gap notices and CLOSEs go out again at once

    # ---- replies --------------------------------------------------------------------------

    def _on_reply(self, frames: list[bytes]) -> None:
        try:
            reply = protocol.parse(frames)
        except MessageDecodeError as exc:
            self.decode_errors += 1
            log.warning("reliable path: dropped a malformed reply: %s", exc)
            return
        if not isinstance(reply, Control) or reply.verb not in protocol.LOGGER_VERBS:
            self.decode_errors += 1
            return
        self._last_reply = time.monotonic()
        if reply.verb == protocol.ERROR:
            self._on_error(reply)
            return
        if reply.verb == protocol.ACK and reply.body.get("batch"):
            self.batches = True
        late = self._awaiting
        if self._awaiting:  # the logger answers: resend from what it holds, after every reply
            self._awaiting = False  # of this poll has been taken in
            self._rewind_due = True
        self._on_ack(reply.body["epoch"], reply.body["streams"],
                     bool(reply.body.get("closed", False)), late)

    def _on_ack(self, epoch: int, streams: dict[str, int], closed: bool,
                late: bool = False) -> None:
        progressed = False
        for stream, seq in streams.items():
            key = (epoch, stream)
            if seq <= self._acked.get(key, -1):
                continue
            progressed = True
            self._acked[key] = seq
            self._ack_pending[key] = seq
            if epoch == self.epoch:
                self.acked[stream] = seq
            self._window.acked(key, seq)
        self._volatile_gaps = [g for g in self._volatile_gaps
                               if g.last > self._acked.get((g.epoch, g.stream), -1)]
        if closed and epoch in self.spool.sessions:
            progressed = True
            self._closing.pop(epoch, None)
            self._closed_pending.add(epoch)
            for key in [k for k in self._acked if k[0] == epoch and epoch != self.epoch]:
                del self._acked[key]
        if progressed:
            now = time.monotonic()
            if late:  # progress after a stall was declared: the logger is slow, not gone
                self._stall_s = min(2 * self._stall_s, MAX_STALL_FACTOR * self.resend_after_s)
            elif now - self._last_progress < self._stall_s / 2:
                self._stall_s = max(self.resend_after_s, 0.9 * self._stall_s)
        if progressed or not self._window.inflight:
            self._last_progress = time.monotonic()

    def _on_error(self, reply: Control) -> None:
        why = str(reply.body.get("why", "?"))
        code = reply.code
        self.logger_errors.append(why)
        self.logger_errors_total += 1
        if code is ErrorCode.REFUSED and reply.refused:
            self._park(reply)
        elif code is ErrorCode.HELLO:
            log.info("the logger asks for HELLO (it restarted?): %s", why)
            self._awaiting = True
            self._hello_due = True
        elif code is ErrorCode.IDENTITY:
            self.identity_refusals += 1
            if self.identity_refusals == 1 or self.identity_refusals % 100 == 0:
                log.error("the logger refuses this daemon (%d times): %s; the data stays "
                          "spooled", self.identity_refusals, why)
            self._awaiting = True
        else:
            log.error("logger reports: %s (data stays spooled)", why)

    def _park(self, reply: Control) -> None:
        """Stop resending what the logger can never store; tell it the range is given up."""
        self.sync()
        for item in reply.refused:
            if item.epoch not in self.spool.sessions:
                continue
            try:
                notices = self.spool.park(item.epoch, item.stream, item.first, item.last,
                                          item.why)
            except (sqlite3.Error, OSError) as exc:
                self._spool_failed(exc)
                return
            self._window.discard((item.epoch, item.stream), item.first, item.last)
            if notices:
                self.parked_streams.add(item.stream)
                log.error("the logger refused %s epoch %d seq %d..%d (%s): parked in the "
                          "spool, not resent", item.stream, item.epoch, item.first, item.last,
                          item.why)
                self._send_gaps(notices)

    # ---- controls -------------------------------------------------------------------------

    def _try_send(self, frames: Sequence[bytes | memoryview]) -> bool:
        """Send without blocking; False when the socket's queue is full (or no logger is
        connected). A multipart message is queued whole or not at all."""
        sock = self._sock
        try:
            sock.send(frames[0], _MORE)
        except zmq.Again:
            return False
        # A batch's payload frame is megabytes: handed to libzmq without a copy.
        for frame in frames[1:-1]:
            sock.send(frame, _MORE, copy=len(frame) < 65536)
        sock.send(frames[-1], _LAST, copy=len(frames[-1]) < 65536)
        return True

    def _send_hello(self) -> None:
        resume = [e for e in self.spool.sessions if e != self.epoch]
        if self._try_send(protocol.hello_frames(self.pub, self.epoch, self.instance, resume,
                                                ephemeral=self.ephemeral)):
            self._hello_due = False
            self._hello_at = time.monotonic()

    def _pending_gaps(self) -> list[GapNotice]:
        return [*self.spool.gaps, *self._volatile_gaps]

    def _send_gaps(self, notices: list[GapNotice]) -> None:
        if notices and not self._window.inflight:
            self._last_progress = time.monotonic()  # an answer is due from now on
        for g in notices:
            if not self._try_send(protocol.gap_frames(self.pub, g.epoch, self.instance,
                                                      g.stream, g.first, g.last, g.reason)):
                return

    def _close_finished_sessions(self, now: float) -> None:
        """CLOSE every older session whose messages are all acknowledged (or given up)."""
        pending = {g.epoch for g in self.spool.gaps}
        for epoch in list(self.spool.sessions):
            if epoch == self.epoch or self.spool.counts.get(epoch) or epoch in pending \
                    or epoch in self._closed_pending:
                continue
            if now - self._closing.get(epoch, -1e9) > self.resend_after_s:
                self._send_close(epoch, now)

    def _send_close(self, epoch: int, now: float) -> None:
        streams = self.spool.last_seqs(epoch)
        if epoch == self.epoch:
            streams.update(self.last_seq)
        if self._try_send(protocol.close_frames(self.spool.sessions.get(epoch, self.pub), epoch,
                                                self.instance, streams)):
            if not self._window.inflight:
                self._last_progress = now  # an answer is due from now on
            self._closing[epoch] = now

    # ---- trouble with the spool itself ----------------------------------------------------

    def _spool_failed(self, exc: BaseException) -> None:
        self.spool_errors += 1
        if self.spool_errors == 1 or self.spool_errors % 100 == 0:
            log.error("spool %s cannot be written (%d times): %s", self.spool.path or "(memory)",
                      self.spool_errors, exc)
        # The buffer waits for the disk; beyond one window it is given up (reported as gaps).
        excess = len(self._buffer) - self.window
        if excess > 0:
            lost, self._buffer = self._buffer[:excess], self._buffer[excess:]
            self._buffer_bytes = sum(e.nbytes for e in self._buffer)
            notices = given_up(lost, GapReason.SPOOL_FAILED)
            self._volatile_gaps.extend(notices)
            self._send_gaps(notices)

    def _refresh_stats(self, now: float) -> None:
        self._stats_at = now
        try:
            self._oldest_t_ns = self.spool.oldest_t_ns()
            self._file_bytes = self.spool.file_bytes()
        except sqlite3.Error:
            pass
        oldest = self._oldest_t_ns
        if oldest is None and self._buffer:
            oldest = self._buffer[0].t_ns
        self.last_stats = SenderStats(
            unacked=self.unacked,
            spooled_bytes=self.spool.nbytes,
            spool_file_bytes=self._file_bytes,
            oldest_unacked_age_s=max(0.0, (time.time_ns() - oldest) / 1e9) if oldest else 0.0,
            overflow_dropped=self.spool.dropped,
            resends=self.resends,
            resent_messages=self.resent_messages,
            parked_streams=tuple(sorted(self.parked_streams))[:50],
            parked_messages=self.spool.parked,
            pending_sessions=sum(1 for e in self.spool.sessions if e != self.epoch),
            gap_notices=len(self._pending_gaps()),
            identity_refusals=self.identity_refusals,
            spool_errors=self.spool_errors,
            logger_errors=tuple(e[:ERROR_CHARS] for e in self.logger_errors),
            logger_errors_total=self.logger_errors_total,
            last_reply_age_s=None if self._last_reply is None else now - self._last_reply,
        )
