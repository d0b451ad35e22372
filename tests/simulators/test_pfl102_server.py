"""PFL-102 frames over a raw socket: decoding, parity, silence, and the loop they drive."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.physics.squid import PHI0, FluxLockedLoop
from simulators.servers.base import RECEIVED_KEPT
from simulators.servers.pfl102 import (
    PFL102Server,
    frame,
    odd_parity_ok,
    parameter_code,
    parameter_value,
)
from tests.simulators.detector_client import RawClient, wait_until


@pytest.fixture
def pfl():
    """A PCI-100 with cards on addresses 1 and 2."""
    loops = {1: FluxLockedLoop(), 2: FluxLockedLoop()}
    server = PFL102Server(loops).start()
    client = RawClient(server.port)
    yield server, client, loops
    client.close()
    server.stop()


def taken(server: PFL102Server) -> int:
    """Every frame the server has dealt with, whatever became of it."""
    return server.frames + server.malformed + server.undefined + server.unaddressed


def send_frames(server: PFL102Server, client: RawClient, *frames: str) -> None:
    """Send frames and wait until the server has taken every one of them."""
    before = taken(server)
    client.send("".join(frames))
    wait_until(lambda: taken(server) >= before + len(frames))


def test_frame_builder_matches_the_documented_examples():
    assert frame(1, 0x50, 0x0408) == "01500408;"
    assert frame(1, 0x50, 0x0800) == "01D00800;"
    assert odd_parity_ok(0x01, 0xD0, 0x0800)
    assert not odd_parity_ok(0x01, 0x50, 0x0800)


def test_start_state(pfl):
    server, _client, loops = pfl
    state = server.state(1)
    assert state.word == 0x0800
    assert state.mode == "tune"
    assert state.feedback_resistor == 100e3
    assert state.integrator_capacitor == 1.5e-9
    assert state.value("output_offset") == pytest.approx(-9.8e-3)
    assert loops[1].mode == "tune"


@pytest.mark.parametrize(
    ("word", "r_f", "c_int"),
    [
        (0x0408, 100e3, 1.5e-9),
        (0x040A, 1e3, 1.5e-9),
        (0x040C, 10e3, 1.5e-9),
        (0x0508, 100e3, 15e-9),
        (0x0608, 100e3, 150e-9),
        (0x060C, 10e3, 150e-9),
    ],
)
def test_feedback_resistor_and_integrator_capacitor(pfl, word, r_f, c_int):
    server, client, loops = pfl
    send_frames(server, client, frame(1, 0x50, word))
    assert server.state(1).word == word
    assert (loops[1].r_f, loops[1].c_int) == (r_f, c_int)
    assert loops[1].mode == "locked"
    assert loops[2].r_f == 100e3  # the other card is untouched


def test_modes_heater_feedback_select_and_test_lines(pfl):
    server, client, loops = pfl
    send_frames(server, client, frame(2, 0x50, 0x1800 | 0x0040))
    state = server.state(2)
    assert state.mode == "tune" and state.heater and not state.feedback_on_squid
    assert state.test_lines == ("squid_flux",)
    assert loops[2].squid.dv == 0.0  # a normal SQUID does not modulate
    assert loops[2].test_flux_pp == pytest.approx(server.flux_line_mutual * 50e-6)
    send_frames(server, client, frame(2, 0x50, 0x0408 | 0x0030))
    state = server.state(2)
    assert state.feedback_on_squid and state.test_lines == ("squid_bias", "array_bias")
    assert loops[2].test_flux_pp == 0.0


def test_integrator_reset_holds_then_relocks(pfl):
    server, client, loops = pfl
    send_frames(server, client, frame(1, 0x50, 0x0408))
    loops[1].v_int = 3.0
    send_frames(server, client, frame(1, 0x50, 0x0409))
    assert server.state(1).reset and loops[1].reset_held and loops[1].v_int == 0.0
    assert np.all(loops[1].process(np.full(10, 1e-6), 1e-6) == 0.0)
    resets = loops[1].resets
    send_frames(server, client, frame(1, 0x50, 0x0408))
    assert not loops[1].reset_held and loops[1].resets == resets + 1


@pytest.mark.parametrize(
    ("select", "name", "full"),
    [
        (0, "squid_flux", 100e-6),
        (1, "array_flux", 200e-6),
        (2, "squid_bias", 2000e-6),
        (3, "array_bias", 100e-6),
    ],
)
def test_parameter_full_scale(pfl, select, name, full):
    server, client, _loops = pfl
    send_frames(server, client, frame(1, 0x60, (0xFFF << 4) | select))
    assert server.state(1).codes[name] == 0xFFF
    assert server.state(1).value(name) == pytest.approx(full)
    send_frames(server, client, frame(1, 0x60, (0x800 << 4) | select))
    assert server.state(1).value(name) == pytest.approx(full * 0x800 / 0xFFF)


def test_output_offset_is_bipolar(pfl):
    server, client, loops = pfl
    send_frames(server, client, frame(1, 0x60, (0xFFF << 4) | 4))
    assert server.state(1).value("output_offset") == pytest.approx(9.8e-3)
    assert loops[1].offset == pytest.approx(9.8e-3)
    assert parameter_value("output_offset", 0) == pytest.approx(-9.8e-3)
    assert parameter_code("output_offset", 0.0) in (2047, 2048)


def test_parameters_drive_the_squid(pfl):
    server, client, loops = pfl
    bias = parameter_code("squid_bias", 25e-6)
    flux = parameter_code("squid_flux", 10e-6)
    send_frames(server, client, frame(1, 0x60, (bias << 4) | 2), frame(1, 0x60, (flux << 4) | 0))
    assert loops[1].squid.dv == pytest.approx(40e-6, rel=0.01)
    assert loops[1].phi_bias == pytest.approx(server.flux_line_mutual * 10e-6, rel=1e-3)


def test_unit_never_replies(pfl):
    server, client, _loops = pfl
    send_frames(server, client, frame(1, 0x50, 0x0408), frame(1, 0x60, 0x1232), "01XX;")
    assert client.nothing_within(0.1)
    assert server.frames == 2


@pytest.mark.parametrize(
    "bad",
    [
        "01500800;",  # even parity
        "0150040;",  # too short
        "015004080;",  # too long
        "01G00408;",  # not hex
        "01D10408;",  # unknown opcode (with parity)
        frame(1, 0x60, 0x0005),  # parameter select 5
    ],
)
def test_malformed_frames_are_ignored_and_counted(pfl, bad):
    server, client, loops = pfl
    send_frames(server, client, bad)
    assert server.malformed == 1
    assert server.state(1).word == 0x0800 and loops[1].mode == "tune"
    send_frames(server, client, frame(1, 0x50, 0x0408))  # still listening
    assert server.state(1).mode == "locked"


@pytest.mark.parametrize(
    "word",
    [
        0x0406,  # feedback-resistor code 0x0006 is not defined
        0x0708,  # capacitor code 0x0300 is not defined
        0x2408,  # a reserved bit
        0x0C08,  # LOCK and TUNE together
        0x0008,  # neither LOCK nor TUNE: the manual has no "idle"
        0x1000,  # heater alone, without a loop mode
    ],
)
def test_control_words_the_manual_does_not_define_are_refused(pfl, word):
    server, client, loops = pfl
    send_frames(server, client, frame(1, 0x50, word))
    assert server.undefined == 1 and server.malformed == 0 and server.frames == 0
    assert server.state(1).word == 0x0800 and loops[1].mode == "tune"


def test_the_list_of_received_frames_is_bounded(pfl):
    server, client, _loops = pfl
    extra = 20
    frames = [frame(1, 0x60, ((k % 4096) << 4) | 2) for k in range(RECEIVED_KEPT + extra)]
    send_frames(server, client, *frames)
    assert server.frames == RECEIVED_KEPT + extra
    assert len(server.received) == RECEIVED_KEPT
    assert server.received[-1] == frames[-1].rstrip(";")
    assert server.received[0] == frames[extra].rstrip(";")


def test_frames_for_absent_cards_are_counted(pfl):
    server, client, _loops = pfl
    send_frames(server, client, frame(5, 0x50, 0x0408))
    assert server.unaddressed == 1 and server.malformed == 0


def test_frames_split_across_packets_with_whitespace_and_lower_case(pfl):
    server, client, _loops = pfl
    first = frame(1, 0x50, 0x040A)
    client.send("\r\n" + first[:4])
    client.send(first[4:].lower() + "\r\n " + frame(1, 0x60, (100 << 4) | 3).lower() + "\n")
    wait_until(lambda: server.frames == 2)
    assert server.state(1).feedback_resistor == 1e3
    assert server.state(1).codes["array_bias"] == 100


def test_documented_recipe_locks_the_simulated_squid(pfl):
    server, client, loops = pfl
    send_frames(
        server,
        client,
        frame(1, 0x60, (51 << 4) | 2),  # SQUID bias ~25 uA
        frame(1, 0x60, (2068 << 4) | 4),  # offset ~ V0
        frame(1, 0x50, 0x0800 | 0x0040),  # tune with the test signal on the SQUID flux line
    )
    fll = loops[1]
    vphi = fll.process(np.zeros(2000), 5e-7)  # half a test-signal period
    assert np.ptp(vphi) == pytest.approx(server.preamp_gain * fll.squid.dv, rel=0.02)
    send_frames(server, client, frame(1, 0x50, 0x0408))  # lock, no test signal
    current = np.linspace(0.0, 0.2 * PHI0 / fll.m_in, 4000)
    out = fll.process(current, 1e-6)
    settled = slice(100, None)  # after the loop has pulled in to its lock point
    slope = np.polyfit(current[settled], out[settled], 1)[0]
    assert slope == pytest.approx(fll.gain, rel=1e-3)
    assert fll.flux_jumps == 0
