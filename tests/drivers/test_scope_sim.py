"""The InfiniiVision driver against the simulated scope over TCP through PyVISA.

Channel 1 carries a ramp that crosses 0.25 V exactly where the scope asks
for its trigger event, so every sample of a triggered record is known:
``volts = 0.25 + SLOPE * (index - trigger_index)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from drivers.errors import SettingOutOfRange
from drivers.keysight.infiniivision import (
    ByteOrder,
    CaptureTimeout,
    InfiniiVision,
    WaveformFormat,
)
from simulators.servers.scope import ScopeServer

SLOPE = 1e-3  # V per sample
LEVEL = 0.25


class Ramp:
    """A trace source: a ramp through ``LEVEL`` at the requested event sample."""

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


@pytest.fixture
def scope(server: ScopeServer) -> Iterator[InfiniiVision]:
    driver = InfiniiVision(server.resource, visa_library="@py", timeout=3000)
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
        ("waveform_points", 2000),
        ("waveform_points_mode", "RAW"),
        ("trigger_source", "CHAN2"),
        ("trigger_level", -0.125),
        ("trigger_slope", "NEG"),
        ("trigger_sweep", "NORM"),
        ("timebase_scale", 2e-6),
    ],
)
def test_settings_round_trip(scope: InfiniiVision, name: str, value: object) -> None:
    setattr(scope, name, value)
    assert getattr(scope, name) == value


def test_channel_settings_round_trip(scope: InfiniiVision, server: ScopeServer) -> None:
    scope.ch_2.scale = 0.05
    scope.ch_2.offset = -0.1
    assert scope.ch_2.scale == pytest.approx(0.05)
    assert scope.ch_2.offset == pytest.approx(-0.1)
    assert server.scale[2] == pytest.approx(0.05)


def test_refused_setting_never_reaches_the_scope(scope: InfiniiVision, server: ScopeServer) -> None:
    before = len(server.received)
    with pytest.raises(SettingOutOfRange):
        scope.trigger_level = 100.0
    assert len(server.received) == before


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
    resolution = record.preamble.y_increment
    assert resolution == pytest.approx(8 * 0.5 / (65536 if fmt is WaveformFormat.WORD else 256))
    expected = expected_ramp(record.time, record.sample_interval)
    np.testing.assert_allclose(record.volts, expected, atol=resolution * 0.51)
    crossing = np.argmin(np.abs(record.time))
    assert record.time[crossing] == pytest.approx(0.0, abs=1e-15)
    assert record.volts[crossing] == pytest.approx(LEVEL, abs=resolution)


def test_single_without_trigger_times_out(scope: InfiniiVision) -> None:
    scope.trigger_source = "CHAN2"
    scope.trigger_level = 0.5
    scope.trigger_sweep = "NORM"
    with pytest.raises(CaptureTimeout):
        scope.single(timeout_s=0.05)


def test_stop_holds_the_record_and_run_refreshes_it(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN3", fmt=WaveformFormat.WORD, points=500)
    scope.stop()
    first = scope.fetch_waveform().volts
    assert np.array_equal(first, scope.fetch_waveform().volts)
    scope.run()
    assert not np.array_equal(first, scope.fetch_waveform().volts)


def test_poll_and_control_specs(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN3", points=400)
    polls = {spec.name: spec for spec in scope.poll_specs()}
    controls = {spec.name: spec for spec in scope.control_specs()}
    record = polls["waveform"].read()
    trace = record.volts
    assert trace.shape == (400,) and record.dt > 0
    assert 0.001 < float(np.std(trace)) < 0.1
    controls["timebase_scale"].set(1e-5)
    assert controls["timebase_scale"].get() == pytest.approx(1e-5)


def test_raw_samples_with_scale_and_offset_give_the_volts_exactly(scope: InfiniiVision) -> None:
    scope.configure_waveform("CHAN1", points=500)
    record = scope.fetch_waveform()
    assert record.raw is not None and record.raw.dtype.kind in "iu"
    np.testing.assert_allclose(record.raw * record.scale + record.offset, record.volts,
                               rtol=0, atol=1e-12)
    assert 0 <= record.presamples < record.raw.size
    assert abs(record.time[record.presamples]) <= record.sample_interval
