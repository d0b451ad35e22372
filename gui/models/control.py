"""Controls, decided without Qt: which targets a panel offers, what needs a confirmation,
and where each request stands.

The daemon describes its targets (``Lab.list()``: kind, unit, the driver's
``allowed`` range, the config's ``limits``, the current value);
:func:`panel_rows` picks the ones the control room offers by their role
(:data:`ROLES`: MXC setpoint, ramp, heater range, PID, still output, TES
bias, SQUID lock/reset/tune) and :class:`ControlRow` carries one of them
with its limits text for beside the field.

A request goes through :class:`ControlRequest`'s states::

    IDLE -> (CONFIRMING ->) SENT -> OK | REFUSED | FAILED

:func:`confirmation` decides when a person must confirm first: anything that
can heat the fridge (a higher setpoint, a larger heater range, a ramp, a
higher still output, new PID gains) or changes the detector's bias. Making
things safer (heater off, a lower setpoint) goes straight out. A refusal
keeps the daemon's words verbatim; FAILED means no answer (daemon down).

:func:`control_permission` says whether this client may control at all (a
read-only role in the config, or a dashboard started ``--read-only``) and
why not; the widgets then show every control disabled with that reason.
"""

from __future__ import annotations

import enum
import itertools
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from daq.config import LabConfig

_ids = itertools.count(1)


class RequestState(enum.StrEnum):
    """Where one control request stands."""

    IDLE = "idle"
    CONFIRMING = "confirming"  # waits for the person to confirm
    SENT = "sent"  # on its way; no answer yet
    OK = "ok"  # the daemon did it
    REFUSED = "refused"  # the daemon said no (its words in ``answer``)
    FAILED = "failed"  # no answer: daemon down, or the request timed out


class Heats(enum.StrEnum):
    """How a role relates to heating and bias (the confirmation rules)."""

    NONE = "none"  # never needs a confirmation
    IF_HIGHER = "if_higher"  # a larger value puts more heat in (setpoint, range, still)
    ALWAYS = "always"  # any change can heat (PID gains, a ramp)
    BIAS = "bias"  # changes the detector's bias


@dataclass(frozen=True)
class Role:
    """A kind of control the panel offers, found by the target's name.

    Attributes:
        suffix: the target's channel part (``mxc_setpoint`` in ``fridge1/mxc_setpoint``).
        label: what the panel calls it.
        heats: its confirmation rule.
        value: ``number``, ``pid`` (three numbers), ``bool``, or ``action``.
        args: an action's arguments, each ``(name, label)``.
    """

    suffix: str
    label: str
    heats: Heats = Heats.NONE
    value: str = "number"
    args: tuple[tuple[str, str], ...] = ()


#: What the panel offers, in this order, when the daemon has the target.
ROLES: tuple[Role, ...] = (
    Role("mxc_setpoint", "MXC setpoint", Heats.IF_HIGHER),
    Role("mxc_ramp_rate", "Ramp rate", Heats.NONE),
    Role("mxc_ramp", "Ramp setpoint to", Heats.ALWAYS, "action",
         (("target", "target (K)"), ("rate", "rate (K/min)"))),
    Role("mxc_stop_ramp", "Stop the ramp", Heats.NONE, "action"),
    Role("sample_heater_range", "Heater range", Heats.IF_HIGHER),
    Role("mxc_pid", "PID gains", Heats.ALWAYS, "pid"),
    Role("still_output", "Still heater", Heats.IF_HIGHER),
    Role("all_heaters_off", "All heaters off", Heats.NONE, "action"),
    Role("bias_voltage", "TES bias", Heats.BIAS),
    Role("bias_output", "TES bias output", Heats.BIAS, "bool"),
    Role("bias_off", "TES bias off", Heats.BIAS, "action"),
    Role("squid_lock", "SQUID lock", Heats.NONE, "action"),
    Role("squid_reset", "SQUID reset", Heats.NONE, "action"),
    Role("squid_tune", "SQUID tune (open loop)", Heats.NONE, "action"),
)
_ROLES_BY_SUFFIX = {role.suffix: role for role in ROLES}


@dataclass(frozen=True)
class TargetInfo:
    """One item of ``Lab.list()``: a control or an action of the daemon."""

    target: str
    kind: str  # control | action
    instrument: str = ""
    unit: str = ""
    allowed: str = ""
    limits: str = ""
    params: tuple[str, ...] = ()
    doc: str = ""
    value: Any = None
    value_error: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TargetInfo:
        """From one entry of the daemon's ``list`` reply."""
        return cls(target=str(item.get("target", "")), kind=str(item.get("kind", "")),
                   instrument=str(item.get("instrument", "")), unit=str(item.get("unit", "")),
                   allowed=str(item.get("allowed", "") or ""),
                   limits=str(item.get("limits", "") or ""),
                   params=tuple(str(p) for p in item.get("params", []) or []),
                   doc=str(item.get("doc", "") or ""), value=item.get("value"),
                   value_error=str(item.get("value_error", "") or ""))


@dataclass(frozen=True)
class ControlRow:
    """One line of a control panel: a role found on a daemon.

    Attributes:
        daemon: the daemon's name in a facility config (None: the single daemon).
        role: what it is.
        info: the daemon's description of the target.
    """

    daemon: str | None
    role: Role
    info: TargetInfo

    @property
    def target(self) -> str:
        return self.info.target

    @property
    def limits_text(self) -> str:
        """What goes beside the field: the config's limits, else the instrument's range."""
        if self.info.limits:
            return f"limits {self.info.limits}"
        if self.info.allowed:
            return f"allowed {self.info.allowed}"
        return ""

    @property
    def current_text(self) -> str:
        """The current value as the daemon last listed it."""
        if self.info.value_error:
            return f"? ({self.info.value_error})"
        value = self.info.value
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.6g} {self.info.unit}".strip()
        if isinstance(value, str) and (fields := _FIELDS.findall(value)):
            # a structured setting as the driver writes it: PID372(p=100.0, i=20.0, d=0.0)
            return ", ".join(f"{k} {float(v):g}" for k, v in fields)
        return f"{value} {self.info.unit}".strip()

    @property
    def source(self) -> str:
        """Where the target lives (``fridge1``, ``tes1``)."""
        return self.target.split("/")[0]

    @property
    def choices(self) -> list[str]:
        """The values the instrument takes, when it takes a list of them (heater ranges)."""
        allowed = self.info.allowed
        if not allowed.startswith("one of "):
            return []
        items = [item.strip() for item in allowed[len("one of "):].split(",")]
        if items and self.info.unit and items[-1].endswith(" " + self.info.unit):
            items[-1] = items[-1][: -len(self.info.unit) - 1]
        return [item for item in items if item]


def panel_rows(daemon: str | None, targets: Iterable[TargetInfo],
               sources: Iterable[str] | None = None) -> list[ControlRow]:
    """The rows a panel offers from a daemon's targets, in :data:`ROLES` order.

    Args:
        daemon: the daemon's name (facility) or None.
        targets: its ``list()`` reply as :class:`TargetInfo`.
        sources: only targets of these sources (``fridge2``); all when None.
    """
    wanted = None if sources is None else set(sources)
    found: dict[str, list[ControlRow]] = {}
    for info in targets:
        source, _, channel = info.target.partition("/")
        role = _ROLES_BY_SUFFIX.get(channel)
        if role is None or (wanted is not None and source not in wanted):
            continue
        found.setdefault(role.suffix, []).append(ControlRow(daemon, role, info))
    return [row for role in ROLES for row in sorted(found.get(role.suffix, []),
                                                    key=lambda r: r.target)]


# ---- values ------------------------------------------------------------------------------------

_FIELDS = re.compile(r"(\w+)=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµ%/]*)\s*$")
_SCALE = {"": 1.0, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9, "k": 1e3}


def parse_number(text: str, unit: str = "") -> float:
    """A number typed by a person: ``"0.05"``, ``"50 mK"``, ``"3.2 V"``, ``"20m"``.

    A prefix before the target's unit (``mK`` for a target in K) scales it.

    Raises:
        ValueError: not a number in the target's unit, in words for the person.
    """
    match = _NUMBER.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a number")
    value, suffix = float(match.group(1)), match.group(2)
    if suffix and unit and suffix.endswith(unit):
        suffix = suffix[: -len(unit)]
    elif suffix and suffix == unit:
        suffix = ""
    if suffix not in _SCALE:
        raise ValueError(f"{text!r}: unit {match.group(2)!r} is not {unit or 'a plain number'}")
    value *= _SCALE[suffix]
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_value(role: Role, text: str, unit: str = "") -> Any:
    """The value to send for ``text`` typed into a ``role``'s field.

    Raises:
        ValueError: what is wrong with it, in words for the person.
    """
    if role.value == "bool":
        word = text.strip().lower()
        if word in ("on", "true", "1", "yes"):
            return True
        if word in ("off", "false", "0", "no"):
            return False
        raise ValueError(f"{text!r}: type on or off")
    if role.value == "pid":
        parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
        if len(parts) != 3:
            raise ValueError(f"{text!r}: type three gains, P, I, D (e.g. 100, 20, 0)")
        return [parse_number(p) for p in parts]
    return parse_number(text, unit)


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def confirmation(row: ControlRow, value: Any, args: dict[str, Any] | None = None) -> str | None:
    """The question to ask before sending, or None when it may go straight out."""
    role, info = row.role, row.info
    where = row.target
    if role.heats is Heats.NONE:
        return None
    if role.heats is Heats.BIAS:
        if role.value == "action":
            return f"Change the detector bias: {role.label.lower()} ({where})?"
        return f"Change the detector bias {where} from {row.current_text} to " \
               f"{_fmt(value, info.unit)}?"
    if role.heats is Heats.ALWAYS:
        if role.value == "action":
            shown = ", ".join(f"{k} = {v}" for k, v in (args or {}).items())
            return f"This can heat the fridge: {role.label.lower()} on {where} ({shown})?"
        return f"This can heat the fridge: set {where} to {_fmt(value, info.unit)} " \
               f"(now {row.current_text})?"
    new, old = _as_float(value), _as_float(info.value)
    if new is not None and old is not None and new <= old:
        return None  # lower: cooler, no question
    return f"This heats the fridge: raise {where} from {row.current_text} to " \
           f"{_fmt(value, info.unit)}?"


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.6g} {unit}".strip()
    if isinstance(value, list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value} {unit}".strip()


# ---- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One request for the daemon's control endpoint.

    Attributes:
        daemon: which daemon (facility) or None.
        op: ``set``, ``call``, or another op of the endpoint (``alarm_ack``).
        fields: the request's fields (``target``, ``value``, ``args`` ...).
        id: unique per command; the answer carries it back.
    """

    daemon: str | None
    op: str
    fields: dict[str, Any]
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def target(self) -> str:
        return str(self.fields.get("target", ""))

    def describe(self) -> str:
        """The command in words: ``set fridge1/mxc_setpoint = 0.05``."""
        if self.op == "set":
            return f"set {self.target} = {self.fields.get('value')!r}"
        if self.op == "call":
            args = self.fields.get("args") or {}
            shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
            return f"call {self.target}({shown})"
        return f"{self.op} " + ", ".join(f"{k}={v!r}" for k, v in self.fields.items())


@dataclass(frozen=True)
class Answer:
    """What came back for a :class:`Command`.

    Attributes:
        command: the command answered.
        ok: the daemon did it.
        reply: the whole reply (``value`` holds what was sent to the instrument).
        error: the daemon's refusal verbatim, or why there was no answer.
        refused: True for the daemon's refusal, False when it never answered.
    """

    command: Command
    ok: bool
    reply: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    refused: bool = False


class ControlRequest:
    """The state of one control's request (see the module docstring)."""

    def __init__(self) -> None:
        self.state = RequestState.IDLE
        self.command: Command | None = None
        self.question = ""
        self.answer = ""
        self.answered_at = 0.0

    def propose(self, command: Command, question: str | None) -> Command | None:
        """A person asked for ``command``: returns it when it may go now, else None
        (the request then waits in CONFIRMING with ``question``)."""
        if self.state in (RequestState.SENT, RequestState.CONFIRMING):
            raise ValueError(f"a request is {self.state.value}; wait for it (or cancel)")
        self.command = command
        self.answer = ""
        if question:
            self.state = RequestState.CONFIRMING
            self.question = question
            return None
        self.question = ""
        self.state = RequestState.SENT
        return command

    def confirm(self) -> Command:
        """The person confirmed: the command to send."""
        if self.state is not RequestState.CONFIRMING or self.command is None:
            raise ValueError("nothing to confirm")
        self.state = RequestState.SENT
        return self.command

    def cancel(self) -> None:
        """The person cancelled the confirmation."""
        if self.state is RequestState.CONFIRMING:
            self.state = RequestState.IDLE
            self.command = None
            self.question = ""
            self.answer = "cancelled"

    def answered(self, answer: Answer) -> bool:
        """Take the answer; False when it belongs to another command."""
        if self.command is None or answer.command.id != self.command.id:
            return False
        self.answered_at = time.time()
        if answer.ok:
            self.state = RequestState.OK
            value = answer.reply.get("value")
            self.answer = "done" if value is None else f"done: {value!r}"
        elif answer.refused:
            self.state = RequestState.REFUSED
            self.answer = answer.error
        else:
            self.state = RequestState.FAILED
            self.answer = answer.error
        return True

    @property
    def busy(self) -> bool:
        return self.state in (RequestState.SENT, RequestState.CONFIRMING)


# ---- permission --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    """Whether this client may send controls, and why not."""

    allowed: bool
    reason: str = ""


def control_permission(config: LabConfig, daemon: str | None = None, *,
                       read_only: bool = False) -> Permission:
    """What the config (and the ``--read-only`` flag) let this dashboard do on ``daemon``
    (a facility's daemon name; None for a single-daemon config).

    Without CURVE every client has the endpoint's ``default_role``; with CURVE
    the role is the one the allow-list gives this host's key.
    """
    if read_only:
        return Permission(False, "this dashboard was started read-only (--read-only)")
    if config.daemons:
        if daemon not in config.daemons:
            return Permission(False, f"the config has no daemon {daemon!r}")
        config = config.for_daemon(daemon)
    elif not config.instruments and config.dastard is None:
        return Permission(False, "the config names no daemon to control")
    control = config.daemon.control
    role: str
    if control.curve is None:
        role = control.default_role
        where = "the daemon's default_role"
    else:
        key = config.identity.public_key if config.identity is not None else ""
        role = control.curve.clients.get(key, "none")
        where = "the daemon's CURVE allow-list for this host's key"
    if role != "operator":
        return Permission(False, f"read-only connection: {where} is {role!r}; controls need "
                                 "the operator role")
    return Permission(True)
