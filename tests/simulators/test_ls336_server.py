"""The simulated Lake Shore 336 over a raw TCP socket."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge
from simulators.servers.lakeshore336 import LakeShore336Server

from .conftest import RawClient

FIXED = re.compile(rb"^[+-]\d{3,4}\.\d{4}\r\n$")


@pytest.fixture
def ls336(base_fridge: DilutionFridge) -> Iterator[LakeShore336Server]:
    server = LakeShore336Server(base_fridge).start()
    yield server
    server.stop()


@pytest.fixture
def client(ls336: LakeShore336Server, connect: Callable[..., RawClient]) -> RawClient:
    return connect(ls336.port)


def advance(clock: SimClock, client: RawClient, seconds: float) -> None:
    """Move simulated time once the server has handled everything sent so far."""
    assert client.query("*OPC?") == b"1\r\n"
    clock.advance(seconds)


def fixed(reply: bytes) -> float:
    assert FIXED.match(reply), reply
    return float(reply)


def test_identity(client: RawClient) -> None:
    assert client.query("*IDN?") == b"LSCI,MODEL336,LSA36SIM,2.9\r\n"


def test_readings_of_the_warm_plates(client: RawClient, base_fridge: DilutionFridge) -> None:
    t50, t4 = base_fridge.temperature("50k"), base_fridge.temperature("4k")
    assert fixed(client.query("KRDG? A")) == pytest.approx(t50, rel=0.01)
    assert fixed(client.query("KRDG? B")) == pytest.approx(t4, rel=0.01)
    assert fixed(client.query("KRDG? C")) == pytest.approx(t4, rel=0.01)
    assert client.query("KRDG? D") == b"+000.0000\r\n"  # disabled input
    assert client.query("RDGST? A") == b"000\r\n"
    assert client.query("RDGST? D") == b"001\r\n"
    diode_volts = fixed(client.query("SRDG? B"))
    assert 1.55 < diode_volts < 1.65  # a silicon diode near 3 K
    assert fixed(client.query("SRDG? C")) > 1000  # a Cernox at 3 K, ohms
    assert fixed(client.query("CRDG? A")) == pytest.approx(t50 - 273.15, abs=0.5)


def test_all_inputs_at_once(client: RawClient) -> None:
    fields = client.query("KRDG? 0").rstrip(b"\r\n").split(b",")
    assert len(fields) == 4
    assert all(re.match(rb"^[+-]\d{3}\.\d{4}$", f) for f in fields)
    assert fields[3] == b"+000.0000"


def test_input_setup_commands(client: RawClient) -> None:
    assert client.query("INTYPE? A") == b"1,0,0,0,1\r\n"
    assert client.query("INTYPE? C") == b"3,1,0,0,1\r\n"
    client.send("INTYPE C,3,1,0,0,1,1")
    assert client.query("INTYPE? C") == b"3,1,0,0,1\r\n"
    assert client.query("INCRV? A") == b"02\r\n"
    client.send("INCRV A,0")
    assert client.query("INCRV? A") == b"00\r\n"
    assert client.query("KRDG? A") == b"+000.0000\r\n"  # no curve, no kelvin
    client.send('INNAME B,"4K plate"')
    assert client.query("INNAME? B") == b"4K plate\r\n"


def test_output_setup_commands(client: RawClient) -> None:
    assert client.query("OUTMODE? 1") == b"0,0,0\r\n"
    client.send("OUTMODE 1,1,1,0")
    assert client.query("OUTMODE? 1") == b"1,1,0\r\n"
    client.send("RANGE 1 2")
    assert client.query("RANGE? 1") == b"2\r\n"
    client.send("SETP 1,47.5")
    assert client.query("SETP? 1") == b"+047.5000\r\n"
    client.send("PID 1,75,30,2")
    assert client.query("PID? 1") == b"+0075.0,+0030.0,+0002.0\r\n"
    client.send("MOUT 2,12.5")
    assert client.query("MOUT? 2") == b"+012.50\r\n"
    client.send("RAMP 1,1,2.5")
    assert client.query("RAMP? 1") == b"1,+0002.5\r\n"
    assert client.query("HTRSET? 1") == b"2,2,+0.000,1\r\n"
    client.send("HTRSET 1,1,0,0.5,2")
    assert client.query("HTRSET? 1") == b"1,0,+0.500,2\r\n"
    assert client.query("HTRST? 1") == b"0\r\n"
    assert client.query("HTR? 2") == b"+000.00\r\n"


def test_closed_loop_heats_the_50k_plate_to_its_setpoint(
    client: RawClient, base_fridge: DilutionFridge, frozen_clock: SimClock
) -> None:
    client.send("OUTMODE 1,1,1,0")
    client.send("RANGE 1,3")
    client.send("SETP 1,50")
    for _ in range(20):
        advance(frozen_clock, client, 300.0)
    assert fixed(client.query("KRDG? A")) == pytest.approx(50.0, abs=0.3)
    assert base_fridge.heater("50k") > 1.0
    assert 0 < float(client.query("HTR? 1")) < 100


def test_open_loop_output_two_heats_the_4k_plate(
    client: RawClient, base_fridge: DilutionFridge, frozen_clock: SimClock
) -> None:
    before = base_fridge.temperature("4k")
    client.send("OUTMODE 2,3,0,0")
    client.send("RANGE 2,1")  # low: 1 % of 50 W
    client.send("MOUT 2,100")
    advance(frozen_clock, client, 600.0)
    assert base_fridge.heater("4k") == pytest.approx(0.5)
    assert base_fridge.temperature("4k") > before + 0.2
    assert client.query("HTR? 2") == b"+100.00\r\n"


def test_ramp_reports_ramping(client: RawClient, frozen_clock: SimClock) -> None:
    client.send("OUTMODE 1,1,1,0")
    client.send("RANGE 1,3")
    client.send("SETP 1,46")
    advance(frozen_clock, client, 10.0)
    client.send("RAMP 1,1,1.0")
    client.send("SETP 1,50")
    advance(frozen_clock, client, 60.0)
    assert client.query("RAMPST? 1") == b"1\r\n"
    assert fixed(client.query("SETP? 1")) == pytest.approx(47.0, abs=0.05)
    advance(frozen_clock, client, 600.0)
    assert client.query("RAMPST? 1") == b"0\r\n"


@pytest.mark.parametrize(
    "bad", ["KRDG? E", "KRDG?", "RANGE 1,4", "PID 1,0,0,0", "OUTMODE 5,1,1,0", "HELLO"]
)
def test_malformed_commands_get_silence(
    ls336: LakeShore336Server, client: RawClient, bad: str
) -> None:
    before = ls336.error_count
    client.send(bad)
    assert client.query("INCRV? A") == b"02\r\n"
    assert ls336.error_count == before + 1


def test_all_inputs_and_their_status_in_one_exchange(
    ls336: LakeShore336Server, client: RawClient
) -> None:
    ls336.set_open_sensor("B", True)
    reply = client.query("KRDG? 0;RDGST? A;RDGST? B;RDGST? C;RDGST? D").rstrip(b"\r\n")
    values, *statuses = reply.split(b";")
    fields = values.split(b",")
    assert len(fields) == 4 and all(re.match(rb"^[+-]\d{3}\.\d{4}$", f) for f in fields)
    assert fields[1] == b"+000.0000"
    assert statuses == [b"000", b"129", b"000", b"001"]  # B open; D disabled
    ls336.clear_faults()
    assert client.query("RDGST? B") == b"000\r\n"


def test_intype_range_codes_follow_the_sensor_type(
    ls336: LakeShore336Server, client: RawClient
) -> None:
    before = ls336.error_count
    client.send("INTYPE A,1,0,2,0,1")  # a diode has ranges 0 and 1 only
    client.send("INTYPE C,2,1,7,1,1")  # a platinum RTD stops at 6 (10 kOhm)
    assert client.query("INTYPE? A;INTYPE? C") == b"1,0,0,0,1;3,1,0,0,1\r\n"
    assert ls336.error_count == before + 2
    client.send("INTYPE C,3,0,8,1,3")  # NTC 100 kOhm
    assert client.query("INTYPE? C") == b"3,0,8,1,3\r\n"


def test_user_curves(ls336: LakeShore336Server, client: RawClient) -> None:
    client.send("CRVHDR 30,DT-470,00011134,2,325.0,1")  # as the manual's example (no quotes)
    assert client.query("CRVHDR? 30") == b"DT-470         ,00011134  ,2,+325.000,1\r\n"
    client.send("CRVPT 30,2,0.10191,470.000")
    assert client.query("CRVPT? 30,2") == b"+0.101910,+470.000\r\n"
    assert client.query("CRVPT? 30,3") == b"+0.00000,+0.00000\r\n"
    ls336.corrupt_curve_point(30, 2)
    client.send("CRVPT 30,2,0.10191,470.000")
    assert client.query("CRVPT? 30,2") != b"+0.101910,+470.000\r\n"
    client.send("CRVDEL 30")
    assert client.query("CRVHDR? 30").startswith(b" " * 15 + b",")


def test_heater_faults(ls336: LakeShore336Server, base_fridge: DilutionFridge,
                       frozen_clock: SimClock, client: RawClient) -> None:
    for command in ("OUTMODE 2,3,0,0", "RANGE 2,1", "MOUT 2,100"):
        client.send(command)
    advance(frozen_clock, client, 1.0)
    assert base_fridge.heater("4k") > 0
    ls336.set_heater_open(True, output=2)
    advance(frozen_clock, client, 1.0)
    assert client.query("HTR? 2;HTRST? 2") == b"+000.00;1\r\n"
    assert base_fridge.heater("4k") == 0.0
    ls336.set_heater_open(False, output=2)
    ls336.set_heater_short(True, output=1)
    assert client.query("HTRST? 1;HTRST? 2") == b"2;0\r\n"
