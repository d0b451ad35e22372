"""Codes and data lines of Pfeiffer's gauge controllers (TPG 366 MaxiGauge and its family).

The controllers answer every measurement with a gauge status and the number
the unit shows, ``status,sx.xxxxEsxx`` (six such pairs for ``PRX`` on the
six-gauge MaxiGauge). The status is the unit's own verdict on the number:

======  =====================  ============================================
status  Pfeiffer's words       quality flag
======  =====================  ============================================
0       measurement data okay  OK
1       underrange             ``UNDERRANGE``
2       overrange              ``OVERRANGE``
3       sensor error           ``SENSOR_ERROR``
4       sensor off             ``SENSOR_OFF``
5       no sensor              ``SENSOR_OFF``
6       identification error   ``SENSOR_ERROR``
======  =====================  ============================================

The same codes appear in the Bluefors ``maxigauge`` log, which records a
MaxiGauge's answers, so :mod:`drivers.bluefors.parsing` maps them through
:func:`status_quality` too.

Interface: :class:`GaugeStatus`, :class:`PressureUnit`, :class:`SensorState`,
:class:`GaugeReading`, :func:`status_quality`, :func:`parse_reading`,
:func:`parse_readings`, :func:`parse_sensor_states`, :func:`parse_unit`,
:data:`UNIT_TEXT`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from drivers.readings import Quality, Reading
from drivers.validators import bad_reply

__all__ = [
    "UNIT_TEXT",
    "GaugeReading",
    "GaugeStatus",
    "PressureUnit",
    "SensorState",
    "parse_reading",
    "parse_readings",
    "parse_sensor_states",
    "parse_unit",
    "status_quality",
]

#: ``UNI`` code -> unit text of the published pressures.
UNIT_TEXT = {0: "mbar", 1: "Torr", 2: "Pa"}


class GaugeStatus(IntEnum):
    """Status of one gauge reading, as the unit sends it."""

    OK = 0
    UNDERRANGE = 1
    OVERRANGE = 2
    SENSOR_ERROR = 3
    SENSOR_OFF = 4
    NO_SENSOR = 5
    IDENTIFICATION_ERROR = 6


#: The unit's words for each status (Pfeiffer's mnemonic descriptions).
STATUS_WORDS: dict[GaugeStatus, str] = {
    GaugeStatus.OK: "measurement data okay",
    GaugeStatus.UNDERRANGE: "underrange",
    GaugeStatus.OVERRANGE: "overrange",
    GaugeStatus.SENSOR_ERROR: "sensor error",
    GaugeStatus.SENSOR_OFF: "sensor off",
    GaugeStatus.NO_SENSOR: "no sensor",
    GaugeStatus.IDENTIFICATION_ERROR: "identification error",
}

_STATUS_FLAGS: dict[GaugeStatus, Quality] = {
    GaugeStatus.OK: Quality.OK,
    GaugeStatus.UNDERRANGE: Quality.UNDERRANGE,
    GaugeStatus.OVERRANGE: Quality.OVERRANGE,
    GaugeStatus.SENSOR_ERROR: Quality.SENSOR_ERROR,
    GaugeStatus.SENSOR_OFF: Quality.SENSOR_OFF,
    # no sensor plugged in: nothing is measured, as with a sensor switched off
    GaugeStatus.NO_SENSOR: Quality.SENSOR_OFF,
    # the unit cannot tell what is plugged in: the sensor (or its cable) is at fault
    GaugeStatus.IDENTIFICATION_ERROR: Quality.SENSOR_ERROR,
}


def status_quality(code: int) -> tuple[Quality, str]:
    """The quality flags and the note for a gauge status code.

    Args:
        code: the status the unit sent (0-6).

    Returns:
        ``(flags, note)``; ``(OK, "")`` for status 0. A code the unit is not
        known to send is ``INVALID``, so it is never taken for a measurement.
    """
    try:
        status = GaugeStatus(code)
    except ValueError:
        return Quality.INVALID, f"status {code}: unknown gauge status"
    if status is GaugeStatus.OK:
        return Quality.OK, ""
    return _STATUS_FLAGS[status], f"status {int(status)}: {STATUS_WORDS[status]}"


class PressureUnit(IntEnum):
    """``UNI`` pressure unit."""

    MBAR = 0
    TORR = 1
    PA = 2


class SensorState(IntEnum):
    """``SEN`` state of one sensor."""

    CANNOT_SWITCH = 0
    OFF = 1
    ON = 2


def _float(field: str, reply: Any) -> float:
    try:
        return float(field.strip())
    except ValueError:
        raise bad_reply(reply, f"{field!r} is not a number") from None


def _int(field: str, reply: Any) -> int:
    number = _float(field, reply)
    if not number.is_integer():
        raise bad_reply(reply, f"{field!r} is not an integer")
    return int(number)


def _fields(reply: Any, count: int) -> list[str]:
    text = ",".join(str(v) for v in reply) if isinstance(reply, (list, tuple)) else str(reply)
    fields = [f.strip() for f in text.strip().split(",")]
    if len(fields) != count:
        raise bad_reply(reply, f"expected {count} comma-separated fields")
    return fields


@dataclass(frozen=True)
class GaugeReading:
    """One gauge's status and the number the unit sent with it.

    Attributes:
        status: the gauge status.
        pressure: the number the unit sent (a pressure only when ``status`` is OK).
    """

    status: GaugeStatus
    pressure: float

    @property
    def valid(self) -> bool:
        """Whether the pressure is a measurement (status OK)."""
        return self.status == GaugeStatus.OK

    @property
    def value(self) -> float:
        """The pressure if valid, else NaN."""
        return self.pressure if self.valid else math.nan

    def reading(self, t_ns: int | None = None) -> Reading:
        """The daemon's view: the number as sent, flagged with the unit's verdict.

        Args:
            t_ns: when the unit was asked (ns since the epoch); None = now.

        Returns:
            The reading; its note gives the status in the unit's words.
        """
        quality, note = status_quality(int(self.status))
        return Reading(self.pressure, quality, t_ns, note)

    @classmethod
    def parse(cls, status: str, pressure: str, reply: Any) -> GaugeReading:
        """Build a reading from its two reply fields.

        Args:
            status: status field, e.g. ``"0"``.
            pressure: pressure field, e.g. ``"+1.2345E-03"``.
            reply: the whole reply, for error messages.

        Returns:
            The reading.
        """
        code = _int(status, reply)
        try:
            gauge_status = GaugeStatus(code)
        except ValueError:
            raise bad_reply(reply, f"unknown gauge status {code}") from None
        return cls(gauge_status, _float(pressure, reply))


def parse_reading(reply: Any) -> GaugeReading:
    """Parse a ``PRn`` data line such as ``0,+1.2345E-03``.

    Args:
        reply: the line.

    Returns:
        The reading.
    """
    f = _fields(reply, 2)
    return GaugeReading.parse(f[0], f[1], reply)


def parse_readings(reply: Any) -> list[GaugeReading]:
    """Parse a ``PRX`` data line ``s1,p1,...,s6,p6``.

    Args:
        reply: the line.

    Returns:
        Six readings.
    """
    f = _fields(reply, 12)
    return [GaugeReading.parse(f[2 * k], f[2 * k + 1], reply) for k in range(6)]


def parse_sensor_states(reply: Any) -> list[SensorState]:
    """Parse a ``SEN`` data line such as ``2,2,1,0,0,0``.

    Args:
        reply: the line.

    Returns:
        Six sensor states.
    """
    states = []
    for field in _fields(reply, 6):
        code = _int(field, reply)
        try:
            states.append(SensorState(code))
        except ValueError:
            raise bad_reply(reply, f"unknown sensor state {code}") from None
    return states


def parse_unit(reply: Any) -> PressureUnit:
    """Parse a ``UNI`` data line such as ``0``.

    Args:
        reply: the line.

    Returns:
        The unit.
    """
    code = _int(str(reply), reply)
    try:
        return PressureUnit(code)
    except ValueError:
        raise bad_reply(reply, f"unknown pressure unit {code}") from None
