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

**Triggered records at rate: segmented memory.** One acquisition per poll
caps a scope at a few records per second. :meth:`InfiniiVision.acquire_segments`
arms a segmented acquisition (``:ACQuire:MODE SEGMented``,
``:ACQuire:SEGMented:COUNt n``, ``:SINGle``): the scope fills ``n`` segments,
each from its own trigger and time-tagged, while the driver polls how many
are in (``:WAVeform:SEGMented:COUNt?``). One transfer then brings them all
(``:WAVeform:SEGMented:ALL ON``: ``:WAVeform:DATA?`` returns segments x
points) with all their time tags (``:WAVeform:SEGMented:XLISt? TTAG``): a list
of records, each with its own trigger time
(:func:`~drivers.keysight.waveform.segment_trigger_times`), none twice (a
transfer is read once; the next poll arms a new acquisition). When fewer
than ``n`` triggers came within ``segment_timeout_s`` the scope is stopped
and the segments it has are read. From the time tags the driver keeps the
trigger rate, dead time corrected (:func:`~drivers.keysight.waveform.live_intervals`):
poll ``trigger_rate`` publishes it.

**Noise.** :meth:`InfiniiVision.read_noise` takes one long real-time record
(``noise_points``), cuts it into traces of ``noise_trace_points`` and drops
(vetoes) every trace a pulse reaches into: one whose samples stray more than
``veto_sigma`` robust standard deviations (from the record's median absolute
deviation, at least one ADC level) from the record's median, or touch the
ADC rails. What is left is
detector noise for a PSD.

Interface::

    scope = InfiniiVision("TCPIP::192.168.1.20::INSTR")        # no I/O
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points=10_000)
    scope.trigger_source = "CHAN1"; scope.trigger_level = -0.02; scope.trigger_slope = "NEG"
    record = scope.acquire_single(timeout_s=5)   # :SINGle, wait for the Run bit, fetch
    record.time, record.volts, record.record()   # numpy arrays; the daemon's WaveRecord
    scope.stop(); scope.fetch_waveform()         # the record held by a stopped scope
    scope.ch_1.scale = 0.05; scope.ch_1.impedance = "FIFT"      # per-input settings
    records = scope.acquire_segments(100, timeout_s=2)          # up to 100 triggered records
    scope.read_trigger_rate()                                    # triggers/s since last asked
    scope.read_noise()                                           # pulse-free noise traces

Daemon description: polls ``waveform`` (one record per poll), ``segments``
(every segment of one segmented acquisition per poll), ``noise`` (vetoed noise
traces), all kind ``waveform`` in volts, and ``trigger_rate`` (Hz, scalar);
controls for source, points, trigger, timebase and acquisition, actions
``single``, ``run``, ``stop``.
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
    AcquisitionMode,
    AcquisitionType,
    Coupling,
    Impedance,
    PointsMode,
    ScopeChannel,
    TriggerSlope,
    TriggerSweep,
    XListType,
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
    live_intervals,
    parse_block_header,
    segment_records,
    segment_trigger_times,
)
from drivers.readings import PollKind, Reading, WaveRecord

__all__ = [
    "AcquisitionMode",
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
    "XListType",
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
SEGMENTS_RANGE = (2, 1000)
#: The trigger's re-arm time between segments (the 3000T's data sheet: about 1 us).
SEGMENT_REARM_S = 1e-6


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
        segments: segments per segmented acquisition (poll ``segments``; 2 to 1000).
        segment_points: points per segment (None: leave ``:WAVeform:POINts`` as it is).
        segment_timeout_s: how long a ``segments`` poll waits for all its triggers
            before it reads the segments that came.
        noise_points: points of the long record a ``noise`` poll takes.
        noise_trace_points: points per noise trace cut from it.
        veto_sigma: a noise trace straying this many robust standard deviations
            from the record's median holds a pulse and is dropped.
        **kwargs: passed to the VISA adapter (e.g. ``visa_library="@py"``).
    """

    #: Pause between two polls of the Run bit while an acquisition completes.
    poll_interval_s = 0.01

    ch_1 = Instrument.ChannelCreator(ScopeChannel, 1)
    ch_2 = Instrument.ChannelCreator(ScopeChannel, 2)
    ch_3 = Instrument.ChannelCreator(ScopeChannel, 3)
    ch_4 = Instrument.ChannelCreator(ScopeChannel, 4)

    def __init__(self, adapter: Any, name: str = "InfiniiVision", *, adc_bits: int = 8,
                 record_timeout_s: float = 0.5, segments: int = 100,
                 segment_points: int | None = None, segment_timeout_s: float = 2.0,
                 noise_points: int = 62_500, noise_trace_points: int = 8192,
                 veto_sigma: float = 6.0, **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        self.adc_bits = v.require_in_set(adc_bits, (8, 10, 12, 14), instrument=name,
                                         command="adc_bits")
        self.record_timeout_s = v.require_in_range(record_timeout_s, 1e-3, 60.0,
                                                   instrument=name,
                                                   command="record_timeout_s", unit="s")
        self.segments = v.require_in_range(segments, *SEGMENTS_RANGE, instrument=name,
                                           command="segments", integer=True)
        self.segment_points = (None if segment_points is None else v.require_in_range(
            segment_points, *POINTS_RANGE, instrument=name, command="segment_points",
            integer=True))
        self.segment_timeout_s = v.require_in_range(segment_timeout_s, 1e-3, 3600.0,
                                                    instrument=name,
                                                    command="segment_timeout_s", unit="s")
        self.noise_points = v.require_in_range(noise_points, *POINTS_RANGE, instrument=name,
                                               command="noise_points", integer=True)
        self.noise_trace_points = v.require_in_range(noise_trace_points, 16, noise_points,
                                                     instrument=name,
                                                     command="noise_trace_points", integer=True)
        self.veto_sigma = v.require_in_range(veto_sigma, 1.0, 1000.0, instrument=name,
                                             command="veto_sigma")
        # What this driver last set, so that switching between single records, segments
        # and noise sends only what changes (None: not set by this driver yet).
        self._mode: AcquisitionMode | None = None
        self._points: int | None = None
        self._segments_set: int | None = None
        self._all_segments: bool | None = None
        # Trigger-rate bookkeeping since the last read_trigger_rate(): intervals and live s.
        self._rate_intervals = 0
        self._rate_live_s = 0.0
        self.transfers = 0  # segmented transfers read
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

    acquisition_mode = v.control(
        ":ACQuire:MODE?", ":ACQuire:MODE %s",
        """Control the acquisition mode (:class:`AcquisitionMode`: ``RTIMe`` or ``SEGMented``).""",
        validator=v.in_set, values=tuple(AcquisitionMode), cast=str,
        get_process=lambda reply: AcquisitionMode(reply.strip()[:4]),
        set_process=lambda mode: {"RTIM": "RTIMe", "SEGM": "SEGMented"}[str(mode)],
    )
    segment_count = v.control(
        ":ACQuire:SEGMented:COUNt?", ":ACQuire:SEGMented:COUNt %d",
        """Control the segments per segmented acquisition (2 to 1000).""",
        validator=v.int_in_range, values=SEGMENTS_RANGE, cast=int,
    )
    segment_index = v.control(
        ":ACQuire:SEGMented:INDex?", ":ACQuire:SEGMented:INDex %d",
        """Control the segment the waveform queries read (1 to 1000).""",
        validator=v.int_in_range, values=(1, 1000), cast=int,
    )
    waveform_all_segments = v.control(
        ":WAVeform:SEGMented:ALL?", ":WAVeform:SEGMented:ALL %d",
        """Control whether ``:WAVeform:DATA?`` returns every segment (bool).""",
        validator=v.in_set, values={True: 1, False: 0}, map_values=True, cast=str,
        get_process=lambda reply: 1 if on_off(reply) else 0,
    )
    segments_acquired = v.measurement(
        ":WAVeform:SEGMented:COUNt?",
        """Get the segments acquired (int; also while a segmented acquisition runs).""",
        cast=int,
    )
    segment_time_tag = v.measurement(
        ":WAVeform:SEGMented:TTAG?",
        """Get the selected segment's trigger time after the first segment's, s.""",
        unit="s",
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
        dtype = self._sample_dtype(preamble)
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
        if self._mode is AcquisitionMode.SEGMENTED:  # this driver left segmented memory on
            self._use(AcquisitionMode.REAL_TIME, None)
        try:
            waveform = self.acquire_single(self.record_timeout_s)
        except CaptureTimeout:
            self.stop()
            return []
        return [waveform.record(adc_bits=self.adc_bits)]

    def segment_time_tags(self) -> list[float]:
        """Every segment's time tag (s after the first segment's trigger), in one query.

        Raises:
            InstrumentReplyError: the reply is not a block of comma-separated numbers.
        """
        self.write(f":WAVeform:SEGMented:XLISt? {XListType.TIME_TAG.value}")
        text = self.read_block().decode("ascii", errors="replace").strip()
        try:
            return [float(x) for x in text.split(",")] if text else []
        except ValueError:
            raise InstrumentReplyError(instrument=self.name,
                                       command=":WAVeform:SEGMented:XLISt? TTAG",
                                       reply=text[:80], why="not comma-separated numbers") \
                from None

    def _use(self, mode: AcquisitionMode, points: int | None) -> None:
        """Switch acquisition mode and points, sending only what this driver has not set."""
        if self._mode is not mode:
            self.acquisition_mode = mode
            self._mode = mode
        if points is not None and self._points != points:
            self.waveform_points = points
            self._points = points

    def acquire_segments(self, count: int | None = None,
                         timeout_s: float | None = None) -> list[WaveRecord]:
        """One segmented acquisition: up to ``count`` triggered records, each time-stamped.

        Arms the acquisition, waits until its last segment is in (or ``timeout_s``
        passes: the scope is stopped and the segments it has are read), transfers
        every segment and its time tag at once and returns one record per segment
        (trigger time, clipping verdict, segment number and time tag in ``meta``).
        The trigger-rate bookkeeping takes the transfer's intervals.

        Args:
            count: segments (2 to 1000); default :attr:`segments`.
            timeout_s: default :attr:`segment_timeout_s`.

        Returns:
            The records, oldest first; ``[]`` when no trigger came.
        """
        count = self.segments if count is None else v.require_in_range(
            count, *SEGMENTS_RANGE, instrument=self.name, command="segments", integer=True)
        limit = self.segment_timeout_s if timeout_s is None else v.require_in_range(
            timeout_s, 1e-3, 3600.0, instrument=self.name, command="segment timeout_s", unit="s")
        self._use(AcquisitionMode.SEGMENTED, self.segment_points)
        if self._segments_set != count:
            self.segment_count = count
            self._segments_set = count
        deadline = time.monotonic() + limit
        self.write(":SINGle")
        # Bounds on when the newest segment arrived: the last query that still found fewer,
        # and the reply that found it. They anchor every segment's time tag in host time.
        after = time.time_ns()
        seen = 0
        completed: Completion | None = None
        while True:
            sent = time.time_ns()
            n = int(self.segments_acquired)
            if n > seen:
                seen, completed = n, Completion(after, time.time_ns())
            if n >= count:
                break
            after = sent
            if time.monotonic() > deadline:
                self.stop()  # the segments acquired so far stay readable
                n = int(self.segments_acquired)
                if n > seen:  # one more came between the last poll and the stop
                    seen, completed = n, Completion(after, time.time_ns())
                break
            time.sleep(self.poll_interval_s)
        if seen == 0 or completed is None:
            return []
        # Complete records only: the last segment counted, the acquisition must also have
        # ended (the Run bit falls with it; a stopped scope has ended it already).
        while self.running:
            if time.monotonic() > deadline + limit:
                raise AcquisitionRunning(
                    f"{seen} segments counted but the acquisition still runs",
                    instrument=self.name, command=":OPERegister:CONDition?")
            time.sleep(self.poll_interval_s)
        return self._transfer_segments(seen, completed)

    def _transfer_segments(self, anchor_count: int, completed: Completion) -> list[WaveRecord]:
        if self._all_segments is not True:
            self.waveform_all_segments = True
            self._all_segments = True
        source = str(self.waveform_source)
        preamble = self.preamble
        if preamble.format is PreambleFormat.ASCII:
            raise InstrumentReplyError(
                instrument=self.name, command=":WAVeform:FORMat?", reply="ASC",
                why="set waveform_format to BYTE or WORD for binary transfer",
            )
        tags = self.segment_time_tags()
        dtype = self._sample_dtype(preamble)
        self.write(":WAVeform:DATA?")
        samples = np.frombuffer(self.read_block(), dtype=dtype)
        points = preamble.points
        if not tags or points <= 0 or samples.size != len(tags) * points:
            raise InstrumentReplyError(
                instrument=self.name, command=":WAVeform:DATA?",
                reply=f"{samples.size} samples",
                why=f"expected {len(tags)} segments x {points} points")
        rows = samples.reshape(len(tags), points)
        anchor = min(anchor_count, len(tags)) - 1
        times, uncertainty = segment_trigger_times(completed, preamble, tags, anchor)
        span = points * preamble.x_increment
        live = live_intervals(tags, span, SEGMENT_REARM_S)
        self._rate_intervals += int(live.size)
        self._rate_live_s += float(live.sum())
        self.transfers += 1
        return segment_records(rows, preamble, source, times, adc_bits=self.adc_bits,
                               uncertainty_ns=uncertainty, time_tags=tags)

    def _sample_dtype(self, preamble: Preamble) -> np.dtype:
        unsigned = bool(self.waveform_unsigned)
        if preamble.format is PreambleFormat.WORD:
            order = "<" if self.waveform_byte_order is ByteOrder.LSB_FIRST else ">"
            return np.dtype(f"{order}{'u' if unsigned else 'i'}2")
        return np.dtype("u1" if unsigned else "i1")

    def read_segments(self) -> list[WaveRecord]:
        """Every record of one segmented acquisition, for the daemon (see :meth:`acquire_segments`)."""
        return self.acquire_segments()

    def read_trigger_rate(self) -> list[Reading]:
        """The trigger rate (Hz, dead time corrected) over the segments read since the last call.

        Returns:
            One reading, or none while fewer than two intervals were seen.
        """
        intervals, live = self._rate_intervals, self._rate_live_s
        if intervals < 2 or live <= 0:
            return []
        self._rate_intervals, self._rate_live_s = 0, 0.0
        # (m - 1) / sum of m exponential waits is the unbiased estimate of their rate.
        return [Reading((intervals - 1) / live, t_ns=time.time_ns())]

    def read_noise(self) -> list[WaveRecord]:
        """Pulse-free noise traces from one long real-time record (see the module docstring).

        Returns:
            The traces that passed the veto (each with ``meta["noise"]`` true and
            the record's veto count); ``[]`` when no acquisition completed in time.
        """
        self._use(AcquisitionMode.REAL_TIME, self.noise_points)
        try:
            waveform = self.acquire_single(self.record_timeout_s)
        except CaptureTimeout:
            self.stop()
            return []
        raw = waveform.raw
        assert raw is not None
        n = self.noise_trace_points
        traces = raw.size // n
        if traces == 0:
            return []
        rows = raw[: traces * n].reshape(traces, n).astype(np.float64)
        median = float(np.median(rows))
        # The robust spread, at least one ADC level: quiet 8-bit noise is mostly one code.
        level = 2.0 ** max(0, raw.dtype.itemsize * 8 - self.adc_bits)
        sigma = max(1.4826 * float(np.median(np.abs(rows - median))), level)
        low, high = waveform.rails(self.adc_bits)
        stray = np.abs(rows - median).max(axis=1)
        at_rails = ((raw[: traces * n].reshape(traces, n) <= low)
                    | (raw[: traces * n].reshape(traces, n) >= high)).any(axis=1)
        keep = (stray <= self.veto_sigma * sigma) & ~at_rails
        vetoed = int(traces - keep.sum())
        t_first = waveform.record(adc_bits=None).first_sample_ns
        out = []
        for i in np.nonzero(keep)[0].tolist():
            t0 = None if t_first is None else t_first + round(i * n * waveform.sample_interval
                                                             * 1e9)
            out.append(WaveRecord(raw[i * n:(i + 1) * n], waveform.sample_interval,
                                  waveform.scale, waveform.offset, 0, t0,
                                  meta={"source": waveform.source, "noise": True,
                                        "trace": i, "vetoed": vetoed}))
        return out

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
            ``waveform``), with its trigger time and clipping verdict;
            ``segments``: every record of one segmented acquisition per poll, each
            with its own trigger time (period 0.01 s: the next acquisition is armed
            as soon as one is read); ``noise``: vetoed noise traces; ``trigger_rate``
            (Hz): the dead-time-corrected trigger rate of the segments read.
        """
        return [
            PollSpec("waveform", "V", self.read_records, 1.0, "voltage", PollKind.WAVEFORM),
            PollSpec("segments", "V", self.read_segments, 0.01, "voltage", PollKind.WAVEFORM),
            PollSpec("noise", "V", self.read_noise, 5.0, "voltage", PollKind.WAVEFORM),
            PollSpec("trigger_rate", "Hz", self.read_trigger_rate, 1.0, "rate"),
        ]

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
            "acquisition_mode": "",
            "segment_count": "",
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
