"""The 33500 driver against the simulated generator over a real TCP socket (PyVISA), into the TES.

The last test wires the simulated generator into a TES bias line the way the
simulated lab is to do it, and checks that the TES answers the square wave the
driver set up with its small-signal response.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.errors import InstrumentError, SettingOutOfRange
from drivers.keysight.awg33500 import ErrorCode, Function, Keysight33500, OutputPolarity
from simulators.physics.tes import SET_B, TES, bias_for_resistance
from simulators.physics.tes_bias_line import BiasLine, GeneratorOutput
from simulators.physics.tes_modulation import bias_current_response
from simulators.servers.awg33500 import AWG33500Server


def synced(awg: Keysight33500) -> Keysight33500:
    """Wait until the unit has worked through every command sent (``*OPC?``): writes get no reply."""
    assert awg.ask("*OPC?").strip() == "1"
    return awg


@pytest.fixture
def rig(start_server, connect):
    outputs: list[tuple[int, GeneratorOutput]] = []
    server = start_server(AWG33500Server(on_output=lambda ch, out: outputs.append((ch, out))))
    awg = connect(Keysight33500, server)
    return server, awg, outputs


def test_identity_and_defaults_after_reset(rig) -> None:
    server, awg, _ = rig
    assert awg.identify().split(",")[:2] == ["Keysight Technologies", "33522B"]
    awg.reset()
    ch = awg.ch_1
    assert (ch.function, ch.frequency, ch.amplitude, ch.offset, ch.load) == (
        Function.SINE, 1000.0, 0.1, 0.0, 50.0)
    assert ch.output_enabled is False and awg.ch_2.output_enabled is False
    assert awg.next_error().code == 0


def test_configure_and_switch_on_a_small_square_wave(rig) -> None:
    server, awg, outputs = rig
    awg.reset()
    awg.ch_1.configure(function=Function.SQUARE, frequency=100.0, amplitude=0.2, offset=0.0,
                       duty_cycle=50.0, load=math.inf)
    synced(awg).ch_1.output_enabled = True
    synced(awg)
    state = server.channels[1]
    assert (state.function, state.frequency, state.duty, state.load) == ("SQU", 100.0, 50.0,
                                                                          math.inf)
    assert state.vpp_open == pytest.approx(0.2) and state.output_on
    channel, out = outputs[-1]
    assert channel == 1 and out.enabled and out.function == "SQU" and out.vpp == pytest.approx(0.2)
    # Telling the unit about a 50 Ohm load halves the numbers read back, not the output.
    awg.ch_1.load = 50
    assert awg.ch_1.amplitude == pytest.approx(0.1)
    assert server.output(1).vpp == pytest.approx(0.2)
    awg.ch_1.polarity = OutputPolarity.INVERTED
    assert synced(awg) and server.output(1).inverted
    awg.ch_1.output_off()
    assert synced(awg) and not server.output(1).enabled
    assert server.channels[2].output_on is False  # channel 2 untouched


def test_the_units_own_refusals_reach_the_error_queue(rig) -> None:
    server, awg, _ = rig
    awg.write("SOUR2:FREQ 1e9")  # past the validators, as a raw command
    assert awg.ch_2.frequency == 30e6
    (entry,) = awg.errors()
    assert entry.known is ErrorCode.DATA_OUT_OF_RANGE
    awg.write("SOUR1:BOGUS 3")
    with pytest.raises(InstrumentError, match="-113"):
        awg.raise_errors("test")
    with pytest.raises(SettingOutOfRange):
        awg.ch_1.frequency = 1e9  # refused before sending
    assert awg.errors() == []


def test_daemon_specs_work_over_the_socket(rig) -> None:
    server, awg, _ = rig
    awg.reset()
    controls = {s.name: s for s in awg.control_specs()}
    controls["ch2.frequency"].apply(250.0, "awg")
    controls["ch2.output_enabled"].apply(True, "awg")
    assert synced(awg) and server.channels[2].frequency == 250.0 and server.channels[2].output_on
    polls = {s.name: s for s in awg.poll_specs()}
    assert polls["ch2.frequency"].sample("awg")[0].value == 250.0
    assert polls["ch2.output_enabled"].sample("awg")[0].value == 1.0
    actions = {s.name: s for s in awg.action_specs()}
    actions["ch2.configure"].invoke("awg", function="SIN", amplitude=0.5, offset=0.1)
    assert server.channels[2].function == "SIN"
    actions["ch2.output_off"].invoke("awg")
    assert synced(awg) and not server.channels[2].output_on


def test_the_tes_answers_the_generators_square_wave_with_its_small_signal_response(
        start_server, connect) -> None:
    tes = TES(SET_B)
    tes.set_bias(bias_for_resistance(SET_B, 0.6), from_normal=True)
    line = BiasLine(tes, r_couple=100e3)
    server = start_server(AWG33500Server(on_output=line.follow(1)))
    awg = connect(Keysight33500, server)
    op_before = tes.state
    awg.ch_1.configure(function="SQU", frequency=200.0, amplitude=0.2, offset=0.0,
                       load=math.inf)
    awg.ch_1.output_enabled = True
    assert synced(awg) and tes.state == op_before  # a symmetric square wave leaves the DC bias alone
    dt = 1e-6
    t = np.arange(5000) * dt  # one period
    delta = line.modulation_current(t, dt)
    # The fundamental of a +-0.1 V square through 100 kOhm, times dI_TES/dI_bias at 200 Hz.
    fundamental = 2 * np.fft.rfft(delta)[1] / t.size
    drive = (4 / np.pi) * 0.1 * line.transconductance
    expected = drive * bias_current_response(SET_B, tes.state, np.array([200.0]))[0]
    assert abs(fundamental - (-1j) * expected) < 0.01 * abs(expected)
    # An offset moves the operating point along the I-V curve.
    awg.ch_1.offset = 1.0
    assert synced(awg) and tes.state.i_bias == pytest.approx(op_before.i_bias
                                                             + line.transconductance)
    awg.ch_2.configure(function="DC", offset=2.0, load=math.inf)  # not wired to this TES
    awg.ch_2.output_enabled = True
    assert synced(awg) and line.generator.offset == pytest.approx(1.0)
