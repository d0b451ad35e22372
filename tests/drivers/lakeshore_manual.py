"""What the Lake Shore manual-transcription tests share: command equivalence, the three checks.

A manual's example command and the driver's may differ in spelling only:
the driver writes ``0.25`` where the manual wrote ``250.000E-03``, quotes a
name the manual left bare, or leaves out the optional curvature the manual
filled with ``N``. :func:`same_command` says whether two commands are the
same instruction (mnemonic, then every argument as a number or as unquoted
text), so the driver test is strict about *what* is sent without copying
the manual's number formatting.

:func:`check_driver_query`, :func:`check_driver_command` and
:func:`check_simulator` are the three checks every exchange goes through.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

from pymeasure.test import expected_protocol

from tests.drivers.conftest import RecordingAdapter
from tests.manual_protocol import ManualExchange

_SPLIT = re.compile(r'"[^"]*"|[^,\s]+')


def _arguments(command: str) -> tuple[str, list[str]]:
    mnemonic, _, rest = command.strip().partition(" ")
    return mnemonic.upper(), [a.strip('"') for a in _SPLIT.findall(rest)]


def _same_argument(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def same_command(sent: str, manual: str, *, optional_tail: int = 0) -> bool:
    """Whether the driver's ``sent`` is the manual's command, allowing spelling differences.

    Args:
        sent: what the driver wrote.
        manual: the manual's command.
        optional_tail: trailing optional fields the manual's example fills
            and the driver may leave out.

    Returns:
        True when mnemonic and every argument agree (numbers by value).
    """
    m1, a1 = _arguments(sent)
    m2, a2 = _arguments(manual)
    if m1 != m2 or not len(a2) - optional_tail <= len(a1) <= len(a2):
        return False
    return all(_same_argument(x, y) for x, y in zip(a1, a2, strict=False))


def check_driver_query(driver: type, exchange: ManualExchange, call: Callable[[Any], Any],
                       check: Callable[[Any], bool], **options: Any) -> None:
    """Replay a query byte for byte and check what the driver made of the manual's reply."""
    with expected_protocol(driver, [(exchange.send, exchange.reply)], **options) as inst:
        result = call(inst)
    assert check(result), f"{exchange.name}: {result!r}"


def check_driver_command(driver: type, exchange: ManualExchange, call: Callable[[Any], Any],
                         *, optional_tail: int = 0) -> None:
    """Record what the driver writes for a command and compare it with the manual's."""
    adapter = RecordingAdapter()
    call(driver(adapter))
    written = [payload for kind, payload in adapter.io if kind == "write"]
    assert len(written) == 1, written
    assert same_command(written[0], exchange.send, optional_tail=optional_tail), (
        f"{exchange.name}: driver wrote {written[0]!r}, the manual {exchange.send!r}")


class RawLine:
    """A plain socket to a simulator: send a line, read a line."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii") + b"\r\n")

    def line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("ascii").rstrip("\r")

    def close(self) -> None:
        self.sock.close()


def check_simulator(client: RawLine, server: Any, exchange: ManualExchange) -> None:
    """Send the manual's text as written; a query's answer must have the manual's format,
    a command must be accepted (not counted as malformed, and answered by nothing)."""
    errors = server.error_count
    client.send(exchange.send)
    if exchange.is_query:
        answer = client.line()
        assert exchange.matches(answer), f"{exchange.name}: {answer!r} !~ {exchange.pattern!r}"
    client.send("*OPC?")  # anything the command answered would arrive before this
    assert client.line() == "1", f"{exchange.name}: a command must not answer"
    assert server.error_count == errors, f"{exchange.name}: the simulator refused it"
