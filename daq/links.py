"""Keepalive for sockets whose peer may sit on another host.

TCP alone does not notice a cut link for many minutes: a peer behind a pulled
cable or a cut network namespace looks connected while its messages pile up
in the queues. ZMTP heartbeats close such a connection within seconds, and
ZeroMQ reconnects once the link is back, so a fridge PC that comes back after a
cut resumes on its own (the reliable path then resends what was not acknowledged).
"""

from __future__ import annotations

import zmq

#: A PING every second; a connection silent for 3 s is closed and redialled.
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
#: What the peer is told to wait for our PINGs before it drops us.
HEARTBEAT_TTL_MS = 6000


def keep_alive(sock: zmq.Socket) -> None:
    """Arm ``sock`` with ZMTP heartbeats (set before ``bind``/``connect``)."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TTL_MS)
