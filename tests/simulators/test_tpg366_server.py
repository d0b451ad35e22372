"""The simulated Pfeiffer TPG 366 MaxiGauge over a raw TCP socket: ACK/NAK/ENQ."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator

import pytest

from simulators.physics.fridge import DilutionFridge
from simulators.physics.gauges import FridgePressures
from simulators.servers.base import RECEIVED_KEPT
from simulators.servers.tpg366 import TPG366Server

from .conftest import RawClient

ACK = b"\x06\r\n"
NAK = b"\x15\r\n"
ENQ = b"\x05"
PAIR = rb"[0-6],[+-]\d\.\d{4}E[+-]\d{2}"


@pytest.fixture
def tpg(base_fridge: DilutionFridge) -> Iterator[TPG366Server]:
    server = TPG366Server(FridgePressures(base_fridge, seed=2)).start()
    yield server
    server.stop()


@pytest.fixture
def client(tpg: TPG366Server, connect: Callable[..., RawClient]) -> RawClient:
    return connect(tpg.port)


def request(client: RawClient, mnemonic: str) -> bytes:
    """The two-step exchange: mnemonic -> ACK, ENQ -> data line."""
    assert client.query(mnemonic) == ACK
    client.send(ENQ)
    return client.read_line()


def test_single_gauge_reading(client: RawClient) -> None:
    line = request(client, "PR1")
    assert re.match(rb"^" + PAIR + rb"\r\n$", line), line
    status, pressure = line.rstrip(b"\r\n").split(b",")
    assert status == b"0"
    assert 1e-8 < float(pressure) < 1e-5  # a cold OVC


def test_all_gauges_and_their_model(client: RawClient) -> None:
    line = request(client, "PRX")
    assert re.match(rb"^" + rb",".join([PAIR] * 6) + rb"\r\n$", line), line
    fields = line.rstrip(b"\r\n").split(b",")
    pressures = [float(p) for p in fields[1::2]]
    assert pressures[0] < 1e-5  # OVC
    assert 0.01 < pressures[1] < 10  # still line
    assert 50 < pressures[2] < 1000  # condensing line while circulating


def test_repeated_enq_repeats_the_last_request(client: RawClient) -> None:
    first = request(client, "PR3")
    client.send(ENQ)
    again = client.read_line()
    assert re.match(rb"^0," + PAIR[6:] + rb"\r\n$", again)
    assert float(again.split(b",")[1]) == pytest.approx(float(first.split(b",")[1]), rel=0.1)


def test_unit_conversion(client: RawClient) -> None:
    mbar = float(request(client, "PR3").split(b",")[1])
    assert request(client, "UNI,1") == b"1\r\n"
    torr = float(request(client, "PR3").split(b",")[1])
    assert request(client, "UNI 2") == b"2\r\n"
    pascal = float(request(client, "PR3").split(b",")[1])
    assert request(client, "UNI") == b"2\r\n"
    assert torr == pytest.approx(0.750062 * mbar, rel=0.1)
    assert pascal == pytest.approx(100 * mbar, rel=0.1)


def test_sensor_on_off(client: RawClient) -> None:
    assert request(client, "SEN") == b"2,2,2,2,2,2\r\n"
    assert request(client, "SEN,0,0,1,0,0,0") == b"2,2,1,2,2,2\r\n"
    assert request(client, "PR3") == b"4,+0.0000E+00\r\n"
    assert request(client, "SEN,0,0,2,0,0,0") == b"2,2,2,2,2,2\r\n"
    assert request(client, "PR3").startswith(b"0,")


def test_identification_commands(client: RawClient) -> None:
    assert request(client, "TID") == b"PKR,PKR,CMR,CMR,CMR,PKR\r\n"
    assert request(client, "AYT") == b"TPG366,PTG28290,44990000,010100,010200\r\n"


@pytest.mark.parametrize("bad", ["XYZ", "PR7", "UNI,5", "SEN,1,2", "PR1,3", "@@"])
def test_bad_mnemonics_get_nak_and_err_reports_a_syntax_error(
    tpg: TPG366Server, client: RawClient, bad: str
) -> None:
    assert client.query(bad) == NAK
    assert request(client, "ERR") == b"0001\r\n"
    assert request(client, "ERR") == b"0000\r\n"  # reading clears it
    assert tpg.error_count == 1


def test_cr_or_lf_alone_terminate_a_mnemonic(client: RawClient) -> None:
    client.send(b"PR2\r")
    assert client.read_line() == ACK
    client.send(b"PR2\n")
    assert client.read_line() == ACK
    client.send(b"\x05")
    assert client.read_line().startswith(b"0,")


def test_streaming_after_power_up_stops_on_enq(
    base_fridge: DilutionFridge, connect: Callable[..., RawClient]
) -> None:
    server = TPG366Server(
        FridgePressures(base_fridge), streaming=True, stream_period_s=0.02
    ).start()
    try:
        client = connect(server.port)
        streamed = client.read_line()
        assert re.match(rb"^" + rb",".join([PAIR] * 6) + rb"\r\n$", streamed)
        client.send(ENQ)  # stops the stream; nothing was requested, so no data line
        client.send("PR1")
        while (line := client.read_line()) != ACK:
            assert line.count(b",") == 11  # only stream lines sent before the ENQ
        assert not server.streaming
        client.send(ENQ)
        assert re.match(rb"^" + PAIR + rb"\r\n$", client.read_line())
        # after the stop nothing more arrives on its own
        with pytest.raises(socket.timeout):
            client.read_line(timeout=0.2)
    finally:
        server.stop()


def test_gauge_faults_show_in_status(tpg: TPG366Server, client: RawClient) -> None:
    tpg.set_overrange(2, True)
    assert request(client, "PR2") == b"2,+1.0000E+03\r\n"
    tpg.set_gauge_fault(4, 3)
    tpg.set_sensor_off(5, True)
    fields = request(client, "PRX").rstrip(b"\r\n").split(b",")
    assert fields[2:4] == [b"2", b"+1.0000E+03"]
    assert fields[6:10] == [b"3", b"+0.0000E+00", b"4", b"+0.0000E+00"]
    tpg.set_overrange(2, False)
    assert request(client, "PR2").startswith(b"0,")
    with pytest.raises(ValueError, match="gauge 7"):
        tpg.set_gauge_fault(7, 2)


def test_underrange_reports_the_range_limit(tpg: TPG366Server, client: RawClient) -> None:
    tpg.set_gauge_fault(1, 1)
    assert request(client, "PR1") == b"1,+5.0000E-09\r\n"


def test_every_status_can_be_forced_and_statuses_3_to_6_send_zero(
    tpg: TPG366Server, client: RawClient
) -> None:
    for status in range(1, 7):
        tpg.set_gauge_fault(5, status)
        line = request(client, "PR5").rstrip(b"\r\n")
        assert line.split(b",")[0] == str(status).encode()
        if status >= 3:
            assert line.endswith(b",+0.0000E+00")
    tpg.set_gauge_fault(5, None)
    assert request(client, "PR5").startswith(b"0,")


def test_received_commands_are_bounded(tpg: TPG366Server, client: RawClient) -> None:
    count = RECEIVED_KEPT + 100
    client.send(b"UNI\r\n" * count)
    for _ in range(count):
        assert client.read_line() == ACK
    assert len(tpg.received) == RECEIVED_KEPT
    assert tpg.received[-1] == "UNI"
