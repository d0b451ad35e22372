"""What the simulated Lake Shore 372 and 336 share: command parsing, number formats, PID.

Interface:

* :func:`parse_command` ``(text) -> (mnemonic, args)``: ``"RANGE 0,5"``,
  ``"RANGE 0 5"``, ``"range 0, 5"`` and ``"KRDG?6"`` all parse; quoted
  arguments (``INNAME 1,"Cold plate"``) stay whole.
* :func:`split_chain`: one line may chain several commands and queries
  separated by ``;`` (``RDGK? 6;RDGST? 6``); :class:`LakeShoreServer`
  answers every query of the chain in one line, the answers separated by
  ``;`` (``+012.345E-03;000``), as the controllers do.
* :class:`LakeShoreServer`: the base of both servers: the chain, silence for
  anything malformed (counted in ``error_count``), the fridge's lock, and a
  bounded list of the commands received (the last :data:`RECEIVED_KEPT`).
* :class:`Malformed`: raised by handlers for a command a real unit ignores;
  the servers answer it with silence and count it.
* :func:`arg_int`, :func:`arg_float`, :func:`arg_choice`: argument
  conversion that raises :class:`Malformed` on anything out of range.
* :func:`fmt_eng`: the 372's reading format, ``+293.873E+00``
  (engineering exponent, 3.3 digit mantissa).
* :func:`fmt_fixed`: the 336's reading format, ``+004.2150``.
* :func:`fmt_six`: a number to six significant digits in the 372's
  ``+nnn.nnnE+nn`` layout (curve points, which are stored to 6 digits).
* :class:`ControlLoop`: a heater control loop with setpoint ramp and PID,
  ``output = P*(e + integral + D*de/dt)`` in percent of the range, with
  the integral clamped so the output stays within 0-100 % (no wind-up).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulators.physics.fridge import DilutionFridge
from simulators.servers.base import InstrumentServer

log = logging.getLogger(__name__)

Handler = Callable[[list[str]], "str | None"]


_MNEMONIC = re.compile(r"\s*(\*?[A-Za-z]+\??)")
_TOKEN = re.compile(r'"([^"]*)"|([^,\s]+)')


class Malformed(ValueError):
    """A command the instrument does not understand; real units stay silent."""


def parse_command(text: str) -> tuple[str, list[str]]:
    """Split a command into its upper-case mnemonic and its arguments.

    Args:
        text: one command without its terminator.

    Returns:
        ``(mnemonic, args)``; arguments were separated by commas and/or spaces.

    Raises:
        Malformed: no mnemonic, or an unterminated quote.
    """
    match = _MNEMONIC.match(text)
    if match is None:
        raise Malformed(f"no mnemonic in {text!r}")
    rest = text[match.end() :]
    if rest.count('"') % 2:
        raise Malformed(f"unbalanced quote in {text!r}")
    args = [q if q != "" else b for q, b in _TOKEN.findall(rest)]
    return match.group(1).upper(), args


def split_chain(text: str) -> list[str]:
    """Split a line into the commands chained with ``;`` (not inside quotes); empty parts dropped.

    Args:
        text: one line without its terminator.

    Returns:
        The commands, in order.
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


class LakeShoreServer(InstrumentServer):
    """What the simulated Lake Shore controllers share: command chains, silence, bounded log.

    Subclasses fill :attr:`handlers` (mnemonic -> handler; a handler returns
    the reply text or ``None`` and raises :class:`Malformed` for anything a
    real unit ignores).

    Args:
        fridge: the refrigerator model (its lock becomes this server's lock).
        host: address to bind.
        port: TCP port; 0 picks a free one.
        name: name in logs.
    """

    def __init__(self, fridge: DilutionFridge, host: str, port: int, *, name: str) -> None:
        super().__init__(host, port, name=name)
        self.fridge = fridge
        self.lock = fridge.lock  # one lock for everything that touches the fridge: no lock order
        self.error_count = 0
        # a long-running lab must not grow without bound; tests look at the recent past
        self.handlers: dict[str, Handler] = {}

    def handle(self, command: str) -> str | None:
        """Answer a line: every query of a ``;`` chain answered, the answers joined by ``;``.

        A malformed part is ignored (and counted) like a real unit ignores it;
        the other parts are still carried out.
        """
        replies = []
        for part in split_chain(command):
            try:
                mnemonic, args = parse_command(part)
                handler = self.handlers.get(mnemonic)
                if handler is None:
                    raise Malformed(f"unknown command {mnemonic}")
                self.fridge.sync()
                reply = handler(args)
            except Malformed as exc:
                self.error_count += 1
                log.debug("%s: ignored %r (%s)", self.name, part, exc)
                continue
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None


def need(args: Sequence[str], count: int, *, at_most: int | None = None) -> None:
    """Check the number of arguments; raise :class:`Malformed` otherwise."""
    high = count if at_most is None else at_most
    if not count <= len(args) <= high:
        raise Malformed(f"expected {count}..{high} arguments, got {len(args)}")


def arg_int(text: str, low: int, high: int) -> int:
    """An integer argument within ``[low, high]`` (``"5"``, ``"05"``, ``"5.0"`` accepted)."""
    try:
        value = float(text)
    except ValueError:
        raise Malformed(f"{text!r} is not a number") from None
    if not value.is_integer() or not low <= value <= high:
        raise Malformed(f"{text!r} not an integer in {low}..{high}")
    return int(value)


def arg_float(text: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite number within ``[low, high]``."""
    try:
        value = float(text)
    except ValueError:
        raise Malformed(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Malformed(f"{text!r} not in {low}..{high}")
    return value


def arg_choice(text: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (case-insensitive); returns the canonical spelling."""
    for choice in choices:
        if text.upper() == choice.upper():
            return choice
    raise Malformed(f"{text!r} not one of {', '.join(choices)}")


def fmt_eng(value: float) -> str:
    """The 372's number format: ``+293.873E+00``, ``+075.123E+03``, ``+000.000E+00``."""
    if value == 0 or not math.isfinite(value):
        return "+000.000E+00"
    sign = "-" if value < 0 else "+"
    magnitude = abs(value)
    exponent = int(math.floor(math.log10(magnitude) / 3.0)) * 3
    mantissa = round(magnitude / 10.0**exponent, 3)
    if mantissa >= 1000.0:
        mantissa /= 1000.0
        exponent += 3
    return f"{sign}{mantissa:07.3f}E{exponent:+03d}"


def fmt_six(value: float) -> str:
    """Six significant digits in the ``+nnn.nnnE+nn`` layout: ``+470.000E+00``, ``+101.910E-03``."""
    if value == 0 or not math.isfinite(value):
        return "+000.000E+00"
    sign = "-" if value < 0 else "+"
    magnitude = abs(value)
    exponent = int(math.floor(math.log10(magnitude))) - 2
    mantissa = round(magnitude / 10.0**exponent, 3)
    if mantissa >= 1000.0:
        mantissa /= 10.0
        exponent += 1
    return f"{sign}{mantissa:07.3f}E{exponent:+03d}"


def fmt_fixed(value: float) -> str:
    """The 336's reading format: ``+004.2150``, ``+077.3500``, ``+000.0000``."""
    if not math.isfinite(value):
        value = 0.0
    return f"{value:+09.4f}"


@dataclass
class ControlLoop:
    """One heater output's control loop: mode, setpoint ramp, PID, manual output.

    Attributes:
        mode: instrument-specific mode number (what it means is the server's business).
        source: the input that is controlled (``"A"``, ``"6"``, ``"B"``...).
        setpoint: the target setpoint, in the control input's units.
        ramp_on: ramp the setpoint instead of stepping it.
        ramp_rate_per_min: ramp rate in setpoint units per minute.
        p: gain, percent of range per setpoint unit of error.
        i: integral setting: an integral time in s when ``integral_time_s``
            (372), else repeats per 1000 s (336); 0 turns the integral off.
        d: derivative time, s.
        manual_pct: manual (open-loop) output, percent.
        range: heater range index; 0 is off.
        integral_time_s: how ``i`` is read (see ``i``).
        output_pct: the last computed output, percent of the range.
        present_setpoint: where the ramp has got to (``None`` before the first setpoint).
    """

    mode: int = 0
    source: str = "A"
    setpoint: float = 0.0
    ramp_on: bool = False
    ramp_rate_per_min: float = 0.1
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    manual_pct: float = 0.0
    range: int = 0
    integral_time_s: bool = True
    output_pct: float = 0.0
    present_setpoint: float | None = None
    _integral: float = field(default=0.0, repr=False)
    _last_error: float | None = field(default=None, repr=False)

    @property
    def ramping(self) -> bool:
        """True while the present setpoint is still moving toward the target."""
        return (
            self.ramp_on
            and self.present_setpoint is not None
            and self.present_setpoint != self.setpoint
        )

    def set_setpoint(self, value: float, process_value: float | None) -> None:
        """Change the target; with the ramp on, start from the present setpoint.

        Args:
            value: the new target.
            process_value: the present reading, used as the ramp start when
                the loop has no present setpoint yet.
        """
        if self.ramp_on:
            if self.present_setpoint is None:
                self.present_setpoint = process_value if process_value is not None else value
        else:
            self.present_setpoint = value
        self.setpoint = value

    def reset(self) -> None:
        """Forget the integral and derivative history (mode or range change)."""
        self._integral = 0.0
        self._last_error = None

    def _integral_gain(self) -> float:
        if self.i <= 0:
            return 0.0
        return 1.0 / self.i if self.integral_time_s else self.i / 1000.0

    def advance_ramp(self, dt_s: float) -> float:
        """Move the present setpoint toward the target; returns the present setpoint."""
        if self.present_setpoint is None or not self.ramp_on:
            self.present_setpoint = self.setpoint
            return self.setpoint
        step = self.ramp_rate_per_min * dt_s / 60.0
        delta = self.setpoint - self.present_setpoint
        if abs(delta) <= step:
            self.present_setpoint = self.setpoint
        else:
            self.present_setpoint += math.copysign(step, delta)
        return self.present_setpoint

    def pid(self, error: float, dt_s: float) -> float:
        """One PID update from the error (setpoint minus reading, sign-corrected).

        Returns:
            The output in percent of the range, within 0-100.
        """
        gain_i = self._integral_gain()
        derivative = 0.0
        if self._last_error is not None and dt_s > 0 and self.d > 0:
            derivative = self.d * (error - self._last_error) / dt_s
        self._last_error = error
        proportional = error + derivative
        if gain_i > 0 and dt_s > 0 and self.p > 0:
            candidate = self._integral + gain_i * error * dt_s
            # conditional integration: only let the integral move while it
            # keeps the output inside 0-100 %, so it cannot wind up
            low = -proportional
            high = 100.0 / self.p - proportional
            self._integral = min(
                max(candidate, min(low, self._integral)), max(high, self._integral)
            )
        out = self.p * (proportional + self._integral)
        self.output_pct = min(100.0, max(0.0, out))
        return self.output_pct
