"""Simulated oscilloscope / digitizer speaking SCPI like a Keysight InfiniiVision.

Transport: TCP; commands end with ``\\n`` (a trailing ``\\r`` is ignored),
replies end with ``\\n``. Clients (PyVISA) use ``read_termination="\\n"``,
``write_termination="\\n"``; ``query_binary_values`` reads the waveform block
and its trailing newline.

Commands (short or long form, any case, ``;``-chained; ``?`` forms of the
settable ones). Defaults after power-on / ``*RST`` in brackets.

* ``*IDN?`` -> ``KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830``;
  ``*RST``; ``*CLS``; ``*OPC?`` -> ``1``.
* ``:WAVeform:SOURce CHAN<n>`` -- channel 1-4 to transfer [CHAN1];
  ``?`` -> ``CHAN1``.
* ``:WAVeform:FORMat WORD|BYTE|ASCii`` [BYTE] -- 16-bit or 8-bit samples, or
  comma-separated NR3 volts; ``?`` -> ``WORD``/``BYTE``/``ASC``.
* ``:WAVeform:UNSigned 0|1`` [0] -- 0: signed (int16 / int8, as the protocol
  notes say; yreference 0); 1: offset binary (yreference 32768 / 128), like
  a factory-default InfiniiVision.
* ``:WAVeform:BYTeorder LSBFirst|MSBFirst`` [MSBF]; ``?`` -> ``LSBF``/``MSBF``.
* ``:WAVeform:POINts n`` [1000] -- record length, clipped to 100..62500;
  ``?`` -> ``1000``. ``:WAVeform:POINts:MODE NORMal|MAXimum|RAW`` (stored).
* ``:WAVeform:PREamble?`` -> ``format,type,points,count,xincrement,xorigin,
  xreference,yincrement,yorigin,yreference``, e.g.
  ``+1,+0,+1000,+1,+5.0000000000E-07,-2.5000000000E-04,+0,+6.1035156250E-05,
  +0.0000000000E+00,+0`` (format codes: 0 BYTE, 1 WORD, 4 ASCii);
  ``:WAVeform:XINCrement?``, ``XORigin?``, ``XREFerence?``, ``YINCrement?``,
  ``YORigin?``, ``YREFerence?`` give single fields.
* ``:WAVeform:DATA?`` -> ``#8nnnnnnnn<bytes>`` followed by ``\n``.
* ``:TRIGger:EDGE:SOURce CHAN<n>`` [CHAN1], ``:TRIGger:EDGE:LEVel v``
  [0.25 V, ``?`` -> ``+2.5000000000E-01``], ``:TRIGger:EDGE:SLOPe
  POSitive|NEGative`` [POS; ``?`` -> ``POS``/``NEG``], ``:TRIGger:SWEep
  AUTO|NORMal`` [AUTO: without an edge, an untriggered record].
* ``:SINGle`` / ``:DIGitize`` -- acquire one record now, then stop;
  ``:RUN`` [running: every ``:WAV:DATA?`` is a fresh record], ``:STOP``.
* ``:TER?`` -> ``+1`` once after a real edge trigger, else ``+0``.
* ``:TIMebase:SCALe s`` [50 us/div, 10 divisions], ``:TIMebase:REFerence
  LEFT|CENTer|RIGHt`` [CENT: trigger point at 1, 5 or 9 divisions].
* ``:CHANnel<n>:SCALe v`` [0.5 V/div, 8 divisions], ``:CHANnel<n>:OFFSet v``
  [0 V, the screen centre]; queries in NR3.
* ``:SYSTem:ERRor?`` -> ``+0,"No error"`` or e.g. ``-113,"Undefined header"``.

Samples convert as ``V = (code - yreference) * yincrement + yorigin``;
``x = (i - xreference) * xincrement + xorigin`` (s from the trigger).
Signals beyond the screen (over-range) clip at the extreme codes, as on the
real scope. Unknown headers and bad parameters queue an SCPI error and get no
reply; the server keeps answering.

Simulator interface: ``ScopeServer(channels=None, *, seed=None, host="127.0.0.1",
port=0)``; ``channels`` maps 1..4 to a
:class:`~simulators.physics.readout.TraceSource` (default: channel 1 a
:class:`~simulators.physics.readout.TESReadout` on design A, the others
1 mV rms noise). Edge triggering searches the recorded signal for the
crossing and places it at the reference position; while waiting for a
trigger, the next photon is brought forward (``event_at``), so records come
back at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from simulators.physics.readout import NoiseSource, TESReadout, TraceSource
from simulators.servers.base import InstrumentServer
from simulators.servers.scpi import ScpiCommand, ScpiError, ScpiParser, parse_bool, parse_choice

IDN = "KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830"
MAX_POINTS = 62_500
MIN_POINTS = 100
FORMAT_CODES = {"BYTE": 0, "WORD": 1, "ASCii": 4}
REFERENCE_DIV = {"LEFT": 1.0, "CENTer": 5.0, "RIGHt": 9.0}
SEARCH_ATTEMPTS = 8


def _nr3(value: float) -> str:
    return f"{value:+.10E}"


class ScopeServer(InstrumentServer):
    """Four-channel digitizer with edge trigger and binary waveform transfer.

    Args:
        channels: channel number (1-4) -> trace source; missing channels get noise.
        seed: random seed for the default sources and trigger placement.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "DSOX3024T"

    def __init__(
        self,
        channels: Mapping[int, TraceSource] | None = None,
        *,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\n")
        self._rng = np.random.default_rng(seed)
        given = dict(channels) if channels is not None else {1: TESReadout(seed=seed)}
        self.sources: dict[int, TraceSource] = {
            ch: given.get(ch, NoiseSource(seed=None if seed is None else seed + ch))
            for ch in range(1, 5)
        }
        self.records: dict[int, np.ndarray] = {}
        self.acquisitions = 0
        self._reset()
        self.parser = ScpiParser(self._commands())

    # ---- state -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self.wav_source = 1
        self.wav_format = "BYTE"
        self.unsigned = False
        self.msb_first = True
        self.points = 1000
        self.points_mode = "NORMal"
        self.trig_source = 1
        self.trig_level = 0.25
        self.trig_slope = "POSitive"
        self.sweep = "AUTO"
        self.timebase = 50e-6
        self.reference = "CENTer"
        self.scale = {ch: 0.5 for ch in range(1, 5)}
        self.offset = {ch: 0.0 for ch in range(1, 5)}
        self.running = True
        self.triggered = False
        self.records = {}

    # ---- acquisition -----------------------------------------------------------------------

    @property
    def x_increment(self) -> float:
        """Sample interval of a record, s."""
        return 10.0 * self.timebase / self.points

    @property
    def trigger_index(self) -> int:
        """Sample index of the trigger point in a record."""
        return int(round(REFERENCE_DIV[self.reference] / 10.0 * self.points))

    def acquire(self) -> bool:
        """Take one record on every channel; True when a real edge triggered it."""
        n, dt, pre = self.points, self.x_increment, self.trigger_index
        spread = max(2, n // 8)
        length = n + spread + max(64, n // 8)  # room for the rise after the photon
        for _ in range(SEARCH_ATTEMPTS):
            event = int(self._rng.integers(pre + 1, pre + spread))
            data = {
                ch: src.acquire(length, dt, event if ch == self.trig_source else None)
                for ch, src in self.sources.items()
            }
            start = self._find_edge(data[self.trig_source], pre, n)
            if start is not None:
                self.records = {ch: d[start : start + n] for ch, d in data.items()}
                self.triggered = True
                self.acquisitions += 1
                return True
            if self.sweep == "AUTO":
                self.records = {ch: d[:n] for ch, d in data.items()}
                self.acquisitions += 1
                return False
        return False

    def _find_edge(self, trace: np.ndarray, pre: int, n: int) -> int | None:
        level = self.trig_level
        before, after = trace[:-1], trace[1:]
        if self.trig_slope == "POSitive":
            hits = (before < level) & (after >= level)
        else:
            hits = (before > level) & (after <= level)
        idx = np.nonzero(hits)[0] + 1
        idx = idx[(idx >= pre) & (idx - pre + n <= trace.size)]
        return int(idx[0] - pre) if idx.size else None

    def _volts(self, ch: int) -> np.ndarray:
        if self.running or not self.records:
            self.acquire()
        return self.records.get(ch, np.zeros(self.points))

    def _codes(self, ch: int) -> np.ndarray:
        volts = self._volts(ch)
        yinc, yorig, yref = self._y_axis(ch)
        bits = 16 if self.wav_format == "WORD" else 8
        lo, hi = (0, 2**bits - 1) if self.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        codes = np.round((volts - yorig) / yinc) + yref
        return np.clip(codes, lo, hi)

    def _y_axis(self, ch: int) -> tuple[float, float, int]:
        bits = 16 if self.wav_format == "WORD" else 8
        yinc = 8.0 * self.scale[ch] / 2**bits
        yref = 2 ** (bits - 1) if self.unsigned else 0
        return yinc, self.offset[ch], yref

    def _x_origin(self) -> float:
        return -self.trigger_index * self.x_increment

    # ---- SCPI handlers ---------------------------------------------------------------------

    def handle(self, command: str) -> str | bytes | None:
        """Execute one program message."""
        return self.parser.execute(command)

    def _data(self, _s: list[int], _a: str) -> bytes:
        if self.wav_format == "ASCii":
            body = ",".join(_nr3(v) for v in self._volts(self.wav_source)).encode("ascii")
        else:
            codes = self._codes(self.wav_source)
            bits = 16 if self.wav_format == "WORD" else 8
            kind = ("u" if self.unsigned else "i") + str(bits // 8)
            order = ">" if self.msb_first else "<"
            body = codes.astype(order + kind).tobytes()
        return b"#8" + f"{len(body):08d}".encode("ascii") + body + b"\n"

    def _preamble(self, _s: list[int], _a: str) -> str:
        yinc, yorig, yref = self._y_axis(self.wav_source)
        fields = [
            f"{FORMAT_CODES[self.wav_format]:+d}",
            "+0",
            f"{self.points:+d}",
            "+1",
            _nr3(self.x_increment),
            _nr3(self._x_origin()),
            "+0",
            _nr3(yinc),
            _nr3(yorig),
            f"{yref:+d}",
        ]
        return ",".join(fields)

    def _channel(self, text: str) -> int:
        t = text.strip().upper()
        for prefix in ("CHANNEL", "CHAN"):
            if t.startswith(prefix) and t[len(prefix) :].isdigit():
                ch = int(t[len(prefix) :])
                if 1 <= ch <= 4:
                    return ch
        raise ScpiError()

    def _set_points(self, _s: list[int], a: str) -> None:
        self.points = int(min(MAX_POINTS, max(MIN_POINTS, int(float(a)))))

    def _set_level(self, _s: list[int], a: str) -> None:
        self.trig_level = float(a)

    def _set_scale(self, s: list[int], a: str) -> None:
        value = float(a)
        if not (1e-3 <= value <= 5.0) or not 1 <= s[0] <= 4:
            raise ScpiError()
        self.scale[s[0]] = value

    def _set_offset(self, s: list[int], a: str) -> None:
        if not 1 <= s[0] <= 4:
            raise ScpiError()
        self.offset[s[0]] = float(a)

    def _set_timebase(self, _s: list[int], a: str) -> None:
        value = float(a)
        if not 1e-9 <= value <= 50.0:
            raise ScpiError()
        self.timebase = value

    def _single(self, _s: list[int], _a: str) -> None:
        self.running = False
        self.acquire()

    def _ter(self, _s: list[int], _a: str) -> str:
        fired, self.triggered = self.triggered, False
        return "+1" if fired else "+0"

    def _cls(self, _s: list[int], _a: str) -> None:
        self.parser.errors.clear()
        self.triggered = False

    def _rst(self, _s: list[int], _a: str) -> None:
        self._reset()

    def _commands(self) -> list[ScpiCommand]:
        def short(choice: str) -> str:
            return "".join(c for c in choice if c.isupper())

        def setter(attr: str, choices: tuple[str, ...]) -> Callable[[list[int], str], None]:
            def _set(_s: list[int], a: str) -> None:
                setattr(self, attr, parse_choice(a, choices))

            return _set

        def field(index: int) -> Callable[[list[int], str], str]:
            return lambda s, a: self._preamble(s, a).split(",")[index]

        def chan(s: list[int]) -> int:
            if not 1 <= s[0] <= 4:
                raise ScpiError()
            return s[0]

        return [
            ScpiCommand("*IDN", query=lambda s, a: IDN),
            ScpiCommand("*OPC", set=lambda s, a: None, query=lambda s, a: "1"),
            ScpiCommand("*RST", set=self._rst),
            ScpiCommand("*CLS", set=self._cls),
            ScpiCommand(
                ":WAVeform:SOURce",
                set=lambda s, a: setattr(self, "wav_source", self._channel(a)),
                query=lambda s, a: f"CHAN{self.wav_source}",
            ),
            ScpiCommand(
                ":WAVeform:FORMat",
                set=setter("wav_format", ("WORD", "BYTE", "ASCii")),
                query=lambda s, a: (
                    short(self.wav_format) if self.wav_format == "ASCii" else self.wav_format
                ),
            ),
            ScpiCommand(
                ":WAVeform:UNSigned",
                set=lambda s, a: setattr(self, "unsigned", parse_bool(a)),
                query=lambda s, a: "1" if self.unsigned else "0",
            ),
            ScpiCommand(
                ":WAVeform:BYTeorder",
                set=lambda s, a: setattr(
                    self, "msb_first", parse_choice(a, ("LSBFirst", "MSBFirst")) == "MSBFirst"
                ),
                query=lambda s, a: "MSBF" if self.msb_first else "LSBF",
            ),
            ScpiCommand(
                ":WAVeform:POINts:MODE",
                set=setter("points_mode", ("NORMal", "MAXimum", "RAW")),
                query=lambda s, a: short(self.points_mode),
            ),
            ScpiCommand(
                ":WAVeform:POINts", set=self._set_points, query=lambda s, a: str(self.points)
            ),
            ScpiCommand(":WAVeform:PREamble", query=self._preamble),
            ScpiCommand(":WAVeform:DATA", query=self._data),
            ScpiCommand(":WAVeform:XINCrement", query=field(4)),
            ScpiCommand(":WAVeform:XORigin", query=field(5)),
            ScpiCommand(":WAVeform:XREFerence", query=field(6)),
            ScpiCommand(":WAVeform:YINCrement", query=field(7)),
            ScpiCommand(":WAVeform:YORigin", query=field(8)),
            ScpiCommand(":WAVeform:YREFerence", query=field(9)),
            ScpiCommand(
                ":TRIGger[:EDGE]:SOURce",
                set=lambda s, a: setattr(self, "trig_source", self._channel(a)),
                query=lambda s, a: f"CHAN{self.trig_source}",
            ),
            ScpiCommand(
                ":TRIGger[:EDGE]:LEVel",
                set=self._set_level,
                query=lambda s, a: _nr3(self.trig_level),
            ),
            ScpiCommand(
                ":TRIGger[:EDGE]:SLOPe",
                set=setter("trig_slope", ("POSitive", "NEGative")),
                query=lambda s, a: short(self.trig_slope),
            ),
            ScpiCommand(
                ":TRIGger:SWEep",
                set=setter("sweep", ("AUTO", "NORMal")),
                query=lambda s, a: short(self.sweep),
            ),
            ScpiCommand(":SINGle", set=self._single),
            ScpiCommand(":DIGitize", set=self._single),
            ScpiCommand(":RUN", set=lambda s, a: setattr(self, "running", True)),
            ScpiCommand(":STOP", set=lambda s, a: setattr(self, "running", False)),
            ScpiCommand(":TER", query=self._ter),
            ScpiCommand(
                ":TIMebase[:MAIN]:SCALe",
                set=self._set_timebase,
                query=lambda s, a: _nr3(self.timebase),
            ),
            ScpiCommand(
                ":TIMebase:REFerence",
                set=setter("reference", ("LEFT", "CENTer", "RIGHt")),
                query=lambda s, a: short(self.reference),
            ),
            ScpiCommand(
                ":CHANnel<n>:SCALe",
                set=self._set_scale,
                query=lambda s, a: _nr3(self.scale[chan(s)]),
            ),
            ScpiCommand(
                ":CHANnel<n>:OFFSet",
                set=self._set_offset,
                query=lambda s, a: _nr3(self.offset[chan(s)]),
            ),
        ]
