"""The TPG 366 manual's exchanges (tests/manual/tpg366.yaml) against the driver and the simulator.

The driver side replays each exchange through ``expected_protocol`` (mnemonic
-> ACK, ENQ -> the manual's data line) with the driver call that sends it;
the simulator side sends the manual's mnemonic over a raw socket and checks
that the data line has the manual's format. A mistake shared by the driver
and the simulator cannot pass both.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.pfeiffer.tpg366 import ACK, ENQ, TPG366, GaugeReading, GaugeStatus, PressureUnit
from drivers.pfeiffer.tpg366 import SensorState as S
from simulators.physics.fridge import DilutionFridge
from simulators.physics.gauges import FridgePressures
from simulators.servers.tpg366 import TPG366Server
from tests.manual_protocol import ManualExchange, load_manual

MANUAL = load_manual("tpg366")

#: Exchange name -> (driver call, check of its result). Queries read a property; the two
#: settings write one (their data line is what a following ENQ would return).
DRIVER: dict[str, tuple[Callable[[TPG366], Any], Callable[[Any], bool]]] = {
    "gauge_1_reading": (lambda t: t.gauge_1.reading,
                        lambda r: r == GaugeReading(GaugeStatus.OK, 8.34e-3)),
    "gauge_without_sensor": (lambda t: t.gauge_2.reading,
                             lambda r: r == GaugeReading(GaugeStatus.NO_SENSOR, 0.02)),
    "all_gauges": (lambda t: t.readings,
                   lambda r: [g.status for g in r] == [0, 1, 2, 3, 4, 6]
                   and r[2].pressure == 1e3),
    "unit_query": (lambda t: t.unit, lambda u: u is PressureUnit.MBAR),
    "unit_set_torr": (lambda t: setattr(t, "unit", PressureUnit.TORR), lambda _: True),
    "sensor_states": (lambda t: t.sensor_states,
                      lambda s: s == [S.ON, S.ON, S.OFF, S.CANNOT_SWITCH, S.ON, S.ON]),
    "sensor_3_off": (lambda t: setattr(t.gauge_3, "sensor_on", False), lambda _: True),
    "gauge_types": (lambda t: t.gauge_types,
                    lambda g: g == ["PKR", "PKR", "CMR", "CMR", "noSen", "noid"]),
    "identity": (lambda t: t.identity, lambda i: i[0] == "TPG366" and len(i) == 5),
}
SETTINGS = {"unit_set_torr", "sensor_3_off"}


def test_every_manual_exchange_has_a_driver_call() -> None:
    assert set(DRIVER) == set(MANUAL.names())


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=lambda e: e.name)
def test_driver_sends_and_parses_the_manuals_exchange(exchange: ManualExchange) -> None:
    call, check = DRIVER[exchange.name]
    comm: list[tuple[Any, Any]] = [(exchange.send, ACK)]
    if exchange.name not in SETTINGS:
        comm.append((ENQ, exchange.reply))
    with expected_protocol(TPG366, comm) as tpg:
        result = call(tpg)
    assert check(result), result


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3.0)
        self.buffer = b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


@pytest.fixture
def simulator() -> Iterator[TPG366Server]:
    server = TPG366Server(FridgePressures(DilutionFridge(), seed=3)).start()
    yield server
    server.stop()


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=lambda e: e.name)
def test_simulator_answers_the_manuals_exchange_in_its_format(
    simulator: TPG366Server, exchange: ManualExchange
) -> None:
    if exchange.name == "gauge_without_sensor":
        simulator.set_gauge_fault(2, 5)
    client = _Client(simulator.port)
    try:
        client.sock.sendall((exchange.send + MANUAL.terminator).encode("ascii"))
        assert client.line() == ACK.encode() + b"\r\n"
        client.sock.sendall(ENQ)
        answer = client.line()
    finally:
        client.sock.close()
    assert answer.endswith(b"\r\n")
    text = answer[:-2].decode("ascii")
    assert exchange.matches(text), (exchange.name, text, exchange.pattern)
    if exchange.name == "gauge_without_sensor":
        assert text.startswith("5,")
