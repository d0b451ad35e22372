"""The SIM900/SIM928/SIM921 manuals' exchanges (tests/manual/sim9*.yaml), driver and simulator.

Mainframe exchanges are replayed as they are; module exchanges travel the
way they do on the wire, inside ``SNDT p,"..."`` with the reply fetched by
``GETN? p,128``. The driver side replays them through ``expected_protocol``
with the driver call that sends them; the simulator side sends them over a
raw socket and checks the reply's format, and that a module accepted each
setting (no command or execution error recorded).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.srs.sim900 import SIM900
from drivers.srs.sim921 import SIM921
from drivers.srs.sim928 import SIM928, BatteryState, BatteryStatus
from simulators.servers import sim900 as sim
from tests.manual_protocol import Manual, ManualExchange, load_manual

MAINFRAME, SOURCE, BRIDGE = (load_manual(n) for n in ("sim900", "sim928", "sim921"))
PORTS = {"SRS SIM928": 1, "SRS SIM921": 2}

Call = Callable[[SIM900], Any]
Check = Callable[[Any], bool]
ANY: Check = lambda _: True  # noqa: E731 - a setting: the replay itself is the check

DRIVER: dict[str, dict[str, tuple[Call, Check]]] = {
    "sim900": {
        "identify": (lambda f: f.identity, lambda i: ",SIM900," in i),
        "send_text_to_port": (lambda f: f.send(1, "VOLT?"), ANY),
        "get_bytes": (lambda f: f.read_port(1, 128), lambda b: b == b"+1.000\r\n"),
        "get_bytes_none_waiting": (lambda f: f.read_port(3, 64), lambda b: b == b""),
        "flush_port": (lambda f: f.flush(1), ANY),
        "flush_all_ports": (lambda f: f.flush(), ANY),
    },
    "sim928": {
        "set_voltage": (lambda f: setattr(f.port1, "voltage", 1.25), ANY),
        "query_voltage": (lambda f: f.port1.voltage, lambda v: v == 1.25),
        "output_on": (lambda f: setattr(f.port1, "output_enabled", True), ANY),
        "output_off": (lambda f: setattr(f.port1, "output_enabled", False), ANY),
        "output_state": (lambda f: f.port1.output_enabled, lambda on: on is True),
        "battery_state": (lambda f: f.port1.battery_state, lambda b: b == BatteryState(
            BatteryStatus.IN_USE, BatteryStatus.READY, False)),
        "identify": (lambda f: f.port1.identity, lambda i: ",SIM928," in i),
    },
    "sim921": {
        "resistance": (lambda f: f.port2.resistance, lambda r: r.ok and r.value == 1.5234e4),
        "temperature": (lambda f: f.port2.temperature, lambda t: t.ok and t.value == 0.02),
        "range_query": (lambda f: f.port2.range, lambda r: r == 200e3),
        "range_set": (lambda f: setattr(f.port2, "range", 2e3), ANY),
        "excitation_query": (lambda f: f.port2.excitation, lambda e: e == 30e-6),
        "excitation_set": (lambda f: setattr(f.port2, "excitation", 100e-6), ANY),
        "excitation_state": (lambda f: f.port2.excitation_enabled, lambda on: on is True),
        "excitation_off": (lambda f: setattr(f.port2, "excitation_enabled", False), ANY),
        "frequency_query": (lambda f: f.port2.frequency, lambda hz: hz == 15.0),
        "frequency_set": (lambda f: setattr(f.port2, "frequency", 13.7), ANY),
        "time_constant_query": (lambda f: f.port2.time_constant, lambda s: s == 3.0),
        "time_constant_set": (lambda f: setattr(f.port2, "time_constant", 0.3), ANY),
        "identify": (lambda f: f.port2.identity, lambda i: ",SIM921," in i),
    },
}

CASES = [(m, e) for m in (MAINFRAME, SOURCE, BRIDGE) for e in m.exchanges]


def _key(manual: Manual) -> str:
    return {"SRS SIM900 mainframe": "sim900", "SRS SIM928": "sim928",
            "SRS SIM921": "sim921"}[manual.instrument]


def _block(text: str) -> bytes:
    """A GETN? answer carrying a module's reply line: block, then the mainframe's CR LF."""
    data = text.encode("ascii") + b"\r\n"
    return b"#3%03d" % len(data) + data + b"\r\n"


def test_every_manual_exchange_has_a_driver_call() -> None:
    for manual in (MAINFRAME, SOURCE, BRIDGE):
        assert set(DRIVER[_key(manual)]) == set(manual.names()), manual.instrument


@pytest.mark.parametrize(("manual", "exchange"), CASES,
                         ids=[f"{_key(m)}-{e.name}" for m, e in CASES])
def test_driver_sends_and_parses_the_manuals_exchange(
    manual: Manual, exchange: ManualExchange
) -> None:
    comm: list[tuple[Any, Any]]
    if manual is MAINFRAME:
        reply = exchange.reply
        comm = [(exchange.send, None if reply is None else (reply + "\r\n").encode("ascii"))]
    else:
        port = PORTS[manual.instrument]
        comm = [(f'SNDT {port},"{exchange.send}"', None)]
        if exchange.reply is not None:
            comm.append((f"GETN? {port},128", _block(exchange.reply)))
    call, check = DRIVER[_key(manual)][exchange.name]
    with expected_protocol(SIM900, comm, modules={1: SIM928, 2: SIM921}) as frame:
        result = call(frame)
    assert check(result), result


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=3.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii") + b"\n")

    def until(self, end: bytes) -> bytes:
        while end not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(end)
        return head

    def block(self, port: int, command: str = "") -> bytes:
        """GETN? the port's queue (or send ``command``); the block's bytes."""
        self.send(command or f"GETN? {port},128")
        head = self.until(b"#3")
        assert head == b""
        size = int(self.until_count(3))
        data = self.until_count(size + 2)  # the bytes, then the mainframe's CR LF
        assert data.endswith(b"\r\n")
        return data[:-2]

    def until_count(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the simulator closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


@pytest.fixture
def mainframe() -> Iterator[sim.SIM900Server]:
    server = sim.SIM900Server({1: sim.SIM928(), 2: sim.SIM921(temperature=lambda: 0.02, seed=4)})
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize(("manual", "exchange"), CASES,
                         ids=[f"{_key(m)}-{e.name}" for m, e in CASES])
def test_simulator_answers_the_manuals_exchange_in_its_format(
    mainframe: sim.SIM900Server, manual: Manual, exchange: ManualExchange
) -> None:
    client = _Client(mainframe.port)
    try:
        if manual is MAINFRAME:
            if exchange.name == "get_bytes":
                client.send('SNDT 1,"VOLT?"')  # something to fetch
            if exchange.send.startswith("GETN?"):
                data = client.block(0, exchange.send)
                text = f"#3{len(data):03d}" + data.decode("ascii")
            else:
                client.send(exchange.send)
                if exchange.reply is None:
                    client.send("*IDN?")  # nothing came back before the next answer
                    assert client.until(b"\r\n").startswith(b"Stanford_Research_Systems,SIM900")
                    return
                text = client.until(b"\r\n").decode("ascii")
        else:
            port = PORTS[manual.instrument]
            client.send(f'SNDT {port},"{exchange.send}"')
            if exchange.reply is None:
                client.send(f'SNDT {port},"LCME?;LEXE?"')  # accepted without error?
                assert client.block(port) == b"0\r\n0\r\n", exchange.send
                return
            data = client.block(port)
            assert data.endswith(b"\r\n") and data.count(b"\r\n") == 1
            text = data[:-2].decode("ascii")
    finally:
        client.sock.close()
    assert exchange.matches(text), (exchange.name, text, exchange.pattern)
