"""Simulated oscilloscope / digitizer speaking SCPI like a Keysight InfiniiVision DSOX3024T.

Transport: TCP; commands end with ``\\n`` (a trailing ``\\r`` is ignored),
replies end with ``\\n``. Clients (PyVISA) use ``read_termination="\\n"``,
``write_termination="\\n"``; ``query_binary_values`` reads the waveform block
and its trailing newline.

Commands (short or long form, any case, ``;``-chained; ``?`` forms of the
settable ones). Defaults after power-on / ``*RST`` in brackets; the
waveform defaults are the manual's ``:WAV:UNS 1;BYT MSBF;FORM BYTE;POIN +1000;
SOUR CHAN1``.

* ``*IDN?`` -> ``KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830``;
  ``*RST``; ``*CLS``; ``*OPC?`` -> ``1``; ``*OPT?`` -> ``0`` (no options);
  ``*STB?`` -> NR1 status byte (bit 0 TRG: the trigger event register is set).
* ``:WAVeform:SOURce CHAN<n>`` [CHAN1]; ``:WAVeform:FORMat WORD|BYTE|ASCii``
  [BYTE] (``?`` -> ``WORD``/``BYTE``/``ASC``); ``:WAVeform:UNSigned 0|1`` [1]
  (unsigned: y reference 32768 / 128; signed: 0); ``:WAVeform:BYTeorder
  LSBFirst|MSBFirst`` [MSBF]; ``:WAVeform:POINts n`` [1000; 100..62500;
  ``?`` -> ``+1000``]; ``:WAVeform:POINts:MODE NORMal|MAXimum|RAW`` [NORM].
* ``:WAVeform:PREamble?`` -> ``format,type,points,count,xincrement,xorigin,
  xreference,yincrement,yorigin,yreference`` (format 0 BYTE, 1 WORD, 4 ASCii;
  type 0 NORMal, 1 PEAK, 2 AVERage, 3 HRESolution; count = averages or 1)
  of the record held (of the present settings when none is);
  ``:WAVeform:XINCrement?`` ... ``YREFerence?`` give single fields.
* ``:WAVeform:DATA?`` -> ``#8nnnnnnnn<bytes>`` + ``\\n``: the last completed
  acquisition. WORD data is the 8-bit ADC level left-aligned in 16 bits
  (low byte 0; 12 bits in AVERage and HRESolution), as the manual
  describes; a signal beyond the screen reads as the extreme ADC level.
  While running, only the measurement record (at most 1000 points) is
  available; the full record once stopped. With no completed acquisition:
  an empty block and error -230.
* ``:TRIGger[:EDGE]:SOURce CHAN<n>`` [CHAN1], ``:TRIGger[:EDGE]:LEVel v``
  [0.25 V], ``:TRIGger[:EDGE]:SLOPe POSitive|NEGative|EITHer|ALTernate``
  [POS], ``:TRIGger:SWEep AUTO|NORMal`` [AUTO].
* ``:RUN`` [running], ``:STOP``, ``:SINGle`` (one acquisition; forces the
  sweep to NORMal, as on the X-series), ``:DIGitize`` (one acquisition with
  the sweep as it is; the scope executes nothing else until it completes).
* ``:TER?`` -> ``+1`` once after a trigger, else ``+0``.
  ``:OPERegister:CONDition?`` -> NR1: bit 3 (8) Run (running, or a single
  acquisition not complete yet), bit 5 (32) Wait Trig.
* ``:TIMebase[:MAIN]:SCALe s`` [50 us/div, 10 divisions],
  ``:TIMebase[:MAIN]:POSition s`` [0; -500..500 s: the time from the trigger
  to the reference point], ``:TIMebase:REFerence LEFT|CENTer|RIGHt`` [CENT:
  1, 5 or 9 divisions from the left].
* ``:ACQuire:TYPE NORMal|AVERage|HRESolution|PEAK`` [NORM],
  ``:ACQuire:COUNt n`` [8; 2..65536]: AVERage waits for ``n`` triggers.
* Segmented memory: ``:ACQuire:MODE RTIMe|SEGMented`` [RTIM; ``?`` ->
  ``RTIM``/``SEGM``], ``:ACQuire:SEGMented:COUNt n`` [2; 2..1000 segments per
  acquisition], ``:ACQuire:SEGMented:INDex n`` [1; the segment the waveform
  queries read]; ``:WAVeform:SEGMented:COUNt?`` -> NR1 segments acquired (also
  while acquiring); ``:WAVeform:SEGMented:TTAG?`` -> NR3 time tag of the
  selected segment (s after the first segment's trigger);
  ``:WAVeform:SEGMented:XLISt? RELXorigin|ABSXorigin|TTAG`` -> a definite-length
  block holding the comma-separated NR3 values of every segment;
  ``:WAVeform:SEGMented:ALL 0|1`` [0]: ``:WAVeform:DATA?`` returns every segment
  (segments x points, the preamble's points being one segment's) instead of the
  selected one. PEAK and AVERage are real-time only (segmented records are taken
  NORMal or HRESolution).
* ``:CHANnel<n>:SCALe v`` [0.5 V/div; 1 mV..5 V/div, at most 1 V/div into
  50 Ohm], ``:CHANnel<n>:OFFSet v`` [0 V, the screen centre],
  ``:CHANnel<n>:COUPling AC|DC`` [DC], ``:CHANnel<n>:IMPedance
  ONEMeg|FIFTy`` [ONEM; ``?`` -> ``ONEM``/``FIFT``], ``:CHANnel<n>:DISPlay
  0|1`` [channel 1 on]; NR3 for numbers.
* ``:SYSTem:ERRor?`` -> ``+0,"No error"`` or e.g. ``-113,"Undefined header"``.

Samples convert as ``V = (code - yreference) * yincrement + yorigin``;
``t = (i - xreference) * xincrement + xorigin`` (s from the trigger).
Unknown headers and bad parameters queue an SCPI error and get no reply.
How acquisitions arm, trigger on real TES pulses and complete is
:mod:`simulators.servers.scope_acquisition`.

Simulator interface: ``ScopeServer(channels=None, *, seed=None, clock=time.monotonic,
host="127.0.0.1", port=0)``; ``channels`` maps 1..4 to a
:class:`~simulators.physics.readout.TraceSource` (default: channel 1 a
:class:`~simulators.physics.readout.TESReadout` on design A, the others
1 mV rms noise). :attr:`ScopeServer.engine` holds the acquisition state;
:attr:`received` keeps the last :data:`RECEIVED_KEPT` commands and
:attr:`ScopeServer.commands` counts them all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np

from simulators.physics.readout import NoiseSource, TESReadout, TraceSource
from simulators.servers.base import InstrumentServer
from simulators.servers.scope_acquisition import (
    RUN_BIT,
    TYPE_CODES,
    WAIT_TRIG_BIT,
    AcquisitionEngine,
    Record,
    Setup,
)
from simulators.servers.scpi import ScpiCommand, ScpiError, ScpiParser, parse_bool, parse_choice

IDN = "KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830"
MAX_POINTS = 62_500
MIN_POINTS = 100
MAX_SEGMENTS = 1000
"""Segments per segmented acquisition at most (the 3000T's limit)."""
MEASUREMENT_RECORD = 1000
"""Points a running scope can transfer; the whole record only once stopped."""
FORMAT_CODES = {"BYTE": 0, "WORD": 1, "ASCii": 4}
REFERENCE_DIV = {"LEFT": 1.0, "CENTer": 5.0, "RIGHt": 9.0}
DIGITIZE_POLL_S = 0.002


def _out_of_range() -> ScpiError:
    return ScpiError(-222, "Data out of range")


def _nr3(value: float) -> str:
    return f"{value:+.10E}"


class ScopeServer(InstrumentServer):
    """Four-channel digitizer with edge trigger and binary waveform transfer.

    Args:
        channels: channel number (1-4) -> trace source; missing channels get noise.
        seed: random seed for the default sources.
        clock: seconds, monotonic: when photons arrive and acquisitions complete.
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
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\n")
        self.commands = 0
        given = dict(channels) if channels is not None else {1: TESReadout(seed=seed)}
        self.sources: dict[int, TraceSource] = {
            ch: given.get(ch, NoiseSource(seed=None if seed is None else seed + ch))
            for ch in range(1, 5)
        }
        self.engine = AcquisitionEngine(self.sources, clock)
        self._reset()
        self.parser = ScpiParser(self._commands())

    # ---- state -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self.wav_source = 1
        self.wav_format = "BYTE"
        self.unsigned = True
        self.msb_first = True
        self.points = 1000
        self.points_mode = "NORMal"
        self.trig_source = 1
        self.trig_level = 0.25
        self.trig_slope = "POSitive"
        self.sweep = "AUTO"
        self.timebase = 50e-6
        self.position = 0.0
        self.reference = "CENTer"
        self.acq_type = "NORMal"
        self.acq_count = 8
        self.scale = {ch: 0.5 for ch in range(1, 5)}
        self.offset = {ch: 0.0 for ch in range(1, 5)}
        self.coupling = {ch: "DC" for ch in range(1, 5)}
        self.impedance = {ch: "ONEMeg" for ch in range(1, 5)}
        self.display = {ch: ch == 1 for ch in range(1, 5)}
        self.acq_mode = "RTIMe"
        self.seg_count = 2
        self.seg_index = 1
        self.seg_all = False
        self.engine.record = None
        self.engine.run(self.setup())  # a scope powers up (and resets) running

    def setup(self) -> Setup:
        """The acquisition settings as they are now."""
        x_increment = 10.0 * self.timebase / self.points
        x_origin = self.position - REFERENCE_DIV[self.reference] * self.timebase
        return Setup(
            points=self.points, x_increment=x_increment, x_origin=x_origin,
            scale=dict(self.scale), offset=dict(self.offset),
            ac={ch: c == "AC" for ch, c in self.coupling.items()},
            acq_type=self.acq_type, count=self.acq_count, trig_source=self.trig_source,
            trig_level=self.trig_level, trig_slope=self.trig_slope, auto=self.sweep == "AUTO",
            segmented=self.acq_mode == "SEGMented",
            segments=self.seg_count if self.acq_mode == "SEGMented" else 1,
            # Segmented memory records the displayed channels (and the trigger source) only.
            channels=(tuple(ch for ch in range(1, 5) if self.display[ch] or ch == self.trig_source)
                      if self.acq_mode == "SEGMented" else ()),
        )

    def _changed(self) -> None:
        self.engine.drop_record(self.setup())

    @property
    def acquisitions(self) -> int:
        """Acquisitions completed so far."""
        return self.engine.acquisitions

    # ---- SCPI handlers ---------------------------------------------------------------------

    def handle(self, command: str) -> str | bytes | None:
        """Catch up with the clock, then execute one program message."""
        self.commands += 1
        self.engine.update()
        return self.parser.execute(command)

    def _held(self) -> tuple[Record | None, Setup, int]:
        """The record a transfer returns now, its settings and the decimation step."""
        record = self.engine.record
        if record is None:
            return None, self.setup(), 1
        limit = MEASUREMENT_RECORD if self.engine.running else record.setup.points
        step = max(1, math.ceil(record.setup.points / min(limit, self.points)))
        return record, record.setup, step

    def _y_axis(self, setup: Setup) -> tuple[float, float, int]:
        bits = 16 if self.wav_format == "WORD" else 8
        ch = self.wav_source
        yref = 2 ** (bits - 1) if self.unsigned else 0
        return 8.0 * setup.scale[ch] / 2**bits, setup.offset[ch], yref

    def _segment_rows(self, record: Record) -> np.ndarray:
        """The held segmented record's rows a transfer returns (all, or the selected one)."""
        rows = record.codes[self.wav_source]
        if self.seg_all:
            return rows
        index = min(self.seg_index, rows.shape[0]) - 1
        return rows[index : index + 1]

    def _data(self, _s: list[int], _a: str) -> bytes:
        record, setup, step = self._held()
        if record is None or self.wav_source not in record.codes:
            self.parser.push_error(-230, "Data corrupt or stale")
            return b"#800000000\n"
        if record.segmented:
            words = self._segment_rows(record)[:, ::step].reshape(-1)
            if self.seg_all:
                self.engine.mark_transferred()
        else:
            words = record.codes[self.wav_source][::step]
            self.engine.mark_transferred()
        if self.wav_format == "ASCii":
            lsb = 8.0 * setup.scale[self.wav_source] / 65536
            volts = (words.astype(np.float64) - 32768.0) * lsb + setup.offset[self.wav_source]
            body = ",".join(_nr3(v) for v in volts).encode("ascii")
        else:
            order = ">" if self.msb_first else "<"
            # Unsigned codes count from the bottom rail; signed ones from mid-scale.
            if self.wav_format == "BYTE":
                top = (words >> 8).astype(np.int16)
                body = (top if self.unsigned else top - 128).astype(
                    "u1" if self.unsigned else "i1").tobytes()
            else:
                wide = words.astype(np.int32)
                body = (wide if self.unsigned else wide - 32768).astype(
                    order + ("u2" if self.unsigned else "i2")).tobytes()
        return b"#8" + f"{len(body):08d}".encode("ascii") + body + b"\n"

    def _preamble(self, _s: list[int], _a: str) -> str:
        record, setup, step = self._held()
        points = (record.codes[self.wav_source][..., ::step].shape[-1]
                  if record and self.wav_source in record.codes else setup.points)
        yinc, yorig, yref = self._y_axis(setup)
        fields = [
            f"{FORMAT_CODES[self.wav_format]:+d}",
            f"{TYPE_CODES[setup.acq_type]:+d}",
            f"{points:+d}",
            f"{record.averaged if record and setup.acq_type == 'AVERage' else 1:+d}",
            _nr3(setup.x_increment * step),
            _nr3(setup.x_origin),
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
        self._changed()

    def _set_scale(self, s: list[int], a: str) -> None:
        value = float(a)
        if not (1e-3 <= value <= 5.0) or not 1 <= s[0] <= 4:
            raise ScpiError()
        # Into 50 Ohm the front end stops at 1 V/div; the scope limits the setting.
        self.scale[s[0]] = min(value, 1.0) if self.impedance[s[0]] == "FIFTy" else value
        self._changed()

    def _set_impedance(self, s: list[int], a: str) -> None:
        self.impedance[s[0]] = parse_choice(a, ("ONEMeg", "FIFTy"))
        if self.impedance[s[0]] == "FIFTy":
            self.scale[s[0]] = min(self.scale[s[0]], 1.0)
        self._changed()

    def _set_float(self, attr: str, low: float, high: float) -> Callable[[list[int], str], None]:
        def _set(_s: list[int], a: str) -> None:
            value = float(a)
            if not low <= value <= high:
                raise _out_of_range()
            setattr(self, attr, value)
            self._changed()

        return _set

    def _set_count(self, _s: list[int], a: str) -> None:
        value = int(float(a))
        if not 2 <= value <= 65536:
            raise _out_of_range()
        self.acq_count = value
        self._changed()

    def _single(self, _s: list[int], _a: str) -> None:
        self.sweep = "NORMal"  # the X-series' :SINGle always waits for a real trigger
        self.engine.arm_single(self.setup())

    def _digitize(self, _s: list[int], _a: str) -> None:
        self.engine.arm_single(self.setup())
        while self.engine.running and not self._stopping.is_set():
            self._pause()
            self.engine.update()

    def _pause(self) -> None:
        """Wait a moment without holding the server lock (other clients may talk meanwhile)."""
        try:
            self.lock.release()
        except RuntimeError:  # called outside a client thread (a test driving handle())
            time.sleep(DIGITIZE_POLL_S)
            return
        try:
            time.sleep(DIGITIZE_POLL_S)
        finally:
            self.lock.acquire()

    def _set_segments(self, _s: list[int], a: str) -> None:
        value = int(float(a))
        if not 2 <= value <= MAX_SEGMENTS:
            raise _out_of_range()
        self.seg_count = value
        self._changed()

    def _set_segment_index(self, _s: list[int], a: str) -> None:
        value = int(float(a))
        if not 1 <= value <= MAX_SEGMENTS:
            raise _out_of_range()
        self.seg_index = value

    def _time_tag(self, _s: list[int], _a: str) -> str:
        record = self.engine.record
        if record is None or not record.segmented:
            return _nr3(0.0)
        tags = record.time_tags
        return _nr3(tags[min(self.seg_index, len(tags)) - 1])

    def _xlist(self, _s: list[int], a: str) -> bytes:
        kind = parse_choice(a, ("RELXorigin", "ABSXorigin", "TTAG"))
        record = self.engine.record
        if record is None or not record.segmented:
            values: list[float] = []
        else:
            origin = record.setup.x_origin
            values = [origin if kind == "RELXorigin" else tag + origin if kind == "ABSXorigin"
                      else tag for tag in record.time_tags]
        body = ",".join(_nr3(v) for v in values).encode("ascii")
        return b"#8" + f"{len(body):08d}".encode("ascii") + body + b"\n"

    def _condition(self, _s: list[int], _a: str) -> str:
        value = (RUN_BIT if self.engine.running else 0) | (
            WAIT_TRIG_BIT if self.engine.waiting else 0)
        return f"{value:+d}"

    def _cls(self, _s: list[int], _a: str) -> None:
        self.parser.errors.clear()
        self.engine.clear_events()

    def _commands(self) -> list[ScpiCommand]:
        def short(choice: str) -> str:
            return "".join(c for c in choice if c.isupper())

        def setter(attr: str, choices: tuple[str, ...], acquisition: bool = True
                   ) -> Callable[[list[int], str], None]:
            def _set(_s: list[int], a: str) -> None:
                setattr(self, attr, parse_choice(a, choices))
                if acquisition:
                    self._changed()

            return _set

        def per_channel(attr: str, choices: tuple[str, ...]) -> Callable[[list[int], str], None]:
            def _set(s: list[int], a: str) -> None:
                getattr(self, attr)[chan(s)] = parse_choice(a, choices)
                self._changed()

            return _set

        def field(index: int) -> Callable[[list[int], str], str]:
            return lambda s, a: self._preamble(s, a).split(",")[index]

        def chan(s: list[int]) -> int:
            if not 1 <= s[0] <= 4:
                raise ScpiError()
            return s[0]

        def set_offset(s: list[int], a: str) -> None:
            self.offset[chan(s)] = float(a)
            self._changed()

        def set_display(s: list[int], a: str) -> None:
            self.display[chan(s)] = parse_bool(a)

        def set_trigger_source(s: list[int], a: str) -> None:
            self.trig_source = self._channel(a)
            self._changed()

        return [
            ScpiCommand("*IDN", query=lambda s, a: IDN),
            ScpiCommand("*OPC", set=lambda s, a: None, query=lambda s, a: "1"),
            ScpiCommand("*OPT", query=lambda s, a: "0"),
            ScpiCommand("*STB", query=lambda s, a: f"{int(self.engine.trigger_pending):+d}"),
            ScpiCommand("*RST", set=lambda s, a: self._reset()),
            ScpiCommand("*CLS", set=self._cls),
            ScpiCommand(":WAVeform:SOURce",
                        set=lambda s, a: setattr(self, "wav_source", self._channel(a)),
                        query=lambda s, a: f"CHAN{self.wav_source}"),
            ScpiCommand(":WAVeform:FORMat", set=setter("wav_format", ("WORD", "BYTE", "ASCii"),
                                                       acquisition=False),
                        query=lambda s, a: (short(self.wav_format)
                                            if self.wav_format == "ASCii" else self.wav_format)),
            ScpiCommand(":WAVeform:UNSigned",
                        set=lambda s, a: setattr(self, "unsigned", parse_bool(a)),
                        query=lambda s, a: "1" if self.unsigned else "0"),
            ScpiCommand(":WAVeform:BYTeorder",
                        set=lambda s, a: setattr(self, "msb_first", parse_choice(
                            a, ("LSBFirst", "MSBFirst")) == "MSBFirst"),
                        query=lambda s, a: "MSBF" if self.msb_first else "LSBF"),
            ScpiCommand(":WAVeform:POINts:MODE",
                        set=setter("points_mode", ("NORMal", "MAXimum", "RAW"),
                                   acquisition=False),
                        query=lambda s, a: short(self.points_mode)),
            ScpiCommand(":WAVeform:POINts", set=self._set_points,
                        query=lambda s, a: f"{self.points:+d}"),
            ScpiCommand(":WAVeform:PREamble", query=self._preamble),
            ScpiCommand(":WAVeform:DATA", query=self._data),
            ScpiCommand(":WAVeform:XINCrement", query=field(4)),
            ScpiCommand(":WAVeform:XORigin", query=field(5)),
            ScpiCommand(":WAVeform:XREFerence", query=field(6)),
            ScpiCommand(":WAVeform:YINCrement", query=field(7)),
            ScpiCommand(":WAVeform:YORigin", query=field(8)),
            ScpiCommand(":WAVeform:YREFerence", query=field(9)),
            ScpiCommand(":TRIGger[:EDGE]:SOURce", set=set_trigger_source,
                        query=lambda s, a: f"CHAN{self.trig_source}"),
            ScpiCommand(":TRIGger[:EDGE]:LEVel",
                        set=self._set_float("trig_level", -40.0, 40.0),
                        query=lambda s, a: _nr3(self.trig_level)),
            ScpiCommand(":TRIGger[:EDGE]:SLOPe",
                        set=setter("trig_slope",
                                   ("POSitive", "NEGative", "EITHer", "ALTernate")),
                        query=lambda s, a: short(self.trig_slope)),
            ScpiCommand(":TRIGger:SWEep", set=setter("sweep", ("AUTO", "NORMal")),
                        query=lambda s, a: short(self.sweep)),
            ScpiCommand(":SINGle", set=self._single),
            ScpiCommand(":DIGitize", set=self._digitize),
            ScpiCommand(":RUN", set=lambda s, a: self.engine.run(self.setup())),
            ScpiCommand(":STOP", set=lambda s, a: self.engine.stop()),
            ScpiCommand(":TER", query=lambda s, a: "+1" if self.engine.take_trigger_event()
                        else "+0"),
            ScpiCommand(":OPERegister:CONDition", query=self._condition),
            ScpiCommand(":TIMebase[:MAIN]:SCALe", set=self._set_float("timebase", 1e-9, 50.0),
                        query=lambda s, a: _nr3(self.timebase)),
            ScpiCommand(":TIMebase[:MAIN]:POSition",
                        set=self._set_float("position", -500.0, 500.0),
                        query=lambda s, a: _nr3(self.position)),
            ScpiCommand(":TIMebase:REFerence",
                        set=setter("reference", ("LEFT", "CENTer", "RIGHt")),
                        query=lambda s, a: short(self.reference)),
            ScpiCommand(":ACQuire:TYPE",
                        set=setter("acq_type", ("NORMal", "AVERage", "HRESolution", "PEAK")),
                        query=lambda s, a: short(self.acq_type)),
            ScpiCommand(":ACQuire:COUNt", set=self._set_count,
                        query=lambda s, a: f"{self.acq_count:+d}"),
            ScpiCommand(":ACQuire:MODE", set=setter("acq_mode", ("RTIMe", "SEGMented")),
                        query=lambda s, a: short(self.acq_mode)),
            ScpiCommand(":ACQuire:SEGMented:COUNt", set=self._set_segments,
                        query=lambda s, a: f"{self.seg_count:+d}"),
            ScpiCommand(":ACQuire:SEGMented:INDex", set=self._set_segment_index,
                        query=lambda s, a: f"{self.seg_index:+d}"),
            ScpiCommand(":WAVeform:SEGMented:ALL",
                        set=lambda s, a: setattr(self, "seg_all", parse_bool(a)),
                        query=lambda s, a: "1" if self.seg_all else "0"),
            ScpiCommand(":WAVeform:SEGMented:COUNt",
                        query=lambda s, a: f"{self.engine.segments_so_far:+d}"),
            ScpiCommand(":WAVeform:SEGMented:TTAG", query=self._time_tag),
            ScpiCommand(":WAVeform:SEGMented:XLISt", query=self._xlist),
            ScpiCommand(":CHANnel<n>:SCALe", set=self._set_scale,
                        query=lambda s, a: _nr3(self.scale[chan(s)])),
            ScpiCommand(":CHANnel<n>:OFFSet", set=set_offset,
                        query=lambda s, a: _nr3(self.offset[chan(s)])),
            ScpiCommand(":CHANnel<n>:COUPling", set=per_channel("coupling", ("AC", "DC")),
                        query=lambda s, a: self.coupling[chan(s)]),
            ScpiCommand(":CHANnel<n>:IMPedance",
                        set=lambda s, a: self._set_impedance([chan(s)], a),
                        query=lambda s, a: short(self.impedance[chan(s)])),
            ScpiCommand(":CHANnel<n>:DISPlay", set=set_display,
                        query=lambda s, a: "1" if self.display[chan(s)] else "0"),
        ]
