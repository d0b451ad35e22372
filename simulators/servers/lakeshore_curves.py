"""User curves of the simulated Lake Shore controllers: ``CRVHDR``, ``CRVPT``, ``CRVDEL``.

:class:`CurveStore` keeps the curves in the server's dict of
:class:`~simulators.physics.thermometers.CalibrationTable` (the same tables
the inputs convert with, so a curve edit changes the kelvin reading) and
answers in each model's format:

* Model 372 (``curvature=True``): formats 3, 4, 7; ``CRVPT? n,i`` answers
  ``+nnn.nnnE+nn,+nnn.nnnE+nn`` and, for a cubic-spline curve (format 7),
  the curvature as a third field; ``CRVPT`` takes an optional fifth field
  (the curvature; the manual's own example sends ``N`` there, which is
  accepted and stores none);
* Model 336: formats 1–4; ``CRVPT? n,i`` answers ``+0.101910,+470.000``.

Both answer ``CRVHDR? n`` as ``<name, 15>,<serial, 10>,<format>,+nnn.nnn,<coefficient>``.
Points are kept to six significant digits, as the controllers store them.

Faults: :meth:`CurveStore.corrupt_point` makes the next write of one point
store a different number (what a garbled transfer does), so that a driver's
read-back verification has something to find.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from simulators.physics.thermometers import CalibrationTable
from simulators.servers.lakeshore_common import (
    Handler,
    Malformed,
    arg_float,
    arg_int,
    fmt_six,
    need,
)

CORRUPTION_FACTOR = 1.05
"""A corrupted point stores its sensor units times this (far beyond the 6-digit resolution)."""


def _six(value: float) -> float:
    return float(f"{value:.6g}")


def fmt_plain_six(value: float) -> str:
    """Six significant digits as plain decimal with a sign: ``+470.000``, ``+0.101910``."""
    if value == 0 or not math.isfinite(value):
        return "+0.00000"
    decimals = max(0, 5 - int(math.floor(math.log10(abs(value)))))
    return f"{value:+.{decimals}f}"


class CurveStore:
    """The curve commands of one controller, on the curves its inputs use.

    Args:
        curves: curve number -> table (shared with the inputs).
        formats: the data formats this model accepts.
        curvature: the 372's optional curvature field (and its reply format).
    """

    def __init__(self, curves: dict[int, CalibrationTable], *, formats: tuple[int, ...],
                 curvature: bool) -> None:
        self.curves = curves
        self.formats = formats
        self.curvature = curvature
        self._curvature: dict[tuple[int, int], float] = {}
        self._armed: set[tuple[int, int]] = set()
        self.fmt_point: Callable[[float], str] = fmt_six if curvature else fmt_plain_six

    def handlers(self) -> dict[str, Handler]:
        """The mnemonics this store answers."""
        return {
            "CRVHDR": self._crvhdr_set,
            "CRVHDR?": self._crvhdr_get,
            "CRVPT": self._crvpt_set,
            "CRVPT?": self._crvpt_get,
            "CRVDEL": self._crvdel,
        }

    def corrupt_point(self, curve: int, index: int) -> None:
        """Make the next ``CRVPT`` of point ``index`` of ``curve`` store a wrong value."""
        self._armed.add((int(curve), int(index)))

    @staticmethod
    def _number(text: str, *, writable: bool) -> int:
        return arg_int(text, 21 if writable else 1, 59)

    def _crvhdr_set(self, args: list[str]) -> None:
        need(args, 6)
        number = self._number(args[0], writable=True)
        fmt = arg_int(args[3], 1, 7)
        if fmt not in self.formats:
            raise Malformed(f"curve format {fmt} not one of {self.formats}")
        limit = arg_float(args[4], 0.0, 9999.0)
        coefficient = arg_int(args[5], 1, 2)
        table = self.curves.setdefault(number, CalibrationTable(points=[]))
        table.name, table.serial = args[1][:15], args[2][:10]
        table.fmt, table.limit_k, table.coefficient = fmt, limit, coefficient

    def _crvhdr_get(self, args: list[str]) -> str:
        need(args, 1)
        number = self._number(args[0], writable=False)
        table = self.curves.get(number)
        if table is None:
            return f"{'':15},{'':10},0,{0.0:+08.3f},1"
        return (f"{table.name:<15},{table.serial:<10},{table.fmt},{table.limit_k:+08.3f},"
                f"{table.coefficient}")

    def _crvpt_set(self, args: list[str]) -> None:
        need(args, 4, at_most=5)
        number = self._number(args[0], writable=True)
        index = arg_int(args[1], 1, 200)
        units = _six(arg_float(args[2]))
        kelvin = _six(arg_float(args[3], 0.0, 9999.0))
        curvature = 0.0
        if len(args) == 5 and not args[4].isalpha():  # the manual's example sends "N" here
            curvature = _six(arg_float(args[4]))
        if (number, index) in self._armed:
            self._armed.discard((number, index))
            units = _six(units * CORRUPTION_FACTOR) if units else 1.0
        table = self.curves.setdefault(number, CalibrationTable(points=[]))
        while len(table.points) < index:
            table.points.append((0.0, 0.0))
        table.points[index - 1] = (units, kelvin)
        self._curvature[(number, index)] = curvature

    def _crvpt_get(self, args: list[str]) -> str:
        need(args, 2)
        number = self._number(args[0], writable=False)
        index = arg_int(args[1], 1, 200)
        table = self.curves.get(number)
        units, kelvin = (0.0, 0.0)
        if table is not None and index <= len(table.points):
            units, kelvin = table.points[index - 1]
        reply = f"{self.fmt_point(units)},{self.fmt_point(kelvin)}"
        if self.curvature and table is not None and table.fmt == 7:
            reply += f",{fmt_six(self._curvature.get((number, index), 0.0))}"
        return reply

    def _crvdel(self, args: list[str]) -> None:
        need(args, 1)
        number = self._number(args[0], writable=True)
        self.curves.pop(number, None)
        for key in [k for k in self._curvature if k[0] == number]:
            del self._curvature[key]
