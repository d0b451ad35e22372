"""Carrying out interlock trips until they hold.

An interlock's action is a safety action: "the heater is off" must be true
at the instrument, not merely sent. :class:`TripEnforcer` submits each trip
as an ``enforce`` request (the owning worker sets the value and reads it
back, a few times within one request), and when the request fails (the
instrument is unreachable, or the value does not read back) it raises an
``alarm`` message with the reason and tries again with a growing delay,
until the action holds. Every attempt runs through the control path, so each
one is audited.

State per interlock (``pending``, ``held``, ``failing``) is what the daemon's
status message reports.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from daq import messages
from daq.daemon.safety import Trip
from daq.messages import Kind, Message

log = logging.getLogger(__name__)

#: submit(target, value, reason, done) queues an audited enforce request.
Submit = Callable[[str, Any, str, Callable[[dict[str, Any]], None]], None]


class ActionState(enum.StrEnum):
    """Where an interlock's action stands."""

    PENDING = "pending"  # submitted, no answer yet
    HELD = "held"  # set and read back
    FAILING = "failing"  # the last attempt failed; a retry is scheduled


@dataclass(frozen=True)
class ActionStatus:
    """The latest trip of one interlock and how its action fares."""

    trip: Trip
    state: ActionState
    attempts: int
    detail: str = ""
    retry_at: float = 0.0  # monotonic time of the next attempt while failing


class TripEnforcer:
    """Submits interlock actions, retries failures, raises alarms.

    Args:
        submit: queues an ``enforce`` request on the control path.
        emit: publishes alarm messages.
        daemon_name: source of the alarm messages.
        retry_s: first delay before a failed action is tried again (doubles up to ``max_retry_s``).
    """

    def __init__(self, submit: Submit, emit: Callable[[Message], None], *, daemon_name: str,
                 retry_s: float = 1.0, max_retry_s: float = 30.0) -> None:
        self._submit = submit
        self._emit = emit
        self.daemon_name = daemon_name
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._lock = threading.Lock()
        self._status: dict[str, ActionStatus] = {}

    def on_trip(self, trip: Trip) -> None:
        """An interlock tripped: raise its alarm and act (any thread)."""
        log.warning("interlock %s: %s -> set %s = %r", trip.interlock, trip.reason,
                    trip.target, trip.value)
        self._emit(messages.event(Kind.ALARM, self.daemon_name, trip.interlock,
                                  level="critical", reason=trip.reason,
                                  action=f"set {trip.target} = {trip.value!r}",
                                  state="tripped"))
        with self._lock:
            self._status[trip.interlock] = ActionStatus(trip, ActionState.PENDING, 1)
        self._attempt(trip)

    def tick(self, now: float | None = None) -> None:
        """Retry failed actions whose delay has passed (call periodically)."""
        now = time.monotonic() if now is None else now
        due = []
        with self._lock:
            for name, status in self._status.items():
                if status.state is ActionState.FAILING and now >= status.retry_at:
                    self._status[name] = replace(status, state=ActionState.PENDING,
                                                 attempts=status.attempts + 1)
                    due.append(status.trip)
        for trip in due:
            self._attempt(trip)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each interlock's latest trip and action state, JSON-able (for status messages)."""
        with self._lock:
            return {name: {"state": s.state.value, "reason": s.trip.reason,
                           "target": s.trip.target, "value": s.trip.value,
                           "attempts": s.attempts, "detail": s.detail}
                    for name, s in self._status.items()}

    def _attempt(self, trip: Trip) -> None:
        self._submit(trip.target, trip.value, f"interlock {trip.interlock}: {trip.reason}",
                     lambda result: self._answered(trip, result))

    def _answered(self, trip: Trip, result: dict[str, Any]) -> None:
        with self._lock:
            status = self._status.get(trip.interlock)
            if status is None or status.trip is not trip:
                return  # superseded by a newer trip of the same interlock
            if result.get("ok"):
                self._status[trip.interlock] = replace(
                    status, state=ActionState.HELD,
                    detail=f"{trip.target} reads back {result.get('value')!r}")
                return
            delay = min(self.retry_s * 2 ** (status.attempts - 1), self.max_retry_s)
            error = str(result.get("error", "failed"))
            self._status[trip.interlock] = replace(status, state=ActionState.FAILING,
                                                   detail=error,
                                                   retry_at=time.monotonic() + delay)
            attempts = status.attempts
        log.error("interlock %s: action on %s failed (attempt %d): %s; retry in %.0f s",
                  trip.interlock, trip.target, attempts, error, delay)
        self._emit(messages.event(Kind.ALARM, self.daemon_name, trip.interlock,
                                  level="critical", state="action_failed",
                                  reason=f"interlock action set {trip.target} = {trip.value!r} "
                                         f"failed: {error}",
                                  attempt=attempts, retry_in_s=delay))
