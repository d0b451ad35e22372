"""User calibration curves on Lake Shore controllers: header, points, upload and read-back.

:class:`CurveMethods` is a mix-in for the instrument class (the 372 uses it)
giving:

* ``curve_header(number)`` / ``set_curve_header(number, header)`` — ``CRVHDR``
  with a :class:`CurveHeader` (name, serial, format, limit, coefficient);
* ``curve_point(number, index)`` / ``set_curve_point(number, index, units, kelvin)``
  — ``CRVPT``;
* ``upload_curve(number, points, name=..., serial=...)`` — a whole list of
  ``(ohms, kelvin)`` points in one call: everything is validated before the
  first byte is sent, points are sorted by sensor units, and a ``0,0`` point
  after the last one ends the curve so that no point of an older, longer
  curve survives;
* ``read_curve(number)`` — header and points back, as ``(ohms, kelvin)``.

For the log format (``CurveFormat.LOG_OHM_PER_K``) the instrument stores
log10(Ω); upload and read-back convert, so callers always use ohms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.ls372_codes import CurveFormat, Tempco
from drivers.lakeshore.wire import (
    decimal_text,
    reply_enum,
    reply_fields,
    reply_float,
    unquote,
)
from drivers.validators import instrument_name, require_in_range, require_in_set

MAX_POINTS = 200
NAME_CHARS = 15
SERIAL_CHARS = 10


def six_digits(value: float) -> str:
    """Format a curve value with six significant digits, as the controller stores them.

    Args:
        value: the number.

    Returns:
        Plain decimal text.
    """
    return decimal_text(float(f"{value:.6g}"))


@dataclass(frozen=True)
class CurveHeader:
    """``CRVHDR``: what a curve is.

    Attributes:
        name: curve name (at most 15 characters).
        serial: sensor serial number (at most 10 characters).
        format: data format (units of the points).
        limit: temperature limit in kelvin.
        coefficient: temperature coefficient (negative for RuOx / Cernox).
    """

    name: str
    serial: str
    format: CurveFormat
    limit: float
    coefficient: Tempco

    @classmethod
    def from_reply(cls, reply: Any) -> CurveHeader:
        """Parse a ``CRVHDR?`` reply such as ``RX-102A-AA     ,U01234    ,3,+40.000,1``.

        Args:
            reply: the reply (names may be quoted or padded).

        Returns:
            The header.
        """
        f = reply_fields(reply, 5)
        return cls(
            name=unquote(f[0]),
            serial=unquote(f[1]),
            format=reply_enum(CurveFormat, f[2]),
            limit=reply_float(f[3]),
            coefficient=reply_enum(Tempco, f[4]),
        )


class CurveMethods:
    """Mix-in: curve commands for a Lake Shore instrument; list it after the Instrument base.

    Attributes:
        USER_CURVES: the curve numbers that may be written.
        CURVE_FORMATS: the formats this model accepts.
    """

    USER_CURVES: ClassVar[tuple[int, int]] = (21, 59)
    CURVE_FORMATS: ClassVar[tuple[CurveFormat, ...]] = tuple(CurveFormat)

    # Provided by PyMeasure's Instrument, which comes first in the subclass's bases.
    ask: Callable[[str], str]
    write: Callable[[str], None]

    def _check_number(self, number: Any, *, writable: bool) -> int:
        low = self.USER_CURVES[0] if writable else 1
        return int(
            require_in_range(
                number,
                low,
                self.USER_CURVES[1],
                instrument=instrument_name(self),
                command="curve number",
                integer=True,
            )
        )

    def curve_header(self, number: int) -> CurveHeader:
        """Read a curve header (``CRVHDR? n``).

        Args:
            number: curve number (1–59).

        Returns:
            The header.
        """
        n = self._check_number(number, writable=False)
        return CurveHeader.from_reply(self.ask(f"CRVHDR? {n}"))

    def _header_args(self, number: int, header: CurveHeader) -> str:
        who = instrument_name(self)
        n = self._check_number(number, writable=True)
        for text, limit, what in (
            (header.name, NAME_CHARS, "curve name"),
            (header.serial, SERIAL_CHARS, "curve serial"),
        ):
            if not (len(text) <= limit and text.isascii() and '"' not in text and "," not in text):
                raise SettingOutOfRange(
                    instrument=who,
                    command=what,
                    value=text,
                    allowed=f"ASCII text without quotes or commas, at most {limit} characters",
                )
        fmt = require_in_set(header.format, self.CURVE_FORMATS, instrument=who, command="format")
        limit_k = require_in_range(
            header.limit, 0.001, 9999.0, instrument=who, command="curve limit", unit="K"
        )
        coefficient = require_in_set(
            header.coefficient, list(Tempco), instrument=who, command="coefficient"
        )
        return (
            f'{n},"{header.name}","{header.serial}",{int(fmt)},'
            f"{six_digits(limit_k)},{int(coefficient)}"
        )

    def set_curve_header(self, number: int, header: CurveHeader) -> None:
        """Write a curve header (``CRVHDR``), after validating every field.

        Args:
            number: user curve number (21–59).
            header: the header.
        """
        self.write(f"CRVHDR {self._header_args(number, header)}")

    def curve_point(self, number: int, index: int) -> tuple[float, float]:
        """Read one curve point (``CRVPT? n,i``) as stored: (sensor units, kelvin).

        Args:
            number: curve number (1–59).
            index: point index (1–200).

        Returns:
            ``(units, kelvin)``; units are log10(Ω) for the log format.
        """
        n = self._check_number(number, writable=False)
        i = require_in_range(
            index,
            1,
            MAX_POINTS,
            instrument=instrument_name(self),
            command="point index",
            integer=True,
        )
        f = reply_fields(self.ask(f"CRVPT? {n},{i}"), 2, 3)
        return reply_float(f[0]), reply_float(f[1])

    def set_curve_point(self, number: int, index: int, units: float, kelvin: float) -> None:
        """Write one curve point (``CRVPT n,i,units,kelvin``) as stored.

        Args:
            number: user curve number (21–59).
            index: point index (1–200).
            units: sensor units (Ω, or log10 Ω for the log format).
            kelvin: temperature.
        """
        who = instrument_name(self)
        n = self._check_number(number, writable=True)
        i = require_in_range(
            index, 1, MAX_POINTS, instrument=who, command="point index", integer=True
        )
        u = require_in_range(units, -1e9, 1e9, instrument=who, command="point units")
        k = require_in_range(kelvin, 0.0, 9999.0, instrument=who, command="point kelvin", unit="K")
        self.write(f"CRVPT {n},{i},{six_digits(u)},{six_digits(k)}")

    def upload_curve(
        self,
        number: int,
        points: Sequence[tuple[float, float]],
        *,
        name: str,
        serial: str = "",
        format: CurveFormat = CurveFormat.OHM_PER_K,
        limit: float | None = None,
        coefficient: Tempco | None = None,
    ) -> CurveHeader:
        """Upload a whole calibration curve: header and all points, in one call.

        Args:
            number: user curve number (21–59).
            points: ``(ohms, kelvin)`` pairs, 2 to 200, any order.
            name: curve name (at most 15 characters).
            serial: sensor serial (at most 10 characters).
            format: data format; for the log format ohms are sent as log10.
            limit: temperature limit in kelvin (default: the warmest point).
            coefficient: temperature coefficient (default: from the points).

        Returns:
            The header written.

        Raises:
            SettingOutOfRange: anything invalid; nothing has been sent then.
        """
        who = instrument_name(self)
        pts = [(float(r), float(t)) for r, t in points]
        if not 2 <= len(pts) <= MAX_POINTS:
            raise SettingOutOfRange(
                instrument=who,
                command="curve points",
                value=len(pts),
                allowed=f"2 to {MAX_POINTS} points",
            )
        for ohms, kelvin in pts:
            if not (math.isfinite(ohms) and ohms > 0 and math.isfinite(kelvin) and kelvin > 0):
                raise SettingOutOfRange(
                    instrument=who,
                    command="curve point",
                    value=(ohms, kelvin),
                    allowed="positive, finite ohms and kelvin",
                )
        pts.sort()
        if coefficient is None:
            coefficient = Tempco.NEGATIVE if pts[0][1] > pts[-1][1] else Tempco.POSITIVE
        header = CurveHeader(
            name, serial, format, max(t for _, t in pts) if limit is None else limit, coefficient
        )
        log = format == CurveFormat.LOG_OHM_PER_K
        stored = [(math.log10(r) if log else r, t) for r, t in pts]
        header_args = self._header_args(number, header)  # validates before any write
        n = self._check_number(number, writable=True)
        self.write(f"CRVHDR {header_args}")
        for i, (units, kelvin) in enumerate(stored, start=1):
            self.write(f"CRVPT {n},{i},{six_digits(units)},{six_digits(kelvin)}")
        if len(stored) < MAX_POINTS:
            self.write(f"CRVPT {n},{len(stored) + 1},0,0")
        return header

    def read_curve(self, number: int) -> tuple[CurveHeader, list[tuple[float, float]]]:
        """Read a curve back: header, then points up to the first ``0,0`` point.

        Args:
            number: curve number (1–59).

        Returns:
            ``(header, [(ohms, kelvin), ...])``.
        """
        header = self.curve_header(number)
        log = header.format == CurveFormat.LOG_OHM_PER_K
        points: list[tuple[float, float]] = []
        for index in range(1, MAX_POINTS + 1):
            units, kelvin = self.curve_point(number, index)
            if units == 0 and kelvin == 0:
                break
            points.append((10**units if log else units, kelvin))
        return header, points
