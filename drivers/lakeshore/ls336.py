"""Driver for the Lake Shore Model 336 temperature controller (4 K / 50 K stages).

Connect over Ethernet (``TCPIP::<host>::7777::SOCKET``) or USB serial
(57600 baud, 7 data bits, odd parity, 1 stop bit; set by default). The
constructor sends nothing.

Interface:

* ``lc.inputs`` / ``lc.ch_A`` … ``lc.ch_D`` — :class:`Input336`:
  ``kelvin_reading`` (kelvin and ``RDGST?`` in one exchange, a
  :class:`~drivers.readings.Reading` with the instrument's flags), ``kelvin``,
  ``sensor`` (sensor units: V, Ω), ``status`` (:class:`InputStatus` flags),
  ``input_type`` (``INTYPE``, :class:`InputType336`: the range in V or Ω,
  ``input_range``), ``curve`` (``INCRV``), ``name`` (``INNAME``);
* ``lc.kelvins`` (``KRDG? 0``): the four inputs' temperatures;
  ``lc.input_readings``: all four inputs and their status in one exchange
  (``KRDG? 0;RDGST? A;RDGST? B;RDGST? C;RDGST? D``); ``lc.cached_reading(x)``
  serves the inputs' poll specs from it, one exchange per poll cycle;
* curves: ``upload_curve`` (paced, every point read back), ``read_curve``,
  ``curve_header``, ... (formats mV/K, V/K, Ω/K, log Ω/K) from
  :class:`~drivers.lakeshore.curves.CurveMethods`;
* ``lc.output_1``, ``lc.output_2`` (also ``lc.outputs[n]``) — :class:`Output336`:
  ``heater_range`` (:class:`HeaterRange` off / low / medium / high),
  ``setpoint`` (K), ``pid`` (:class:`PID336`), ``manual_output`` (%),
  ``ramp`` (:class:`Ramp336`; ``ramp_enabled``, ``ramp_rate``), ``ramping``,
  ``heater_output`` (``HTR?``, %), ``setup`` (``OUTMODE``,
  :class:`OutputSetup336`; ``mode``, ``control_input``), ``heater_setup``
  (``HTRSET``, :class:`HeaterSetup336`), ``heater_status``,
  ``heater_output_reading`` (``HTR?`` and ``HTRST?`` in one exchange,
  flagged ``OUTPUT_FAULT`` on a heater fault); methods
  ``start_ramp(target, rate)``, ``stop_ramp()``, ``off()``;
* ``all_heaters_off()``;
* the daemon's view: poll specs ``A`` … ``D`` (K, enabled inputs only, all
  served by one exchange per cycle) and ``heater1`` / ``heater2`` (%, with
  the heater's status); control specs ``setpoint<n>``,
  ``heater_range<n>``, ``manual_output<n>``, ``pid<n>``, ``ramp_rate<n>``,
  ``ramp_enabled<n>``, ``heater_mode<n>`` for n = 1, 2; actions
  ``start_ramp<n>(target, rate)``, ``stop_ramp<n>()``, ``all_heaters_off()``.

Codes and structured settings live in :mod:`drivers.lakeshore.ls336_codes`
and are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from pymeasure.instruments import Channel, Instrument

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.lakeshore.curves import CurveMethods
from drivers.lakeshore.loops import RampActions
from drivers.lakeshore.ls336_codes import (
    INPUTS,
    PID336,
    HeaterRange,
    HeaterSetup336,
    InputStatus,
    InputType336,
    InputUnits,
    OutputMode336,
    OutputSetup336,
    Ramp336,
    SensorType,
)
from drivers.lakeshore.ls372_codes import CurveFormat, HeaterStatus
from drivers.lakeshore.ls372_inputs import NAME_MAX_CHARS, valid_name
from drivers.lakeshore.status import heater_reading, reading_336, readings_336, split_pair
from drivers.lakeshore.wire import (
    LakeShoreInstrument,
    decimal_text,
    field_property,
    reply_enum,
    reply_float,
    reply_int,
    reply_text,
    structured,
    validate_field,
)
from drivers.readings import Reading
from drivers.validators import (
    allowed_text,
    control,
    in_range,
    in_set,
    int_in_range,
    measurement,
    validate_setting,
)

__all__ = [
    "PID336",
    "HeaterRange",
    "HeaterSetup336",
    "Input336",
    "InputStatus",
    "InputType336",
    "InputUnits",
    "LakeShore336",
    "Output336",
    "OutputMode336",
    "OutputSetup336",
    "Ramp336",
    "SensorType",
]

ALL_INPUTS_QUERY = "KRDG? 0;" + ";".join(f"RDGST? {x}" for x in INPUTS)
"""Every input's kelvin reading and status in one exchange."""


def _kelvin_reading(reply: Any) -> Reading:
    value, status = split_pair(reply, "KRDG?;RDGST?")
    return reading_336(value, status)


def _heater_reading(reply: Any) -> Reading:
    return heater_reading(reply, "HTR?;HTRST?")


class Input336(Channel):
    """One sensor input (A–D) of the 336."""

    channel_label = "input"

    kelvin_reading = measurement(
        "KRDG? {ch};RDGST? {ch}",
        """Get the temperature with the instrument's verdict in one exchange (Reading:
        kelvin, RDGST? as quality flags; 0 K with a valid status is INVALID, no curve).""",
        separator=";",
        cast=str,
        get_process=_kelvin_reading,
        get_process_list=_kelvin_reading,
        unit="K",
    )
    kelvin = measurement(
        "KRDG? {ch}",
        """Get the temperature in kelvin (float).""",
        get_process=reply_float,
        unit="K",
    )
    sensor = measurement(
        "SRDG? {ch}",
        """Get the reading in sensor units: V (diode) or Ω (resistor) (float).""",
        get_process=reply_float,
    )
    status = measurement(
        "RDGST? {ch}",
        """Get the reading status (InputStatus flags; empty when valid).""",
        get_process=lambda v: reply_enum(InputStatus, v),
    )
    input_type = control(
        "INTYPE? {ch}",
        "INTYPE {ch},%s,%s,%s,%s,%s",
        """Control the sensor type and range (InputType336).""",
        validator=structured,
        values=InputType336,
        cast=str,
        get_process=InputType336.from_reply,
        get_process_list=InputType336.from_reply,
    )
    sensor_type = field_property(
        "input_type", "sensor_type", "Control the sensor type (SensorType; DISABLED is off)."
    )
    input_range = field_property(
        "input_type",
        "input_range",
        "Control the input range, full scale in V (diode 2.5, 10; thermocouple 0.05) or "
        "ohms (RTD 10 to 100e3) (float; None when disabled).",
    )
    curve = control(
        "INCRV? {ch}",
        "INCRV {ch},%d",
        """Control the curve number of the input (int, 0 none, 1-59).""",
        validator=int_in_range,
        values=(0, 59),
        get_process=reply_int,
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


class Output336(RampActions, Channel):
    """A current heater output (1 or 2) of the 336."""

    channel_label = "output"

    heater_range = control(
        "RANGE? {ch}",
        "RANGE {ch},%d",
        """Control the heater range (HeaterRange: off, low, medium, high).""",
        validator=in_set,
        values=list(HeaterRange),
        get_process=lambda v: reply_enum(HeaterRange, v),
        set_process=int,
    )
    setpoint = control(
        "SETP? {ch}",
        "SETP {ch},%s",
        """Control the setpoint in kelvin (float, 0-2000; in the control input's units).""",
        validator=in_range,
        values=(0.0, 2000.0),
        unit="K",
        get_process=reply_float,
        set_process=decimal_text,
    )
    pid = control(
        "PID? {ch}",
        "PID {ch},%s,%s,%s",
        """Control the PID gains (PID336: p 0.1-1000, i 0.1-1000, d 0-200 %).""",
        validator=structured,
        values=PID336,
        cast=str,
        get_process=PID336.from_reply,
        get_process_list=PID336.from_reply,
    )
    manual_output = control(
        "MOUT? {ch}",
        "MOUT {ch},%s",
        """Control the manual output in percent (float, 0-100).""",
        validator=in_range,
        values=(0.0, 100.0),
        unit="%",
        get_process=reply_float,
        set_process=decimal_text,
    )
    ramp = control(
        "RAMP? {ch}",
        "RAMP {ch},%s,%s",
        """Control the setpoint ramp (Ramp336: enabled, rate in K/min 0.1-100).""",
        validator=structured,
        values=Ramp336,
        cast=str,
        get_process=Ramp336.from_reply,
        get_process_list=Ramp336.from_reply,
    )
    ramp_enabled = field_property("ramp", "enabled", "Control whether ramping is on (bool).")
    ramp_rate = field_property("ramp", "rate", "Control the ramp rate in K/min (float, 0.1-100).")
    ramping = measurement(
        "RAMPST? {ch}",
        """Get whether the setpoint is ramping now (bool).""",
        get_process=lambda v: bool(reply_int(v)),
    )
    heater_output = measurement(
        "HTR? {ch}",
        """Get the heater output in percent (float).""",
        get_process=reply_float,
        unit="%",
    )
    heater_output_reading = measurement(
        "HTR? {ch};HTRST? {ch}",
        """Get the heater output with the heater's verdict (HTRST?) in one exchange
        (Reading, flagged OUTPUT_FAULT with 'open load' or 'short').""",
        separator=";",
        cast=str,
        get_process=_heater_reading,
        get_process_list=_heater_reading,
        unit="%",
    )
    setup = control(
        "OUTMODE? {ch}",
        "OUTMODE {ch},%s,%s,%s",
        """Control the output set-up (OutputSetup336: mode, control_input, powerup_enable).""",
        validator=structured,
        values=OutputSetup336,
        cast=str,
        get_process=OutputSetup336.from_reply,
        get_process_list=OutputSetup336.from_reply,
    )
    mode = field_property("setup", "mode", "Control the output mode (OutputMode336).")
    control_input = field_property(
        "setup", "control_input", "Control the control input ('A'-'D', '' for none)."
    )
    heater_setup = control(
        "HTRSET? {ch}",
        "HTRSET {ch},%s,%s,%s,%s",
        """Control the heater set-up (HeaterSetup336: resistance, max_current,
        max_user_current, display).""",
        validator=structured,
        values=HeaterSetup336,
        cast=str,
        get_process=HeaterSetup336.from_reply,
        get_process_list=HeaterSetup336.from_reply,
    )
    heater_status = measurement(
        "HTRST? {ch}",
        """Get the heater status (HeaterStatus: ok, open load, short).""",
        get_process=lambda v: reply_enum(HeaterStatus, v),
    )

    def off(self) -> None:
        """Switch the heater off (range off); the safe state."""
        self.write("RANGE {ch},0")


class LakeShore336(LakeShoreInstrument, CurveMethods):
    """Lake Shore Model 336: four inputs (A-D) and two current heater outputs (1, 2).

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        readings_max_age_s: how long one all-inputs exchange serves the
            inputs' reads (each input takes a snapshot at most once).
        clock: monotonic time source, for the snapshot's age.
        **kwargs: adapter settings (``timeout`` in ms, ...).
    """

    CURVE_FORMATS = (CurveFormat.MV_PER_K, CurveFormat.V_PER_K, CurveFormat.OHM_PER_K,
                     CurveFormat.LOG_OHM_PER_K)

    inputs = Instrument.MultiChannelCreator(Input336, list(INPUTS))
    output_1 = Instrument.ChannelCreator(Output336, 1, collection="outputs")
    output_2 = Instrument.ChannelCreator(Output336, 2, collection="outputs")

    kelvins = measurement(
        "KRDG? 0",
        """Get all four inputs' kelvin readings, A to D (list of float; see input_readings
        for the same with each input's status).""",
    )
    input_readings = measurement(
        ALL_INPUTS_QUERY,
        """Get all four inputs' kelvin readings with their status in one exchange
        (list of Reading, A to D).""",
        separator=";",
        cast=str,
        get_process=readings_336,
        get_process_list=readings_336,
        unit="K",
    )

    def __init__(self, adapter: Any, name: str = "Lake Shore 336", *,
                 readings_max_age_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        super().__init__(adapter, name, **kwargs)
        self.readings_max_age_s = readings_max_age_s
        self._clock = clock
        self._snapshot: dict[str, Reading] = {}
        self._snapshot_at = 0.0
        self._taken: set[str] = set()

    def cached_reading(self, letter: str) -> Reading:
        """One input's reading from the latest all-inputs exchange, fetching a new one when due.

        A new exchange is made when this input has already had the present
        snapshot, or when the snapshot is older than ``readings_max_age_s``:
        the four inputs polled in one cycle cost one exchange, and no input
        is served the same reading twice.

        Args:
            letter: ``"A"`` to ``"D"``.

        Returns:
            The reading with the instrument's flags.
        """
        now = self._clock()
        if (letter in self._taken or not self._snapshot
                or now - self._snapshot_at > self.readings_max_age_s):
            self._snapshot = dict(zip(INPUTS, self.input_readings, strict=True))
            self._snapshot_at = now
            self._taken = set()
        self._taken.add(letter)
        return self._snapshot[letter]

    def all_heaters_off(self) -> None:
        """Switch both heater outputs off; the safe state."""
        self.output_1.off()
        self.output_2.off()

    def poll_specs(self) -> list[PollSpec]:
        """What the daemon can poll; asks ``INTYPE?`` to leave out disabled inputs.

        Returns:
            Poll specs ``A``-``D`` (K) and ``heater1``, ``heater2`` (%).
        """
        specs: list[PollSpec] = []
        for letter in INPUTS:
            chan = self.inputs[letter]
            if chan.input_type.sensor_type == SensorType.DISABLED:
                continue
            specs.append(
                PollSpec(letter, "K", partial(self.cached_reading, letter), 1.0, "temperature")
            )
        for n in (1, 2):
            out = self.outputs[n]
            specs.append(
                PollSpec(f"heater{n}", "%", partial(getattr, out, "heater_output_reading"), 2.0,
                         "heater_output")
            )
        return specs

    def control_specs(self) -> list[ControlSpec]:
        """What the daemon can set; nothing is sent to build them.

        Returns:
            Control specs for outputs 1 and 2.
        """
        specs: list[ControlSpec] = []
        for n in (1, 2):
            out = self.outputs[n]
            for name in ("setpoint", "heater_range", "manual_output", "pid"):
                specs.append(
                    ControlSpec(
                        name=f"{name}{n}",
                        unit=getattr(type(out), name).unit,
                        set=partial(setattr, out, name),
                        validate=partial(validate_setting, out, name),
                        get=partial(getattr, out, name),
                        allowed=allowed_text(out, name),
                    )
                )
            for name, group, field, unit, allowed in (
                ("ramp_rate", "ramp", "rate", "K/min", "0.1 to 100"),
                ("ramp_enabled", "ramp", "enabled", "", "True, False"),
                ("mode", "setup", "mode", "", "OutputMode336 0-5"),
            ):
                specs.append(
                    ControlSpec(
                        name=f"{'heater_mode' if name == 'mode' else name}{n}",
                        unit=unit,
                        set=partial(setattr, out, name),
                        validate=partial(validate_field, out, group, field, command=name),
                        get=partial(getattr, out, name),
                        allowed=allowed,
                    )
                )
        return specs

    def action_specs(self) -> list[ActionSpec]:
        """What the daemon can call.

        Returns:
            ``start_ramp1/2``, ``stop_ramp1/2``, ``all_heaters_off``.
        """
        specs: list[ActionSpec] = []
        for n in (1, 2):
            out = self.outputs[n]
            specs.append(
                ActionSpec(
                    f"start_ramp{n}",
                    out.start_ramp,
                    f"Ramp output {n}'s setpoint to target (K) at rate (K/min).",
                    ("target", "rate"),
                )
            )
            specs.append(
                ActionSpec(f"stop_ramp{n}", out.stop_ramp, f"Stop output {n}'s setpoint ramp.")
            )
        specs.append(
            ActionSpec("all_heaters_off", self.all_heaters_off, "Switch both heater outputs off.")
        )
        return specs

