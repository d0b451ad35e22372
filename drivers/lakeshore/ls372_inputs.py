"""The inputs of the Lake Shore Model 372: scanner channels 1–16 and control input A.

:class:`InputChannel` is a PyMeasure ``Channel``; the instrument creates one
per input (``ls.ch_6``, ``ls.ch_A``, or ``ls.inputs[6]``). Readings:
``kelvin``, ``resistance`` (Ω), ``excitation_power`` (W), ``status``
(:class:`~drivers.lakeshore.ls372_codes.ReadingStatus` flags). Settings come
as structured values (frozen dataclasses), each with one property per field:

* ``scan_settings`` (``INSET``): :class:`ScanSettings` — ``enabled``,
  ``dwell`` (s), ``pause`` (s), ``curve``, ``tempco``;
* ``input_type`` (``INTYPE``): :class:`InputType` — excitation mode and
  amplitude (V or A), autorange, ``resistance_range`` (Ω full scale), current
  source shunt, preferred units; ``voltage_excitation`` / ``current_excitation``
  set the amplitude and the mode together;
* ``filter`` (``FILTER``): :class:`FilterSettings` — on, settle time (s), window (%);
* ``name`` (``INNAME``), ``temperature_limit`` (``TLIMIT``, K),
  ``excitation_frequency`` (``FREQ``, Hz).

Field properties read-modify-write their group after validating the new
value, so a refused value sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.instruments import Channel

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.ls372_codes import (
    CURRENT_EXCITATIONS,
    FREQUENCIES,
    RESISTANCE_RANGES,
    VOLTAGE_EXCITATIONS,
    Autorange,
    ExcitationMode,
    ReadingStatus,
    SensorUnits,
    Tempco,
    index_to_value,
)
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
from drivers.validators import (
    bad_reply,
    control,
    in_range,
    in_set,
    instrument_name,
    int_in_range,
    measurement,
    refuse,
)

BOOL_CODES = {False: 0, True: 1}
NAME_MAX_CHARS = 15


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
class InputType(Structured):
    """``INTYPE``: excitation and range of an input, in physical units.

    Attributes:
        mode: voltage or current excitation.
        excitation: amplitude in V (voltage mode, 2 µV–632 mV) or A (current
            mode, 1 pA–31.6 mA), one of the instrument's half-decade steps.
        autorange: autorange setting.
        resistance_range: full-scale resistance in Ω (2 mΩ–63.2 MΩ).
        cs_shunt: current source shunted (excitation off).
        units: preferred units (also those of a setpoint on this input).
    """

    mode: ExcitationMode
    excitation: float
    autorange: Autorange
    resistance_range: float
    cs_shunt: bool
    units: SensorUnits

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "mode": (in_set, list(ExcitationMode), ""),
        # Refined by mode in wire(); the two tables do not overlap.
        "excitation": (in_set, {**VOLTAGE_EXCITATIONS, **CURRENT_EXCITATIONS}, "V or A"),
        "autorange": (in_set, list(Autorange), ""),
        "resistance_range": (in_set, RESISTANCE_RANGES, "Ohm"),
        "cs_shunt": (in_set, BOOL_CODES, ""),
        "units": (in_set, list(SensorUnits), ""),
    }

    @staticmethod
    def excitation_table(mode: ExcitationMode) -> dict[float, int]:
        """The excitation table of a mode.

        Args:
            mode: voltage or current.

        Returns:
            ``{amplitude: index}`` (V or A).
        """
        return VOLTAGE_EXCITATIONS if mode == ExcitationMode.VOLTAGE else CURRENT_EXCITATIONS

    @classmethod
    def from_reply(cls, reply: Any) -> InputType:
        """Parse an ``INTYPE?`` reply such as ``0,07,1,10,0,1``.

        Args:
            reply: the reply.

        Returns:
            The input type, with indices converted to V / A / Ω.
        """
        f = reply_fields(reply, 6)
        mode = reply_enum(ExcitationMode, f[0])
        try:
            excitation = index_to_value(cls.excitation_table(mode), reply_int(f[1]))
            resistance_range = index_to_value(RESISTANCE_RANGES, reply_int(f[3]))
        except KeyError as exc:
            raise bad_reply(reply, f"index {exc} is not in the manual's table") from None
        return cls(
            mode=mode,
            excitation=excitation,
            autorange=reply_enum(Autorange, f[2]),
            resistance_range=resistance_range,
            cs_shunt=bool(reply_int(f[4])),
            units=reply_enum(SensorUnits, f[5]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``INTYPE`` arguments after the channel.

        Returns:
            ``(mode, excitation index, autorange, range index, cs_shunt, units)`` as text.
        """
        c = self.checked()
        unit = "V" if c["mode"] == ExcitationMode.VOLTAGE else "A"
        table = self.excitation_table(c["mode"])
        excitation = check_in(self.excitation, table, "excitation", unit)
        return (
            str(int(c["mode"])),
            str(table[excitation]),
            str(int(c["autorange"])),
            str(RESISTANCE_RANGES[c["resistance_range"]]),
            str(BOOL_CODES[c["cs_shunt"]]),
            str(int(c["units"])),
        )


def check_in(value: Any, table: dict[float, int], field: str, unit: str) -> float:
    """Match ``value`` to an entry of ``table`` or refuse it, naming ``field``.

    Args:
        value: the value.
        table: ``{value: index}``.
        field: field name for the message.
        unit: unit for the message.

    Returns:
        The table's entry.
    """
    try:
        result: float = in_set(value, table)
    except SettingOutOfRange as exc:
        raise refuse(value, exc.allowed, field=field, unit=unit) from None
    return result


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


def _excitation_property(mode: ExcitationMode, unit: str) -> property:
    table = InputType.excitation_table(mode)

    def fget(self: InputChannel) -> float | None:
        setup = self.input_type
        return setup.excitation if setup.mode == mode else None

    def fset(self: InputChannel, value: float) -> None:
        try:
            amplitude = in_set(value, table)
        except SettingOutOfRange as exc:
            raise SettingOutOfRange(
                instrument=instrument_name(self),
                command=f"{mode.name.lower()}_excitation",
                value=value,
                allowed=exc.allowed,
                unit=unit,
            ) from None
        current = self.input_type
        self.input_type = InputType(
            mode,
            amplitude,
            current.autorange,
            current.resistance_range,
            current.cs_shunt,
            current.units,
        )

    doc = (
        f"Control the {mode.name.lower()} excitation in {unit} (float); setting it also "
        f"switches the input to {mode.name.lower()} mode. Reads None in the other mode."
    )
    return property(fget, fset, doc=doc)


class InputChannel(Channel):
    """One input of the 372: a scanner channel (1–16) or the control input ``A``."""

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

    kelvin = measurement(
        "KRDG? {ch}",
        """Get the temperature in kelvin (float; 0 when no curve).""",
        get_process=reply_float,
        unit="K",
    )
    resistance = measurement(
        "SRDG? {ch}",
        """Get the sensor resistance in ohms (float).""",
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

    input_type = control(
        "INTYPE? {ch}",
        "INTYPE {ch},%s,%s,%s,%s,%s,%s",
        """Control excitation and range in physical units (InputType).""",
        validator=structured,
        values=InputType,
        cast=str,
        get_process=InputType.from_reply,
        get_process_list=InputType.from_reply,
    )
    excitation_mode = field_property(
        "input_type", "mode", "Get the excitation mode (ExcitationMode).", settable=False
    )
    excitation = field_property(
        "input_type",
        "excitation",
        "Get the excitation amplitude (float, V in voltage mode, A in current mode).",
        settable=False,
    )
    voltage_excitation = _excitation_property(ExcitationMode.VOLTAGE, "V")
    current_excitation = _excitation_property(ExcitationMode.CURRENT, "A")
    autorange = field_property(
        "input_type", "autorange", "Control the autorange setting (Autorange)."
    )
    resistance_range = field_property(
        "input_type",
        "resistance_range",
        "Control the resistance range: full scale in ohms (float, 2e-3 to 63.2e6).",
    )
    cs_shunt = field_property(
        "input_type", "cs_shunt", "Control whether the current source is shunted (bool)."
    )
    units = field_property(
        "input_type", "units", "Control the preferred units, kelvin or ohms (SensorUnits)."
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
        """Control the temperature limit in kelvin above which all outputs are switched
        off (float, 0 disables).""",
        validator=in_range,
        values=(0.0, 2000.0),
        unit="K",
        get_process=reply_float,
        set_process=decimal_text,
    )
    excitation_frequency = control(
        "FREQ? {ch}",
        "FREQ {ch},%d",
        """Control the excitation frequency in hertz (float: 9.8, 11.6, 13.7, 16.2 or 18.2).""",
        validator=in_set,
        values=FREQUENCIES,
        map_values=True,
        unit="Hz",
        get_process=reply_int,
    )
