"""Opt-in tests of the readout drivers against real instruments.

Run with ``pytest tests/drivers/test_hardware_readout.py --device-address <VISA resource>``.
Each test first asks the instrument at that address who it is and skips
unless it is the model the test is for, so one address can be tried against
the whole file. Settings are only ever written back with the value just read
(nothing a detector would notice), and nothing here switches an output on.
``QUPDAQ_VISA_LIBRARY`` selects the VISA backend (default: PyVISA's choice,
``@py`` for pyvisa-py). The PFL-102 cannot identify itself (it never
answers); its test also needs ``QUPDAQ_PFL102_CARD=<card address>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from drivers.errors import InstrumentConnectionError
from drivers.keithley.k2400 import Keithley2400, Keithley2450
from drivers.keysight.infiniivision import InfiniiVision, WaveformFormat
from drivers.squid import LoopMode
from drivers.srs.sim900 import PORTS, SIM900
from drivers.srs.sim921 import SIM921
from drivers.srs.sim928 import SIM928
from drivers.srs.sr830 import SR830
from drivers.star.pfl102 import PFL102

pytestmark = pytest.mark.hardware

VISA_LIBRARY = os.environ.get("QUPDAQ_VISA_LIBRARY", "")


def opened(driver: type, address: str, **options: Any) -> Iterator[Any]:
    """Build ``driver`` on ``address`` and close it afterwards."""
    instrument = driver(address, visa_library=VISA_LIBRARY, timeout=3000, **options)
    try:
        yield instrument
    finally:
        instrument.adapter.close()


def require_model(identity: str, *models: str) -> None:
    """Skip unless ``identity`` names one of ``models``."""
    if not any(model.upper() in identity.upper() for model in models):
        pytest.skip(f"instrument at this address is {identity!r}, not {models}")


def identify(instrument: Any) -> str:
    """Return ``*IDN?`` of the instrument, or skip when it does not answer."""
    try:
        return str(instrument.ask("*IDN?")).strip()
    except Exception as exc:  # noqa: BLE001 - any failure means "not this instrument"
        pytest.skip(f"no *IDN? answer: {exc}")


@pytest.fixture
def sim900(device_address: str) -> Iterator[SIM900]:
    yield from opened(SIM900, device_address, reply_timeout_s=1.0)


def test_sim900_modules(sim900: SIM900) -> None:
    require_model(identify(sim900), "SIM900")
    sim900.flush()
    found: dict[int, str] = {}
    for port in PORTS:
        try:
            found[port] = sim900.ask_port(port, "*IDN?")
        except InstrumentConnectionError:
            continue  # empty slot
    if not found:
        pytest.skip("no module answered in any port")
    for port, identity in found.items():
        if "SIM928" in identity:
            source = sim900.add_module(port, SIM928)
            assert isinstance(source, SIM928)
            volts = source.voltage
            assert -20.0 <= volts <= 20.0
            source.voltage = volts  # same value back: a harmless round trip
            assert source.voltage == pytest.approx(volts, abs=1e-3)
            assert isinstance(source.output_enabled, bool)
            state = source.battery_state
            assert isinstance(state.service_needed, bool)
        elif "SIM921" in identity:
            bridge = sim900.add_module(port, SIM921)
            assert isinstance(bridge, SIM921)
            assert math.isfinite(bridge.resistance)
            full_scale = bridge.range
            bridge.range = full_scale
            assert bridge.range == full_scale
            assert 1.95 <= bridge.frequency <= 61.1


@pytest.fixture
def sr830(device_address: str) -> Iterator[SR830]:
    yield from opened(SR830, device_address)


def test_sr830_readout(sr830: SR830) -> None:
    require_model(identify(sr830), "SR830")
    values = {spec.name: spec.read() for spec in sr830.poll_specs()}
    assert all(math.isfinite(value) for value in values.values())
    sensitivity = sr830.sensitivity
    {spec.name: spec for spec in sr830.control_specs()}["sensitivity"].set(sensitivity)
    assert sr830.sensitivity == sensitivity


@pytest.fixture
def keithley(device_address: str) -> Iterator[Any]:
    probe = Keithley2400(device_address, visa_library=VISA_LIBRARY, timeout=3000)
    try:
        identity = identify(probe)
    finally:
        probe.adapter.close()
    require_model(identity, "MODEL 2400", "MODEL 2450")
    driver = Keithley2450 if "2450" in identity else Keithley2400
    yield from opened(driver, device_address)


def test_keithley_settings(keithley: Any) -> None:
    # Measuring would switch a 2400's output on (auto output); read settings only.
    controls = {spec.name: spec for spec in keithley.control_specs()}
    assert controls["source_mode"].get() in ("current", "voltage")
    compliance = controls["compliance_current"].get()
    assert -1.05 <= compliance <= 1.05
    assert isinstance(bool(keithley.source_enabled), bool)


@pytest.fixture
def scope(device_address: str) -> Iterator[InfiniiVision]:
    yield from opened(InfiniiVision, device_address)


def test_scope_transfers_a_record(scope: InfiniiVision) -> None:
    require_model(identify(scope), "DSO-X", "MSO-X", "DSOX", "MSOX", "EDUX")
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points_mode="NORM")
    scope.stop()  # a record is read only from a stopped scope
    record = scope.fetch_waveform()
    assert record.volts.size == record.preamble.points
    assert np.all(np.isfinite(record.volts))
    assert np.all(np.diff(record.time) > 0)


def test_pfl102_accepts_the_shadow_state(device_address: str) -> None:
    card = os.environ.get("QUPDAQ_PFL102_CARD")
    if not card:
        pytest.skip("set QUPDAQ_PFL102_CARD to the PFL-102 card address to run this test")
    for pfl in opened(PFL102, device_address, channels=(int(card),)):
        squid = pfl.channel(int(card))
        squid.mode = LoopMode.TUNE  # the power-on mode: safe on a cold SQUID
        squid.write_all()
        assert squid.mode is LoopMode.TUNE
