"""Every fault mode of the fridge-side servers, seen from a client's side of the socket.

Connection faults (drop, hang, garbage, slow) come from the common server
base; over-range and open sensor belong to each instrument.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge
from simulators.physics.gauges import FridgePressures
from simulators.servers.base import GARBAGE_REPLY, InstrumentServer
from simulators.servers.lakeshore336 import LakeShore336Server
from simulators.servers.lakeshore372 import LakeShore372Server
from simulators.servers.tpg366 import TPG366Server

from .conftest import RawClient

# server kind -> (a query, a check of its healthy reply)
QUERIES: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "ls372": ("KRDG? 6", lambda r: r.endswith(b"E-03\r\n")),
    "ls336": ("KRDG? B", lambda r: r.startswith(b"+00") and r.endswith(b"\r\n")),
    "tpg366": ("PR1", lambda r: r == b"\x06\r\n"),
}


def make_server(kind: str, fridge: DilutionFridge) -> InstrumentServer:
    if kind == "ls372":
        return LakeShore372Server(fridge)
    if kind == "ls336":
        return LakeShore336Server(fridge)
    return TPG366Server(FridgePressures(fridge))


@pytest.fixture(params=sorted(QUERIES))
def served(
    request: pytest.FixtureRequest, base_fridge: DilutionFridge
) -> Iterator[tuple[str, InstrumentServer]]:
    server = make_server(request.param, base_fridge).start()
    yield request.param, server
    server.stop()


def test_drop_closes_the_connection_and_a_new_one_works(
    served: tuple[str, InstrumentServer], connect: Callable[..., RawClient]
) -> None:
    kind, server = served
    query, healthy = QUERIES[kind]
    client = connect(server.port)
    assert healthy(client.query(query))
    server.faults.drop = True
    assert client.query(query) == b""  # end of stream: the unit hung up
    server.faults.clear()
    assert healthy(connect(server.port).query(query))


def test_hang_gives_no_reply_until_cleared(
    served: tuple[str, InstrumentServer], connect: Callable[..., RawClient]
) -> None:
    kind, server = served
    query, healthy = QUERIES[kind]
    client = connect(server.port, timeout=0.3)
    server.faults.hang = True
    client.send(query)
    with pytest.raises(socket.timeout):
        client.read_line()
    server.faults.clear()
    assert healthy(client.query(query))


def test_garbage_reply_then_recovery(
    served: tuple[str, InstrumentServer], connect: Callable[..., RawClient]
) -> None:
    kind, server = served
    query, healthy = QUERIES[kind]
    client = connect(server.port)
    server.faults.garbage = True
    assert client.query(query) == GARBAGE_REPLY + b"\r\n"
    server.faults.clear()
    assert healthy(client.query(query))


def test_slow_reply_times_out_a_strict_client_but_arrives(
    served: tuple[str, InstrumentServer], connect: Callable[..., RawClient]
) -> None:
    kind, server = served
    query, healthy = QUERIES[kind]
    client = connect(server.port, timeout=0.05)
    server.faults.delay_s = 0.5
    client.send(query)
    with pytest.raises(socket.timeout):
        client.read_line()
    assert healthy(client.read_line(timeout=5.0))  # late, but the right answer
    server.faults.clear()


# ---- instrument faults ---------------------------------------------------------------------------


@pytest.fixture
def ls372(base_fridge: DilutionFridge) -> Iterator[LakeShore372Server]:
    server = LakeShore372Server(base_fridge).start()
    yield server
    server.stop()


def _tick(clock: SimClock, client: RawClient, seconds: float = 1.0) -> None:
    assert client.query("*OPC?") == b"1\r\n"
    clock.advance(seconds)


def test_ls372_overrange_on_the_scanned_channel(
    ls372: LakeShore372Server, frozen_clock: SimClock, connect: Callable[..., RawClient]
) -> None:
    client = connect(ls372.port)
    client.send("SCAN 6,0")
    _tick(frozen_clock, client, 5.0)
    assert client.query("RDGST? 6") == b"000\r\n"
    ls372.set_overrange(6, True)
    _tick(frozen_clock, client)
    assert client.query("RDGST? 6") == b"016\r\n"  # R.OVER
    assert client.query("KRDG? 6") == b"+000.000E+00\r\n"
    assert client.query("SRDG? 6") == b"+000.000E+00\r\n"
    ls372.set_overrange(6, False)
    _tick(frozen_clock, client)
    assert client.query("RDGST? 6") == b"000\r\n"
    assert client.query("KRDG? 6").endswith(b"E-03\r\n")


def test_ls372_fault_on_an_unscanned_channel_shows_when_it_is_scanned(
    ls372: LakeShore372Server, frozen_clock: SimClock, connect: Callable[..., RawClient]
) -> None:
    client = connect(ls372.port)
    client.send("SCAN 5,0")
    ls372.set_open_sensor(9, True)
    _tick(frozen_clock, client, 30.0)
    assert client.query("RDGST? 9") == b"000\r\n"  # held: not measured yet
    client.send("SCAN 9,0")
    _tick(frozen_clock, client, 5.0)
    assert client.query("RDGST? 9") == b"017\r\n"  # CS OVL + R.OVER


def test_ls372_open_control_sensor_stops_the_heater(
    ls372: LakeShore372Server,
    base_fridge: DilutionFridge,
    frozen_clock: SimClock,
    connect: Callable[..., RawClient],
) -> None:
    client = connect(ls372.port)
    for command in ("OUTMODE 0,5,A,0,0,1,1", "RANGE 0,5", "SETP 0,0.05"):
        client.send(command)
    _tick(frozen_clock, client, 60.0)
    assert base_fridge.heater("mxc") > 0
    ls372.set_open_sensor("A", True)
    _tick(frozen_clock, client)
    assert client.query("RDGST? A") == b"017\r\n"
    assert client.query("KRDG? A") == b"+000.000E+00\r\n"
    assert client.query("HTR?") == b"+00.000\r\n"
    assert base_fridge.heater("mxc") == 0.0


def test_ls372_open_heater_reports_htrst(
    ls372: LakeShore372Server, frozen_clock: SimClock, connect: Callable[..., RawClient]
) -> None:
    client = connect(ls372.port)
    ls372.set_heater_open(True)
    assert client.query("HTRST? 0") == b"1\r\n"


def test_ls336_overrange_and_open_sensor(
    base_fridge: DilutionFridge, connect: Callable[..., RawClient]
) -> None:
    server = LakeShore336Server(base_fridge).start()
    try:
        client = connect(server.port)
        server.set_overrange("A", True)
        assert client.query("RDGST? A") == b"128\r\n"
        assert client.query("KRDG? A") == b"+000.0000\r\n"
        server.set_overrange("A", False)
        server.set_open_sensor("B", True)
        assert client.query("RDGST? B") == b"129\r\n"
        assert client.query("SRDG? B") == b"+000.0000\r\n"
        assert client.query("RDGST? A") == b"000\r\n"
    finally:
        server.stop()


def test_tpg366_overrange_and_sensor_error(
    base_fridge: DilutionFridge, connect: Callable[..., RawClient]
) -> None:
    server = TPG366Server(FridgePressures(base_fridge)).start()
    try:
        client = connect(server.port)
        server.set_overrange(3, True)
        server.set_gauge_fault(1, 3)  # sensor error: the gauge's "open sensor"
        assert client.query("PRX") == b"\x06\r\n"
        client.send(b"\x05")
        fields = client.read_line().rstrip(b"\r\n").split(b",")
        assert fields[0:2] == [b"3", b"+0.0000E+00"]
        assert fields[4:6] == [b"2", b"+1.1000E+03"]
    finally:
        server.stop()
