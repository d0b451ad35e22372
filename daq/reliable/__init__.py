"""The reliable path: daemon -> logger, spooled on disk, acknowledged, resent until acknowledged.

The live path (:mod:`daq.bus`) may drop under load; the archive must not. So
every message a daemon publishes is also handed to a :class:`ReliableSender`
(DEALER), which writes it to a spool on disk (:mod:`daq.reliable.spool`)
before sending it, and keeps it there until the logger (ROUTER)
acknowledges that it is durable. A daemon that dies, or is stopped, with
the logger away sends the rest when it starts again, under the original
session. Protocol ``QDR2`` (``QDR1`` had an in-memory spool and no
identities; the two do not talk to each other).

Frames (every one starts with :data:`PROTOCOL`; bodies are JSON objects)::

    sender -> logger
      [PROTOCOL, b"HELLO", {"pub", "epoch", "instance", "resume": [older epochs],
                            "ephemeral"?: true}]
      [PROTOCOL, b"MSG", topic, header, payload?]      a daq.messages frame set
      [PROTOCOL, b"MSGS", index, heads, payloads]      many messages in one frame set
                                                       (protocol.batch_frames)
      [PROTOCOL, b"HB", {"pub", "epoch", "instance", "streams": {stream: last seq}}]
      [PROTOCOL, b"GAP", {"pub", "epoch", "instance", "stream", "first", "last", "reason"}]
      [PROTOCOL, b"CLOSE", {"pub", "epoch", "instance", "streams": {stream: last seq spooled}}]
    logger -> sender
      [PROTOCOL, b"ACK", {"epoch", "streams": {stream: seq}, "closed"?: true,
                          "batch"?: true}]
      [PROTOCOL, b"ERROR", {"why", "code", "items"?: [{"stream", "epoch", "first", "last",
                                                       "why"}]}]

Identity and sessions:

* ``pub`` is the publisher name, ``epoch`` its session (a new one at every
  start of the daemon), ``instance`` the daemon's persistent random id
  (:mod:`daq.reliable.identity`, kept beside the spool). The logger checks
  identity as "CURVE key if the connection has one, else instance id"
  (:func:`daq.logger.sessions.identity_of`).
* A name belongs to one identity at a time. HELLO, HB, GAP and CLOSE from
  another identity are refused (ERROR ``identity``) while the owner is
  live (heard from within the logger's ``takeover_after_s``); after that
  silence a new identity takes the name over (a replaced PC). The same
  identity with a new epoch is the daemon restarting: it resumes. A sender
  whose instance id lives only as long as its process (no spool on disk:
  ``ephemeral``) releases the name when it stops cleanly (CLOSE of its
  current session), since its next run gets a new id; a daemon with a
  persistent id never releases its name.
* HELLO or HB binds the connection to (pub, identity); MSG is accepted
  only on a bound connection and only for that publisher (else ERROR
  ``hello``: send HELLO, or ``identity``).
* HELLO names in ``resume`` the older sessions the daemon still holds
  data for (its spool survived). The logger keeps those open and closes
  ("superseded", with gaps) every other open session of the name. The
  answer is one ACK per session named (the current and each resumed one)
  with what the store holds: the sender forgets that and resends the rest.
* When an older session's messages are all acknowledged (or given up),
  the sender sends CLOSE with the newest seq it ever spooled per stream.
  The logger records what heartbeats announced beyond what it holds as a
  gap with reason ``lost before spooling`` (stamped, never written to the
  spool: a crash), closes the session and answers ACK with ``closed``;
  the sender then forgets the session. A clean stop closes the current
  session the same way.

Data, acks and gaps:

* ``seq`` is per stream and per session, stamped once by the daemon's
  outbound stage (:class:`daq.bus.Publisher`), so the same message has the
  same (stream, epoch, seq) on both paths. The logger stores each exactly
  once (its ledger deduplicates by that key, across its own restarts).
* An ACK names, per stream, the highest seq such that it and everything
  before it in that session is stored or recorded as a gap. ACKs are
  cumulative and idempotent; the logger may repeat them.
* HB names the newest stamped seq of every stream of the current session,
  so the logger knows what exists even when messages are lost.
* The sender sends a window of messages (``window``); after
  ``resend_after_s`` without an acknowledgement it sends only HELLO until
  the logger answers, then resends from the oldest unacknowledged message,
  a window at a time, paced by the acks.
* GAP: the sender gave a range up, with a reason: ``spool overflow`` (the
  spool's bound dropped its oldest messages), ``refused by the logger``
  (parked, see below), ``spool write failed`` (the daemon's disk failed).
  The logger records it as a gap; the ACK covering ``last`` acknowledges it.

Batches: a logger that takes MSGS says so in its ACKs of data (``"batch": true``);
a sender sends MSG until it has seen that, then MSGS of up to
``batch_messages`` messages / ``batch_bytes`` bytes, its messages grouped by
stream (the order within each stream kept), so records of one stream arrive
as one contiguous block of the payload frame. Older loggers (MSG only) and
older senders (MSG only) keep working with newer ones. Per message, MSGS
means exactly what MSG means (acks, dedupe, refusals).

Errors (``code``):

* ``store``: the store cannot write (disk full, read-only, server down);
  nothing changes at the sender: the data stays spooled and is resent.
* ``refused``: ``items`` can never be stored (invalid, or poisoned: a
  message the store fails on while everything else is written). The
  sender parks them (moves them aside in its spool, never resends them),
  sends GAP for them and goes on.
* ``identity``: the name is owned by another live instance; the sender
  keeps its data and asks again with HELLO after ``resend_after_s``.
* ``hello``: the logger does not know this connection (it restarted):
  HELLO, then resend.

A message of a session the logger has already closed (superseded, or
closed by its sender) is ``refused`` like an invalid one.

Every integer in a header or a body is range-checked on parse (seq in
[-1, 2**63-1], epoch in [0, 2**63-1], ...): out of range is malformed.
"""

from daq.reliable.identity import load_instance_id, new_instance_id
from daq.reliable.protocol import (
    ACK,
    CLOSE,
    ERROR,
    GAP,
    HB,
    HELLO,
    LOST_BEFORE_SPOOLING,
    MSG,
    MSGS,
    PROTOCOL,
    Control,
    ErrorCode,
    GapReason,
    Refused,
    ack_frames,
    batch_frames,
    close_frames,
    error_frames,
    gap_frames,
    heartbeat_frames,
    hello_frames,
    parse,
)
from daq.reliable.sender import ReliableSender
from daq.reliable.spool import Spool, SpoolBusy, SpoolLimits
from daq.reliable.stats import SenderStats

__all__ = [
    "ACK",
    "CLOSE",
    "ERROR",
    "GAP",
    "HB",
    "HELLO",
    "LOST_BEFORE_SPOOLING",
    "MSG",
    "MSGS",
    "PROTOCOL",
    "Control",
    "ErrorCode",
    "GapReason",
    "Refused",
    "ReliableSender",
    "SenderStats",
    "Spool",
    "SpoolBusy",
    "SpoolLimits",
    "ack_frames",
    "batch_frames",
    "close_frames",
    "error_frames",
    "gap_frames",
    "heartbeat_frames",
    "hello_frames",
    "load_instance_id",
    "new_instance_id",
    "parse",
]
