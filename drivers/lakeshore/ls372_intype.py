"""The ``INTYPE`` of the Lake Shore Model 372's two kinds of input, in physical units.

The scanner channels 1–16 and the control input A take different
excitations, so each has its own structured setting and channel class:

* :class:`InputType` / :class:`ScannerInput` (channels 1–16): voltage
  (2 µV–632 mV) or current (1 pA–31.6 mA) excitation, autorange, a
  resistance range (2 mΩ–63.2 MΩ), current-source shunt, preferred units;
  ``voltage_excitation`` / ``current_excitation`` set the amplitude and the
  mode together;
* :class:`ControlInputType` / :class:`ControlInput` (input A): current
  excitation only, from its own table (316 pA–100 nA, :data:`~drivers.lakeshore.ls372_codes.CONTROL_EXCITATIONS`),
  autorange on or off, shunt and units; the resistance-range field of
  ``INTYPE`` does not apply to it and is sent as 0. Its excitation frequency
  (``FREQ A``) is its own; the scanner channels share one (``FREQ 0``, the
  instrument's ``measurement_frequency``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.ls372_codes import (
    CONTROL_EXCITATIONS,
    CURRENT_EXCITATIONS,
    FREQUENCIES,
    RESISTANCE_RANGES,
    VOLTAGE_EXCITATIONS,
    Autorange,
    ExcitationMode,
    SensorUnits,
    index_to_value,
)
from drivers.lakeshore.ls372_inputs import BOOL_CODES, InputChannel
from drivers.lakeshore.wire import (
    Structured,
    field_property,
    reply_enum,
    reply_fields,
    reply_int,
    structured,
)
from drivers.validators import bad_reply, control, in_set, instrument_name, refuse

FREQUENCY_DOC = """Control the excitation frequency in hertz (float: 9.8, 11.6, 13.7, 16.2 or 18.2)."""


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


@dataclass(frozen=True)
class ControlInputType(Structured):
    """``INTYPE A``: the control input's excitation, in physical units.

    The control input is excited by a current only, from its own table;
    the ``INTYPE`` mode field is always 1 (current) and its range field does
    not apply (sent as 0, ignored when read).

    Attributes:
        excitation: current in A, one of 316 pA, 1 nA, 3.16 nA, 10 nA, 31.6 nA, 100 nA.
        autorange: current autorange on.
        cs_shunt: current source shunted (excitation off).
        units: preferred units (also those of a setpoint on this input).
    """

    excitation: float
    autorange: bool
    cs_shunt: bool
    units: SensorUnits

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "excitation": (in_set, CONTROL_EXCITATIONS, "A"),
        "autorange": (in_set, BOOL_CODES, ""),
        "cs_shunt": (in_set, BOOL_CODES, ""),
        "units": (in_set, list(SensorUnits), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> ControlInputType:
        """Parse an ``INTYPE? A`` reply such as ``1,02,1,00,0,1``.

        Args:
            reply: the reply.

        Returns:
            The input type, the excitation index converted to amperes.

        Raises:
            InstrumentReplyError: not current mode, or an index not in the control table.
        """
        f = reply_fields(reply, 6)
        if reply_enum(ExcitationMode, f[0]) != ExcitationMode.CURRENT:
            raise bad_reply(reply, "the control input is excited by a current (mode 1)")
        autorange = reply_enum(Autorange, f[2])
        if autorange == Autorange.ROX102B:
            raise bad_reply(reply, "the control input has no ROX102B autorange")
        try:
            excitation = index_to_value(CONTROL_EXCITATIONS, reply_int(f[1]))
        except KeyError as exc:
            raise bad_reply(reply, f"index {exc} is not in the control input's table") from None
        return cls(
            excitation=excitation,
            autorange=autorange == Autorange.ON,
            cs_shunt=bool(reply_int(f[4])),
            units=reply_enum(SensorUnits, f[5]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``INTYPE A`` arguments after the input.

        Returns:
            ``(1, excitation index, autorange, 0, cs_shunt, units)`` as text.
        """
        c = self.checked()
        return (
            str(int(ExcitationMode.CURRENT)),
            str(CONTROL_EXCITATIONS[c["excitation"]]),
            str(BOOL_CODES[c["autorange"]]),
            "0",
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


def _excitation_property(mode: ExcitationMode, unit: str) -> property:
    table = InputType.excitation_table(mode)

    def fget(self: ScannerInput) -> float | None:
        setup = self.input_type
        return setup.excitation if setup.mode == mode else None

    def fset(self: ScannerInput, value: float) -> None:
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


class ScannerInput(InputChannel):
    """A scanner channel (1–16) of the 372: voltage or current excitation with a range."""

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


class ControlInput(InputChannel):
    """The control input A of the 372: current excitation from its own table, read continuously."""

    input_type = control(
        "INTYPE? {ch}",
        "INTYPE {ch},%s,%s,%s,%s,%s,%s",
        """Control the control input's excitation in physical units (ControlInputType:
        excitation 316 pA-100 nA, autorange, cs_shunt, units).""",
        validator=structured,
        values=ControlInputType,
        cast=str,
        get_process=ControlInputType.from_reply,
        get_process_list=ControlInputType.from_reply,
    )
    current_excitation = field_property(
        "input_type",
        "excitation",
        "Control the excitation current in amperes (float: 3.16e-10, 1e-9, 3.16e-9, 1e-8, "
        "3.16e-8, 1e-7).",
    )
    autorange = field_property(
        "input_type", "autorange", "Control whether the current autorange is on (bool)."
    )
    cs_shunt = field_property(
        "input_type", "cs_shunt", "Control whether the current source is shunted (bool)."
    )
    units = field_property(
        "input_type", "units", "Control the preferred units, kelvin or ohms (SensorUnits)."
    )
    excitation_frequency = control(
        "FREQ? {ch}",
        "FREQ {ch},%d",
        FREQUENCY_DOC,
        validator=in_set,
        values=FREQUENCIES,
        map_values=True,
        unit="Hz",
        get_process=reply_int,
    )
