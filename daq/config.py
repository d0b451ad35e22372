"""The lab configuration: one YAML file, loaded into typed, validated objects.

A config file has these top-level sections (unknown keys are errors)::

    lab: {name: fridge-lab}          # shown in logs and dashboards; data_dir: where the
                                     # archive and state go (daq.paths: the user's data
                                     # directory by default)
    bus:                             # BusConfig: where the broker listens
      host: 127.0.0.1
      publish_port: 7100             # publishers connect here (broker XSUB)
      subscribe_port: 7101           # subscribers connect here (broker XPUB)
      snapshot_port: 7102            # late joiners ask for last values here
      heartbeat_s: 1.0
      hwm: 100000
      curve: {...}                   # required unless host is loopback (daq.security)
    identity: {...}                  # this host's CURVE key pair, for CURVE endpoints
    simulation: {...}                # the simulated lab (validated by simulators.config)
    daemon: {...}                    # daq.daemon.config: name, logger_url, control endpoint
    instruments: {...}               # daq.daemon.config.InstrumentConfig per instrument
    limits: {...}                    # per control target
    interlocks: [...]
    dastard: {...}                   # daq.dastard.config: a DASTARD server the daemon bridges
    daemons:                         # a facility: several daemons in one file, each with its
      fridge1:                       #   own daemon, instruments, limits and interlocks
        daemon: {...}                #   (instead of the four sections above); a service
        instruments: {...}           #   picks one with --daemon NAME
        limits: {...}
        interlocks: [...]
    logger: {...}                    # daq.logger.config.LoggerConfig: endpoints, store, sinks
    alarms: {...}                    # daq.alarms.config.AlarmsConfig: rules, notifications
    dashboard: {...}                 # daq.dashboard_config: what the control room shows

Every problem is a :class:`daq.errors.ConfigError` naming the file,
the key path and what was expected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daq.alarms.config import AlarmsConfig
from daq.config_schema import anchor, from_mapping, read_yaml
from daq.daemon.config import DaemonSettings, InstrumentConfig, InterlockConfig, LimitConfig
from daq.dashboard_config import DashboardConfig
from daq.dastard.config import DastardConfig
from daq.errors import ConfigError
from daq.logger.config import LoggerConfig
from daq.paths import data_root
from daq.security import (
    ClientKeys,
    CurveServerConfig,
    IdentityConfig,
    client_keys,
    require_curve_off_loopback,
)


def configs_dir() -> Path:
    """The shipped configs: ``daq/configs`` in an installed wheel, ``configs/`` in a checkout."""
    packaged = Path(__file__).resolve().parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "configs"


#: The embedded default: the simulated lab on localhost.
DEFAULT_CONFIG = configs_dir() / "sim_lab.yaml"


@dataclass(frozen=True)
class LabInfo:
    """Who this lab is, for logs and window titles."""

    name: str = "qupdaq-lab"
    data_dir: str | None = None  # default: the user's data directory (daq.paths)


@dataclass(frozen=True)
class BusConfig:
    """Where the broker listens and how the bus behaves.

    Attributes:
        host: address the broker binds and clients connect to.
        publish_port: broker's XSUB port; publishers connect to it.
        subscribe_port: broker's XPUB port; subscribers connect to it.
        snapshot_port: broker's last-value snapshot port (ROUTER).
        heartbeat_s: publishers' heartbeat period; stale after two missed.
        hwm: high-water mark (messages queued per peer before the live
            path drops and the receivers count a gap).
        curve: CURVE keys and allow-list of the broker's ports (roles
            ``publisher`` and ``subscriber``); required beyond loopback.
    """

    host: str = "127.0.0.1"
    publish_port: int = 7100
    subscribe_port: int = 7101
    snapshot_port: int = 7102
    heartbeat_s: float = 1.0
    hwm: int = 100_000
    curve: CurveServerConfig | None = None

    def __post_init__(self) -> None:
        require_curve_off_loopback(f"tcp://{self.host}:{self.publish_port}", self.curve,
                                   "bus host")
        for name in ("publish_port", "subscribe_port", "snapshot_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} {port} is not a TCP port (0-65535)")
        if self.heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be > 0 s, got {self.heartbeat_s}")
        if self.hwm < 0:
            raise ValueError(f"hwm must be >= 0, got {self.hwm}")

    def url(self, port: int) -> str:
        return f"tcp://{self.host}:{port}"

    @property
    def publish_url(self) -> str:
        return self.url(self.publish_port)

    @property
    def subscribe_url(self) -> str:
        return self.url(self.subscribe_port)

    @property
    def snapshot_url(self) -> str:
        return self.url(self.snapshot_port)


@dataclass(frozen=True)
class DaemonSection:
    """One daemon of a facility config (``daemons.<name>``): what it owns and guards."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    instruments: dict[str, InstrumentConfig] = field(default_factory=dict)
    limits: dict[str, LimitConfig] = field(default_factory=dict)
    interlocks: list[InterlockConfig] = field(default_factory=list)
    dastard: DastardConfig | None = None


@dataclass(frozen=True)
class LabConfig:
    """The whole configuration file."""

    lab: LabInfo = field(default_factory=LabInfo)
    bus: BusConfig = field(default_factory=BusConfig)
    simulation: dict[str, Any] | None = None  # validated by the simulated lab itself
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    instruments: dict[str, InstrumentConfig] = field(default_factory=dict)
    limits: dict[str, LimitConfig] = field(default_factory=dict)
    interlocks: list[InterlockConfig] = field(default_factory=list)
    dastard: DastardConfig | None = None
    logger: LoggerConfig | None = None
    alarms: AlarmsConfig | None = None
    identity: IdentityConfig | None = None
    daemons: dict[str, DaemonSection] = field(default_factory=dict)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    source: str = field(default="", init=False)  # the file it came from; not a YAML key

    def __post_init__(self) -> None:
        if self.daemons and (self.instruments or self.limits or self.interlocks):
            raise ValueError("a facility config (daemons) keeps instruments, limits and "
                             "interlocks inside each daemon, not at the top level")

    @property
    def daemon_names(self) -> list[str]:
        """The daemons this file describes: the facility's, or the one top-level daemon
        (none when there are no instruments)."""
        if self.daemons:
            return list(self.daemons)
        return [self.daemon.name] if self.instruments else []

    def for_daemon(self, name: str | None) -> LabConfig:
        """The single-daemon view of ``name`` (the file itself when it has one daemon).

        Raises:
            ConfigError: a facility file without a name, or an unknown name.
        """
        if not self.daemons:
            if name not in (None, self.daemon.name) and name not in self.daemon_names:
                raise ConfigError(f"no daemon named {name!r}; this file has "
                                  f"{', '.join(self.daemon_names) or 'none'}", file=self.source)
            return self
        if name is None or name not in self.daemons:
            raise ConfigError(("name the daemon (--daemon NAME): " if name is None else
                               f"no daemon named {name!r}: ") + "this file has "
                              + ", ".join(self.daemons), file=self.source, key_path="daemons")
        section = self.daemons[name]
        view = dataclasses.replace(self, daemon=section.daemon, instruments=section.instruments,
                                   limits=section.limits, interlocks=section.interlocks,
                                   dastard=section.dastard, daemons={})
        object.__setattr__(view, "source", self.source)
        return view

    def keys_for(self, endpoint: Literal["bus", "logger", "control", "alarms"]
                 ) -> ClientKeys | None:
        """This host's client keys for a CURVE endpoint (None when it needs none).

        Raises:
            ConfigError: the endpoint requires CURVE but there is no ``identity`` section.
        """
        server = {"bus": self.bus.curve,
                  "logger": self.logger.curve if self.logger is not None else None,
                  "control": self.daemon.control.curve,
                  "alarms": self.alarms.curve if self.alarms is not None else None}[endpoint]
        try:
            return client_keys(server, self.identity)
        except ConfigError as exc:
            raise ConfigError(f"{endpoint}: {exc}", file=self.source) from None


def load_config(path: str | Path | None = None) -> LabConfig:
    """Load and validate a lab config (the embedded default when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    config = from_mapping(LabConfig, read_yaml(path), file=str(path))
    object.__setattr__(config, "source", str(path))  # frozen: set once, here
    # Relative paths in the file (storage, daemon state, key files) are relative to the file;
    # what no section names goes under the lab's data directory.
    base_dir = str(path.resolve().parent)
    anchor(config, base_dir, str(data_root(config.lab.data_dir, config.lab.name, base_dir)))
    return config
