"""Keysight InfiniiVision oscilloscopes as digitizers for TES pulses and noise.

The scope is driven over SCPI; waveforms travel as IEEE 488.2 definite-length
binary blocks (``#8nnnnnnnn<bytes>`` followed by a line feed) of ``BYTE``
(8-bit) or ``WORD`` (16-bit) samples, scaled to volts with the preamble:

    volts = (sample - y_reference) * y_increment + y_origin
    time  = (index  - x_reference) * x_increment + x_origin

**A record is read only when its acquisition is complete.** A running scope
overwrites its record while it is transferred and offers only a screen's
worth of points, so :meth:`InfiniiVision.fetch_waveform` refuses to read
while the Run bit (8) of ``:OPERegister:CONDition?`` is set, and the daemon's
poll arms one acquisition (``:SINGle``) and polls that bit until it falls
(the programmer's guide's "polling synchronization"). ``:DIGitize`` would
do the same in one command, but the scope then executes nothing else until
a trigger comes: a quiet detector would hold the connection past its VISA
timeout, which the daemon must take for a broken link. A poll that sees no
trigger within ``record_timeout_s`` stops the scope and publishes nothing.

Each record carries its trigger time (from when the acquisition was seen
complete, :func:`~drivers.keysight.waveform.trigger_time`) and is flagged
``Quality.CLIPPED`` when samples sit at the ADC rails (``adc_bits``: 8 for
the DSOX3024T).

Interface::

    scope = InfiniiVision("TCPIP::192.168.1.20::INSTR")        # no I/O
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points=10_000)
    scope.trigger_source = "CHAN1"; scope.trigger_level = -0.02; scope.trigger_slope = "NEG"
    record = scope.acquire_single(timeout_s=5)   # :SINGle, wait for the Run bit, fetch
    record.time, record.volts, record.record()   # numpy arrays; the daemon's WaveRecord
    scope.stop(); scope.fetch_waveform()         # the record held by a stopped scope
    scope.ch_1.scale = 0.05; scope.ch_1.impedance = "FIFT"      # per-input settings

Daemon description: poll ``waveform`` (kind ``waveform``, volts), controls
for source, points, trigger, timebase and acquisition, actions ``single``,
``run``, ``stop``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pymeasure.instruments import Instrument, SCPIMixin

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentError, InstrumentReplyError
from drivers.keysight.codes import (
    AcquisitionType,
    Coupling,
    Impedance,
    PointsMode,
    ScopeChannel,
    TriggerSlope,
    TriggerSweep,
    on_off,
)
from drivers.keysight.waveform import (
    ByteOrder,
    Completion,
    Preamble,
    PreambleFormat,
    RecordType,
    Waveform,
    WaveformFormat,
    parse_block_header,
)
from drivers.readings import PollKind, WaveRecord

__all__ = [
    "AcquisitionRunning",
    "AcquisitionType",
    "ByteOrder",
    "CaptureTimeout",
    "Completion",
    "Coupling",
    "Impedance",
    "InfiniiVision",
    "PointsMode",
    "Preamble",
    "PreambleFormat",
    "ScopeChannel",
    "TriggerSlope",
    "TriggerSweep",
    "Waveform",
    "WaveformFormat",
    "parse_block_header",
]

WAVEFORM_SOURCES = ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "MATH", "FUNC")
TRIGGER_SOURCES = ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "EXT", "LINE", "WGEN")
POINTS_RANGE = (100, 8_000_000)
#: ``:OPERegister:CONDition?`` bit 3: the oscilloscope is running (not stopped).
RUN_BIT = 8
#: Types whose records are one sample per time bucket; PEAK sends (min, max) pairs.
RECORD_TYPES = (AcquisitionType.NORMAL, AcquisitionType.AVERAGE,
                AcquisitionType.HIGH_RESOLUTION)


class CaptureTimeout(InstrumentError):
    """A single-shot capture saw no trigger (or did not finish) within its timeout."""


class AcquisitionRunning(InstrumentError):
    """The scope is acquiring: its record is not complete and must not be read."""


class InfiniiVision(SCPIMixin, Instrument):
    """Keysight InfiniiVision oscilloscope (DSO-X / MSO-X 2000-6000) as a digitizer.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        adc_bits: the ADC's resolution, for clipping (8 for the DSOX3024T).
        record_timeout_s: how long a daemon poll waits for a trigger.
        **kwargs: passed to the VISA adapter (e.g. ``visa_library="@py"``).
    """

    #: Pause between two polls of the Run bit while an acquisition completes.
    poll_interval_s = 0.01

    ch_1 = Instrument.ChannelCreator(ScopeChannel, 1)
    ch_2 = Instrument.ChannelCreator(ScopeChannel, 2)
    ch_3 = Instrument.ChannelCreator(ScopeChannel, 3)
    ch_4 = Instrument.ChannelCreator(ScopeChannel, 4)

    def __init__(self, adapter: Any, name: str = "InfiniiVision", *, adc_bits: int = 8,
                 record_timeout_s: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        self.adc_bits = v.require_in_set(adc_bits, (8, 10, 12, 14), instrument=name,
                                         command="adc_bits")
        self.record_timeout_s = v.require_in_range(record_timeout_s, 1e-3, 60.0,
                                                   instrument=name,
                                                   command="record_timeout_s", unit="s")
        super().__init__(adapter, name, **kwargs)

    # ---- waveform transfer settings --------------------------------------------------------

    waveform_source = v.control(
        ":WAVeform:SOURce?", ":WAVeform:SOURce %s",
        """Control the waveform source, ``"CHAN1"`` .. ``"CHAN4"``, ``"MATH"`` or ``"FUNC"``.""",
        validator=v.in_set, values=WAVEFORM_SOURCES, cast=str,
    )
    waveform_format = v.control(
        ":WAVeform:FORMat?", ":WAVeform:FORMat %s",
        """Control the sample format (:class:`WaveformFormat`: ``BYTE`` or ``WORD``).""",
        validator=v.in_set, values=(WaveformFormat.BYTE, WaveformFormat.WORD), cast=str,
        get_process=lambda reply: WaveformFormat(reply.strip()),
    )
    waveform_byte_order = v.control(
        ":WAVeform:BYTeorder?", ":WAVeform:BYTeorder %s",
        """Control the byte order of WORD samples (:class:`ByteOrder`: ``LSBF`` / ``MSBF``).""",
        validator=v.in_set, values=tuple(ByteOrder), cast=str,
        get_process=lambda reply: ByteOrder(reply.strip()),
    )
    waveform_unsigned = v.control(
        ":WAVeform:UNSigned?", ":WAVeform:UNSigned %d",
        """Control whether samples are transferred unsigned (bool).""",
        validator=v.in_set, values={True: 1, False: 0}, map_values=True, cast=str,
        get_process=lambda reply: 1 if on_off(reply) else 0,
    )
    waveform_points = v.control(
        ":WAVeform:POINts?", ":WAVeform:POINts %d",
        """Control the number of points to transfer (100 to 8 000 000; the scope may round).""",
        validator=v.int_in_range, values=POINTS_RANGE, cast=int,
    )
    waveform_points_mode = v.control(
        ":WAVeform:POINts:MODE?", ":WAVeform:POINts:MODE %s",
        """Control the points mode (:class:`PointsMode`: ``NORM`` screen, ``MAX``, ``RAW``).""",
        validator=v.in_set, values=tuple(PointsMode), cast=str,
        get_process=lambda reply: PointsMode(reply.strip()),
    )
    preamble = v.measurement(
        ":WAVeform:PREamble?",
        """Get the waveform preamble (:class:`Preamble`) of the present source.""",
        cast=str, maxsplit=0, get_process=Preamble.parse,
    )

    # ---- trigger, timebase, acquisition ------------------------------------------------------

    trigger_source = v.control(
        ":TRIGger:EDGE:SOURce?", ":TRIGger:EDGE:SOURce %s",
        """Control the edge-trigger source: ``"CHAN1"`` .. ``"CHAN4"``, ``"EXT"``, ``"LINE"``.""",
        validator=v.in_set, values=TRIGGER_SOURCES, cast=str,
    )
    trigger_level = v.control(
        ":TRIGger:EDGE:LEVel?", ":TRIGger:EDGE:LEVel %g",
        """Control the edge-trigger level in V (-40 to 40 V; the scope limits it per scale).""",
        validator=v.in_range, values=(-40.0, 40.0), unit="V",
    )
    trigger_slope = v.control(
        ":TRIGger:EDGE:SLOPe?", ":TRIGger:EDGE:SLOPe %s",
        """Control the trigger slope (:class:`TriggerSlope`: ``POS``, ``NEG``, ``EITH``, ``ALT``).""",
        validator=v.in_set, values=tuple(TriggerSlope), cast=str,
        get_process=lambda reply: TriggerSlope(reply.strip()),
    )
    trigger_sweep = v.control(
        ":TRIGger:SWEep?", ":TRIGger:SWEep %s",
        """Control the trigger sweep (:class:`TriggerSweep`: ``NORM`` waits, ``AUTO`` does not).""",
        validator=v.in_set, values=tuple(TriggerSweep), cast=str,
        get_process=lambda reply: TriggerSweep(reply.strip()),
    )
    timebase_scale = v.control(
        ":TIMebase:SCALe?", ":TIMebase:SCALe %g",
        """Control the horizontal scale in s/div (1 ns/div to 50 s/div).""",
        validator=v.in_range, values=(1e-9, 50.0), unit="s/div",
    )
    timebase_position = v.control(
        ":TIMebase:POSition?", ":TIMebase:POSition %g",
        """Control the time from the trigger to the reference point in s (-500 to 500 s).""",
        validator=v.in_range, values=(-500.0, 500.0), unit="s",
    )
    acquisition_type = v.control(
        ":ACQuire:TYPE?", ":ACQuire:TYPE %s",
        """Control the acquisition type (:class:`AcquisitionType`: ``NORM``, ``AVER``, ``HRES``).

        ``PEAK`` reads back (set on the front panel) but is refused as a setting:
        its records are (min, max) pairs, not one sample per time bucket.""",
        validator=v.in_set, values=RECORD_TYPES, cast=str,
        get_process=lambda reply: AcquisitionType(reply.strip()),
    )
    acquisition_count = v.control(
        ":ACQuire:COUNt?", ":ACQuire:COUNt %d",
        """Control the number of triggers averaged in ``AVER`` (2 to 65536).""",
        validator=v.int_in_range, values=(2, 65536), cast=int,
    )
    trigger_event = v.measurement(
        ":TER?",
        """Get and clear the trigger event register (bool: a trigger occurred since last read).""",
        cast=str, get_process=on_off,
    )
    operation_condition = v.measurement(
        ":OPERegister:CONDition?",
        """Get the Operation Status Condition Register (int; bit 3, 8: running).""",
        cast=int,
    )

    @property
    def running(self) -> bool:
        """Get whether the scope is acquiring (Run bit; a single acquisition not yet complete)."""
        return bool(int(self.operation_condition) & RUN_BIT)

    # ---- capture ---------------------------------------------------------------------------

    def run(self) -> None:
        """Acquire continuously (``:RUN``); records cannot be read until :meth:`stop`."""
        self.write(":RUN")

    def stop(self) -> None:
        """Stop acquiring; the last complete record stays in memory (``:STOP``)."""
        self.write(":STOP")

    def single(self, timeout_s: float = 10.0) -> Completion:
        """Arm one acquisition and wait until it is complete.

        Sends ``:SINGle`` (on the X-series it waits for a real trigger) and
        polls ``:OPERegister:CONDition?`` until the Run bit falls.

        Args:
            timeout_s: give up after this long (0.001 to 3600 s).

        Returns:
            When the acquisition was seen complete (for its trigger time).

        Raises:
            CaptureTimeout: not complete within ``timeout_s``; the scope stays armed.
        """
        limit = v.require_in_range(
            timeout_s, 1e-3, 3600.0, instrument=self.name, command="single timeout_s", unit="s"
        )
        deadline = time.monotonic() + limit
        self.write(":SINGle")
        # It cannot complete before it was armed; afterwards, before a query found it running.
        after = time.time_ns()
        while True:
            sent = time.time_ns()
            running = self.running
            if not running:
                return Completion(after, time.time_ns())
            after = sent
            if time.monotonic() > deadline:
                raise CaptureTimeout(
                    f"no complete acquisition within {limit:g} s", instrument=self.name,
                    command=":SINGle",
                )
            time.sleep(self.poll_interval_s)

    def configure_waveform(
        self,
        source: str = "CHAN1",
        *,
        fmt: WaveformFormat | str = WaveformFormat.WORD,
        points: int | None = None,
        byte_order: ByteOrder | str = ByteOrder.LSB_FIRST,
        unsigned: bool = False,
        points_mode: PointsMode | str = PointsMode.RAW,
    ) -> None:
        """Set everything :meth:`fetch_waveform` depends on, validating first.

        Args:
            source: waveform source, e.g. ``"CHAN1"``.
            fmt: ``WORD`` (16 bit) or ``BYTE`` (8 bit).
            points: points to transfer, or None to leave as is.
            byte_order: byte order of WORD samples.
            unsigned: transfer unsigned samples.
            points_mode: ``"NORM"``, ``"MAX"`` or ``"RAW"``.
        """
        checks = {
            "waveform_source": source,
            "waveform_format": fmt,
            "waveform_byte_order": byte_order,
            "waveform_unsigned": unsigned,
            "waveform_points_mode": points_mode,
        }
        if points is not None:
            checks["waveform_points"] = points
        valid = {name: v.validate_setting(self, name, value) for name, value in checks.items()}
        for name, value in valid.items():
            setattr(self, name, value)

    def fetch_waveform(self) -> Waveform:
        """Transfer the record a stopped scope holds, scaled.

        Returns:
            The record (time axis and volts).

        Raises:
            AcquisitionRunning: the scope is acquiring (nothing is transferred).
            InstrumentReplyError: malformed preamble or block, or no record held.
        """
        if self.running:
            raise AcquisitionRunning(
                "the record is incomplete while the scope runs; stop it or use acquire_single",
                instrument=self.name, command=":WAVeform:DATA?",
            )
        return self._transfer()

    def _transfer(self, completed: Completion | None = None) -> Waveform:
        source = str(self.waveform_source)
        preamble = self.preamble
        if preamble.format is PreambleFormat.ASCII:
            raise InstrumentReplyError(
                instrument=self.name, command=":WAVeform:FORMat?", reply="ASC",
                why="set waveform_format to BYTE or WORD for binary transfer",
            )
        if preamble.type is RecordType.PEAK:
            raise InstrumentReplyError(
                instrument=self.name, command=":ACQuire:TYPE?", reply="PEAK",
                why="peak-detect records are (min, max) pairs; set acquisition_type",
            )
        unsigned = bool(self.waveform_unsigned)
        if preamble.format is PreambleFormat.WORD:
            order = "<" if self.waveform_byte_order is ByteOrder.LSB_FIRST else ">"
            dtype = np.dtype(f"{order}{'u' if unsigned else 'i'}2")
        else:
            dtype = np.dtype("u1" if unsigned else "i1")
        self.write(":WAVeform:DATA?")
        samples = np.frombuffer(self.read_block(), dtype=dtype)
        if samples.size == 0:
            raise InstrumentReplyError(instrument=self.name, command=":WAVeform:DATA?",
                                       reply=b"", why="the scope holds no record")
        return Waveform(
            time=preamble.time_axis(samples.size),
            volts=preamble.volts(samples),
            preamble=preamble,
            source=source,
            raw=samples,
            completed=completed,
        )

    def acquire_single(self, timeout_s: float = 10.0) -> Waveform:
        """Capture one triggered record and transfer it (:meth:`single`, then the transfer).

        Args:
            timeout_s: how long to wait for the trigger.

        Returns:
            The record; its :meth:`~Waveform.record` carries the trigger time.
        """
        completed = self.single(timeout_s)
        return self._transfer(completed)

    def read_records(self) -> list[WaveRecord]:
        """One triggered record for the daemon, or none when no trigger came in time.

        Returns:
            The record with its trigger time and clipping verdict, or ``[]``
            (the scope is stopped again so that the next poll starts afresh).
        """
        try:
            waveform = self.acquire_single(self.record_timeout_s)
        except CaptureTimeout:
            self.stop()
            return []
        return [waveform.record(adc_bits=self.adc_bits)]

    def read_block(self) -> bytes:
        """Read one definite-length block and the line feed that ends the response.

        Returns:
            The block's data bytes.

        Raises:
            InstrumentReplyError: not a block, or not terminated by a line feed.
        """
        head = self.read_bytes(2)
        digits = int(head[1:2]) if head[:1] == b"#" and head[1:2].isdigit() else 0
        size = parse_block_header(head + (self.read_bytes(digits) if digits else b""))
        data = self.read_bytes(size) if size else b""
        end = self.read_bytes(1)
        if len(data) != size or end != b"\n":
            raise InstrumentReplyError(
                instrument=self.name,
                command=":WAVeform:DATA?",
                reply=end,
                why=f"block of {size} bytes not followed by a line feed",
            )
        return bytes(data)

    # ---- daemon description -------------------------------------------------------------------

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``waveform``: one complete triggered record per poll (kind
            ``waveform``), with its trigger time and clipping verdict.
        """
        return [PollSpec("waveform", "V", self.read_records, 1.0, "voltage", PollKind.WAVEFORM)]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings.

        Returns:
            Specs for source, points, trigger, timebase and acquisition type and count.
        """
        names = {
            "waveform_source": "",
            "waveform_points": "",
            "trigger_source": "",
            "trigger_level": "V",
            "trigger_slope": "",
            "trigger_sweep": "",
            "timebase_scale": "s/div",
            "timebase_position": "s",
            "acquisition_type": "",
            "acquisition_count": "",
        }
        return [self._control(name, unit) for name, unit in names.items()]

    def _control(self, name: str, unit: str) -> ControlSpec:
        def set_value(value: Any) -> None:
            setattr(self, name, v.validate_setting(self, name, value))

        return ControlSpec(
            name=name,
            unit=unit,
            set=set_value,
            validate=lambda value: v.validate_setting(self, name, value),
            get=lambda: getattr(self, name),
            allowed=v.allowed_text(self, name),
        )

    def _single_action(self, timeout_s: float = 10.0) -> dict[str, int]:
        completed = self.single(timeout_s)
        return {"completed_ns": completed.estimate_ns,
                "uncertainty_ns": completed.uncertainty_ns}

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``single`` (timeout_s; answers when the acquisition completed),
            ``run`` and ``stop``.
        """
        return [
            ActionSpec("single", self._single_action, "arm one capture and wait for it",
                       ("timeout_s",)),
            ActionSpec("run", self.run, "acquire continuously"),
            ActionSpec("stop", self.stop, "stop acquiring"),
        ]
