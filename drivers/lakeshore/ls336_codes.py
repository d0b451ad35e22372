"""Codes and structured settings of the Lake Shore Model 336, in physical units.

Enums for the instrument's codes (:class:`InputStatus` flags,
:class:`SensorType`, :class:`InputUnits`, :class:`HeaterRange`,
:class:`OutputMode336`), the code tables (input ranges per sensor type in V
and Ω, control input letters, heater resistances and maximum currents in Ω
and A), and the structured settings
used by :mod:`drivers.lakeshore.ls336`: :class:`InputType336` (``INTYPE``),
:class:`OutputSetup336` (``OUTMODE``), :class:`HeaterSetup336` (``HTRSET``),
:class:`PID336` and :class:`Ramp336` with the 336's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, ClassVar

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.loops import BOOL_CODES, PIDGains, Ramp
from drivers.lakeshore.ls372_codes import HeaterDisplay
from drivers.lakeshore.wire import (
    Structured,
    decimal_text,
    reply_enum,
    reply_fields,
    reply_float,
    reply_int,
)
from drivers.validators import bad_reply, in_range, in_set, refuse

INPUTS = ("A", "B", "C", "D")


class InputStatus(IntFlag):
    """RDGST? bits of a 336 input; empty when the reading is valid."""

    INVALID_READING = 1
    TEMP_UNDERRANGE = 16
    TEMP_OVERRANGE = 32
    SENSOR_UNITS_ZERO = 64
    SENSOR_UNITS_OVERRANGE = 128


class SensorType(IntEnum):
    """INTYPE sensor type."""

    DISABLED = 0
    DIODE = 1
    PLATINUM_RTD = 2
    NTC_RTD = 3
    THERMOCOUPLE = 4
    CAPACITANCE = 5


class InputUnits(IntEnum):
    """INTYPE preferred units."""

    KELVIN = 1
    CELSIUS = 2
    SENSOR = 3


class HeaterRange(IntEnum):
    """RANGE of a 336 current heater output."""

    OFF = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class OutputMode336(IntEnum):
    """OUTMODE mode of a 336 output."""

    OFF = 0
    CLOSED_LOOP = 1
    ZONE = 2
    OPEN_LOOP = 3
    MONITOR_OUT = 4
    WARMUP_SUPPLY = 5


DIODE_RANGES: dict[float, int] = {2.5: 0, 10.0: 1}
"""Diode input range, full scale in volts → INTYPE range code."""

PTC_RTD_RANGES: dict[float, int] = {
    10.0: 0, 30.0: 1, 100.0: 2, 300.0: 3, 1e3: 4, 3e3: 5, 10e3: 6,
}
"""Platinum (PTC) RTD input range, full scale in ohms → INTYPE range code."""

NTC_RTD_RANGES: dict[float, int] = {**PTC_RTD_RANGES, 30e3: 7, 100e3: 8}
"""NTC RTD (Cernox, RuOx) input range, full scale in ohms → INTYPE range code."""

THERMOCOUPLE_RANGES: dict[float, int] = {0.05: 0}
"""Thermocouple input range (3060 option), full scale in volts → INTYPE range code."""

INPUT_RANGES: dict[int, tuple[dict[float, int], str]] = {
    1: (DIODE_RANGES, "V"),
    2: (PTC_RTD_RANGES, "Ohm"),
    3: (NTC_RTD_RANGES, "Ohm"),
    4: (THERMOCOUPLE_RANGES, "V"),
}
"""Sensor type code → (its range table, the unit of the range)."""

AUTORANGE_TYPES = (2, 3)
"""Sensor type codes that can autorange (the resistive sensors)."""

INPUT_CODES: dict[str, int] = {"": 0, "A": 1, "B": 2, "C": 3, "D": 4}
"""OUTMODE control input: letter → code ("" for none)."""

HEATER_RESISTANCES: dict[float, int] = {25.0: 1, 50.0: 2}
"""HTRSET heater resistance in ohms → code."""

MAX_CURRENTS: dict[float, int] = {0.0: 0, 0.707: 1, 1.0: 2, 1.141: 3, 1.732: 4}
"""HTRSET maximum current in amperes → code; 0 means 'user' (use max_user_current)."""


def _lookup(table: dict[Any, int], code: int, reply: Any) -> Any:
    for key, value in table.items():
        if value == code:
            return key
    raise bad_reply(reply, f"unknown code {code}")


@dataclass(frozen=True)
class InputType336(Structured):
    """``INTYPE``: sensor type and range of an input, the range in physical units.

    Attributes:
        sensor_type: the sensor type (DISABLED turns the input off).
        autorange: autorange on (resistive sensors only).
        input_range: full scale: diode 2.5 or 10 V; platinum RTD 10, 30, 100,
            300, 1000, 3000 or 10000 Ω; NTC RTD also 30000 and 100000 Ω;
            thermocouple 0.05 V. ``None`` for a disabled input and for the
            capacitance option, whose ranges this driver does not model (for
            those the range is not sent: code 0).
        compensation: thermal EMF compensation (resistive) or room-temperature
            compensation (thermocouple).
        units: preferred units.
    """

    sensor_type: SensorType
    autorange: bool
    input_range: float | None
    compensation: bool
    units: InputUnits

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "sensor_type": (in_set, list(SensorType), ""),
        "autorange": (in_set, BOOL_CODES, ""),
        "compensation": (in_set, BOOL_CODES, ""),
        "units": (in_set, list(InputUnits), ""),
    }

    @classmethod
    def check(cls, field: str, value: Any) -> Any:
        """Validate one field; the range is checked against the sensor type in :meth:`wire`.

        Args:
            field: the field name.
            value: its new value.

        Returns:
            The validated value.
        """
        if field == "input_range":
            return value
        return super().check(field, value)

    @classmethod
    def from_reply(cls, reply: Any) -> InputType336:
        """Parse an ``INTYPE?`` reply such as ``1,0,0,0,1``.

        Args:
            reply: the reply.

        Returns:
            The input type, the range code converted to V or Ω.
        """
        f = reply_fields(reply, 5, 6)
        sensor_type = reply_enum(SensorType, f[0])
        code = reply_int(f[2])
        input_range: float | None = None
        if int(sensor_type) in INPUT_RANGES:
            input_range = _lookup(INPUT_RANGES[int(sensor_type)][0], code, reply)
        return cls(
            sensor_type,
            bool(reply_int(f[1])),
            input_range,
            bool(reply_int(f[3])),
            reply_enum(InputUnits, f[4]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``INTYPE`` arguments after the input.

        Returns:
            ``(type, autorange, range code, compensation, units)`` as text.

        Raises:
            SettingOutOfRange: unnamed; a field is refused (the range must be one
                of the sensor type's, autorange only on resistive sensors).
        """
        c = self.checked()
        kind = int(c["sensor_type"])
        code = 0
        if kind in INPUT_RANGES:
            table, unit = INPUT_RANGES[kind]
            try:
                value = in_set(self.input_range, table)
            except SettingOutOfRange as exc:
                raise refuse(self.input_range, exc.allowed, field="input_range",
                             unit=unit) from None
            code = table[value]
        # A disabled input has no range (and the capacitance option's ranges
        # are not modelled): whatever input_range holds is not sent.
        if c["autorange"] and kind not in AUTORANGE_TYPES:
            raise refuse(True, "False for a diode or thermocouple (no autorange)",
                         field="autorange")
        return (
            str(kind),
            str(BOOL_CODES[c["autorange"]]),
            str(code),
            str(BOOL_CODES[c["compensation"]]),
            str(int(c["units"])),
        )


@dataclass(frozen=True)
class OutputSetup336(Structured):
    """``OUTMODE``: how a 336 output is driven.

    Attributes:
        mode: output mode.
        control_input: ``"A"`` … ``"D"``, or ``""`` for none.
        powerup_enable: stay on after a power cycle.
    """

    mode: OutputMode336
    control_input: str
    powerup_enable: bool

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "mode": (in_set, list(OutputMode336), ""),
        "control_input": (in_set, INPUT_CODES, ""),
        "powerup_enable": (in_set, BOOL_CODES, ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> OutputSetup336:
        """Parse an ``OUTMODE?`` reply such as ``1,2,0``.

        Args:
            reply: the reply.

        Returns:
            The set-up.
        """
        f = reply_fields(reply, 3)
        return cls(
            reply_enum(OutputMode336, f[0]),
            _lookup(INPUT_CODES, reply_int(f[1]), reply),
            bool(reply_int(f[2])),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``OUTMODE`` arguments after the output.

        Returns:
            ``(mode, input code, powerup)`` as text.
        """
        c = self.checked()
        return (
            str(int(c["mode"])),
            str(INPUT_CODES[c["control_input"]]),
            str(BOOL_CODES[c["powerup_enable"]]),
        )


@dataclass(frozen=True)
class HeaterSetup336(Structured):
    """``HTRSET``: heater load and current limit of a 336 output.

    Attributes:
        resistance: heater resistance in ohms, 25 or 50.
        max_current: maximum current in A: 0.707, 1, 1.141, 1.732, or 0 for the user limit.
        max_user_current: user current limit in A (0–2).
        display: heater output shown as current or power.
    """

    resistance: float
    max_current: float
    max_user_current: float
    display: HeaterDisplay

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "resistance": (in_set, HEATER_RESISTANCES, "Ohm"),
        "max_current": (in_set, MAX_CURRENTS, "A"),
        "max_user_current": (in_range, (0.0, 2.0), "A"),
        "display": (in_set, list(HeaterDisplay), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> HeaterSetup336:
        """Parse an ``HTRSET?`` reply such as ``2,4,+0.000,1``.

        Args:
            reply: the reply.

        Returns:
            The set-up, with codes converted to ohms and amperes.
        """
        f = reply_fields(reply, 4)
        return cls(
            _lookup(HEATER_RESISTANCES, reply_int(f[0]), reply),
            _lookup(MAX_CURRENTS, reply_int(f[1]), reply),
            reply_float(f[2]),
            reply_enum(HeaterDisplay, f[3]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``HTRSET`` arguments after the output.

        Returns:
            ``(resistance code, max current code, max user current, display)`` as text.
        """
        c = self.checked()
        return (
            str(HEATER_RESISTANCES[c["resistance"]]),
            str(MAX_CURRENTS[c["max_current"]]),
            decimal_text(c["max_user_current"]),
            str(int(c["display"])),
        )


@dataclass(frozen=True)
class PID336(PIDGains):
    """PID gains of a 336 output: P 0.1–1000, I 0.1–1000, D 0–200 %."""

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "p": (in_range, (0.1, 1000.0), ""),
        "i": (in_range, (0.1, 1000.0), ""),
        "d": (in_range, (0.0, 200.0), "%"),
    }


@dataclass(frozen=True)
class Ramp336(Ramp):
    """Setpoint ramp of a 336 output: rate 0.1–100 K/min."""

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "enabled": (in_set, BOOL_CODES, ""),
        "rate": (in_range, (0.1, 100.0), "K/min"),
    }
