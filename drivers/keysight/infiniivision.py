"""Keysight InfiniiVision oscilloscopes as digitizers for TES pulses and noise.

The scope is driven over SCPI; waveforms travel as IEEE 488.2 definite-length
binary blocks (``#8nnnnnnnn<bytes>`` followed by a line feed) of ``BYTE``
(8-bit) or ``WORD`` (16-bit) samples, scaled to volts with the preamble:

    volts = (sample - y_reference) * y_increment + y_origin
    time  = (index  - x_reference) * x_increment + x_origin

Interface::

    scope = InfiniiVision("TCPIP::192.168.1.20::INSTR")        # no I/O
    scope.configure_waveform("CHAN1", fmt=WaveformFormat.WORD, points=10_000)
    scope.trigger_source = "CHAN1"; scope.trigger_level = -0.02; scope.trigger_slope = "NEG"
    record = scope.acquire_single(timeout_s=5)   # :SINGle, wait (:TER?, *OPC?), fetch
    record.time, record.volts                    # numpy arrays (s, V); record.preamble
    scope.run(); noise = scope.fetch_waveform(); scope.stop()   # continuous records
    scope.ch_1.scale = 0.05; scope.ch_1.impedance = "FIFT"      # per-input settings

A pulse or noise record is a :class:`~drivers.keysight.waveform.Waveform`;
its :class:`~drivers.keysight.waveform.Preamble` keeps the scaling. Daemon
description: poll ``waveform`` (kind ``waveform``, volts), controls for
source, points, trigger and timebase, actions ``single``, ``run``, ``stop``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pymeasure.instruments import Channel, Instrument, SCPIMixin

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentError, InstrumentReplyError
from drivers.keysight.waveform import (
    ByteOrder,
    Preamble,
    PreambleFormat,
    Waveform,
    WaveformFormat,
    parse_block_header,
)
from drivers.readings import PollKind

__all__ = [
    "ByteOrder",
    "CaptureTimeout",
    "InfiniiVision",
    "Preamble",
    "PreambleFormat",
    "ScopeChannel",
    "Waveform",
    "WaveformFormat",
    "parse_block_header",
]

WAVEFORM_SOURCES = ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "MATH", "FUNC")
TRIGGER_SOURCES = ("CHAN1", "CHAN2", "CHAN3", "CHAN4", "EXT", "LINE", "WGEN")
TRIGGER_SLOPES = ("POS", "NEG", "EITH", "ALT")
POINTS_RANGE = (100, 8_000_000)


class CaptureTimeout(InstrumentError):
    """A single-shot capture saw no trigger (or did not finish) within its timeout."""


def _on_off(reply: str) -> bool:
    return reply.strip().upper() in ("1", "ON", "+1")


class ScopeChannel(Channel):
    """One analog input, ``CHANnel<n>``."""

    channel_label = "channel"

    display = v.control(
        ":CHAN{ch}:DISP?",
        ":CHAN{ch}:DISP %d",
        """Control whether the channel is displayed / acquired (bool).""",
        validator=v.in_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    scale = v.control(
        ":CHAN{ch}:SCAL?",
        ":CHAN{ch}:SCAL %g",
        """Control the vertical scale in V/div (1 mV/div to 5 V/div).""",
        validator=v.in_range,
        values=(1e-3, 5.0),
        unit="V/div",
    )
    offset = v.control(
        ":CHAN{ch}:OFFS?",
        ":CHAN{ch}:OFFS %g",
        """Control the vertical offset in V (-40 to 40 V; the scope limits it per scale).""",
        validator=v.in_range,
        values=(-40.0, 40.0),
        unit="V",
    )
    coupling = v.control(
        ":CHAN{ch}:COUP?",
        ":CHAN{ch}:COUP %s",
        """Control the input coupling, ``"AC"`` or ``"DC"``.""",
        validator=v.in_set,
        values=("AC", "DC"),
        cast=str,
    )
    impedance = v.control(
        ":CHAN{ch}:IMP?",
        ":CHAN{ch}:IMP %s",
        """Control the input impedance, ``"ONEM"`` (1 MOhm) or ``"FIFT"`` (50 Ohm).""",
        validator=v.in_set,
        values=("ONEM", "FIFT"),
        cast=str,
    )


class InfiniiVision(SCPIMixin, Instrument):
    """Keysight InfiniiVision oscilloscope (DSO-X / MSO-X 2000-6000) as a digitizer.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: passed to the VISA adapter (e.g. ``visa_library="@py"``).
    """

    #: Pause between two ``:TER?`` polls while waiting for a trigger.
    poll_interval_s = 0.01

    ch_1 = Instrument.ChannelCreator(ScopeChannel, 1)
    ch_2 = Instrument.ChannelCreator(ScopeChannel, 2)
    ch_3 = Instrument.ChannelCreator(ScopeChannel, 3)
    ch_4 = Instrument.ChannelCreator(ScopeChannel, 4)

    def __init__(self, adapter: Any, name: str = "InfiniiVision", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        kwargs.setdefault("timeout", 10_000)
        super().__init__(adapter, name, **kwargs)

    # ---- waveform transfer settings --------------------------------------------------------

    waveform_source = v.control(
        ":WAV:SOUR?",
        ":WAV:SOUR %s",
        """Control the waveform source, ``"CHAN1"`` .. ``"CHAN4"``, ``"MATH"`` or ``"FUNC"``.""",
        validator=v.in_set,
        values=WAVEFORM_SOURCES,
        cast=str,
    )
    waveform_format = v.control(
        ":WAV:FORM?",
        ":WAV:FORM %s",
        """Control the sample format (:class:`WaveformFormat`: ``BYTE`` or ``WORD``).""",
        validator=v.in_set,
        values=(WaveformFormat.BYTE, WaveformFormat.WORD),
        cast=str,
        get_process=lambda reply: WaveformFormat(reply.strip()),
    )
    waveform_byte_order = v.control(
        ":WAV:BYT?",
        ":WAV:BYT %s",
        """Control the byte order of WORD samples (:class:`ByteOrder`: ``LSBF`` / ``MSBF``).""",
        validator=v.in_set,
        values=tuple(ByteOrder),
        cast=str,
        get_process=lambda reply: ByteOrder(reply.strip()),
    )
    waveform_unsigned = v.control(
        ":WAV:UNS?",
        ":WAV:UNS %d",
        """Control whether samples are transferred unsigned (bool).""",
        validator=v.in_set,
        values={True: 1, False: 0},
        map_values=True,
        cast=str,
        get_process=lambda reply: 1 if _on_off(reply) else 0,
    )
    waveform_points = v.control(
        ":WAV:POIN?",
        ":WAV:POIN %d",
        """Control the number of points to transfer (100 to 8 000 000; the scope may round).""",
        validator=v.int_in_range,
        values=POINTS_RANGE,
        cast=int,
    )
    waveform_points_mode = v.control(
        ":WAV:POIN:MODE?",
        ":WAV:POIN:MODE %s",
        """Control the points mode: ``"NORM"`` (screen), ``"MAX"`` or ``"RAW"`` (memory).""",
        validator=v.in_set,
        values=("NORM", "MAX", "RAW"),
        cast=str,
    )
    preamble = v.measurement(
        ":WAV:PRE?",
        """Get the waveform preamble (:class:`Preamble`) of the present source.""",
        cast=str,
        maxsplit=0,
        get_process=Preamble.parse,
    )

    # ---- trigger, timebase, acquisition ------------------------------------------------------

    trigger_source = v.control(
        ":TRIG:EDGE:SOUR?",
        ":TRIG:EDGE:SOUR %s",
        """Control the edge-trigger source: ``"CHAN1"`` .. ``"CHAN4"``, ``"EXT"``, ``"LINE"``.""",
        validator=v.in_set,
        values=TRIGGER_SOURCES,
        cast=str,
    )
    trigger_level = v.control(
        ":TRIG:EDGE:LEV?",
        ":TRIG:EDGE:LEV %g",
        """Control the edge-trigger level in V (-40 to 40 V; the scope limits it per scale).""",
        validator=v.in_range,
        values=(-40.0, 40.0),
        unit="V",
    )
    trigger_slope = v.control(
        ":TRIG:EDGE:SLOP?",
        ":TRIG:EDGE:SLOP %s",
        """Control the trigger slope: ``"POS"``, ``"NEG"``, ``"EITH"`` (either) or ``"ALT"``.""",
        validator=v.in_set,
        values=TRIGGER_SLOPES,
        cast=str,
    )
    trigger_sweep = v.control(
        ":TRIG:SWE?",
        ":TRIG:SWE %s",
        """Control the trigger sweep: ``"NORM"`` (wait for triggers) or ``"AUTO"``.""",
        validator=v.in_set,
        values=("NORM", "AUTO"),
        cast=str,
    )
    timebase_scale = v.control(
        ":TIM:SCAL?",
        ":TIM:SCAL %g",
        """Control the horizontal scale in s/div (1 ns/div to 50 s/div).""",
        validator=v.in_range,
        values=(1e-9, 50.0),
        unit="s/div",
    )
    timebase_position = v.control(
        ":TIM:POS?",
        ":TIM:POS %g",
        """Control the trigger-to-reference delay in s (-500 to 500 s; pretrigger < 0).""",
        validator=v.in_range,
        values=(-500.0, 500.0),
        unit="s",
    )
    acquisition_type = v.control(
        ":ACQ:TYPE?",
        ":ACQ:TYPE %s",
        """Control the acquisition type: ``"NORM"``, ``"AVER"``, ``"HRES"`` or ``"PEAK"``.""",
        validator=v.in_set,
        values=("NORM", "AVER", "HRES", "PEAK"),
        cast=str,
    )
    acquisition_count = v.control(
        ":ACQ:COUN?",
        ":ACQ:COUN %d",
        """Control the number of averages in ``AVER`` mode (2 to 65536).""",
        validator=v.int_in_range,
        values=(2, 65536),
        cast=int,
    )
    trigger_event = v.measurement(
        ":TER?",
        """Get and clear the trigger event register (bool: a trigger occurred since last read).""",
        cast=str,
        get_process=_on_off,
    )

    # ---- capture ---------------------------------------------------------------------------

    def run(self) -> None:
        """Acquire continuously (``:RUN``)."""
        self.write(":RUN")

    def stop(self) -> None:
        """Stop acquiring; the last record stays in memory (``:STOP``)."""
        self.write(":STOP")

    def single(self, timeout_s: float = 10.0) -> None:
        """Arm one acquisition and wait until it has triggered and completed.

        Sends ``:TER?`` (to clear a stale trigger event), ``:SING``, polls
        ``:TER?`` until it reports a trigger, then ``*OPC?``.

        Args:
            timeout_s: give up after this long (0.001 to 3600 s).

        Raises:
            CaptureTimeout: no trigger within ``timeout_s``; the scope stays armed.
        """
        limit = v.require_in_range(
            timeout_s, 1e-3, 3600.0, instrument=self.name, command="single timeout_s", unit="s"
        )
        deadline = time.monotonic() + limit
        _ = self.trigger_event
        self.write(":SING")
        while not self.trigger_event:
            if time.monotonic() > deadline:
                raise CaptureTimeout(
                    f"no trigger within {limit:g} s", instrument=self.name, command=":SING"
                )
            time.sleep(self.poll_interval_s)
        self.ask("*OPC?")

    def configure_waveform(
        self,
        source: str = "CHAN1",
        *,
        fmt: WaveformFormat | str = WaveformFormat.WORD,
        points: int | None = None,
        byte_order: ByteOrder | str = ByteOrder.LSB_FIRST,
        unsigned: bool = False,
        points_mode: str = "RAW",
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
        """Transfer the record of the present source and scale it.

        Queries the source, the preamble, the byte order and signedness,
        then ``:WAV:DATA?``.

        Returns:
            The record (time axis and volts).

        Raises:
            InstrumentReplyError: malformed preamble or block.
        """
        source = str(self.waveform_source)
        preamble = self.preamble
        if preamble.format is PreambleFormat.ASCII:
            raise InstrumentReplyError(
                instrument=self.name,
                command=":WAV:FORM?",
                reply="ASC",
                why="set waveform_format to BYTE or WORD for binary transfer",
            )
        unsigned = bool(self.waveform_unsigned)
        if preamble.format is PreambleFormat.WORD:
            order = "<" if self.waveform_byte_order is ByteOrder.LSB_FIRST else ">"
            dtype = np.dtype(f"{order}{'u' if unsigned else 'i'}2")
        else:
            dtype = np.dtype("u1" if unsigned else "i1")
        self.write(":WAV:DATA?")
        samples = np.frombuffer(self.read_block(), dtype=dtype)
        return Waveform(
            time=preamble.time_axis(samples.size),
            volts=preamble.volts(samples),
            preamble=preamble,
            source=source,
            raw=samples,
        )

    def acquire_single(self, timeout_s: float = 10.0) -> Waveform:
        """Capture one triggered record and transfer it (:meth:`single` + :meth:`fetch_waveform`).

        Args:
            timeout_s: how long to wait for the trigger.

        Returns:
            The record.
        """
        self.single(timeout_s)
        return self.fetch_waveform()

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
                command=":WAV:DATA?",
                reply=end,
                why=f"block of {size} bytes not followed by a line feed",
            )
        return bytes(data)

    # ---- daemon description -------------------------------------------------------------------

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``waveform``: the present record (kind ``waveform``): a :class:`Waveform`,
            whose ``volts`` and ``sample_interval`` the daemon publishes.
        """
        return [
            PollSpec(
                "waveform", "V", lambda: self.fetch_waveform().record(), 1.0, "voltage",
                PollKind.WAVEFORM,
            ),
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings.

        Returns:
            Specs for source, points, trigger source/level/slope/sweep and timebase.
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

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``single`` (timeout_s), ``run`` and ``stop``.
        """
        return [
            ActionSpec("single", self.single, "arm one capture and wait for it", ("timeout_s",)),
            ActionSpec("run", self.run, "acquire continuously"),
            ActionSpec("stop", self.stop, "stop acquiring"),
        ]
