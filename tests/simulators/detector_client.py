"""A raw TCP client and polling helper for the detector-side simulator tests.

Tests talk to the servers byte for byte, so they need a client that shows
exactly what came back (or that nothing did), and a way to wait for the
server to have processed a command without sleeping.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class RawClient:
    """Blocking TCP client with explicit reads.

    Args:
        port: server port on 127.0.0.1.
        timeout: default read timeout, s.
    """

    def __init__(self, port: int, timeout: float = 3.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self._buffer = b""

    def send(self, data: bytes | str) -> None:
        """Send bytes (str is ASCII-encoded) as they are."""
        self.sock.sendall(data.encode("ascii") if isinstance(data, str) else data)

    def _fill(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not chunk:
            raise ConnectionError("server closed the connection")
        self._buffer += chunk
        return True

    def read_until(self, terminator: bytes, timeout: float | None = None) -> bytes:
        """Everything up to and including ``terminator``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while terminator not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                raise TimeoutError(f"no {terminator!r} within the timeout; have {self._buffer!r}")
        end = self._buffer.index(terminator) + len(terminator)
        data, self._buffer = self._buffer[:end], self._buffer[end:]
        return data

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self._buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                raise TimeoutError(f"only {len(self._buffer)} of {n} bytes")
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def query(self, text: str, terminator: bytes = b"\n") -> bytes:
        """Send ``text`` and return the reply including its terminator."""
        self.send(text)
        return self.read_until(terminator)

    def nothing_within(self, seconds: float) -> bool:
        """True when no byte arrives within ``seconds`` (checks silence)."""
        if self._buffer:
            return False
        return not self._fill(seconds)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.001)
