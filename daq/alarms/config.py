"""The ``alarms:`` section of the lab config: rules, lab states, system alarms, notifications.

Loaded with the rest of the lab config by :func:`daq.config_schema.from_mapping`;
every mistake is a :class:`daq.errors.ConfigError` naming the file, the key
path and the reason. Every key, with its default::

    alarms:
      name: alarms                      # publisher name; alarms travel as alarm/<name>/<alarm id>
      bind: tcp://127.0.0.1:7130        # the ops endpoint (ROUTER) the daemons forward to
                                        # (daemon.alarms_url); loopback unless a curve section
      curve: {...}                      # CURVE server keys (daq.security); the allow-list maps
                                        # each daemon's key to the role "daemon"
      logger_url: null                  # the reliable path for every transition; default: the
                                        # lab's logger.endpoint (no logger section: no archive,
                                        # no restart state)
      history_url: null                 # where the state is rebuilt from at start; default:
                                        # the lab's logger.history_endpoint
      state_dir: null                   # spool and run marker (a folder per name); relative to
                                        # the config file; default: <lab data directory>/state
                                        # (daq.paths)
      period_s: 0.5                     # how often conditions, delays and timers are evaluated
      status_period_s: 5.0              # status/<name>/alarms on the bus
      rebuild_window_s: 2592000         # the rebuild at start looks this far back (30 days)
      rebuild_timeout_s: 30.0           # a logger that does not answer for this long: the
                                        # start fails (exit non-zero; the supervisor retries)
      lab_states:                       # named conditions that rules are suppressed in
        warm: {stream: fridge1/mxc_control, above: 1.0, deadband: 0.1}
      flood:
        window_s: 5.0                   # activations closer than this form one episode: the
                                        # first cause stays on top, the rest are grouped under it
        min_alarms: 4                   # an episode this big is a flood: its grouped alarms are
                                        # told as one summary per window, not one by one
      system:                           # alarms that need no rule
        daemon_lost_s: 10.0             # dead-man: a daemon without heartbeat this long
        daemon_lost_severity: critical
        backlog_age_s: 120.0            # a daemon's oldest message unacknowledged by the
        backlog_messages: 500000        # logger this long, or this many unacknowledged
        backlog_severity: warning
        disk_free_bytes: 5368709120     # the logger's disk below this many free bytes
        disk_free_fraction: 0.05        # or below this fraction free
        disk_severity: critical
        notify_failed_severity: critical   # a notification that could not be delivered
        interlock_severity: critical       # a daemon's interlock tripped or its action fails
      notifications:
        routes:                         # Apprise URLs per severity (mailto://, json://, slack://,
                                        # mmost://, ntfy://, tgram://, ...)
          critical: ["mailto://smtp.lab?from=cryo@lab&to=night@lab", "ntfy://ntfy.lab/cryo"]
          warning: ["json://hooks.lab/alarms"]
          info: []
        escalation:                     # unacknowledged this long: also to the next list
          - {after_s: 900, urls: ["mailto://smtp.lab?from=cryo@lab&to=head@lab"],
             severities: [critical]}
        min_interval_s: 300.0           # per alarm: notices closer than this are held and sent
                                        # as one digest when the interval has passed
        max_per_hour: 120               # every notice together; the rest wait in one digest
        notify_clear: false             # also tell when an alarm returns to normal
        retry_s: 5.0                    # a failed delivery is retried, doubling up to
        max_retry_s: 300.0              # max_retry_s, for as long as it takes
        alarm_after_failures: 3         # failed attempts of one URL that raise notify_failed
        title_prefix: ""                # e.g. "[cryo-lab] "
      rules:
        - name: fridge1_mxc_warm        # the alarm id: letters, digits and _-.:@+
          severity: critical            # info, warning or critical
          when: {stream: fridge1/mxc_control, above: 0.030, deadband: 0.002}
          delay_s: 60.0                 # true this long before it is raised (on-delay)
          clear_delay_s: 0.0            # false this long before it clears (off-delay)
          latch: true                   # a cleared alarm stays until acknowledged
          suppress_in: [warm]           # off while any of these lab states holds
          guidance: "Check the still heater and the circulation; see the fridge log book."
          description: "MXC above 30 mK"
          notify: true                  # false: shown and stored, never sent
          action: {op: set, target: fridge1/sample_heater_range, value: 0, daemon: null}

Conditions (``when``, lab states, and the items of ``all``/``any``) are one of:

* threshold: ``{stream, above | below, deadband}``; clears only past the deadband;
* rate of change: ``{stream, rate_above | rate_below, per: s|min|h, window_s}``,
  the least-squares slope over the window (``rate_above: 1.0, per: h``: 1 K/h);
* stale stream: ``{stream, stale_s}`` or ``{stream, stale_periods, period_s}``
  (without ``period_s`` the period is learned from the stream itself);
* bad quality: ``{stream, bad_quality: true}``: the instrument flagged the reading
  (over-range, sensor error; :func:`daq.messages.is_bad`);
* instrument status: ``{instrument: fridge1/ls372, status_in: [disconnected, reconnecting]}``;
* combinations: ``{all: [...]}`` or ``{any: [...]}``.

A stream is ``source/channel`` (the ``data/`` kind implied), an instrument
``source/instrument`` (its ``status/`` stream). An action goes through the
daemon's control endpoint like any client (limits, roles, leases and audit
apply); ``daemon`` names the daemon of a facility config (default: the
daemon whose instruments' source is the target's source).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daq.messages import InstrumentState, check_name
from daq.security import CurveServerConfig, require_curve_off_loopback

#: Seconds per rate unit.
PER_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class Severity(enum.StrEnum):
    """How bad an alarm is; routes and escalation go by it."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (info) to 2 (critical): for sorting."""
        return list(Severity).index(self)


def _check_stream(value: str, what: str) -> None:
    parts = value.split("/")
    if len(parts) != 2:
        raise ValueError(f"{what} {value!r} must be source/channel (e.g. fridge1/mxc_control)")
    for part in parts:
        check_name(part, what)


@dataclass(frozen=True)
class ConditionConfig:
    """One condition (see the module docstring for the kinds and their keys)."""

    stream: str | None = None
    above: float | None = None
    below: float | None = None
    deadband: float = 0.0
    rate_above: float | None = None
    rate_below: float | None = None
    per: Literal["s", "min", "h"] = "h"
    window_s: float = 300.0
    stale_s: float | None = None
    stale_periods: float | None = None
    period_s: float | None = None
    bad_quality: bool = False
    instrument: str | None = None
    status_in: tuple[InstrumentState, ...] = (InstrumentState.DISCONNECTED,
                                              InstrumentState.RECONNECTING,
                                              InstrumentState.ERROR)
    all: list[ConditionConfig] | None = None
    any: list[ConditionConfig] | None = None

    @property
    def kind(self) -> str:
        """threshold, rate, stale, quality, status, all or any."""
        kinds = self._kinds()
        return kinds[0] if kinds else ""

    def _kinds(self) -> list[str]:
        found = []
        if self.above is not None or self.below is not None:
            found.append("threshold")
        if self.rate_above is not None or self.rate_below is not None:
            found.append("rate")
        if self.stale_s is not None or self.stale_periods is not None:
            found.append("stale")
        if self.bad_quality:
            found.append("quality")
        if self.instrument is not None:
            found.append("status")
        if self.all is not None:
            found.append("all")
        if self.any is not None:
            found.append("any")
        return found

    def __post_init__(self) -> None:
        kinds = self._kinds()
        if len(kinds) != 1:
            raise ValueError(
                "a condition is exactly one of: threshold (above/below), rate (rate_above/"
                "rate_below), stale (stale_s/stale_periods), bad_quality: true, instrument "
                f"(status), all, any; this one has {', '.join(kinds) or 'none of them'}")
        kind = kinds[0]
        needs_stream = kind in ("threshold", "rate", "stale", "quality")
        if needs_stream:
            if self.stream is None:
                raise ValueError(f"a {kind} condition needs stream (source/channel)")
            _check_stream(self.stream, "stream")
        elif self.stream is not None:
            raise ValueError(f"a {kind} condition takes no stream")
        if kind == "threshold":
            if self.above is not None and self.below is not None:
                raise ValueError("give above or below, not both (use any: [...] for a band)")
            if self.deadband < 0:
                raise ValueError(f"deadband must be >= 0, got {self.deadband}")
        if kind == "rate":
            if self.rate_above is not None and self.rate_below is not None:
                raise ValueError("give rate_above or rate_below, not both")
            if self.window_s <= 0:
                raise ValueError(f"window_s must be > 0 s, got {self.window_s}")
        if kind == "stale":
            if self.stale_s is not None and self.stale_periods is not None:
                raise ValueError("give stale_s or stale_periods, not both")
            for key in ("stale_s", "stale_periods", "period_s"):
                value = getattr(self, key)
                if value is not None and value <= 0:
                    raise ValueError(f"{key} must be > 0, got {value}")
        if kind == "status":
            assert self.instrument is not None
            _check_stream(self.instrument, "instrument")
            if not self.status_in:
                raise ValueError("status_in must name at least one state")
        if kind in ("all", "any"):
            items = self.all if kind == "all" else self.any
            if not items:
                raise ValueError(f"{kind} needs at least one condition")

    def streams(self) -> set[str]:
        """Every data stream (``source/channel``) this condition reads."""
        found = {self.stream} if self.stream is not None else set()
        for item in (self.all or []) + (self.any or []):
            found |= item.streams()
        return found

    def instruments(self) -> set[str]:
        """Every instrument status stream (``source/instrument``) this condition reads."""
        found = {self.instrument} if self.instrument is not None else set()
        for item in (self.all or []) + (self.any or []):
            found |= item.instruments()
        return found


class ActionOp(enum.StrEnum):
    """What an automated action does at the daemon."""

    SET = "set"
    CALL = "call"


@dataclass(frozen=True)
class ActionConfig:
    """An automated action, sent through a daemon's control endpoint when the alarm is raised."""

    op: ActionOp
    target: str
    value: Any = None
    args: dict[str, Any] = field(default_factory=dict)
    daemon: str | None = None

    def __post_init__(self) -> None:
        _check_stream(self.target, "target")
        if self.op is ActionOp.SET and self.value is None:
            raise ValueError(f"action set {self.target} needs a value")
        if self.op is ActionOp.CALL and self.value is not None:
            raise ValueError(f"action call {self.target} takes args, not a value")


@dataclass(frozen=True)
class RuleConfig:
    """One alarm rule (see the module docstring)."""

    name: str
    when: ConditionConfig
    severity: Severity = Severity.WARNING
    guidance: str = ""
    description: str = ""
    delay_s: float = 0.0
    clear_delay_s: float = 0.0
    latch: bool = True
    suppress_in: tuple[str, ...] = ()
    notify: bool = True
    action: ActionConfig | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "rule name")
        if "/" in self.name:
            raise ValueError(f"rule name {self.name!r} may not contain '/'")
        for key in ("delay_s", "clear_delay_s"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0 s, got {getattr(self, key)}")
        if len(self.guidance) > 2000:
            raise ValueError("guidance is limited to 2000 characters")


@dataclass(frozen=True)
class FloodConfig:
    """When many alarms fire at once (see the module docstring)."""

    window_s: float = 5.0
    min_alarms: int = 4

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0 s, got {self.window_s}")
        if self.min_alarms < 2:
            raise ValueError(f"min_alarms must be >= 2, got {self.min_alarms}")


@dataclass(frozen=True)
class SystemAlarmsConfig:
    """Thresholds and severities of the alarms that need no rule."""

    daemon_lost_s: float = 10.0
    daemon_lost_severity: Severity = Severity.CRITICAL
    backlog_age_s: float = 120.0
    backlog_messages: int = 500_000
    backlog_severity: Severity = Severity.WARNING
    disk_free_bytes: int = 5 << 30
    disk_free_fraction: float = 0.05
    disk_severity: Severity = Severity.CRITICAL
    notify_failed_severity: Severity = Severity.CRITICAL
    interlock_severity: Severity = Severity.CRITICAL

    def __post_init__(self) -> None:
        for key in ("daemon_lost_s", "backlog_age_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0 s, got {getattr(self, key)}")
        if self.backlog_messages < 1:
            raise ValueError(f"backlog_messages must be >= 1, got {self.backlog_messages}")
        if self.disk_free_bytes < 0 or not 0 <= self.disk_free_fraction < 1:
            raise ValueError("disk_free_bytes must be >= 0 and disk_free_fraction in [0, 1)")


def _check_urls(urls: tuple[str, ...], where: str) -> None:
    for i, url in enumerate(urls):
        if not _URL.match(url):
            raise ValueError(f"{where}[{i}]: {url[:40]!r} is not an Apprise URL "
                             "(scheme://..., e.g. mailto://smtp.lab?to=night@lab)")


@dataclass(frozen=True)
class EscalationConfig:
    """An alarm unacknowledged for ``after_s`` is also sent to ``urls``."""

    after_s: float
    urls: tuple[str, ...]
    severities: tuple[Severity, ...] = (Severity.CRITICAL,)

    def __post_init__(self) -> None:
        if self.after_s <= 0:
            raise ValueError(f"after_s must be > 0 s, got {self.after_s}")
        if not self.urls:
            raise ValueError("an escalation step needs urls")
        _check_urls(self.urls, "urls")


@dataclass(frozen=True)
class NotificationsConfig:
    """Where notices go and how often (see the module docstring)."""

    routes: dict[Severity, tuple[str, ...]] = field(default_factory=dict)
    escalation: tuple[EscalationConfig, ...] = ()
    min_interval_s: float = 300.0
    max_per_hour: int = 120
    notify_clear: bool = False
    retry_s: float = 5.0
    max_retry_s: float = 300.0
    alarm_after_failures: int = 3
    title_prefix: str = ""

    def __post_init__(self) -> None:
        for severity, urls in self.routes.items():
            _check_urls(urls, f"routes.{severity.value}")
        if self.min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0 s, got {self.min_interval_s}")
        if self.max_per_hour < 1:
            raise ValueError(f"max_per_hour must be >= 1, got {self.max_per_hour}")
        if not 0 < self.retry_s <= self.max_retry_s:
            raise ValueError("need 0 < retry_s <= max_retry_s")
        if self.alarm_after_failures < 1:
            raise ValueError(f"alarm_after_failures must be >= 1, got "
                             f"{self.alarm_after_failures}")
        after = [step.after_s for step in self.escalation]
        if after != sorted(after):
            raise ValueError("escalation steps must be in order of after_s")

    def all_urls(self) -> list[tuple[str, str]]:
        """(key path, URL) of every URL in the section."""
        found = [(f"routes.{sev.value}[{i}]", url) for sev, urls in self.routes.items()
                 for i, url in enumerate(urls)]
        found += [(f"escalation[{s}].urls[{i}]", url) for s, step in enumerate(self.escalation)
                  for i, url in enumerate(step.urls)]
        return found


@dataclass(frozen=True)
class AlarmsConfig:
    """The ``alarms:`` section (see the module docstring)."""

    name: str = "alarms"
    bind: str = "tcp://127.0.0.1:7130"
    curve: CurveServerConfig | None = None
    logger_url: str | None = None
    history_url: str | None = None
    state_dir: str | None = None
    period_s: float = 0.5
    status_period_s: float = 5.0
    rebuild_window_s: float = 30 * 86400.0
    rebuild_timeout_s: float = 30.0
    lab_states: dict[str, ConditionConfig] = field(default_factory=dict)
    flood: FloodConfig = field(default_factory=FloodConfig)
    system: SystemAlarmsConfig = field(default_factory=SystemAlarmsConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    rules: list[RuleConfig] = field(default_factory=list)
    # The config file's directory (a relative ``state_dir`` is taken from it); not a YAML key.
    base_dir: str = field(default="", init=False, compare=False)
    # The lab's data directory (daq.paths): state goes to <data_root>/state by default.
    data_root: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name, "alarms name")
        require_curve_off_loopback(self.bind, self.curve, "alarms endpoint")
        if not self.bind.startswith(("tcp://", "ipc://", "inproc://")):
            raise ValueError(f"bind {self.bind!r} must be a ZeroMQ endpoint like "
                             "tcp://127.0.0.1:7130")
        for key in ("period_s", "status_period_s", "rebuild_window_s", "rebuild_timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        for state in self.lab_states:
            check_name(state, "lab state name")
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules[{i}].name: {rule.name!r} is already the name of "
                                 f"rules[{seen[rule.name]}]")
            seen[rule.name] = i
            for j, state in enumerate(rule.suppress_in):
                if state not in self.lab_states:
                    raise ValueError(
                        f"rules[{i}].suppress_in[{j}]: no lab state {state!r} (lab_states: "
                        f"{', '.join(self.lab_states) or 'none'})")

    @property
    def state_path(self) -> Path:
        """The service's state directory: ``state_dir`` resolved, one folder per name."""
        if self.state_dir is None:
            root = Path(self.data_root or self.base_dir or ".")
            return root / "state" / self.name
        path = Path(self.state_dir).expanduser()
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path / self.name

    def rule(self, name: str) -> RuleConfig | None:
        """The rule called ``name``."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None
