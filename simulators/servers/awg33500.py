"""Simulated Keysight 33500-series waveform generator (a 33522B: two channels), SCPI over TCP.

What a real unit accepts, this accepts: short or long header forms in any
case, the optional ``SOURce<n>`` node (channel 1 when it is left out),
``;``-chained commands, numbers with SI-prefixed units (``1KHZ``, ``100 mV``)
or ``MIN`` / ``MAX`` / ``DEF``. Commands and replies end with a line feed.
Set commands never reply; errors go to the queue read by ``SYST:ERR?``
(``+0,"No error"``, ``-113,"Undefined header"``, ``-222,"Data out of
range;value clipped to upper limit"``, ...). Numbers are answered as
``+1.000000000000000E+03``, booleans as ``0`` / ``1``, choices in short form.

Supported: ``*IDN?`` (``Keysight Technologies,33522B,MY52600670,4.03-1.19-2.00-58-00``),
``*RST``, ``*CLS``, ``*OPC`` / ``*OPC?``, ``*WAI``, ``SYSTem:ERRor?``;
per channel ``[SOURce<n>:]FUNCtion``, ``FREQuency`` (also ``? MIN|MAX``),
``VOLTage[:LEVel][:IMMediate][:AMPLitude]``, ``VOLTage...:OFFSet``,
``VOLTage...:HIGH`` / ``:LOW``, (amplitudes in the present unit; a ``V`` or ``VPP``
suffix is taken as that unit), ``VOLTage:UNIT``, ``FUNCtion:SQUare:DCYCle``,
``PHASe``, ``APPLy:<function> [freq[,amplitude[,offset]]]`` (sets 50 % duty and
turns the output on) and ``APPLy?``; ``OUTPut<n>[:STATe]``, ``OUTPut<n>:LOAD``,
``OUTPut<n>:POLarity``. Limits and conflicts: see
:mod:`simulators.servers.awg33500_model`.

The output: whenever what a channel puts out changes, ``on_output(channel,
output)`` is called with a :class:`~simulators.physics.tes_bias_line.GeneratorOutput`
(open-circuit volts) -- the simulated lab passes it to the TES bias line.

Simulator interface: ``AWG33500Server(*, on_output=None, host="127.0.0.1",
port=0, name="")``; ``channels`` (1 and 2: :class:`~simulators.servers.awg33500_model.ChannelModel`),
``output(channel)``.
"""

from __future__ import annotations

from collections.abc import Callable

from simulators.physics.tes_bias_line import GeneratorOutput
from simulators.servers.awg33500_model import (
    FUNCTIONS,
    ChannelModel,
    format_number,
    parse_number,
)
from simulators.servers.base import InstrumentServer
from simulators.servers.scpi import ScpiCommand, ScpiError, ScpiParser, parse_bool, parse_choice

IDN = "Keysight Technologies,33522B,MY52600670,4.03-1.19-2.00-58-00"
SRC = "[:SOURce<n>]"


def _short(long_form: str) -> str:
    return "".join(ch for ch in long_form if ch.isupper() or ch.isdigit())


class AWG33500Server(InstrumentServer):
    """Two-channel 33522B.

    Args:
        on_output: called as ``on_output(channel, output)`` after every change of
            a channel's output.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "Keysight 33522B"

    def __init__(
        self,
        *,
        on_output: Callable[[int, GeneratorOutput], None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\n")
        self.on_output = on_output
        self.parser = ScpiParser(self._commands())
        self.channels = {n: ChannelModel(self.parser.push_error, self._notifier(n))
                         for n in (1, 2)}

    def _notifier(self, channel: int) -> Callable[[], None]:
        def changed() -> None:
            if self.on_output is not None:
                self.on_output(channel, self.channels[channel].output())

        return changed

    def output(self, channel: int) -> GeneratorOutput:
        """What channel ``channel`` puts out now."""
        return self.channels[channel].output()

    def handle(self, command: str) -> str | bytes | None:
        """Execute one program message."""
        return self.parser.execute(command)

    # ---- command table ------------------------------------------------------------------------

    def _ch(self, suffixes: list[int]) -> ChannelModel:
        number = suffixes[0] if suffixes else 1
        if number not in self.channels:
            raise ScpiError(-114, "Header suffix out of range")
        return self.channels[number]

    def _numeric(self, setter: str, unit: str | tuple[str, ...]) -> Callable[[list[int], str],
                                                                              None]:
        def _set(s: list[int], a: str) -> None:
            getattr(self._ch(s), setter)(parse_number(a, unit))

        return _set

    def _reset(self) -> None:
        for channel in self.channels.values():
            channel.reset()
            channel.changed()

    def _high_low(self, high: bool) -> ScpiCommand:
        def _query(s: list[int], _a: str) -> str:
            ch = self._ch(s)
            half = 0.5 * ch.vpp_open * ch.scale
            return format_number(ch.offset_open * ch.scale + (half if high else -half))

        def _set(s: list[int], a: str) -> None:
            ch = self._ch(s)
            value = parse_number(a, "V")
            if not isinstance(value, float):
                raise ScpiError(-224, "Illegal parameter value")
            half = 0.5 * ch.vpp_open * ch.scale
            other = ch.offset_open * ch.scale + (-half if high else half)
            top, bottom = (value, other) if high else (other, value)
            if top <= bottom:
                raise ScpiError(-221, "Settings conflict;high level below low level")
            unit, ch.unit = ch.unit, "VPP"
            ch.set_offset(0.0)
            ch.set_amplitude(top - bottom)
            ch.set_offset(0.5 * (top + bottom))
            ch.unit = unit

        name = "HIGH" if high else "LOW"
        return ScpiCommand(f"{SRC}:VOLTage[:LEVel][:IMMediate]:{name}", set=_set, query=_query)

    def _apply(self, function: str) -> ScpiCommand:
        short = _short(function)

        def _set(s: list[int], a: str) -> None:
            args = [parse_number(x, u) for x, u in zip(a.split(","), ("HZ", "V", "V"),
                                                        strict=False) if x.strip()]
            self._ch(s).apply(short, args)

        return ScpiCommand(f"{SRC}:APPLy:{function}", set=_set)

    def _commands(self) -> list[ScpiCommand]:
        def nothing(_s: list[int], _a: str) -> None:
            return None

        def function(s: list[int], a: str) -> None:
            self._ch(s).set_function(_short(parse_choice(a, FUNCTIONS)))

        def frequency_query(s: list[int], a: str) -> str:
            ch = self._ch(s)
            which = a.strip().upper()[:3]
            return format_number(ch.frequency_limit(which) if which in ("MIN", "MAX")
                                 else ch.frequency)

        def unit(s: list[int], a: str) -> None:
            self._ch(s).set_unit(parse_choice(a, ("VPP", "VRMS", "DBM")))

        def polarity(s: list[int], a: str) -> None:
            self._ch(s).set_polarity(_short(parse_choice(a, ("NORMal", "INVerted"))))

        commands = [
            ScpiCommand("*IDN", query=lambda s, a: IDN),
            ScpiCommand("*RST", set=lambda s, a: self._reset()),
            ScpiCommand("*CLS", set=lambda s, a: self.parser.errors.clear()),
            ScpiCommand("*OPC", set=nothing, query=lambda s, a: "1"),
            ScpiCommand("*WAI", set=nothing),
            ScpiCommand(f"{SRC}:FUNCtion", set=function, query=lambda s, a: self._ch(s).function),
            ScpiCommand(f"{SRC}:FREQuency[:CW]", set=self._numeric("set_frequency", "HZ"),
                        query=frequency_query),
            ScpiCommand(f"{SRC}:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                        set=self._numeric("set_amplitude", ("VPP", "V")),
                        query=lambda s, a: self._ch(s).amplitude_reply()),
            ScpiCommand(f"{SRC}:VOLTage[:LEVel][:IMMediate]:OFFSet",
                        set=self._numeric("set_offset", "V"),
                        query=lambda s, a: self._ch(s).offset_reply()),
            self._high_low(True),
            self._high_low(False),
            ScpiCommand(f"{SRC}:VOLTage:UNIT", set=unit, query=lambda s, a: self._ch(s).unit),
            ScpiCommand(f"{SRC}:FUNCtion:SQUare:DCYCle", set=self._numeric("set_duty", "PCT"),
                        query=lambda s, a: format_number(self._ch(s).duty)),
            ScpiCommand(f"{SRC}:PHASe", set=self._numeric("set_phase", "DEG"),
                        query=lambda s, a: format_number(self._ch(s).phase)),
            ScpiCommand(f"{SRC}:APPLy", query=lambda s, a: self._ch(s).apply_reply()),
            ScpiCommand(":OUTPut<n>[:STATe]", set=lambda s, a: self._ch(s).set_output(
                parse_bool(a)), query=lambda s, a: "1" if self._ch(s).output_on else "0"),
            ScpiCommand(":OUTPut<n>:LOAD", set=self._numeric("set_load", "OHM"),
                        query=lambda s, a: self._ch(s).load_reply()),
            ScpiCommand(":OUTPut<n>:POLarity", set=polarity,
                        query=lambda s, a: self._ch(s).polarity),
        ]
        commands += [self._apply(f) for f in FUNCTIONS if f not in ("PRBS", "ARBitrary")]
        return commands
