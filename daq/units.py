"""``qupdaq units [--user] CONFIG``: systemd units for a lab's services.

One unit per service the config asks for: ``qupdaq-broker``,
``qupdaq-logger``, ``qupdaq-alarms`` and one ``qupdaq-daemon@<name>`` per
daemon (the facility's ``daemons`` or the one top-level daemon), each
running ``qupdaq <service> CONFIG`` with:

* ``Restart=on-failure``: a service that exits non-zero (its supervisor
  found a dead part it could not restart) is started again;
* start order: the logger and the alarm service after the broker, daemons
  after the broker and the logger (``After=``/``Wants=``: a missing one is
  not fatal, the reliable path spools until the logger is there);
* the daemon with ``Type=notify`` and a watchdog: it says ``READY=1`` when
  it serves and ``WATCHDOG=1`` while its supervisor is content
  (:mod:`daq.sdnotify`), so a wedged daemon is restarted too.

A lab installs them with ``--user`` into ``~/.config/systemd/user`` (or as
root into ``/etc/systemd/system``), then ``systemctl [--user] daemon-reload``
and ``systemctl [--user] enable --now qupdaq-broker qupdaq-logger ...``.
Each generated file passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from daq.config import LabConfig, load_config

WATCHDOG_S = 30


@dataclass(frozen=True)
class Unit:
    """One unit file: its name and text."""

    name: str
    text: str


def _exec(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def qupdaq_command() -> str:
    """The absolute path of the ``qupdaq`` command of this installation."""
    found = shutil.which("qupdaq")
    if found:
        return str(Path(found).resolve())
    candidate = Path(sys.executable).with_name("qupdaq")
    return str(candidate)


def units(config: LabConfig, config_path: Path, *, user: bool,
          command: str | None = None) -> list[Unit]:
    """The units of every service ``config`` describes."""
    exe = command or qupdaq_command()
    cfg = str(config_path.resolve())
    target = "default.target" if user else "multi-user.target"
    network = "" if user else "After=network-online.target\nWants=network-online.target\n"
    out: list[Unit] = []

    def unit(name: str, description: str, args: list[str], *, after: list[str],
             notify: bool = False) -> Unit:
        order = " ".join(after)
        service_type = (f"Type=notify\nNotifyAccess=main\nWatchdogSec={WATCHDOG_S}\n"
                        if notify else "Type=simple\n")
        text = (f"[Unit]\nDescription=qupdaq {description} ({config.lab.name})\n"
                f"Documentation=file://{cfg}\n{network}"
                + (f"After={order}\nWants={order}\n" if order else "")
                + f"\n[Service]\n{service_type}ExecStart={_exec([exe, *args])}\n"
                  "Restart=on-failure\nRestartSec=5\nKillSignal=SIGTERM\nTimeoutStopSec=60\n"
                  "Environment=PYTHONUNBUFFERED=1\n"
                  f"\n[Install]\nWantedBy={target}\n")
        return Unit(name, text)

    out.append(unit("qupdaq-broker.service", "live-path broker", ["broker", cfg], after=[]))
    if config.logger is not None:
        out.append(unit("qupdaq-logger.service", "logging service", ["logger", cfg],
                        after=["qupdaq-broker.service"]))
    if getattr(config, "alarms", None) is not None:
        out.append(unit("qupdaq-alarms.service", "alarm service", ["alarms", cfg],
                        after=["qupdaq-broker.service", "qupdaq-logger.service"]))
    before = ["qupdaq-broker.service"] + (["qupdaq-logger.service"]
                                          if config.logger is not None else [])
    if config.daemons:
        for name in config.daemons:
            out.append(unit(f"qupdaq-daemon-{name}.service", f"acquisition daemon {name}",
                            ["daemon", cfg, "--daemon", name], after=before, notify=True))
    elif config.instruments or config.dastard is not None:
        out.append(unit("qupdaq-daemon.service", "acquisition daemon", ["daemon", cfg],
                        after=before, notify=True))
    return out


def write_units(config_path: Path, directory: Path, *, user: bool,
                command: str | None = None) -> list[Path]:
    """Write the units of ``config_path`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for item in units(load_config(config_path), config_path, user=user, command=command):
        path = directory / item.name
        path.write_text(item.text, encoding="utf-8")
        written.append(path)
    return written


def default_directory(user: bool) -> Path:
    """Where systemd looks for the units: the user's or the system's unit directory."""
    return Path.home() / ".config" / "systemd" / "user" if user else Path("/etc/systemd/system")
