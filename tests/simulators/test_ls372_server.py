"""The simulated Lake Shore 372 over a raw TCP socket: every command, byte-exact formats."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge
from simulators.servers.lakeshore372 import LakeShore372Server

from .conftest import RawClient

ENG = re.compile(rb"^[+-]\d{3}\.\d{3}E[+-]\d{2}\r\n$")


@pytest.fixture
def ls372(base_fridge: DilutionFridge) -> Iterator[LakeShore372Server]:
    server = LakeShore372Server(base_fridge, seed=5).start()
    yield server
    server.stop()


@pytest.fixture
def client(ls372: LakeShore372Server, connect: Callable[..., RawClient]) -> RawClient:
    return connect(ls372.port)


def advance(clock: SimClock, client: RawClient, seconds: float) -> None:
    """Move simulated time once the server has handled everything sent so far."""
    assert client.query("*OPC?") == b"1\r\n"
    clock.advance(seconds)


def eng(reply: bytes) -> float:
    assert ENG.match(reply), reply
    return float(reply)


def test_identity(client: RawClient) -> None:
    assert client.query("*IDN?") == b"LSCI,MODEL372,LSA21SIM,1.4\r\n"


def test_kelvin_reading_format_and_both_spellings(
    client: RawClient, base_fridge: DilutionFridge
) -> None:
    krdg = client.query("KRDG? 6")
    assert krdg == client.query("RDGK? 6")  # frozen clock: the same held reading
    assert eng(krdg) == pytest.approx(base_fridge.temperature("mxc"), rel=0.02)
    assert eng(client.query("KRDG? 1")) == pytest.approx(base_fridge.temperature("50k"), rel=0.02)
    assert eng(client.query("KRDG? 5")) == pytest.approx(base_fridge.temperature("still"), rel=0.02)
    assert eng(client.query("KRDG? 9")) == pytest.approx(
        base_fridge.temperature("cold_plate"), rel=0.02
    )
    assert eng(client.query("KRDG? A")) == pytest.approx(base_fridge.temperature("mxc"), rel=0.02)
    assert eng(client.query("KRDG? a")) > 0  # the letter in either case


def test_resistance_power_and_status_formats(client: RawClient) -> None:
    ohms = eng(client.query("SRDG? 6"))
    assert 50e3 < ohms < 100e3  # RuOx at ~13 mK
    assert client.query("RDGR? 6") == client.query("SRDG? 6")
    assert 0 < eng(client.query("RDGPWR? 6")) < 1e-12
    assert client.query("RDGST? 6") == b"000\r\n"
    assert client.query("QRDG? 6") == b"+000.000E+00\r\n"


def test_channel_without_curve_reads_zero_kelvin(client: RawClient) -> None:
    client.send("INSET 6,1,010,003,00,1")
    client.send("SCAN 6,0")
    assert client.query("INSET? 6") == b"1,010,003,00,1\r\n"
    assert client.query("KRDG? 3") == b"+000.000E+00\r\n"  # nothing connected, never scanned


def test_scan_set_and_query_with_both_separators(client: RawClient) -> None:
    assert client.query("SCAN?") == b"01,1\r\n"
    client.send("SCAN 6,0")
    assert client.query("SCAN?") == b"06,0\r\n"
    client.send("SCAN 5 1")
    assert client.query("SCAN?") == b"05,1\r\n"
    client.send("scan 12, 0")
    assert client.query("SCAN?") == b"12,0\r\n"


def test_inset_default_and_round_trip(client: RawClient) -> None:
    assert client.query("INSET? 1") == b"1,007,003,21,1\r\n"
    client.send("INSET 2,1,15,4,22,2")
    assert client.query("INSET? 2") == b"1,015,004,22,2\r\n"
    client.send("INSET 12,0,0,0,0,0")  # how clients disable an input
    assert client.query("INSET? 12") == b"0,000,000,00,1\r\n"


def test_intype_default_and_round_trip(client: RawClient) -> None:
    assert client.query("INTYPE? 1") == b"0,07,1,10,0,1\r\n"
    client.send("INTYPE 1 1 15 0 12 0 2")
    assert client.query("INTYPE? 1") == b"1,15,0,12,0,2\r\n"
    assert client.query("INTYPE? A") == b"1,02,1,16,0,1\r\n"


def test_inname_tlimit_filter_freq(client: RawClient) -> None:
    assert client.query("INNAME? 6") == b"MXC\r\n"
    client.send('INNAME 6,"Mixing chamber 1"')
    assert client.query("INNAME? 6") == b"Mixing chamber \r\n"  # 15 characters kept
    client.send("TLIMIT 6,1.5")
    assert client.query("TLIMIT? 6") == b"+001.500E+00\r\n"
    assert client.query("FILTER? 6") == b"1,010,10\r\n"
    client.send("FILTER 6,0,20,5")
    assert client.query("FILTER? 6") == b"0,020,05\r\n"
    assert client.query("FREQ? 0") == b"1\r\n"  # one frequency for all scanner channels
    client.send("FREQ 0,3")
    assert client.query("FREQ? 0") == b"3\r\n"
    assert client.query("FREQ? A") == b"1\r\n"  # the control input has its own
    client.send("FREQ A,5")
    assert client.query("FREQ? A") == b"5\r\n"
    assert client.query("FREQ? 0") == b"3\r\n"


def test_output_setup_commands(client: RawClient) -> None:
    assert client.query("OUTMODE? 0") == b"0,A,0,0,1,001\r\n"
    client.send("OUTMODE 0,5,A,0,0,1,10")
    assert client.query("OUTMODE? 0") == b"5,A,0,0,1,010\r\n"
    assert client.query("OUTMODE? 2") == b"4,0,0,0,1,001\r\n"
    client.send("OUTMODE 1,2,6,1,0,1,255")
    assert client.query("OUTMODE? 1") == b"2,6,1,0,1,255\r\n"
    assert client.query("HTRSET? 0") == b"+120.000,0,+000.000,1\r\n"  # load in ohms
    client.send("HTRSET 0,100,0,0,2")
    assert client.query("HTRSET? 0") == b"+100.000,0,+000.000,2\r\n"
    assert client.query("HTRSET? 1") == b"2,2,+000.000,1\r\n"  # 50 ohm, 0.63 A
    client.send("HTRSET 1,1,0,0.2,2")  # 25 ohm, user limit 0.2 A
    assert client.query("HTRSET? 1") == b"1,0,+000.200,2\r\n"
    assert client.query("RANGE? 0") == b"0\r\n"
    client.send("RANGE 0 5")
    assert client.query("RANGE? 0") == b"5\r\n"
    assert client.query("RANGE? 2") == b"1\r\n"
    assert client.query("HTRST? 0") == b"0\r\n"


def test_control_commands(client: RawClient) -> None:
    client.send("SETP 0,0.05")
    assert client.query("SETP? 0") == b"+050.000E-03\r\n"
    client.send("PID 0,20,30,4")
    assert client.query("PID? 0") == b"+020.000E+00,+030.000E+00,+004.000E+00\r\n"
    client.send("RAMP 0,1,0.5")
    assert client.query("RAMP? 0") == b"1,+500.000E-03\r\n"
    assert client.query("RAMPST? 0") == b"0\r\n"
    client.send("MOUT 0,12.5")
    assert client.query("MOUT? 0") == b"+12.50\r\n"
    assert client.query("STILL?") == b"+17.32\r\n"
    client.send("STILL 10.6")
    assert client.query("STILL?") == b"+10.60\r\n"
    assert client.query("HTR?") == b"+00.000\r\n"


def test_curve_header_points_and_kelvin_from_the_curve(
    client: RawClient, frozen_clock: SimClock
) -> None:
    assert client.query("CRVHDR? 24") == b"MXC            ,SIM0006   ,4,+040.000,1\r\n"
    number = rb"[+-]\d{3}\.\d{3}E[+-]\d{2}"
    assert re.match(rb"^" + number + b"," + number + rb"\r\n$", client.query("CRVPT? 24,1"))
    client.send('CRVHDR 30,"My RuOx","S123",3,10.0,1')
    assert client.query("CRVHDR? 30") == b"My RuOx        ,S123      ,3,+010.000,1\r\n"
    # a two-point ohm/kelvin curve: every resistance in between maps linearly
    client.send("CRVPT 30,1,40000,0.02")
    client.send("CRVPT 30,2,100000,0.005")
    assert client.query("CRVPT? 30,2") == b"+100.000E+03,+500.000E-05\r\n"
    client.send("INSET 6,1,10,3,30,1")
    client.send("SCAN 6,0")
    advance(frozen_clock, client, 5.0)  # past the pause: channel 6 is read again
    ohms = eng(client.query("SRDG? 6"))
    expected = 0.02 + (ohms - 40000) * (0.005 - 0.02) / 60000
    assert eng(client.query("KRDG? 6")) == pytest.approx(expected, rel=2e-3)
    client.send("CRVDEL 30")
    assert client.query("CRVHDR? 30").startswith(b" " * 15 + b",")


def test_zone_table(client: RawClient) -> None:
    client.send("ZONE 0,1,0.1,200,50,0,5,6,0.2,0,1")
    assert client.query("ZONE? 0,1") == (
        b"+100.000E-03,+200.000E+00,+050.000E+00,+000.000E+00,+5.00,6,+200.000E-03,0,1\r\n"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "FOO? 1",
        "KRDG? 17",
        "KRDG?",
        "KRDG? 1,2",
        "INSET 1,1,500,3,21,1",
        "RANGE 0,9",
        "RANGE 1,2",
        'INNAME 1,"open quote',
        "SETP 0,abc",
        "PID 0,2000,1,1",
        "",
        "\x00\xff",
    ],
)
def test_malformed_commands_get_silence_and_the_server_keeps_answering(
    ls372: LakeShore372Server, client: RawClient, bad: str
) -> None:
    before = ls372.error_count
    client.send(bad.encode("latin-1") + b"\r\n")
    # had the bad command been answered, that answer would arrive first
    assert client.query("SCAN?") == b"01,1\r\n"
    assert ls372.error_count >= before + (1 if bad.strip("\x00\xff ") else 0)
    assert client.query("*IDN?").startswith(b"LSCI,MODEL372")


def test_lf_only_terminator_is_accepted(client: RawClient) -> None:
    client.send(b"SCAN?\n")
    assert client.read_line() == b"01,1\r\n"


def _autoscan_sequence(server: LakeShore372Server, clock: SimClock, client: RawClient) -> list[str]:
    seen = []
    for _ in range(12):
        advance(clock, client, 2.0)
        seen.append(client.ask("SCAN?"))
    return seen


def test_autoscan_visits_enabled_channels_after_pause_and_dwell(
    ls372: LakeShore372Server, frozen_clock: SimClock, client: RawClient
) -> None:
    for channel in (1, 2, 5, 6, 9):
        client.send(f"INSET {channel},1,4,3,0,1")
    client.send("SCAN 1,1")  # pause 3 s + dwell 4 s per channel
    order = []
    for _ in range(40):
        advance(frozen_clock, client, 1.0)
        now = client.ask("SCAN?")
        if not order or order[-1] != now:
            order.append(now)
    assert order[:6] == ["01,1", "02,1", "05,1", "06,1", "09,1", "01,1"]


def test_switched_channel_is_held_through_the_pause_and_updates_after(
    connect: Callable[..., RawClient],
) -> None:
    clock = SimClock(time_scale=50.0)
    fridge = DilutionFridge(clock=clock)
    server = LakeShore372Server(fridge, seed=9).start()
    try:
        client = connect(server.port)
        client.send("SCAN 5,0")
        client.send("INSET 6,1,10,20,24,1")  # a 20 s pause: 0.4 s of wall time here
        # warm the mixing chamber while channel 6 is not scanned: its reading stays old
        client.send("OUTMODE 0,2,A,0,0,1,1")
        client.send("RANGE 0,5")
        client.send("MOUT 0,40")
        advance(clock, client, 600)
        held = client.ask("KRDG? 6")
        true_mxc = fridge.temperature("mxc")
        assert float(held) < 0.5 * true_mxc
        sent_at = clock.now()
        client.send("SCAN 6,0")
        assert client.ask("*OPC?") == "1"
        handled_by = clock.now()  # the switch happened between sent_at and handled_by
        during, after = [], []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            before = clock.now()
            reply = client.ask("KRDG? 6")
            if clock.now() < sent_at + 20:
                during.append(reply)
            elif before > handled_by + 20:
                after.append(float(reply))
                if before > handled_by + 40:  # a few settling time constants
                    break
        assert during and all(r == held for r in during)
        assert after[0] > float(held)
        assert after[-1] > 1.5 * float(held)
        # it settles from the held value toward the new temperature
        assert all(b >= a * (1 - 1e-3) for a, b in zip(after, after[1:], strict=False))
        assert client.ask("SCAN?") == "06,0"
    finally:
        server.stop()


def test_closed_loop_holds_the_setpoint(
    ls372: LakeShore372Server, frozen_clock: SimClock, client: RawClient
) -> None:
    client.send("OUTMODE 0,5,A,0,0,1,1")
    client.send("PID 0,1000,30,0")
    client.send("RANGE 0,5")
    client.send("SETP 0,0.05")
    readings = []
    for _ in range(30):
        advance(frozen_clock, client, 60.0)
        readings.append(eng(client.query("KRDG? A")))
    assert readings[-1] == pytest.approx(0.05, rel=0.01)
    assert max(readings[-10:]) - min(readings[-10:]) < 0.002
    assert 0 < float(client.query("HTR?")) < 100


def test_setpoint_ramp_reports_ramping_and_arrives(
    ls372: LakeShore372Server, frozen_clock: SimClock, client: RawClient
) -> None:
    client.send("OUTMODE 0,5,A,0,0,1,1")
    client.send("PID 0,1000,30,0")
    client.send("RANGE 0,5")
    client.send("SETP 0,0.03")
    advance(frozen_clock, client, 600)
    client.send("RAMP 0,1,0.01")  # 10 mK/min
    client.send("SETP 0,0.06")
    advance(frozen_clock, client, 60)
    assert client.query("RAMPST? 0") == b"1\r\n"
    assert eng(client.query("SETP? 0")) == pytest.approx(0.04, rel=0.02)
    advance(frozen_clock, client, 600)
    assert client.query("RAMPST? 0") == b"0\r\n"
    assert client.query("SETP? 0") == b"+060.000E-03\r\n"


def test_open_loop_output_heats_with_i_squared_r(
    ls372: LakeShore372Server,
    base_fridge: DilutionFridge,
    frozen_clock: SimClock,
    client: RawClient,
) -> None:
    client.send("OUTMODE 0,2,A,0,0,1,1")
    client.send("RANGE 0,5")  # 3.16 mA
    client.send("MOUT 0,50")
    advance(frozen_clock, client, 1.0)
    assert client.query("HTR?") == b"+50.000\r\n"
    expected = (0.5 * 3.16e-3) ** 2 * 120.0
    assert base_fridge.heater("mxc") == pytest.approx(expected, rel=1e-6)
    client.send("HTRSET 0,120,2,0,2")  # display power: watts, to the manual's three decimals
    client.send("RANGE 0,8")  # 100 mA: 50 % gives 0.3 W into 120 ohm
    advance(frozen_clock, client, 1.0)
    assert float(client.query("HTR?")) == pytest.approx((0.5 * 0.1) ** 2 * 120.0, abs=1e-3)


def test_temperature_limit_turns_the_heater_off(
    ls372: LakeShore372Server,
    base_fridge: DilutionFridge,
    frozen_clock: SimClock,
    client: RawClient,
) -> None:
    client.send("TLIMIT A,0.03")
    client.send("OUTMODE 0,2,A,0,0,1,1")
    client.send("RANGE 0,6")
    client.send("MOUT 0,100")  # 12 mW: far too much
    for _ in range(20):
        advance(frozen_clock, client, 5.0)
        if client.query("RANGE? 0") == b"0\r\n":
            break
    assert client.query("RANGE? 0") == b"0\r\n"
    assert base_fridge.heater("mxc") == 0.0


def test_still_output_drives_the_still_heater(
    base_fridge: DilutionFridge, frozen_clock: SimClock, client: RawClient
) -> None:
    client.send("STILL 30")
    advance(frozen_clock, client, 1.0)
    assert base_fridge.heater("still") == pytest.approx(0.3**2 * 0.1)
    client.send("RANGE 2,0")
    advance(frozen_clock, client, 1.0)
    assert base_fridge.heater("still") == 0.0


def test_zone_mode_takes_range_and_gains_from_the_zone_of_the_setpoint(
    base_fridge: DilutionFridge, frozen_clock: SimClock, client: RawClient
) -> None:
    client.send("ZONE 0,1,0.02,100,50,0,0,4,0.1,0,0")
    client.send("ZONE 0,2,0.2,1000,30,0,0,5,0.1,0,0")
    client.send("OUTMODE 0,3,A,0,0,1,1")
    client.send("SETP 0,0.05")  # in zone 2
    advance(frozen_clock, client, 1.0)
    assert client.query("RANGE? 0") == b"5\r\n"
    assert client.query("PID? 0") == b"+001.000E+03,+030.000E+00,+000.000E+00\r\n"
    for _ in range(20):
        advance(frozen_clock, client, 60.0)
    assert eng(client.query("KRDG? A")) == pytest.approx(0.05, rel=0.01)


# ---- chained queries, spellings, new commands ---------------------------------------------------


def test_chained_queries_are_answered_in_one_line(client: RawClient) -> None:
    reply = client.query("RDGK? 6;RDGST? 6")
    value, status = reply.rstrip(b"\r\n").split(b";")
    assert ENG.match(value + b"\r\n") and status == b"000"
    assert client.query("RDGK? 6") == client.query("KRDG? 6")  # both spellings, frozen clock
    assert client.query("RDGR? 6") == client.query("SRDG? 6")
    # spaces after the separator, a set command in the chain, a trailing separator
    assert client.query("SCAN 6,0; SCAN?;") == b"06,0\r\n"
    assert client.query("HTR?;HTRST? 0;RANGE? 0") == b"+00.000;0;0\r\n"
    # a malformed part is ignored, the rest still answered
    assert client.query("RDGST? 99;RDGST? 6") == b"000\r\n"


def test_control_input_takes_only_its_own_current_table(
    ls372: LakeShore372Server, client: RawClient
) -> None:
    client.send("INTYPE A,1,06,0,0,0,2")  # 100 nA, the largest
    assert client.query("INTYPE? A") == b"1,06,0,00,0,2\r\n"
    before = ls372.error_count
    for bad in ("INTYPE A,1,07,0,0,0,1", "INTYPE A,0,03,0,0,0,1", "INTYPE A,1,03,2,0,0,1"):
        client.send(bad)  # no 7th step, no voltage mode, no ROX102B autorange on input A
    assert client.query("INTYPE? A") == b"1,06,0,00,0,2\r\n"
    assert ls372.error_count == before + 3
    client.send("INTYPE 3,1,22,0,12,0,1")  # a scanner channel: 31.6 mA exists there
    assert client.query("INTYPE? 3") == b"1,22,0,12,0,1\r\n"


def test_faults_on_the_control_input_show_at_once_and_clear(
    ls372: LakeShore372Server, frozen_clock: SimClock, client: RawClient
) -> None:
    ls372.set_open_sensor("A", True)
    advance(frozen_clock, client, 1.0)
    assert client.query("RDGK? A;RDGST? A") == b"+000.000E+00;017\r\n"
    ls372.clear_faults("A")
    ls372.set_overrange("A", True)
    advance(frozen_clock, client, 1.0)
    assert client.query("RDGST? A") == b"016\r\n"
    ls372.clear_faults()
    advance(frozen_clock, client, 1.0)
    assert client.query("RDGST? A") == b"000\r\n"
    assert eng(client.query("RDGK? A")) > 0


def test_heater_open_and_short_report_htrst_and_stop_the_power(
    ls372: LakeShore372Server,
    base_fridge: DilutionFridge,
    frozen_clock: SimClock,
    client: RawClient,
) -> None:
    for command in ("OUTMODE 0,2,A,0,0,1,1", "RANGE 0,5", "MOUT 0,50"):
        client.send(command)
    advance(frozen_clock, client, 1.0)
    assert base_fridge.heater("mxc") > 0
    ls372.set_heater_short(True)
    advance(frozen_clock, client, 1.0)
    assert client.query("HTRST? 0") == b"2\r\n"
    assert base_fridge.heater("mxc") == 0.0
    ls372.set_heater_short(False)
    ls372.set_heater_open(True, output=1)
    advance(frozen_clock, client, 1.0)
    assert client.query("HTRST? 0;HTRST? 1") == b"0;1\r\n"
    assert base_fridge.heater("mxc") > 0


def test_warmup_heater_power_follows_its_htrset(
    base_fridge: DilutionFridge, frozen_clock: SimClock, client: RawClient
) -> None:
    client.send("HTRSET 1,1,0,0.2,1")  # 25 ohm, user limit 0.2 A
    for command in ("OUTMODE 1,2,A,0,0,1,1", "RANGE 1,1", "MOUT 1,50"):
        client.send(command)
    advance(frozen_clock, client, 1.0)
    assert eng(client.query("AOUT? 1")) == pytest.approx(50.0)
    assert base_fridge.heater("mxc") == pytest.approx((0.5 * 0.2) ** 2 * 25.0)


def test_curve_point_with_the_manuals_trailing_n_and_a_corrupted_point(
    ls372: LakeShore372Server, client: RawClient
) -> None:
    client.send('CRVHDR 21,"RX-102B","00011134",4,1.5,1')
    client.send("CRVPT 21,2,0.10191,470.000,N")  # the manual's own example
    assert client.query("CRVPT? 21,2") == b"+101.910E-03,+470.000E+00\r\n"
    ls372.corrupt_curve_point(21, 3)
    client.send("CRVPT 21,3,2.5,300")
    assert client.query("CRVPT? 21,3") != b"+250.000E-02,+300.000E+00\r\n"
    client.send("CRVPT 21,3,2.5,300")  # the fault hits one write only
    assert client.query("CRVPT? 21,3") == b"+250.000E-02,+300.000E+00\r\n"
    client.send('CRVHDR 22,"spline","",7,10,1')
    client.send("CRVPT 22,1,1000,5,0.25")
    assert client.query("CRVPT? 22,1") == b"+100.000E+01,+500.000E-02,+250.000E-03\r\n"


def test_filter_on_all_measurement_channels(client: RawClient) -> None:
    client.send("FILTER 0,0,20,5")
    assert client.query("FILTER? 1;FILTER? 16") == b"0,020,05;0,020,05\r\n"
    assert client.query("FILTER? A") == b"1,010,10\r\n"


def test_received_commands_are_bounded(ls372: LakeShore372Server, client: RawClient) -> None:
    kept = ls372.received.maxlen
    assert kept is not None and kept >= 1000
    ls372.received.extend(["*OPC?"] * (kept + 5))  # as if the lab had run for days
    assert client.query("*OPC?") == b"1\r\n"
    assert len(ls372.received) == kept
