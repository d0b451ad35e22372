"""Pulses at an operating point: triggered records, template, optimal filter, resolution.

Measurement: (an I-V first for a fraction of R_n), onto the transition,
loop relocked with the sensitive feedback resistor; then pulse-free records
of the same length (triggered by the generator's second output: random
times, pulses vetoed later) give the baseline and the noise for the optimal
filter; then the digitizer triggers on the pulses themselves: on channel 1, where the
TES current has fallen ``trigger_threshold_a`` below its baseline (a photon
heats the TES; voltage biased, its current falls), with ``pretrigger_fraction``
of the record before the trigger.

Streams ``noise`` and ``pulses``: records (loop volts), tag ``bias_v``.

Analysis (:func:`daq.analysis.pulses.analyze_pulses`): records in amperes at
the TES (baseline from the pre-trigger samples), average pulse with its rise
and fall times, optimally filtered energies and the resolution (predicted
from the noise, and measured from the spread); figure: template and histogram.
"""

from __future__ import annotations

import numpy as np

from daq.analysis import plots
from daq.analysis.pulses import PulseResult, analyze_pulses
from daq.runs.data import RunData
from daq.runs.documents import to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, NoiseParams, PulsesParams
from daq.runs.procedures import Analysis
from daq.runs.procedures import iv as iv_proc
from daq.runs.procedures import noise as noise_proc
from daq.runs.procedures.common import (
    random_trigger_hz,
    resolve_bias,
    setup_scope,
    start_trigger,
)
from daq.runs.recipe import Recipe, TargetUse

STREAM = "pulses"


def pulses_uses(p: PulsesParams, det: Detector, key: str) -> list[TargetUse]:
    """Everything a pulse measurement drives and reads."""
    return iv_proc.point_uses(p.iv, det, key, p.operating_point.bias_v)


def uses(recipe: Recipe) -> list[TargetUse]:
    """The recipe's pulse measurement."""
    return pulses_uses(recipe.params(), recipe.detector, "pulses")


def _noise_params(p: PulsesParams) -> NoiseParams:
    """The noise analysis that goes with the pulses (same records, same readout)."""
    return NoiseParams(operating_point=p.operating_point, records=max(2, p.noise_records),
                       record=p.record, feedback_ohm=p.feedback_ohm,
                       trigger_hz=p.noise_trigger_hz)


def measure_pulses(run: Run, p: PulsesParams, prefix: str = "",
                   iv: iv_proc.IVResult | None = None) -> float:
    """The measurement (``iv``: an I-V already taken); returns the bias used, V."""
    det = run.detector
    if iv is None:
        iv = iv_proc.iv_for(run, p.operating_point.r_fraction is not None, p.iv, prefix)
    bias = resolve_bias(p.operating_point, iv, det.bias_resistor_ohm)
    tags, units = {"bias_v": bias}, {"bias_v": "V"}

    def arrive() -> None:
        iv_proc.settle_at(run, bias, p.iv, p.feedback_ohm, p.settle_s)
        setup_scope(run, p.record, pretrigger_fraction=p.pretrigger_fraction)
        start_trigger(run, random_trigger_hz(p.noise_trigger_hz, p.record))

    run.add_steps(2)
    run.step(f"{prefix}pulses: to {bias:.3f} V", arrive)
    noise_stream = f"{prefix}{noise_proc.STREAM}"
    noise_proc.take_records(run, noise_stream, p.noise_records, f"{prefix}noise record",
                            tags, units)
    baseline = float(np.median(run.data.records[noise_stream].volts()))
    # A photon heats the TES: its resistance rises and, voltage biased, its current falls.
    step_v = det.gain_v_per_a(p.feedback_ohm) * -p.trigger_threshold_a
    level = baseline + step_v

    def trigger_on_pulses() -> None:
        setup_scope(run, p.record, source="CHAN1", level_v=level,
                    slope="POS" if step_v > 0 else "NEG",
                    pretrigger_fraction=p.pretrigger_fraction)

    run.step(f"{prefix}pulses: trigger at {level:.3f} V", trigger_on_pulses)
    noise_proc.take_records(run, f"{prefix}{STREAM}", p.records, f"{prefix}pulse", tags, units)
    return bias


def measure(run: Run, p: PulsesParams) -> None:
    """Pulses and the noise that goes with them."""
    measure_pulses(run, p)


def pulse_analysis(data: RunData, p: PulsesParams, det: Detector, prefix: str = "") \
        -> PulseResult:
    """Template, shape, energies and resolution from ``<prefix>pulses`` and ``<prefix>noise``."""
    gain = det.gain_v_per_a(p.feedback_ohm)
    noise = noise_proc.spectrum(data, _noise_params(p), det, f"{prefix}{noise_proc.STREAM}")
    rs = data.records[f"{prefix}{STREAM}"]
    return analyze_pulses(rs.volts() / gain, rs.presamples, rs.dt_s, noise, p.line_energy_ev)


def analyze_prefixed(data: RunData, p: PulsesParams, det: Detector,
                     prefix: str = "") -> Analysis:
    """The pulse analysis (and the I-V's, when there is one)."""
    result_obj = pulse_analysis(data, p, det, prefix)
    shape = result_obj.shape
    bias = float(np.nanmedian(data.records[f"{prefix}{STREAM}"].tags["bias_v"]))
    result = {"bias_v": to_json(bias), "rise_s": to_json(shape.rise_s),
              "fall_s": to_json(shape.fall_s), "peak_a": to_json(result_obj.template.peak_a),
              "line_energy_ev": p.line_energy_ev,
              "resolution_fwhm_predicted_ev": to_json(result_obj.resolution_fwhm_predicted),
              "resolution_fwhm_measured_ev": to_json(result_obj.resolution_fwhm_measured),
              "records": len(data.records[f"{prefix}{STREAM}"]),
              "averaged": result_obj.template.n_averaged,
              "rejected": result_obj.template.n_rejected}
    title = f"Pulses, {det.name} at {bias:.3f} V bias"
    out = Analysis(result, [(f"{prefix}pulses", title,
                             plots.plot_pulses(result_obj, title=title))],
                   {"pulses": result_obj})
    if f"{prefix}iv" in data.points:
        iv = iv_proc.analyze_stream(data.points[f"{prefix}iv"], p.iv or iv_proc.IVParams(), det)
        result["iv"] = iv_proc.result_json(iv, det)
        out.figures.append((f"{prefix}iv", f"TES I-V, {det.name}",
                            plots.plot_iv(iv, title=f"TES I-V, {det.name}")))
        out.values["iv"] = iv
    return out


def analyze(data: RunData, p: PulsesParams, det: Detector) -> Analysis:
    """Pulse shape and resolution."""
    return analyze_prefixed(data, p, det)
