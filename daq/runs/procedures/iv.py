"""TES I-V: overbias, sweep the bias down (and back up), the SQUID's DC output at each point.

Measurement: the loop is locked with a small feedback resistor (the whole
superconducting branch stays on the digitizer's screen), the TES is driven
normal at the top bias (:func:`~daq.runs.procedures.common.overbias`, with a
thermal overbias when the recipe allows it), then the bias is stepped down;
at every point the mean of fresh records is the loop's DC output. The loop
is never reset during the sweep, so all points share one output offset
(except for a slip at the latch, which the normal-branch offset handles).

Stream ``iv``: ``bias_v`` (V), ``v_out_v`` (V, the DC level), ``v_out_std_v``
(V, the noise within a record), ``clipped`` (1 when a record sat at the
rails), ``up`` (1 on the way back up).

Analysis (:func:`daq.analysis.iv.analyze_iv` on the downward sweep): R_n,
R_par, the offset, P_sat at the chosen fraction of R_n, the latch; figures:
the I-V with its branch fits, P and R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daq.analysis import plots
from daq.analysis.iv import IVCircuit, IVResult, analyze_iv
from daq.runs.data import PointStream, RunData
from daq.runs.documents import JsonObject, to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, IVParams, OffsetBranch, RecordSetup, sweep_values
from daq.runs.procedures import Analysis
from daq.runs.procedures.common import (
    DC_TRIGGER_HZ,
    Level,
    RecordReader,
    dc_level,
    lock_loop,
    overbias,
    scope_uses,
    set_bias,
    setup_scope,
    squid_uses,
    start_trigger,
    trigger_gen_uses,
)
from daq.runs.recipe import Recipe, TargetUse

STREAM = "iv"
UNITS = {"bias_v": "V", "v_out_v": "V", "v_out_std_v": "V", "v_out_lsb_v": "V", "clipped": "",
         "up": "", "feedback_ohm": "Ohm", "segment": "", "boundary": ""}
#: The superconducting test steps the bias by this current (common.superconducting).
TEST_STEP_A = 2e-6


def iv_uses(p: IVParams, det: Detector, key: str) -> list[TargetUse]:
    """Everything an I-V with parameters ``p`` drives and reads (``key``: its recipe section)."""
    w = det.wiring
    sweep = p.sweep()
    step = np.sign(p.top_v) * TEST_STEP_A * det.bias_resistor_ohm
    values = (float(sweep.min()), float(sweep.max()), p.top_v, p.top_v - step)
    uses = [TargetUse(w.bias, f"{key}.bias_v", values),
            TargetUse(w.squid_out, f"{key}.record", kind="stream"),
            *scope_uses(w.scope_prefix, f"{key}.record"),
            *trigger_gen_uses(w.trigger_gen_prefix, "detector.wiring.trigger_gen_prefix"),
            *squid_uses(w, f"{key}.feedback_ohm")]
    if p.thermal_overbias is not None:
        uses += [TargetUse(w.mxc_setpoint, f"{key}.overbias_bath_k", (p.overbias_bath_k,)),
                 TargetUse(w.heater_range, f"{key}.thermal_overbias", (0.00316,)),
                 TargetUse(w.heater_mode, f"{key}.thermal_overbias"),
                 TargetUse(w.mxc, f"{key}.thermal_overbias", kind="stream")]
    return uses


def uses(recipe: Recipe) -> list[TargetUse]:
    """The recipe's I-V."""
    return iv_uses(recipe.params(), recipe.detector, "iv")


def prepare_dc(run: Run, feedback_ohm: float, record: RecordSetup | None = None) -> None:
    """Digitizer and loop for DC levels: short records triggered at once, the loop
    locked and reset (its output wherever the last user left it: back on the screen)."""
    setup_scope(run, record or RecordSetup())
    start_trigger(run, DC_TRIGGER_HZ)
    lock_loop(run, feedback_ohm, reset=True)


@dataclass(frozen=True)
class _Point:
    bias_v: float
    level: Level
    feedback_ohm: float
    segment: int
    up: float


#: dI_TES/dI_bias above this (in a down sweep) means superconducting: R_sh / (R_sh + R_par)
#: of the bias goes through the TES there, a few per cent at most anywhere else.
SUPERCONDUCTING_SLOPE = 0.4


def _superconducting_pair(a: _Point, b: _Point, det: Detector) -> bool:
    """Whether two neighbouring points (same loop settings) look superconducting."""
    if b.level.clipped:
        return True  # off the screen: the loop followed a current the sweep cannot fit
    if a.segment != b.segment or b.bias_v == a.bias_v:
        return False
    gain = det.gain_v_per_a(b.feedback_ohm)
    di = (b.level.mean_v - a.level.mean_v) / gain
    dib = (b.bias_v - a.bias_v) / det.bias_resistor_ohm
    return di / dib > SUPERCONDUCTING_SLOPE


def sweep_iv(run: Run, p: IVParams, stream: str = STREAM) -> None:
    """Overbias and sweep (the measurement of an I-V), emitting ``stream``.

    The normal branch and the transition are read with ``p.feedback_ohm``
    (fine resolution); once two neighbouring points show the superconducting
    slope (the TES latched), the loop is relocked with the smaller
    ``p.superconducting_feedback_ohm`` so the superconducting branch stays on
    the screen, and the point is measured again. The point before it may be
    the latch itself, read through the loop's slip at the latch: it is kept
    but marked ``boundary`` (the analysis leaves it out). Each point goes out
    once the next one has been measured, since only then is it known which.
    """
    det = run.detector
    sweep = p.sweep()
    n_down = len(sweep_values(p.bias_v))
    reader = RecordReader(run, det.wiring.squid_out)

    def measure_point(bias: float, feedback: float, segment: int, up: float) -> _Point:
        set_bias(run, bias)
        run.wait(p.settle_s)
        reader.mark()
        return _Point(bias, dc_level(reader, p.records_per_point), feedback, segment, up)

    def emit(point: _Point, boundary: bool = False) -> None:
        run.emit(stream, {"bias_v": point.bias_v, "v_out_v": point.level.mean_v,
                          "v_out_std_v": point.level.std_v, "v_out_lsb_v": point.level.lsb_v,
                          "clipped": float(point.level.clipped), "up": point.up,
                          "feedback_ohm": point.feedback_ohm, "segment": float(point.segment),
                          "boundary": float(boundary)}, UNITS)

    try:
        run.add_steps(len(sweep) + 2)
        run.step(f"{stream}: set up the readout",
                 lambda: prepare_dc(run, p.feedback_ohm, p.record))

        def drive_normal() -> None:
            overbias(run, reader, p.top_v, p.overbias_s, p.feedback_ohm,
                     thermal=p.thermal_overbias, bath_k=p.overbias_bath_k)
            run.call(det.wiring.squid_reset)  # lock near the top: the sweep fits the screen

        run.step(f"{stream}: overbias at {p.top_v:g} V", drive_normal)
        held: _Point | None = None
        switched = False
        for k, bias in enumerate(sweep):
            up = 1.0 if k >= n_down else 0.0

            def point(bias: float = float(bias), up: float = up, held: _Point | None = held,
                      switched: bool = switched) -> tuple[_Point, bool]:
                feedback = p.superconducting_feedback_ohm if switched else p.feedback_ohm
                new = measure_point(bias, feedback, int(switched), up)
                if held is None:
                    return new, switched
                if not switched and _superconducting_pair(held, new, det):
                    lock_loop(run, p.superconducting_feedback_ohm, reset=True)
                    emit(held, boundary=True)
                    return measure_point(bias, p.superconducting_feedback_ohm, 1, up), True
                emit(held)
                return new, switched

            held, switched = run.step(f"{stream}: {bias:.3f} V", point)
        if held is not None:
            run.step(f"{stream}: last point", lambda: emit(held), count=False)
    finally:
        reader.close()


def measure(run: Run, p: IVParams) -> None:
    """An I-V."""
    sweep_iv(run, p)


def analyze_stream(points: PointStream, p: IVParams, det: Detector) -> IVResult:
    """The I-V analysis of a stream's downward sweep.

    Every point is taken in units of the first feedback resistor's output.
    The superconducting segment was relocked, so its output offset is its own:
    its slope gives R_par, and its offset is set so that the branch passes
    through zero current at zero bias, as it physically does (a second pass
    of the analysis, which leaves the normal branch and the transition as
    they were).
    """
    use = (points["up"] == 0) & (points["boundary"] == 0)
    gain = det.gain_v_per_a(p.feedback_ohm)
    volts = points["v_out_v"] * gain / np.array([det.gain_v_per_a(r)
                                                  for r in points["feedback_ohm"]])
    circuit = IVCircuit(det.shunt_ohm, gain, det.bias_resistor_ohm)
    # A DC level without noise is quantised: its error is the digitizer's step / sqrt(12)
    # (the mean of records that all read one level cannot do better than one level).
    first = use & (points["segment"] == 0)
    lsb = float(np.nanmedian(points["v_out_lsb_v"][first]))
    relocked = (points["segment"] == 1)[use]

    def once(v: np.ndarray) -> IVResult:
        return analyze_iv(points["bias_v"][use], v, circuit,
                          bias_is_voltage=True, p_sat_fraction=p.p_sat_fraction,
                          offset_branch=p.offset_branch.value,
                          resolution_a=lsb / np.sqrt(12.0) / abs(gain),
                          superconducting=relocked if relocked.sum() >= 3 else None)

    v = volts[use]
    result = once(v)
    if relocked.sum() >= 3 and p.offset_branch is OffsetBranch.NORMAL:
        v = v.copy()
        v[relocked] -= result.superconducting_intercept_a * gain
        result = once(v)
    return result


def result_json(iv: IVResult, det: Detector) -> JsonObject:
    """The numbers of an I-V."""
    return {
        "r_n_ohm": to_json(iv.r_n_ohm), "r_n_stderr_ohm": to_json(iv.r_n_stderr_ohm),
        "r_par_ohm": to_json(iv.r_par_ohm), "p_sat_w": to_json(iv.p_sat_w),
        "p_sat_fraction": iv.p_sat_fraction, "output_offset_v": to_json(iv.output_offset_v),
        "normal_intercept_a": to_json(iv.normal_intercept_a),
        "latch_bias_v": to_json(None if iv.latch_bias_a is None
                                else iv.latch_bias_a * det.bias_resistor_ohm),
        "points": int(iv.i_bias_a.size),
        "p_at_r_fraction_w": {f"{f:.1f}": to_json(iv.p_at(f)) for f in (0.3, 0.5, 0.7, 0.9)},
    }


def analyze(data: RunData, p: IVParams, det: Detector) -> Analysis:
    """R_n, P_sat, ... from the ``iv`` stream."""
    iv = analyze_stream(data.points[STREAM], p, det)
    title = f"TES I-V, {det.name}"
    return Analysis(result_json(iv, det), [("iv", title, plots.plot_iv(iv, title=title))],
                    {"iv": iv})


def iv_for(run: Run, needed: bool, p: IVParams | None, prefix: str) -> IVResult | None:
    """An I-V (stream ``<prefix>iv``) when an operating point is a fraction of R_n."""
    if not needed:
        return None
    params = p or IVParams()
    sweep_iv(run, params, stream=f"{prefix}{STREAM}")
    return analyze_stream(run.data.points[f"{prefix}{STREAM}"], params, run.detector)


def settle_at(run: Run, bias_v: float, iv: IVParams | None, feedback_ohm: float,
              settle_s: float) -> None:
    """Onto the transition at ``bias_v`` from the normal state, loop relocked with
    ``feedback_ohm`` (the overbias is tested with the I-V's small feedback resistor)."""
    params = iv or IVParams()
    reader = RecordReader(run, run.detector.wiring.squid_out)
    try:
        prepare_dc(run, params.feedback_ohm)
        overbias(run, reader, params.top_v, params.overbias_s, params.feedback_ohm,
                 thermal=params.thermal_overbias, bath_k=params.overbias_bath_k)
        set_bias(run, bias_v)
        run.wait(settle_s)
        lock_loop(run, feedback_ohm, reset=True)
    finally:
        reader.close()


def point_uses(p: IVParams | None, det: Detector, key: str, bias_v: float | None) -> list[TargetUse]:
    """What reaching an operating point drives: the I-V's targets, and the bias there
    (``key``: the procedure's recipe section)."""
    out = iv_uses(p or IVParams(), det, f"{key}.iv")
    if bias_v is not None:
        out.append(TargetUse(det.wiring.bias, f"{key}.operating_point.bias_v", (bias_v,)))
    return out
