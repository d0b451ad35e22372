"""Instrument codes and index tables of the Lake Shore Model 372, in physical units.

The 372 speaks in indices (excitation 7, range 10, heater range 5); this
module maps them to volts, amperes and ohms so that the rest of the driver,
and everybody using it, never sees an index:

* :data:`VOLTAGE_EXCITATIONS` — index 1–12 → 2 µV … 632 mV (V),
* :data:`CURRENT_EXCITATIONS` — index 1–22 → 1 pA … 31.6 mA (A),
* :data:`CONTROL_EXCITATIONS` — control input A: index 1–6 → 316 pA … 100 nA (A),
* :data:`RESISTANCE_RANGES` — index 1–22 → 2 mΩ … 63.2 MΩ (Ω),
* :data:`SAMPLE_HEATER_RANGES` — index 0–8 → off (0 A), 31.6 µA … 100 mA (A),
* :data:`FREQUENCIES` — index 1–5 → 9.8 … 18.2 Hz,
* :data:`WARMUP_HEATER_RESISTANCES` — ``HTRSET 1`` code 1, 2 → 25 Ω, 50 Ω,
* :data:`WARMUP_MAX_CURRENTS` — ``HTRSET 1`` code 0 (user), 1, 2 → 0.45 A, 0.63 A.

Each table is a ``dict`` from the physical value to the index (what
PyMeasure's ``map_values`` wants); :func:`index_to_value` reverses one.
The ``IntEnum`` / ``IntFlag`` classes name the instrument's codes.
"""

from __future__ import annotations

import math
from enum import IntEnum, IntFlag

_LOG2 = math.log10(2.0)


def half_decade_table(first: float, count: int, start_index: int = 1) -> dict[float, int]:
    """Build a 1-2-3.16 style half-decade table, e.g. 2 µV, 6.32 µV, 20 µV, ...

    Values carry three significant digits, as the manual prints them
    (``6.32e-6``, not ``6.3245...e-6``). ``first`` must be 1, 2, 3.16 or
    6.32 times a power of ten.

    Args:
        first: the value of the first index.
        count: number of entries.
        start_index: index of the first entry.

    Returns:
        ``{value: index}``.
    """
    # Snap the first value onto the exact grid 10**(n/2) or 2 * 10**(n/2) first: the
    # printed 31.6 uA times sqrt(10) would otherwise give 99.9 uA, not 100 uA.
    family = 0.0 if abs(math.log10(first) * 2 - round(math.log10(first) * 2)) < 0.05 else _LOG2
    exponent = round((math.log10(first) - family) * 2) / 2 + family
    table: dict[float, int] = {}
    for k in range(count):
        table[float(f"{10 ** (exponent + k / 2):.3g}")] = start_index + k
    return table


def index_to_value(table: dict[float, int], index: int) -> float:
    """Look up the physical value of an index in one of this module's tables.

    Args:
        table: ``{value: index}``.
        index: the instrument's index.

    Returns:
        The value.

    Raises:
        KeyError: the index is not in the table.
    """
    for value, idx in table.items():
        if idx == index:
            return value
    raise KeyError(index)


VOLTAGE_EXCITATIONS: dict[float, int] = half_decade_table(2e-6, 12)
"""Voltage excitation in volts → index 1–12 (2 µV … 632 mV)."""

CURRENT_EXCITATIONS: dict[float, int] = half_decade_table(1e-12, 22)
"""Current excitation in amperes → index 1–22 (1 pA … 31.6 mA)."""

RESISTANCE_RANGES: dict[float, int] = half_decade_table(2e-3, 22)
"""Resistance range (full scale) in ohms → index 1–22 (2 mΩ … 63.2 MΩ)."""

SAMPLE_HEATER_RANGES: dict[float, int] = {0.0: 0, **half_decade_table(31.6e-6, 8)}
"""Sample heater range (full-scale current) in amperes → index 0 (off) … 8 (100 mA)."""

FREQUENCIES: dict[float, int] = {9.8: 1, 13.7: 2, 16.2: 3, 11.6: 4, 18.2: 5}
"""Excitation frequency in hertz → index 1–5."""

CONTROL_EXCITATIONS: dict[float, int] = half_decade_table(316e-12, 6)
"""Control input A: current excitation in amperes → index 1–6 (316 pA … 100 nA).

The control input is excited by a current only and has its own table; the
scanner channels' index 2 (3.16 pA) is index 2 = 1 nA here.
"""

WARMUP_HEATER_RESISTANCES: dict[float, int] = {25.0: 1, 50.0: 2}
"""HTRSET of the warm-up heater (output 1): heater resistance in ohms → code."""

WARMUP_MAX_CURRENTS: dict[float, int] = {0.0: 0, 0.45: 1, 0.63: 2}
"""HTRSET of the warm-up heater: maximum current in amperes → code; 0 means 'user'."""

WARMUP_MAX_USER_CURRENT_A = 0.63
"""The largest user current limit of the warm-up heater, A."""

SAMPLE_HEATER_RESISTANCE_OHM = (1.0, 2000.0)
"""HTRSET of the sample heater (output 0): the heater resistance it accepts, Ω."""


class ReadingStatus(IntFlag):
    """RDGST? bits; an empty flag (``000``) means the reading is valid."""

    CS_OVL = 1
    VCM_OVL = 2
    VMIX_OVL = 4
    VDIF_OVL = 8
    R_OVER = 16
    R_UNDER = 32
    T_OVER = 64
    T_UNDER = 128


class ExcitationMode(IntEnum):
    """INTYPE mode: excite with a voltage or a current."""

    VOLTAGE = 0
    CURRENT = 1


class Autorange(IntEnum):
    """INTYPE autorange setting."""

    OFF = 0
    ON = 1
    ROX102B = 2


class SensorUnits(IntEnum):
    """INTYPE preferred units of an input (also the units of a setpoint on it)."""

    KELVIN = 1
    OHMS = 2


class Tempco(IntEnum):
    """INSET temperature coefficient of the sensor."""

    NEGATIVE = 1
    POSITIVE = 2


class OutputMode(IntEnum):
    """OUTMODE mode of an output."""

    OFF = 0
    MONITOR_OUT = 1
    OPEN_LOOP = 2
    ZONE = 3
    STILL = 4
    CLOSED_LOOP = 5
    WARM_UP = 6


class HeaterStatus(IntEnum):
    """HTRST? heater status."""

    OK = 0
    OPEN_LOAD = 1
    SHORT = 2


class HeaterDisplay(IntEnum):
    """HTRSET display: heater output shown (and HTR? answered) as current or power."""

    CURRENT = 1
    POWER = 2


class CurveFormat(IntEnum):
    """CRVHDR data format of a user curve (the 372 takes 3, 4, 7; the 336 takes 1-4)."""

    MV_PER_K = 1
    V_PER_K = 2
    OHM_PER_K = 3
    LOG_OHM_PER_K = 4
    CUBIC_SPLINE = 7


class Polarity(IntEnum):
    """OUTMODE polarity of an output."""

    UNIPOLAR = 0
    BIPOLAR = 1
