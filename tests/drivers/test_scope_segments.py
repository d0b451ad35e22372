"""Segmented acquisition, trigger rate and vetoed noise: the InfiniiVision driver.

Protocol tests replay the exact exchanges; the others run the driver against
the simulated scope over TCP, whose engine knows every trigger it made.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from drivers.keysight.infiniivision import SEGMENT_REARM_S, InfiniiVision
from drivers.keysight.waveform import live_intervals
from drivers.readings import PollKind, Quality
from simulators.physics.readout import TESReadout
from simulators.servers.scope import ScopeServer

PREAMBLE_4 = "+1,+0,+4,+1,+1.0E-06,-2.0E-06,+0,+1.0E-03,+0.0E+00,+0"


def block(data: bytes) -> bytes:
    return b"#8%08d" % len(data) + data + b"\n"


def test_one_transfer_brings_every_segment_with_its_own_trigger_time() -> None:
    raw = np.arange(12, dtype="<i2")  # 3 segments x 4 points
    tags = b"+0.0E+00,+2.0E-03,+5.0E-03"
    comm = [
        (":ACQuire:MODE SEGMented", None),
        (":ACQuire:SEGMented:COUNt 3", None),
        (":SINGle", None),
        (":WAVeform:SEGMented:COUNt?", "+1"),
        (":WAVeform:SEGMented:COUNt?", "+3"),
        (":OPERegister:CONDition?", "+0"),  # the acquisition has ended: complete records
        (":WAVeform:SEGMented:ALL 1", None),
        (":WAVeform:SOURce?", "CHAN1"),
        (":WAVeform:PREamble?", PREAMBLE_4),
        (":WAVeform:SEGMented:XLISt? TTAG", block(tags)),
        (":WAVeform:UNSigned?", "0"),
        (":WAVeform:BYTeorder?", "LSBF"),
        (":WAVeform:DATA?", block(raw.tobytes())),
    ]
    with expected_protocol(InfiniiVision, comm, segments=3) as scope:
        scope.poll_interval_s = 0.0
        records = scope.acquire_segments()
    assert len(records) == 3
    np.testing.assert_array_equal(records[1].raw, [4, 5, 6, 7])
    times = [r.t_ns for r in records]
    assert times[1] - times[0] == 2_000_000 and times[2] - times[0] == 5_000_000
    assert [r.meta["segment"] for r in records] == [1, 2, 3]
    assert all(r.presamples == 2 and r.dt == 1e-6 and r.scale == 1e-3 for r in records)
    # 2 intervals, each minus the record span (4 us) and the re-arm time.
    live = (2e-3 - 4e-6 - SEGMENT_REARM_S) + (3e-3 - 4e-6 - SEGMENT_REARM_S)
    [reading] = scope.read_trigger_rate()
    assert reading.value == pytest.approx(1 / live)
    assert scope.read_trigger_rate() == []  # counted once


def test_a_slow_detector_gets_the_segments_that_came_before_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.keysight.infiniivision as module

    clock = iter([0.0, 10.0, 10.0])  # the deadline is set, then has passed
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    comm = [
        (":ACQuire:MODE SEGMented", None),
        (":ACQuire:SEGMented:COUNt 100", None),
        (":SINGle", None),
        (":WAVeform:SEGMented:COUNt?", "+0"),
        (":STOP", None),
        (":WAVeform:SEGMented:COUNt?", "+0"),
    ]
    with expected_protocol(InfiniiVision, comm, segments=100) as scope:
        scope.poll_interval_s = 0.0
        assert scope.acquire_segments(timeout_s=1e-3) == []


def test_the_daemon_gets_segments_noise_and_the_trigger_rate() -> None:
    with expected_protocol(InfiniiVision, []) as scope:
        specs = {s.name: s for s in scope.poll_specs()}
    assert specs["segments"].kind is PollKind.WAVEFORM and specs["noise"].kind is PollKind.WAVEFORM
    assert specs["trigger_rate"].kind is PollKind.SCALAR and specs["trigger_rate"].unit == "Hz"


@pytest.fixture
def lab() -> Iterator[tuple[ScopeServer, InfiniiVision]]:
    server = ScopeServer({1: TESReadout(rate=300.0, seed=3)}, seed=1).start()
    scope = InfiniiVision(f"TCPIP::127.0.0.1::{server.port}::SOCKET", visa_library="@py",
                          segments=40, segment_points=4096, segment_timeout_s=5.0)
    try:
        scope.configure_waveform("CHAN1")
        scope.timebase_scale = 1e-4
        scope.timebase_position = 3e-4
        scope.trigger_level = 0.3
        yield server, scope
    finally:
        scope.adapter.close()
        server.stop()


def test_segments_match_the_simulators_triggers_none_twice_none_lost(
        lab: tuple[ScopeServer, InfiniiVision]) -> None:
    server, scope = lab
    records = []
    for _ in range(3):
        transfer = scope.read_segments()  # 40, or fewer if the timeout came first
        record = server.engine.record
        assert record is not None and len(transfer) == len(record.segment_times) > 0
        # Within a transfer, trigger times differ exactly as the simulator's triggers do.
        expected = np.diff(np.array(record.segment_times)) * 1e9
        np.testing.assert_allclose(np.diff([r.t_ns for r in transfer]), expected, atol=2)
        records += transfer
    assert len(records) == server.engine.segments_transferred  # every one handed over
    times = np.array([r.t_ns for r in records], dtype=np.int64)
    assert np.all(np.diff(times) > 0)  # each its own trigger, in order, none twice
    assert all(r.raw.shape == (4096,) and r.quality in (Quality.OK, Quality.CLIPPED)
               for r in records)
    assert server.engine.record is not None
    span = 4096 * server.engine.record.setup.x_increment
    assert live_intervals([0.0, span + SEGMENT_REARM_S + 1e-3], span, SEGMENT_REARM_S) \
        == pytest.approx([1e-3])


def test_the_trigger_rate_is_the_simulators_dead_time_corrected_rate(
        lab: tuple[ScopeServer, InfiniiVision]) -> None:
    server, scope = lab
    engine = server.engine
    for _ in range(5):
        scope.read_segments()
    [reading] = scope.read_trigger_rate()
    # The simulator's own count over its own live time (it knows each arming exactly).
    assert reading.value == pytest.approx((engine.segments_acquired - 1) / engine.live_s,
                                          rel=0.05)
    assert reading.value == pytest.approx(300.0, rel=0.2)  # 200 intervals of Poisson waits


def test_noise_traces_are_pulse_free() -> None:
    server = ScopeServer({1: TESReadout(rate=40.0, seed=9)}, seed=1).start()
    scope = InfiniiVision(f"TCPIP::127.0.0.1::{server.port}::SOCKET", visa_library="@py",
                          noise_points=40_000, noise_trace_points=2000, record_timeout_s=5.0)
    try:
        scope.configure_waveform("CHAN1")
        scope.timebase_scale = 2e-3  # 20 ms: the triggering pulse and some 0.8 more per record
        scope.trigger_level = 0.3
        traces = scope.read_noise()
    finally:
        scope.adapter.close()
        server.stop()
    assert traces and all(t.meta["noise"] for t in traces)
    assert 1 <= traces[0].meta["vetoed"] < 20  # the trigger's pulse at least
    for trace in traces:
        volts = trace.volts
        assert np.ptp(volts) < 0.2  # no pulse (they are ~1 V high)
