"""One supervisor per process: it owns the threads, checks them, restarts or ends the process.

A service registers each of its long-running threads with
:meth:`Supervisor.watch`: how to tell it is alive, and how to restart it
(``None`` when it cannot be restarted in place: a thread that owns the
process's sockets). :meth:`Supervisor.check`, called periodically from the
main thread, restarts a dead restartable part (at most ``max_restarts``
within ``window_s``) and raises :class:`ServiceFailed` for a part that
cannot be restarted, or that keeps dying: the process then stops what it
can and exits non-zero with the reason in its last line, so the service
manager restarts the whole process.

:class:`RunMarker` remembers across restarts whether the last stop was
clean: a service reports it in its status messages (``last_stop``).
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.errors import QupdaqError

#: Exit code of a service that ended because a part failed.
EXIT_FAILED = 3


class ServiceFailed(QupdaqError):
    """A part of the service died and cannot be restarted in place."""


class PartState(enum.StrEnum):
    """How a supervised part fares."""

    RUNNING = "running"
    RESTARTED = "restarted"
    FAILED = "failed"


@dataclass
class _Part:
    name: str
    alive: Callable[[], bool]
    restart: Callable[[], None] | None
    error: Callable[[], str]
    state: PartState = PartState.RUNNING
    restarts: int = 0
    recent: deque[float] = field(default_factory=deque)
    last_error: str = ""


@dataclass(frozen=True)
class PartStatus:
    """A supervised part as the service's status reports it."""

    name: str
    state: PartState
    restarts: int
    last_error: str


class Supervisor:
    """Owns a process's threads (see the module docstring).

    Args:
        service: the service's name, for messages.
        max_restarts: restarts of one part allowed within ``window_s``.
        window_s: the window of that budget.
        on_restart: called with (part name, reason) after each restart.
    """

    def __init__(self, service: str, *, max_restarts: int = 5, window_s: float = 300.0,
                 on_restart: Callable[[str, str], None] | None = None) -> None:
        self.service = service
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.on_restart = on_restart or (lambda name, reason: None)
        self._parts: dict[str, _Part] = {}

    def watch(self, name: str, alive: Callable[[], bool],
              restart: Callable[[], None] | None = None,
              error: Callable[[], str] = lambda: "") -> None:
        """Supervise a part: ``alive`` tells, ``restart`` revives (None: cannot be).

        ``error`` says why it died, when the part knows (its last exception).
        """
        self._parts[name] = _Part(name, alive, restart, error)

    def forget(self, name: str) -> None:
        """Stop supervising ``name`` (it was removed on purpose)."""
        self._parts.pop(name, None)

    def check(self, now: float | None = None) -> list[str]:
        """Restart dead parts; return their names.

        Raises:
            ServiceFailed: a dead part cannot be restarted, or died more than
                ``max_restarts`` times within ``window_s``; the message says which and why.
        """
        now = time.monotonic() if now is None else now
        restarted = []
        for part in self._parts.values():
            if part.alive():
                continue
            reason = part.error() or "its thread ended"
            part.last_error = reason
            while part.recent and now - part.recent[0] > self.window_s:
                part.recent.popleft()
            if part.restart is None:
                part.state = PartState.FAILED
                raise ServiceFailed(f"{self.service}: {part.name} died ({reason}) and cannot "
                                    "be restarted in place")
            if len(part.recent) >= self.max_restarts:
                part.state = PartState.FAILED
                raise ServiceFailed(f"{self.service}: {part.name} died {len(part.recent) + 1} "
                                    f"times within {self.window_s:g} s (last: {reason})")
            part.recent.append(now)
            part.restarts += 1
            part.state = PartState.RESTARTED
            part.restart()
            restarted.append(part.name)
            self.on_restart(part.name, reason)
        return restarted

    def snapshot(self) -> list[PartStatus]:
        """Every part's state (for the service's status message)."""
        return [PartStatus(p.name, p.state, p.restarts, p.last_error)
                for p in self._parts.values()]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """:meth:`snapshot` as JSON-able data."""
        return {s.name: {"state": s.state.value, "restarts": s.restarts,
                         "last_error": s.last_error} for s in self.snapshot()}


class RunMarker:
    """A small file that says whether the service's last run ended cleanly.

    :meth:`begin` reads what the previous run left (``"clean"``, ``"first
    start"``, or ``"not clean: ..."`` when it crashed or was killed) and marks
    this run as running; :meth:`end` marks a clean stop.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_stop = "first start"

    def begin(self) -> str:
        """Mark this run as running; return how the last one ended."""
        try:
            previous = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            previous = None
        except (OSError, ValueError) as exc:
            previous = {"state": "unreadable", "error": str(exc)}
        if previous is None:
            self.last_stop = "first start"
        elif previous.get("state") == "clean":
            self.last_stop = "clean"
        else:
            self.last_stop = (f"not clean: the run of pid {previous.get('pid', '?')} started "
                              f"{previous.get('started', '?')} did not stop cleanly"
                              + (f" ({previous['reason']})" if previous.get("reason") else ""))
        self._write({"state": "running", "pid": os.getpid(),
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return self.last_stop

    def end(self, clean: bool = True, reason: str = "") -> None:
        """Mark the run's end: ``clean``, or failed with ``reason``."""
        self._write({"state": "clean" if clean else "failed", "pid": os.getpid(),
                     "reason": reason, "stopped": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)
