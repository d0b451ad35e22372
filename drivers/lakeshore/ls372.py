"""Driver for the Lake Shore Model 372 AC resistance bridge and temperature controller.

Connect over Ethernet (``TCPIP::<host>::7777::SOCKET``) or serial (57600 baud,
7 data bits, odd parity, 1 stop bit; set by default). The constructor sends
nothing.

Interface (see the channel modules for the properties of each part):

* ``ls.inputs`` / ``ls.ch_1`` … ``ls.ch_16`` —
  :class:`~drivers.lakeshore.ls372_intype.ScannerInput`, ``ls.ch_A`` —
  :class:`~drivers.lakeshore.ls372_intype.ControlInput` (readings with the
  instrument's verdict, scan settings, excitation and range in V / A / Ω from
  each kind's own table, filter, name, temperature limit);
* ``ls.measurement_frequency`` (``FREQ 0``, Hz): the excitation frequency
  of the scanner channels (the control input has its own, ``ls.ch_A.excitation_frequency``);
* ``ls.sample_heater`` (0), ``ls.warmup_heater`` (1), ``ls.still_heater`` (2),
  also ``ls.outputs[n]`` — :mod:`~drivers.lakeshore.ls372_outputs`;
* ``ls.scanner`` (``SCAN``): :class:`ScanState` (``channel``, ``autoscan``),
  with ``ls.active_channel`` and ``ls.autoscan``; ``ls.scan`` is a
  :class:`~drivers.lakeshore.ls372_scan.ScanTracker` kept up to date by
  :meth:`LakeShore372.refresh_scan` and by every ``SCAN`` / ``INSET`` sent
  through this driver;
* curves: ``upload_curve`` (paced, every point read back), ``read_curve``,
  ``curve_header``, ... from :class:`~drivers.lakeshore.curves.CurveMethods`;
* zone tables: ``ls.sample_heater.zones`` / ``zone(n)`` / ``set_zone(n, row)``
  (and the warm-up heater's);
* ``all_heaters_off()``;
* the daemon's view (:class:`~drivers.common.Describable`):

  - poll specs ``ch<n>`` (K) and ``ch<n>_ohms`` (Ω) for every *enabled*
    scanner channel, with ``fresh`` wired to the scanner timing; ``A`` and
    ``A_ohms`` when the control input is enabled -- every one a reading and
    its ``RDGST?`` in one exchange, flagged as the instrument says;
    ``sample_heater`` and ``warmup_heater`` (%, with ``HTRST?``: a heater
    fault flags ``OUTPUT_FAULT``), ``still`` (%);
  - control specs ``setpoint`` (K), ``heater_range`` (A), ``manual_output``
    (%), ``pid`` ((P, I, D)), ``ramp_rate`` (K/min), ``ramp_enabled``,
    ``heater_mode`` (OutputMode), ``control_input``, ``still_output`` (%),
    ``still_on``, ``warmup_on``, ``scan_channel``, ``autoscan``, and
    ``tlimit_A``, ``tlimit_1`` … ``tlimit_16`` (K, the hardware temperature
    limit of each input: give it in the daemon config's ``setup:``);
  - actions ``start_ramp(target, rate)``, ``stop_ramp()``,
    ``all_heaters_off()``, ``select_channel(channel, autoscan)``,
    ``upload_curve(number, points, name, serial)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from pymeasure.instruments import Instrument

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.lakeshore.curves import CurveMethods
from drivers.lakeshore.loops import BOOL_CODES
from drivers.lakeshore.ls372_codes import FREQUENCIES
from drivers.lakeshore.ls372_inputs import ScanSettings
from drivers.lakeshore.ls372_intype import ControlInput, ScannerInput
from drivers.lakeshore.ls372_outputs import SampleHeater, StillHeater, WarmupHeater
from drivers.lakeshore.ls372_scan import SCANNER_CHANNELS, ScanTracker
from drivers.lakeshore.wire import (
    LakeShoreInstrument,
    Structured,
    field_property,
    reply_fields,
    reply_int,
    structured,
    validate_field,
)
from drivers.readings import Reading
from drivers.validators import allowed_text, control, in_set, int_in_range, validate_setting

INPUT_IDS: tuple[str | int, ...] = ("A", *SCANNER_CHANNELS)


@dataclass(frozen=True)
class ScanState(Structured):
    """``SCAN``: the active scanner channel and whether autoscan is on.

    Attributes:
        channel: active scanner channel (1–16).
        autoscan: autoscan on.
    """

    channel: int
    autoscan: bool

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "channel": (int_in_range, (1, 16), ""),
        "autoscan": (in_set, BOOL_CODES, ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> ScanState:
        """Parse a ``SCAN?`` reply such as ``01,1``.

        Args:
            reply: the reply.

        Returns:
            The state.
        """
        f = reply_fields(reply, 2)
        return cls(reply_int(f[0]), bool(reply_int(f[1])))

    def wire(self) -> tuple[str, ...]:
        """Validate and format the ``SCAN`` arguments.

        Returns:
            ``(channel, autoscan)`` as text.
        """
        c = self.checked()
        return (str(c["channel"]), str(BOOL_CODES[c["autoscan"]]))


def _as(cls: Any, value: Any) -> Any:
    return value if isinstance(value, cls) else cls(*value)


def _scanner_was_set(ls: LakeShore372, value: Any) -> None:
    state = _as(ScanState, value)
    ls.scan.switched(state.channel, state.autoscan)


class LakeShore372(LakeShoreInstrument, CurveMethods):
    """Lake Shore Model 372 AC resistance bridge: 16 scanner channels, input A, 3 outputs.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        time_scale: instrument seconds per real second, for the scan timing
            (1 for hardware; a simulator may run faster).
        scan_refresh_s: how old a ``SCAN?`` observation may be before a
            ``fresh`` check asks again.
        **kwargs: adapter settings (``timeout`` in ms, ...).
    """

    inputs = Instrument.MultiChannelCreator(
        (ControlInput, *[ScannerInput] * len(SCANNER_CHANNELS)), list(INPUT_IDS)
    )
    sample_heater = Instrument.ChannelCreator(SampleHeater, 0, collection="outputs")
    warmup_heater = Instrument.ChannelCreator(WarmupHeater, 1, collection="outputs")
    still_heater = Instrument.ChannelCreator(StillHeater, 2, collection="outputs")

    scanner = control(
        "SCAN?",
        "SCAN %s,%s",
        """Control the scanner (ScanState: channel 1-16, autoscan); switching starts
        the new channel's pause.""",
        validator=structured,
        values=ScanState,
        cast=str,
        get_process=ScanState.from_reply,
        get_process_list=ScanState.from_reply,
        after_set=_scanner_was_set,
    )
    active_channel = field_property(
        "scanner", "channel", "Control the active scanner channel (int, 1-16)."
    )
    autoscan = field_property("scanner", "autoscan", "Control whether autoscan is on (bool).")
    measurement_frequency = control(
        "FREQ? 0",
        "FREQ 0,%d",
        """Control the excitation frequency of the scanner channels in hertz, one for all
        sixteen (float: 9.8, 11.6, 13.7, 16.2 or 18.2).""",
        validator=in_set,
        values=FREQUENCIES,
        map_values=True,
        unit="Hz",
        get_process=reply_int,
    )

    def __init__(
        self,
        adapter: Any,
        name: str = "Lake Shore 372",
        *,
        time_scale: float = 1.0,
        scan_refresh_s: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(adapter, name, **kwargs)
        self.scan = ScanTracker(time_scale=time_scale)
        self.scan_refresh_s = scan_refresh_s
        self._scan_checked_at: float | None = None

    # ---- scanner -------------------------------------------------------------------------

    def scan_settings_changed(self, channel: Any, settings: ScanSettings) -> None:
        """Keep the scan tracker in step after an ``INSET`` was sent (called by the input).

        Args:
            channel: the input id.
            settings: the settings sent.
        """
        if channel in SCANNER_CHANNELS:
            self.scan.set_timing(channel, settings.enabled, settings.dwell, settings.pause)

    def refresh_scan(self, settings: bool = False) -> ScanState:
        """Ask the scanner state (``SCAN?``) and feed the tracker.

        Args:
            settings: also re-read ``INSET?`` of all 16 channels (done anyway
                the first time).

        Returns:
            The scanner state.
        """
        if settings or not self.scan.configured:
            for ch in SCANNER_CHANNELS:
                s = self.inputs[ch].scan_settings
                self.scan.set_timing(ch, s.enabled, s.dwell, s.pause)
        state: ScanState = self.scanner
        self.scan.observe(state.channel, state.autoscan)
        self._scan_checked_at = self.scan.clock()
        return state

    def select_channel(self, channel: int, autoscan: bool = False) -> None:
        """Switch the scanner to ``channel`` (``SCAN``); its pause starts now.

        Args:
            channel: 1–16.
            autoscan: continue scanning from there.
        """
        self.scanner = ScanState(channel, autoscan)

    def scanner_fresh(self, channel: int, key: str = "K") -> bool:
        """Whether scanner ``channel`` has a new reading since it was last read as ``key``.

        Asks ``SCAN?`` when the last observation is older than ``scan_refresh_s``.

        Args:
            channel: 1–16.
            key: which reading (``"K"`` or ``"ohms"``) -- each is tracked on its own.

        Returns:
            True when a read would return a new value.
        """
        now = self.scan.clock()
        if self._scan_checked_at is None or now - self._scan_checked_at >= self.scan_refresh_s:
            self.refresh_scan()
        return self.scan.is_fresh(channel, key=key)

    def read_scanner(self, channel: int | str, key: str = "K") -> Reading:
        """Read an input's temperature (``key="K"``) or resistance (``"ohms"``), noting the read.

        The reading and ``RDGST?`` travel in one exchange, so a scanner
        channel costs one round trip however many flags it carries.

        Args:
            channel: 1–16 or ``"A"``.
            key: ``"K"`` or ``"ohms"``.

        Returns:
            The reading with the instrument's verdict as quality flags.
        """
        chan = self.inputs[channel]
        reading: Reading = chan.kelvin_reading if key == "K" else chan.resistance_reading
        if channel in SCANNER_CHANNELS:
            self.scan.mark_read(int(channel), key=key)
        return reading

    # ---- safety ----------------------------------------------------------------------------

    def all_heaters_off(self) -> None:
        """Switch all three outputs off (``RANGE o,0``); the safe state."""
        for output in (self.sample_heater, self.warmup_heater, self.still_heater):
            output.off()

    # ---- daemon view -----------------------------------------------------------------------

    def poll_specs(self) -> list[PollSpec]:
        """What the daemon can poll; asks ``INSET?`` of every input to find the enabled ones.

        Returns:
            Poll specs (see the module docstring for the names).
        """
        self.refresh_scan(settings=True)
        specs: list[PollSpec] = []
        if self.ch_A.scan_settings.enabled:
            for key, unit, quantity in (("K", "K", "temperature"), ("ohms", "Ohm", "resistance")):
                suffix = "" if key == "K" else "_ohms"
                specs.append(
                    PollSpec(
                        f"A{suffix}",
                        unit,
                        partial(self.read_scanner, "A", key),
                        1.0,
                        quantity,
                    )
                )
        for ch in SCANNER_CHANNELS:
            if not self.scan.timings[ch].enabled:
                continue
            for key, unit, quantity in (("K", "K", "temperature"), ("ohms", "Ohm", "resistance")):
                suffix = "" if key == "K" else "_ohms"
                specs.append(
                    PollSpec(
                        f"ch{ch}{suffix}",
                        unit,
                        partial(self.read_scanner, ch, key),
                        1.0,
                        quantity,
                        fresh=partial(self.scanner_fresh, ch, key),
                    )
                )
        for name, heater in (("sample_heater", self.sample_heater),
                             ("warmup_heater", self.warmup_heater)):
            specs.append(PollSpec(name, "%", partial(getattr, heater, "heater_output_reading"),
                                  2.0, "heater_output"))
        specs.append(
            PollSpec("still", "%", lambda: Reading.of(self.still_heater.still_output), 5.0,
                     "heater_output")
        )
        return specs

    def _prop_spec(self, name: str, obj: Any, attr: str) -> ControlSpec:
        prop = getattr(type(obj), attr)
        return ControlSpec(
            name=name,
            unit=prop.unit,
            set=partial(setattr, obj, attr),
            validate=partial(validate_setting, obj, attr),
            get=partial(getattr, obj, attr),
            allowed=allowed_text(obj, attr),
        )

    def _field_spec(
        self, name: str, obj: Any, group: str, field: str, attr: str, unit: str, allowed: str
    ) -> ControlSpec:
        return ControlSpec(
            name=name,
            unit=unit,
            set=partial(setattr, obj, attr),
            validate=partial(validate_field, obj, group, field, command=attr),
            get=partial(getattr, obj, attr),
            allowed=allowed,
        )

    def control_specs(self) -> list[ControlSpec]:
        """What the daemon can set; nothing is sent to build them.

        Returns:
            Control specs (see the module docstring for the names).
        """
        heater, still, warmup = self.sample_heater, self.still_heater, self.warmup_heater
        return [
            self._prop_spec("setpoint", heater, "setpoint"),
            self._prop_spec("heater_range", heater, "heater_range"),
            self._prop_spec("manual_output", heater, "manual_output"),
            self._prop_spec("pid", heater, "pid"),
            self._field_spec(
                "ramp_rate", heater, "ramp", "rate", "ramp_rate", "K/min", "0.001 to 100"
            ),
            self._field_spec(
                "ramp_enabled", heater, "ramp", "enabled", "ramp_enabled", "", "True, False"
            ),
            self._field_spec("heater_mode", heater, "setup", "mode", "mode", "", "OutputMode 0-6"),
            self._field_spec(
                "control_input",
                heater,
                "setup",
                "control_input",
                "control_input",
                "",
                "A, 1 to 16, 0 for none",
            ),
            self._prop_spec("still_output", still, "still_output"),
            self._prop_spec("still_on", still, "heater_range"),
            self._prop_spec("warmup_on", warmup, "heater_range"),
            self._field_spec(
                "scan_channel", self, "scanner", "channel", "active_channel", "", "1 to 16"
            ),
            self._field_spec(
                "autoscan", self, "scanner", "autoscan", "autoscan", "", "True, False"
            ),
            *[self._prop_spec(f"tlimit_{ch}", self.inputs[ch], "temperature_limit")
              for ch in INPUT_IDS],
        ]

    def action_specs(self) -> list[ActionSpec]:
        """What the daemon can call.

        Returns:
            Action specs (see the module docstring for the names).
        """
        heater = self.sample_heater
        return [
            ActionSpec(
                "start_ramp",
                heater.start_ramp,
                "Ramp the sample heater setpoint to target (K) at rate (K/min).",
                ("target", "rate"),
            ),
            ActionSpec("stop_ramp", heater.stop_ramp, "Stop the setpoint ramp."),
            ActionSpec("all_heaters_off", self.all_heaters_off, "Switch all outputs off."),
            ActionSpec(
                "select_channel",
                self.select_channel,
                "Switch the scanner to a channel (1-16), autoscan on or off.",
                ("channel", "autoscan"),
            ),
            ActionSpec(
                "upload_curve",
                self.upload_curve,
                "Upload a curve of (ohms, kelvin) points to a user curve (21-59), paced, "
                "and read every point back.",
                ("number", "points", "name", "serial"),
            ),
        ]
