"""What one write cycle does with each frame set: identities, the ledger, the batch, replies.

An :class:`Intake` belongs to one attempt at a write cycle. For each frame
set (:meth:`Intake.take`) it checks who speaks (:mod:`daq.logger.sessions`),
updates the cycle's tentative ledger, puts new messages into the batch and
notes the replies; its :class:`Tally` reaches the service's counters only
if the attempt commits.

* HELLO: claim the name; the current session and the ``resume`` list stay
  open, every other open session of the name is superseded; answered with
  the ACK of each of those sessions.
* HB: claim; the newest seq of each stream is noted.
* GAP: claim; the range is recorded as a gap with the sender's reason.
* CLOSE: claim; what was announced beyond what the sender spooled is a gap
  ``lost before spooling``; the session is closed (ACK ``closed``).
* MSG: only on a connection bound by HELLO/HB, for its own publisher;
  invalid messages and messages of closed sessions are refused (the sender
  parks them); duplicates by ``(stream, epoch, seq)`` are dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from daq import reliable
from daq.logger.ledger import Cycle
from daq.logger.replies import Replies
from daq.logger.sessions import Sessions, Verdict, identity_of, short
from daq.logger.sink import Batch
from daq.messages import SAMPLE_DTYPE, Kind, Message
from daq.reliable import Control, ErrorCode

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """Counters of one attempt (added to :class:`~daq.logger.stats.LoggerStats` on commit)."""

    rejected: int = 0
    duplicates: int = 0
    malformed: int = 0
    refused_sessions: int = 0
    sender_gaps: int = 0
    samples: int = 0
    records: int = 0


def validate(msg: Message) -> str | None:
    """Why ``msg`` cannot be stored, or None when it can."""
    if msg.seq < 0:
        return f"{msg.stream}: seq {msg.seq} is not stamped"
    if msg.kind is Kind.HEARTBEAT:
        return f"{msg.stream}: heartbeats travel as HB frames, not as MSG"
    if msg.kind is Kind.DATA:
        if msg.data is None or msg.data.dtype != SAMPLE_DTYPE or msg.data.ndim != 1 \
                or len(msg.data) == 0:
            return f"{msg.stream}: data payload must be 1-D (t ns, value) rows"
    elif msg.kind is Kind.WAVE:
        if msg.data is None or msg.data.ndim != 1 or msg.data.size == 0 \
                or msg.data.dtype.kind not in "iuf":
            return f"{msg.stream}: a waveform record must be a 1-D numeric array"
        for key in ("dt", "scale", "offset"):
            value = msg.meta.get(key, 1.0)
            if not isinstance(value, int | float) or isinstance(value, bool) \
                    or not math.isfinite(value):
                return f"{msg.stream}: meta {key} must be a finite number, got {value!r}"
        if not msg.meta.get("dt", 0) > 0:
            return f"{msg.stream}: meta dt must be > 0 s"
        for key in ("t0", "presamples"):
            value = msg.meta.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) \
                    or not -(2**63) <= value < 2**63:
                return f"{msg.stream}: meta {key} must be a 64-bit integer, got {value!r:.40}"
    return None


class Intake:
    """One attempt's handling of frame sets (see the module docstring).

    Args:
        cycle: the attempt's tentative ledger.
        sessions: owners of names and bindings of connections.
        keys: CURVE public key (ZAP User-Id) per connection, when the endpoint has CURVE.
        key_names: the publisher name each key may archive as (None: any name).
        keeps_records: the logger has a sink for waveform records (HDF5); without one a
            record is refused with the reason (its sender parks it), never a failed batch.
    """

    def __init__(self, cycle: Cycle, sessions: Sessions, keys: Mapping[bytes, str],
                 key_names: Mapping[str, str] | None = None, *,
                 keeps_records: bool = True) -> None:
        self.cycle = cycle
        self.sessions = sessions
        self.keys = keys
        self.key_names = key_names
        self.keeps_records = keeps_records
        self.batch = Batch()
        self.replies = Replies()
        self.tally = Tally()

    def take(self, peer: bytes, item: Message | Control) -> None:
        """Handle one frame set from connection ``peer``."""
        if isinstance(item, Control):
            self._control(peer, item)
        else:
            self._message(peer, item)

    # ---- MSG ------------------------------------------------------------------------------

    def _message(self, peer: bytes, msg: Message) -> None:
        problem = validate(msg)
        if problem is None and msg.kind is Kind.WAVE and not self.keeps_records:
            problem = (f"{msg.stream}: this logger keeps no waveform records (its sinks have "
                       "no hdf5; add hdf5 to logger.sinks to archive record streams)")
        if problem is not None:
            self.tally.rejected += 1
            self.replies.refuse(peer, msg.stream, msg.epoch, msg.seq, problem)
            return
        allowed = self.sessions.speaks_for(peer, msg.pub)
        if allowed is None:
            self.replies.error(peer, ErrorCode.HELLO,
                               f"{msg.stream}: this connection has not said HELLO (did the "
                               "logger restart?); send HELLO, then resend")
            return
        if not allowed:
            self.tally.refused_sessions += 1
            self.replies.error(peer, ErrorCode.IDENTITY,
                               f"{msg.stream}: this connection may not send messages of "
                               f"publisher {msg.pub!r} (another instance owns that name)")
            return
        if self.cycle.superseded(msg):
            self.tally.rejected += 1
            self.replies.refuse(peer, msg.stream, msg.epoch, msg.seq,
                                f"session {msg.epoch} of publisher {msg.pub!r} is closed "
                                "(superseded by a newer session, or closed by its sender)")
            return
        self.replies.touch(peer, msg.epoch, msg.stream)
        if not self.cycle.offer(msg):
            self.tally.duplicates += 1
            return
        self.batch.messages.append(msg)
        if msg.kind is Kind.DATA:
            self.tally.samples += len(msg.data)  # type: ignore[arg-type]
        elif msg.kind is Kind.WAVE:
            self.tally.records += 1

    # ---- HELLO, HB, GAP, CLOSE ------------------------------------------------------------

    def _control(self, peer: bytes, item: Control) -> None:
        body = item.body
        verb = item.verb
        pub = body.get("pub")
        if verb not in (reliable.HELLO, reliable.HB, reliable.GAP, reliable.CLOSE) \
                or not isinstance(pub, str):
            self.tally.malformed += 1
            self.replies.error(peer, ErrorCode.REFUSED,
                               f"{verb.decode(errors='replace')} is not for the logger "
                               "or lacks a publisher name")
            return
        epoch = int(body["epoch"])
        key = self.keys.get(peer)
        if key and self.key_names is not None and self.key_names.get(key) != pub:
            self.tally.refused_sessions += 1
            self.replies.error(peer, ErrorCode.IDENTITY,
                               f"{verb.decode()} refused: this key may not archive as {pub!r}")
            return
        identity = identity_of(key, body.get("instance"))
        if identity is None:
            self.tally.malformed += 1
            self.replies.error(peer, ErrorCode.IDENTITY, f"{verb.decode()} without an instance id")
            return
        verdict = self.sessions.claim(pub, identity, verb.decode())
        if verdict is Verdict.REFUSED:
            self._refused(peer, pub, identity, verb)
            return
        if verdict is Verdict.TAKEOVER:
            log.warning("publisher %r: instance %s takes the name over (the previous owner was "
                        "silent for %.0f s or more)", pub, short(identity),
                        self.sessions.takeover_after_s)
        elif verdict is Verdict.RELEASED:
            log.info("publisher %r: instance %s takes the name its previous owner released",
                     pub, short(identity))
        self.sessions.bind(peer, pub, identity)
        if verb == reliable.HELLO:
            self._hello(peer, pub, epoch, body["resume"], bool(body.get("ephemeral", False)))
        elif verb == reliable.HB:
            self._heartbeat(peer, pub, epoch, body["streams"])
        elif verb == reliable.GAP:
            self.tally.sender_gaps += 1
            stream, last = body["stream"], body["last"]
            state = self.cycle.state(stream, epoch, pub)
            if state.closed:  # nothing more will be stored there: acknowledge as asked
                self.replies.ack(peer, epoch, stream, last)
                return
            self.cycle.gap(pub, epoch, stream, body["first"], last, body["reason"])
            self.replies.touch(peer, epoch, stream)
        else:
            self.tally.sender_gaps += 1
            streams = self.cycle.close_session(pub, epoch, body["streams"])
            self.sessions.closed(pub, epoch)
            self.replies.close(peer, epoch, streams)

    def _hello(self, peer: bytes, pub: str, epoch: int, resume: list[int],
               ephemeral: bool) -> None:
        keep = {epoch, *resume}
        self.sessions.begin(pub, epoch, resume, ephemeral)
        self.cycle.supersede(pub, keep)
        for e in sorted(keep):
            self.replies.session(peer, e)

    def _heartbeat(self, peer: bytes, pub: str, epoch: int, streams: dict[str, int]) -> None:
        owner = self.sessions.owners.get(pub)
        if owner is not None and owner.epoch != epoch:
            if owner.epoch < 0:  # named by HB before any HELLO (a logger without its store)
                self.sessions.begin(pub, epoch, ())
            elif epoch not in owner.resume:
                self.replies.error(peer, ErrorCode.HELLO,
                                   f"publisher {pub!r}: session {epoch} is not the one its "
                                   f"HELLO named ({owner.epoch}); send HELLO")
                return
        for stream in self.cycle.heartbeat(pub, epoch, streams):
            self.replies.touch(peer, epoch, stream)

    def _refused(self, peer: bytes, pub: str, identity: str, verb: bytes) -> None:
        self.tally.refused_sessions += 1
        owner = self.sessions.owners[pub]
        total = self.sessions.refused_total
        if total <= 10 or total % 100 == 0:
            log.error("refused %s for publisher %r from instance %s: the name belongs to "
                      "instance %s, heard from %.1f s ago (%d refusals so far)",
                      verb.decode(), pub, short(identity), short(owner.identity),
                      self.sessions.clock() - owner.last_seen, total)
        self.replies.error(peer, ErrorCode.IDENTITY,
                           f"publisher {pub!r} belongs to another live instance "
                           f"({short(owner.identity)}); {verb.decode()} refused. Two daemons "
                           "with one name? A replaced PC takes the name over once the old "
                           f"one has been silent for {self.sessions.takeover_after_s:.0f} s")
