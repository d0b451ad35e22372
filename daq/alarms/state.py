"""The alarm state model: one :class:`AlarmRecord` per alarm and its transitions (plain logic).

The states follow ISA-18.2 / IEC 62682 (as OPC UA Part 9 models them)::

                 condition true                operator acknowledges
      NORMAL ─────────────────────► ACTIVE_UNACK ─────────────────► ACTIVE_ACK
        ▲                              │      ▲                          │
        │ acknowledged                 │clears│ condition true again     │ clears
        │                              ▼      │ (same occurrence)        │
        └──────────────────────── CLEARED_UNACK                          │
        ▲                     (latched: waits for the acknowledgement)   │
        └─────────────────────────────────────────────────────────────────┘

* A new *occurrence* starts at NORMAL -> ACTIVE_UNACK; a condition that flaps
  while the alarm waits for its acknowledgement stays the same occurrence
  (one alarm, not one per flap).
* A non-latching rule (``latch: false``) goes back to NORMAL when it clears,
  acknowledged or not.
* Shelving is a flag beside the state, with an end time, a reason and who:
  a shelved alarm keeps its state (and is stored) but tells nobody; it
  unshelves itself at the end time.
* Suppression by a lab state is another flag: a suppressed rule's condition
  counts as not holding (it cannot be raised), and the record says by which
  state.

Every method that changes the record returns the :class:`Transition` it made
(None when nothing changed); the engine publishes each one. Times are seconds
since the epoch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from daq.alarms.config import Severity
from daq.errors import ControlError


class AlarmState(enum.StrEnum):
    """Where an alarm stands (see the module docstring)."""

    NORMAL = "normal"
    ACTIVE_UNACK = "active_unack"
    ACTIVE_ACK = "active_ack"
    CLEARED_UNACK = "cleared_unack"


class Transition(enum.StrEnum):
    """What happened to an alarm; each one is an ``alarm`` message and a stored event."""

    RAISED = "raised"  # NORMAL -> ACTIVE_UNACK: a new occurrence
    REACTIVATED = "reactivated"  # CLEARED_UNACK -> ACTIVE_UNACK: the same occurrence
    CLEARED = "cleared"  # ACTIVE_UNACK -> CLEARED_UNACK: latched, waits for an ack
    RETURNED = "returned"  # -> NORMAL by the condition (acknowledged, or not latching)
    ACKNOWLEDGED = "acknowledged"  # ACTIVE_UNACK -> ACTIVE_ACK, CLEARED_UNACK -> NORMAL
    SHELVED = "shelved"
    UNSHELVED = "unshelved"  # by a person, or by itself when the shelf time is over
    SUPPRESSED = "suppressed"
    UNSUPPRESSED = "unsuppressed"
    NOTIFIED = "notified"  # a notice was delivered (stored so a restart never repeats it)
    ACTION = "action"  # the automated action's outcome
    GROUPED = "grouped"  # joined a flood under its first cause


class StateError(ControlError):
    """An operation that does not apply to the alarm as it stands (nothing to acknowledge)."""


@dataclass
class AlarmRecord:
    """One alarm: its state, its current occurrence and who did what.

    Attributes:
        id: the alarm id (a rule's name, or a system alarm's ``kind.subject``).
        severity: info, warning or critical.
        kind: ``rule`` or the system alarm's kind (``daemon_lost``, ``logger_backlog``,
            ``disk_low``, ``notify_failed``, ``interlock``).
        state: see :class:`AlarmState`.
        occurrence: counts the activations from NORMAL (0: never raised).
        reason: the condition's words at the last change.
        value: the number behind the reason, if any.
        description, guidance: from the rule (what it is, what to do).
        latch: a cleared alarm waits for its acknowledgement.
        t_raised: start of the current occurrence.
        t_changed: the last transition of the state.
        t_cleared: when the condition last cleared (None while active).
        t_acked, acked_by, ack_comment: the acknowledgement of this occurrence.
        activations: how often the condition became true in this occurrence (flapping).
        shelved_until, shelved_by, shelve_reason: the shelf (None: not shelved).
        suppressed_by: the lab state suppressing the rule ("" when none).
        group: the first cause this alarm is grouped under in a flood ("" when none).
        delivered: per notice key of this occurrence (``raise``, ``escalate1``, ...),
            the keys of the URLs it was delivered to.
    """

    id: str
    severity: Severity
    kind: str = "rule"
    state: AlarmState = AlarmState.NORMAL
    occurrence: int = 0
    reason: str = ""
    value: float | None = None
    description: str = ""
    guidance: str = ""
    latch: bool = True
    t_raised: float | None = None
    t_changed: float | None = None
    t_cleared: float | None = None
    t_acked: float | None = None
    acked_by: str = ""
    ack_comment: str = ""
    activations: int = 0
    shelved_until: float | None = None
    shelved_by: str = ""
    shelve_reason: str = ""
    suppressed_by: str = ""
    group: str = ""
    delivered: dict[str, list[str]] = field(default_factory=dict)

    # ---- questions ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """The condition holds (ACTIVE_UNACK or ACTIVE_ACK)."""
        return self.state in (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)

    @property
    def unacknowledged(self) -> bool:
        """Waits for an acknowledgement (ACTIVE_UNACK or CLEARED_UNACK)."""
        return self.state in (AlarmState.ACTIVE_UNACK, AlarmState.CLEARED_UNACK)

    def shelved(self, now: float) -> bool:
        """Shelved at time ``now``."""
        return self.shelved_until is not None and now < self.shelved_until

    # ---- the condition -----------------------------------------------------------------------

    def condition(self, holds: bool, reason: str, value: float | None,
                  now: float) -> Transition | None:
        """The (debounced) condition at ``now``; returns the transition it caused."""
        state = self.state
        if holds:
            if state is AlarmState.NORMAL:
                self.occurrence += 1
                self.activations = 1
                self.t_raised = now
                self.t_cleared = None
                self.t_acked, self.acked_by, self.ack_comment = None, "", ""
                self.delivered = {}
                self.group = ""
                return self._to(AlarmState.ACTIVE_UNACK, reason, value, now,
                                Transition.RAISED)
            if state is AlarmState.CLEARED_UNACK:
                self.activations += 1
                self.t_cleared = None
                return self._to(AlarmState.ACTIVE_UNACK, reason, value, now,
                                Transition.REACTIVATED)
            return None
        if state is AlarmState.ACTIVE_UNACK:
            self.t_cleared = now
            if self.latch:
                return self._to(AlarmState.CLEARED_UNACK, reason, value, now,
                                Transition.CLEARED)
            return self._to(AlarmState.NORMAL, reason, value, now, Transition.RETURNED)
        if state is AlarmState.ACTIVE_ACK:
            self.t_cleared = now
            return self._to(AlarmState.NORMAL, reason, value, now, Transition.RETURNED)
        return None

    def _to(self, state: AlarmState, reason: str, value: float | None, now: float,
            transition: Transition) -> Transition:
        self.state = state
        self.reason = reason
        self.value = value
        self.t_changed = now
        return transition

    # ---- operations --------------------------------------------------------------------------

    def acknowledge(self, who: str, comment: str, now: float) -> Transition:
        """Acknowledge the current occurrence.

        Raises:
            StateError: nothing to acknowledge (normal, or acknowledged already).
        """
        if self.state is AlarmState.NORMAL:
            raise StateError(f"{self.id} is normal: nothing to acknowledge")
        if self.state is AlarmState.ACTIVE_ACK:
            raise StateError(f"{self.id} was acknowledged already by {self.acked_by or '?'}")
        self.t_acked, self.acked_by, self.ack_comment = now, who, comment
        self.state = (AlarmState.ACTIVE_ACK if self.state is AlarmState.ACTIVE_UNACK
                      else AlarmState.NORMAL)
        self.t_changed = now
        return Transition.ACKNOWLEDGED

    def shelve(self, until: float, who: str, reason: str, now: float) -> Transition:
        """Shelve until ``until`` (s since the epoch).

        Raises:
            StateError: ``until`` is not in the future, or no reason was given.
        """
        if until <= now:
            raise StateError(f"{self.id}: a shelf must end in the future")
        if not reason.strip():
            raise StateError(f"{self.id}: shelving needs a reason (who reads it at 3 a.m. "
                             "must know why this alarm is quiet)")
        self.shelved_until, self.shelved_by, self.shelve_reason = until, who, reason
        return Transition.SHELVED

    def unshelve(self, who: str) -> Transition:
        """Take the alarm off the shelf.

        Raises:
            StateError: it is not shelved.
        """
        if self.shelved_until is None:
            raise StateError(f"{self.id} is not shelved")
        self.shelved_until, self.shelved_by, self.shelve_reason = None, who, ""
        return Transition.UNSHELVED

    def suppress(self, by: str) -> Transition | None:
        """Set (``by`` a lab state) or lift (``by`` empty) the suppression."""
        if by == self.suppressed_by:
            return None
        was = self.suppressed_by
        self.suppressed_by = by
        if by and not was:
            return Transition.SUPPRESSED
        if was and not by:
            return Transition.UNSUPPRESSED
        return Transition.SUPPRESSED  # another lab state now suppresses it
