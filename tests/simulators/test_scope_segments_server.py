"""The simulated DSOX3024T's segmented memory: real triggers, real dead time, real time tags."""

from __future__ import annotations

import time

import numpy as np
import pytest

from simulators.physics.readout import TESReadout
from simulators.servers.scope import ScopeServer
from simulators.servers.scope_acquisition import REARM_S

SETUP = [":STOP", ":TIMebase:SCALe 1e-4", ":TIMebase:POSition 3e-4", ":WAVeform:POINts 4096",
         ":WAVeform:FORMat WORD", ":WAVeform:UNSigned 0", ":WAVeform:BYTeorder LSBFirst",
         ":TRIGger:EDGE:LEVel 0.3", ":ACQuire:MODE SEGMented"]


class Clock:
    """A clock the test moves (the engine sees only what happened up to now)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _server(rate: float, clock: Clock | None = None, seed: int = 7) -> ScopeServer:
    server = ScopeServer({1: TESReadout(rate=rate, seed=seed)}, seed=1,
                         **({"clock": clock} if clock is not None else {}))
    for command in SETUP:
        server.handle(command)
    return server


def _acquire(server: ScopeServer, clock: Clock, step_s: float = 0.01) -> None:
    server.handle(":SINGle")
    for _ in range(100_000):
        if not int(str(server.handle(":OPERegister:CONDition?"))) & 8:
            return
        clock.t += step_s
    raise AssertionError("the segmented acquisition never completed")


def test_every_segment_is_a_real_trigger_with_its_time_tag_and_dead_time() -> None:
    clock = Clock()
    server = _server(400.0, clock)
    server.handle(":ACQuire:SEGMented:COUNt 50")
    _acquire(server, clock)
    record = server.engine.record
    assert record is not None and record.segmented
    assert record.codes[1].shape == (50, 4096)
    assert server.handle(":WAVeform:SEGMented:COUNt?") == "+50"
    tags = record.time_tags
    assert tags[0] == 0.0 and all(b > a for a, b in zip(tags, tags[1:], strict=False))
    span = record.setup.points * record.setup.x_increment
    # Nothing can trigger while a segment is recorded, re-armed and its pre-trigger filled.
    assert min(np.diff(tags)) >= span + REARM_S - 1e-12
    # Each segment shows its own pulse crossing the level at the trigger point.
    pre = round(-record.setup.x_origin / record.setup.x_increment)
    volts = (record.codes[1].astype(np.int64) - 32768) * (8 * 0.5 / 65536)
    assert np.all(volts[:, pre + 5] > volts[:, pre - 5])
    assert server.engine.segments_acquired == 50


def test_time_tags_one_by_one_and_all_at_once_agree() -> None:
    clock = Clock()
    server = _server(300.0, clock)
    server.handle(":ACQuire:SEGMented:COUNt 5")
    _acquire(server, clock)
    block = server.handle(":WAVeform:SEGMented:XLISt? TTAG")
    assert isinstance(block, bytes) and block.startswith(b"#8") and block.endswith(b"\n")
    listed = [float(x) for x in block[10:-1].decode().split(",")]
    one_by_one = []
    for index in range(1, 6):
        server.handle(f":ACQuire:SEGMented:INDex {index}")
        one_by_one.append(float(str(server.handle(":WAVeform:SEGMented:TTAG?"))))
    assert listed == pytest.approx(one_by_one) and len(listed) == 5


def test_all_segments_come_in_one_transfer_and_are_counted_once() -> None:
    clock = Clock()
    server = _server(300.0, clock)
    server.handle(":ACQuire:SEGMented:COUNt 4")
    _acquire(server, clock)
    one = server.handle(":WAVeform:DATA?")
    assert isinstance(one, bytes) and len(one) == 2 + 8 + 4096 * 2 + 1  # the selected segment
    server.handle(":WAVeform:SEGMented:ALL 1")
    preamble = str(server.handle(":WAVeform:PREamble?")).split(",")
    assert int(preamble[2]) == 4096  # points: one segment's
    data = server.handle(":WAVeform:DATA?")
    assert isinstance(data, bytes) and len(data) == 2 + 8 + 4 * 4096 * 2 + 1
    server.handle(":WAVeform:DATA?")  # read again: still four segments, counted once
    assert server.engine.segments_transferred == 4


def test_a_stop_keeps_the_segments_acquired_so_far() -> None:
    clock = Clock()
    server = _server(200.0, clock)
    server.handle(":ACQuire:SEGMented:COUNt 1000")
    server.handle(":SINGle")
    clock.t += 0.1
    server.handle(":OPERegister:CONDition?")
    server.handle(":STOP")
    count = int(str(server.handle(":WAVeform:SEGMented:COUNt?")))
    assert 2 <= count < 1000
    assert server.engine.record is not None and server.engine.record.codes[1].shape[0] == count


def test_photons_whose_pulse_stays_below_the_level_trigger_nothing() -> None:
    clock = Clock()
    server = _server(300.0, clock)
    server.handle(":TRIGger:EDGE:LEVel 4.5")  # above every pulse, even piled up
    server.handle(":ACQuire:SEGMented:COUNt 2")
    server.handle(":SINGle")
    clock.t += 1.0
    assert server.handle(":WAVeform:SEGMented:COUNt?") == "+0"
    assert server.engine.segments_acquired == 0 and server.engine.live_s == 0


def test_the_live_time_rate_is_the_photon_rate() -> None:
    """Dead time excluded, the triggers come at the configured rate (Poisson, memoryless)."""
    clock = Clock()
    server = _server(250.0, clock, seed=11)
    server.handle(":ACQuire:SEGMented:COUNt 1000")
    started = time.monotonic()
    _acquire(server, clock, step_s=0.05)
    engine = server.engine
    rate = (engine.segments_acquired - 1) / engine.live_s
    assert rate == pytest.approx(250.0, rel=0.1)  # 1000 intervals: 3 sigma
    assert time.monotonic() - started < 60
