"""The SR830 and Keithley 2400 wrappers against their simulators, over TCP through PyVISA."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.errors import SettingOutOfRange
from drivers.keithley.k2400 import Keithley2400
from drivers.srs.sr830 import SR830
from simulators.servers.keithley2400 import Keithley2400Server
from simulators.servers.sr830 import SR830Server

LOAD_OHM = 1e3

# ---- Keithley 2400 -------------------------------------------------------------------------


@pytest.fixture
def smu_server() -> Iterator[Keithley2400Server]:
    server = Keithley2400Server(LOAD_OHM, seed=2, port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smu(smu_server: Keithley2400Server) -> Iterator[Keithley2400]:
    driver = Keithley2400(smu_server.resource, visa_library="@py", timeout=2000)
    try:
        yield driver
    finally:
        driver.adapter.close()


def specs(driver: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The driver's poll and control specs by name."""
    return (
        {spec.name: spec for spec in driver.poll_specs()},
        {spec.name: spec for spec in driver.control_specs()},
    )


def test_k2400_identity(smu: Keithley2400) -> None:
    assert "MODEL 2400" in smu.id


def test_k2400_sources_voltage_into_the_load(smu: Keithley2400) -> None:
    polls, controls = specs(smu)
    controls["source_mode"].set("voltage")
    controls["compliance_current"].set(0.01)
    controls["source_voltage"].set(1.0)
    controls["source_enabled"].set(True)
    assert controls["source_enabled"].get() is True
    assert controls["source_voltage"].get() == pytest.approx(1.0)
    assert polls["voltage"].read().value == pytest.approx(1.0, abs=1e-4)
    assert polls["current"].read().value == pytest.approx(1.0 / LOAD_OHM, rel=1e-3)
    assert polls["source_enabled"].read().value == 1.0


def test_k2400_sources_current_for_a_tes_bias(smu: Keithley2400) -> None:
    polls, controls = specs(smu)
    controls["source_mode"].set("current")
    controls["compliance_voltage"].set(2.0)
    controls["source_current"].set(50e-6)
    controls["source_enabled"].set(True)
    assert controls["source_mode"].get() == "current"
    assert polls["current"].read().value == pytest.approx(50e-6, rel=1e-3)
    assert polls["voltage"].read().value == pytest.approx(50e-6 * LOAD_OHM, abs=1e-4)


def test_k2400_compliance_limits_the_current(smu: Keithley2400) -> None:
    polls, controls = specs(smu)
    controls["source_mode"].set("voltage")
    controls["compliance_current"].set(1e-3)
    controls["source_voltage"].set(5.0)
    controls["source_enabled"].set(True)
    assert polls["current"].read().value == pytest.approx(1e-3, rel=1e-3)


def test_k2400_zero_and_disable(smu: Keithley2400, smu_server: Keithley2400Server) -> None:
    _, controls = specs(smu)
    controls["source_mode"].set("current")
    controls["source_current"].set(1e-4)
    controls["source_enabled"].set(True)
    smu.zero_and_disable()
    assert controls["source_enabled"].get() is False
    assert controls["source_current"].get() == 0.0
    assert smu_server.output_on is False


def test_k2400_refusal_never_reaches_the_instrument(
    smu: Keithley2400, smu_server: Keithley2400Server
) -> None:
    _, controls = specs(smu)
    before = len(smu_server.received)
    with pytest.raises(SettingOutOfRange) as info:
        controls["source_current"].set(2.0)
    assert info.value.unit == "A"
    assert len(smu_server.received) == before


# ---- SR830 ---------------------------------------------------------------------------------


@pytest.fixture
def lockin() -> Iterator[SR830]:
    server = SR830Server(100.0, bias_resistor=1e6, seed=4, port=0).start()
    driver = SR830(server.resource, visa_library="@py", timeout=2000)
    try:
        yield driver
    finally:
        driver.adapter.close()
        server.stop()


def test_sr830_identity(lockin: SR830) -> None:
    assert "SR830" in lockin.id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sine_voltage", 0.1),
        ("frequency", 13.7),
        ("phase", 30.0),
        ("sensitivity", 1e-3),
        ("time_constant", 0.3),
    ],
)
def test_sr830_settings_round_trip(lockin: SR830, name: str, value: float) -> None:
    _, controls = specs(lockin)
    controls[name].set(value)
    assert controls[name].get() == pytest.approx(value, rel=1e-3)


def test_sr830_measures_the_biased_sample(lockin: SR830) -> None:
    # 0.1 V rms through 1 MOhm into 100 Ohm: 10 uV rms across the sample.
    polls, controls = specs(lockin)
    controls["sine_voltage"].set(0.1)
    controls["frequency"].set(13.7)
    controls["sensitivity"].set(20e-6)
    controls["time_constant"].set(0.3)
    {spec.name: spec for spec in lockin.action_specs()}["auto_phase"].call()
    readings = {name: spec.read().value for name, spec in polls.items()}
    assert readings["magnitude"] == pytest.approx(1e-5, rel=0.02)
    assert readings["x"] == pytest.approx(readings["magnitude"], rel=0.02)
    assert abs(readings["y"]) < 0.05 * readings["magnitude"]
    assert math.isfinite(readings["theta"])


def test_sr830_refusal(lockin: SR830) -> None:
    _, controls = specs(lockin)
    with pytest.raises(SettingOutOfRange):
        controls["sine_voltage"].set(6.0)
