"""The service manager's notify protocol (systemd ``sd_notify``), with no library needed.

Under systemd with ``Type=notify``, ``$NOTIFY_SOCKET`` names a datagram
socket: a service says ``READY=1`` once it serves, ``WATCHDOG=1`` at least
every ``WatchdogSec`` while it is healthy (a wedged service stops saying it
and is restarted), ``STATUS=...`` for ``systemctl status``, ``STOPPING=1``
when it stops. Without the variable every call does nothing, so the same
code runs under ``qupdaq up``, in a terminal and under systemd.
"""

from __future__ import annotations

import os
import socket


def notify(*states: str) -> bool:
    """Send ``states`` (``"READY=1"``, ``"WATCHDOG=1"``, ...); False without a manager."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall("\n".join(states).encode("utf-8"))
        except OSError:
            return False
    return True


def watchdog_period_s() -> float | None:
    """Half the manager's watchdog interval (how often to say ``WATCHDOG=1``), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2
