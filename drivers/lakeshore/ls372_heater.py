"""Structured heater settings of the Lake Shore Model 372: ``HTRSET`` and ``ZONE``, in physical units.

``HTRSET`` means different things on the two heater outputs (manual,
``HTRSET``): the sample heater (output 0) takes its load in ohms (1–2000)
and no current limit (its ranges are the limit; the manual asks for zeros
in the two current fields), the warm-up heater (output 1) takes a resistance
code (25 Ω or 50 Ω) and a maximum current (0.45 A, 0.63 A, or a user limit).
So each output has its own dataclass:

* :class:`SampleHeaterSetup` — ``resistance`` (Ω), ``display``;
* :class:`WarmupHeaterSetup` — ``resistance`` (25 or 50 Ω), ``max_current``
  (A; 0 = use ``max_user_current``), ``max_user_current`` (A), ``display``.

``ZONE o,z,...`` rows, one class per output because the heater range differs:

* :class:`SampleZone` — ``heater_range`` in amperes (0 off, 31.6 µA … 100 mA);
* :class:`WarmupZone` — ``heater_range`` on/off.

Each validates every field before anything is sent and parses the reply
back into the same units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from drivers.lakeshore.loops import BOOL_CODES
from drivers.lakeshore.ls372_codes import (
    SAMPLE_HEATER_RANGES,
    SAMPLE_HEATER_RESISTANCE_OHM,
    WARMUP_HEATER_RESISTANCES,
    WARMUP_MAX_CURRENTS,
    WARMUP_MAX_USER_CURRENT_A,
    HeaterDisplay,
    index_to_value,
)
from drivers.lakeshore.wire import (
    Structured,
    decimal_text,
    reply_enum,
    reply_fields,
    reply_float,
    reply_int,
)
from drivers.validators import bad_reply, in_range, in_set, refuse

ZONES = range(1, 11)
"""The rows of a zone table."""


def _code_to_value(table: dict[float, int], code: int, reply: Any, what: str) -> float:
    try:
        return index_to_value(table, code)
    except KeyError:
        raise bad_reply(reply, f"{what} code {code} is not in the manual's table") from None


@dataclass(frozen=True)
class SampleHeaterSetup(Structured):
    """``HTRSET 0``: the sample heater's load (for power display) and display units.

    Attributes:
        resistance: heater resistance in ohms (1–2000).
        display: heater output shown (and ``HTR?`` answered) as current or power.
    """

    resistance: float
    display: HeaterDisplay

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "resistance": (in_range, SAMPLE_HEATER_RESISTANCE_OHM, "Ohm"),
        "display": (in_set, list(HeaterDisplay), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> SampleHeaterSetup:
        """Parse an ``HTRSET? 0`` reply such as ``+120.000,0,+000.000,1``.

        Args:
            reply: the reply.

        Returns:
            The set-up (the two current fields do not apply to this output).
        """
        f = reply_fields(reply, 4)
        return cls(resistance=reply_float(f[0]), display=reply_enum(HeaterDisplay, f[3]))

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``HTRSET 0`` arguments after the output number.

        Returns:
            ``(resistance, 0, 0, display)`` as text; the manual asks for zeros
            in the two current fields of the sample heater.
        """
        c = self.checked()
        return (decimal_text(c["resistance"]), "0", "0", str(int(c["display"])))


@dataclass(frozen=True)
class WarmupHeaterSetup(Structured):
    """``HTRSET 1``: the warm-up heater's resistance setting and current limit.

    Attributes:
        resistance: 25 or 50 Ω (the setting nearest the heater: 25 Ω below 50 Ω).
        max_current: 0.45 or 0.63 A, or 0 to use ``max_user_current``.
        max_user_current: user current limit in A (0–0.63); must be above 0
            when ``max_current`` is 0.
        display: heater output shown as current or power.
    """

    resistance: float
    max_current: float
    max_user_current: float
    display: HeaterDisplay

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "resistance": (in_set, WARMUP_HEATER_RESISTANCES, "Ohm"),
        "max_current": (in_set, WARMUP_MAX_CURRENTS, "A"),
        "max_user_current": (in_range, (0.0, WARMUP_MAX_USER_CURRENT_A), "A"),
        "display": (in_set, list(HeaterDisplay), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> WarmupHeaterSetup:
        """Parse an ``HTRSET? 1`` reply such as ``2,2,+000.000,1``.

        Args:
            reply: the reply.

        Returns:
            The set-up, codes converted to ohms and amperes.
        """
        f = reply_fields(reply, 4)
        return cls(
            resistance=_code_to_value(WARMUP_HEATER_RESISTANCES, reply_int(f[0]), reply,
                                      "resistance"),
            max_current=_code_to_value(WARMUP_MAX_CURRENTS, reply_int(f[1]), reply,
                                       "maximum current"),
            max_user_current=reply_float(f[2]),
            display=reply_enum(HeaterDisplay, f[3]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``HTRSET 1`` arguments after the output number.

        Returns:
            ``(resistance code, max current code, max user current, display)`` as text.

        Raises:
            SettingOutOfRange: unnamed; a field is refused, or the user limit is
                0 A while the maximum current is set to the user limit.
        """
        c = self.checked()
        if c["max_current"] == 0.0 and c["max_user_current"] <= 0.0:
            raise refuse(self.max_user_current, f"above 0 to {WARMUP_MAX_USER_CURRENT_A} when "
                         "max_current is 0 (user limit)", field="max_user_current", unit="A")
        return (
            str(WARMUP_HEATER_RESISTANCES[c["resistance"]]),
            str(WARMUP_MAX_CURRENTS[c["max_current"]]),
            decimal_text(c["max_user_current"]),
            str(int(c["display"])),
        )


@dataclass(frozen=True)
class SampleZone(Structured):
    """One ``ZONE`` row of the sample heater: used while the setpoint is at or below ``upper_bound``.

    Attributes:
        upper_bound: upper setpoint boundary of the zone, K (0–2000).
        p: proportional gain (0–1000).
        i: integral (0–10000).
        d: derivative (0–2500).
        manual_output: manual output added in the zone, % (0–100).
        heater_range: heater range in the zone (the output's range type).
        ramp_rate: setpoint ramp rate in the zone, K/min (0–100).
        relay_1: relay 1 on in the zone (when the relay is in zone mode).
        relay_2: relay 2 on in the zone.
    """

    upper_bound: float
    p: float
    i: float
    d: float
    manual_output: float
    heater_range: Any
    ramp_rate: float
    relay_1: bool
    relay_2: bool

    #: The output's heater range table: value -> code.
    RANGES: ClassVar[dict[Any, int]] = SAMPLE_HEATER_RANGES
    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "upper_bound": (in_range, (0.0, 2000.0), "K"),
        "p": (in_range, (0.0, 1000.0), ""),
        "i": (in_range, (0.0, 10000.0), ""),
        "d": (in_range, (0.0, 2500.0), ""),
        "manual_output": (in_range, (0.0, 100.0), "%"),
        "heater_range": (in_set, SAMPLE_HEATER_RANGES, "A"),
        "ramp_rate": (in_range, (0.0, 100.0), "K/min"),
        "relay_1": (in_set, BOOL_CODES, ""),
        "relay_2": (in_set, BOOL_CODES, ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> Any:
        """Parse a ``ZONE? o,z`` reply such as ``+250.000E-03,+10.0000,+20.0000,+0.00000,+0.00,2,+1.20000,0,0``.

        Args:
            reply: the reply.

        Returns:
            The zone row, the range code converted to the output's range type.
        """
        f = reply_fields(reply, 9)
        return cls(
            upper_bound=reply_float(f[0]),
            p=reply_float(f[1]),
            i=reply_float(f[2]),
            d=reply_float(f[3]),
            manual_output=reply_float(f[4]),
            heater_range=cls.range_of(reply_int(f[5]), reply),
            ramp_rate=reply_float(f[6]),
            relay_1=bool(reply_int(f[7])),
            relay_2=bool(reply_int(f[8])),
        )

    @classmethod
    def range_of(cls, code: int, reply: Any) -> Any:
        """The heater range a ``ZONE?`` range code stands for.

        Args:
            code: the code.
            reply: the whole reply, for the message.

        Returns:
            The range in amperes (sample heater) or on/off (warm-up heater).
        """
        return _code_to_value(cls.RANGES, code, reply, "heater range")

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``ZONE`` arguments after output and zone.

        Returns:
            ``(upper, P, I, D, mout, range code, rate, relay 1, relay 2)`` as text.
        """
        c = self.checked()
        return (
            decimal_text(c["upper_bound"]),
            decimal_text(c["p"]),
            decimal_text(c["i"]),
            decimal_text(c["d"]),
            decimal_text(c["manual_output"]),
            str(self.RANGES[c["heater_range"]]),
            decimal_text(c["ramp_rate"]),
            str(BOOL_CODES[c["relay_1"]]),
            str(BOOL_CODES[c["relay_2"]]),
        )


@dataclass(frozen=True)
class WarmupZone(SampleZone):
    """One ``ZONE`` row of the warm-up heater: as :class:`SampleZone`, the range is on/off."""

    RANGES: ClassVar[dict[Any, int]] = BOOL_CODES
    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        **SampleZone.RULES,
        "heater_range": (in_set, BOOL_CODES, ""),
    }

    @classmethod
    def range_of(cls, code: int, reply: Any) -> Any:
        """The warm-up heater's range for a ``ZONE?`` code: on (1) or off (0).

        Args:
            code: the code.
            reply: the whole reply, for the message.

        Returns:
            True or False.
        """
        if code not in (0, 1):
            raise bad_reply(reply, f"warm-up heater range code {code} is not 0 or 1")
        return bool(code)
