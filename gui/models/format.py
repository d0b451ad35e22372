"""How a value is written and coloured: the decisions a physicist reads from two metres.

One function, :func:`show_value`, turns the newest sample of a stream into a
:class:`Shown`: the big text, its unit, a :class:`Tone` (the colour role), a
short badge and a tooltip. The rules:

* a reading the instrument flagged bad (:func:`daq.messages.is_bad`) is never
  written as a number: the big text is the flag in words (``SENSOR FAULT``,
  ``OVER RANGE``), the tone is :attr:`Tone.BAD` (hatched on screen) and the
  instrument's own note (``RDGST 017: CS OVL, R.OVER``) is the badge;
* a good reading that is old, or whose publisher went silent, keeps its number
  but is greyed (:attr:`Tone.STALE`) with its age in the badge;
* a stream never heard of shows an em dash, :attr:`Tone.NONE`.

Numbers carry engineering prefixes so that the eye reads digits, not
exponents: ``12.97 mK``, ``784.9 mK``, ``2.884 K``; pressures, which span
ten decades, are written in scientific notation below 0.01 (``2.79e-7 mbar``).
Qt-free; the widgets map each :class:`Tone` to a colour (:mod:`gui.theme`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from daq.messages import Quality, describe_quality, is_bad

#: Engineering prefixes by power of 1000.
_PREFIXES = {-5: "f", -4: "p", -3: "n", -2: "µ", -1: "m", 0: "", 1: "k", 2: "M", 3: "G"}
#: Units written with an SI prefix (temperatures are handled on their own: K and mK only).
_PREFIXABLE = frozenset({"V", "A", "W", "Hz", "Ohm", "Ω", "s", "F", "H", "T"})
#: Units that span decades: scientific notation below 0.01 and from 10 000 on.
_SCIENTIFIC = frozenset({"mbar", "bar", "Pa", "Torr", "hPa"})

#: Flag words, most telling first: the first one present becomes the big text.
FLAG_WORDS: tuple[tuple[Quality, str], ...] = (
    (Quality.SENSOR_ERROR, "SENSOR FAULT"),
    (Quality.SENSOR_OFF, "SENSOR OFF"),
    (Quality.OUTPUT_FAULT, "OUTPUT FAULT"),
    (Quality.OVERRANGE, "OVER RANGE"),
    (Quality.UNDERRANGE, "UNDER RANGE"),
    (Quality.INVALID, "NO READING"),
    (Quality.CLIPPED, "CLIPPED"),
    (Quality.STALE, "STALE"),
)


class Tone(enum.StrEnum):
    """The colour role of a value, an instrument or an alarm (mapped to colours in the GUI)."""

    GOOD = "good"  # vouched for by the instrument and fresh
    STALE = "stale"  # old, or its publisher went silent: greyed
    BAD = "bad"  # flagged by the instrument: not a number to read (hatched)
    WARN = "warn"  # reconnecting, a warning alarm
    ALARM = "alarm"  # an instrument in error, a critical alarm
    NONE = "none"  # never received


#: Worst first: the tone a group of tones is summarised by.
TONE_ORDER = (Tone.ALARM, Tone.BAD, Tone.WARN, Tone.STALE, Tone.NONE, Tone.GOOD)


def worst(tones: list[Tone] | tuple[Tone, ...]) -> Tone:
    """The most alarming of ``tones`` (GOOD for none)."""
    for tone in TONE_ORDER:
        if tone in tones:
            return tone
    return Tone.GOOD


@dataclass(frozen=True, slots=True)
class Shown:
    """One value as the screen shows it.

    Attributes:
        text: the big text: the number, or the flag in words, or an em dash.
        unit: written after the number ("" when the text is a word).
        tone: the colour role.
        badge: a short second line (age, flag, the instrument's note).
        detail: the tooltip: the value as received, its flags, its note, its time.
        is_number: False when ``text`` is a word that replaces the number.
    """

    text: str
    unit: str
    tone: Tone
    badge: str = ""
    detail: str = ""
    is_number: bool = True

    @property
    def hatched(self) -> bool:
        """Whether the screen hatches the value (a flagged reading)."""
        return self.tone is Tone.BAD


def _digits(value: float, sig: int) -> str:
    """``value`` with ``sig`` significant digits, never in exponent form (|value| in [1, 1000))."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, sig - 1 - magnitude)
    return f"{value:.{decimals}f}"


def format_number(value: float, units: str = "", sig: int = 4) -> tuple[str, str]:
    """``(text, unit)`` for a number: engineering prefixes, or scientific for pressures.

    Examples: ``(0.012971, "K") -> ("12.97", "mK")``, ``(44.93, "K") -> ("44.93", "K")``,
    ``(2.785e-7, "mbar") -> ("2.79e-7", "mbar")``, ``(3.093, "V") -> ("3.093", "V")``,
    ``(17.32, "%") -> ("17.32", "%")``.
    """
    if not math.isfinite(value):
        return ("—" if math.isnan(value) else ("+∞" if value > 0 else "−∞")), units
    if units in _SCIENTIFIC or (not units and value != 0 and not 1e-3 <= abs(value) < 1e6):
        if value == 0 or 0.01 <= abs(value) < 1e4:
            return _digits(value, min(sig, 4)), units
        mantissa, exponent = f"{value:.{max(sig - 2, 1)}e}".split("e")
        return f"{mantissa}e{int(exponent)}", units
    if units == "K":
        if value != 0 and abs(value) < 1.0:
            return _digits(value * 1e3, sig), "mK"
        return _digits(value, sig), "K"
    if units in _PREFIXABLE and value != 0:
        power = max(-5, min(3, math.floor(math.log10(abs(value)) / 3)))
        scaled = value / 1000.0**power
        if round(abs(scaled), max(0, sig - 3)) >= 1000 and power < 3:  # 999.96 -> 1.000 k
            power += 1
            scaled = value / 1000.0**power
        return _digits(scaled, sig), f"{_PREFIXES[power]}{units}"
    return _digits(value, sig), units


def format_age(seconds: float) -> str:
    """A short age: ``"4 s"``, ``"3 min"``, ``"2.5 h"``, ``"3 d"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def flag_word(quality: int) -> str:
    """The most telling flag of ``quality`` in words ("" when none is set)."""
    for flag, word in FLAG_WORDS:
        if int(quality) & flag:
            return word
    return ""


@dataclass(frozen=True, slots=True)
class Reading:
    """The newest sample of a stream as the models keep it.

    Attributes:
        value: the number the instrument gave (NaN for none).
        units: its unit.
        quality: the instrument's flags (0: good).
        t_ns: source time, ns since the epoch.
        t_recv_ns: when it arrived here, ns since the epoch.
        note: the instrument's own words on a flagged reading.
        publisher: who published it (the daemon's name).
    """

    value: float
    units: str = ""
    quality: int = 0
    t_ns: int = 0
    t_recv_ns: int = 0
    note: str = ""
    publisher: str = ""


def show_value(reading: Reading | None, now_ns: int, *, stale_after_s: float = 30.0,
               publisher_silent: bool = False, sig: int = 4) -> Shown:
    """How ``reading`` is shown at ``now_ns`` (see the module docstring for the rules).

    Args:
        reading: the newest sample, or None when the stream was never received.
        now_ns: the time to judge ages against, ns since the epoch.
        stale_after_s: a good reading older than this is greyed.
        publisher_silent: the publisher missed its heartbeats (a dead daemon).
        sig: significant digits of the number.
    """
    if reading is None:
        return Shown("—", "", Tone.NONE, "no data yet", "never received", is_number=False)
    age_s = max(0.0, (now_ns - reading.t_recv_ns) / 1e9)
    number, unit = format_number(reading.value, reading.units, sig)
    flags = describe_quality(reading.quality)
    detail = (f"{number} {unit}".strip() + f"  [{flags}]"
              + (f"  {reading.note}" if reading.note else "")
              + f"  received {format_age(age_s)} ago"
              + (f" from {reading.publisher}" if reading.publisher else ""))
    flagged = int(reading.quality) & ~int(Quality.STALE)  # STALE alone: a greyed number
    if is_bad(flagged):
        word = flag_word(flagged) or "BAD"
        others = [w for f, w in FLAG_WORDS if reading.quality & f and w != word]
        badge = reading.note or " · ".join(others) or flags
        if publisher_silent:
            badge = f"publisher silent · {badge}"
        return Shown(word, "", Tone.BAD, badge, detail, is_number=False)
    if publisher_silent:
        return Shown(number, unit, Tone.STALE, f"publisher silent · {format_age(age_s)} old",
                     detail)
    if reading.quality & Quality.STALE or age_s > stale_after_s:
        return Shown(number, unit, Tone.STALE, f"STALE · {format_age(age_s)} old", detail)
    return Shown(number, unit, Tone.GOOD, "", detail)
