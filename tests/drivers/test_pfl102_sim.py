"""The PFL-102 driver against its simulator over a real TCP socket through PyVISA.

The PFL-102 never answers, so each test waits (poll with a timeout) until the
server has accepted the frames it expects, then compares the simulator's
decoded state with what the driver reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from drivers.squid import LoopMode
from drivers.star.pfl102 import PFL102, FeedbackResistor, IntegratorCapacitor, SignalInjection
from simulators.physics.squid import FluxLockedLoop
from simulators.servers.pfl102 import PFL102Server


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "simulator did not get there in time"
        tick.wait(0.001)


@pytest.fixture
def server() -> Iterator[PFL102Server]:
    sim = PFL102Server({1: FluxLockedLoop(), 2: FluxLockedLoop()}, port=0).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def pfl(server: PFL102Server) -> Iterator[PFL102]:
    driver = PFL102(server.resource, channels=(1, 2), visa_library="@py", timeout=2000)
    try:
        yield driver
    finally:
        driver.adapter.close()


def accepted(server: PFL102Server, count: int) -> None:
    """Wait until the server has accepted ``count`` frames in total; none malformed."""
    wait_for(lambda: server.frames + server.malformed >= count)
    assert server.malformed == 0
    assert server.unaddressed == 0
    assert server.frames == count


def test_parameters_reach_the_card(server: PFL102Server, pfl: PFL102) -> None:
    squid = pfl.ch_1
    squid.bias_current = 25e-6
    squid.flux_offset = 40e-6
    squid.output_offset = 0.1e-3
    squid.array_bias = 50e-6
    squid.array_flux = 120e-6
    accepted(server, 5)
    state = server.state(1)
    assert state.value("squid_bias") == pytest.approx(squid.bias_current, abs=1e-12)
    assert state.value("squid_flux") == pytest.approx(squid.flux_offset, abs=1e-12)
    assert state.value("output_offset") == pytest.approx(squid.output_offset, abs=1e-12)
    assert state.value("array_bias") == pytest.approx(squid.array_bias, abs=1e-12)
    assert state.value("array_flux") == pytest.approx(squid.array_flux, abs=1e-12)
    assert state.codes is not None
    assert state.codes["squid_bias"] == 51


def test_control_word_fields_reach_the_card(server: PFL102Server, pfl: PFL102) -> None:
    squid = pfl.ch_1
    squid.feedback_resistor = FeedbackResistor.R_10K
    squid.integrator_capacitor = IntegratorCapacitor.C_150N
    squid.test_input = SignalInjection.SQUID_FLUX
    squid.lock()
    accepted(server, 4)
    state = server.state(1)
    assert state.word == squid.control_word
    assert state.feedback_resistor == squid.feedback_resistor.value == 10e3
    assert state.integrator_capacitor == 150e-9
    assert state.mode == "locked"
    assert state.test_lines == ("squid_flux",)
    assert server.loops[1].mode == "locked"
    assert server.loops[1].r_f == 10e3


def test_tune_and_reset(server: PFL102Server, pfl: PFL102) -> None:
    squid = pfl.ch_1
    squid.mode = "lock"
    squid.reset_integrator()
    squid.tune()
    accepted(server, 4)
    assert server.state(1).mode == "tune"
    assert server.state(1).reset is False
    assert server.loops[1].reset_held is False
    assert squid.mode is LoopMode.TUNE


def test_heat_opens_the_loop_cools_down_and_relocks(server: PFL102Server, pfl: PFL102) -> None:
    squid = pfl.ch_1
    squid.bias_current = 25e-6
    squid.flux_offset = 10e-6
    squid.lock()
    seen: list[tuple[str, bool, float]] = []

    def watch(seconds: float) -> None:
        # What the card holds while the driver waits (heating, then cooling down).
        wait_for(lambda: server.frames >= 3 + 4 + 1 + len(seen))
        state = server.state(1)
        seen.append((state.mode, state.heater, state.value("squid_bias")))

    squid.heat(0.1, sleep=watch)
    # 3 settings; heat: 4 currents zeroed, heater on, heater off, 4 restored, reset pulse (2)
    accepted(server, 3 + 4 + 2 + 4 + 2)
    assert seen == [("tune", True, 0.0),  # heating: loop open, SQUID unbiased
                    ("tune", False, 0.0)]  # cooling down: heater off, still unbiased
    state = server.state(1)
    assert state.heater is False
    assert state.mode == "locked"
    assert state.value("squid_bias") == pytest.approx(squid.bias_current, abs=1e-12)
    assert state.value("squid_flux") == pytest.approx(squid.flux_offset, abs=1e-12)
    assert server.loops[1].mode == "locked" and not server.loops[1].reset_held


def test_cards_are_addressed_separately(server: PFL102Server, pfl: PFL102) -> None:
    pfl.channel(2).bias_current = 1e-3
    pfl.channel(2).feedback_resistor = 1e3
    accepted(server, 2)
    assert server.state(2).value("squid_bias") == pytest.approx(2000e-6 * 2048 / 4095)
    assert server.state(2).feedback_resistor == 1e3
    assert server.state(1).value("squid_bias") == 0.0
    assert server.state(1).feedback_resistor == 100e3


def test_write_all_resynchronises_a_power_cycled_card(server: PFL102Server, pfl: PFL102) -> None:
    squid = pfl.ch_1
    squid.bias_current = 25e-6
    squid.lock()
    accepted(server, 2)
    server.states[1] = type(server.state(1))()  # the card loses its settings
    squid.write_all()
    accepted(server, 2 + 6)
    assert server.state(1).word == squid.control_word
    assert server.state(1).value("squid_bias") == pytest.approx(squid.bias_current)


def test_tune_output_follows_the_offset(server: PFL102Server, pfl: PFL102) -> None:
    # In tune mode the simulated output is gain x (V(Phi) - offset): moving the
    # offset by 1 mV moves the whole trace by -gain x 1 mV.
    squid = pfl.ch_1
    squid.bias_current = 25e-6
    squid.output_offset = 0.0
    accepted(server, 2)
    loop = server.loops[1]
    flat = np.zeros(64)
    before = np.asarray(loop.process(flat, 1e-6)).mean()
    squid.output_offset = 1e-3
    accepted(server, 3)
    after = np.asarray(loop.process(flat, 1e-6)).mean()
    step = squid.output_offset - (-9.8e-3 + 19.6e-3 * 2048 / 4095)
    assert after - before == pytest.approx(-server.preamp_gain * step, rel=1e-3)
