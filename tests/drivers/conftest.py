"""Shared fixtures for driver tests: a recording adapter, PyVISA, simulator servers.

* :class:`RecordingAdapter` — a PyMeasure adapter that records every write
  and read and answers from a queue of scripted replies; when the queue is
  empty a read times out like a real VISA resource. Used by the meta-test
  (no I/O in constructors) and for exchanges ``expected_protocol`` cannot
  express (reading until a timeout).
* ``visa_rm`` — one PyVISA ``@py`` resource manager per test session.
* ``start_server`` — starts simulator servers on port 0 and stops them after
  the test; returns the started server.
* ``connect`` — opens a driver on a started server through PyVISA
  (``TCPIP::127.0.0.1::PORT::SOCKET``) and closes it after the test.
"""

from __future__ import annotations

import contextlib
import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pyvisa
from pymeasure.adapters import Adapter


class RecordingAdapter(Adapter):
    """Records I/O; reads pop scripted replies, or time out like VISA when there are none.

    Attributes:
        io: every operation as ``(kind, payload)``, kind in write / write_bytes /
            read / read_bytes.
        replies: the scripted replies still to be read.
        connection: a stand-in with a ``timeout`` attribute (ms), like a VISA resource.
    """

    def __init__(self, replies: list[str | bytes] | None = None) -> None:
        super().__init__()
        self.io: list[tuple[str, Any]] = []
        self.replies: deque[str | bytes] = deque(replies or [])
        self.connection = types.SimpleNamespace(timeout=2000, close=lambda: None)
        self.timeouts_seen: list[int] = []

    def _timeout(self) -> pyvisa.errors.VisaIOError:
        self.timeouts_seen.append(self.connection.timeout)
        return pyvisa.errors.VisaIOError(pyvisa.constants.StatusCode.error_timeout)

    def _write(self, command: str, **kwargs: Any) -> None:
        self.io.append(("write", command))

    def _write_bytes(self, content: bytes, **kwargs: Any) -> None:
        self.io.append(("write_bytes", bytes(content)))

    def _read(self, **kwargs: Any) -> str:
        if not self.replies:
            raise self._timeout()
        reply = self.replies.popleft()
        text = reply.decode("latin-1") if isinstance(reply, bytes) else reply
        self.io.append(("read", text))
        return text

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs: Any) -> bytes:
        if not self.replies:
            raise self._timeout()
        reply = self.replies.popleft()
        data = reply if isinstance(reply, bytes) else reply.encode("latin-1")
        self.io.append(("read_bytes", data))
        return data

    def flush_read_buffer(self) -> None:
        """Discard the scripted replies (what a buffer flush does)."""
        self.io.append(("flush", None))
        self.replies.clear()


@pytest.fixture
def recording_adapter() -> RecordingAdapter:
    """A fresh :class:`RecordingAdapter` with no scripted replies."""
    return RecordingAdapter()


@pytest.fixture(scope="session")
def visa_rm() -> Iterator[pyvisa.ResourceManager]:
    """One pyvisa-py resource manager for the session."""
    rm = pyvisa.ResourceManager("@py")
    yield rm
    rm.close()


@pytest.fixture
def start_server() -> Iterator[Callable[[Any], Any]]:
    """Start simulator servers (built with port 0) and stop them after the test."""
    started: list[Any] = []

    def start(server: Any) -> Any:
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def connect(visa_rm: pyvisa.ResourceManager) -> Iterator[Callable[..., Any]]:
    """Open a driver on a started server over a real TCP socket through PyVISA."""
    opened: list[Any] = []

    def open_driver(driver: type, server: Any, **kwargs: Any) -> Any:
        resource = f"TCPIP::127.0.0.1::{server.port}::SOCKET"
        kwargs.setdefault("visa_library", "@py")
        kwargs.setdefault("timeout", 3000)
        instrument = driver(resource, **kwargs)
        opened.append(instrument)
        return instrument

    yield open_driver
    for instrument in opened:
        # a test may have broken the link on purpose
        with contextlib.suppress(Exception):
            instrument.adapter.close()
