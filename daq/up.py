"""``qupdaq up``: the whole system on one machine, as child processes, in one command.

Starts, in order, and each only when the config asks for it:

1. the broker (``qupdaq broker``),
2. the simulated lab (``qupdaq sim``) when the config has a ``simulation`` section,
3. the logger (``qupdaq logger``) when it has a ``logger`` section,
4. the daemon (``qupdaq daemon``) when it has ``instruments``, or one daemon per
   entry of a facility's ``daemons``,
4a. the alarm service (``qupdaq alarms``) when it has an ``alarms`` section: after
   the daemons, so that a stop (newest first) ends it before any daemon and
   stopping the system raises no "daemon lost" alarm,
5. the dashboard unless ``--headless`` (or there is no display to open it on).

Each child prints one ``<name> ready ...`` line when it is up; ``up`` waits
for that line (no sleeps), then prints where everything is and forwards the
children's output prefixed with their names. Ctrl-C (or SIGTERM) stops them
one by one in reverse order (the daemon hands its last data to the logger
before the logger stops); a child that dies on its own stops the rest and ``up``
exits 1, saying which one and how.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from daq.config import load_config

READY_TIMEOUT_S = 60.0


@dataclass
class Child:
    """One started service."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    ready_line: str = ""
    lines: list[str] = field(default_factory=list)


_OUT = threading.Lock()


def say(text: str) -> None:
    """One whole line to stdout: lines of several children and of ``up`` never interleave
    (``print`` writes the text and its newline separately)."""
    with _OUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _forward(child: Child, ready: threading.Event) -> None:
    assert child.proc is not None and child.proc.stdout is not None
    for line in child.proc.stdout:
        line = line.rstrip("\n")
        if not ready.is_set() and line.startswith(f"{child.name} ready"):
            child.ready_line = line
            ready.set()
        say(f"[{child.name}] {line}")
    ready.set()  # ended before being ready: the waiter sees proc.poll() set


def _start(child: Child) -> None:
    # A session of its own: Ctrl-C in the terminal reaches `up` alone, which then stops the
    # children in order instead of all of them at once.
    child.proc = subprocess.Popen(child.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1, start_new_session=True)
    ready = threading.Event()
    threading.Thread(target=_forward, args=(child, ready), daemon=True).start()
    if not ready.wait(READY_TIMEOUT_S) or not child.ready_line:
        code = child.proc.poll()
        raise RuntimeError(f"{child.name} did not come up"
                           + (f" (exited with {code})" if code is not None else
                              f" within {READY_TIMEOUT_S:g} s"))


def _stop(children: list[Child]) -> None:
    """Stop the children one at a time, newest first.

    One at a time, so that each can finish cleanly against the ones it talks
    to: the daemon flushes its spool to a logger that is still up, the logger
    commits before the broker goes.
    """
    for child in reversed(children):
        if child.proc is None or child.proc.poll() is not None:
            continue
        child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            say(f"[up] {child.name} did not stop in 15 s; killing it")
            child.proc.kill()
            child.proc.wait()


def has_display() -> bool:
    """Whether a window can open here (a Linux machine without X or Wayland cannot)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def plan(config_path: Path, headless: bool) -> list[Child]:
    """The children ``up`` would start for this config, in start order."""
    config = load_config(config_path)
    cli = [sys.executable, "-m", "daq.cli"]
    children = [Child("broker", [*cli, "broker", str(config_path)])]
    if config.simulation is not None:
        children.append(Child("sim", [*cli, "sim", str(config_path)]))
    if config.logger is not None:
        children.append(Child("logger", [*cli, "logger", str(config_path)]))
    if config.daemons:  # a facility: one daemon per section (one per fridge's PC in a lab)
        children.extend(Child("daemon", [*cli, "daemon", str(config_path), "--daemon", name])
                        for name in config.daemons)
    elif config.instruments or config.dastard is not None:
        children.append(Child("daemon", [*cli, "daemon", str(config_path)]))
    if config.alarms is not None:  # after the daemons, so that it stops before them
        children.append(Child("alarms", [*cli, "alarms", str(config_path)]))
    if not headless:
        if not has_display():
            say("[up] no display (DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM are unset): "
                "running headless")
        else:
            children.append(Child("dashboard", [*cli, "dashboard", str(config_path)]))
    return children


def up(config_path: Path, headless: bool) -> int:
    """Start everything, wait for Ctrl-C or a child's death, stop everything."""
    children = plan(config_path, headless)
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    started: list[Child] = []
    try:
        for child in children:
            if stop.is_set():
                break
            started.append(child)
            _start(child)
        say("qupdaq up: everything is running (Ctrl-C stops it all)")
        for child in started:
            say(f"  {child.name:<10} {child.ready_line}")
        while not stop.wait(0.5):
            for child in started:
                assert child.proc is not None
                code = child.proc.poll()
                if code is not None:
                    say(f"[up] {child.name} exited with status {code}; stopping the rest")
                    _stop(started)
                    return 1
    except RuntimeError as exc:
        print(f"[up] {exc}; stopping what started", file=sys.stderr, flush=True)
        _stop(started)
        return 1
    _stop(started)
    say("qupdaq up: stopped")
    return 0
