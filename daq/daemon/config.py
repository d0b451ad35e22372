"""The daemon's sections of the lab config: instruments, limits, interlocks, control.

::

    daemon:
      name: daemon-fridge1             # publisher name on the bus
      logger_url: tcp://127.0.0.1:7120 # reliable path; omit to run without a logger
      alarms_url: tcp://127.0.0.1:7130 # the alarm service's ops endpoint: the control ops
                                       # alarm_list/ack/shelve/unshelve are forwarded there
      status_period_s: 2.0             # how often every instrument's status is republished
      stale_after_periods: 3           # a channel without a fresh value for this many periods
      state_dir: state                 # what must survive a restart (the spool, a driver's
                                       # shadow of an instrument, a log reader's cursors);
                                       # relative to the config file; default: <lab data
                                       # directory>/state (daq.paths)
      control:
        bind: tcp://127.0.0.1:7110     # loopback unless said otherwise
        default_role: operator         # role of clients on a plain (non-CURVE) endpoint
        curve:                         # required for any non-loopback bind (daq.security)
          server_public: "<z85 public key>"             # clients need it
          server_secret_file: keys/daemon.key_secret    # or server_secret: "<z85>"
          clients:                     # allow-list: z85 public key -> role
            "<z85 public key>": operator
            "<z85 public key>": read-only
    instruments:
      ls372:
        driver: lakeshore.ls372:LakeShore372   # module under drivers/ : class
        resource: TCPIP::127.0.0.1::7777::SOCKET
        options: {timeout: 2000}               # keyword arguments of the driver
        source: fridge1                        # where the quantities live
        on_connect: []                         # driver methods to call after connecting
        setup: {tlimit_A: 0.8}                 # control specs set (and read back) after every
                                               # connect, before polling: hardware backstops
        poll:                                  # omit: every PollSpec at its default period
          - {spec: "A", channel: mxc, period_s: 1.0}
          - {spec: ch6, channel: mxc_scan, stale_s: 120}   # a scanner channel: silent
                                                           # between its dwells
        controls:                              # omit: every ControlSpec as source/<name>
          - {spec: setpoint, target: mxc_setpoint}
        actions:                               # omit: every ActionSpec as source/<name>
          - {spec: start_ramp, target: mxc_ramp}
        reconnect: {initial_s: 0.5, max_s: 10.0}
    limits:                                    # enforced in the daemon, before the driver
      fridge1/mxc_setpoint: {min: 0.0, max: 0.8, unit: K}
      fridge1/heater_range: {max: 5}
      fridge1/mode: {allowed: [0, 3, 5]}
    interlocks:
      - name: mxc_overheat
        stream: fridge1/mxc                    # a polled channel (source/channel)
        above: 0.9                             # or below: ..., or stale_s: ...
        target: fridge1/heater_range           # what to set when it trips
        value: 0

A target is ``source/name``; a stream is ``source/channel`` (the topic
without the ``data/`` kind).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daq.security import CurveServerConfig, is_loopback_url, require_curve_off_loopback

Role = Literal["operator", "read-only"]


CONTROL_ROLES = ("operator", "read-only")


@dataclass(frozen=True)
class ControlEndpointConfig:
    """Where the control endpoint (ROUTER) listens and who may use it.

    ``curve`` (:class:`daq.security.CurveServerConfig`) maps client keys to
    the roles ``operator`` and ``read-only``.
    """

    bind: str = "tcp://127.0.0.1:7110"
    default_role: Role = "operator"
    curve: CurveServerConfig | None = None

    @property
    def is_loopback(self) -> bool:
        """True when the endpoint is reachable from this machine only."""
        return is_loopback_url(self.bind)

    def __post_init__(self) -> None:
        require_curve_off_loopback(self.bind, self.curve, "control endpoint")
        if self.curve is not None:
            if not self.curve.clients:
                raise ValueError("clients: a CURVE endpoint needs an allow-list of client keys")
            for key, role in self.curve.clients.items():
                if role not in CONTROL_ROLES:
                    raise ValueError(f"client {key[:8]}...: role {role!r} is not one of "
                                     f"{', '.join(CONTROL_ROLES)}")


@dataclass(frozen=True)
class DaemonSettings:
    """The ``daemon:`` section."""

    name: str = "daemon"
    logger_url: str | None = None
    alarms_url: str | None = None
    status_period_s: float = 2.0
    stale_after_periods: float = 3.0
    control: ControlEndpointConfig = field(default_factory=ControlEndpointConfig)
    state_dir: str | None = None
    # The config file's directory (a relative ``state_dir`` is taken from it); not a YAML key.
    base_dir: str = field(default="", init=False, compare=False)
    # The lab's data directory (daq.paths): state goes to <data_root>/state by default.
    data_root: str = field(default="", init=False, compare=False)

    @property
    def state_path(self) -> Path:
        """The daemon's state directory: ``state_dir`` resolved, one subfolder per daemon name.

        A driver whose class sets ``KEEPS_STATE = True`` gets
        ``state_file=<state_path>/<instrument>.json`` unless its options name one.
        """
        if self.state_dir is None:
            root = Path(self.data_root) if self.data_root else Path("state").resolve().parent
            return root / "state" / self.name
        path = Path(self.state_dir).expanduser()
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path / self.name

    def __post_init__(self) -> None:
        if self.status_period_s <= 0:
            raise ValueError(f"status_period_s must be > 0 s, got {self.status_period_s}")
        if self.stale_after_periods < 1:
            raise ValueError(f"stale_after_periods must be >= 1, got {self.stale_after_periods}")


@dataclass(frozen=True)
class PollConfig:
    """One polled quantity: the driver's PollSpec name and the physicist's channel name."""

    spec: str
    channel: str | None = None  # default: the spec name
    period_s: float | None = None  # default: the spec's own period
    units: str | None = None  # default: the spec's unit
    stale_s: float | None = None  # default: daemon.stale_after_periods x period

    def __post_init__(self) -> None:
        if self.period_s is not None and self.period_s <= 0:
            raise ValueError(f"period_s must be > 0 s, got {self.period_s}")
        if self.stale_s is not None and self.stale_s <= 0:
            raise ValueError(f"stale_s must be > 0 s, got {self.stale_s}")


@dataclass(frozen=True)
class TargetConfig:
    """A ControlSpec or ActionSpec exposed under a target name."""

    spec: str
    target: str | None = None  # default: the spec name


@dataclass(frozen=True)
class BackoffConfig:
    """Reconnect backoff: doubling from ``initial_s`` up to ``max_s``."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("need 0 < initial_s <= max_s")


@dataclass(frozen=True)
class InstrumentConfig:
    """One instrument the daemon owns."""

    driver: str
    resource: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)
    on_connect: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)
    poll: list[PollConfig] | None = None
    controls: list[TargetConfig] | None = None
    actions: list[TargetConfig] | None = None
    reconnect: BackoffConfig = field(default_factory=BackoffConfig)

    def __post_init__(self) -> None:
        if ":" not in self.driver:
            raise ValueError(
                f"driver {self.driver!r} must be 'module:Class' under drivers/, "
                "e.g. 'lakeshore.ls372:LakeShore372'"
            )


@dataclass(frozen=True)
class LimitConfig:
    """Bounds on a target's value, checked before the driver sees it."""

    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")


@dataclass(frozen=True)
class InterlockConfig:
    """When ``stream`` passes a bound (or goes stale), set ``target`` to ``value``."""

    name: str
    stream: str
    target: str
    value: Any = 0
    above: float | None = None
    below: float | None = None
    stale_s: float | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.above, self.below, self.stale_s)) == 0:
            raise ValueError(f"interlock {self.name!r} needs above, below or stale_s")
