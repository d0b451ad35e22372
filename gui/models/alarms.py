"""Alarms as the control room sees them: the list, the banner, and the operators' commands.

Two kinds of ``alarm`` message reach the dashboard:

* the alarm service's (:mod:`daq.alarms`): ``alarm/<service>/<alarm id>`` whose
  ``meta`` is the alarm's whole record (:func:`daq.alarms.store.record_meta`:
  severity info/warning/critical, the ISA-18.2 state ``normal``,
  ``active_unack``, ``active_ack`` or ``cleared_unack``, reason, guidance,
  shelf, suppression, flood group) plus the ``transition`` and ``who``; the
  broker's last-value cache holds every alarm's newest record, so a
  dashboard that starts late sees them all at once;
* a daemon's own interlock events (:mod:`daq.daemon.enforce`):
  ``alarm/<daemon>/<interlock>`` with ``level``, ``reason``, ``action`` and
  ``state`` ``tripped`` / ``action_failed``. Once an alarm service is heard,
  it reports each of them as its ``interlock.<daemon>.<name>`` alarm (which
  can be acknowledged), and the raw events are listed under "recent" only.

:class:`AlarmBook` keeps both, orders them for the list (unacknowledged
active first, by severity), picks the :class:`Banner` every view shows (the
worst active critical alarm that is not shelved or suppressed) and builds the
:class:`~gui.models.control.Command` for acknowledging, shelving and
unshelving (``alarm_ack``, ``alarm_shelve``, ``alarm_unshelve`` through a
daemon's control endpoint: :mod:`daq.daemon.alarm_ops`). Qt-free.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from daq.messages import Kind, Message
from gui.models.control import Command
from gui.models.format import Tone, format_age


class Severity(enum.IntEnum):
    """How bad an alarm is (the alarm service's three levels; others map onto them)."""

    INFO = 0
    WARNING = 1
    CRITICAL = 2

    @classmethod
    def parse(cls, text: Any) -> Severity:
        word = str(text or "").lower()
        if word in ("critical", "high", "urgent", "emergency", "alarm"):
            return cls.CRITICAL
        if word in ("warning", "warn", "medium", "low"):
            return cls.WARNING
        return cls.INFO


class AlarmState(enum.StrEnum):
    """ISA-18.2 states (as the alarm service names them)."""

    NORMAL = "normal"
    ACTIVE_UNACK = "active_unack"
    ACTIVE_ACK = "active_ack"
    CLEARED_UNACK = "cleared_unack"

    @classmethod
    def parse(cls, text: Any) -> AlarmState:
        word = str(text or "")
        try:
            return cls(word)
        except ValueError:
            # A daemon's interlock event: tripped / action_failed are new and unacknowledged.
            return cls.NORMAL if word in ("cleared", "returned", "held") else cls.ACTIVE_UNACK

    @property
    def words(self) -> str:
        return {AlarmState.NORMAL: "normal", AlarmState.ACTIVE_UNACK: "ACTIVE, unacknowledged",
                AlarmState.ACTIVE_ACK: "active, acknowledged",
                AlarmState.CLEARED_UNACK: "cleared, unacknowledged"}[self]


#: Shelving durations offered (s).
SHELVE_CHOICES_S = (15 * 60, 3600, 4 * 3600, 24 * 3600)


@dataclass
class Alarm:
    """One alarm as the list shows it.

    Attributes:
        id: the alarm id (the service's record id, or the interlock's name).
        source: the publisher's source (the service's name, or the daemon's).
        severity, state: see :class:`Severity` and :class:`AlarmState`.
        reason, description, guidance: the words (guidance: what to do).
        service: True for the alarm service's records (they can be acknowledged and
            shelved), False for a daemon's raw interlock event.
        t_raised, t_changed: s since the epoch (None when unknown).
        acked_by, ack_comment: the acknowledgement.
        shelved_until, shelved_by, shelve_reason: the shelf.
        suppressed_by: the lab state suppressing it.
        group: the first cause it is grouped under in a flood.
        transition: the last thing that happened (raised, acknowledged, ...).
        action: a daemon interlock's action (``set fridge1/sample_heater_range = 0``).
    """

    id: str
    source: str
    severity: Severity
    state: AlarmState
    reason: str = ""
    description: str = ""
    guidance: str = ""
    service: bool = False
    t_raised: float | None = None
    t_changed: float | None = None
    acked_by: str = ""
    ack_comment: str = ""
    shelved_until: float | None = None
    shelved_by: str = ""
    shelve_reason: str = ""
    suppressed_by: str = ""
    group: str = ""
    transition: str = ""
    action: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.id}"

    @property
    def active(self) -> bool:
        return self.state in (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)

    @property
    def unacknowledged(self) -> bool:
        return self.state in (AlarmState.ACTIVE_UNACK, AlarmState.CLEARED_UNACK)

    def shelved(self, now: float) -> bool:
        return self.shelved_until is not None and self.shelved_until > now

    @property
    def tone(self) -> Tone:
        """Colour role: critical red, warning amber, info and cleared calmer."""
        if self.state is AlarmState.NORMAL:
            return Tone.GOOD
        if self.severity is Severity.CRITICAL:
            return Tone.ALARM
        if self.severity is Severity.WARNING:
            return Tone.WARN
        return Tone.STALE

    def state_text(self, now: float) -> str:
        """The state in words, with shelf and suppression."""
        words = self.state.words
        if self.shelved(now):
            assert self.shelved_until is not None
            words += f"; shelved for {format_age(self.shelved_until - now)}"
            if self.shelve_reason:
                words += f" ({self.shelve_reason})"
        if self.suppressed_by:
            words += f"; suppressed ({self.suppressed_by})"
        if self.acked_by and not self.unacknowledged:
            words += f"; acknowledged by {self.acked_by}"
        return words

    def sort_key(self, now: float) -> tuple[int, int, int, float]:
        """Unacknowledged active first, then acknowledged active, then cleared; worst first;
        newest first; shelved and suppressed last."""
        rank = {AlarmState.ACTIVE_UNACK: 0, AlarmState.CLEARED_UNACK: 1,
                AlarmState.ACTIVE_ACK: 2, AlarmState.NORMAL: 3}[self.state]
        hidden = 1 if self.shelved(now) or self.suppressed_by else 0
        return (hidden, rank, -int(self.severity), -(self.t_changed or 0.0))


@dataclass(frozen=True)
class Banner:
    """What the banner across every view says."""

    text: str
    tone: Tone
    alarm: str
    count: int
    unacknowledged: bool


@dataclass(frozen=True)
class Event:
    """One line of the recent-alarm log."""

    t: float
    alarm: str
    severity: Severity
    what: str


def _opt(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key, "")
    return value if isinstance(value, str) else str(value)


def alarm_from_message(msg: Message) -> Alarm:
    """An :class:`Alarm` from an ``alarm`` message of either kind (see the module)."""
    meta = msg.meta
    t_msg = msg.t / 1e9 if msg.t else time.time()
    if "alarm" in meta and "severity" in meta:  # the alarm service's record
        return Alarm(
            id=_text(meta, "alarm"), source=msg.source,
            severity=Severity.parse(meta.get("severity")),
            state=AlarmState.parse(meta.get("state")), reason=_text(meta, "reason"),
            description=_text(meta, "description"), guidance=_text(meta, "guidance"),
            service=True, t_raised=_opt(meta, "t_raised"),
            t_changed=_opt(meta, "t_changed") or t_msg, acked_by=_text(meta, "acked_by"),
            ack_comment=_text(meta, "ack_comment"), shelved_until=_opt(meta, "shelved_until"),
            shelved_by=_text(meta, "shelved_by"), shelve_reason=_text(meta, "shelve_reason"),
            suppressed_by=_text(meta, "suppressed_by"), group=_text(meta, "group"),
            transition=_text(meta, "transition"), meta=dict(meta))
    state = _text(meta, "state")
    level = meta.get("severity", meta.get("level", "critical"))
    return Alarm(
        id=msg.channel, source=msg.source, severity=Severity.parse(level),
        state=AlarmState.parse(state), reason=_text(meta, "reason"),
        description=f"interlock {msg.channel} of {msg.source}",
        guidance="An interlock acted: find out why before switching anything back on.",
        service=False, t_raised=t_msg, t_changed=t_msg, transition=state or "tripped",
        action=_text(meta, "action"), meta=dict(meta))


class AlarmBook:
    """Every alarm heard, the banner and the operators' commands (see the module docstring).

    Args:
        recent: how many transitions the recent-alarm log keeps.
    """

    def __init__(self, recent: int = 200) -> None:
        self.alarms: dict[str, Alarm] = {}
        self.recent: deque[Event] = deque(maxlen=recent)
        self.service_seen = False
        self.version = 0

    def apply(self, msg: Message) -> Alarm | None:
        """Take one ``alarm`` message; returns the alarm it changed."""
        if msg.kind is not Kind.ALARM:
            return None
        alarm = alarm_from_message(msg)
        if alarm.service:
            self.service_seen = True
        previous = self.alarms.get(alarm.key)
        self.alarms[alarm.key] = alarm
        changed = previous is None or previous.state != alarm.state or \
            previous.transition != alarm.transition or previous.reason != alarm.reason
        if changed:
            what = alarm.transition or alarm.state.value
            self.recent.appendleft(Event(alarm.t_changed or time.time(), alarm.id,
                                         alarm.severity, f"{what}: {alarm.reason}".strip(": ")))
        self.version += 1
        return alarm

    def listed(self, now: float | None = None) -> list[Alarm]:
        """The alarms the list shows: every alarm not back to normal (and, until an alarm
        service is heard, the daemons' interlock events), in :meth:`Alarm.sort_key` order."""
        now = time.time() if now is None else now
        shown = [a for a in self.alarms.values()
                 if a.state is not AlarmState.NORMAL and (a.service or not self.service_seen)]
        return sorted(shown, key=lambda a: a.sort_key(now))

    def banner(self, now: float | None = None) -> Banner | None:
        """The worst active critical alarm not shelved or suppressed (None: no banner)."""
        now = time.time() if now is None else now
        critical = [a for a in self.listed(now)
                    if a.severity is Severity.CRITICAL and a.active and not a.shelved(now)
                    and not a.suppressed_by]
        if not critical:
            return None
        first = critical[0]
        more = f"  (+{len(critical) - 1} more)" if len(critical) > 1 else ""
        state = "UNACKNOWLEDGED" if first.unacknowledged else "acknowledged"
        text = f"CRITICAL  {first.id}: {first.reason or first.description}  [{state}]{more}"
        return Banner(text, Tone.ALARM, first.key, len(critical), first.unacknowledged)

    def counts(self, now: float | None = None) -> dict[str, int]:
        """How many alarms are active, unacknowledged, shelved."""
        now = time.time() if now is None else now
        listed = self.listed(now)
        return {"active": sum(a.active for a in listed),
                "unacknowledged": sum(a.unacknowledged for a in listed),
                "shelved": sum(a.shelved(now) for a in listed)}


# ---- the operators' commands (through a daemon's control endpoint) -----------------------------


def ack_command(alarm: Alarm, comment: str = "", daemon: str | None = None) -> Command:
    """Acknowledge ``alarm`` (the alarm service's ``ack``)."""
    return Command(daemon, "alarm_ack", {"alarm": alarm.id, "comment": comment})


def shelve_command(alarm: Alarm, duration_s: float, reason: str,
                   daemon: str | None = None) -> Command:
    """Shelve ``alarm`` for ``duration_s`` with a reason (required: it is audited)."""
    if not reason.strip():
        raise ValueError("shelving needs a reason (it goes into the audit trail)")
    if duration_s <= 0:
        raise ValueError("shelving needs a duration")
    return Command(daemon, "alarm_shelve", {"alarm": alarm.id, "duration_s": float(duration_s),
                                            "reason": reason.strip()})


def unshelve_command(alarm: Alarm, daemon: str | None = None) -> Command:
    """Take ``alarm`` off the shelf."""
    return Command(daemon, "alarm_unshelve", {"alarm": alarm.id})


def why_not_operable(alarm: Alarm) -> str:
    """Why ``alarm`` cannot be acknowledged or shelved here ("" when it can)."""
    if not alarm.service:
        return ("a daemon's own interlock event: it is acknowledged in the alarm service "
                "(as interlock." f"{alarm.source}.{alarm.id}), which is not running")
    return ""
