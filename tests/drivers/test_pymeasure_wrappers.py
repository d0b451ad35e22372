"""Protocol replay for the thin wrappers of PyMeasure's SR830, Keithley 2400 and 2450."""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import SettingOutOfRange
from drivers.keithley.k2400 import Keithley2400, Keithley2450
from drivers.srs.sr830 import SR830

# ---- SR830 ---------------------------------------------------------------------------------

SR830_CONTROLS = [
    # (spec name, value, command sent, query, reply, value read back)
    ("sine_voltage", 0.1, "SLVL0.100", "SLVL?", "0.100", 0.1),
    ("frequency", 1000, "FREQ1.00000e+03", "FREQ?", "1000.0", 1000.0),
    ("phase", 45, "PHAS45.00", "PHAS?", "45.00", 45.0),
    ("sensitivity", 1.001e-3, "SENS17", "SENS?", "17", 1e-3),
    ("time_constant", 0.1, "OFLT8", "OFLT?", "8", 0.1),
]

SR830_REFUSED = [
    ("sine_voltage", 10.0),
    ("sine_voltage", 0.001),
    ("frequency", 200e3),
    ("phase", 800),
    ("sensitivity", 3e-3),
    ("time_constant", 0.2),
]


def test_sr830_constructor_sends_nothing() -> None:
    with expected_protocol(SR830, []) as lockin:
        assert lockin.name == "SR830"


@pytest.mark.parametrize(("name", "value", "command", "query", "reply", "readback"), SR830_CONTROLS)
def test_sr830_control_spec_sets_and_gets(
    name: str, value: float, command: str, query: str, reply: str, readback: float
) -> None:
    with expected_protocol(SR830, [(command, None), (query, reply)]) as lockin:
        spec = {s.name: s for s in lockin.control_specs()}[name]
        spec.set(value)
        assert spec.get is not None
        assert spec.get() == pytest.approx(readback)


@pytest.mark.parametrize(("name", "value"), SR830_REFUSED)
def test_sr830_out_of_range_is_refused_before_sending(name: str, value: float) -> None:
    with expected_protocol(SR830, []) as lockin:
        spec = {s.name: s for s in lockin.control_specs()}[name]
        with pytest.raises(SettingOutOfRange) as info:
            spec.set(value)
        with pytest.raises(SettingOutOfRange):
            spec.validate(value)
    assert info.value.instrument == "SR830"
    assert info.value.command == name
    assert info.value.allowed


def test_sr830_allowed_text_has_units() -> None:
    with expected_protocol(SR830, []) as lockin:
        allowed = {s.name: s.allowed for s in lockin.control_specs()}
    assert allowed["sine_voltage"] == "0.004 to 5 V"
    assert allowed["time_constant"].endswith(" s")


def test_sr830_poll_specs_read_outputs() -> None:
    comm = [("OUTP?1", "1.5e-06"), ("OUTP?2", "-2e-07"), ("OUTP?3", "1.6e-06"), ("OUTP?4", "12.5")]
    with expected_protocol(SR830, comm) as lockin:
        values = {s.name: (s.read().value, s.unit) for s in lockin.poll_specs()}
    assert values == {
        "x": (1.5e-6, "V"),
        "y": (-2e-7, "V"),
        "magnitude": (1.6e-6, "V"),
        "theta": (12.5, "deg"),
    }


def test_sr830_actions() -> None:
    with expected_protocol(SR830, [("AGAN", None), ("APHS", None), ("ARSV", None)]) as lockin:
        for spec in lockin.action_specs():
            spec.call()


# ---- Keithley 2400 -------------------------------------------------------------------------

K2400_CONTROLS = [
    ("source_mode", "current", ":SOURCE:FUNCTION CURR", ":SOURCE:FUNCTION?", "CURR", "current"),
    ("source_voltage", 1.5, ":SOURCE:VOLTAGE 1.5", ":SOURCE:VOLTAGE?", "1.5", 1.5),
    ("source_current", 2e-5, ":SOURCE:CURRENT 2e-05", ":SOURCE:CURRENT?", "2e-05", 2e-5),
    ("source_enabled", True, "OUTPUT 1", "OUTPUT?", "1", True),
    (
        "compliance_voltage",
        2,
        ":SENSE:VOLTAGE:PROTECTION 2",
        ":SENSE:VOLTAGE:PROTECTION?",
        "2",
        2.0,
    ),
    (
        "compliance_current",
        1e-3,
        ":SENSE:CURRENT:PROTECTION 0.001",
        ":SENSE:CURRENT:PROTECTION?",
        "0.001",
        1e-3,
    ),
]

SMU_REFUSED = [
    ("source_mode", "resistance"),
    ("source_voltage", 211.0),
    ("source_current", -1.1),
    ("source_enabled", "yes"),
    ("compliance_voltage", 300),
    ("compliance_current", 2.0),
]

FORMAT = ":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS"


def test_k2400_constructor_sends_nothing() -> None:
    # PyMeasure's own Keithley2400 writes the data format here; ours must not.
    with expected_protocol(Keithley2400, []) as smu:
        assert smu.prepared is False


@pytest.mark.parametrize(("name", "value", "command", "query", "reply", "readback"), K2400_CONTROLS)
def test_k2400_control_spec_sets_and_gets(
    name: str, value: object, command: str, query: str, reply: str, readback: object
) -> None:
    with expected_protocol(Keithley2400, [(command, None), (query, reply)]) as smu:
        spec = {s.name: s for s in smu.control_specs()}[name]
        spec.set(value)
        assert spec.get is not None
        assert spec.get() == readback


@pytest.mark.parametrize(("name", "value"), SMU_REFUSED)
@pytest.mark.parametrize("driver", [Keithley2400, Keithley2450])
def test_smu_out_of_range_is_refused_before_sending(driver: type, name: str, value: object) -> None:
    with expected_protocol(driver, []) as smu:
        spec = {s.name: s for s in smu.control_specs()}[name]
        with pytest.raises(SettingOutOfRange) as info:
            spec.set(value)
    assert info.value.instrument == smu.name
    assert info.value.command == name


def test_k2400_first_measurement_sets_the_data_format_once() -> None:
    comm = [
        (FORMAT, None),
        (":MEASURE:VOLTAGE?", "1.25,2.0E-06,6.25E+05,3.1,0"),
        (":MEASURE:CURRENT?", "1.25,2.0E-06,6.25E+05,3.2,0"),
        ("OUTPUT?", "1"),
    ]
    with expected_protocol(Keithley2400, comm) as smu:
        polls = {s.name: s for s in smu.poll_specs()}
        assert polls["voltage"].read().value == 1.25
        assert polls["current"].read().value == 2e-6
        assert polls["source_enabled"].read().value == 1.0
        assert polls["current"].unit == "A"


def test_k2400_zero_and_disable() -> None:
    comm = [(":SOURCE:FUNCTION?", "CURR"), (":SOURCE:CURRENT 0", None), ("OUTPUT 0", None)]
    with expected_protocol(Keithley2400, comm) as smu:
        {s.name: s for s in smu.action_specs()}["zero_and_disable"].call()


# ---- Keithley 2450 -------------------------------------------------------------------------

K2450_CONTROLS = [
    ("source_mode", "voltage", ":SOUR:FUNC VOLT", ":SOUR:FUNC?", "VOLT", "voltage"),
    ("source_voltage", 1.5, ":SOUR:VOLT:LEV 1.5", ":SOUR:VOLT?", "1.5", 1.5),
    ("source_current", 2e-5, ":SOUR:CURR:LEV 2e-05", ":SOUR:CURR?", "2e-05", 2e-5),
    ("source_enabled", True, "OUTPUT ON", "OUTPUT?", "1", True),
    ("source_enabled", False, "OUTPUT OFF", "OUTPUT?", "0", False),
    ("compliance_voltage", 2, ":SOUR:CURR:VLIM 2", ":SOUR:CURR:VLIM?", "2", 2.0),
    ("compliance_current", 1e-3, ":SOUR:VOLT:ILIM 0.001", ":SOUR:VOLT:ILIM?", "0.001", 1e-3),
]


def test_k2450_constructor_sends_nothing() -> None:
    with expected_protocol(Keithley2450, []) as smu:
        assert smu.name == "Keithley 2450"


@pytest.mark.parametrize(("name", "value", "command", "query", "reply", "readback"), K2450_CONTROLS)
def test_k2450_control_spec_sets_and_gets(
    name: str, value: object, command: str, query: str, reply: str, readback: object
) -> None:
    with expected_protocol(Keithley2450, [(command, None), (query, reply)]) as smu:
        spec = {s.name: s for s in smu.control_specs()}[name]
        spec.set(value)
        assert spec.get is not None
        assert spec.get() == readback


def test_k2450_measurements() -> None:
    comm = [(":MEAS:VOLT?", "+1.2500E+00"), (":MEAS:CURR?", "+2.0000E-06")]
    with expected_protocol(Keithley2450, comm) as smu:
        polls = {s.name: s for s in smu.poll_specs()}
        assert polls["voltage"].read().value == 1.25
        assert polls["current"].read().value == 2e-6


def test_k2450_zero_and_disable() -> None:
    comm = [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV 0", None), ("OUTPUT OFF", None)]
    with expected_protocol(Keithley2450, comm) as smu:
        smu.zero_and_disable()
