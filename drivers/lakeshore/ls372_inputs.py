"""The inputs of the Lake Shore Model 372: what scanner channels 1–16 and control input A share.

:class:`InputChannel` is the PyMeasure ``Channel`` both kinds of input build
on (:mod:`drivers.lakeshore.ls372_intype` adds each kind's ``INTYPE``:
:class:`~drivers.lakeshore.ls372_intype.ScannerInput` for channels 1–16,
:class:`~drivers.lakeshore.ls372_intype.ControlInput` for input A). The
instrument creates one per input (``ls.ch_6``, ``ls.ch_A``, or ``ls.inputs[6]``).

Readings:

* ``kelvin_reading`` / ``resistance_reading`` — the temperature (K) or the
  resistance (Ω) together with ``RDGST?`` in one exchange
  (``RDGK? 6;RDGST? 6``), as a :class:`~drivers.readings.Reading` carrying
  the instrument's verdict (:mod:`drivers.lakeshore.status`); what the
  daemon polls;
* ``kelvin``, ``resistance``, ``excitation_power`` (W): the bare numbers;
  ``status``: :class:`~drivers.lakeshore.ls372_codes.ReadingStatus` flags.

Settings come as structured values (frozen dataclasses), each with one
property per field:

* ``scan_settings`` (``INSET``): :class:`ScanSettings` — ``enabled``,
  ``dwell`` (s), ``pause`` (s), ``curve``, ``tempco``;
* ``filter`` (``FILTER``): :class:`FilterSettings` — on, settle time (s), window (%);
* ``name`` (``INNAME``), ``temperature_limit`` (``TLIMIT``, K: the hardware
  switches every output off when this input reads above it).

Field properties read-modify-write their group after validating the new
value, so a refused value sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.instruments import Channel

from drivers.lakeshore.ls372_codes import ReadingStatus, Tempco
from drivers.lakeshore.status import reading_372
from drivers.lakeshore.wire import (
    Structured,
    decimal_text,
    field_property,
    reply_enum,
    reply_fields,
    reply_float,
    reply_int,
    reply_text,
    structured,
)
from drivers.readings import Reading
from drivers.validators import (
    control,
    in_range,
    in_set,
    int_in_range,
    measurement,
    refuse,
)

BOOL_CODES = {False: 0, True: 1}
NAME_MAX_CHARS = 15
TLIMIT_RANGE_K = (0.0, 2000.0)


@dataclass(frozen=True)
class ScanSettings(Structured):
    """``INSET``: whether and how an input is scanned.

    Attributes:
        enabled: the scanner visits this channel.
        dwell: seconds of readings after the pause (1–200).
        pause: seconds of settling after switching to the channel (3–200).
        curve: temperature curve number (0 none, 1–59).
        tempco: temperature coefficient of the sensor.
    """

    enabled: bool
    dwell: int
    pause: int
    curve: int
    tempco: Tempco

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "enabled": (in_set, BOOL_CODES, ""),
        "dwell": (int_in_range, (1, 200), "s"),
        "pause": (int_in_range, (3, 200), "s"),
        "curve": (int_in_range, (0, 59), ""),
        "tempco": (in_set, list(Tempco), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> ScanSettings:
        """Parse an ``INSET?`` reply such as ``1,007,003,21,1``.

        Args:
            reply: the reply.

        Returns:
            The settings.
        """
        f = reply_fields(reply, 5)
        return cls(
            enabled=bool(reply_int(f[0])),
            dwell=reply_int(f[1]),
            pause=reply_int(f[2]),
            curve=reply_int(f[3]),
            tempco=reply_enum(Tempco, f[4]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``INSET`` arguments after the channel.

        Returns:
            ``(enabled, dwell, pause, curve, tempco)`` as text.
        """
        c = self.checked()
        return (
            str(BOOL_CODES[c["enabled"]]),
            str(c["dwell"]),
            str(c["pause"]),
            str(c["curve"]),
            str(int(c["tempco"])),
        )


@dataclass(frozen=True)
class FilterSettings(Structured):
    """``FILTER``: the reading filter of an input.

    Attributes:
        on: filter enabled.
        settle_s: settle time in seconds (1–200).
        window_pct: filter window in percent (1–80).
    """

    on: bool
    settle_s: int
    window_pct: int

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "on": (in_set, BOOL_CODES, ""),
        "settle_s": (int_in_range, (1, 200), "s"),
        "window_pct": (int_in_range, (1, 80), "%"),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> FilterSettings:
        """Parse a ``FILTER?`` reply such as ``1,10,20``.

        Args:
            reply: the reply.

        Returns:
            The settings.
        """
        f = reply_fields(reply, 3)
        return cls(bool(reply_int(f[0])), reply_int(f[1]), reply_int(f[2]))

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``FILTER`` arguments after the channel.

        Returns:
            ``(on, settle, window)`` as text.
        """
        c = self.checked()
        return (str(BOOL_CODES[c["on"]]), str(c["settle_s"]), str(c["window_pct"]))


def valid_name(value: Any, values: Any) -> str:
    """Validator for an input name: printable ASCII, no quotes, at most 15 characters.

    Args:
        value: the name.
        values: the maximum length.

    Returns:
        The name.
    """
    ok = (
        isinstance(value, str)
        and len(value) <= values
        and value.isascii()
        and value.isprintable()
        and '"' not in value
    )
    if not ok:
        raise refuse(value, f"printable ASCII text without quotes, at most {values} characters")
    return str(value)


def parse_kelvin_reading(reply: Any) -> Reading:
    """Parse ``RDGK? c;RDGST? c`` into a Reading with the instrument's flags.

    Args:
        reply: the two answers.

    Returns:
        The temperature reading (``INVALID`` when 0 K with a valid status: no curve).
    """
    return reading_372(reply, kelvin=True)


def parse_resistance_reading(reply: Any) -> Reading:
    """Parse ``RDGR? c;RDGST? c`` into a Reading with the instrument's flags.

    Args:
        reply: the two answers.

    Returns:
        The resistance reading (T.OVER / T.UNDER do not flag a resistance).
    """
    return reading_372(reply, kelvin=False)


class InputChannel(Channel):
    """What every input of the 372 has: readings, scan settings, filter, name, limit."""

    channel_label = "input"

    def scan_settings_sent(self, value: Any) -> None:
        """Tell the instrument (its scan tracker) about ``INSET`` just sent.

        Args:
            value: the :class:`ScanSettings` (or tuple of its fields) sent.
        """
        settings = value if isinstance(value, ScanSettings) else ScanSettings(*value)
        hook = getattr(self.parent, "scan_settings_changed", None)
        if hook is not None:
            hook(self.id, settings)

    kelvin_reading = measurement(
        "RDGK? {ch};RDGST? {ch}",
        """Get the temperature with the instrument's verdict, both in one exchange
        (Reading: kelvin, RDGST? as quality flags; 0 K with no curve is INVALID).""",
        separator=";",
        cast=str,
        get_process=parse_kelvin_reading,
        get_process_list=parse_kelvin_reading,
        unit="K",
    )
    resistance_reading = measurement(
        "RDGR? {ch};RDGST? {ch}",
        """Get the resistance with the instrument's verdict, both in one exchange
        (Reading: ohms, RDGST? as quality flags).""",
        separator=";",
        cast=str,
        get_process=parse_resistance_reading,
        get_process_list=parse_resistance_reading,
        unit="Ohm",
    )
    kelvin = measurement(
        "RDGK? {ch}",
        """Get the temperature in kelvin (float; 0 when no curve; see kelvin_reading).""",
        get_process=reply_float,
        unit="K",
    )
    resistance = measurement(
        "RDGR? {ch}",
        """Get the sensor resistance in ohms (float; see resistance_reading).""",
        get_process=reply_float,
        unit="Ohm",
    )
    excitation_power = measurement(
        "RDGPWR? {ch}",
        """Get the excitation power in watts (float).""",
        get_process=reply_float,
        unit="W",
    )
    status = measurement(
        "RDGST? {ch}",
        """Get the reading status (ReadingStatus flags; empty when the reading is valid).""",
        get_process=lambda v: reply_enum(ReadingStatus, v),
    )

    scan_settings = control(
        "INSET? {ch}",
        "INSET {ch},%s,%s,%s,%s,%s",
        """Control the scan settings (ScanSettings: enabled, dwell, pause, curve, tempco).""",
        validator=structured,
        values=ScanSettings,
        cast=str,
        get_process=ScanSettings.from_reply,
        get_process_list=ScanSettings.from_reply,
        after_set=lambda channel, value: channel.scan_settings_sent(value),
    )
    enabled = field_property(
        "scan_settings", "enabled", "Control whether the scanner visits this input (bool)."
    )
    dwell = field_property(
        "scan_settings", "dwell", "Control the dwell time in seconds (int, 1–200)."
    )
    pause = field_property(
        "scan_settings", "pause", "Control the pause (settling) time in seconds (int, 3–200)."
    )
    curve = field_property(
        "scan_settings", "curve", "Control the temperature curve number (int, 0 none, 1–59)."
    )
    tempco = field_property(
        "scan_settings", "tempco", "Control the sensor's temperature coefficient (Tempco)."
    )

    filter = control(
        "FILTER? {ch}",
        "FILTER {ch},%s,%s,%s",
        """Control the reading filter (FilterSettings: on, settle_s, window_pct).""",
        validator=structured,
        values=FilterSettings,
        cast=str,
        get_process=FilterSettings.from_reply,
        get_process_list=FilterSettings.from_reply,
    )
    name = control(
        "INNAME? {ch}",
        'INNAME {ch},"%s"',
        """Control the input's name (str, at most 15 characters).""",
        validator=valid_name,
        values=NAME_MAX_CHARS,
        cast=str,
        get_process=reply_text,
        get_process_list=reply_text,
    )
    temperature_limit = control(
        "TLIMIT? {ch}",
        "TLIMIT {ch},%s",
        """Control the temperature limit in kelvin above which the instrument switches
        every output off (float, 0-2000; 0 disables): the hardware backstop.""",
        validator=in_range,
        values=TLIMIT_RANGE_K,
        unit="K",
        get_process=reply_float,
        set_process=decimal_text,
    )
