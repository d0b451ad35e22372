"""The daemon's config checked against the drivers before anything starts.

A misspelt spec, target or limit must be a :class:`~daq.errors.ConfigError`
naming the file, the key path and the valid names at start, not a worker
that reconnects forever. Drivers do no I/O in their constructors and build
their control and action specs without I/O, so each driver is built here on
an adapter that refuses all I/O (:class:`OfflineAdapter`) and asked for its
spec names. Poll specs that need the instrument to be listed (the Lake
Shore 372's enabled scanner channels) are checked at connect instead.

Checked: every ``poll``/``controls``/``actions``/``setup`` spec name exists in
its driver; every limit names a control target; every interlock acts on a
control target and watches a configured scalar channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymeasure.adapters import Adapter
from pymeasure.instruments import Instrument

from daq.config import LabConfig
from daq.daemon.worker import load_driver
from daq.errors import ConfigError, ControlError


class OfflineIO(Exception):
    """A driver tried to talk to its instrument while being checked offline."""


class OfflineAdapter(Adapter):
    """A PyMeasure adapter that refuses every read and write."""

    def _write(self, command: str, **kwargs: Any) -> None:
        raise OfflineIO(command)

    def _write_bytes(self, content: bytes, **kwargs: Any) -> None:
        raise OfflineIO(content)

    def _read(self, **kwargs: Any) -> str:
        raise OfflineIO("read")

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs: Any) -> bytes:
        raise OfflineIO("read")


@dataclass(frozen=True)
class DriverNames:
    """The spec names one configured driver offers (``poll`` None: known only online)."""

    poll: frozenset[str] | None
    controls: frozenset[str]
    actions: frozenset[str]


def driver_names(driver: type, resource: str, options: dict[str, Any]) -> DriverNames:
    """Build ``driver`` offline and list its spec names.

    Raises:
        ControlError: the driver cannot be built offline or did I/O for a
            control or action spec (a driver bug).
    """
    kwargs = {k: v for k, v in options.items() if k not in ("timeout", "state_file")}
    try:
        if issubclass(driver, Instrument):
            instrument = driver(OfflineAdapter(), **kwargs)
        else:
            instrument = driver(resource, **kwargs)
        controls = frozenset(s.name for s in instrument.control_specs())
        actions = frozenset(s.name for s in instrument.action_specs())
    except OfflineIO as exc:
        raise ControlError(f"{driver.__name__} needs its instrument to list its controls "
                           f"(sent {exc})") from None
    except Exception as exc:
        raise ControlError(f"{driver.__name__} cannot be built from the config's options: "
                           f"{type(exc).__name__}: {exc}") from None
    try:
        # None: only the instrument (enabled channels) or its files (a log directory not
        # there yet) can tell; those names are checked at connect.
        poll: frozenset[str] | None = frozenset(s.name for s in instrument.poll_specs()) or None
    except Exception:
        poll = None
    return DriverNames(poll, controls, actions)


def _unknown(file: str, key_path: str, what: str, name: str, valid: frozenset[str]) -> ConfigError:
    return ConfigError(f"{what} {name!r} does not exist; valid: {', '.join(sorted(valid))}",
                       file=file, key_path=key_path)


def check_config(config: LabConfig) -> None:
    """Check every name in the daemon's sections against the drivers.

    Raises:
        ConfigError: the first mistake, with file, key path and the valid names.
    """
    file = config.source
    control_targets: set[str] = set()
    channels: set[str] = set()
    all_channels_known = True
    for name, inst in config.instruments.items():
        where = f"instruments.{name}"
        try:
            names = driver_names(load_driver(inst.driver), inst.resource, inst.options)
        except ControlError as exc:
            raise ConfigError(str(exc), file=file, key_path=f"{where}.driver") from None
        for index, poll in enumerate(inst.poll or ()):
            if names.poll is not None and poll.spec not in names.poll:
                raise _unknown(file, f"{where}.poll[{index}].spec", "poll spec", poll.spec,
                               names.poll)
            channels.add(f"{inst.source}/{poll.channel or poll.spec}")
        if inst.poll is None:
            if names.poll is None:
                all_channels_known = False
            else:
                channels.update(f"{inst.source}/{spec}" for spec in names.poll)
        for key, items, valid in (("controls", inst.controls, names.controls),
                                  ("actions", inst.actions, names.actions)):
            for index, item in enumerate(items or ()):
                if item.spec not in valid:
                    raise _unknown(file, f"{where}.{key}[{index}].spec", key[:-1], item.spec,
                                   valid)
        for spec in inst.setup:
            if spec not in names.controls:
                raise _unknown(file, f"{where}.setup.{spec}", "control", spec, names.controls)
        chosen = ([(c.spec, c.target or c.spec) for c in inst.controls]
                  if inst.controls is not None else [(n, n) for n in names.controls])
        control_targets.update(f"{inst.source}/{target}" for _, target in chosen)
    for target in config.limits:
        if target not in control_targets:
            raise _unknown(file, f"limits.{target}", "control target", target,
                           frozenset(control_targets))
    for index, interlock in enumerate(config.interlocks):
        if interlock.target not in control_targets:
            raise _unknown(file, f"interlocks[{index}].target", "control target",
                           interlock.target, frozenset(control_targets))
        if all_channels_known and interlock.stream not in channels:
            raise _unknown(file, f"interlocks[{index}].stream", "polled channel",
                           interlock.stream, frozenset(channels))
