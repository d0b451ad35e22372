"""The Lake Shore 372 driver against the simulated 372, over TCP through PyVISA.

The simulated fridge runs on a :class:`~simulators.clock.SimClock` much faster
than real time, so the scanner visits channels and the mixing chamber warms
within seconds; loops poll the instrument with a wall-clock deadline and no
sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from drivers.errors import SettingOutOfRange
from drivers.lakeshore import LakeShore372
from drivers.lakeshore.ls372_codes import (
    CurveFormat,
    ExcitationMode,
    HeaterDisplay,
    OutputMode,
    Polarity,
    ReadingStatus,
    SensorUnits,
)
from drivers.lakeshore.ls372_heater import SampleHeaterSetup
from drivers.lakeshore.ls372_inputs import FilterSettings
from drivers.lakeshore.ls372_outputs import PID372, OutputSetup, Ramp372

sim_clock = pytest.importorskip("simulators.clock")
sim_fridge = pytest.importorskip("simulators.physics.fridge")
sim_372 = pytest.importorskip("simulators.servers.lakeshore372")

TIME_SCALE = 1000.0  # simulated seconds per wall second
DEADLINE_S = 20.0


def until(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``condition`` (which talks to the instrument) until it is truthy or time is up."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
    raise AssertionError(f"timed out waiting for {what}")


def _server(start_server: Callable[[Any], Any], time_scale: float) -> Any:
    fridge = sim_fridge.DilutionFridge(clock=sim_clock.SimClock(time_scale=time_scale))
    return start_server(sim_372.LakeShore372Server(fridge, port=0))


@pytest.fixture
def server(start_server: Callable[[Any], Any]) -> Any:
    return _server(start_server, TIME_SCALE)


@pytest.fixture
def ls(server: Any, connect: Callable[..., Any]) -> LakeShore372:
    return connect(LakeShore372, server, time_scale=TIME_SCALE, scan_refresh_s=0.0)


@pytest.fixture
def slow_ls(start_server: Callable[[Any], Any], connect: Callable[..., Any]) -> LakeShore372:
    """A 372 whose scanner steps slowly enough (tens of ms) to see every channel."""
    return connect(LakeShore372, _server(start_server, 20.0), time_scale=20.0)


def test_identity_and_readings(ls: LakeShore372) -> None:
    maker, model, _serial, _firmware = ls.identity
    assert (maker, model) == ("LSCI", "MODEL372")
    mxc = ls.ch_A.kelvin  # the control input sits on the mixing chamber
    assert 0.003 < mxc < 0.1
    assert ls.ch_A.resistance > 0
    assert ls.ch_A.status == ReadingStatus(0)
    assert ls.ch_1.excitation_power >= 0
    assert isinstance(ls.ch_3.status, ReadingStatus)


def test_input_settings_round_trip(ls: LakeShore372) -> None:
    ls.ch_6.dwell = 12
    ls.ch_6.pause = 4
    assert (ls.ch_6.dwell, ls.ch_6.pause) == (12, 4)
    assert ls.scan.timings[6].dwell == 12  # the tracker follows what the driver sent
    ls.ch_6.filter = FilterSettings(True, 20, 30)
    assert ls.ch_6.filter == FilterSettings(True, 20, 30)
    ls.ch_6.name = "MXC RuOx"
    assert ls.ch_6.name == "MXC RuOx"
    ls.ch_6.temperature_limit = 1.5
    assert ls.ch_6.temperature_limit == 1.5
    ls.measurement_frequency = 13.7
    assert ls.measurement_frequency == 13.7
    ls.ch_A.excitation_frequency = 16.2
    assert (ls.ch_A.excitation_frequency, ls.measurement_frequency) == (16.2, 13.7)
    ls.ch_6.voltage_excitation = 63.2e-6
    ls.ch_6.resistance_range = 63.2e3
    setup = ls.ch_6.input_type
    assert setup.mode == ExcitationMode.VOLTAGE and setup.excitation == 63.2e-6
    assert setup.resistance_range == 63.2e3 and setup.units == SensorUnits.KELVIN


def test_refused_settings_never_reach_the_simulator(ls: LakeShore372, server: Any) -> None:
    before = len(server.received)
    with pytest.raises(SettingOutOfRange):
        ls.sample_heater.heater_range = 1.0
    with pytest.raises(SettingOutOfRange):
        ls.ch_6.dwell = 0
    assert len(server.received) == before


def test_scanner_moves_through_the_enabled_channels(slow_ls: LakeShore372) -> None:
    ls = slow_ls
    enabled = {ch for ch in range(1, 17) if ls.inputs[ch].enabled}
    assert len(enabled) >= 3
    for ch in enabled:  # short visits: a whole cycle takes a few tens of simulated seconds
        ls.inputs[ch].scan_settings = replace(ls.inputs[ch].scan_settings, dwell=1, pause=3)
    ls.select_channel(min(enabled), autoscan=True)
    seen: list[int] = []

    def visited_all() -> bool:
        channel = ls.active_channel
        if not seen or seen[-1] != channel:
            seen.append(channel)
        return set(seen) >= enabled

    until(visited_all, "the scanner to visit every enabled channel")
    assert set(seen) <= enabled
    # the order is the scan order: each step goes to the next enabled channel
    order = sorted(enabled)
    for a, b in zip(seen, seen[1:], strict=False):
        assert b == order[(order.index(a) + 1) % len(order)]


def test_fresh_follows_the_scanner(ls: LakeShore372) -> None:
    ls.select_channel(1, autoscan=False)  # park the scanner away from channel 6
    specs = {s.name: s for s in ls.poll_specs()}
    mxc, fresh = specs["ch6"], specs["ch6"].fresh
    assert fresh is not None
    assert fresh()  # never read yet: the held reading is worth one read
    first = mxc.read().value
    assert 0.003 < first < 0.1
    for _ in range(5):
        assert not fresh()  # channel 6 is not being measured: nothing new
    ls.select_channel(5, autoscan=True)  # channel 6 comes next
    until(fresh, "a fresh reading of channel 6")
    assert 0.003 < mxc.read().value < 0.1
    assert ls.scan.measured_until(6) is not None


def test_sample_heater_raises_the_mixing_chamber(ls: LakeShore372) -> None:
    heater = ls.sample_heater
    heater.heater_setup = SampleHeaterSetup(120.0, HeaterDisplay.CURRENT)
    assert heater.heater_setup.resistance == 120.0
    base = ls.ch_A.kelvin
    heater.mode = OutputMode.OPEN_LOOP
    assert heater.mode == OutputMode.OPEN_LOOP
    heater.heater_range = 1e-3
    assert heater.heater_range == 1e-3
    heater.manual_output = 60.0  # 0.6 mA into 120 ohm: ~43 uW
    assert heater.manual_output == 60.0
    assert heater.heater_output > 0

    warm = until(lambda: (t := ls.ch_A.kelvin) > base + 0.015 and t, "the mixing chamber to warm")
    assert warm > base + 0.015
    ls.all_heaters_off()
    assert heater.heater_range == 0.0
    assert heater.heater_status.name == "OK"


def test_setpoint_pid_and_ramp(ls: LakeShore372) -> None:
    out = ls.sample_heater
    out.pid = PID372(20, 30, 0)
    assert out.pid == PID372(20.0, 30.0, 0.0)
    out.setpoint = 0.02
    assert out.setpoint == pytest.approx(0.02)
    # the setpoint ramps while the loop controls: closed loop on input A, heater on
    out.setup = OutputSetup(OutputMode.CLOSED_LOOP, "A", False, Polarity.UNIPOLAR, True, 1)
    out.heater_range = 1e-4
    out.start_ramp(0.05, 0.5)
    assert out.ramp == Ramp372(True, 0.5)
    assert isinstance(out.ramping, bool)
    until(lambda: out.setpoint > 0.0201, "the setpoint to ramp")
    out.stop_ramp()
    out.off()
    assert out.ramp_enabled is False
    ls.still_heater.still_output = 12.5
    assert ls.still_heater.still_output == pytest.approx(12.5)


def test_curve_upload_and_read_back(ls: LakeShore372) -> None:
    points = [(1200.0 * (1 + k), 4.0 / (1 + k) ** 2) for k in range(20)]
    ls.upload_curve(40, points, name="MXC cal", serial="X123")
    header, back = ls.read_curve(40)
    assert header.name == "MXC cal" and header.serial == "X123"
    assert header.format == CurveFormat.OHM_PER_K
    assert back == [
        (pytest.approx(r, rel=1e-5), pytest.approx(t, rel=1e-5)) for r, t in sorted(points)
    ]


def test_daemon_view_against_the_simulator(ls: LakeShore372) -> None:
    polls = {s.name: s for s in ls.poll_specs()}
    assert {"ch6", "ch6_ohms", "A", "sample_heater", "still"} <= set(polls)
    assert polls["A"].read().value > 0
    controls = {c.name: c for c in ls.control_specs()}
    controls["setpoint"].set(0.03)
    assert controls["setpoint"].get is not None
    assert controls["setpoint"].get() == pytest.approx(0.03)
    actions = {a.name: a for a in ls.action_specs()}
    actions["all_heaters_off"].call()
    assert ls.sample_heater.heater_range == 0.0
