"""The 33500 programming reference's exchanges (tests/manual/keysight33500.yaml), driver and simulator.

The driver side replays each exchange through ``expected_protocol`` with the
driver call that sends it and checks what the call returned; the simulator
side sends the manual's command over a raw socket, checks a query's answer
against the manual's format, and for a setting that the unit queued no
error (``SYST:ERR?`` answers ``+0,"No error"``).
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.keysight.awg33500 import (
    ErrorEntry,
    Function,
    Keysight33500,
    OutputPolarity,
    VoltageUnit,
)
from simulators.servers.awg33500 import AWG33500Server
from tests.manual_protocol import ManualExchange, load_manual

MANUAL = load_manual("keysight33500")

Call = Callable[[Keysight33500], Any]
Check = Callable[[Any], bool]
ANY: Check = lambda _: True  # noqa: E731 - a setting: the replay itself is the check

DRIVER: dict[str, tuple[Call, Check]] = {
    "identity": (lambda a: a.identify(), lambda i: i.split(",")[1] == "33522B"),
    "reset": (lambda a: a.reset(), ANY),
    "function_square": (lambda a: setattr(a.ch_1, "function", Function.SQUARE), ANY),
    "function_query": (lambda a: a.ch_1.function, lambda f: f is Function.SQUARE),
    "frequency_set": (lambda a: setattr(a.ch_1, "frequency", 1000.0), ANY),
    "frequency_query": (lambda a: a.ch_1.frequency, lambda f: f == 1000.0),
    "amplitude_set": (lambda a: setattr(a.ch_1, "amplitude", 2.5), ANY),
    "amplitude_query": (lambda a: a.ch_1.amplitude, lambda v: v == 2.5),
    "offset_set": (lambda a: setattr(a.ch_1, "offset", 1.25), ANY),
    "offset_query": (lambda a: a.ch_1.offset, lambda v: v == 1.25),
    "unit_set": (lambda a: setattr(a.ch_1, "voltage_unit", VoltageUnit.VPP), ANY),
    "unit_query": (lambda a: a.ch_1.voltage_unit, lambda u: u is VoltageUnit.VPP),
    "duty_cycle_set": (lambda a: setattr(a.ch_1, "duty_cycle", 20.0), ANY),
    "duty_cycle_query": (lambda a: a.ch_1.duty_cycle, lambda d: d == 20.0),
    "phase_set": (lambda a: setattr(a.ch_1, "phase", 90.0), ANY),
    "phase_query": (lambda a: a.ch_1.phase, lambda p: p == 90.0),
    "load_high_impedance": (lambda a: setattr(a.ch_1, "load", math.inf), ANY),
    "load_query_high_impedance": (lambda a: a.ch_1.load, lambda r: r == math.inf),
    "load_fifty_ohm": (lambda a: setattr(a.ch_2, "load", 50.0), ANY),
    "load_query_fifty_ohm": (lambda a: a.ch_2.load, lambda r: r == 50.0),
    "polarity_inverted": (lambda a: setattr(a.ch_1, "polarity", OutputPolarity.INVERTED), ANY),
    "polarity_query": (lambda a: a.ch_1.polarity, lambda p: p is OutputPolarity.INVERTED),
    "output_on": (lambda a: setattr(a.ch_1, "output_enabled", True), ANY),
    "output_query": (lambda a: a.ch_1.output_enabled, lambda on: on is True),
    "output_off_channel_2": (lambda a: a.ch_2.output_off(), ANY),
    "channel_2_frequency_query": (lambda a: a.ch_2.frequency, lambda f: f == 1000.0),
    "error_queue_empty": (lambda a: a.next_error(), lambda e: e == ErrorEntry(0, "No error")),
}


def test_every_manual_exchange_has_a_driver_call() -> None:
    assert set(DRIVER) == set(MANUAL.names())


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=lambda e: e.name)
def test_driver_sends_and_parses_the_manuals_exchange(exchange: ManualExchange) -> None:
    call, check = DRIVER[exchange.name]
    with expected_protocol(Keysight33500, [(exchange.send, exchange.reply)]) as awg:
        result = call(awg)
    assert check(result), result


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3.0)
        self.buffer = b""

    def ask(self, text: str) -> str:
        self.sock.sendall((text + MANUAL.terminator).encode("ascii"))
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("ascii")

    def send(self, text: str) -> None:
        self.sock.sendall((text + MANUAL.terminator).encode("ascii"))


@pytest.fixture(scope="module")
def client() -> Iterator[_Client]:
    server = AWG33500Server().start()
    c = _Client(server.port)
    # The manual's example values are set before they are read: play every setting first.
    for exchange in MANUAL.exchanges:
        if not exchange.is_query and exchange.name != "reset":
            c.send(exchange.send)
    yield c
    c.sock.close()
    server.stop()


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=lambda e: e.name)
def test_simulator_answers_the_manuals_exchange_in_its_format(client: _Client,
                                                             exchange: ManualExchange) -> None:
    if exchange.is_query:
        answer = client.ask(exchange.send)
        assert exchange.matches(answer), (exchange.name, answer, exchange.pattern)
    elif exchange.name != "reset":
        client.send(exchange.send)
    assert client.ask("SYST:ERR?") == '+0,"No error"', exchange.send
