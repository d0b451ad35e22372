"""User calibration curves on Lake Shore controllers: header, points, paced upload, verified read-back.

:class:`CurveMethods` is a mix-in for the instrument classes (the 372 and the
336 use it; each sets ``CURVE_FORMATS``) giving:

* ``curve_header(number)`` / ``set_curve_header(number, header)`` — ``CRVHDR``
  with a :class:`CurveHeader` (name, serial, format, limit, coefficient);
* ``curve_point(number, index)`` / ``set_curve_point(number, index, units, kelvin)``
  — ``CRVPT``;
* ``upload_curve(number, points, name=..., serial=...)`` — a whole curve of
  ``(sensor units, kelvin)`` points in one call: everything is validated
  before the first byte is sent, points are sorted by sensor units, a ``0,0``
  point after the last one ends the curve so that no point of an older,
  longer curve survives; then the header and every point are read back and
  compared with what was sent. A point that does not read back raises
  :class:`CurveVerifyError` naming the curve, the point and both values;
* ``read_curve(number)`` — header and points back.

Pacing: the manuals ask a program to leave 50 ms after a command before the
next communication and to start no more than 20 per second; a curve is
hundreds of commands in a row, so upload and read-back go through a
:class:`Pacer` that enforces both (single property reads need no pacing:
each waits for its reply).

Units: the sensor units of the curve's format, Ω for ``OHM_PER_K`` and
``CUBIC_SPLINE``, V for ``V_PER_K``, mV for ``MV_PER_K``; for
``LOG_OHM_PER_K`` the instrument stores log10(Ω) and upload / read-back
convert, so callers always use ohms.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers.errors import InstrumentError, SettingOutOfRange
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
PACE_S = 0.05
"""Least time between two communications while a curve is written or read (manual: 50 ms)."""
PER_SECOND = 20
"""Most communications started in any one second (manual: 20)."""

_NUMBER = re.compile(r"^\s*[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$")


def six_digits(value: float) -> str:
    """Format a curve value with six significant digits, as the controller stores them.

    Args:
        value: the number.

    Returns:
        Plain decimal text.
    """
    return decimal_text(float(f"{value:.6g}"))


def resolution(text: str) -> float:
    """The value of one unit in the last digit of a number as written (``+470.000`` -> 0.001).

    Args:
        text: a number such as ``0.10191``, ``+123.456E-03`` or ``25000``.

    Returns:
        The step of the last digit (1 for an integer without exponent).
    """
    match = _NUMBER.match(text)
    if match is None:
        return 0.0
    decimals = len(match.group(2) or "")
    exponent = int(match.group(3) or 0)
    return float(10.0 ** (exponent - decimals))


def same_number(sent: str, read: str) -> bool:
    """Whether a number read back is the number sent, to the resolution of either text.

    Args:
        sent: the text sent (six significant digits).
        read: the reply field (the instrument's own format).

    Returns:
        True when they differ by no more than half a step of the coarser text.
    """
    a, b = float(sent), float(read)
    tolerance = max(resolution(sent), resolution(read)) / 2
    return abs(a - b) <= tolerance * 1.001 + 1e-12 * max(abs(a), abs(b))


class Pacer:
    """Spaces communications: at least ``interval_s`` apart, at most ``per_second`` in a second.

    Args:
        interval_s: least time between the starts of two communications.
        per_second: most communications started in any window of one second.
        clock: monotonic time in seconds.
        sleep: waits a number of seconds.
    """

    def __init__(self, interval_s: float = PACE_S, per_second: int = PER_SECOND, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval_s = interval_s
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self.starts: deque[float] = deque(maxlen=per_second)

    def wait(self) -> None:
        """Wait until the next communication may start, then record its start."""
        now = self.clock()
        due = now
        if self.starts:
            due = max(due, self.starts[-1] + self.interval_s)
        if len(self.starts) == self.per_second:
            due = max(due, self.starts[0] + 1.0)
        if due > now:
            self.sleep(due - now)
            now = self.clock()
        self.starts.append(max(now, due))


class CurveVerifyError(InstrumentError):
    """A curve did not read back as written: which curve, which point, what was sent and read.

    Attributes:
        curve: the curve number.
        index: the point index (1–200); 0 for the header.
        sent: what was written (``(units, kelvin)`` for a point).
        read: what the instrument answered.
    """

    def __init__(self, *, instrument: str, curve: int, index: int, sent: Any, read: Any) -> None:
        self.curve = curve
        self.index = index
        self.sent = sent
        self.read = read
        where = "header" if index == 0 else f"point {index}"
        super().__init__(f"curve {curve} {where}: sent {sent!r} but it reads back {read!r}",
                         instrument=instrument, command="upload_curve")


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


@dataclass(frozen=True)
class CurvePlan:
    """A validated curve, ready to send: the header and the point commands with their texts.

    Attributes:
        number: the user curve number.
        header: the header.
        header_args: the ``CRVHDR`` arguments.
        points: ``(units text, kelvin text)`` of each point, index 1 first.
    """

    number: int
    header: CurveHeader
    header_args: str
    points: list[tuple[str, str]] = field(default_factory=list)


class CurveMethods:
    """Mix-in: curve commands for a Lake Shore instrument; list it after the Instrument base.

    Attributes:
        USER_CURVES: the curve numbers that may be written.
        CURVE_FORMATS: the formats this model accepts.
    """

    USER_CURVES: ClassVar[tuple[int, int]] = (21, 59)
    CURVE_FORMATS: ClassVar[tuple[CurveFormat, ...]] = (
        CurveFormat.OHM_PER_K, CurveFormat.LOG_OHM_PER_K, CurveFormat.CUBIC_SPLINE)

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

    def _check_index(self, index: Any) -> int:
        return int(require_in_range(index, 1, MAX_POINTS, instrument=instrument_name(self),
                                    command="point index", integer=True))

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
        return self._point_texts(number, index, None)[0]

    def _point_texts(self, number: int, index: int,
                     pacer: Pacer | None) -> tuple[tuple[float, float], tuple[str, str]]:
        n = self._check_number(number, writable=False)
        i = self._check_index(index)
        if pacer is not None:
            pacer.wait()
        f = reply_fields(self.ask(f"CRVPT? {n},{i}"), 2, 3)
        return (reply_float(f[0]), reply_float(f[1])), (f[0], f[1])

    def set_curve_point(self, number: int, index: int, units: float, kelvin: float) -> None:
        """Write one curve point (``CRVPT n,i,units,kelvin``) as stored.

        Args:
            number: user curve number (21–59).
            index: point index (1–200).
            units: sensor units (Ω, V, mV, or log10 Ω for the log format).
            kelvin: temperature.
        """
        who = instrument_name(self)
        n = self._check_number(number, writable=True)
        i = self._check_index(index)
        u = require_in_range(units, -1e9, 1e9, instrument=who, command="point units")
        k = require_in_range(kelvin, 0.0, 9999.0, instrument=who, command="point kelvin", unit="K")
        self.write(f"CRVPT {n},{i},{six_digits(u)},{six_digits(k)}")

    def plan_curve(
        self,
        number: int,
        points: Sequence[tuple[float, float]],
        *,
        name: str,
        serial: str = "",
        format: CurveFormat = CurveFormat.OHM_PER_K,
        limit: float | None = None,
        coefficient: Tempco | None = None,
    ) -> CurvePlan:
        """Validate a whole curve and prepare its commands; sends nothing.

        Args:
            number: user curve number (21–59).
            points: ``(sensor units, kelvin)`` pairs, 2 to 200, any order.
            name: curve name (at most 15 characters).
            serial: sensor serial (at most 10 characters).
            format: data format; for the log format ohms are sent as log10.
            limit: temperature limit in kelvin (default: the warmest point).
            coefficient: temperature coefficient (default: from the points).

        Returns:
            The plan.

        Raises:
            SettingOutOfRange: anything invalid.
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
        for units, kelvin in pts:
            if not (math.isfinite(units) and units > 0 and math.isfinite(kelvin) and kelvin > 0):
                raise SettingOutOfRange(
                    instrument=who,
                    command="curve point",
                    value=(units, kelvin),
                    allowed="positive, finite sensor units and kelvin",
                )
        pts.sort()
        if coefficient is None:
            coefficient = Tempco.NEGATIVE if pts[0][1] > pts[-1][1] else Tempco.POSITIVE
        header = CurveHeader(
            name, serial, format, max(t for _, t in pts) if limit is None else limit, coefficient
        )
        log = format == CurveFormat.LOG_OHM_PER_K
        header_args = self._header_args(number, header)
        n = self._check_number(number, writable=True)
        stored = [(six_digits(math.log10(u) if log else u), six_digits(t)) for u, t in pts]
        return CurvePlan(n, header, header_args, stored)

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
        verify: bool = True,
        pacer: Pacer | None = None,
    ) -> CurveHeader:
        """Upload a whole calibration curve, paced, then read every point back.

        Args:
            number: user curve number (21–59).
            points: ``(sensor units, kelvin)`` pairs, 2 to 200, any order.
            name: curve name (at most 15 characters).
            serial: sensor serial (at most 10 characters).
            format: data format; for the log format ohms are sent as log10.
            limit: temperature limit in kelvin (default: the warmest point).
            coefficient: temperature coefficient (default: from the points).
            verify: read the header and every point back and compare.
            pacer: spaces the commands (default: the manual's 50 ms, 20 per second).

        Returns:
            The header written.

        Raises:
            SettingOutOfRange: anything invalid; nothing has been sent then.
            CurveVerifyError: the header or a point does not read back as sent.
        """
        plan = self.plan_curve(number, points, name=name, serial=serial, format=format,
                               limit=limit, coefficient=coefficient)
        pacer = pacer if pacer is not None else Pacer()
        n = plan.number
        pacer.wait()
        self.write(f"CRVHDR {plan.header_args}")
        for i, (units, kelvin) in enumerate(plan.points, start=1):
            pacer.wait()
            self.write(f"CRVPT {n},{i},{units},{kelvin}")
        if len(plan.points) < MAX_POINTS:
            pacer.wait()
            self.write(f"CRVPT {n},{len(plan.points) + 1},0,0")
        if verify:
            self.verify_curve(plan, pacer)
        return plan.header

    def verify_curve(self, plan: CurvePlan, pacer: Pacer | None = None) -> None:
        """Read a written curve back and compare it with what was sent.

        Args:
            plan: what was sent (from :meth:`plan_curve`).
            pacer: spaces the queries (default: the manual's pacing).

        Raises:
            CurveVerifyError: the first header field or point that differs.
        """
        pacer = pacer if pacer is not None else Pacer()
        who = instrument_name(self)
        pacer.wait()
        header = self.curve_header(plan.number)
        sent = plan.header
        for ok, sent_value, read_value in (
            (header.name == sent.name, sent.name, header.name),
            (header.serial == sent.serial, sent.serial, header.serial),
            (header.format == sent.format, sent.format, header.format),
            (same_number(six_digits(sent.limit), repr(header.limit)), sent.limit, header.limit),
        ):
            if not ok:
                raise CurveVerifyError(instrument=who, curve=plan.number, index=0,
                                       sent=sent_value, read=read_value)
        expected = [*plan.points, ("0", "0")][:MAX_POINTS]
        for i, (units, kelvin) in enumerate(expected, start=1):
            values, texts = self._point_texts(plan.number, i, pacer)
            if not (same_number(units, texts[0]) and same_number(kelvin, texts[1])):
                raise CurveVerifyError(instrument=who, curve=plan.number, index=i,
                                       sent=(float(units), float(kelvin)), read=values)

    def read_curve(self, number: int,
                   pacer: Pacer | None = None) -> tuple[CurveHeader, list[tuple[float, float]]]:
        """Read a curve back: header, then points up to the first ``0,0`` point.

        Args:
            number: curve number (1–59).
            pacer: spaces the queries (default: the manual's pacing).

        Returns:
            ``(header, [(sensor units, kelvin), ...])``, ohms for the log format.
        """
        pacer = pacer if pacer is not None else Pacer()
        pacer.wait()
        header = self.curve_header(number)
        log = header.format == CurveFormat.LOG_OHM_PER_K
        points: list[tuple[float, float]] = []
        for index in range(1, MAX_POINTS + 1):
            (units, kelvin), _ = self._point_texts(number, index, pacer)
            if units == 0 and kelvin == 0:
                break
            points.append((10**units if log else units, kelvin))
        return header, points
