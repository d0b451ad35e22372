"""The simulated Lake Shore 372's insides: inputs, scanner, heater outputs.

The protocol lives in :mod:`simulators.servers.lakeshore372`; this module
is the instrument behind it, driven by the fridge's controller ticks
(:meth:`Ls372Model.tick`) so that the scanner and the PID loop run on
simulated time whichever server made the fridge catch up.

Scanner (as the real unit): one scanner channel is measured at a time.
After a switch (``SCAN`` or autoscan) the new channel waits ``pause``
seconds, during which its reading is not updated and every other channel
holds its last reading; then it is updated for ``dwell`` seconds, settling
from its held value with the filter time constant; then, with autoscan on,
the scanner moves to the next enabled channel. Channel ``A`` (the control
input) is measured all the time.

Readings are made by :class:`~simulators.physics.thermometers.Thermometer`
models of the sensors on the fridge stages: self-heating from the
excitation, noise that grows as the excitation shrinks, and kelvin from the
resistance through the channel's calibration curve (``CRVPT`` edits change
the kelvin reading, as on the real unit).

Interface: :class:`Ls372Model` ``(fridge, *, channel_stages=..., seed=0,
...)``, its ``channels`` (:class:`Ls372Channel` by ``"A"``, ``"1"``..``"16"``),
``outputs`` (:class:`Ls372Output` by 0, 1, 2), ``curves``
(:class:`~simulators.physics.thermometers.CalibrationTable` by 1..59),
``scanner`` (:class:`Scanner`), ``select_channel(channel, autoscan, t)``,
``tick(t)``, ``process_value(source)``, ``heater_display_value()``. The
inputs themselves are in :mod:`simulators.servers.ls372_channels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulators.physics.fridge import STAGES, DilutionFridge
from simulators.physics.thermometers import (
    CalibrationTable,
    SettlingFilter,
    stage_sensor,
    table_from_curve,
)
from simulators.servers.lakeshore_common import ControlLoop
from simulators.servers.ls372_channels import (
    CHANNEL_KEYS,
    DEFAULT_INTYPE,
    DEFAULT_NAMES,
    DEFAULT_STAGES,
    INVALID_BITS,
    MAX_CURRENT_A,
    SAMPLE_RANGE_A,
    ChannelSetup,
    Ls372Channel,
)


@dataclass
class Scanner:
    """Which scanner channel is measured, and where in its pause/dwell cycle it is.

    Attributes:
        channel: active channel 1-16.
        autoscan: move on after the dwell.
        pausing: True during the pause after a switch.
        phase_end: simulated time the pause or dwell ends (inf: never).
    """

    channel: int = 1
    autoscan: bool = True
    pausing: bool = False
    phase_end: float = math.inf


@dataclass
class Zone:
    """One row of the ``ZONE`` table."""

    upper_k: float = 0.0
    p: float = 50.0
    i: float = 20.0
    d: float = 0.0
    manual_pct: float = 0.0
    range: int = 0
    rate_k_per_min: float = 0.1
    relay1: int = 0
    relay2: int = 0


@dataclass
class Ls372Output:
    """One heater output: 0 sample, 1 warm-up, 2 still/analog.

    Attributes:
        number: 0, 1 or 2.
        loop: mode, setpoint, PID, ramp, manual output and range.
        powerup: output stays on after power-up.
        polarity: 0 unipolar, 1 bipolar.
        use_filter: control on filtered readings.
        delay_s: setpoint delay after a scanner change.
        resistance_ohm: heater resistance (``HTRSET``: the sample heater's load in
            ohms; the warm-up heater's setting, 25 or 50 ohm).
        max_current: warm-up heater: 0 user, 1 0.45 A, 2 0.63 A (the sample
            heater's limit is its range; it keeps what it was sent).
        max_user_current_a: the user limit for ``max_current`` 0.
        display: 1 current, 2 power.
        open_load: fault: heater leads open (``HTRST?`` answers 1, no power).
        short: fault: heater shorted (``HTRST?`` answers 2, no power in the load).
        zones: the ten ``ZONE`` rows.
        active_zone: the zone in use in zone mode (1-10).
        power_w: the power it puts into the fridge now.
    """

    number: int
    loop: ControlLoop = field(default_factory=ControlLoop)
    powerup: int = 0
    polarity: int = 0
    use_filter: int = 1
    delay_s: int = 1
    resistance_ohm: float = 120.0
    max_current: int = 0
    max_user_current_a: float = 0.0
    display: int = 1
    open_load: bool = False
    short: bool = False
    zones: list[Zone] = field(default_factory=lambda: [Zone() for _ in range(10)])
    active_zone: int | None = None
    power_w: float = 0.0

    @property
    def faulted(self) -> bool:
        """An open or shorted heater: no power reaches the load."""
        return self.open_load or self.short

    def current_limit_a(self) -> float:
        """The warm-up heater's largest current (``HTRSET 1`` maximum current)."""
        if self.max_current == 0:
            return self.max_user_current_a
        return MAX_CURRENT_A.get(self.max_current, 0.63)


class Ls372Model:
    """The 372's state and behaviour, advanced by fridge controller ticks.

    Args:
        fridge: the refrigerator the sensors sit on and the heaters heat.
        channel_stages: input (``"A"``, ``"1"``..``"16"``) -> fridge stage;
            inputs not listed have no sensor (they read as open).
        sample_stage: stage the sample heater (output 0) heats.
        warmup_stage: stage the warm-up heater (output 1) heats.
        still_stage: stage the still output (output 2) heats.
        still_max_w: still heater power at 100 % output.
        seed: noise seed, for reproducible tests.
        control_period_s: simulated seconds between controller ticks.
        source: heater source name used with the fridge.

    Raises:
        ValueError: an unknown input or stage in ``channel_stages``.
    """

    def __init__(
        self,
        fridge: DilutionFridge,
        *,
        channel_stages: dict[str, str] | None = None,
        sample_stage: str = "mxc",
        warmup_stage: str = "mxc",
        still_stage: str = "still",
        still_max_w: float = 0.1,
        seed: int = 0,
        control_period_s: float = 1.0,
        source: str = "ls372",
    ) -> None:
        stages = DEFAULT_STAGES if channel_stages is None else channel_stages
        for key, stage in stages.items():
            if key not in CHANNEL_KEYS or stage not in STAGES:
                raise ValueError(
                    f"LS372 channel map {key!r}: {stage!r}; allowed inputs A, 1-16 and "
                    f"stages {', '.join(STAGES)}"
                )
        for stage in (sample_stage, warmup_stage, still_stage):
            if stage not in STAGES:
                raise ValueError(f"LS372 heater stage {stage!r}; allowed: {', '.join(STAGES)}")
        self.fridge = fridge
        self.rng = np.random.default_rng(seed)
        self.sample_stage = sample_stage
        self.warmup_stage = warmup_stage
        self.still_stage = still_stage
        self.still_max_w = still_max_w
        self.source = source
        self.curves: dict[int, CalibrationTable] = {}
        self.channels: dict[str, Ls372Channel] = {}
        self._build_channels(stages)
        self.outputs = {n: Ls372Output(n) for n in range(3)}
        self.outputs[0].loop = ControlLoop(mode=0, source="A", p=100.0, i=100.0)
        self.outputs[1].loop = ControlLoop(mode=0, source="A")
        self.outputs[2].loop = ControlLoop(mode=4, source="0", range=1)
        self.outputs[1].resistance_ohm = 50.0
        self.outputs[1].max_current = 2
        self.still_pct = 100.0 * math.sqrt(max(fridge.heater(still_stage), 0.0) / still_max_w)
        self.scanner = Scanner()
        self._last_tick: float | None = None
        with fridge.lock:
            now = fridge.time
            temps = fridge.temperatures
            for channel in self.channels.values():
                if channel.setup.enabled:
                    channel.measure(now, _stage_t(temps, channel.stage), self.rng, self.curves)
            # start as a running unit: channel 1 in its dwell, autoscan on
            self.scanner = Scanner(channel=1, autoscan=True, pausing=False)
            self.scanner.phase_end = self._dwell_end(now)
            self._last_tick = fridge.time
            fridge.add_controller(self.tick, control_period_s)

    def _build_channels(self, stages: dict[str, str]) -> None:
        curve_number = 21
        for index, key in enumerate(CHANNEL_KEYS):
            setup = ChannelSetup(name=f"Channel {key}" if key != "A" else "Control")
            stage = stages.get(key)
            channel = Ls372Channel(key=key, setup=setup)
            if stage is not None:
                thermometer, curve, t_lo, t_hi = stage_sensor(stage, index)
                serial = f"SIM{index:04d}"
                table = table_from_curve(
                    curve,
                    name=f"{DEFAULT_NAMES[stage]}"[:15],
                    serial=serial,
                    t_min=t_lo,
                    t_max=t_hi,
                )
                number = 26 if key == "A" else curve_number
                if key != "A":
                    curve_number += 1
                self.curves[number] = table
                mode, excitation, autorange, rng_index = DEFAULT_INTYPE[stage]
                setup.enabled = True
                setup.curve = number
                setup.name = DEFAULT_NAMES[stage] + (" Ctrl" if key == "A" else "")
                setup.mode, setup.excitation, setup.autorange, setup.range = (
                    mode,
                    excitation,
                    autorange,
                    rng_index,
                )
                if key == "A":
                    setup.mode, setup.excitation = 1, 2
                if stage == "mxc" and key != "A":
                    setup.dwell_s = 10
                channel.thermometer = thermometer
                channel.stage = stage
            channel.settling = SettlingFilter(channel.tau_s())
            self.channels[key] = channel

    # ---- scanner -----------------------------------------------------------------------------

    def select_channel(self, channel: int, autoscan: bool, t: float) -> None:
        """``SCAN``: make ``channel`` active at time ``t`` and set autoscan.

        Like the real unit, a ``SCAN`` restarts the measurement: the pause
        starts again even when the channel does not change.
        """
        self.scanner.autoscan = autoscan
        self._switch(channel, t)

    def _switch(self, channel: int, t: float) -> None:
        sc = self.scanner
        sc.channel = channel
        sc.pausing = True
        sc.phase_end = t + self.channels[str(channel)].setup.pause_s
        self.channels[str(channel)].restart_settling()

    def _dwell_end(self, t: float) -> float:
        if not self.scanner.autoscan or self._next_channel() == self.scanner.channel:
            return math.inf
        return t + self.channels[str(self.scanner.channel)].setup.dwell_s

    def _next_channel(self) -> int:
        current = self.scanner.channel
        for step in range(1, 17):
            candidate = (current - 1 + step) % 16 + 1
            if self.channels[str(candidate)].setup.enabled:
                return candidate
        return current

    def _run_scanner(self, t: float, temps: dict[str, float]) -> None:
        sc = self.scanner
        for _ in range(10000):  # bounded: a huge jump cannot loop forever
            active = self.channels[str(sc.channel)]
            segment_end = min(t, sc.phase_end)
            if not sc.pausing:
                active.measure(segment_end, _stage_t(temps, active.stage), self.rng, self.curves)
            if sc.phase_end > t:
                return
            event = sc.phase_end
            if sc.pausing:
                sc.pausing = False
                active.updated_at = event  # settling starts when the pause ends
                sc.phase_end = self._dwell_end(event)
            else:
                following = self._next_channel()
                if following == sc.channel:
                    sc.phase_end = math.inf
                else:
                    self._switch(following, event)

    # ---- ticks -------------------------------------------------------------------------------

    def tick(self, t: float) -> None:
        """Fridge controller callback: scanner, control input, loops, heaters at time ``t``."""
        dt = t - self._last_tick if self._last_tick is not None else 0.0
        self._last_tick = t
        temps = self.fridge.temperatures
        self._run_scanner(t, temps)
        control = self.channels["A"]
        if control.setup.enabled:
            control.measure(t, _stage_t(temps, control.stage), self.rng, self.curves)
        self._check_limits()
        self._drive_outputs(dt)

    def _check_limits(self) -> None:
        for channel in self.channels.values():
            limit = channel.setup.tlimit_k
            if limit > 0 and channel.kelvin > limit:
                for output in self.outputs.values():
                    output.loop.range = 0

    def process_value(self, source: str) -> tuple[float, bool, bool]:
        """The reading a loop controls on: ``(value, valid, negative_tempco)``."""
        channel = self.channels.get(source)
        if channel is None:
            return 0.0, False, True
        valid = channel.status & INVALID_BITS == 0 and channel.updated_at is not None
        if channel.setup.units == 2:
            return channel.ohms, valid and channel.ohms > 0, channel.setup.tempco == 1
        return channel.kelvin, valid and channel.kelvin > 0, False

    def _loop_output(self, output: Ls372Output, dt: float) -> float:
        """Percent output of a closed-loop (or zone, or warm-up) output."""
        loop = output.loop
        value, valid, inverted = self.process_value(loop.source)
        setpoint = loop.advance_ramp(dt)
        if not valid:
            loop.reset()
            loop.output_pct = 0.0
            return 0.0
        error = (value - setpoint) if inverted else (setpoint - value)
        return min(100.0, loop.pid(error, dt) + loop.manual_pct)

    def _apply_zone(self, output: Ls372Output) -> None:
        """Zone mode: the zone holding the setpoint sets the gains; entering it sets the range."""
        loop = output.loop
        for number, zone in enumerate(output.zones, start=1):
            if zone.upper_k >= loop.setpoint and zone.upper_k > 0:
                loop.p, loop.i, loop.d = zone.p, zone.i, zone.d
                loop.manual_pct = zone.manual_pct
                loop.ramp_rate_per_min = zone.rate_k_per_min
                if output.active_zone != number:
                    # only on entering a zone, so that a temperature-limit trip stays off
                    output.active_zone = number
                    loop.range = zone.range
                return

    def _drive_outputs(self, dt: float) -> None:
        for output in (self.outputs[0], self.outputs[1]):
            if output.loop.mode == 3:
                self._apply_zone(output)
            else:
                output.active_zone = None
        sample = self.outputs[0]
        pct = 0.0
        if sample.loop.range > 0 and not sample.faulted:
            if sample.loop.mode == 2:
                pct = sample.loop.manual_pct
            elif sample.loop.mode in (3, 5):
                pct = self._loop_output(sample, dt)
        sample.loop.output_pct = pct
        current = pct / 100.0 * SAMPLE_RANGE_A[sample.loop.range]  # the range is the limit
        sample.power_w = current * current * sample.resistance_ohm
        self.fridge.set_heater(self.sample_stage, sample.power_w, source=f"{self.source}.sample")

        warmup = self.outputs[1]
        pct = 0.0
        if warmup.loop.range > 0 and not warmup.faulted:
            if warmup.loop.mode == 2:
                pct = warmup.loop.manual_pct
            elif warmup.loop.mode in (3, 5, 6):
                pct = self._loop_output(warmup, dt)
        warmup.loop.output_pct = pct
        current = pct / 100.0 * warmup.current_limit_a()
        warmup.power_w = current * current * warmup.resistance_ohm
        self.fridge.set_heater(self.warmup_stage, warmup.power_w, source=f"{self.source}.warmup")

        still = self.outputs[2]
        pct = 0.0
        if still.loop.range > 0:
            if still.loop.mode == 4:
                pct = self.still_pct
            elif still.loop.mode == 2:
                pct = still.loop.manual_pct
        still.loop.output_pct = pct
        still.power_w = (pct / 100.0) ** 2 * self.still_max_w
        self.fridge.set_heater(self.still_stage, still.power_w, source="")

    def heater_display_value(self) -> float:
        """``HTR?``: sample heater output in % of range, or in W with the power display."""
        sample = self.outputs[0]
        if sample.display == 2:
            return sample.power_w
        return sample.loop.output_pct if sample.loop.range > 0 else 0.0


def _stage_t(temps: dict[str, float], stage: str | None) -> float | None:
    return temps.get(stage) if stage is not None else None
