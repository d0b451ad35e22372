"""The Lake Shore 372 driver's new properties against the simulated 372, over TCP through PyVISA.

Faults are set in the simulator (open sensor, over-range, heater open or
short, a corrupted curve point) and must arrive as the instrument's verdict
on the driver's readings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from drivers.lakeshore import LakeShore372
from drivers.lakeshore.curves import CurveVerifyError, Pacer
from drivers.lakeshore.ls372_codes import HeaterDisplay, OutputMode, SensorUnits
from drivers.lakeshore.ls372_heater import (
    SampleHeaterSetup,
    SampleZone,
    WarmupHeaterSetup,
    WarmupZone,
)
from drivers.lakeshore.ls372_intype import ControlInputType
from drivers.readings import Quality

sim_clock = pytest.importorskip("simulators.clock")
sim_fridge = pytest.importorskip("simulators.physics.fridge")
sim_372 = pytest.importorskip("simulators.servers.lakeshore372")

TIME_SCALE = 1000.0
DEADLINE_S = 20.0
FAST = Pacer(interval_s=0.0, per_second=10**6)  # the simulator needs no pacing


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` (which talks to the instrument) until it is truthy or time is up."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(start_server: Callable[[Any], Any]) -> Any:
    fridge = sim_fridge.DilutionFridge(clock=sim_clock.SimClock(time_scale=TIME_SCALE))
    return start_server(sim_372.LakeShore372Server(fridge, port=0))


@pytest.fixture
def ls(server: Any, connect: Callable[..., Any]) -> LakeShore372:
    return connect(LakeShore372, server, time_scale=TIME_SCALE, scan_refresh_s=0.0)


def test_control_input_faults_arrive_flagged_and_clear(ls: LakeShore372, server: Any) -> None:
    good = ls.ch_A.kelvin_reading
    assert good.ok and 0.003 < good.value < 0.1
    server.set_open_sensor("A", True)
    opened = until(lambda: (r := ls.ch_A.kelvin_reading).quality and r, "the open sensor")
    assert opened.quality == Quality.SENSOR_ERROR | Quality.OVERRANGE
    assert opened.note == "RDGST 017: CS OVL, R.OVER" and opened.value == 0.0
    server.clear_faults("A")
    server.set_overrange("A", True)
    over = until(lambda: (r := ls.ch_A.resistance_reading).quality == Quality.OVERRANGE and r,
                 "the over-range")
    assert over.note == "RDGST 016: R.OVER"
    server.clear_faults()
    assert until(lambda: ls.ch_A.kelvin_reading.ok, "a good reading again")


def test_a_scanner_channel_shows_its_fault_when_scanned(ls: LakeShore372, server: Any) -> None:
    ls.select_channel(6, autoscan=False)
    specs = {s.name: s for s in ls.poll_specs()}
    server.set_overrange(6, True)
    first, = until(lambda: [r for r in specs["ch6"].sample("ls372") if not r.ok],
                   "channel 6 to read over range")
    assert first.quality == Quality.OVERRANGE
    server.clear_faults(6)
    until(lambda: specs["ch6"].sample("ls372")[0].ok, "channel 6 to read again")


def test_control_input_type_round_trip(ls: LakeShore372) -> None:
    setup = ControlInputType(10e-9, False, False, SensorUnits.OHMS)
    ls.ch_A.input_type = setup
    assert ls.ch_A.input_type == setup
    ls.ch_A.current_excitation = 3.16e-9
    ls.ch_A.units = SensorUnits.KELVIN
    assert ls.ch_A.input_type == ControlInputType(3.16e-9, False, False, SensorUnits.KELVIN)


def test_warmup_and_still_outputs_read(ls: LakeShore372) -> None:
    assert ls.warmup_heater.heater_output == 0.0  # off
    ls.still_heater.still_output = 20.0
    until(lambda: ls.still_heater.heater_output == pytest.approx(20.0), "the still output")
    ls.warmup_heater.mode = OutputMode.OPEN_LOOP
    ls.warmup_heater.manual_output = 30.0
    ls.warmup_heater.heater_range = True
    until(lambda: ls.warmup_heater.heater_output == pytest.approx(30.0), "the warm-up output")
    assert ls.warmup_heater.heater_output_reading.ok
    ls.all_heaters_off()


def test_heater_setups_round_trip(ls: LakeShore372) -> None:
    ls.sample_heater.heater_setup = SampleHeaterSetup(1500.5, HeaterDisplay.POWER)
    assert ls.sample_heater.heater_setup == SampleHeaterSetup(1500.5, HeaterDisplay.POWER)
    warm = WarmupHeaterSetup(25.0, 0.0, 0.25, HeaterDisplay.CURRENT)
    ls.warmup_heater.heater_setup = warm
    assert ls.warmup_heater.heater_setup == warm
    ls.warmup_heater.heater_setup = WarmupHeaterSetup(50.0, 0.45, 0.0, HeaterDisplay.POWER)
    assert ls.warmup_heater.heater_setup.max_current == 0.45


def test_zone_tables_round_trip(ls: LakeShore372) -> None:
    rows = [SampleZone(0.05, 100, 50, 0, 0, 31.6e-6, 0.1, False, False),
            SampleZone(0.5, 200, 30, 1, 5, 1e-3, 1.5, True, False)]
    ls.sample_heater.zones = rows
    assert ls.sample_heater.zones[:2] == rows
    row = WarmupZone(10.0, 10, 10, 0, 50, True, 2.0, False, True)
    ls.warmup_heater.set_zone(10, row)
    assert ls.warmup_heater.zone(10) == row


def test_tlimit_backstop_switches_the_heater_off(ls: LakeShore372) -> None:
    specs = {c.name: c for c in ls.control_specs()}
    specs["tlimit_A"].apply(0.03, "ls372")
    assert specs["tlimit_A"].read_back("ls372") == pytest.approx(0.03)
    heater = ls.sample_heater
    heater.mode = OutputMode.OPEN_LOOP
    heater.heater_range = 10e-3
    heater.manual_output = 100.0  # 12 mW: far above what the limit allows
    until(lambda: heater.heater_range == 0.0, "the temperature limit to switch the heater off")
    assert ls.ch_A.kelvin > 0.03


@pytest.mark.parametrize(("fault", "note"), [("open", "HTRST 1: open load"),
                                             ("short", "HTRST 2: short")])
def test_heater_faults_flag_the_heater_output(ls: LakeShore372, server: Any, fault: str,
                                              note: str) -> None:
    assert ls.sample_heater.heater_output_reading.ok
    getattr(server, f"set_heater_{fault}")(True)
    reading = ls.sample_heater.heater_output_reading
    assert reading.quality == Quality.OUTPUT_FAULT and reading.note == note
    getattr(server, f"set_heater_{fault}")(False, output=0)
    getattr(server, f"set_heater_{fault}")(True, output=1)
    assert ls.sample_heater.heater_output_reading.ok
    assert ls.warmup_heater.heater_output_reading.note == note


def test_curve_upload_detects_a_corrupted_point(ls: LakeShore372, server: Any) -> None:
    points = [(1000.0 * (1 + k), 4.0 / (1 + k) ** 2) for k in range(12)]
    ls.upload_curve(41, points, name="good", pacer=FAST)
    server.corrupt_curve_point(42, 7)
    with pytest.raises(CurveVerifyError) as info:
        ls.upload_curve(42, points, name="bad", serial="S9", pacer=FAST)
    err = info.value
    assert (err.curve, err.index) == (42, 7)
    assert err.sent == (7000.0, pytest.approx(4.0 / 49, rel=1e-5))
    assert err.read[0] != pytest.approx(7000.0, rel=1e-3)
    assert "curve 42 point 7" in str(err)


def test_curve_upload_is_paced_on_the_wire(ls: LakeShore372, server: Any) -> None:
    before = len(server.received)
    started = time.monotonic()
    ls.upload_curve(43, [(100.0, 10.0), (200.0, 5.0), (400.0, 1.0)], name="paced")
    elapsed = time.monotonic() - started
    sent = list(server.received)[before:]
    assert len(sent) == 1 + 3 + 1 + 1 + 4  # header, points, end; header and 4 points read back
    assert elapsed >= (len(sent) - 1) * 0.05 - 0.01
