"""The PFL-102 frames transcribed from the manual, against the driver and the simulator.

Driver side: each driver call must send exactly the manual's frames
(``expected_protocol``), after the frames that bring the card to the state
the example starts from. Simulator side: each frame, sent over a raw socket,
is accepted silently (the unit never answers) and leaves the card in the
state the manual describes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.star.pfl102 import (
    PFL102,
    FeedbackResistor,
    FeedbackStage,
    IntegratorCapacitor,
    PFL102Channel,
    SignalInjection,
)
from simulators.physics.squid import FluxLockedLoop
from simulators.servers.pfl102 import PFL102Server, PFLState
from tests.manual_protocol import load_manual
from tests.simulators.detector_client import RawClient, wait_until

MANUAL = load_manual("pfl102")


@dataclass(frozen=True)
class Call:
    """A driver call, the manual frames it must send, and the frames that set the scene."""

    exchanges: tuple[str, ...]
    call: Callable[[PFL102Channel], Any]
    setup: tuple[str, ...] = ()


def _set(name: str, value: Any) -> Callable[[PFL102Channel], Any]:
    return lambda squid: setattr(squid, name, value)


CALLS = [
    Call(("tune",), lambda s: s.tune()),
    Call(("select_squid_stage",), _set("feedback_stage", FeedbackStage.SQUID)),
    Call(("lock_squid",), lambda s: s.lock(), setup=("select_squid_stage",)),
    Call(("reset_hold", "reset_release"), lambda s: s.reset_integrator(),
         setup=("select_squid_stage", "lock_squid")),
    Call(("feedback_10k",), _set("feedback_resistor", FeedbackResistor.R_10K)),
    Call(("capacitor_15n",), _set("integrator_capacitor", IntegratorCapacitor.C_15N)),
    Call(("test_signal_squid_flux",), _set("test_input", SignalInjection.SQUID_FLUX)),
    Call(("squid_bias_25uA",), _set("bias_current", 25e-6)),
    Call(("output_offset_min",), _set("output_offset", -9.8e-3)),
    Call(("array_flux_full_scale",), _set("array_flux", 200e-6)),
    Call(("heat_zero_squid_bias", "heat_zero_array_bias", "heat_zero_squid_flux",
          "heat_zero_array_flux", "heater_on", "heater_off",
          "heat_zero_squid_bias", "heat_zero_array_bias", "heat_zero_squid_flux",
          "heat_zero_array_flux", "heat_reset_hold", "heat_reset_release"),
         lambda s: s.heat(0.1, sleep=lambda seconds: None)),
]

#: What the card holds after each frame (starting from the simulator's tune state).
CARD_STATE: dict[str, Callable[[PFLState], bool]] = {
    "tune": lambda st: st.mode == "tune" and not st.feedback_on_squid,
    "select_squid_stage": lambda st: st.mode == "tune" and st.feedback_on_squid,
    "lock_squid": lambda st: st.mode == "locked" and st.feedback_on_squid,
    "reset_hold": lambda st: st.mode == "locked" and st.reset,
    "reset_release": lambda st: st.mode == "locked" and not st.reset,
    "feedback_10k": lambda st: st.feedback_resistor == 10e3,
    "capacitor_15n": lambda st: st.integrator_capacitor == 15e-9,
    "test_signal_squid_flux": lambda st: st.test_lines == ("squid_flux",),
    "squid_bias_25uA": lambda st: st.value("squid_bias") == pytest.approx(25e-6, rel=0.01),
    "output_offset_min": lambda st: st.value("output_offset") == pytest.approx(-9.8e-3),
    "array_flux_full_scale": lambda st: st.value("array_flux") == pytest.approx(200e-6),
    "heat_zero_squid_bias": lambda st: st.value("squid_bias") == 0.0,
    "heat_zero_array_bias": lambda st: st.value("array_bias") == 0.0,
    "heat_zero_squid_flux": lambda st: st.value("squid_flux") == 0.0,
    "heat_zero_array_flux": lambda st: st.value("array_flux") == 0.0,
    "heater_on": lambda st: st.heater and st.mode == "tune",
    "heater_off": lambda st: not st.heater and st.mode == "tune",
    "heat_reset_hold": lambda st: st.reset and st.mode == "tune",
    "heat_reset_release": lambda st: not st.reset and st.mode == "tune",
}


def test_every_manual_frame_is_covered_on_both_sides() -> None:
    covered = {name for call in CALLS for name in call.exchanges}
    assert covered == set(MANUAL.names()) == set(CARD_STATE)
    assert all(not e.is_query for e in MANUAL.exchanges)  # the unit never answers


@pytest.mark.parametrize("call", CALLS, ids=lambda c: "+".join(dict.fromkeys(c.exchanges)))
def test_driver_sends_the_manual_frames(call: Call) -> None:
    frames = [MANUAL[name].send for name in (*call.setup, *call.exchanges)]
    with expected_protocol(PFL102, [(frame, None) for frame in frames]) as pfl:
        for name in call.setup:  # the scene, sent through the driver too
            {c.exchanges[0]: c for c in CALLS}[name].call(pfl.ch_1)
        call.call(pfl.ch_1)


@pytest.fixture
def card() -> Iterator[tuple[PFL102Server, RawClient]]:
    server = PFL102Server({1: FluxLockedLoop()}).start()
    client = RawClient(server.port)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("call", CALLS, ids=lambda c: "+".join(dict.fromkeys(c.exchanges)))
def test_simulator_accepts_the_manual_frames_silently(
    card: tuple[PFL102Server, RawClient], call: Call
) -> None:
    server, client = card
    for name in (*call.setup, *call.exchanges):
        before = server.frames
        client.send(MANUAL[name].send)
        wait_until(lambda before=before: server.frames + server.malformed + server.undefined
                   > before)
        assert server.malformed == 0 and server.undefined == 0, name
        assert CARD_STATE[name](server.state(1)), name
    assert client.nothing_within(0.05)
