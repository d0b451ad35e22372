"""The running logger's counters, shared (read-only) with the history and status threads."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: Errors kept for the status (the newest).
KEEP_ERRORS = 20


@dataclass
class LoggerStats:
    """Counters of a running logger (the history endpoint's ``status``, the bus status).

    Attributes:
        received: frame sets received on the reliable endpoint.
        malformed: frame sets that did not parse (counted and dropped).
        rejected: messages refused as invalid or for a closed session.
        duplicates: messages already stored (a resend).
        stored_messages / stored_samples / stored_records: what was written.
        gaps_recorded: gap rows written.
        batches: write cycles committed.
        write_errors: failed cycles (store failing or not open).
        acks_sent: replies sent.
        refused_sessions: claims on a name another live instance owns (HELLO, HB, GAP,
            CLOSE) and messages from a connection that may not send them.
        poisoned: messages refused because the store failed on them alone.
        isolations: batches the store failed on, written again in parts.
        sender_gaps: ranges senders gave up (GAP) and closed sessions (CLOSE).
        store_ok: the store took the last write (or opened) without error.
        last_error / last_error_ns: the newest error.
        errors: the newest few errors (``{"t_ns", "error"}``), bounded.
        sessions: owners and recent refusals (:meth:`daq.logger.sessions.Sessions.snapshot`),
            replaced whole by the writer thread after every cycle.
    """

    received: int = 0
    malformed: int = 0
    rejected: int = 0
    duplicates: int = 0
    stored_messages: int = 0
    stored_samples: int = 0
    stored_records: int = 0
    gaps_recorded: int = 0
    batches: int = 0
    write_errors: int = 0
    acks_sent: int = 0
    refused_sessions: int = 0
    poisoned: int = 0
    isolations: int = 0
    sender_gaps: int = 0
    store_ok: bool = False
    last_error: str = ""
    last_error_ns: int = 0
    errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_ERRORS))
    sessions: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def error(self, why: str) -> None:
        """Note an error (the newest few are kept)."""
        with self._lock:  # other threads copy the list
            self.last_error = why
            self.last_error_ns = time.time_ns()
            self.errors.append({"t_ns": self.last_error_ns, "error": why})

    def as_dict(self) -> dict[str, Any]:
        """The counters as a JSON-able mapping."""
        with self._lock:
            out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
            out["errors"] = list(self.errors)
        return out
