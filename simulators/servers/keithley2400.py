"""Simulated Keithley 2400 SourceMeter sourcing V or I into a resistive load (SCPI).

Made for PyMeasure's own ``pymeasure.instruments.keithley.Keithley2400``
driver, unmodified, over PyVISA: ``Keithley2400(server.resource,
read_termination="\\n", write_termination="\\n")``. Commands end with
``\\n`` (a trailing ``\\r`` is ignored); replies end with ``\\n``.

Supported (short or long form, any case, ``;``-chained, ``?`` forms of the
settable ones): ``*IDN?`` (``KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30``),
``*RST``, ``*CLS``, ``*OPC?``, ``*STB?``, ``*SRE``, ``*TRG``,
``:SYSTem:ERRor?`` (``0,"No error"``), ``:FORMat:ELEMents`` (any of
VOLTage, CURRent, RESistance, TIME, STATus, in that order in replies),
``:OUTPut[:STATe]``, ``:OUTPut:SMODe``, ``:SOURce:FUNCtion VOLTage|CURRent``,
``:SOURce:VOLTage|CURRent[:LEVel]`` (+/-210 V, +/-1.05 A), their ``:RANGe`` and
``:RANGe:AUTO``, ``:SOURce:DELay[:AUTO]``, ``:SOURce:CLEar:AUTO``,
``:SENSe:FUNCtion``, ``:SENSe:VOLTage|CURRent|RESistance:RANGe[:AUTO]``,
``...:NPLCycles``, ``:SENSe:CURRent|VOLTage:PROTection`` (compliance),
``:SENSe:RESistance:MODE``, ``:SENSe:AVERage[:STATe]``, ``:TCONtrol``,
``:COUNt``, ``:SYSTem:AZERo[:STATe]``, ``:SYSTem:LFRequency[:AUTO]``,
``:SYSTem:RSENse``, ``:ROUTe:TERMinals``, ``:DISPlay:ENABle``,
``:TRIGger|:ARM`` counts, sources, delays, lines; ``:INITiate``, ``:ABORt``,
``:TRACe`` and ``:STATus`` housekeeping (accepted, stored).

Measurements: ``:READ?``, ``:MEASure[:VOLTage|:CURRent|:RESistance]?`` and
``:FETCh?`` answer the format elements, e.g.
``+1.000000E+00,+1.000000E-03,+9.910000E+37,+1.234000E+01,+2.150800E+04``.
The source drives the load: sourcing V, ``I = V / R``; sourcing I,
``V = I R``; the measured quantity is clipped at its compliance (status bit 3
set). Resistance is ``V / I`` when the resistance function is on
(``:MEAS:RES?`` switches it on), else ``9.91E+37``. ``:MEASure`` turns the
output on; ``:READ?`` with the output off queues ``+803,"Output disabled"``
and gives no reply. Errors (``-113,"Undefined header"``,
``-222,"Data out of range"``, ``-224,"Illegal parameter value"``) never
produce a reply.

Simulator interface: ``Keithley2400Server(load=1e3, *, host="127.0.0.1",
port=0)``; ``load`` is a resistance in Ohm or a callable giving it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from simulators.servers.base import InstrumentServer
from simulators.servers.scpi import ScpiCommand, ScpiError, ScpiParser, parse_bool, parse_choice

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30   Mar 17 2006 09:29:29/A02  /K/J"
OVERFLOW = 9.91e37
ELEMENTS = ("VOLTage", "CURRent", "RESistance", "TIME", "STATus")
STATUS_COMPLIANCE = 1 << 3

# pattern, key, kind, default; kind: "f" float, "i" integer, "b" bool, or a tuple of choices
_SETTINGS: list[tuple[str, str, object, object]] = [
    (":OUTPut:SMODe", "smode", ("HIMPedance", "NORMal", "ZERO", "GUARd"), "NORMal"),
    (":SOURce:VOLTage:RANGe", "src_v_range", "f", 21.0),
    (":SOURce:VOLTage:RANGe:AUTO", "src_v_auto", "b", True),
    (":SOURce:CURRent:RANGe", "src_i_range", "f", 1.05e-4),
    (":SOURce:CURRent:RANGe:AUTO", "src_i_auto", "b", True),
    (":SOURce:DELay", "src_delay", "f", 0.0),
    (":SOURce:DELay:AUTO", "src_delay_auto", "b", True),
    (":SOURce:CLEar:AUTO", "src_clear_auto", "b", False),
    (":SENSe:VOLTage[:DC]:RANGe[:UPPer]", "sens_v_range", "f", 21.0),
    (":SENSe:VOLTage[:DC]:RANGe:AUTO", "sens_v_auto", "b", True),
    (":SENSe:VOLTage[:DC]:NPLCycles", "sens_v_nplc", "f", 1.0),
    (":SENSe:CURRent[:DC]:RANGe[:UPPer]", "sens_i_range", "f", 1.05e-4),
    (":SENSe:CURRent[:DC]:RANGe:AUTO", "sens_i_auto", "b", True),
    (":SENSe:CURRent[:DC]:NPLCycles", "sens_i_nplc", "f", 1.0),
    (":SENSe:RESistance:RANGe[:UPPer]", "sens_r_range", "f", 2.1e5),
    (":SENSe:RESistance:RANGe:AUTO", "sens_r_auto", "b", True),
    (":SENSe:RESistance:NPLCycles", "sens_r_nplc", "f", 1.0),
    (":SENSe:RESistance:MODE", "res_mode", ("MANual", "AUTO"), "MANual"),
    (":SENSe:AVERage[:STATe]", "avg", "b", False),
    (":SENSe:AVERage:TCONtrol", "avg_tcontrol", ("REPeat", "MOVing"), "REPeat"),
    (":SENSe:AVERage:COUNt", "avg_count", "i", 10),
    (":SYSTem:AZERo[:STATe]", "azero", ("1", "0", "ON", "OFF", "ONCE"), "1"),
    (":SYSTem:LFRequency", "lfreq", "i", 60),
    (":SYSTem:LFRequency:AUTO", "lfreq_auto", "b", True),
    (":SYSTem:RSENse", "rsense", "b", False),
    (":ROUTe:TERMinals", "terminals", ("FRONt", "REAR"), "FRONt"),
    (":DISPlay:ENABle", "display", "b", True),
    (":TRIGger:COUNt", "trig_count", "i", 1),
    (":ARM:COUNt", "arm_count", "i", 1),
    (":TRIGger:DELay", "trig_delay", "f", 0.0),
    (":ARM:TIMer", "arm_timer", "f", 0.1),
    (":TRIGger:SOURce", "trig_source", ("IMMediate", "TLINk"), "IMMediate"),
    (":ARM:SOURce", "arm_source", ("IMMediate", "TLINk", "TIMer", "MANual", "BUS"), "IMMediate"),
    (":TRIGger:OUTPut", "trig_output", ("SOURce", "DELay", "SENSe", "NONE"), "NONE"),
    (":ARM:OUTPut", "arm_output", ("TENTer", "TEXit", "NONE"), "NONE"),
    (":TRIGger:ILINe", "trig_iline", "i", 1),
    (":ARM:ILINe", "arm_iline", "i", 1),
    (":TRIGger:OLINe", "trig_oline", "i", 2),
    (":ARM:OLINe", "arm_oline", "i", 2),
    (":TRACe:POINts", "trace_points", "i", 100),
    (":TRACe:FEED", "trace_feed", ("SENSe", "CALCulate1", "CALCulate2", "NONE"), "SENSe"),
    (":TRACe:FEED:CONTrol", "trace_control", ("NEXT", "NEVer"), "NEVer"),
    (":FORMat[:DATA]", "format", ("ASCii", "REAL", "SREal"), "ASCii"),
    (":STATus:MEASurement:ENABle", "stat_meas_enable", "i", 0),
    ("*SRE", "sre", "i", 0),
]


def _nr3(value: float) -> str:
    return f"{value:+.6E}"


class Keithley2400Server(InstrumentServer):
    """Keithley 2400 into a resistive load.

    Args:
        load: load resistance, Ohm, or a callable returning it.
        seed: random seed for the (small) measurement noise.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "Keithley 2400"

    def __init__(
        self,
        load: float | Callable[[], float] = 1e3,
        *,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\n")
        self.load = load
        self._rng = np.random.default_rng(seed)
        self._t0 = time.monotonic()
        self._reset()
        self.parser = ScpiParser(self._commands(), error_format='{code:d},"{message}"')

    def _reset(self) -> None:
        self.output_on = False
        self.source = "VOLTage"
        self.levels = {"VOLTage": 0.0, "CURRent": 0.0}
        self.compliance = {"VOLTage": 21.0, "CURRent": 1.05e-4}
        self.elements: tuple[str, ...] = ELEMENTS
        self.resistance_on = False
        self.sense_functions = '"VOLT:DC","CURR:DC"'
        self.settings: dict[str, object] = {key: default for _p, key, _k, default in _SETTINGS}

    def load_resistance(self) -> float:
        """Present load, Ohm."""
        return float(self.load()) if callable(self.load) else float(self.load)

    # ---- physics ---------------------------------------------------------------------------

    def reading(self) -> list[float]:
        """One measurement in the order of the format elements."""
        r_load = self.load_resistance()
        status = 0
        if not self.output_on:
            v = i = 0.0
        elif self.source == "VOLTage":
            v = self.levels["VOLTage"]
            i = v / r_load
            limit = self.compliance["CURRent"]
            if abs(i) > limit:  # current compliance: the source backs off
                i = limit if i > 0 else -limit
                v = i * r_load
                status |= STATUS_COMPLIANCE
        else:
            i = self.levels["CURRent"]
            v = i * r_load
            limit = self.compliance["VOLTage"]
            if abs(v) > limit:
                v = limit if v > 0 else -limit
                status |= STATUS_COMPLIANCE
        v += 1e-6 * self._rng.standard_normal()
        i += 1e-12 * self._rng.standard_normal()
        r = v / i if self.resistance_on and i != 0.0 else OVERFLOW
        values = {
            "VOLTage": v,
            "CURRent": i,
            "RESistance": r,
            "TIME": time.monotonic() - self._t0,
            "STATus": float(status),
        }
        return [values[e] for e in self.elements]

    # ---- SCPI ------------------------------------------------------------------------------

    def handle(self, command: str) -> str | bytes | None:
        """Execute one program message."""
        return self.parser.execute(command)

    def _read(self, _s: list[int], _a: str) -> str:
        if not self.output_on:
            raise ScpiError(803, "Output disabled")
        return ",".join(_nr3(x) for x in self.reading())

    def _measure(self, function: str | None) -> Callable[[list[int], str], str]:
        def _q(_s: list[int], _a: str) -> str:
            if function == "RESistance":
                self.resistance_on = True
            elif function is not None:
                self.resistance_on = False
            self.output_on = True
            return ",".join(_nr3(x) for x in self.reading())

        return _q

    def _set_level(self, quantity: str) -> Callable[[list[int], str], None]:
        limit = 210.0 if quantity == "VOLTage" else 1.05

        def _set(_s: list[int], a: str) -> None:
            value = float(a)
            if abs(value) > limit:
                raise ScpiError(-222, "Data out of range")
            self.levels[quantity] = value

        return _set

    def _set_compliance(self, quantity: str) -> Callable[[list[int], str], None]:
        limit = 210.0 if quantity == "VOLTage" else 1.05

        def _set(_s: list[int], a: str) -> None:
            value = abs(float(a))
            if value > limit:
                raise ScpiError(-222, "Data out of range")
            self.compliance[quantity] = value

        return _set

    def _set_elements(self, _s: list[int], a: str) -> None:
        chosen = {parse_choice(part, ELEMENTS) for part in a.split(",") if part.strip()}
        if not chosen:
            raise ScpiError()
        self.elements = tuple(e for e in ELEMENTS if e in chosen)

    def _set_sense(self, _s: list[int], a: str) -> None:
        text = a.strip().strip("'\"").upper()
        if text.startswith("RES"):
            self.resistance_on = True
        elif not text.startswith(("VOLT", "CURR")):
            raise ScpiError()
        self.sense_functions = a.strip()

    def _setting(self, key: str, kind: object) -> ScpiCommand:
        pattern = next(p for p, k, _kind, _d in _SETTINGS if k == key)

        def _set(_s: list[int], a: str) -> None:
            if kind == "f":
                self.settings[key] = float(a)
            elif kind == "i":
                self.settings[key] = int(float(a))
            elif kind == "b":
                self.settings[key] = parse_bool(a)
            else:
                assert isinstance(kind, tuple)
                self.settings[key] = parse_choice(a, kind)

        def _query(_s: list[int], _a: str) -> str:
            value = self.settings[key]
            if kind == "f":
                return _nr3(float(value))  # type: ignore[arg-type]
            if kind == "i":
                return str(value)
            if kind == "b":
                return "1" if value else "0"
            return "".join(c for c in str(value) if c.isupper() or c.isdigit())

        return ScpiCommand(pattern, set=_set, query=_query)

    def _commands(self) -> list[ScpiCommand]:
        def nothing(_s: list[int], _a: str) -> None:
            return None

        def quantity(a: str) -> str:
            return parse_choice(a, ("VOLTage", "CURRent"))

        def short(text: str) -> str:
            return "".join(c for c in text if c.isupper())

        commands = [
            ScpiCommand("*IDN", query=lambda s, a: IDN),
            ScpiCommand("*RST", set=lambda s, a: self._reset()),
            ScpiCommand("*CLS", set=lambda s, a: self.parser.errors.clear()),
            ScpiCommand("*OPC", set=nothing, query=lambda s, a: "1"),
            ScpiCommand("*STB", query=lambda s, a: "0"),
            ScpiCommand("*TRG", set=nothing),
            ScpiCommand(
                ":FORMat:ELEMents[:SENSe]",
                set=self._set_elements,
                query=lambda s, a: ",".join(short(e) for e in self.elements),
            ),
            ScpiCommand(
                ":OUTPut[:STATe]",
                set=lambda s, a: setattr(self, "output_on", parse_bool(a)),
                query=lambda s, a: "1" if self.output_on else "0",
            ),
            ScpiCommand(
                ":SOURce:FUNCtion[:MODE]",
                set=lambda s, a: setattr(self, "source", quantity(a)),
                query=lambda s, a: short(self.source),
            ),
            ScpiCommand(
                ":SENSe:FUNCtion[:ON]", set=self._set_sense, query=lambda s, a: self.sense_functions
            ),
            ScpiCommand(":SENSe:FUNCtion[:ON]:ALL", set=lambda s, a: self._set_sense([], "'RES'")),
            ScpiCommand(":READ", query=self._read),
            ScpiCommand(":FETCh", query=self._read),
            ScpiCommand(":MEASure", query=self._measure(None)),
            ScpiCommand(":INITiate[:IMMediate]", set=nothing),
            ScpiCommand(":ABORt", set=nothing),
            ScpiCommand(":TRIGger:CLEar", set=nothing),
            ScpiCommand(":TRACe:CLEar", set=nothing),
            ScpiCommand(":TRACe:POINts:ACTual", query=lambda s, a: "0"),
            ScpiCommand(":STATus:PRESet", set=nothing),
            ScpiCommand(":SYSTem:BEEPer[:IMMediate]", set=nothing),
        ]

        def reader(attr: str, q: str) -> Callable[[list[int], str], str]:
            return lambda s, a: _nr3(getattr(self, attr)[q])  # *RST replaces the tables

        for q in ("VOLTage", "CURRent"):
            commands += [
                ScpiCommand(
                    f":SOURce:{q}[:LEVel][:IMMediate][:AMPLitude]",
                    set=self._set_level(q),
                    query=reader("levels", q),
                ),
                ScpiCommand(
                    f":SENSe:{q}[:DC]:PROTection[:LEVel]",
                    set=self._set_compliance(q),
                    query=reader("compliance", q),
                ),
            ]
        for q in ("VOLTage", "CURRent", "RESistance"):
            commands.append(ScpiCommand(f":MEASure:{q}[:DC]", query=self._measure(q)))
        commands += [self._setting(key, kind) for _p, key, kind, _d in _SETTINGS]
        return commands
