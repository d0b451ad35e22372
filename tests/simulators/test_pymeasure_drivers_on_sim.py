"""PyMeasure's own SR830 and Keithley2400 drivers, unmodified, on the simulators via pyvisa-py."""

from __future__ import annotations

import math

import pytest
from pymeasure.instruments.keithley import Keithley2400
from pymeasure.instruments.srs import SR830

from simulators.servers.keithley2400 import Keithley2400Server
from simulators.servers.sr830 import SR830Server

VISA = {"visa_library": "@py", "read_termination": "\n", "write_termination": "\n", "timeout": 3000}


@pytest.fixture
def lockin():
    """SR830 simulator measuring 100 Ohm through 1 MOhm, and the PyMeasure driver on it."""
    server = SR830Server(100.0, bias_resistor=1e6, seed=2).start()
    driver = SR830(server.resource, **VISA)
    yield server, driver
    driver.adapter.close()
    server.stop()


@pytest.fixture
def smu():
    """Keithley 2400 simulator into 2 kOhm, and the PyMeasure driver on it."""
    server = Keithley2400Server(2e3, seed=2).start()
    driver = Keithley2400(server.resource, **VISA)
    yield server, driver
    driver.adapter.close()
    server.stop()


# ---- SR830 ---------------------------------------------------------------------------------


def test_sr830_identity_and_defaults(lockin):
    _server, li = lockin
    assert li.id.startswith("Stanford_Research_Systems,SR830")
    assert li.frequency == pytest.approx(1000.0)
    assert li.sine_voltage == pytest.approx(1.0)
    assert li.reference_source == "Internal"


def test_sr830_settings_round_trip(lockin):
    server, li = lockin
    li.frequency = 137.0
    li.sine_voltage = 0.5
    li.phase = 12.5
    li.sensitivity = 1e-3
    li.time_constant = 0.3
    li.filter_slope = 24
    li.input_config = "A - B"
    li.aux_out_2 = 1.25
    assert li.frequency == pytest.approx(137.0)
    assert li.sine_voltage == pytest.approx(0.5)
    assert li.phase == pytest.approx(12.5)
    assert li.sensitivity == pytest.approx(1e-3)
    assert li.time_constant == pytest.approx(0.3)
    assert li.filter_slope == 24
    assert li.input_config == "A - B"
    assert li.aux_out_2 == pytest.approx(1.25)
    assert server.index["SENS"] == 17 and server.index["OFLT"] == 9


def test_sr830_measures_the_biased_resistor(lockin):
    _server, li = lockin
    li.sine_voltage = 1.0
    li.frequency = 77.0
    li.time_constant = 1.0
    li.sensitivity = 200e-6
    expected = 1.0 * 100.0 / (1e6 + 100.0)
    assert li.x == pytest.approx(expected, rel=1e-3)
    assert abs(li.y) < 1e-3 * expected
    assert li.magnitude == pytest.approx(expected, rel=1e-3)
    assert abs(li.theta) < 0.1
    x, y = li.snap()
    assert x == pytest.approx(expected, rel=1e-3)
    values = li.snap("x", "y", "r", "theta", "frequency")
    assert len(values) == 5 and values[4] == pytest.approx(77.0)


def test_sr830_phase_and_auto_phase(lockin):
    _server, li = lockin
    li.time_constant = 1.0
    li.phase = 30.0
    assert li.theta == pytest.approx(-30.0, abs=0.1)
    li.auto_phase()
    assert li.phase == pytest.approx(0.0, abs=0.1)
    assert li.theta == pytest.approx(0.0, abs=0.1)


def test_sr830_follows_a_changing_sample(lockin):
    server, li = lockin
    li.time_constant = 1.0
    resistance = {"r": 100.0}
    server.sample = lambda: resistance["r"]
    low = li.magnitude
    resistance["r"] = 300.0
    assert li.magnitude == pytest.approx(3 * low, rel=1e-3)


def test_sr830_second_harmonic_and_external_reference_have_no_signal(lockin):
    _server, li = lockin
    li.time_constant = 1.0
    signal = li.magnitude
    li.harmonic = 2
    assert li.magnitude < 0.01 * signal
    li.harmonic = 1
    li.reference_source = "External"
    assert li.magnitude < 0.01 * signal
    assert li.lia_status & 8  # reference unlock


def test_sr830_overload_and_errors_are_flagged(lockin):
    _server, li = lockin
    li.sensitivity = 2e-9
    _ = li.x
    assert li.is_out_of_range() is True  # LIAS? 2: output overload
    li.sensitivity = 1e-3
    _ = li.x
    assert li.is_out_of_range() is False
    li.write("SENS 99")
    li.write("NOPE")
    esr = int(li.ask("*ESR?"))
    assert esr & (1 << 4) and esr & (1 << 5)
    assert li.sensitivity == pytest.approx(1e-3)


# ---- Keithley 2400 -------------------------------------------------------------------------


def test_keithley_identity_and_data_format(smu):
    server, k = smu
    assert k.id.startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400")
    assert server.received[0] == ":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS"
    assert k.check_errors() == []


def test_keithley_sources_current_into_the_load(smu):
    _server, k = smu
    k.source_mode = "current"
    k.source_current = 1e-4
    k.compliance_voltage = 10
    k.enable_source()
    assert k.source_mode == "current"
    assert k.source_current == pytest.approx(1e-4)
    assert k.source_enabled is True
    assert k.voltage == pytest.approx(0.2, rel=1e-4)
    assert k.current == pytest.approx(1e-4, rel=1e-4)
    assert k.resistance == pytest.approx(2e3, rel=1e-3)


def test_keithley_sources_voltage_and_respects_compliance(smu):
    _server, k = smu
    k.source_mode = "voltage"
    k.source_voltage = 1.0
    k.compliance_current = 1e-2
    k.enable_source()
    assert k.current == pytest.approx(5e-4, rel=1e-3)
    k.compliance_current = 1e-4
    assert k.current == pytest.approx(1e-4, rel=1e-3)  # clipped at compliance
    assert k.voltage == pytest.approx(0.2, rel=1e-3)
    assert int(k.measure_all()["status"]) & 8  # compliance bit


def test_keithley_measure_all_and_settings(smu):
    _server, k = smu
    k.source_mode = "voltage"
    k.source_voltage = 2.0
    k.compliance_current = 0.1
    k.enable_source()
    data = k.measure_all()
    assert data["voltage"] == pytest.approx(2.0, rel=1e-4)
    assert data["current"] == pytest.approx(1e-3, rel=1e-4)
    assert data["resistance"] == pytest.approx(2e3, rel=1e-3)
    k.current_nplc = 2
    k.voltage_range = 20
    k.auto_zero_enabled = False
    k.filter_count = 5
    assert k.current_nplc == pytest.approx(2)
    assert k.voltage_range == pytest.approx(20)
    assert k.auto_zero_enabled is False
    assert k.filter_count == pytest.approx(5)
    assert k.check_errors() == []


def test_keithley_shutdown_ramps_down_and_disables(smu):
    server, k = smu
    k.source_mode = "voltage"
    k.source_voltage = 0.5
    k.enable_source()
    k.ramp_to_voltage(1.0, steps=3, pause=0)
    assert k.source_voltage == pytest.approx(1.0)
    k.shutdown()
    assert k.source_enabled is False  # a query: every write before it has been handled
    assert math.isclose(k.source_voltage, 0.0, abs_tol=1e-12)
    assert server.output_on is False


def test_keithley_reports_refused_values(smu):
    _server, k = smu
    k.write(":SOUR:VOLT 500")
    k.write(":FOO:BAR 1")
    errors = k.check_errors()
    assert [int(e[0]) for e in errors] == [-222, -113]
