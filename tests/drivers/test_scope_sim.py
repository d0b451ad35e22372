"""The InfiniiVision driver against the simulated scope over TCP through PyVISA.

Channel 1 carries a ramp that crosses 0.25 V exactly at the event the
trigger waits for, so every sample of a triggered record is known:
``volts = 0.25 + SLOPE * (index - trigger_index)``, on the 8-bit ADC's grid.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.errors import SettingOutOfRange
from drivers.keysight.infiniivision import (
    AcquisitionRunning,
    AcquisitionType,
    ByteOrder,
    CaptureTimeout,
    Coupling,
    Impedance,
    InfiniiVision,
    TriggerSlope,
    WaveformFormat,
)
from drivers.readings import Quality
from simulators.physics.readout import TESReadout
from simulators.servers.scope import ScopeServer

SLOPE = 1e-3  # V per sample
LEVEL = 0.25
SCALE = 0.5  # V/div, the default
ADC_LSB = 8 * SCALE / 256


class Ramp:
    """A trace source with an event every millisecond: a ramp through ``LEVEL`` at it."""

    def next_event(self, after_s: float) -> float:
        """The next event, 1 ms after ``after_s``."""
        return after_s + 1e-3

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Return ``n`` samples of the ramp (flat at 0 V without an event)."""
        if event_at is None:
            return np.zeros(n)
        return LEVEL + SLOPE * (np.arange(n) - event_at)


class Flat:
    """A trace source that never crosses any trigger level above 0 V."""

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Return ``n`` zeros."""
        return np.zeros(n)


class Noise:
    """A trace source with fresh random samples on every record."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)

    def acquire(self, n: int, dt: float, event_at: int | None = None) -> np.ndarray:
        """Return ``n`` samples of 10 mV rms noise."""
        return self.rng.normal(0.0, 0.01, n)


@pytest.fixture
def server() -> Iterator[ScopeServer]:
    sim = ScopeServer({1: Ramp(), 2: Flat(), 3: Noise()}, seed=3, port=0).start()
    try:
        yield sim
    finally:
        sim.stop()


def open_driver(server: ScopeServer) -> InfiniiVision:
    scope = InfiniiVision(server.resource, visa_library="@py", timeout=3000)
    scope.poll_interval_s = 0.002
    return scope


@pytest.fixture
def scope(server: ScopeServer) -> Iterator[InfiniiVision]:
    driver = open_driver(server)
    try:
        yield driver
    finally:
        driver.adapter.close()


def expected_ramp(record_time: np.ndarray, x_increment: float) -> np.ndarray:
    return LEVEL + SLOPE * np.round(record_time / x_increment)


def test_identity(scope: InfiniiVision) -> None:
    assert "DSOX3024T" in scope.id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("waveform_source", "CHAN3"),
        ("waveform_format", WaveformFormat.BYTE),
        ("waveform_format", WaveformFormat.WORD),
        ("waveform_byte_order", ByteOrder.LSB_FIRST),
        ("waveform_byte_order", ByteOrder.MSB_FIRST),
        ("waveform_unsigned", True),
        ("waveform_unsigned", False),
        ("waveform_points", 2000),
        ("waveform_points_mode", "RAW"),
        ("trigger_source", "CHAN2"),
        ("trigger_level", -0.125),
        ("trigger_slope", "NEG"),
        ("trigger_slope", TriggerSlope.EITHER),
        ("trigger_slope", TriggerSlope.ALTERNATE),
        ("trigger_sweep", "NORM"),
        ("timebase_scale", 2e-6),
        ("timebase_position", -1e-5),
        ("timebase_position", 2e-3),
        ("acquisition_type", AcquisitionType.AVERAGE),
        ("acquisition_type", "HRES"),
        ("acquisition_type", AcquisitionType.NORMAL),
        ("acquisition_count", 64),
    ],
)
def test_settings_round_trip(scope: InfiniiVision, name: str, value: object) -> None:
    setattr(scope, name, value)
    assert getattr(scope, name) == value


def test_channel_settings_round_trip(scope: InfiniiVision, server: ScopeServer) -> None:
    scope.ch_2.scale = 0.05
    scope.ch_2.offset = -0.1
    scope.ch_2.coupling = Coupling.AC
    scope.ch_2.impedance = "FIFT"
    scope.ch_2.display = True
    assert scope.ch_2.scale == pytest.approx(0.05)
    assert scope.ch_2.offset == pytest.approx(-0.1)
    assert scope.ch_2.coupling is Coupling.AC
    assert scope.ch_2.impedance is Impedance.FIFTY_OHM
    assert scope.ch_2.display is True
    assert server.scale[2] == pytest.approx(0.05)
    scope.ch_2.scale = 5.0  # into 50 Ohm the scope stops at 1 V/div
    assert scope.ch_2.scale == pytest.approx(1.0)
    assert scope.ask(":SYSTem:ERRor?").startswith("+0")


def test_refused_setting_never_reaches_the_scope(scope: InfiniiVision, server: ScopeServer) -> None:
    before = server.commands
    with pytest.raises(SettingOutOfRange):
        scope.trigger_level = 100.0
    with pytest.raises(SettingOutOfRange):
        scope.acquisition_type = "PEAK"
    assert server.commands == before


@pytest.mark.parametrize(
    ("fmt", "order", "unsigned"),
    [
        (WaveformFormat.WORD, ByteOrder.LSB_FIRST, False),
        (WaveformFormat.WORD, ByteOrder.MSB_FIRST, True),
        (WaveformFormat.BYTE, ByteOrder.MSB_FIRST, False),
        (WaveformFormat.BYTE, ByteOrder.LSB_FIRST, True),
    ],
)
def test_single_capture_is_scaled_to_volts(
    scope: InfiniiVision, fmt: WaveformFormat, order: ByteOrder, unsigned: bool
) -> None:
    scope.configure_waveform("CHAN1", fmt=fmt, points=1000, byte_order=order, unsigned=unsigned)
    scope.trigger_source = "CHAN1"
    scope.trigger_level = LEVEL
    scope.trigger_slope = "POS"
    record = scope.acquire_single(timeout_s=5)
    assert record.source == "CHAN1"
    assert record.volts.size == 1000
    steps = 65536 if fmt is WaveformFormat.WORD else 256
    assert record.preamble.y_increment == pytest.approx(8 * SCALE / steps)
    assert record.raw is not None
    assert np.all(record.raw % (steps // 256) == 0)  # the 8-bit ADC, left-aligned in WORD
    on_screen = np.abs(expected_ramp(record.time, record.sample_interval)) < 4 * SCALE - ADC_LSB
    expected = expected_ramp(record.time, record.sample_interval)
    np.testing.assert_allclose(record.volts[on_screen], expected[on_screen], atol=ADC_LSB * 0.51)
    crossing = np.argmin(np.abs(record.time))
    assert record.time[crossing] == pytest.approx(0.0, abs=1e-15)
    assert record.volts[crossing] == pytest.approx(LEVEL, abs=ADC_LSB)


def test_high_resolution_keeps_twelve_bits(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points=1000)
    scope.acquisition_type = AcquisitionType.HIGH_RESOLUTION
    record = scope.acquire_single(timeout_s=5)
    assert record.raw is not None and record.preamble.type == 3
    assert np.all(record.raw % 16 == 0) and np.any(record.raw % 256 != 0)


def test_a_record_off_the_screen_is_flagged_clipped(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points=1000)
    scope.ch_1.scale = 0.02  # the ramp spends all but 160 samples beyond the +-80 mV screen
    (record,) = scope.read_records()
    assert record.quality is Quality.CLIPPED
    count = int(np.count_nonzero((record.raw == -32768) | (record.raw == 32512)))
    assert count > 500
    assert record.note == f"{count} of 1000 samples at the ADC rails"


def test_single_without_trigger_times_out(scope: InfiniiVision) -> None:
    scope.trigger_source = "CHAN2"
    scope.trigger_level = 0.5
    with pytest.raises(CaptureTimeout):
        scope.single(timeout_s=0.05)
    assert scope.running  # still armed, waiting for its trigger
    assert scope.trigger_sweep == "NORM"  # :SINGle waits for a real trigger


def test_a_stopped_scope_holds_its_record_and_a_running_one_is_not_read(
    scope: InfiniiVision,
) -> None:
    scope.configure_waveform("CHAN3", fmt=WaveformFormat.WORD, points=500)
    scope.ch_3.scale = 0.01
    first = scope.acquire_single(timeout_s=5).volts
    assert np.array_equal(first, scope.fetch_waveform().volts)
    scope.run()
    with pytest.raises(AcquisitionRunning):
        scope.fetch_waveform()
    scope.stop()
    again = scope.fetch_waveform().volts
    assert again.size == 500


def test_poll_and_control_specs(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN3", points=400)
    scope.ch_3.scale = 0.01
    polls = {spec.name: spec for spec in scope.poll_specs()}
    controls = {spec.name: spec for spec in scope.control_specs()}
    (record,) = polls["waveform"].read()
    trace = record.volts
    assert trace.shape == (400,) and record.dt > 0 and record.ok
    assert 0.005 < float(np.std(trace)) < 0.02
    controls["timebase_scale"].set(1e-5)
    assert controls["timebase_scale"].get() == pytest.approx(1e-5)


def test_raw_samples_with_scale_and_offset_give_the_volts_exactly(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN1", points=500)
    record = scope.acquire_single(timeout_s=5)
    assert record.raw is not None and record.raw.dtype.kind in "iu"
    np.testing.assert_allclose(record.raw * record.scale + record.offset, record.volts,
                               rtol=0, atol=1e-12)
    assert 0 <= record.presamples < record.raw.size
    assert abs(record.time[record.presamples]) <= record.sample_interval


def test_the_trigger_time_is_when_the_photon_crossed_the_level() -> None:
    # The scope's clock is the host's epoch clock, so the simulator's own trigger
    # time can be compared with the one the driver infers from the Run bit.
    readout = TESReadout(seed=4)
    server = ScopeServer({1: readout}, seed=4, clock=time.time).start()
    scope = open_driver(server)
    try:
        scope.configure_waveform("CHAN1", points=1000)
        times = []
        for _ in range(3):
            (record,) = scope.read_records()
            held = server.engine.record
            assert held is not None and held.triggered and held.trigger_time is not None
            error_ns = abs(record.t_ns - held.trigger_time * 1e9)
            times.append(record.t_ns)
            assert error_ns <= int(record.meta["t_uncertainty_ns"]) + 1000
        assert times == sorted(times)
    finally:
        scope.adapter.close()
        server.stop()
