"""SQUID V-Phi and lock point: sweep the flux offset in tune mode, fit, lock at the steepest slope.

Measurement: the loop is opened (tune: the output is the amplified SQUID
voltage V(Phi)), the flux-offset current is stepped through several flux
quanta and the DC output (mean of fresh records) is read at each step. The
analysis (:func:`daq.analysis.squid.analyze_vphi`) gives the period (coil
current per flux quantum, hence the coil's mutual inductance), the
modulation depth and the steepest slope of the requested sign; then the flux
offset is set to the lock point nearest the middle of the sweep and the loop
is locked there (and reset, so it locks at that flux).

Streams: ``vphi`` (``flux_a`` A, ``v_out_v`` V, ``v_out_std_v`` V, ``clipped``),
``lock`` (one point: ``flux_a``, ``v_out_v`` and ``clipped`` after locking).
"""

from __future__ import annotations

import numpy as np

from daq.analysis import plots
from daq.analysis.squid import VPhiResult, analyze_vphi
from daq.runs.data import PointStream, RunData
from daq.runs.documents import to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, VPhiParams
from daq.runs.procedures import Analysis
from daq.runs.procedures.common import (
    DC_TRIGGER_HZ,
    RecordReader,
    dc_level,
    scope_uses,
    setup_scope,
    start_trigger,
    trigger_gen_uses,
)
from daq.runs.recipe import Recipe, TargetUse

STREAM = "vphi"
UNITS = {"flux_a": "A", "v_out_v": "V", "v_out_std_v": "V", "clipped": ""}


def uses(recipe: Recipe) -> list[TargetUse]:
    """The flux sweep, the loop's mode and lock, the digitizer."""
    p: VPhiParams = recipe.params()
    w = recipe.detector.wiring
    sweep = p.sweep()
    out = [TargetUse(w.squid_flux, "vphi.flux_start_a", (float(sweep.min()), float(sweep.max()))),
           TargetUse(w.squid_mode, "vphi"),
           TargetUse(w.squid_reset, "vphi.lock", kind="action"),
           TargetUse(w.squid_out, "vphi.record", kind="stream"),
           *scope_uses(w.scope_prefix, "vphi.record"),
           *trigger_gen_uses(w.trigger_gen_prefix, "detector.wiring.trigger_gen_prefix")]
    if p.squid_bias_a is not None:
        out.append(TargetUse(w.squid_bias, "vphi.squid_bias_a", (p.squid_bias_a,)))
    return out


def _set_number(run: Run, target: str, value: float) -> float:
    """Set and return the value as sent (a DAC quantises it)."""
    sent = run.set(target, value)
    return float(sent) if isinstance(sent, int | float) else float(value)


def measure(run: Run, p: VPhiParams) -> None:
    """Tune, sweep, fit, lock."""
    w = run.detector.wiring
    reader = RecordReader(run, w.squid_out)
    sweep = p.sweep()
    run.plan(len(sweep) + 2)
    try:
        def prepare() -> None:
            setup_scope(run, p.record)
            start_trigger(run, DC_TRIGGER_HZ)
            if p.squid_bias_a is not None:
                run.set(w.squid_bias, p.squid_bias_a)
            run.set(w.squid_mode, "tune")

        run.step("vphi: tune mode", prepare)
        for flux in sweep:
            def point(flux: float = float(flux)) -> None:
                sent = _set_number(run, w.squid_flux, flux)
                run.wait(p.settle_s)
                reader.mark()
                level = dc_level(reader, 1)
                run.emit(STREAM, {"flux_a": sent, "v_out_v": level.mean_v,
                                  "v_out_std_v": level.std_v, "clipped": float(level.clipped)},
                         UNITS)

            run.step(f"vphi: {flux * 1e6:.2f} uA", point)
        if not p.lock:
            return
        fit = analyze_stream(run.data.points[STREAM], p)

        def lock() -> None:
            sent = _set_number(run, w.squid_flux, fit.lock_current_a)
            run.set(w.squid_mode, "lock")
            run.call(w.squid_reset)
            reader.mark()
            level = dc_level(reader, 1)
            run.emit("lock", {"flux_a": sent, "v_out_v": level.mean_v,
                              "v_out_std_v": level.std_v, "clipped": float(level.clipped)},
                     UNITS)

        run.step(f"lock at {fit.lock_current_a * 1e6:.2f} uA", lock)
    finally:
        reader.close()


def analyze_stream(points: PointStream, p: VPhiParams) -> VPhiResult:
    """The V-Phi fit of a sweep."""
    good = points["clipped"] == 0
    return analyze_vphi(points["flux_a"][good], points["v_out_v"][good],
                        slope_sign=p.slope_sign)


def analyze(data: RunData, p: VPhiParams, det: Detector) -> Analysis:
    """Period, depth, slope and lock point from the ``vphi`` stream."""
    fit = analyze_stream(data.points[STREAM], p)
    result = {"period_a": to_json(fit.period_a),
              "mutual_inductance_h": to_json(fit.mutual_inductance_h),
              "amplitude_v": to_json(fit.amplitude_v), "mean_v": to_json(fit.mean_v),
              "slope_v_per_a": to_json(fit.slope_v_per_a),
              "lock_current_a": to_json(fit.lock_current_a),
              "lock_voltage_v": to_json(fit.lock_voltage_v),
              "residual_rms_v": to_json(fit.residual_rms_v),
              "points": int(np.count_nonzero(data.points[STREAM]["clipped"] == 0))}
    lock = data.points.get("lock")
    if lock is not None and len(lock):
        result["locked_output_v"] = to_json(float(lock["v_out_v"][-1]))
        result["locked_clipped"] = bool(lock["clipped"][-1])
    title = f"SQUID V-Φ (tune mode), {det.name}"
    return Analysis(result, [("vphi", title, plots.plot_vphi(fit, title=title))], {"vphi": fit})
