"""The Lake Shore 336 driver against the simulated 336, over TCP through PyVISA."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from drivers.errors import SettingOutOfRange
from drivers.lakeshore import LakeShore336
from drivers.lakeshore.curves import CurveVerifyError, Pacer
from drivers.lakeshore.ls336 import (
    PID336,
    HeaterRange,
    HeaterSetup336,
    InputStatus,
    InputType336,
    InputUnits,
    OutputMode336,
    OutputSetup336,
    Ramp336,
    SensorType,
)
from drivers.lakeshore.ls372_codes import CurveFormat, HeaterDisplay
from drivers.readings import Quality

sim_clock = pytest.importorskip("simulators.clock")
sim_fridge = pytest.importorskip("simulators.physics.fridge")
sim_336 = pytest.importorskip("simulators.servers.lakeshore336")

TIME_SCALE = 1000.0
DEADLINE_S = 20.0


def until(condition: Callable[[], Any], what: str) -> Any:
    """Poll ``condition`` (which talks to the instrument) until truthy or the deadline."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        result = condition()
        if result:
            return result
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(start_server: Callable[[Any], Any]) -> Any:
    fridge = sim_fridge.DilutionFridge(clock=sim_clock.SimClock(time_scale=TIME_SCALE))
    return start_server(sim_336.LakeShore336Server(fridge, port=0))


@pytest.fixture
def lc(server: Any, connect: Callable[..., Any]) -> LakeShore336:
    return connect(LakeShore336, server)


def test_identity_and_readings(lc: LakeShore336) -> None:
    assert lc.identity[:2] == ["LSCI", "MODEL336"]
    assert 20 < lc.ch_A.kelvin < 80  # diode on the 50 K plate
    assert 1 < lc.ch_B.kelvin < 10  # diode on the 4 K plate
    assert 0.1 < lc.ch_B.sensor < 3  # diode volts
    assert lc.ch_A.status == InputStatus(0)
    assert lc.ch_D.input_type.sensor_type == SensorType.DISABLED


def test_input_settings_round_trip(lc: LakeShore336) -> None:
    setup = lc.ch_C.input_type
    assert setup.sensor_type == SensorType.NTC_RTD
    lc.ch_C.input_type = setup
    assert lc.ch_C.input_type == setup
    curve = lc.ch_B.curve
    lc.ch_B.curve = curve
    assert lc.ch_B.curve == curve
    lc.ch_B.name = "4K plate"
    assert lc.ch_B.name == "4K plate"


def test_output_settings_round_trip(lc: LakeShore336) -> None:
    out = lc.output_2
    out.setup = OutputSetup336(OutputMode336.CLOSED_LOOP, "B", False)
    assert out.setup == OutputSetup336(OutputMode336.CLOSED_LOOP, "B", False)
    out.heater_setup = HeaterSetup336(50.0, 1.0, 0.0, HeaterDisplay.CURRENT)
    assert out.heater_setup == HeaterSetup336(50.0, 1.0, 0.0, HeaterDisplay.CURRENT)
    out.pid = PID336(50, 20, 0)
    assert out.pid == PID336(50.0, 20.0, 0.0)
    out.manual_output = 12.5
    assert out.manual_output == 12.5
    out.ramp = Ramp336(False, 1.0)
    assert out.ramp == Ramp336(False, 1.0)
    out.heater_range = HeaterRange.LOW
    assert out.heater_range is HeaterRange.LOW
    assert out.heater_status.name == "OK"
    lc.all_heaters_off()
    assert out.heater_range is HeaterRange.OFF


def test_refused_settings_never_reach_the_simulator(lc: LakeShore336, server: Any) -> None:
    before = len(server.received)
    with pytest.raises(SettingOutOfRange):
        lc.output_1.heater_range = 4
    with pytest.raises(SettingOutOfRange):
        lc.output_1.pid = (0, 0, 0)
    assert len(server.received) == before


def test_heater_warms_the_4k_plate_in_closed_loop_with_a_ramp(lc: LakeShore336) -> None:
    out = lc.output_2
    start = lc.ch_B.kelvin
    out.setup = OutputSetup336(OutputMode336.CLOSED_LOOP, "B", False)
    out.pid = PID336(50, 20, 0)
    out.setpoint = start
    out.heater_range = HeaterRange.HIGH
    out.start_ramp(start + 2.0, 10.0)
    assert out.ramp == Ramp336(True, 10.0)
    until(lambda: out.heater_output > 0, "the heater to come on")
    warm = until(lambda: (t := lc.ch_B.kelvin) > start + 0.5 and t, "the 4 K plate to warm")
    assert warm > start + 0.5
    out.off()
    assert out.heater_range is HeaterRange.OFF


def test_daemon_view_against_the_simulator(lc: LakeShore336) -> None:
    polls = {s.name: s for s in lc.poll_specs()}
    assert set(polls) == {"A", "B", "C", "heater1", "heater2"}  # D is disabled
    assert polls["B"].read().value > 1
    controls = {c.name: c for c in lc.control_specs()}
    controls["setpoint1"].set(50.0)
    assert controls["setpoint1"].get is not None
    assert controls["setpoint1"].get() == pytest.approx(50.0)


# ---- readings with the verdict, ranges, the shared exchange, curves, heater faults --------------


def test_readings_carry_the_status_and_share_one_exchange(lc: LakeShore336, server: Any) -> None:
    readings = lc.input_readings
    assert [r.ok for r in readings] == [True, True, True, False]  # D is disabled: invalid
    kelvins = lc.kelvins
    assert len(kelvins) == 4 and 20 < kelvins[0] < 80 and kelvins[3] == 0.0
    server.set_open_sensor("B", True)
    specs = {s.name: s for s in lc.poll_specs()}
    before = len(server.received)
    samples = {name: specs[name].sample("ls336")[0] for name in ("A", "B", "C")}
    assert len(server.received) == before + 1  # three inputs, one exchange
    assert samples["A"].ok and 20 < samples["A"].value < 80
    assert samples["B"].quality == Quality.INVALID | Quality.OVERRANGE
    assert samples["B"].note == "RDGST 129: invalid reading, sensor units overrange"
    server.clear_faults("B")
    assert lc.ch_B.kelvin_reading.ok


def test_input_ranges_round_trip_in_physical_units(lc: LakeShore336) -> None:
    lc.ch_C.input_type = InputType336(SensorType.NTC_RTD, False, 30e3, True, InputUnits.KELVIN)
    assert lc.ch_C.input_range == 30e3
    lc.ch_C.input_range = 1e3
    assert lc.ch_C.input_type == InputType336(SensorType.NTC_RTD, False, 1e3, True,
                                              InputUnits.KELVIN)
    lc.ch_A.input_range = 10.0
    assert lc.ch_A.input_type.input_range == 10.0


def test_curve_upload_verified_and_a_corrupted_point_found(lc: LakeShore336, server: Any) -> None:
    fast = Pacer(interval_s=0.0, per_second=10**6)
    diode = [(1.6448, 1.4), (1.4222, 10.0), (1.0195, 77.35), (0.5596, 300.0)]
    lc.upload_curve(30, diode, name="DT-670 cal", serial="D123", format=CurveFormat.V_PER_K,
                    pacer=fast)
    header, back = lc.read_curve(30, pacer=fast)
    assert (header.name, header.format) == ("DT-670 cal", CurveFormat.V_PER_K)
    assert back == [(pytest.approx(v), pytest.approx(t)) for v, t in sorted(diode)]
    server.corrupt_curve_point(31, 2)
    with pytest.raises(CurveVerifyError) as info:
        lc.upload_curve(31, diode, name="x", format=CurveFormat.V_PER_K, pacer=fast)
    assert (info.value.curve, info.value.index) == (31, 2)


def test_heater_faults_flag_the_output(lc: LakeShore336, server: Any) -> None:
    assert lc.output_1.heater_output_reading.ok
    server.set_heater_short(True, output=1)
    reading = lc.output_1.heater_output_reading
    assert reading.quality == Quality.OUTPUT_FAULT and reading.note == "HTRST 2: short"
    assert lc.output_2.heater_output_reading.ok
