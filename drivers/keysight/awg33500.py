"""Keysight 33500-series (33522B and kin) waveform generator: the small modulation on a TES bias.

A complex-impedance measurement adds a small square or sine wave to the TES
bias through a coupling resistor; this driver sets that wave. SCPI over
LAN (socket port 5025) or USB, commands and replies end with a line feed.
Commands are written in the programming reference's short form with the
channel node filled in (``SOUR2:FREQ 1000``, ``OUTP1:LOAD INF``); numeric
queries answer ``+1.000000000000000E+03``, ``OUTP1?`` answers ``0`` / ``1``,
``OUTP1:LOAD?`` answers ``+9.900000000000000E+37`` for high impedance.

Output levels: the unit has a 50 Ohm source. Amplitude (Vpp) and offset
are given as they appear across the load the unit is told about
(:attr:`AWGChannel.load`: 1 Ohm to 10 kOhm, or ``math.inf`` for high
impedance, which is what a 100 kOhm coupling resistor is). The open-circuit
limits are 20 Vpp and +/-10 V peak: across a load R the peak
``|offset| + amplitude / 2`` may not exceed ``10 V * R / (R + 50)``.
:meth:`AWGChannel.configure` checks the combination before anything is
sent; the properties check each value against the widest range.

Interface::

    awg = Keysight33500("TCPIP::192.168.1.30::5025::SOCKET")   # no I/O
    awg.ch_1.configure(function=Function.SQUARE, frequency=100.0, amplitude=0.2,
                       offset=0.0, load=math.inf)              # validated, then written
    awg.ch_1.output_enabled = True                             # OUTP1 ON
    awg.ch_1.frequency                                         # 100.0 (SOUR1:FREQ?)
    awg.next_error()                                           # ErrorEntry(code=0, ...)
    awg.poll_specs()      # ch<n>.output_enabled, frequency (Hz), amplitude (V), offset (V)
    awg.control_specs()   # ch<n>.<property> for every setting
    awg.action_specs()    # ch<n>.output_off, ch<n>.configure, reset, errors
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import partial
from typing import Any

from pymeasure.instruments import Channel, Instrument, SCPIMixin

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentError, InstrumentReplyError
from drivers.readings import Reading

__all__ = [
    "HIGH_Z_REPLY",
    "AWGChannel",
    "ErrorCode",
    "ErrorEntry",
    "Function",
    "Keysight33500",
    "OutputPolarity",
    "VoltageUnit",
    "max_peak_volts",
]

#: What ``OUTP<n>:LOAD?`` answers for a high-impedance (infinite) load setting.
HIGH_Z_REPLY = 9.9e37
#: The source impedance, Ohm.
SOURCE_OHM = 50.0
#: Open-circuit output limits: peak volts and the smallest peak-to-peak amplitude.
OPEN_PEAK_V = 10.0
OPEN_MIN_VPP = 2e-3
#: Highest frequency per function on a 30 MHz model (33521B / 33522B), Hz.
MAX_FREQUENCY_HZ = {"SIN": 30e6, "SQU": 30e6, "PULS": 30e6, "TRI": 200e3, "RAMP": 200e3,
                    "ARB": 30e6, "PRBS": 30e6, "NOIS": 30e6, "DC": 30e6}
#: Shortest high or low time of a square wave, s (limits the duty cycle at high frequency).
MIN_SQUARE_WIDTH_S = 16e-9


class Function(StrEnum):
    """``[SOURce<n>:]FUNCtion``: the waveform, as the unit answers it."""

    SINE = "SIN"
    SQUARE = "SQU"
    TRIANGLE = "TRI"
    RAMP = "RAMP"
    PULSE = "PULS"
    PRBS = "PRBS"
    NOISE = "NOIS"
    ARBITRARY = "ARB"
    DC = "DC"


class VoltageUnit(StrEnum):
    """``[SOURce<n>:]VOLTage:UNIT``: the unit of the amplitude."""

    VPP = "VPP"
    VRMS = "VRMS"
    DBM = "DBM"


class OutputPolarity(StrEnum):
    """``OUTPut<n>:POLarity``: the waveform inverted about its offset, or not."""

    NORMAL = "NORM"
    INVERTED = "INV"


class ErrorCode(IntEnum):
    """SCPI error numbers the generator reports on ``SYSTem:ERRor?``."""

    NO_ERROR = 0
    UNDEFINED_HEADER = -113
    DATA_TYPE_ERROR = -104
    SETTINGS_CONFLICT = -221
    DATA_OUT_OF_RANGE = -222
    ILLEGAL_PARAMETER = -224


@dataclass(frozen=True)
class ErrorEntry:
    """One entry of the error queue.

    Attributes:
        code: the error number (0: the queue is empty).
        message: the unit's text, e.g. ``"Data out of range;value clipped to upper limit"``.
    """

    code: int
    message: str

    @property
    def known(self) -> ErrorCode | None:
        """The code as an :class:`ErrorCode`, when it is one of those."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None

    @classmethod
    def parse(cls, reply: str) -> ErrorEntry:
        """Parse ``+0,"No error"`` / ``-222,"Data out of range;..."``.

        Raises:
            InstrumentReplyError: not ``<integer>,"<text>"``.
        """
        code, sep, text = reply.strip().partition(",")
        try:
            number = int(code)
        except ValueError:
            number = None
        if number is None or not sep:
            raise InstrumentReplyError(instrument="33500", command="SYST:ERR?", reply=reply,
                                       why='expected <code>,"<message>"')
        return cls(number, text.strip().strip('"'))


def max_peak_volts(load_ohm: float) -> float:
    """Largest |offset| + amplitude/2 the unit can put across ``load_ohm``, V."""
    if math.isinf(load_ohm):
        return OPEN_PEAK_V
    return OPEN_PEAK_V * load_ohm / (load_ohm + SOURCE_OHM)


def _load_ohms(value: Any, values: Any) -> float:
    """Validator: a load of ``min(values)`` to ``max(values)`` Ohm, or infinite ("INF")."""
    if isinstance(value, str) and value.strip().upper() in ("INF", "INFINITY"):
        return math.inf
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isinf(value) and value > 0:
            return math.inf
        if min(values) <= value <= max(values):
            return float(value)
    raise v.refuse(value, f"{v.format_number(min(values))} to {v.format_number(max(values))}, "
                          "or inf (high impedance)")


def _on_off(reply: Any) -> str:
    text = str(reply).strip().upper()
    if text in ("1", "1.0", "ON"):
        return "ON"
    if text in ("0", "0.0", "OFF"):
        return "OFF"
    raise v.bad_reply(reply, "expected 0 or 1")


def _enum_reply(kind: type[StrEnum]) -> Any:
    def parse(reply: Any) -> StrEnum:
        try:
            return kind(str(reply).strip().upper())
        except ValueError:
            raise v.bad_reply(reply, f"expected one of {', '.join(kind)}") from None

    return parse


def _read(channel: Channel, name: str) -> Reading:
    return Reading.of(getattr(channel, name))


def _number() -> Any:
    return lambda value: f"{value:.15g}"


class AWGChannel(Channel):
    """One output channel: ``[SOURce<n>:]`` waveform settings and ``OUTPut<n>``."""

    channel_label = "channel"

    output_enabled = v.control(
        "OUTP{ch}?", "OUTP{ch} %s",
        """Control whether the output relay is closed (bool): ``OUTP<n> ON|OFF``.""",
        validator=v.in_set, values={True: "ON", False: "OFF"}, map_values=True, cast=str,
        get_process=_on_off,
    )
    function = v.control(
        "SOUR{ch}:FUNC?", "SOUR{ch}:FUNC %s",
        """Control the waveform (:class:`Function`: SIN, SQU, TRI, RAMP, PULS, PRBS, NOIS, ARB,
        DC).""",
        validator=v.in_set, values=tuple(Function), cast=str, get_process=_enum_reply(Function),
    )
    frequency = v.control(
        "SOUR{ch}:FREQ?", "SOUR{ch}:FREQ %s",
        """Control the frequency in Hz (1 uHz to 30 MHz; triangle and ramp to 200 kHz).""",
        validator=v.in_range, values=(1e-6, 30e6), unit="Hz", set_process=_number(),
    )
    amplitude = v.control(
        "SOUR{ch}:VOLT?", "SOUR{ch}:VOLT %s",
        """Control the amplitude across the set load, in :attr:`voltage_unit` (Vpp by default;
        1 mVpp to 20 Vpp, the load limits it further: see :meth:`configure`).""",
        validator=v.in_range, values=(1e-3, 20.0), unit="V", set_process=_number(),
    )
    offset = v.control(
        "SOUR{ch}:VOLT:OFFS?", "SOUR{ch}:VOLT:OFFS %s",
        """Control the DC offset across the set load in V (-10 to 10 V; with the amplitude
        limited to a peak of 10 V * R / (R + 50 Ohm)).""",
        validator=v.in_range, values=(-10.0, 10.0), unit="V", set_process=_number(),
    )
    voltage_unit = v.control(
        "SOUR{ch}:VOLT:UNIT?", "SOUR{ch}:VOLT:UNIT %s",
        """Control the amplitude unit (:class:`VoltageUnit`: VPP, VRMS, DBM; high-impedance
        loads use VPP).""",
        validator=v.in_set, values=tuple(VoltageUnit), cast=str,
        get_process=_enum_reply(VoltageUnit),
    )
    duty_cycle = v.control(
        "SOUR{ch}:FUNC:SQU:DCYC?", "SOUR{ch}:FUNC:SQU:DCYC %s",
        """Control the square wave's duty cycle in percent (0.01 to 99.99; at high frequency
        each level lasts at least 16 ns).""",
        validator=v.in_range, values=(0.01, 99.99), unit="%", set_process=_number(),
    )
    phase = v.control(
        "SOUR{ch}:PHAS?", "SOUR{ch}:PHAS %s",
        """Control the waveform's phase in degrees (-360 to 360).""",
        validator=v.in_range, values=(-360.0, 360.0), unit="deg", set_process=_number(),
    )
    load = v.control(
        "OUTP{ch}:LOAD?", "OUTP{ch}:LOAD %s",
        """Control the load the levels refer to, in Ohm (1 to 10 000, or ``math.inf`` /
        ``"INF"`` for high impedance, read back as inf).""",
        validator=_load_ohms, values=(1.0, 10e3), unit="Ohm",
        set_process=lambda value: "INF" if math.isinf(value) else f"{value:.15g}",
        get_process=lambda reply: math.inf if float(reply) >= HIGH_Z_REPLY else float(reply),
    )
    polarity = v.control(
        "OUTP{ch}:POL?", "OUTP{ch}:POL %s",
        """Control the output polarity (:class:`OutputPolarity`: NORM or INV about the
        offset).""",
        validator=v.in_set, values=tuple(OutputPolarity), cast=str,
        get_process=_enum_reply(OutputPolarity),
    )

    def check_levels(self, amplitude: float, offset: float, load: float,
                     function: Function | str = Function.SINE) -> None:
        """Refuse an amplitude / offset pair the unit cannot put across ``load``.

        Args:
            amplitude: peak-to-peak volts across the load.
            offset: DC volts across the load.
            load: the load setting, Ohm (inf: high impedance).
            function: the waveform (DC has no amplitude).

        Raises:
            SettingOutOfRange: the peak or the amplitude exceeds what the load allows.
        """
        peak = max_peak_volts(load)
        name = v.instrument_name(self)
        v.require_in_range(offset, -peak, peak, instrument=name, command="offset", unit="V")
        if Function(function) is Function.DC:
            return
        low = OPEN_MIN_VPP * peak / OPEN_PEAK_V
        v.require_in_range(amplitude, low, 2 * (peak - abs(offset)), instrument=name,
                           command="amplitude (with the offset)", unit="Vpp")

    def configure(self, *, function: Function | str | None = None,
                  frequency: float | None = None, amplitude: float | None = None,
                  offset: float | None = None, duty_cycle: float | None = None,
                  phase: float | None = None, load: float | str | None = None,
                  check_errors: bool = True) -> None:
        """Validate a whole waveform first, then write it so that no step is refused.

        Every given value is checked by its property's validator, the
        frequency against the function's limit, the duty cycle against the
        frequency, and amplitude with offset against the load (the load and
        function not given are read from the unit). Then the amplitude unit
        is set to Vpp, and amplitude and offset are written in the order that
        keeps every intermediate state within the limits (the present
        amplitude is read for that); likewise duty cycle and frequency. The
        output relay is not touched.

        Args:
            function: waveform.
            frequency: Hz.
            amplitude: Vpp across the load.
            offset: V across the load.
            duty_cycle: percent (square wave).
            phase: degrees.
            load: Ohm, or inf / "INF".
            check_errors: read the error queue afterwards and raise if the unit
                refused or adjusted anything.

        Raises:
            SettingOutOfRange: a value or combination is refused (nothing sent).
            InstrumentError: the unit reported errors after the writes.
        """
        given = {"load": load, "function": function, "frequency": frequency,
                 "duty_cycle": duty_cycle, "phase": phase, "amplitude": amplitude,
                 "offset": offset}
        values = {k: v.validate_setting(self, k, x) for k, x in given.items() if x is not None}
        name = v.instrument_name(self)
        if "function" in values and "frequency" in values:
            limit = MAX_FREQUENCY_HZ[str(values["function"])]
            v.require_in_range(values["frequency"], 1e-6, limit, instrument=name,
                               command=f"frequency ({values['function']})", unit="Hz")
        if "duty_cycle" in values and "frequency" in values:
            edge = 100.0 * MIN_SQUARE_WIDTH_S * values["frequency"]
            v.require_in_range(values["duty_cycle"], max(0.01, edge), min(99.99, 100.0 - edge),
                               instrument=name, command="duty_cycle", unit="%")
        if "amplitude" in values and "offset" in values:
            load_now = values.get("load")  # read from the unit only when not given
            function_now = values.get("function")
            self.check_levels(values["amplitude"], values["offset"],
                              self.load if load_now is None else load_now,
                              self.function if function_now is None else function_now)

        def put(*names: str) -> None:
            for key in names:
                if key in values:
                    setattr(self, key, values[key])

        put("load", "function")
        if "duty_cycle" in values and "frequency" in values and values["frequency"] > self.frequency:
            put("duty_cycle", "frequency")  # the new duty cycle fits the old, lower frequency
        else:
            put("frequency", "duty_cycle")
        put("phase")
        if "amplitude" in values:
            self.voltage_unit = VoltageUnit.VPP
        if "amplitude" in values and "offset" in values and values["amplitude"] > self.amplitude:
            put("offset", "amplitude")  # growing: the new offset fits the old, smaller swing
        else:
            put("amplitude", "offset")
        if check_errors:
            self.parent.raise_errors(f"configure channel {self.id}")

    def output_off(self) -> None:
        """Open the output relay (``OUTP<n> OFF``): the safe state for a bias line."""
        self.output_enabled = False


class Keysight33500(SCPIMixin, Instrument):
    """Keysight 33500-series two-channel waveform generator (33522B and kin).

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: passed to the VISA adapter.
    """

    ch_1 = Instrument.ChannelCreator(AWGChannel, 1)
    ch_2 = Instrument.ChannelCreator(AWGChannel, 2)

    def __init__(self, adapter: Any, name: str = "Keysight 33500", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 5000)
        super().__init__(adapter, name, **kwargs)

    def identify(self) -> str:
        """The unit's identity, ``*IDN?`` (maker, model, serial, firmware)."""
        return str(self.ask("*IDN?")).strip()

    def next_error(self) -> ErrorEntry:
        """Pop one entry of the error queue (``SYST:ERR?``); code 0 when it is empty."""
        return ErrorEntry.parse(str(self.ask("SYST:ERR?")))

    def errors(self) -> list[ErrorEntry]:
        """Drain the error queue (at most 32 entries, its depth).

        Returns:
            The entries, oldest first (empty when there were none).
        """
        found = []
        for _ in range(32):
            entry = self.next_error()
            if entry.code == 0:
                break
            found.append(entry)
        return found

    def raise_errors(self, doing: str) -> None:
        """Raise :class:`~drivers.errors.InstrumentError` if the error queue holds anything.

        Args:
            doing: what was being done, for the message.
        """
        found = self.errors()
        if found:
            text = "; ".join(f"{e.code},{e.message}" for e in found)
            raise InstrumentError(f"the unit reported: {text}", instrument=self.name,
                                  command=doing)

    def reset(self) -> None:
        """Factory defaults (``*RST``): both outputs off, 1 kHz sine, 100 mVpp, 50 Ohm load."""
        self.write("*RST")

    # ---- daemon description -------------------------------------------------------------------

    def _channels(self) -> list[AWGChannel]:
        return [self.ch_1, self.ch_2]

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities, per channel ``ch<n>.<name>``.

        Returns:
            ``output_enabled`` (1/0), ``frequency`` (Hz), ``amplitude`` (V) and
            ``offset`` (V) of each channel.
        """
        return [
            PollSpec(f"ch{ch.id}.{name}", unit, partial(_read, ch, name), 5.0, quantity)
            for ch in self._channels()
            for name, unit, quantity in (("output_enabled", "", "state"),
                                         ("frequency", "Hz", "frequency"),
                                         ("amplitude", "V", "voltage"),
                                         ("offset", "V", "voltage"))
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings, per channel ``ch<n>.<property>``.

        Returns:
            One spec per validated property of each channel.
        """
        units = {"output_enabled": "", "function": "", "frequency": "Hz", "amplitude": "V",
                 "offset": "V", "voltage_unit": "", "duty_cycle": "%", "phase": "deg",
                 "load": "Ohm", "polarity": ""}
        specs = []
        for ch in self._channels():
            for name, unit in units.items():
                def set_value(value: Any, ch: AWGChannel = ch, name: str = name) -> None:
                    setattr(ch, name, v.validate_setting(ch, name, value))

                def check(value: Any, ch: AWGChannel = ch, name: str = name) -> Any:
                    return v.validate_setting(ch, name, value)

                def get(ch: AWGChannel = ch, name: str = name) -> Any:
                    return getattr(ch, name)

                allowed = ("1 to 10000 Ohm, or inf (high impedance)" if name == "load"
                           else v.allowed_text(ch, name))
                specs.append(ControlSpec(f"ch{ch.id}.{name}", unit, set_value, check, get,
                                         allowed))
        return specs

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``ch<n>.output_off``, ``ch<n>.configure`` (function, frequency,
            amplitude, offset, duty_cycle, phase, load), ``reset`` and
            ``errors`` (drain the error queue, as ``[code, message]`` pairs).
        """
        specs = []
        for ch in self._channels():
            specs.append(ActionSpec(f"ch{ch.id}.output_off", ch.output_off, "output relay open"))
            specs.append(ActionSpec(
                f"ch{ch.id}.configure", ch.configure,
                "set a waveform, validated as a whole; the output is not switched",
                ("function", "frequency", "amplitude", "offset", "duty_cycle", "phase", "load")))
        specs.append(ActionSpec("reset", self.reset, "factory defaults, outputs off"))
        specs.append(ActionSpec("errors", lambda: [[e.code, e.message] for e in self.errors()],
                                "drain the error queue"))
        return specs
