"""Helpers for the simulator tests: a raw-socket client (no VISA) and fridge fixtures."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge


class RawClient:
    """A plain TCP client speaking line protocols, for protocol tests.

    Args:
        port: the server's port on 127.0.0.1.
        timeout: seconds to wait for a reply before ``TimeoutError``.
    """

    def __init__(self, port: int, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # set commands get no reply: without this, Nagle + delayed ACK stall every set+query
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self._buffer = b""

    def send(self, data: bytes | str) -> None:
        """Send bytes as they are, or text with CR LF appended."""
        if isinstance(data, str):
            data = data.encode("ascii") + b"\r\n"
        self.sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> bytes:
        """The next line including its CR LF; ``b""`` when the server closed the connection."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def query(self, command: str) -> bytes:
        """Send a command and return the raw reply line (with CR LF)."""
        self.send(command)
        return self.read_line()

    def ask(self, command: str) -> str:
        """Send a command and return the reply without its CR LF."""
        return self.query(command).decode("ascii").rstrip("\r\n")

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., RawClient]]:
    """Factory of raw clients to ``127.0.0.1:port``, closed after the test."""
    clients: list[RawClient] = []

    def make(port: int, timeout: float = 2.0) -> RawClient:
        client = RawClient(port, timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def frozen_clock() -> SimClock:
    """A clock that moves only with ``advance``: deterministic simulated time."""
    return SimClock(time_scale=0.0)


@pytest.fixture
def base_fridge(frozen_clock: SimClock) -> DilutionFridge:
    """A fridge at base temperature on the frozen clock."""
    return DilutionFridge(clock=frozen_clock)
