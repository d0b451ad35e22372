"""Recipes: a measurement run in a few lines of YAML, checked before anything moves.

``qupdaq run RECIPE.yaml`` loads a recipe, checks it against the lab (every
target exists and may be driven, every value is within the daemon's limits
and the instrument's range, every stream is polled) and only then runs it.
Every mistake is reported at once with the file, the key path and the
reason, e.g. ``iv.yaml: iv.bias_v[0].start: 14 V is outside the limits of
tes1/bias_voltage (-12 to 12 V)`` or ``iv.yaml: iv.bias_vv: unknown key``.

Recipe reference
================

Top level::

    name: iv-tes1              # required; names the run (run id: <UTC time>-<name>-<hex>)
    procedure: iv              # required: iv, impedance, transition, vphi, noise, pulses,
                               #   temperature_series; its section (below) holds its parameters
    sample: TES A30, pixel 1   # what is measured (stored, searchable in the run index)
    operator: alice            # who runs it (default: $USER)
    description: ...           # free text, stored with the run
    lab: ../sim_lab.yaml       # the lab config, relative to this file (``--config`` overrides)
    lease_ttl_s: 30            # the lease on the driven targets lapses this long after a crash
    detector: {...}            # the readout circuit and its wiring
    safe_state: {...}          # what the lab is left in, however the run ends
    suspend: {...}             # when the run pauses and when it resumes
    <procedure>: {...}         # the procedure's parameters (only the named procedure's section)

``detector`` (defaults: the simulated lab's TES)::

    name: tes1                 # shown in plots
    shunt_ohm: 300.0e-6        # R_sh
    bias_resistor_ohm: 10000.0  # between the bias source and the shunt (bias current = V / it)
    input_to_feedback: 4.0     # M_in / M_f: the locked loop gives -(M_in/M_f) R_f volts per
                               #   ampere of TES current
    modulation_coupling_ohm: 100050.0   # generator to bias node (coupling + 50 Ohm source)
    lockin_bias_resistor_ohm: 1.0e+6    # the lock-in's excitation resistor (R(T))
    wiring:                    # which daemon targets / streams play which part; defaults:
      bias: tes1/bias_voltage            bias_output: tes1/bias_output
      squid_out: tes1/squid_out          # the digitizer's records of the SQUID output
      squid_bias: tes1/squid_bias        squid_feedback: tes1/squid_feedback
      squid_flux: tes1/squid_flux
      squid_mode: tes1/squid_mode        squid_lock: tes1/squid_lock
      squid_tune: tes1/squid_tune        squid_reset: tes1/squid_reset
      scope_prefix: tes1                 # <prefix>/trigger_source, trigger_level,
                                         #   trigger_slope, waveform_points, timebase_scale,
                                         #   timebase_position, acquisition_type
      modulation_prefix: tes1/bias_mod   # <prefix>_output, _function, _frequency,
                                         #   _amplitude, _offset, _duty (generator output 1)
      trigger_gen_prefix: tes1/trigger_gen  # <prefix>_configure, _output (output 2, wired
                                         #   to the scope's channel 2: the trigger)
      bath: tes1/bath_temperature        mxc: fridge1/mxc_control
      mxc_setpoint: fridge1/mxc_setpoint mxc_ramp: fridge1/mxc_ramp
      mxc_stop_ramp: fridge1/mxc_stop_ramp
      heater_range: fridge1/sample_heater_range  heater_mode: fridge1/sample_heater_mode
      lockin_x: tes1/lockin_x            lockin_prefix: tes1/lockin

``safe_state`` (applied after the procedure, after Ctrl-C and after a failure)::

    bias_v: 0.0                # TES bias left (null: leave it)
    modulation_off: true       # generator output 1 off
    trigger_gen_off: false     # generator output 2 off
    heater_off: false          # sample heater range 0
    mxc_setpoint_k: null       # a mixing-chamber setpoint to leave (null: leave it)

``suspend``::

    settle_s: 5                # all conditions good this long before a paused run resumes
    max_pause_s: 1800          # a longer pause aborts the run
    conditions:                # each: name, kind, and what the kind needs
      - {name: mxc_warm, kind: above, stream: fridge1/mxc_control, limit: 0.03}   # K
      - {name: too_cold, kind: below, stream: tes1/bath_temperature, limit: 0.005}
      - {name: bath_stale, kind: stale, stream: tes1/bath_temperature, after_s: 10}
      - {name: squid, kind: squid_unlocked, stream: tes1/squid_out}   # railed records
      - {name: alarms, kind: alarm, severity: critical, hold_s: 30}

Shared pieces of the procedures:

* a *segment* ``{start: 10.0, stop: 3.2, step: 0.1}`` runs from start to stop
  (included) in steps of ``step`` (always positive); a sweep is a list of them.
* ``record: {points: 500, sample_interval_s: 1.0e-6, high_resolution: true}``:
  how the digitizer records (high resolution: 12-bit samples).
* an *operating point* is ``{r_fraction: 0.3}`` (a fraction of R_n, found on an
  I-V the procedure takes first with its ``iv`` section) or ``{bias_v: 3.1}``.
* ``stable: {band_k: 0.0005, hold_s: 10, timeout_s: 1800}``: wait until the
  thermometer has been within ``band_k`` of the target for ``hold_s`` (during a
  ramp the target is the setpoint commanded at that moment).

``iv`` -- TES I-V: overbias, sweep down (optionally back up), read the SQUID
output's DC level (the mean of each record), analyse (daq.analysis.iv)::

    bias_v: [{start: 10.0, stop: 3.2, step: 0.1}, {start: 3.2, stop: 0.0, step: 0.02}]
                               # V; small steps on the superconducting branch keep the
                               #   flux-locked loop locked (a step of more than half a flux
                               #   quantum in the SQUID makes it slip)
    direction: down            # down | down_up
    overbias_v: null           # the bias that drives the TES normal (default: the sweep's
                               #   largest); held overbias_s (0.5) s
    feedback_ohm: 10000.0      # the loop's R_f on the normal branch and the transition
    superconducting_feedback_ohm: 1000.0   # once two points show the TES latched, the
                               #   loop is relocked with this R_f (the superconducting
                               #   branch's large currents stay on the screen) and the
                               #   point measured again; the point before is marked
                               #   ``boundary`` and left out of the analysis
    settle_s: 0.0              # after each bias step, s
    records_per_point: 1       # records averaged per point
    record: {points: 500, sample_interval_s: 1.0e-6, high_resolution: true}
    p_sat_fraction: 0.9        # R/R_n at which P_sat is quoted
    offset_branch: normal      # which branch defines I_TES = 0: normal | superconducting
    thermal_overbias: null     # a ``stable`` block: if the TES is superconducting even at
                               #   the overbias (measured: dV_out/dI_bias near the loop's
                               #   gain), warm the bath with the bias on until it goes
                               #   normal (at most to overbias_bath_k, 0.07 K), cool back
                               #   and wait until stable; conditions on the bath's
                               #   thermometers wait meanwhile
    overbias_bath_k: 0.07

``impedance`` -- complex impedance (dI/dV) with the superconducting / normal
calibration and the one-body fit (daq.analysis.impedance)::

    operating_points: [{r_fraction: 0.5}, {r_fraction: 0.3}]
    iv: {...}                  # the I-V that gives R_n and R_0 at each bias
    function: SQU              # SQU | SIN, generator output 1, summed into the bias
    frequency_hz: 500.0        # a period must be a whole number of samples, a record a
                               #   whole number of periods
    amplitude_vpp: 0.2         # on the transition and superconducting
    normal_amplitude_vpp: 1.0  # normal (it answers weakly)
    superconducting_bias_v: 0.3   normal_bias_v: 10.0
    records: 20                # per state without a photon's pulse (records holding one
                               #   are left out, and more taken: at most 4x as many),
                               #   joined in phase (the trigger is output 2)
    record: {points: 20000, sample_interval_s: 1.0e-6, high_resolution: true}
    feedback_ohm: 100000.0     settle_s: 0.2

``transition`` -- R(T): ramp the bath with the 372 through the transition and
back while the lock-in reads the unbiased TES and the SIM921 the bath; T_c
and width per direction (daq.analysis.transition)::

    start_k: 0.044   stop_k: 0.056   rate_k_per_min: 0.001   sweeps: 2   # up, down, ...
    stable: {band_k: 0.0003, hold_s: 5}   # at start_k before the first ramp (and before
                               #   a ramp done again after a pause); each ramp ends when
                               #   the commanded setpoint has arrived and the bath with it
    heater_range_a: 0.00316
    lockin_amplitude_v: 5.0   lockin_time_constant_s: 0.3   lockin_frequency_hz: 1000.0
    end_k: null                # setpoint after the ramps (null: back to the one before)

``vphi`` -- SQUID V-Phi in tune mode, fit, lock point, lock (daq.analysis.squid)::

    flux_start_a: 0.0   flux_stop_a: 1.0e-4   points: 201   # the flux-offset sweep
    squid_bias_a: null         # set the SQUID bias first (null: leave it)
    slope_sign: 1              # the slope the loop locks on (+1 rising, -1 falling)
    lock: true                 # set the flux offset to the lock point and lock
    record: {points: 500, ...}  settle_s: 0.0

``noise`` -- current-noise spectrum with a pulse veto (daq.analysis.noise)::

    operating_point: {r_fraction: 0.3}   iv: {...}   # iv only for an r_fraction
    records: 40   record: {points: 16384, sample_interval_s: 1.0e-6, high_resolution: true}
    feedback_ohm: 100000.0   segment_samples: null   window: hann   veto_threshold: 6.0
    trigger_hz: 1013.0         # output 2 triggers at random w.r.t. the photons (raised
                               #   to a whole multiple with eight edges per record)
    report_hz: 1000.0          # the frequency whose noise level is reported
    settle_s: 0.2

``pulses`` -- triggered pulses, template, optimal filter, resolution (daq.analysis.pulses)::

    operating_point: {r_fraction: 0.3}   iv: {...}
    records: 100   noise_records: 40
    record: {points: 2048, sample_interval_s: 1.0e-6, high_resolution: true}
    pretrigger_fraction: 0.25
    trigger_threshold_a: 0.5e-6   # pulse height (TES current) that triggers
    feedback_ohm: 100000.0   line_energy_ev: 50.0   noise_trigger_hz: 1013.0   settle_s: 0.2

``temperature_series`` -- nesting: at each bath temperature, wait until stable,
then each step::

    bath_k: [0.020, 0.030, 0.040]
    stable: {band_k: 0.0005, hold_s: 10, timeout_s: 1800}
    ramp_k_per_min: null       # ramp the setpoint there instead of stepping it; the bath
                               #   then counts as stable against the setpoint commanded at
                               #   each moment, and only once the ramp has arrived
    heater_range_a: 0.00316
    steps: [iv, noise]         # some of iv, noise, pulses, in order
    iv: {...}   noise: {...}   pulses: {...}

Interface: :class:`Recipe`, :class:`ProcedureName`, :func:`load_recipe`,
:func:`check_recipe`, :class:`RecipeError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daq.config import LabConfig
from daq.config_schema import from_mapping, read_yaml
from daq.errors import ConfigError
from daq.runs.documents import JsonObject, to_json
from daq.runs.params import (
    Detector,
    ImpedanceParams,
    IVParams,
    NoiseParams,
    PulsesParams,
    SafeState,
    SuspendConfig,
    TemperatureSeriesParams,
    TransitionParams,
    VPhiParams,
)

__all__ = ["ProcedureName", "Recipe", "RecipeError", "TargetUse", "check_recipe",
           "load_recipe", "recipe_from_mapping"]


class ProcedureName(enum.StrEnum):
    """The procedures a recipe can name."""

    IV = "iv"
    IMPEDANCE = "impedance"
    TRANSITION = "transition"
    VPHI = "vphi"
    NOISE = "noise"
    PULSES = "pulses"
    TEMPERATURE_SERIES = "temperature_series"


_SECTIONS = {p: p.value for p in ProcedureName}


class RecipeError(ConfigError):
    """A recipe that cannot run; the message lists every problem (file, key path, reason)."""

    def __init__(self, problems: list[str], *, file: str = "") -> None:
        self.problems = problems
        head = f"{file}: " if file else ""
        text = problems[0] if len(problems) == 1 else (
            f"{len(problems)} problems:\n  " + "\n  ".join(problems))
        super().__init__(f"{head}{text}")


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe (see the module docstring for every key)."""

    name: str
    procedure: ProcedureName
    sample: str = ""
    operator: str = ""
    description: str = ""
    lab: str | None = None
    lease_ttl_s: float = 30.0
    detector: Detector = field(default_factory=Detector)
    safe_state: SafeState = field(default_factory=SafeState)
    suspend: SuspendConfig = field(default_factory=SuspendConfig)
    iv: IVParams | None = None
    impedance: ImpedanceParams | None = None
    transition: TransitionParams | None = None
    vphi: VPhiParams | None = None
    noise: NoiseParams | None = None
    pulses: PulsesParams | None = None
    temperature_series: TemperatureSeriesParams | None = None
    path: str = field(default="", init=False, compare=False)  # the file; not a YAML key
    text: str = field(default="", init=False, compare=False)  # the file as written

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$", self.name):
            raise ValueError(f"name {self.name!r} must be 1-60 letters, digits, '_', '.', '-'")
        if not 1.0 <= self.lease_ttl_s <= 3600.0:
            raise ValueError(f"lease_ttl_s must be 1 to 3600 s, got {self.lease_ttl_s}")
        others = [s for p, s in _SECTIONS.items()
                  if p is not self.procedure and getattr(self, s) is not None]
        if others:
            raise ValueError(f"section(s) {', '.join(others)} given, but the procedure is "
                             f"{self.procedure.value!r}: give only its own section")
        if not self.operator:
            object.__setattr__(self, "operator", os.environ.get("USER", "") or "unknown")

    def params(self) -> Any:
        """The procedure's parameters (its section, or the defaults)."""
        section = getattr(self, _SECTIONS[self.procedure])
        if section is not None:
            return section
        defaults = {ProcedureName.IV: IVParams, ProcedureName.IMPEDANCE: ImpedanceParams,
                    ProcedureName.TRANSITION: TransitionParams, ProcedureName.VPHI: VPhiParams,
                    ProcedureName.NOISE: NoiseParams, ProcedureName.PULSES: PulsesParams,
                    ProcedureName.TEMPERATURE_SERIES: TemperatureSeriesParams}
        return defaults[self.procedure]()

    def params_json(self) -> JsonObject:
        """The parameters as the start document stores them (recipe form)."""
        value = to_json(dataclasses.asdict(self.params()))
        assert isinstance(value, dict)
        return value

    def detector_json(self) -> JsonObject:
        """The detector section as the start document stores it."""
        value = to_json(dataclasses.asdict(self.detector))
        assert isinstance(value, dict)
        return value


def recipe_from_mapping(data: Any, *, file: str = "", text: str = "") -> Recipe:
    """A recipe from a plain mapping (a parsed YAML file)."""
    recipe = from_mapping(Recipe, data, file=file)
    object.__setattr__(recipe, "path", file)
    object.__setattr__(recipe, "text", text)
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Load and type-check a recipe file.

    Raises:
        ConfigError: unreadable, not YAML, a wrong type, a missing or unknown key
            (naming the file and the key path).
    """
    path = Path(path)
    return recipe_from_mapping(read_yaml(path), file=str(path),
                               text=path.read_text(encoding="utf-8"))


def lab_config_path(recipe: Recipe) -> Path | None:
    """The lab config the recipe names (relative to the recipe file), if any."""
    if not recipe.lab:
        return None
    lab = Path(recipe.lab).expanduser()
    if not lab.is_absolute() and recipe.path:
        lab = Path(recipe.path).resolve().parent / lab
    return lab


# ---- checking against the lab -------------------------------------------------------------


@dataclass(frozen=True)
class TargetUse:
    """Something a procedure will drive or read, for the checks before the run.

    Attributes:
        name: the target (``tes1/bias_voltage``) or stream (``tes1/squid_out``).
        key_path: the recipe key that decides it (for the error message).
        values: numbers it will be set to (checked against limits and range).
        kind: ``control``, ``action`` or ``stream``.
    """

    name: str
    key_path: str
    values: tuple[float, ...] = ()
    kind: str = "control"


_RANGE = re.compile(r"^\s*(-?[0-9.eE+-]+)\s+to\s+(-?[0-9.eE+-]+)")


def check_recipe(recipe: Recipe, config: LabConfig, targets: list[dict[str, Any]],
                 uses: list[TargetUse]) -> None:
    """Check every use against the daemon's targets (``Lab.list()``), limits and streams.

    Raises:
        RecipeError: listing every problem found (nothing has moved).
    """
    known = {str(t["target"]): t for t in targets}
    streams = {f"{inst.source}/{poll.channel or poll.spec}"
               for inst in config.instruments.values() for poll in inst.poll or []}
    problems: list[str] = []
    for use in uses:
        where = use.key_path
        if use.kind == "stream":
            if use.name not in streams:
                problems.append(f"{_wiring_key(recipe, use.name) or where}: unknown stream "
                                f"{use.name!r}{_near(use.name, streams)} (no instrument of "
                                "the lab config polls it)")
            continue
        info = known.get(use.name)
        if info is None:
            problems.append(f"{_wiring_key(recipe, use.name) or where}: unknown target "
                            f"{use.name!r}{_near(use.name, known)} (the daemon "
                            f"{config.daemon.name} has no such control or action)")
            continue
        if str(info.get("kind")) != use.kind:
            problems.append(f"{where}: {use.name} is a {info.get('kind')}, the procedure needs "
                            f"a {use.kind}")
            continue
        limit = config.limits.get(use.name)
        allowed = _RANGE.match(str(info.get("allowed", "")))
        unit = str(info.get("unit", ""))
        for value in use.values:
            if limit is not None and ((limit.min is not None and value < limit.min)
                                      or (limit.max is not None and value > limit.max)):
                problems.append(f"{where}: {value:g} {unit} is outside the limits of "
                                f"{use.name} ({limit.min:g} to {limit.max:g} {unit})"
                                if limit.min is not None and limit.max is not None else
                                f"{where}: {value:g} {unit} is beyond the limit of {use.name}")
                break
            if allowed and not float(allowed.group(1)) <= value <= float(allowed.group(2)):
                problems.append(f"{where}: {value:g} {unit} is outside the range of "
                                f"{use.name} ({info.get('allowed')})")
                break
    if problems:
        raise RecipeError(problems, file=recipe.path)


def _wiring_key(recipe: Recipe, name: str) -> str | None:
    """The ``detector.wiring`` key that names ``name`` (or its prefix), if one does."""
    wiring = recipe.detector.wiring
    best, length = None, -1
    for item in dataclasses.fields(wiring):
        value = str(getattr(wiring, item.name))
        if name == value:
            return f"detector.wiring.{item.name}"
        if item.name.endswith("_prefix") and name[len(value):len(value) + 1] in ("/", "_") \
                and name.startswith(value) and len(value) > length:
            best, length = f"detector.wiring.{item.name}", len(value)
    return best


def _near(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
