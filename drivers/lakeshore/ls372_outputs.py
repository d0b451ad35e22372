"""The outputs of the Lake Shore Model 372: sample heater (0), warm-up heater (1), still (2).

Each output is a PyMeasure ``Channel`` (``ls.sample_heater``,
``ls.warmup_heater``, ``ls.still_heater``, or ``ls.outputs[0..2]``) with:

* ``setup`` (``OUTMODE``): :class:`OutputSetup` — ``mode``
  (:class:`~drivers.lakeshore.ls372_codes.OutputMode`), ``control_input``
  (``"A"``, 1–16, or 0 for none), ``powerup_enable``, ``polarity``,
  ``output_filter``, ``delay`` (s); one property per field;
* ``heater_setup`` (``HTRSET``, outputs 0 and 1 only):
  :class:`~drivers.lakeshore.ls372_heater.SampleHeaterSetup` (resistance in
  Ω, display) on the sample heater,
  :class:`~drivers.lakeshore.ls372_heater.WarmupHeaterSetup` (25 / 50 Ω,
  maximum current 0.45 / 0.63 A or a user limit, display) on the warm-up heater;
* ``zone(n)`` / ``set_zone(n, row)`` and ``zones`` (``ZONE``, outputs 0 and 1):
  the ten-row zone table as :class:`~drivers.lakeshore.ls372_heater.SampleZone`
  / :class:`~drivers.lakeshore.ls372_heater.WarmupZone` rows;
* ``heater_range``: the sample heater's full-scale current in amperes
  (0 = off, 31.6e-6 … 0.1); on/off (bool) for outputs 1 and 2;
* ``manual_output`` (``MOUT``, %), ``setpoint`` (``SETP``, K; use
  ``setpoint_ohms`` when the control input's units are ohms), ``pid``
  (:class:`PID372`), ``ramp`` (:class:`Ramp372`; ``ramp_enabled``,
  ``ramp_rate``), ``ramping`` (``RAMPST?``), ``heater_status`` (``HTRST?``);
* methods ``start_ramp(target, rate)``, ``stop_ramp()`` and ``off()``.

The sample heater also has ``heater_output`` (``HTR?``), the warm-up and
still outputs ``heater_output`` (``AOUT?``); the heaters (0, 1) have
``heater_output_reading``: the output and ``HTRST?`` in one exchange, as a
:class:`~drivers.readings.Reading` flagged ``OUTPUT_FAULT`` ("HTRST 1: open
load", "HTRST 2: short") when the heater reports a fault. The still output
has ``still_output`` (``STILL``, %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.instruments import Channel

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.loops import BOOL_CODES, PIDGains, Ramp, RampActions
from drivers.lakeshore.ls372_codes import (
    SAMPLE_HEATER_RANGES,
    HeaterStatus,
    OutputMode,
    Polarity,
)
from drivers.lakeshore.ls372_heater import (
    ZONES,
    SampleHeaterSetup,
    SampleZone,
    WarmupHeaterSetup,
    WarmupZone,
)
from drivers.lakeshore.status import heater_reading
from drivers.lakeshore.wire import (
    Structured,
    decimal_text,
    field_property,
    reply_enum,
    reply_fields,
    reply_float,
    reply_int,
    structured,
)
from drivers.readings import Reading
from drivers.validators import (
    bad_reply,
    control,
    in_range,
    in_set,
    instrument_name,
    int_in_range,
    measurement,
    require_in_range,
)

CONTROL_INPUTS: list[Any] = [0, "A", *range(1, 17)]
"""What an output can control from: 0 none, ``"A"`` the control input, 1–16 scanner channels."""


def parse_input(value: Any) -> str | int:
    """Parse the input field of an ``OUTMODE?`` reply (``A``, ``0``, ``05``).

    Args:
        value: the field.

    Returns:
        ``"A"`` or the channel number (0 for none).
    """
    text = str(value).strip().strip('"').upper()
    if text == "A":
        return "A"
    number = reply_int(text)
    if number not in CONTROL_INPUTS:
        raise bad_reply(value, "not an input: expected A, 0 or 1-16")
    return number


@dataclass(frozen=True)
class OutputSetup(Structured):
    """``OUTMODE``: how an output is driven.

    Attributes:
        mode: output mode.
        control_input: ``"A"``, 1–16, or 0 for none.
        powerup_enable: stay on after a power cycle.
        polarity: unipolar or bipolar (outputs 1 and 2).
        output_filter: reading filter used for control.
        delay: autoscan delay in seconds before control resumes (1–255).
    """

    mode: OutputMode
    control_input: str | int
    powerup_enable: bool
    polarity: Polarity
    output_filter: bool
    delay: int

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "mode": (in_set, list(OutputMode), ""),
        "control_input": (in_set, CONTROL_INPUTS, ""),
        "powerup_enable": (in_set, BOOL_CODES, ""),
        "polarity": (in_set, list(Polarity), ""),
        "output_filter": (in_set, BOOL_CODES, ""),
        "delay": (int_in_range, (1, 255), "s"),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> OutputSetup:
        """Parse an ``OUTMODE?`` reply such as ``5,A,0,0,0,1``.

        Args:
            reply: the reply.

        Returns:
            The set-up.
        """
        f = reply_fields(reply, 6)
        return cls(
            mode=reply_enum(OutputMode, f[0]),
            control_input=parse_input(f[1]),
            powerup_enable=bool(reply_int(f[2])),
            polarity=reply_enum(Polarity, f[3]),
            output_filter=bool(reply_int(f[4])),
            delay=reply_int(f[5]),
        )

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``OUTMODE`` arguments after the output number.

        Returns:
            ``(mode, input, powerup, polarity, filter, delay)`` as text.
        """
        c = self.checked()
        return (
            str(int(c["mode"])),
            str(c["control_input"]),
            str(BOOL_CODES[c["powerup_enable"]]),
            str(int(c["polarity"])),
            str(BOOL_CODES[c["output_filter"]]),
            str(c["delay"]),
        )


@dataclass(frozen=True)
class PID372(PIDGains):
    """PID gains of a 372 output: P 0–1000, I 0–10000, D 0–2500."""


@dataclass(frozen=True)
class Ramp372(Ramp):
    """Setpoint ramp of a 372 output: rate 0.001–100 K/min."""


def _heater_setup(setup: Any) -> Any:
    return control(
        "HTRSET? {ch}",
        "HTRSET {ch},%s,%s,%s,%s",
        f"""Control the heater set-up ({setup.__name__}).""",
        validator=structured,
        values=setup,
        cast=str,
        get_process=setup.from_reply,
        get_process_list=setup.from_reply,
    )


def _heater_reading(query: str) -> Any:
    def parse(reply: Any) -> Reading:
        return heater_reading(reply, query)

    return measurement(
        f"{query};HTRST? {{ch}}",
        """Get the heater output with the heater's own verdict (HTRST?) in one exchange
        (Reading, flagged OUTPUT_FAULT with 'open load' or 'short').""",
        separator=";",
        cast=str,
        get_process=parse,
        get_process_list=parse,
        unit="%",
    )


class ZoneTable:
    """Mix-in for the heaters with a ``ZONE`` table; ``ZONE_ROW`` is the row class."""

    ZONE_ROW: ClassVar[type[SampleZone]] = SampleZone

    # Provided by PyMeasure's Channel.
    ask: Any
    write: Any

    def _zone_number(self, number: Any) -> int:
        return int(require_in_range(number, 1, 10, instrument=instrument_name(self),
                                    command="zone", integer=True))

    def zone(self, number: int) -> SampleZone:
        """Read one row of the zone table (``ZONE? o,z``).

        Args:
            number: zone 1–10.

        Returns:
            The row (:class:`SampleZone` or :class:`WarmupZone`).
        """
        n = self._zone_number(number)
        return self.ZONE_ROW.from_reply(self.ask(f"ZONE? {{ch}},{n}"))

    def _zone_args(self, number: Any, row: Any) -> str:
        n = self._zone_number(number)
        cls = self.ZONE_ROW
        if isinstance(row, tuple):
            row = cls(*row)
        if type(row) is not cls:  # a warm-up row is a SampleZone subclass: not interchangeable
            raise SettingOutOfRange(instrument=instrument_name(self), command=f"zone {n}",
                                    value=row, allowed=f"a {cls.__name__}")
        try:
            args = row.wire()
        except SettingOutOfRange as exc:
            raise SettingOutOfRange(instrument=instrument_name(self),
                                    command=f"zone {n}.{exc.command}", value=exc.value,
                                    allowed=exc.allowed, unit=exc.unit) from None
        return f"{n},{','.join(args)}"

    def set_zone(self, number: int, row: Any) -> None:
        """Write one row of the zone table (``ZONE o,z,...``), validated first.

        Args:
            number: zone 1–10.
            row: the row (the output's zone class, or a tuple of its fields).

        Raises:
            SettingOutOfRange: a field is refused; nothing is sent.
        """
        self.write(f"ZONE {{ch}},{self._zone_args(number, row)}")

    @property
    def zones(self) -> list[SampleZone]:
        """Control the whole zone table (list of up to 10 rows, zone 1 first).

        Setting validates every row, and that the upper bounds of the rows
        given rise from one zone to the next (a row whose bound is not above
        the previous one would never be used), before sending anything; rows
        beyond the list keep what they hold.
        """
        return [self.zone(n) for n in ZONES]

    @zones.setter
    def zones(self, rows: Any) -> None:
        rows = list(rows)
        if not 1 <= len(rows) <= len(ZONES):
            raise SettingOutOfRange(instrument=instrument_name(self), command="zones",
                                    value=len(rows), allowed="1 to 10 rows")
        commands = [self._zone_args(n, row) for n, row in zip(ZONES, rows, strict=False)]
        bounds = [float(c.split(",")[1]) for c in commands]
        for n in range(1, len(bounds)):
            if not bounds[n] > bounds[n - 1]:
                raise SettingOutOfRange(
                    instrument=instrument_name(self), command=f"zones[{n + 1}].upper_bound",
                    value=bounds[n], allowed=f"above zone {n}'s {bounds[n - 1]:g}", unit="K")
        for args in commands:
            self.write(f"ZONE {{ch}},{args}")


class OutputChannel(RampActions, Channel):
    """What every 372 output has; see the subclasses for the heater range."""

    channel_label = "output"

    setup = control(
        "OUTMODE? {ch}",
        "OUTMODE {ch},%s,%s,%s,%s,%s,%s",
        """Control the output set-up (OutputSetup: mode, control_input, powerup_enable,
        polarity, output_filter, delay).""",
        validator=structured,
        values=OutputSetup,
        cast=str,
        get_process=OutputSetup.from_reply,
        get_process_list=OutputSetup.from_reply,
    )
    mode = field_property("setup", "mode", "Control the output mode (OutputMode).")
    control_input = field_property(
        "setup", "control_input", "Control the input the loop reads: 'A', 1-16, or 0 for none."
    )
    powerup_enable = field_property(
        "setup", "powerup_enable", "Control whether the output stays on after power-up (bool)."
    )
    polarity = field_property("setup", "polarity", "Control the polarity (Polarity).")
    output_filter = field_property(
        "setup", "output_filter", "Control whether the loop uses filtered readings (bool)."
    )
    delay = field_property("setup", "delay", "Control the autoscan delay in seconds (int, 1-255).")

    manual_output = control(
        "MOUT? {ch}",
        "MOUT {ch},%s",
        """Control the manual (open-loop) output in percent of the range (float, 0-100).""",
        validator=in_range,
        values=(0.0, 100.0),
        unit="%",
        get_process=reply_float,
        set_process=decimal_text,
    )
    setpoint = control(
        "SETP? {ch}",
        "SETP {ch},%s",
        """Control the setpoint in kelvin (float, 0-2000); the controller uses the
        control input's units, so use setpoint_ohms when those are ohms.""",
        validator=in_range,
        values=(0.0, 2000.0),
        unit="K",
        get_process=reply_float,
        set_process=decimal_text,
    )
    setpoint_ohms = control(
        "SETP? {ch}",
        "SETP {ch},%s",
        """Control the setpoint in ohms (float, 0-63.2e6), for a control input in ohms.""",
        validator=in_range,
        values=(0.0, 63.2e6),
        unit="Ohm",
        get_process=reply_float,
        set_process=decimal_text,
    )
    pid = control(
        "PID? {ch}",
        "PID {ch},%s,%s,%s",
        """Control the PID gains (PID372: p 0-1000, i 0-10000, d 0-2500).""",
        validator=structured,
        values=PID372,
        cast=str,
        get_process=PID372.from_reply,
        get_process_list=PID372.from_reply,
    )
    ramp = control(
        "RAMP? {ch}",
        "RAMP {ch},%s,%s",
        """Control the setpoint ramp (Ramp372: enabled, rate in K/min 0.001-100).""",
        validator=structured,
        values=Ramp372,
        cast=str,
        get_process=Ramp372.from_reply,
        get_process_list=Ramp372.from_reply,
    )
    ramp_enabled = field_property("ramp", "enabled", "Control whether ramping is on (bool).")
    ramp_rate = field_property("ramp", "rate", "Control the ramp rate in K/min (float, 0.001-100).")
    ramping = measurement(
        "RAMPST? {ch}",
        """Get whether the setpoint is ramping now (bool).""",
        get_process=lambda v: bool(reply_int(v)),
    )
    heater_status = measurement(
        "HTRST? {ch}",
        """Get the heater status (HeaterStatus: ok, open load, short).""",
        get_process=lambda v: reply_enum(HeaterStatus, v),
    )

    def off(self) -> None:
        """Switch the output off (heater range 0); the safe state."""
        self.write("RANGE {ch},0")


class SampleHeater(ZoneTable, OutputChannel):
    """Output 0, the sample (mixing-chamber) heater: a current source with ranges."""

    ZONE_ROW = SampleZone

    heater_setup = _heater_setup(SampleHeaterSetup)
    heater_output_reading = _heater_reading("HTR?")

    heater_range = control(
        "RANGE? {ch}",
        "RANGE {ch},%d",
        """Control the heater range as full-scale current in amperes (float: 0 off,
        31.6e-6, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 0.01, 0.0316, 0.1).""",
        validator=in_set,
        values=SAMPLE_HEATER_RANGES,
        map_values=True,
        unit="A",
        get_process=reply_int,
    )
    heater_output = measurement(
        "HTR?",
        """Get the sample heater output in percent of range, or in watts when the
        heater display is set to power (float).""",
        get_process=reply_float,
        unit="%",
    )


class WarmupHeater(ZoneTable, OutputChannel):
    """Output 1, the warm-up heater."""

    ZONE_ROW = WarmupZone

    heater_setup = _heater_setup(WarmupHeaterSetup)
    heater_output = measurement(
        "AOUT? {ch}",
        """Get the warm-up heater output in percent (float).""",
        get_process=reply_float,
        unit="%",
    )
    heater_output_reading = _heater_reading("AOUT? {ch}")

    heater_range = control(
        "RANGE? {ch}",
        "RANGE {ch},%d",
        """Control whether the warm-up heater output is on (bool).""",
        validator=in_set,
        values=BOOL_CODES,
        map_values=True,
        get_process=reply_int,
    )


class StillHeater(OutputChannel):
    """Output 2, the still heater / analog output."""

    heater_range = control(
        "RANGE? {ch}",
        "RANGE {ch},%d",
        """Control whether the still / analog output is on (bool).""",
        validator=in_set,
        values=BOOL_CODES,
        map_values=True,
        get_process=reply_int,
    )
    heater_output = measurement(
        "AOUT? {ch}",
        """Get the still / analog output in percent (float).""",
        get_process=reply_float,
        unit="%",
    )
    still_output = control(
        "STILL?",
        "STILL %s",
        """Control the still output in percent (float, 0-100).""",
        validator=in_range,
        values=(0.0, 100.0),
        unit="%",
        get_process=reply_float,
        set_process=decimal_text,
    )
