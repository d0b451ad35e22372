"""Hosts on one machine for the multi-host tests: network namespaces linked by veth pairs.

A :class:`Network` is a star: one *server* namespace and one namespace per
host (a fridge's acquisition PC), each host joined to the server by its own
veth pair, like one cable per PC into the server room::

    host i  (10.77.i.2/24, dev "uplink")  <--veth-->  server (10.77.i.1/24, dev "to-<host>")
    server: service address 10.77.0.1/32 on its loopback; each host routes it via 10.77.i.1

Every host reaches the server at the one service address (the address the
broker and the logger bind), whichever link it comes in on; a host reaches
no other host. :meth:`Network.cut` sets the server's end of one link down:
the host sees its carrier go (a pulled cable) and keeps its addresses and
routes, so :meth:`Network.restore` brings everything back as it was.

Processes run inside a namespace with ``ip netns exec NAME ...``
(:class:`NetnsService`, a :class:`tests.procs.Service` with that prefix).
Namespaces are created with unique names, so that two runs on one machine
never meet, and :meth:`Network.delete` removes them (and with them the
links) once their processes are gone.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass

from tests.procs import ROOT, Service

#: The server's address every host connects to.
SERVICE_ADDRESS = "10.77.0.1"


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None when they can): root and ``ip`` are needed."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (apt-get install -y iproute2)"
    return None


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip [-n NETNS] ARGS``; return its output.

    Raises:
        RuntimeError: the command failed (its error output is in the message).
    """
    cmd = ["ip", *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass(frozen=True)
class Link:
    """One host's cable to the server."""

    host: str
    netns: str
    index: int
    server_dev: str
    host_dev: str = "uplink"

    @property
    def server_address(self) -> str:
        return f"10.77.{self.index}.1"

    @property
    def host_address(self) -> str:
        return f"10.77.{self.index}.2"


class Network:
    """A server namespace and one linked namespace per host (see the module docstring).

    Args:
        hosts: host names (at most 254; each at most 12 characters, for the
            server's interface name ``to-<host>``).
    """

    def __init__(self, hosts: list[str]) -> None:
        if len(hosts) > 254:
            raise ValueError("at most 254 hosts (one 10.77.i.0/24 per link)")
        tag = f"qdq{uuid.uuid4().hex[:8]}"
        self.server = f"{tag}-server"
        self.links = {host: Link(host, f"{tag}-{host}", i, f"to-{host}"[:15])
                      for i, host in enumerate(hosts, start=1)}
        self.service_address = SERVICE_ADDRESS
        self._created: list[str] = []

    def create(self) -> Network:
        """Make the namespaces, the links, the addresses and the routes."""
        self._add_netns(self.server)
        ip("addr", "add", f"{self.service_address}/32", "dev", "lo", netns=self.server)
        for link in self.links.values():
            self._add_netns(link.netns)
            # Created directly inside the two namespaces: the names never touch the machine's
            # own namespace, where another run may use the same ones.
            ip("link", "add", "name", link.server_dev, "netns", self.server, "type", "veth",
               "peer", "name", link.host_dev, "netns", link.netns)
            ip("addr", "add", f"{link.server_address}/24", "dev", link.server_dev,
               netns=self.server)
            ip("link", "set", link.server_dev, "up", netns=self.server)
            ip("addr", "add", f"{link.host_address}/24", "dev", link.host_dev, netns=link.netns)
            ip("link", "set", link.host_dev, "up", netns=link.netns)
            # Routed through the link's server end: the host asks ARP only for that address
            # (on the interface itself), whatever the machine's arp_ignore says.
            ip("route", "add", f"{self.service_address}/32", "via", link.server_address,
               netns=link.netns)
        return self

    def _add_netns(self, name: str) -> None:
        ip("netns", "add", name)
        self._created.append(name)
        ip("link", "set", "lo", "up", netns=name)  # services bind loopback inside, too

    def cut(self, host: str) -> None:
        """Take the server's end of ``host``'s link down (the host loses its carrier)."""
        link = self.links[host]
        ip("link", "set", link.server_dev, "down", netns=self.server)

    def restore(self, host: str) -> None:
        """Bring the server's end of ``host``'s link up again."""
        link = self.links[host]
        ip("link", "set", link.server_dev, "up", netns=self.server)

    def exec_prefix(self, host: str | None) -> list[str]:
        """The command prefix that runs a program on ``host`` (None: the server)."""
        return ["ip", "netns", "exec", self.server if host is None else self.links[host].netns]

    def delete(self) -> list[str]:
        """Remove every namespace made (their links go with them); returns the errors."""
        errors = []
        for name in reversed(self._created):
            try:
                ip("netns", "del", name)
            except RuntimeError as exc:
                errors.append(str(exc))
        self._created.clear()
        return errors


class NetnsService(Service):
    """A :class:`tests.procs.Service` that runs inside a namespace (``ip netns exec``).

    ``ip netns exec`` replaces itself with the program, so ``proc`` is the
    program itself: :meth:`stop` signals it directly.

    Args:
        prefix: :meth:`Network.exec_prefix` of the host it runs on.
        args: the Python arguments (``-m daq.cli broker CONFIG``).
        name: for messages.
    """

    def __init__(self, prefix: list[str], *args: str, name: str) -> None:
        # Service.__init__ starts the interpreter itself; this is the same with the prefix.
        self.args = list(args)
        self.name = name
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
