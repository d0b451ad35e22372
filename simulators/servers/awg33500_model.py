"""One channel of a simulated Keysight 33500-series generator: its settings and their limits.

The channel keeps what the connector puts out (open-circuit amplitude and
offset); amplitude and offset as set and read over SCPI are those across
the load the unit is told about (``OUTP<n>:LOAD``), so changing the load
changes the numbers read back but not the output, as on the real unit. A
value outside its range is clipped to the limit and queues
``-222,"Data out of range;value clipped to upper limit"`` (or ``lower``);
a value that conflicts with another setting (an amplitude too large for
the offset, a frequency the new function cannot make) is adjusted and
queues a ``-221,"Settings conflict;..."`` entry.

Limits (a 30 MHz model, 33521B / 33522B): frequency 1 uHz to 30 MHz (200 kHz
for triangle and ramp); open-circuit amplitude 2 mVpp to 20 Vpp and peak
``|offset| + Vpp / 2`` up to 10 V; square duty cycle 0.01 % to 99.99 % with
each level at least 16 ns long; phase -360 to 360 degrees; load 1 Ohm to
10 kOhm or infinite.

Interface: :class:`ChannelModel` (``set_*`` / ``*_reply`` per setting,
:meth:`ChannelModel.output` -> :class:`~simulators.physics.tes_bias_line.GeneratorOutput`),
:func:`format_number`, :func:`parse_number`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from simulators.physics.tes_bias_line import GeneratorOutput
from simulators.servers.scpi import ScpiError

SOURCE_OHM = 50.0
OPEN_PEAK_V = 10.0
OPEN_MIN_VPP = 2e-3
HIGH_Z = 9.9e37
MIN_WIDTH_S = 16e-9
MAX_FREQUENCY_HZ = {"SIN": 30e6, "SQU": 30e6, "PULS": 30e6, "TRI": 200e3, "RAMP": 200e3,
                    "ARB": 30e6, "PRBS": 30e6, "NOIS": 30e6, "DC": 30e6}
#: Function long forms as the manual spells them (the short form is the capitals).
FUNCTIONS = ("SINusoid", "SQUare", "TRIangle", "RAMP", "PULSe", "PRBS", "NOISe", "ARBitrary",
             "DC")
#: Vpp per Vrms of each function (crest factor x 2).
VPP_PER_VRMS = {"SIN": 2 * math.sqrt(2), "SQU": 2.0, "TRI": 2 * math.sqrt(3),
                "RAMP": 2 * math.sqrt(3), "PULS": 2.0, "PRBS": 2.0, "NOIS": 2 * math.sqrt(2),
                "ARB": 2 * math.sqrt(2), "DC": 2.0}

_SUFFIX = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z%]*)\s*$")
_MULTIPLIER = {"": 1.0, "K": 1e3, "M": 1e-3, "U": 1e-6, "N": 1e-9, "MA": 1e6, "G": 1e9}


def format_number(value: float) -> str:
    """A numeric reply as the unit gives it: ``+1.000000000000000E+03``."""
    # Through the shortest decimal form, so that 9.9e37 reads 9.900...E+37, not 9.899...
    number = Decimal(repr(float(value)))
    if number == 0:
        return "+0.000000000000000E+00"
    exponent = number.adjusted()
    mantissa = number.scaleb(-exponent).quantize(Decimal("1.000000000000000"))
    if abs(mantissa) >= 10:  # rounding carried into the next decade
        exponent += 1
        mantissa = number.scaleb(-exponent).quantize(Decimal("1.000000000000000"))
    return f"{'-' if mantissa < 0 else '+'}{abs(mantissa)}E{exponent:+03d}"


def parse_number(text: str, unit: str | tuple[str, ...] = "") -> float | str:
    """A numeric parameter: a number (with an optional SI-prefixed unit) or MIN / MAX / DEF.

    ``unit`` names the unit suffixes accepted (e.g. ``("VPP", "V")``; the
    longest that fits is taken). ``MHZ`` is megahertz as SCPI defines it;
    otherwise ``M`` is milli and ``MA`` mega. ``INF`` is infinity.

    Returns:
        The float, or ``"MIN"``, ``"MAX"``, ``"DEF"``.

    Raises:
        ScpiError: not a number in a form the unit accepts (-224, -131).
    """
    word = text.strip().upper()
    for special in ("MINIMUM", "MAXIMUM", "DEFAULT"):
        if word in (special[:3], special):
            return special[:3]
    if word in ("INF", "INFINITY"):
        return math.inf
    match = _SUFFIX.match(text)
    if not match:
        raise ScpiError(-224, "Illegal parameter value")
    number, suffix = float(match.group(1)), match.group(2).upper()
    units = (unit,) if isinstance(unit, str) else unit
    for name in sorted((u.upper() for u in units if u), key=len, reverse=True):
        if suffix.endswith(name):
            suffix = suffix[: -len(name)]
            if name == "HZ" and suffix == "M":
                suffix = "MA"  # MHZ is megahertz
            break
    if suffix not in _MULTIPLIER:
        raise ScpiError(-131, "Invalid suffix")
    return number * _MULTIPLIER[suffix]


@dataclass
class ChannelModel:
    """One channel's settings with the unit's limits.

    Args:
        push_error: queues an error entry ``(code, message)``.
        changed: called after every change of what the connector puts out.
    """

    push_error: Callable[[int, str], None]
    changed: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Factory defaults: 1 kHz sine, 100 mVpp into 50 Ohm, output off."""
        self.function = "SIN"
        self.frequency = 1e3
        self.vpp_open = 0.2
        self.offset_open = 0.0
        self.duty = 50.0
        self.phase = 0.0
        self.load = 50.0
        self.polarity = "NORM"
        self.unit = "VPP"
        self.output_on = False

    # ---- helpers -----------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        """Volts across the load per open-circuit volt."""
        return 1.0 if math.isinf(self.load) else self.load / (self.load + SOURCE_OHM)

    def _clip(self, value: float | str, low: float, high: float, default: float) -> float:
        if value == "MIN":
            return low
        if value == "MAX":
            return high
        if value == "DEF":
            return default
        assert isinstance(value, float)
        if value > high:
            self.push_error(-222, "Data out of range;value clipped to upper limit")
            return high
        if value < low:
            self.push_error(-222, "Data out of range;value clipped to lower limit")
            return low
        return value

    def _duty_limits(self) -> tuple[float, float]:
        edge = 100.0 * MIN_WIDTH_S * self.frequency
        return max(0.01, edge), min(99.99, 100.0 - edge)

    def _amplitude_limits(self) -> tuple[float, float]:
        """Open-circuit Vpp limits with the present offset."""
        return OPEN_MIN_VPP, max(OPEN_MIN_VPP, 2.0 * (OPEN_PEAK_V - abs(self.offset_open)))

    # ---- settings ----------------------------------------------------------------------------

    def set_function(self, short: str) -> None:
        """FUNCtion: a frequency the new function cannot make is lowered to its limit."""
        self.function = short
        limit = MAX_FREQUENCY_HZ[short]
        if self.frequency > limit:
            self.frequency = limit
            self.push_error(-221, "Settings conflict;frequency changed due to function")
        self.changed()

    def set_frequency(self, value: float | str) -> None:
        """FREQuency: a duty cycle the new frequency cannot make is adjusted."""
        self.frequency = self._clip(value, 1e-6, MAX_FREQUENCY_HZ[self.function], 1e3)
        low, high = self._duty_limits()
        if not low <= self.duty <= high:
            self.duty = min(max(self.duty, low), high)
            self.push_error(-221, "Settings conflict;duty cycle changed due to frequency")
        self.changed()

    def frequency_limit(self, which: str) -> float:
        """FREQuency? MIN|MAX."""
        return 1e-6 if which == "MIN" else MAX_FREQUENCY_HZ[self.function]

    def _to_vpp(self, value: float) -> float:
        if self.unit == "VRMS":
            return value * VPP_PER_VRMS[self.function]
        if self.unit == "DBM":
            vrms = math.sqrt(1e-3 * self.load * 10.0 ** (value / 10.0))
            return vrms * VPP_PER_VRMS[self.function]
        return value

    def _from_vpp(self, vpp: float) -> float:
        if self.unit == "VRMS":
            return vpp / VPP_PER_VRMS[self.function]
        if self.unit == "DBM":
            vrms = vpp / VPP_PER_VRMS[self.function]
            return 10.0 * math.log10(vrms**2 / self.load / 1e-3)
        return vpp

    def set_amplitude(self, value: float | str) -> None:
        """VOLTage: in the present unit, across the load; limited by the offset."""
        low, high = self._amplitude_limits()
        if isinstance(value, float):
            value = self._to_vpp(value) / self.scale
        vpp = self._clip(value, low, OPEN_PEAK_V * 2.0, 0.2)
        if vpp > high:
            vpp = high
            self.push_error(-221, "Settings conflict;amplitude changed due to offset")
        self.vpp_open = vpp
        self.changed()

    def amplitude_reply(self) -> str:
        """VOLTage? in the present unit."""
        return format_number(self._from_vpp(self.vpp_open * self.scale))

    def set_offset(self, value: float | str) -> None:
        """VOLTage:OFFSet: across the load; limited by the amplitude."""
        swing = 0.0 if self.function == "DC" else 0.5 * self.vpp_open
        limit = (OPEN_PEAK_V - swing) * self.scale
        if isinstance(value, float) and limit < abs(value) <= OPEN_PEAK_V * self.scale:
            # Possible with a smaller swing: a conflict with the amplitude, not a range error.
            self.push_error(-221, "Settings conflict;offset changed due to amplitude")
            value = math.copysign(limit, value)
        offset = self._clip(value, -limit, limit, 0.0)
        self.offset_open = offset / self.scale
        self.changed()

    def offset_reply(self) -> str:
        """VOLTage:OFFSet?."""
        return format_number(self.offset_open * self.scale)

    def set_unit(self, unit: str) -> None:
        """VOLTage:UNIT: dBm needs a finite load."""
        if unit == "DBM" and math.isinf(self.load):
            raise ScpiError(-221, "Settings conflict;dBm units not allowed with high-Z load")
        self.unit = unit

    def set_duty(self, value: float | str) -> None:
        """FUNCtion:SQUare:DCYCle, in percent."""
        low, high = self._duty_limits()
        self.duty = self._clip(value, low, high, 50.0)
        self.changed()

    def set_phase(self, value: float | str) -> None:
        """PHASe, in degrees."""
        self.phase = self._clip(value, -360.0, 360.0, 0.0)
        self.changed()

    def set_load(self, value: float | str) -> None:
        """OUTPut:LOAD: the levels read back rescale, the output does not change."""
        if isinstance(value, float) and math.isinf(value):
            self.load = math.inf
            if self.unit == "DBM":
                self.unit = "VPP"
        else:
            self.load = self._clip(value, 1.0, 10e3, 50.0)

    def load_reply(self) -> str:
        """OUTPut:LOAD?."""
        return format_number(HIGH_Z if math.isinf(self.load) else self.load)

    def set_output(self, on: bool) -> None:
        """OUTPut: close or open the output relay."""
        self.output_on = on
        self.changed()

    def set_polarity(self, polarity: str) -> None:
        """OUTPut:POLarity NORMal|INVerted."""
        self.polarity = polarity
        self.changed()

    def apply(self, function: str, args: list[float | str]) -> None:
        """APPLy:<function> [freq [,amplitude [,offset]]]: set, 50 % duty, output on."""
        self.set_function(function)
        setters = (self.set_frequency, self.set_amplitude, self.set_offset)
        for setter, arg in zip(setters, args, strict=False):
            setter(arg)
        self.duty = 50.0
        self.output_on = True
        self.changed()

    def apply_reply(self) -> str:
        """APPLy?: ``"SIN +1.0E+03,+1.0E-01,+0.0E+00"`` in the unit's number format."""
        return (f'"{self.function} {format_number(self.frequency)},'
                f'{self.amplitude_reply()},{self.offset_reply()}"')

    def output(self) -> GeneratorOutput:
        """What the connector puts out, for the physics (open-circuit volts)."""
        return GeneratorOutput(function=self.function, frequency=self.frequency,
                               vpp=self.vpp_open, offset=self.offset_open, duty=self.duty,
                               phase=self.phase, enabled=self.output_on,
                               inverted=self.polarity == "INV")
