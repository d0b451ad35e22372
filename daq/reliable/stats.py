"""What a sender tells about itself: one frozen snapshot, safe to hand to another thread."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SenderStats:
    """A snapshot of a :class:`daq.reliable.ReliableSender` (the daemon puts it in its status).

    Attributes:
        unacked: messages the logger has not acknowledged (in the spool or being spooled).
        spooled_bytes: message bytes (topic + header + payload) in the spool.
        spool_file_bytes: what the spool takes on disk (database and WAL; 0 in memory).
        oldest_unacked_age_s: how long the oldest unacknowledged message has waited (0 if none).
        overflow_dropped: messages the spool's bound dropped since this process started
            (each dropped range is reported to the logger as a gap).
        resends: times the sender went back to the oldest unacknowledged message.
        resent_messages: messages transmitted more than once.
        parked_streams: streams with messages the logger refused (parked, not resent).
        parked_messages: messages parked in the spool (kept for inspection).
        pending_sessions: older sessions (earlier runs of the daemon) still being resent or closed.
        gap_notices: ranges given up and not yet acknowledged by the logger.
        identity_refusals: HELLOs the logger refused because another instance owns the name.
        spool_errors: failed spool writes (the daemon's disk).
        logger_errors: the last few ERROR texts from the logger, newest last.
        logger_errors_total: every ERROR received.
        last_reply_age_s: seconds since the logger last answered (None: never).
    """

    unacked: int = 0
    spooled_bytes: int = 0
    spool_file_bytes: int = 0
    oldest_unacked_age_s: float = 0.0
    overflow_dropped: int = 0
    resends: int = 0
    resent_messages: int = 0
    parked_streams: tuple[str, ...] = ()
    parked_messages: int = 0
    pending_sessions: int = 0
    gap_notices: int = 0
    identity_refusals: int = 0
    spool_errors: int = 0
    logger_errors: tuple[str, ...] = ()
    logger_errors_total: int = 0
    last_reply_age_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a JSON-able mapping (tuples become lists)."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out
