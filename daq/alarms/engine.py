"""The alarm engine: rules, lab states, system alarms, flood grouping, notices and actions.

Plain logic with no sockets and no clock of its own (times are seconds since
the epoch, given by the caller), owned by one thread of the service:

* :meth:`AlarmEngine.on_message` takes every message the service receives
  (samples, instrument and service statuses, heartbeats, the daemons'
  interlock alarms) and feeds the conditions and the system monitors;
* :meth:`AlarmEngine.tick` evaluates: lab states, then each rule (suppression,
  on/off delays, the state machine of :mod:`daq.alarms.state`), the system
  alarms (a daemon's heartbeat lost, the logger's backlog at a daemon, the
  archive's disk, undeliverable notifications, interlocks that acted), shelves
  that end, escalations and held digests;
* :meth:`AlarmEngine.acknowledge`, :meth:`~AlarmEngine.shelve`,
  :meth:`~AlarmEngine.unshelve` are the operators' operations;
* :meth:`AlarmEngine.delivered` and :meth:`~AlarmEngine.action_done` take the
  outcomes of the notification and action threads back.

Each of them returns an :class:`Outbox`: the transitions to publish (each an
``alarm`` message and a stored event), the notices to deliver (already
rate-limited and grouped) and the automated actions to send.

Floods: raises closer than ``flood.window_s`` to the previous one form an
episode; every alarm after the first is grouped under it (``group``), listed
below it, and its notice waits up to one window: a small episode's notices
then go out one by one, a flood (``min_alarms`` or more) as one summary per
window naming the first cause.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daq.alarms.conditions import Condition, Sample, Verdict, build
from daq.alarms.config import ActionConfig, AlarmsConfig, RuleConfig, Severity
from daq.alarms.journal import DeliveryStep, JournalEntry, Target
from daq.alarms.notify import DeliveryResult, Notice, RateLimiter, redact, url_key
from daq.alarms.state import AlarmRecord, AlarmState, StateError, Transition
from daq.alarms.store import record_meta
from daq.errors import ControlError
from daq.messages import Kind, Message

#: The longest shelf: an alarm is never forgotten on a shelf for ever.
MAX_SHELVE_S = 7 * 86400.0

GUIDANCE = {
    "daemon_lost": "The acquisition daemon {subject} is gone or cannot reach the bus: nothing "
                   "of its instruments is read, and its interlocks do not run. Check the "
                   "process and its PC, and start it again.",
    "logger_backlog": "The logger does not acknowledge {subject}'s data: check the logger "
                      "process and its store (its status message). The data waits in the "
                      "daemon's spool meanwhile.",
    "disk_low": "The archive's disk is nearly full: free space (move old HDF5 files away); a "
                "full disk stops the archive.",
    "notify_failed": "Notifications cannot be delivered: check the addresses, the mail or "
                     "web-hook server and the network. They are retried until they get "
                     "through.",
    "interlock": "An interlock acted: find out why before switching anything back on; "
                 "acknowledge once understood.",
}


@dataclass(frozen=True)
class Who:
    """Who asked for an operation (as the daemon's control endpoint saw them)."""

    client: str = ""
    role: str = ""
    key: str = ""

    @property
    def text(self) -> str:
        return f"{self.client or '?'} ({self.role or '?'})"


@dataclass(frozen=True)
class AlarmEvent:
    """One transition to publish: the record after it, what happened, and the details."""

    record: dict[str, Any]
    transition: Transition
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> str:
        return str(self.record["alarm"])


@dataclass(frozen=True)
class ActionRequest:
    """An automated action to send through a daemon's control endpoint."""

    alarm: str
    occurrence: int
    action: ActionConfig
    reason: str


@dataclass
class Outbox:
    """What one call of the engine asks the service to do."""

    events: list[AlarmEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    actions: list[ActionRequest] = field(default_factory=list)

    def extend(self, other: Outbox) -> Outbox:
        self.events.extend(other.events)
        self.notices.extend(other.notices)
        self.actions.extend(other.actions)
        return self


class Debounce:
    """On- and off-delays: a change counts once it has lasted its delay."""

    def __init__(self, on_s: float, off_s: float) -> None:
        self.on_s, self.off_s = on_s, off_s
        self.state = False
        self.since: float | None = None

    def step(self, raw: bool, now: float) -> bool:
        if raw == self.state:
            self.since = None
            return self.state
        if self.since is None:
            self.since = now
        if now - self.since >= (self.on_s if raw else self.off_s):
            self.state, self.since = raw, None
        return self.state


@dataclass
class _Rule:
    config: RuleConfig
    condition: Condition
    debounce: Debounce


@dataclass
class _Daemon:
    last: float  # the last sign of life (heartbeat or status), s since the epoch
    state: str = ""
    message: str = ""
    reliable: dict[str, Any] | None = None
    interlocks: dict[str, Any] = field(default_factory=dict)


def _when(t: float | None) -> str:
    if t is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class AlarmEngine:
    """Owns the alarm state (see the module docstring).

    Args:
        config: the ``alarms:`` section.
        daemons: publisher names of the daemons to watch (dead-man).
        now: the start time (a daemon never heard of counts from it).
        lab: the lab's name, in the notices.
        how_to_ack: the command line a person on call uses, in the notices
            (``{alarm}`` is replaced by the alarm id).
    """

    def __init__(self, config: AlarmsConfig, *, daemons: Sequence[str], now: float,
                 lab: str = "", how_to_ack: str = "qupdaq alarms ack CONFIG {alarm}") -> None:
        self.config = config
        self.lab = lab
        self.how_to_ack = how_to_ack
        self.records: dict[str, AlarmRecord] = {}
        self.limiter = RateLimiter(config.notifications, self.describe)
        self._rules: dict[str, _Rule] = {}
        for rule in config.rules:
            self._rules[rule.name] = _Rule(rule, build(rule.when),
                                           Debounce(rule.delay_s, rule.clear_delay_s))
            self.records[rule.name] = self._new_record(rule.name, rule.severity, "rule", rule)
        self._states: dict[str, Condition] = {name: build(cond)
                                              for name, cond in config.lab_states.items()}
        self.lab_states: dict[str, bool] = {name: False for name in config.lab_states}
        self._by_stream: dict[str, list[Condition]] = {}
        self._by_instrument: dict[str, list[Condition]] = {}
        for cond in [r.condition for r in self._rules.values()] + list(self._states.values()):
            for stream in cond.streams:
                self._by_stream.setdefault(stream, []).append(cond)
            for inst in cond.instruments:
                self._by_instrument.setdefault(inst, []).append(cond)
        self._daemons = {name: _Daemon(now) for name in daemons}
        self._loggers: dict[str, dict[str, Any]] = {}
        self._pulses: dict[str, str] = {}  # interlock alarm id -> reason, until the next tick
        self._failing: dict[str, str] = {}  # url key -> redacted URL and error
        self._offered: set[Target] = set()
        # (alarm, occurrence, notice key) in flight when the previous process died: sent
        # again, marked as a possible repeat
        self._in_flight: set[Target] = set()
        self._episode_first = ""
        self._episode_last = -1e18
        self._episode_size = 0
        self._flood_held: list[Notice] = []
        self._flood_since = 0.0
        self.floods = 0

    # ---- records -----------------------------------------------------------------------------

    def _new_record(self, alarm: str, severity: Severity, kind: str,
                    rule: RuleConfig | None = None, subject: str = "") -> AlarmRecord:
        if rule is not None:
            return AlarmRecord(alarm, severity, kind, description=rule.description,
                               guidance=rule.guidance, latch=rule.latch)
        return AlarmRecord(alarm, severity, kind,
                           guidance=GUIDANCE.get(kind, "").format(subject=subject))

    def _system(self, alarm: str, kind: str, severity: Severity, subject: str,
                description: str) -> AlarmRecord:
        rec = self.records.get(alarm)
        if rec is None:
            rec = self.records[alarm] = self._new_record(alarm, severity, kind, subject=subject)
        rec.severity = severity
        rec.description = description
        return rec

    def restore(self, records: Iterable[AlarmRecord], now: float,
                journal: Iterable[JournalEntry] = ()) -> Outbox:
        """Take the records rebuilt from the archive and the delivery journal (before the
        first tick).

        A rule that is no longer in the config is dropped; a rule's severity,
        texts and latching come from the config as it is now. Deliveries already
        made are not repeated: those the archive knows, and those only the
        journal knows (the process died before it could spool them; they are
        published now as ``notified``). A raise not yet delivered (the service
        died first) is sent now; one that was in flight when the process died
        is sent again, marked as a possible repeat (:mod:`daq.alarms.journal`).
        """
        out = Outbox()
        for old in records:
            rule = self._rules.get(old.id)
            if old.kind == "rule":
                if rule is None:
                    continue
                cfg = rule.config
                old.severity, old.description = cfg.severity, cfg.description
                old.guidance, old.latch = cfg.guidance, cfg.latch
                rule.debounce.state = old.active
            self.records[old.id] = old
        for entry in journal:
            rec = self.records.get(entry.alarm)
            if rec is None or rec.occurrence != entry.occurrence:
                continue  # an occurrence the archive has moved past (or never had)
            if rec.t_raised is not None and entry.t < rec.t_raised:
                continue  # written before this occurrence began: another archive's numbering
            done = rec.delivered.get(entry.key, [])
            if entry.url_key in done:
                continue
            if entry.state is DeliveryStep.SENT:
                rec.delivered.setdefault(entry.key, []).append(entry.url_key)
                self._emit(rec, Transition.NOTIFIED, out, {
                    "notice": entry.key, "url": self._redacted(rec, entry.key, entry.url_key),
                    "from": "delivery journal"})
            else:
                self._in_flight.add((rec.id, rec.occurrence, entry.key))
        for rec in self.records.values():
            for key, urls in rec.delivered.items():
                if set(urls) >= {url_key(u) for u in self._urls_for(rec, key)}:
                    self._offered.add((rec.id, rec.occurrence, key))
        for rec in self.records.values():
            if rec.unacknowledged and rec.active:
                self._notify(rec, "raise", now, out)
        return out

    def _redacted(self, rec: AlarmRecord, key: str, wanted: str) -> str:
        for url in self._urls_for(rec, key):
            if url_key(url) == wanted:
                return redact(url)
        return f"(a URL no longer configured, key {wanted})"

    # ---- input -------------------------------------------------------------------------------

    def on_message(self, msg: Message, now: float, *, snapshot: bool = False) -> None:
        """Feed one received message (``snapshot``: from the broker's last-value cache)."""
        if msg.kind is Kind.DATA:
            self._on_data(msg)
        elif msg.kind is Kind.STATUS:
            self._on_status(msg, now)
        elif msg.kind is Kind.HEARTBEAT:
            seen = self._daemons.get(msg.source)
            if seen is not None and not snapshot:
                seen.last = max(seen.last, now)
        elif msg.kind is Kind.ALARM and not snapshot and msg.source in self._daemons:
            self._on_interlock(msg)

    def _on_data(self, msg: Message) -> None:
        stream = f"{msg.source}/{msg.channel}"
        conditions = self._by_stream.get(stream)
        if not conditions or msg.data is None:
            return
        note = str(msg.meta.get("note", ""))
        t_recv = msg.t_recv / 1e9
        for t_ns, value in zip(msg.data["t"].tolist(), msg.data["value"].tolist(), strict=True):
            sample = Sample(stream, t_ns / 1e9, t_recv, float(value), msg.quality, note)
            for cond in conditions:
                cond.on_sample(sample)

    def _on_status(self, msg: Message, now: float) -> None:
        instrument = f"{msg.source}/{msg.channel}"
        state = str(msg.meta.get("state", ""))
        text = str(msg.meta.get("message", ""))
        for cond in self._by_instrument.get(instrument, ()):
            cond.on_status(instrument, state, text)
        if msg.channel == "daemon" and msg.source in self._daemons:
            seen = self._daemons[msg.source]
            seen.state, seen.message = state, text
            reliable = msg.meta.get("reliable")
            seen.reliable = reliable if isinstance(reliable, dict) else None
            interlocks = msg.meta.get("interlocks")
            seen.interlocks = interlocks if isinstance(interlocks, dict) else {}
        elif msg.channel == "logger":
            self._loggers[msg.source] = dict(msg.meta)

    def _on_interlock(self, msg: Message) -> None:
        alarm = f"interlock.{msg.source}.{msg.channel}"
        reason = str(msg.meta.get("reason", "")) or f"interlock {msg.channel} acted"
        action = msg.meta.get("action")
        self._pulses[alarm] = f"{reason}" + (f"; action: {action}" if action else "")

    # ---- evaluation --------------------------------------------------------------------------

    def tick(self, now: float) -> Outbox:
        """Evaluate everything at ``now``; see the module docstring."""
        out = Outbox()
        for name, cond in self._states.items():
            verdict = cond.evaluate(now)
            if verdict.holds is not None:
                self.lab_states[name] = verdict.active
        for slot in self._rules.values():
            self._evaluate_rule(slot, now, out)
        self._evaluate_system(now, out)
        for rec in self.records.values():
            if rec.shelved_until is not None and now >= rec.shelved_until:
                rec.unshelve("shelf time over")
                self._emit(rec, Transition.UNSHELVED, out, {"who": "shelf time over"})
                self._after_unshelve(rec, now, out)
            self._escalate(rec, now, out)
        self._flush_flood(now, out)
        out.notices.extend(self.limiter.due(now))
        return out

    def _evaluate_rule(self, slot: _Rule, now: float, out: Outbox) -> None:
        rule = slot.config
        rec = self.records[rule.name]
        by = next((s for s in rule.suppress_in if self.lab_states.get(s)), "")
        change = rec.suppress(by)
        if change is not None:
            self._emit(rec, change, out, {"lab_state": by})
        verdict = slot.condition.evaluate(now)
        if by:
            verdict = Verdict(False, f"suppressed while the lab is {by}")
        if verdict.holds is None:
            return  # cannot tell yet (no data): nothing changes
        holds = slot.debounce.step(verdict.active, now)
        self._apply(rec, holds, verdict, now, out, rule)

    def _apply(self, rec: AlarmRecord, holds: bool, verdict: Verdict, now: float,
               out: Outbox, rule: RuleConfig | None = None) -> None:
        transition = rec.condition(holds, verdict.reason, verdict.value, now)
        if transition is None:
            return
        if transition is Transition.RAISED:
            self._join_episode(rec, now)
        self._emit(rec, transition, out)
        if transition is Transition.RAISED:
            self._notify(rec, "raise", now, out)
            if rule is not None and rule.action is not None:
                out.actions.append(ActionRequest(rec.id, rec.occurrence, rule.action,
                                                 verdict.reason))
        elif (transition in (Transition.RETURNED,) and self.config.notifications.notify_clear
              and rec.delivered.get("raise")):
            self._notify(rec, "clear", now, out)

    def _evaluate_system(self, now: float, out: Outbox) -> None:
        system = self.config.system
        for name, seen in self._daemons.items():
            rec = self._system(f"daemon_lost.{name}", "daemon_lost",
                               system.daemon_lost_severity, name, f"daemon {name} lost")
            age = now - seen.last
            said = f" (its last status: {seen.state}: {seen.message})" if seen.state else ""
            self._apply(rec, age > system.daemon_lost_s,
                        Verdict(age > system.daemon_lost_s,
                                f"no heartbeat from daemon {name} for {age:.1f} s (limit "
                                f"{system.daemon_lost_s:g} s){said}"), now, out)
            if seen.reliable is not None:
                self._backlog(name, seen.reliable, now, out)
            for interlock, info in seen.interlocks.items():
                if isinstance(info, dict) and info.get("state") == "failing":
                    self._pulses.setdefault(f"interlock.{name}.{interlock}",
                                            f"interlock {interlock}: its action keeps failing: "
                                            f"{info.get('detail', '')}")
        for logger, meta in self._loggers.items():
            self._disk(logger, meta, now, out)
        rec = self._system("notify_failed", "notify_failed", system.notify_failed_severity,
                           "", "notifications cannot be delivered")
        failing = "; ".join(sorted(self._failing.values()))
        self._apply(rec, bool(failing), Verdict(bool(failing), failing or
                                                "every notification was delivered"), now, out)
        for alarm in [a for a, r in self.records.items() if r.kind == "interlock"] + [
                a for a in self._pulses if a not in self.records]:
            rec = self._system(alarm, "interlock", system.interlock_severity, alarm,
                               f"{alarm.removeprefix('interlock.')} acted")
            reason = self._pulses.pop(alarm, "")
            self._apply(rec, bool(reason), Verdict(bool(reason), reason or
                                                   "the interlock's action holds"), now, out)

    def _backlog(self, daemon: str, stats: dict[str, Any], now: float, out: Outbox) -> None:
        system = self.config.system
        unacked = _number(stats.get("unacked")) or 0.0
        age = _number(stats.get("oldest_unacked_age_s")) or 0.0
        holds = unacked > system.backlog_messages or age > system.backlog_age_s
        rec = self._system(f"logger_backlog.{daemon}", "logger_backlog",
                           system.backlog_severity, daemon,
                           f"logger backlog at {daemon}")
        self._apply(rec, holds, Verdict(holds, f"{daemon}: {unacked:.0f} messages not "
                                               f"acknowledged by the logger, the oldest for "
                                               f"{age:.0f} s (limits {system.backlog_messages}, "
                                               f"{system.backlog_age_s:g} s)"), now, out)

    def _disk(self, logger: str, meta: dict[str, Any], now: float, out: Outbox) -> None:
        system = self.config.system
        free = _number(meta.get("disk_free_bytes"))
        total = _number(meta.get("disk_total_bytes"))
        if free is None:
            return
        fraction = free / total if total else 1.0
        holds = free < system.disk_free_bytes or fraction < system.disk_free_fraction
        rec = self._system(f"disk_low.{logger}", "disk_low", system.disk_severity, logger,
                           f"archive disk of {logger} nearly full")
        self._apply(rec, holds, Verdict(holds, f"logger {logger}: {free / 1e9:.2f} GB free "
                                               f"({100 * fraction:.1f} %; limits "
                                               f"{system.disk_free_bytes / 1e9:.2f} GB, "
                                               f"{100 * system.disk_free_fraction:.1f} %)",
                                        free), now, out)

    # ---- floods ------------------------------------------------------------------------------

    def _join_episode(self, rec: AlarmRecord, now: float) -> None:
        window = self.config.flood.window_s
        if self._episode_first and now - self._episode_last <= window \
                and self._episode_first != rec.id:
            rec.group = self._episode_first
            self._episode_size += 1
            if self._episode_size == self.config.flood.min_alarms:
                self.floods += 1
        else:
            self._episode_first, self._episode_size = rec.id, 1
        self._episode_last = now

    def _flush_flood(self, now: float, out: Outbox) -> None:
        if not self._flood_held or now - self._flood_since < self.config.flood.window_s:
            return
        held, self._flood_held = self._flood_held, []
        if self._episode_size < self.config.flood.min_alarms:
            for notice in held:
                out.notices.extend(self.limiter.offer(notice, now))
            return
        first = self.records.get(self._episode_first)
        worst = max((n.severity for n in held), key=lambda s: s.rank)
        lines = [f"- {n.title}" for n in held[:30]]
        if len(held) > 30:
            lines.append(f"- ... and {len(held) - 30} more")
        cause = (f"{first.id}: {first.reason} (at {_when(first.t_raised)})"
                 if first is not None else self._episode_first)
        notice = Notice("", 0, "flood", worst,
                        f"{self.config.notifications.title_prefix}FLOOD: {len(held)} more "
                        f"alarms after {self._episode_first}",
                        f"First cause: {cause}\n\nGrouped under it:\n" + "\n".join(lines),
                        tuple(dict.fromkeys(u for n in held for u in n.urls)),
                        covers=tuple(c for n in held for c in n.targets))
        out.notices.extend(self.limiter.offer(notice, now))

    # ---- notices -----------------------------------------------------------------------------

    def _urls_for(self, rec: AlarmRecord, key: str) -> tuple[str, ...]:
        notifications = self.config.notifications
        if key.startswith("escalate"):
            step = notifications.escalation[int(key.removeprefix("escalate")) - 1]
            return step.urls
        return notifications.routes.get(rec.severity, ())

    def _notify(self, rec: AlarmRecord, key: str, now: float, out: Outbox) -> None:
        rule = self._rules.get(rec.id)
        if rule is not None and not rule.config.notify:
            return
        if rec.shelved(now) or rec.suppressed_by:
            return
        token = (rec.id, rec.occurrence, key)
        if token in self._offered:
            return
        done = set(rec.delivered.get(key, ()))
        urls = tuple(u for u in self._urls_for(rec, key) if url_key(u) not in done)
        if not urls:
            return
        self._offered.add(token)
        notice = self._compose(rec, key, urls, now)
        if key == "raise" and rec.group:
            if not self._flood_held:
                self._flood_since = now
            self._flood_held.append(notice)
            return
        out.notices.extend(self.limiter.offer(notice, now))

    def _compose(self, rec: AlarmRecord, key: str, urls: tuple[str, ...],
                 now: float) -> Notice:
        prefix = self.config.notifications.title_prefix
        what = rec.description or rec.reason
        if key.startswith("escalate"):
            minutes = (now - (rec.t_raised or now)) / 60
            head = f"ESCALATED, unacknowledged for {minutes:.0f} min: "
        elif key == "clear":
            head = "back to normal: "
        else:
            head = ""
        repeat = (rec.id, rec.occurrence, key) in self._in_flight
        if repeat:
            head = f"possibly a repeat: {head}"
        title = f"{prefix}{rec.severity.value.upper()} {rec.id}: {head}{what}"[:200]
        lines = [f"{rec.reason}", "",
                 f"State: {rec.state.value.replace('_', ', ').replace('unack', 'unacknowledged')}"
                 f" (raised {_when(rec.t_raised)})"]
        if rec.group:
            lines.append(f"Grouped under the first cause: {rec.group}")
        if rec.guidance:
            lines += ["", f"What to do: {rec.guidance}"]
        if key != "clear":
            lines += ["", f"Acknowledge: {self.how_to_ack.format(alarm=rec.id)}"]
        if self.lab:
            lines += ["", f"Lab: {self.lab}"]
        if repeat:
            lines += ["", "The alarm service stopped while it was sending this notice, so it "
                          "is sent again: it may have reached you already."]
        return Notice(rec.id, rec.occurrence, key, rec.severity, title, "\n".join(lines), urls)

    def _escalate(self, rec: AlarmRecord, now: float, out: Outbox) -> None:
        if not rec.unacknowledged or rec.t_raised is None:
            return
        for i, step in enumerate(self.config.notifications.escalation, start=1):
            if rec.severity in step.severities and now - rec.t_raised >= step.after_s:
                self._notify(rec, f"escalate{i}", now, out)

    def _after_unshelve(self, rec: AlarmRecord, now: float, out: Outbox) -> None:
        if rec.unacknowledged and rec.active:
            self._notify(rec, "raise", now, out)

    def describe(self, alarm: str) -> str:
        """One line on where an alarm stands now (for digests)."""
        rec = self.records.get(alarm)
        if rec is None:
            return "(no longer configured)"
        return f"{rec.state.value}: {rec.reason}"

    def delivered(self, result: DeliveryResult, now: float) -> Outbox:
        """Take a delivery outcome from the notification thread."""
        out = Outbox()
        if not result.ok:
            if result.failing:
                self._failing[result.url_key] = f"{result.url}: {result.error}"
            return out
        self._failing.pop(result.url_key, None)
        notice = result.notice
        if not notice.record:
            return out
        for alarm, occurrence, key in notice.targets:
            rec = self.records.get(alarm)
            if rec is None or rec.occurrence != occurrence:
                continue
            urls = rec.delivered.setdefault(key, [])
            if result.url_key not in urls:
                urls.append(result.url_key)
            self._emit(rec, Transition.NOTIFIED, out,
                       {"notice": key, "url": result.url, "attempts": result.attempts})
        return out

    def action_done(self, request: ActionRequest, result: dict[str, Any], now: float) -> Outbox:
        """Take an automated action's outcome (the daemon's reply) from the action thread."""
        out = Outbox()
        rec = self.records.get(request.alarm)
        if rec is not None:
            action = request.action
            self._emit(rec, Transition.ACTION, out, {
                "op": action.op.value, "target": action.target, "value": action.value,
                "args": action.args, "ok": bool(result.get("ok")),
                "error": str(result.get("error", ""))[:500], "result": result.get("value")})
        return out

    # ---- operations --------------------------------------------------------------------------

    def _record(self, alarm: str) -> AlarmRecord:
        rec = self.records.get(alarm)
        if rec is None:
            known = ", ".join(sorted(self.records)[:40]) or "none"
            raise ControlError(f"no alarm {alarm!r}; known: {known}")
        return rec

    def acknowledge(self, alarms: Sequence[str], who: Who, comment: str, now: float) -> Outbox:
        """Acknowledge alarms (``["*"]``: every unacknowledged one).

        Raises:
            ControlError: an unknown alarm, or one with nothing to acknowledge; nothing
                of the request is done then.
        """
        if list(alarms) == ["*"]:
            targets = [r for r in self.records.values() if r.unacknowledged]
        else:
            targets = [self._record(a) for a in alarms]
            for rec in targets:
                if rec.state is AlarmState.NORMAL:
                    raise StateError(f"{rec.id} is normal: nothing to acknowledge")
                if rec.state is AlarmState.ACTIVE_ACK:
                    raise StateError(f"{rec.id} was acknowledged already by "
                                     f"{rec.acked_by or '?'}")
        if not targets:
            raise StateError("nothing to acknowledge")
        out = Outbox()
        for rec in targets:
            transition = rec.acknowledge(who.text, comment, now)
            self._emit(rec, transition, out, {"who": who.text, "key": who.key,
                                              "comment": comment})
            if (rec.state is AlarmState.NORMAL and self.config.notifications.notify_clear
                    and rec.delivered.get("raise")):
                self._notify(rec, "clear", now, out)
        return out

    def shelve(self, alarm: str, duration_s: float, who: Who, reason: str, now: float) -> Outbox:
        """Shelve ``alarm`` for ``duration_s`` (at most :data:`MAX_SHELVE_S`)."""
        rec = self._record(alarm)
        if not 0 < duration_s <= MAX_SHELVE_S:
            raise StateError(f"shelve for 0 to {MAX_SHELVE_S / 86400:g} days, "
                             f"not {duration_s:g} s")
        transition = rec.shelve(now + duration_s, who.text, reason, now)
        out = Outbox()
        self._emit(rec, transition, out, {"who": who.text, "key": who.key, "reason": reason,
                                          "duration_s": duration_s})
        return out

    def unshelve(self, alarm: str, who: Who, now: float) -> Outbox:
        """Take ``alarm`` off the shelf now."""
        rec = self._record(alarm)
        transition = rec.unshelve(who.text)
        out = Outbox()
        self._emit(rec, transition, out, {"who": who.text, "key": who.key})
        self._after_unshelve(rec, now, out)
        return out

    # ---- views -------------------------------------------------------------------------------

    def listing(self, now: float, *, everything: bool = False) -> list[dict[str, Any]]:
        """The alarm list: each group (first cause, then what is grouped under it) together,
        groups waiting for an acknowledgement first, then by severity, then oldest first."""
        shown = [r for r in self.records.values()
                 if everything or r.state is not AlarmState.NORMAL or r.shelved(now)]
        groups: dict[str, list[AlarmRecord]] = {}
        for rec in shown:
            root = rec.group if rec.group in self.records and rec.group else rec.id
            groups.setdefault(root, []).append(rec)

        def group_key(root: str) -> tuple[int, int, float, str]:
            members = groups[root]
            head = self.records[root]
            return (0 if any(m.unacknowledged for m in members) else 1,
                    -max(m.severity.rank for m in members),
                    head.t_raised if head.t_raised is not None else float("inf"), root)

        rows: list[dict[str, Any]] = []
        for root in sorted(groups, key=group_key):
            members = sorted(groups[root], key=lambda r: (r.id != root, r.t_raised or 0.0))
            for rec in members:
                row = record_meta(rec)
                row["shelved"] = rec.shelved(now)
                row["grouped"] = rec.id != root
                rows.append(row)
        return rows

    def summary(self, now: float) -> dict[str, Any]:
        """Counts for the service's status message."""
        counts: dict[str, int] = {}
        for rec in self.records.values():
            counts[rec.state.value] = counts.get(rec.state.value, 0) + 1
        return {"alarms": len(self.records), "states": counts,
                "shelved": sum(1 for r in self.records.values() if r.shelved(now)),
                "lab_states": {k: v for k, v in self.lab_states.items()},
                "failing_urls": sorted(self._failing.values()), "floods": self.floods,
                "held_notices": self.limiter.held_total}

    def _emit(self, rec: AlarmRecord, transition: Transition, out: Outbox,
              detail: dict[str, Any] | None = None) -> None:
        out.events.append(AlarmEvent(record_meta(rec), transition, dict(detail or {})))

