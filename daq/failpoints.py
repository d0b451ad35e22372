"""Failpoints: faults injected on purpose into a running service, to prove its supervision.

A test starts a service with ``QUPDAQ_FAILPOINTS`` in its environment, a
comma-separated list of ``name`` or ``name@seconds`` (fire once that long
after the process started; immediately without ``@``)::

    QUPDAQ_FAILPOINTS="control@2,outbound@5" qupdaq daemon lab.yaml

Each supervised thread calls :func:`failpoint` with its name once per loop;
when armed and due it raises :class:`FailpointError` (once), which ends the
thread like any unexpected fault would. A name written ``kill:name`` instead
kills the whole process with SIGKILL at that point (no clean stop, no last
words), to prove what survives a crash at an exact step. Unset (always, in
production), a call costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "QUPDAQ_FAILPOINTS"
_started = time.monotonic()


class FailpointError(RuntimeError):
    """Raised by an armed failpoint (an injected fault)."""


KILL = "kill:"


def _parse(text: str) -> dict[str, float]:
    armed: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, after = item.partition("@")
        armed[name] = float(after) if after else 0.0
    return armed


_armed = _parse(os.environ.get(ENV, ""))


def failpoint(name: str) -> None:
    """Raise :class:`FailpointError` if ``name`` is armed and due (once); if it is armed as
    ``kill:name``, kill this process instead."""
    if not _armed:
        return
    for armed in (name, KILL + name):
        after = _armed.get(armed)
        if after is not None and time.monotonic() - _started >= after:
            del _armed[armed]
            if armed.startswith(KILL):
                os.kill(os.getpid(), signal.SIGKILL)
            raise FailpointError(f"failpoint {name!r} fired (injected fault)")


def arm(name: str, after_s: float = 0.0) -> None:
    """Arm ``name`` in this process (for in-process tests)."""
    _armed[name] = time.monotonic() - _started + after_s
