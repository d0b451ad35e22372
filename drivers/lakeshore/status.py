"""The instruments' own verdict on a reading: ``RDGST?`` and ``HTRST?`` as quality flags.

A Lake Shore controller says in ``RDGST?`` whether a reading is valid; this
module turns that into :class:`~drivers.readings.Quality` flags and a short
note in the instrument's words, and builds the :class:`~drivers.readings.Reading`
from a reading and its status fetched in one exchange (``RDGK? 6;RDGST? 6``
answered ``+012.345E-03;000``):

* :func:`quality_372` — Model 372 bits: 1 CS OVL, 2 VCM OVL, 4 VMIX OVL,
  8 VDIF OVL (the sensor or its wiring: ``SENSOR_ERROR``), 16 R.OVER,
  64 T.OVER (``OVERRANGE``), 32 R.UNDER, 128 T.UNDER (``UNDERRANGE``);
* :func:`quality_336` — Model 336 bits: 1 invalid reading (``INVALID``),
  16 temperature under range and 64 sensor units zero (``UNDERRANGE``),
  32 temperature over range and 128 sensor units over range (``OVERRANGE``);
* :func:`reading_372` / :func:`reading_336` — the reading with its flags;
  a kelvin reading of exactly 0 with a valid status means the input has no
  curve (the manual: "if no curve is present ... the returned reading will
  be zero"), which is ``INVALID``, never 0 K;
* :func:`heater_reading` — a heater output with ``HTRST?``: 1 open load,
  2 short, both ``OUTPUT_FAULT``.

A flagged reading keeps the number the instrument gave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drivers.lakeshore.ls336_codes import InputStatus
from drivers.lakeshore.ls372_codes import HeaterStatus, ReadingStatus
from drivers.lakeshore.wire import reply_enum, reply_float
from drivers.readings import Quality, Reading
from drivers.validators import bad_reply

STATUS_WORDS_372: dict[ReadingStatus, str] = {
    ReadingStatus.CS_OVL: "CS OVL",
    ReadingStatus.VCM_OVL: "VCM OVL",
    ReadingStatus.VMIX_OVL: "VMIX OVL",
    ReadingStatus.VDIF_OVL: "VDIF OVL",
    ReadingStatus.R_OVER: "R.OVER",
    ReadingStatus.R_UNDER: "R.UNDER",
    ReadingStatus.T_OVER: "T.OVER",
    ReadingStatus.T_UNDER: "T.UNDER",
}
"""``RDGST?`` bits of the 372 in the front panel's words."""

QUALITY_372: dict[ReadingStatus, Quality] = {
    ReadingStatus.CS_OVL: Quality.SENSOR_ERROR,
    ReadingStatus.VCM_OVL: Quality.SENSOR_ERROR,
    ReadingStatus.VMIX_OVL: Quality.SENSOR_ERROR,
    ReadingStatus.VDIF_OVL: Quality.SENSOR_ERROR,
    ReadingStatus.R_OVER: Quality.OVERRANGE,
    ReadingStatus.R_UNDER: Quality.UNDERRANGE,
    ReadingStatus.T_OVER: Quality.OVERRANGE,
    ReadingStatus.T_UNDER: Quality.UNDERRANGE,
}
"""How each 372 bit flags a reading."""

TEMPERATURE_BITS_372 = ReadingStatus.T_OVER | ReadingStatus.T_UNDER
"""Bits about the curve, not the measurement: a resistance reading stays valid."""

STATUS_WORDS_336: dict[InputStatus, str] = {
    InputStatus.INVALID_READING: "invalid reading",
    InputStatus.TEMP_UNDERRANGE: "temp underrange",
    InputStatus.TEMP_OVERRANGE: "temp overrange",
    InputStatus.SENSOR_UNITS_ZERO: "sensor units zero",
    InputStatus.SENSOR_UNITS_OVERRANGE: "sensor units overrange",
}
"""``RDGST?`` bits of the 336 in the manual's words."""

QUALITY_336: dict[InputStatus, Quality] = {
    InputStatus.INVALID_READING: Quality.INVALID,
    InputStatus.TEMP_UNDERRANGE: Quality.UNDERRANGE,
    InputStatus.TEMP_OVERRANGE: Quality.OVERRANGE,
    InputStatus.SENSOR_UNITS_ZERO: Quality.UNDERRANGE,
    InputStatus.SENSOR_UNITS_OVERRANGE: Quality.OVERRANGE,
}
"""How each 336 bit flags a reading."""

TEMPERATURE_BITS_336 = InputStatus.TEMP_UNDERRANGE | InputStatus.TEMP_OVERRANGE
"""Bits about the curve; a sensor-units reading stays valid."""

HEATER_WORDS: dict[HeaterStatus, str] = {
    HeaterStatus.OPEN_LOAD: "open load",
    HeaterStatus.SHORT: "short",
}
"""``HTRST?`` codes in the manual's words."""


def _decode(code: int, words: Mapping[Any, str], flags: Mapping[Any, Quality],
            ignore: int) -> tuple[Quality, str]:
    quality = Quality.OK
    names = []
    for bit, word in words.items():
        if code & int(bit) and not int(bit) & ignore:
            quality |= flags[bit]
            names.append(word)
    if not names:
        return Quality.OK, ""
    return quality, f"RDGST {code:03d}: {', '.join(names)}"


def quality_372(status: int, *, kelvin: bool = True) -> tuple[Quality, str]:
    """Flags and note for a 372 ``RDGST?`` value.

    Args:
        status: the bit sum (``ReadingStatus`` or int).
        kelvin: the reading is a temperature; for a resistance reading the
            T.OVER / T.UNDER bits (the resistance lies beyond the curve) are
            not about the measurement and are left out.

    Returns:
        ``(quality, note)``; ``(OK, "")`` for a valid reading.
    """
    ignore = 0 if kelvin else int(TEMPERATURE_BITS_372)
    return _decode(int(status), STATUS_WORDS_372, QUALITY_372, ignore)


def quality_336(status: int, *, kelvin: bool = True) -> tuple[Quality, str]:
    """Flags and note for a 336 ``RDGST?`` value.

    Args:
        status: the bit sum (``InputStatus`` or int).
        kelvin: the reading is a temperature (a sensor-units reading ignores
            the temperature range bits).

    Returns:
        ``(quality, note)``; ``(OK, "")`` for a valid reading.
    """
    ignore = 0 if kelvin else int(TEMPERATURE_BITS_336)
    return _decode(int(status), STATUS_WORDS_336, QUALITY_336, ignore)


def split_pair(reply: Any, what: str) -> tuple[str, str]:
    """The two answers of a two-query exchange (``value;status``).

    Args:
        reply: the reply, as text or PyMeasure's list of ``;``-separated parts.
        what: the exchange, for the message (``"RDGK?;RDGST?"``).

    Returns:
        ``(first, second)`` as stripped text.

    Raises:
        InstrumentReplyError: not two answers.
    """
    parts = reply.split(";") if isinstance(reply, str) else [str(p) for p in reply]
    if len(parts) != 2:
        raise bad_reply(reply, f"expected two answers to {what} separated by ';'")
    return parts[0].strip(), parts[1].strip()


def _no_curve(value: float, quality: Quality, note: str, mnemonic: str) -> tuple[Quality, str]:
    if value == 0.0 and quality == Quality.OK:
        return Quality.INVALID, f"{mnemonic} 0 with a valid status: no curve"
    return quality, note


def reading_372(reply: Any, *, kelvin: bool) -> Reading:
    """A 372 reading and its status (``RDGK?;RDGST?`` or ``RDGR?;RDGST?``) as one Reading.

    Args:
        reply: the two answers.
        kelvin: a temperature (else a resistance).

    Returns:
        The reading with the instrument's flags; a kelvin reading of 0 with
        a valid status is ``INVALID`` (no curve).
    """
    mnemonic = "RDGK" if kelvin else "RDGR"
    value_text, status_text = split_pair(reply, f"{mnemonic}?;RDGST?")
    value = reply_float(value_text)
    status = reply_enum(ReadingStatus, status_text)
    quality, note = quality_372(status, kelvin=kelvin)
    if kelvin:
        quality, note = _no_curve(value, quality, note, mnemonic)
    return Reading(value, quality, note=note)


def reading_336(value_text: Any, status_text: Any, *, kelvin: bool = True) -> Reading:
    """A 336 reading and its ``RDGST?`` as one Reading.

    Args:
        value_text: the reading (``+004.2150``).
        status_text: the status (``000``).
        kelvin: a temperature (else sensor units).

    Returns:
        The reading with the instrument's flags; a kelvin reading of 0 with a
        valid status is ``INVALID`` (no curve).
    """
    value = reply_float(value_text)
    status = reply_enum(InputStatus, status_text)
    quality, note = quality_336(status, kelvin=kelvin)
    if kelvin:
        quality, note = _no_curve(value, quality, note, "KRDG")
    return Reading(value, quality, note=note)


def readings_336(reply: Any) -> list[Reading]:
    """``KRDG? 0;RDGST? A;RDGST? B;RDGST? C;RDGST? D`` as four Readings (A to D).

    Args:
        reply: ``+077.350,+004.215,+004.200,+000.000;000;000;000;001`` (text
            or PyMeasure's list of ``;``-separated parts).

    Returns:
        The readings of inputs A, B, C and D.

    Raises:
        InstrumentReplyError: not four values and four statuses.
    """
    parts = reply.split(";") if isinstance(reply, str) else [str(p) for p in reply]
    values: Sequence[str] = parts[0].split(",") if parts else []
    if len(parts) != 5 or len(values) != 4:
        raise bad_reply(reply, "expected 'a,b,c,d;sa;sb;sc;sd' (KRDG? 0 and four RDGST?)")
    return [reading_336(v, s) for v, s in zip(values, parts[1:], strict=True)]


def heater_reading(reply: Any, what: str) -> Reading:
    """A heater output and its ``HTRST?`` as one Reading (``OUTPUT_FAULT`` when not 0).

    Args:
        reply: ``+012.500;0`` (text or list).
        what: the exchange, for the message (``"HTR?;HTRST? 0"``).

    Returns:
        The output with the heater's verdict: note ``"HTRST 1: open load"``
        or ``"HTRST 2: short"``.
    """
    value_text, status_text = split_pair(reply, what)
    value = reply_float(value_text)
    status = reply_enum(HeaterStatus, status_text)
    if status == HeaterStatus.OK:
        return Reading(value)
    return Reading(value, Quality.OUTPUT_FAULT, note=f"HTRST {int(status)}: {HEATER_WORDS[status]}")
