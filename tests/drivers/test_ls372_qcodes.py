"""QCoDeS's own Lake Shore 372 driver against our simulated 372.

A second, independent client of the simulator: what QCoDeS sends (spaces
after the commas, ``KRDG?``/``SRDG?`` spellings, group parameters read and
written whole) must be understood, and what the simulator answers must parse
in QCoDeS. The commands covered: readings and their status, heater range,
setpoint, PID, output mode, temperature limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

qcodes_372 = pytest.importorskip("qcodes.instrument_drivers.Lakeshore.Lakeshore_model_372")
sim_clock = pytest.importorskip("simulators.clock")
sim_fridge = pytest.importorskip("simulators.physics.fridge")
sim_372 = pytest.importorskip("simulators.servers.lakeshore372")

_names = itertools.count()


@pytest.fixture
def server(start_server: Any) -> Any:
    fridge = sim_fridge.DilutionFridge(clock=sim_clock.SimClock(time_scale=100.0))
    return start_server(sim_372.LakeShore372Server(fridge, port=0))


@pytest.fixture
def lakeshore(server: Any) -> Iterator[Any]:
    instrument = qcodes_372.LakeshoreModel372(
        f"ls372_sim_{next(_names)}",
        f"TCPIP::127.0.0.1::{server.port}::SOCKET",
        visalib="@py",
        print_connect_message=False,
    )
    try:
        yield instrument
    finally:
        instrument.close()


def test_readings_and_status(lakeshore: Any, server: Any) -> None:
    assert lakeshore.IDN()["model"] == "372"
    mxc = lakeshore.ch06
    assert 0.003 < mxc.temperature() < 0.1
    assert 50e3 < mxc.sensor_raw() < 100e3
    assert mxc.sensor_status() == "OK"
    server.set_overrange(6, True)
    server.state.select_channel(6, False, server.fridge.time)  # measured again after its pause
    server.fridge.clock.advance(10.0)
    assert mxc.sensor_status() == "R. OVER"
    assert mxc.temperature() == 0.0


def test_input_settings(lakeshore: Any) -> None:
    ch = lakeshore.ch02
    assert ch.enabled() is True and ch.dwell() == 7 and ch.pause() == 3
    ch.dwell(12)
    assert ch.dwell() == 12
    assert ch.excitation_mode() == "voltage" and ch.range() == "2.00 kOhm"
    ch.t_limit(1.5)
    assert ch.t_limit() == 1.5
    ch.sensor_name("Cold plate RuOx")  # QCoDeS wants at least 15 characters here
    assert ch.sensor_name() == "Cold plate RuOx"


def test_heater_range_setpoint_pid_and_output_mode(lakeshore: Any, server: Any) -> None:
    heater = lakeshore.sample_heater
    heater.output_range("3.16mA")
    assert heater.output_range() == "3.16mA"
    assert server.state.outputs[0].loop.range == 5
    heater.setpoint(0.05)
    assert heater.setpoint() == pytest.approx(0.05)
    heater.P(20)
    heater.I(30)
    heater.D(1)
    assert (heater.P(), heater.I(), heater.D()) == (20.0, 30.0, 1.0)
    # QCoDeS reads OUTMODE as a group whose input is a number: give it a scanner channel
    lakeshore.write("OUTMODE 0,2,6,0,0,1,1")
    assert heater.mode() == "open_loop" and heater.input_channel() == 6
    heater.mode("closed_loop")
    heater.input_channel(5)
    assert (heater.mode(), heater.input_channel(), heater.delay()) == ("closed_loop", 5, 1)
    assert server.state.outputs[0].loop.mode == 5 and server.state.outputs[0].loop.source == "5"
    heater.output_range("off")
    assert heater.output_range() == "off"  # answered after the write was carried out
    assert server.state.outputs[0].loop.range == 0
    assert server.error_count == 0  # everything QCoDeS sent was understood
