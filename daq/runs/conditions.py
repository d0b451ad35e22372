"""Suspenders: the conditions under which a run pauses, and the thread that watches them.

A condition watches the live path and is *bad* or *good* (Bluesky calls
these suspenders). The run engine asks before and after every step; a step
during which any condition was bad is thrown away, the run waits until every
condition has been good for the recipe's settle time, and the step is done
again. Kinds (:class:`ConditionKind`):

``above`` / ``below``
    the newest good value of ``stream`` (``fridge1/mxc_control``) is above /
    below ``limit`` (e.g. the mixing chamber warmer than the measurement allows).
``stale``
    ``stream`` has had no good value for ``after_s``, its newest value is
    flagged bad (over range, sensor error: :func:`daq.messages.is_bad`), or its
    instrument's status is not ``connected`` (stale, reconnecting, error).
``squid_unlocked``
    the newest record of ``stream`` (``tes1/squid_out``) sits at the digitizer's
    rails (flagged ``CLIPPED``): a flux-locked loop that lost lock runs into
    its rails, and a railed record carries no TES signal. Good again with the
    first record that is not clipped.
``alarm``
    an alarm of at least ``severity`` is active (``alarm/...`` messages of the
    alarm service: active until cleared; an interlock's trip or failed action
    counts as active for ``hold_s``, since no clear follows it).

A condition with no value yet is bad ("no value yet"): a run does not start
blind. The watcher seeds itself from the broker's last-value snapshot.

Interface: :class:`ConditionConfig` (a recipe entry), :class:`Check` (plain
logic, one per condition), :class:`Watcher` (the thread; ``current``,
``bad_since``, ``good_for``), :class:`Verdict`.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from daq.bus import Subscriber
from daq.config import LabConfig
from daq.messages import Kind, Message, Quality, is_bad

log = logging.getLogger(__name__)

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_ACTIVE = frozenset({"active_unack", "active_ack", "active", "raised", "reactivated"})
_ONE_SHOT = frozenset({"tripped", "action_failed"})
_CLEARED = frozenset({"cleared_unack", "normal", "cleared", "returned"})


class ConditionKind(enum.StrEnum):
    """What a condition watches (see the module docstring)."""

    ABOVE = "above"
    BELOW = "below"
    STALE = "stale"
    SQUID_UNLOCKED = "squid_unlocked"
    ALARM = "alarm"


@dataclass(frozen=True)
class ConditionConfig:
    """One suspender of a recipe.

    Attributes:
        name: how pauses name it.
        kind: what it watches.
        stream: ``source/channel`` (not for ``alarm``).
        limit: the bound of ``above`` / ``below``, in the stream's units.
        after_s: ``stale``: no good value for this long is bad, s.
        severity: ``alarm``: the lowest severity that suspends (info, warning, critical).
        hold_s: ``alarm``: how long a one-shot alarm (an interlock trip) counts as active, s.
    """

    name: str
    kind: ConditionKind
    stream: str = ""
    limit: float | None = None
    after_s: float = 10.0
    severity: str = "critical"
    hold_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind is not ConditionKind.ALARM and self.stream.count("/") != 1:
            raise ValueError(f"condition {self.name!r}: stream {self.stream!r} must be "
                             "'source/channel'")
        if self.kind in (ConditionKind.ABOVE, ConditionKind.BELOW) and (
                self.limit is None or not math.isfinite(self.limit)):
            raise ValueError(f"condition {self.name!r}: kind {self.kind.value} needs a limit")
        if self.severity not in _SEVERITY_RANK:
            raise ValueError(f"condition {self.name!r}: severity must be one of "
                             f"{', '.join(_SEVERITY_RANK)}, got {self.severity!r}")
        if self.after_s <= 0 or self.hold_s <= 0:
            raise ValueError(f"condition {self.name!r}: after_s and hold_s must be > 0 s")

    def prefixes(self, instrument_status: str | None) -> list[str]:
        """Topic prefixes this condition needs."""
        if self.kind is ConditionKind.ALARM:
            return ["alarm/"]
        if self.kind is ConditionKind.SQUID_UNLOCKED:
            return [f"wave/{self.stream}"]
        out = [f"data/{self.stream}"]
        if self.kind is ConditionKind.STALE:
            out.append(f"wave/{self.stream}")
            if instrument_status:
                out.append(instrument_status)
        return out


@dataclass(frozen=True)
class Verdict:
    """A condition that is (or was) bad.

    Attributes:
        condition: its name.
        reason: what it saw.
        since: monotonic time it went bad.
    """

    condition: str
    reason: str
    since: float


class Check:
    """One condition's state from the messages it is given (plain logic, no I/O).

    Args:
        config: the condition.
        status_stream: the status stream of the instrument behind ``config.stream``.
    """

    def __init__(self, config: ConditionConfig, status_stream: str | None = None) -> None:
        self.config = config
        self.status_stream = status_stream
        self.value: float | None = None
        self.last_good: float | None = None
        self.flagged = ""
        self.instrument_state = "connected"
        self.clipped = ""
        self.records = 0
        self.alarms: dict[str, tuple[str, float | None]] = {}  # stream -> (reason, expires)

    def on_message(self, msg: Message, now: float) -> None:
        """Take one message (any; what does not concern this condition is ignored)."""
        cfg = self.config
        stream = f"{msg.source}/{msg.channel}"
        if cfg.kind is ConditionKind.ALARM:
            if msg.kind is Kind.ALARM:
                self._on_alarm(msg, now)
            return
        if msg.kind is Kind.STATUS and msg.stream == self.status_stream:
            self.instrument_state = str(msg.meta.get("state", "connected"))
            return
        if stream != cfg.stream:
            return
        if msg.kind is Kind.WAVE:
            self.records += 1
            self.clipped = (str(msg.meta.get("note", "") or "records at the digitizer's rails")
                            if msg.quality & Quality.CLIPPED else "")
            if cfg.kind is ConditionKind.STALE:
                if is_bad(msg.quality) and not msg.quality & Quality.CLIPPED:
                    self.flagged = f"flagged {msg.quality:#x}"
                else:
                    self.flagged = ""
                    self.last_good = now
            return
        if msg.kind is not Kind.DATA:
            return
        if is_bad(msg.quality):
            self.flagged = str(msg.meta.get("note", "") or f"flagged {msg.quality:#x}")
            return
        self.flagged = ""
        self.value = msg.value
        self.last_good = now

    def _on_alarm(self, msg: Message, now: float) -> None:
        meta = msg.meta
        severity = str(meta.get("severity", meta.get("level", "info"))).lower()
        if _SEVERITY_RANK.get(severity, 0) < _SEVERITY_RANK[self.config.severity]:
            return
        state = str(meta.get("state", "")).lower()
        reason = f"{severity} alarm {msg.source}/{msg.channel}: {meta.get('reason', state)}"
        if state in _ACTIVE:
            self.alarms[msg.stream] = (reason, None)
        elif state in _ONE_SHOT:
            self.alarms[msg.stream] = (reason, now + self.config.hold_s)
        elif state in _CLEARED:
            self.alarms.pop(msg.stream, None)

    def verdict(self, now: float) -> str | None:
        """Why the condition is bad now, or None when it is good."""
        cfg = self.config
        if cfg.kind is ConditionKind.ALARM:
            for stream, (reason, expires) in list(self.alarms.items()):
                if expires is not None and now >= expires:
                    del self.alarms[stream]
                    continue
                return reason
            return None
        if cfg.kind is ConditionKind.SQUID_UNLOCKED:
            if self.records == 0:
                return f"no record of {cfg.stream} yet"
            return f"{cfg.stream}: {self.clipped} (SQUID unlocked?)" if self.clipped else None
        if cfg.kind is ConditionKind.STALE:
            if self.instrument_state != "connected":
                return f"the instrument behind {cfg.stream} is {self.instrument_state}"
            if self.flagged:
                return f"{cfg.stream} is flagged bad: {self.flagged}"
            if self.last_good is None:
                return f"no value of {cfg.stream} yet"
            if now - self.last_good > cfg.after_s:
                return f"{cfg.stream}: no good value for {now - self.last_good:.0f} s"
            return None
        if self.value is None:
            return f"no value of {cfg.stream} yet"
        assert cfg.limit is not None
        if cfg.kind is ConditionKind.ABOVE and self.value > cfg.limit:
            return f"{cfg.stream} = {self.value:.6g} is above {cfg.limit:.6g}"
        if cfg.kind is ConditionKind.BELOW and self.value < cfg.limit:
            return f"{cfg.stream} = {self.value:.6g} is below {cfg.limit:.6g}"
        return None


def status_stream_of(config: LabConfig, stream: str) -> str | None:
    """``status/<source>/<instrument>`` of the instrument that polls ``stream``."""
    for name, inst in config.instruments.items():
        for poll in inst.poll or []:
            if f"{inst.source}/{poll.channel or poll.spec}" == stream:
                return f"status/{inst.source}/{name}"
    return None


class Watcher:
    """Evaluates conditions in its own thread (its own subscriber socket).

    Args:
        config: the lab config (broker endpoints, which instrument polls what).
        conditions: the recipe's conditions.
        period_s: how often the verdicts are evaluated.
    """

    def __init__(self, config: LabConfig, conditions: Sequence[ConditionConfig], *,
                 period_s: float = 0.1) -> None:
        self.config = config
        self.checks = [Check(c, status_stream_of(config, c.stream)) for c in conditions]
        self.period_s = period_s
        self._lock = threading.Lock()
        self._current: Verdict | None = None
        self._episodes: list[tuple[float, float | None, Verdict]] = []  # (start, end, verdict)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._exempt: dict[str, int] = {}

    @contextlib.contextmanager
    def exempt(self, *streams: str) -> Iterator[None]:
        """Do not evaluate the conditions on ``streams`` meanwhile (a procedure moving
        that quantity on purpose, e.g. warming the bath above T_c for a thermal overbias)."""
        with self._lock:
            for stream in streams:
                self._exempt[stream] = self._exempt.get(stream, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for stream in streams:
                    self._exempt[stream] -= 1
                    if not self._exempt[stream]:
                        del self._exempt[stream]

    def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe, take the snapshot, start evaluating."""
        if not self.checks:
            self._ready.set()
            return
        self._thread = threading.Thread(target=self._run, name="run-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(timeout_s)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        prefixes = sorted({p for check in self.checks
                           for p in check.config.prefixes(check.status_stream)})
        bus = self.config.bus
        try:
            sub = Subscriber(bus.subscribe_url, prefixes, snapshot_url=bus.snapshot_url,
                             curve=self.config.keys_for("bus"))
        except Exception as exc:
            self._error = exc
            self._ready.set()
            return
        try:
            now = time.monotonic()
            for prefix in prefixes:
                try:
                    for cached in sub.snapshot(prefix, timeout_s=2.0):
                        self._feed(cached, now)
                except Exception as exc:  # no snapshot: the live messages will do
                    log.debug("snapshot of %s: %s", prefix, exc)
            self._evaluate(time.monotonic())
            self._ready.set()
            next_eval = time.monotonic()
            while not self._stop.is_set():
                msg = sub.recv(self.period_s)
                now = time.monotonic()
                if msg is not None:
                    self._feed(msg, now)
                if now >= next_eval:
                    self._evaluate(now)
                    next_eval = now + self.period_s
        finally:
            sub.close()

    def _feed(self, msg: Message, now: float) -> None:
        for check in self.checks:
            check.on_message(msg, now)

    def _evaluate(self, now: float) -> None:
        verdict = None
        with self._lock:
            exempt = set(self._exempt)
        for check in self.checks:
            if check.config.stream and check.config.stream in exempt:
                continue
            reason = check.verdict(now)
            if reason is not None:
                verdict = Verdict(check.config.name, reason, now)
                break
        with self._lock:
            if verdict is not None and self._current is None:
                self._current = verdict
                self._episodes.append((now, None, verdict))
                log.info("condition %s went bad: %s", verdict.condition, verdict.reason)
            elif verdict is not None and self._current is not None:
                # Still bad; keep the first verdict of the episode but show the latest words.
                self._current = Verdict(verdict.condition, verdict.reason, self._current.since)
            elif verdict is None and self._current is not None:
                start, _, first = self._episodes[-1]
                self._episodes[-1] = (start, now, first)
                log.info("conditions good again (%s was bad for %.1f s)", first.condition,
                         now - start)
                self._current = None
            del self._episodes[:-100]

    # ---- what the engine asks (any thread) ------------------------------------------------

    def current(self) -> Verdict | None:
        """The condition that is bad now (None: all good)."""
        with self._lock:
            return self._current

    def bad_since(self, t0: float) -> Verdict | None:
        """A condition that was bad at any time since monotonic ``t0`` (None: none was)."""
        with self._lock:
            if self._current is not None:
                return self._current
            for _start, end, verdict in reversed(self._episodes):
                if end is not None and end >= t0:
                    return verdict
                break  # episodes are in time order: the newest ended before t0
            return None

    def good_for(self, now: float | None = None) -> float:
        """Seconds every condition has been good (0 while one is bad; inf if none ever was)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._current is not None:
                return 0.0
            if not self._episodes:
                return math.inf
            end = self._episodes[-1][1]
            return now - end if end is not None else 0.0

