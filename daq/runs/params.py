"""The typed sections of a recipe: the detector, its wiring, the safe state and each procedure.

Plain frozen dataclasses with defaults and ``__post_init__`` checks; a recipe
file is loaded into them by :func:`daq.config_schema.from_mapping`, so a
wrong type, a missing key or an unknown (misspelt) key is an error naming
the file and the key path. What each key means is in the recipe reference
(:mod:`daq.runs.recipe`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from daq.runs.conditions import ConditionConfig

__all__ = [
    "Detector", "Direction", "ImpedanceParams", "IVParams", "NoiseParams", "OffsetBranch",
    "OperatingPoint", "PulsesParams", "RecordSetup", "SafeState", "Segment", "Stability",
    "SuspendConfig",
    "TemperatureSeriesParams", "TransitionParams", "VPhiParams", "Wiring",
]


class Direction(enum.StrEnum):
    """Which way an I-V goes: down from the normal branch, or down and back up."""

    DOWN = "down"
    DOWN_UP = "down_up"


class OffsetBranch(enum.StrEnum):
    """Which I-V branch defines the zero of the TES current (daq.analysis.iv)."""

    NORMAL = "normal"
    SUPERCONDUCTING = "superconducting"


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class Wiring:
    """Which daemon targets and streams play which part (defaults: the simulated lab).

    Names ending in ``_prefix`` are completed with the driver's own names
    (``<scope>/trigger_source``, ``<modulation>_amplitude``, ...).
    """

    bias: str = "tes1/bias_voltage"
    bias_output: str = "tes1/bias_output"
    squid_out: str = "tes1/squid_out"
    squid_bias: str = "tes1/squid_bias"
    squid_feedback: str = "tes1/squid_feedback"
    squid_flux: str = "tes1/squid_flux"
    squid_mode: str = "tes1/squid_mode"
    squid_lock: str = "tes1/squid_lock"
    squid_tune: str = "tes1/squid_tune"
    squid_reset: str = "tes1/squid_reset"
    scope_prefix: str = "tes1"
    modulation_prefix: str = "tes1/bias_mod"
    trigger_gen_prefix: str = "tes1/trigger_gen"
    bath: str = "tes1/bath_temperature"
    mxc: str = "fridge1/mxc_control"
    mxc_setpoint: str = "fridge1/mxc_setpoint"
    mxc_ramp: str = "fridge1/mxc_ramp"
    mxc_stop_ramp: str = "fridge1/mxc_stop_ramp"
    heater_range: str = "fridge1/sample_heater_range"
    heater_mode: str = "fridge1/sample_heater_mode"
    lockin_x: str = "tes1/lockin_x"
    lockin_prefix: str = "tes1/lockin"

    def scope(self, name: str) -> str:
        """A scope target: ``trigger_source``, ``trigger_level``, ``waveform_points``, ..."""
        return f"{self.scope_prefix}/{name}"

    def modulation(self, name: str) -> str:
        """A bias-modulation target: ``output``, ``function``, ``frequency``, ``amplitude``..."""
        return f"{self.modulation_prefix}_{name}"

    def trigger_gen(self, name: str) -> str:
        """A trigger-generator target: ``configure``, ``output``, ``off``."""
        return f"{self.trigger_gen_prefix}_{name}"

    def lockin(self, name: str) -> str:
        """A lock-in target: ``amplitude``, ``frequency``, ``time_constant``, ``sensitivity``."""
        return f"{self.lockin_prefix}_{name}"


@dataclass(frozen=True)
class Detector:
    """The readout circuit: what turns bias volts and loop volts into TES currents.

    Attributes:
        name: the detector (for the start document and plots).
        shunt_ohm: the shunt resistor R_sh, Ohm.
        bias_resistor_ohm: the resistor between the bias source and the shunt, Ohm.
        input_to_feedback: M_in / M_f of the SQUID (the locked loop's gain is
            ``-(M_in / M_f) R_f`` volts per ampere of TES current).
        modulation_coupling_ohm: the resistor from the generator to the bias node
            (plus the generator's 50 Ohm), Ohm: drive current = volts / it.
        lockin_bias_resistor_ohm: the lock-in's excitation resistor for R(T), Ohm.
        wiring: which targets and streams belong to this detector.
    """

    name: str = "tes1"
    shunt_ohm: float = 300e-6
    bias_resistor_ohm: float = 10e3
    input_to_feedback: float = 4.0
    modulation_coupling_ohm: float = 100.05e3
    lockin_bias_resistor_ohm: float = 1e6
    wiring: Wiring = field(default_factory=Wiring)

    def __post_init__(self) -> None:
        for name in ("shunt_ohm", "bias_resistor_ohm", "input_to_feedback",
                     "modulation_coupling_ohm", "lockin_bias_resistor_ohm"):
            _positive(name, getattr(self, name))

    def gain_v_per_a(self, feedback_ohm: float) -> float:
        """Loop output per TES current with feedback resistor ``feedback_ohm``, V/A."""
        return -self.input_to_feedback * feedback_ohm


@dataclass(frozen=True)
class SafeState:
    """What the lab is left in when a run ends, however it ends (Ctrl-C and failures too).

    Attributes:
        bias_v: the TES bias voltage left (None: leave it).
        modulation_off: switch the bias modulation off.
        trigger_gen_off: switch the trigger generator off.
        heater_off: switch the sample heater off (range 0).
        mxc_setpoint_k: a mixing-chamber setpoint to leave (None: leave it).
    """

    bias_v: float | None = 0.0
    modulation_off: bool = True
    trigger_gen_off: bool = False
    heater_off: bool = False
    mxc_setpoint_k: float | None = None


@dataclass(frozen=True)
class SuspendConfig:
    """When a run pauses and when it goes on.

    Attributes:
        settle_s: every condition good for this long before a paused run resumes, s.
        max_pause_s: a pause longer than this aborts the run, s.
        conditions: the suspenders (:mod:`daq.runs.conditions`).
    """

    settle_s: float = 5.0
    max_pause_s: float = 1800.0
    conditions: list[ConditionConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.settle_s < 0:
            raise ValueError(f"settle_s must be >= 0 s, got {self.settle_s}")
        _positive("max_pause_s", self.max_pause_s)
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {names}")


@dataclass(frozen=True)
class Segment:
    """A stretch of a sweep: from ``start`` to ``stop`` (included) in steps of ``step``."""

    start: float
    stop: float
    step: float

    def __post_init__(self) -> None:
        _positive("step", self.step)
        if not (math.isfinite(self.start) and math.isfinite(self.stop)):
            raise ValueError("start and stop must be finite numbers")

    def values(self) -> np.ndarray:
        """The points of the stretch, in order."""
        n = int(math.floor(abs(self.stop - self.start) / self.step + 1e-9))
        direction = 1.0 if self.stop >= self.start else -1.0
        points = self.start + direction * self.step * np.arange(n + 1)
        if abs(points[-1] - self.stop) > 1e-9 * max(1.0, abs(self.stop)):
            points = np.append(points, self.stop)
        return points


def sweep_values(segments: list[Segment]) -> np.ndarray:
    """The points of consecutive segments (a point shared by two segments once)."""
    out: list[float] = []
    for seg in segments:
        for value in seg.values():
            if not out or abs(float(value) - out[-1]) > 1e-12:
                out.append(float(value))
    return np.array(out)


@dataclass(frozen=True)
class Stability:
    """Wait until a temperature is stable: within ``band_k`` of the target for ``hold_s``.

    During a ramp the target is the setpoint commanded at that moment, so a
    thermometer that follows the ramp is stable while the ramp goes on.
    """

    band_k: float = 0.5e-3
    hold_s: float = 10.0
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        _positive("band_k", self.band_k)
        _positive("timeout_s", self.timeout_s)
        if self.hold_s < 0:
            raise ValueError(f"hold_s must be >= 0 s, got {self.hold_s}")


@dataclass(frozen=True)
class OperatingPoint:
    """Where on the transition to sit: a fraction of R_n (from an I-V) or a bias voltage.

    Exactly one of ``r_fraction`` and ``bias_v`` is given.
    """

    r_fraction: float | None = None
    bias_v: float | None = None

    def __post_init__(self) -> None:
        if (self.r_fraction is None) == (self.bias_v is None):
            raise ValueError("give exactly one of r_fraction and bias_v")
        if self.r_fraction is not None and not 0.02 <= self.r_fraction <= 0.98:
            raise ValueError(f"r_fraction must be 0.02 to 0.98, got {self.r_fraction}")

    def label(self) -> str:
        """``0.30 R_n`` or ``3.100 V``."""
        return (f"{self.r_fraction:.2f} R_n" if self.r_fraction is not None
                else f"{self.bias_v:.3f} V")


@dataclass(frozen=True)
class RecordSetup:
    """How the digitizer records the SQUID output.

    Attributes:
        points: samples per record.
        sample_interval_s: time between samples, s.
        high_resolution: 12-bit (HRES) samples instead of the ADC's 8 bits.
    """

    points: int = 500
    sample_interval_s: float = 1e-6
    high_resolution: bool = True

    def __post_init__(self) -> None:
        if not 100 <= self.points <= 62_500:
            raise ValueError(f"points must be 100 to 62500, got {self.points}")
        _positive("sample_interval_s", self.sample_interval_s)

    @property
    def span_s(self) -> float:
        """The record's length, s."""
        return self.points * self.sample_interval_s


@dataclass(frozen=True)
class IVParams:
    """An I-V sweep (see the recipe reference)."""

    bias_v: list[Segment] = field(default_factory=lambda: [
        Segment(10.0, 3.2, 0.1), Segment(3.2, 0.0, 0.02)])
    direction: Direction = Direction.DOWN
    overbias_v: float | None = None
    overbias_s: float = 0.5
    feedback_ohm: float = 10e3
    superconducting_feedback_ohm: float = 1e3
    settle_s: float = 0.0
    records_per_point: int = 1
    record: RecordSetup = field(default_factory=RecordSetup)
    p_sat_fraction: float = 0.9
    offset_branch: OffsetBranch = OffsetBranch.NORMAL
    thermal_overbias: Stability | None = None
    overbias_bath_k: float = 0.07

    def __post_init__(self) -> None:
        if not self.bias_v:
            raise ValueError("bias_v needs at least one segment")
        values = sweep_values(self.bias_v)
        if values.size < 15:
            raise ValueError(f"the sweep has {values.size} points; an I-V needs at least 15")
        if np.any(values > 0) and np.any(values < 0):
            raise ValueError("a sweep stays on one side of zero (sweep each polarity apart)")
        if self.records_per_point < 1:
            raise ValueError("records_per_point must be >= 1")
        if not 0.05 <= self.p_sat_fraction <= 0.98:
            raise ValueError(f"p_sat_fraction must be 0.05 to 0.98, got {self.p_sat_fraction}")
        _positive("feedback_ohm", self.feedback_ohm)
        _positive("superconducting_feedback_ohm", self.superconducting_feedback_ohm)

    def sweep(self) -> np.ndarray:
        """Every bias of the sweep in order (down, then up for ``down_up``), V."""
        down = sweep_values(self.bias_v)
        if self.direction is Direction.DOWN_UP:
            return np.concatenate([down, down[-2::-1]])
        return down

    @property
    def top_v(self) -> float:
        """The overbias: the recipe's, else the sweep's largest magnitude, V."""
        if self.overbias_v is not None:
            return self.overbias_v
        values = sweep_values(self.bias_v)
        return float(values[np.argmax(np.abs(values))])


@dataclass(frozen=True)
class ImpedanceParams:
    """Complex impedance (dI/dV) at operating points (see the recipe reference)."""

    operating_points: list[OperatingPoint] = field(default_factory=lambda: [
        OperatingPoint(r_fraction=0.5), OperatingPoint(r_fraction=0.3)])
    iv: IVParams = field(default_factory=IVParams)
    function: str = "SQU"
    frequency_hz: float = 500.0
    amplitude_vpp: float = 0.2
    normal_amplitude_vpp: float = 1.0
    superconducting_bias_v: float = 0.3
    normal_bias_v: float = 10.0
    records: int = 20
    record: RecordSetup = field(default_factory=lambda: RecordSetup(20_000, 1e-6, True))
    feedback_ohm: float = 100e3
    settle_s: float = 0.2

    def __post_init__(self) -> None:
        if self.function not in ("SQU", "SIN"):
            raise ValueError(f"function must be SQU or SIN, got {self.function!r}")
        _positive("frequency_hz", self.frequency_hz)
        per = 1.0 / (self.frequency_hz * self.record.sample_interval_s)
        if abs(per - round(per)) > 1e-6 * per:
            raise ValueError(f"a drive period is {per:.6g} samples: choose frequency_hz and "
                             "record.sample_interval_s so that it is a whole number")
        if self.record.points < 2 * round(per) or self.record.points % round(per):
            raise ValueError(f"a record of {self.record.points} samples must hold a whole "
                             f"number (at least two) of drive periods of {round(per)} samples")
        if not self.operating_points:
            raise ValueError("operating_points needs at least one point")
        if self.records < 1:
            raise ValueError("records must be >= 1")
        _positive("amplitude_vpp", self.amplitude_vpp)
        _positive("normal_amplitude_vpp", self.normal_amplitude_vpp)


@dataclass(frozen=True)
class TransitionParams:
    """R(T): ramp the bath through the transition and back (see the recipe reference)."""

    start_k: float = 0.044
    stop_k: float = 0.056
    rate_k_per_min: float = 0.001
    sweeps: int = 2
    stable: Stability = field(default_factory=lambda: Stability(0.3e-3, 5.0, 1800.0))
    heater_range_a: float = 0.00316
    lockin_amplitude_v: float = 5.0
    lockin_time_constant_s: float = 0.3
    lockin_frequency_hz: float = 1000.0
    end_k: float | None = None

    def __post_init__(self) -> None:
        for name in ("start_k", "stop_k", "rate_k_per_min", "lockin_amplitude_v",
                     "lockin_time_constant_s", "lockin_frequency_hz"):
            _positive(name, getattr(self, name))
        if self.start_k == self.stop_k:
            raise ValueError("start_k and stop_k must differ")
        if self.sweeps < 1:
            raise ValueError("sweeps must be >= 1")


@dataclass(frozen=True)
class VPhiParams:
    """SQUID V-Phi in tune mode, then the lock point (see the recipe reference)."""

    flux_start_a: float = 0.0
    flux_stop_a: float = 100e-6
    points: int = 201
    squid_bias_a: float | None = None
    slope_sign: int = 1
    lock: bool = True
    record: RecordSetup = field(default_factory=RecordSetup)
    settle_s: float = 0.0

    def __post_init__(self) -> None:
        if self.points < 60:
            raise ValueError(f"points must be >= 60, got {self.points}")
        if self.slope_sign not in (1, -1):
            raise ValueError("slope_sign must be +1 or -1")
        if self.flux_start_a == self.flux_stop_a:
            raise ValueError("flux_start_a and flux_stop_a must differ")

    def sweep(self) -> np.ndarray:
        """The flux-offset currents in order, A."""
        return np.linspace(self.flux_start_a, self.flux_stop_a, self.points)


@dataclass(frozen=True)
class NoiseParams:
    """A current-noise spectrum at an operating point (see the recipe reference)."""

    operating_point: OperatingPoint = field(default_factory=lambda: OperatingPoint(
        r_fraction=0.3))
    iv: IVParams | None = None
    records: int = 40
    record: RecordSetup = field(default_factory=lambda: RecordSetup(16_384, 1e-6, True))
    feedback_ohm: float = 100e3
    segment_samples: int | None = None
    window: str = "hann"
    veto_threshold: float = 6.0
    trigger_hz: float = 1013.0
    report_hz: float = 1000.0
    settle_s: float = 0.2

    def __post_init__(self) -> None:
        if self.records < 2:
            raise ValueError("records must be >= 2")
        _positive("trigger_hz", self.trigger_hz)
        _positive("report_hz", self.report_hz)
        if self.segment_samples is not None and not 8 <= self.segment_samples <= self.record.points:
            raise ValueError(f"segment_samples must be 8 to record.points "
                             f"({self.record.points})")


@dataclass(frozen=True)
class PulsesParams:
    """Triggered pulses at an operating point (see the recipe reference)."""

    operating_point: OperatingPoint = field(default_factory=lambda: OperatingPoint(
        r_fraction=0.3))
    iv: IVParams | None = None
    records: int = 100
    noise_records: int = 40
    record: RecordSetup = field(default_factory=lambda: RecordSetup(2048, 1e-6, True))
    pretrigger_fraction: float = 0.25
    trigger_threshold_a: float = 0.5e-6
    feedback_ohm: float = 100e3
    line_energy_ev: float = 50.0
    noise_trigger_hz: float = 1013.0
    settle_s: float = 0.2

    def __post_init__(self) -> None:
        if self.records < 5 or self.noise_records < 2:
            raise ValueError("records must be >= 5 and noise_records >= 2")
        if not 0.05 <= self.pretrigger_fraction <= 0.8:
            raise ValueError("pretrigger_fraction must be 0.05 to 0.8")
        _positive("trigger_threshold_a", self.trigger_threshold_a)
        _positive("line_energy_ev", self.line_energy_ev)


@dataclass(frozen=True)
class TemperatureSeriesParams:
    """At each bath temperature: wait until stable, then each step (see the recipe reference)."""

    bath_k: list[float] = field(default_factory=lambda: [0.02, 0.03])
    stable: Stability = field(default_factory=Stability)
    ramp_k_per_min: float | None = None
    heater_range_a: float = 0.00316
    steps: list[str] = field(default_factory=lambda: ["iv", "noise"])
    iv: IVParams = field(default_factory=IVParams)
    noise: NoiseParams | None = None
    pulses: PulsesParams | None = None

    def __post_init__(self) -> None:
        if not self.bath_k:
            raise ValueError("bath_k needs at least one temperature")
        for t in self.bath_k:
            _positive("bath_k", t)
        if self.ramp_k_per_min is not None:
            _positive("ramp_k_per_min", self.ramp_k_per_min)
        allowed = {"iv", "noise", "pulses"}
        unknown = [s for s in self.steps if s not in allowed]
        if unknown or not self.steps:
            raise ValueError(f"steps must be some of {sorted(allowed)}, got {self.steps}")
