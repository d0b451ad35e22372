"""Complex impedance (dI/dV): a square (or sine) on the bias, normal, transition, superconducting.

Measurement: an I-V first (R_n, and R_0 at every bias); then the generator's
first output, summed into the bias line, modulates the bias while the
generator's second output, at the same frequency and phase, triggers the
digitizer, so every record starts at the same phase of the drive: records
are joined end to end into one long record of whole periods, and the drive
is known from the generator's settings (its phase is the trigger's). In
order: normal (overbias, larger amplitude), each operating point from the
highest resistance down (onto the transition from above), then
superconducting (bias to zero, so the TES latches, then the small bias).
The loop is relocked with the sensitive feedback resistor at every state.

Streams: ``iv``; ``didv.normal``, ``didv.op<k>``, ``didv.sc``: records (loop
volts), tags ``bias_v``, ``amplitude_vpp``, ``frequency_hz``.

Analysis (:mod:`daq.analysis.impedance`): the transfer function of each
state at the drive's harmonics, the readout calibrated with the normal and
superconducting states, Z_TES at each operating point fitted with the
one-body model (loop gain, beta, tau; tau_I and tau_eff follow); figures:
the impedance of each operating point, and the I-V.
"""

from __future__ import annotations

import numpy as np

from daq.analysis import plots
from daq.analysis.impedance import ImpedanceResult, TransferFunction, analyze_impedance
from daq.analysis.impedance import transfer_function as make_tf
from daq.analysis.noise import veto_pulses
from daq.runs.data import RecordStream, RunData
from daq.runs.documents import JsonObject, to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, ImpedanceParams
from daq.runs.procedures import Analysis
from daq.runs.procedures import iv as iv_proc
from daq.runs.procedures import noise as noise_proc
from daq.runs.procedures.common import (
    bias_for_fraction,
    lock_loop,
    r0_at_bias,
    reset_loop,
    set_bias,
    setup_scope,
    start_trigger,
)
from daq.runs.recipe import Recipe, TargetUse

TAG_UNITS = {"bias_v": "V", "amplitude_vpp": "V", "frequency_hz": "Hz"}


def uses(recipe: Recipe) -> list[TargetUse]:
    """The I-V's targets, the modulation, the states' biases."""
    p: ImpedanceParams = recipe.params()
    det = recipe.detector
    w = det.wiring
    out = iv_proc.iv_uses(p.iv, det, "impedance.iv")
    out += [TargetUse(w.bias, "impedance.normal_bias_v", (p.normal_bias_v,)),
            TargetUse(w.bias, "impedance.superconducting_bias_v", (p.superconducting_bias_v,)),
            TargetUse(w.modulation("function"), "impedance.function"),
            TargetUse(w.modulation("frequency"), "impedance.frequency_hz", (p.frequency_hz,)),
            TargetUse(w.modulation("amplitude"), "impedance.amplitude_vpp",
                      (p.amplitude_vpp, p.normal_amplitude_vpp)),
            TargetUse(w.modulation("offset"), "impedance", (0.0,)),
            TargetUse(w.modulation("duty"), "impedance", (50.0,)),
            TargetUse(w.modulation("output"), "impedance")]
    for k, point in enumerate(p.operating_points):
        if point.bias_v is not None:
            out.append(TargetUse(w.bias, f"impedance.operating_points[{k}].bias_v",
                                 (point.bias_v,)))
    return out


def _modulate(run: Run, p: ImpedanceParams, amplitude_vpp: float) -> None:
    w = run.detector.wiring
    run.set(w.modulation("function"), p.function)
    run.set(w.modulation("frequency"), p.frequency_hz)
    run.set(w.modulation("amplitude"), amplitude_vpp)
    run.set(w.modulation("offset"), 0.0)
    if p.function == "SQU":
        run.set(w.modulation("duty"), 50.0)
    run.set(w.modulation("output"), True)


def measure(run: Run, p: ImpedanceParams) -> None:
    """I-V, then the three kinds of state."""
    det = run.detector
    iv = iv_proc.iv_for(run, True, p.iv, "")
    assert iv is not None
    points = [(f"op{k}", point.bias_v if point.bias_v is not None else
               bias_for_fraction(iv, float(point.r_fraction or 0.0), det.bias_resistor_ohm))
              for k, point in enumerate(p.operating_points)]
    # From the highest bias down: each point is reached from above, on the transition.
    points.sort(key=lambda item: -abs(item[1]))
    run.add_steps(1)

    def normal() -> None:
        iv_proc.settle_at(run, p.normal_bias_v, p.iv, p.feedback_ohm, p.settle_s)
        setup_scope(run, p.record)
        start_trigger(run, p.frequency_hz)
        _modulate(run, p, p.normal_amplitude_vpp)
        reset_loop(run)

    run.step("dI/dV: normal", normal)
    _records(run, p, "normal", p.normal_bias_v, p.normal_amplitude_vpp)
    for name, bias in points:
        run.add_steps(1)

        def arrive(bias: float = bias) -> None:
            _modulate(run, p, p.amplitude_vpp)
            set_bias(run, bias)
            run.wait(p.settle_s)
            reset_loop(run)

        run.step(f"dI/dV: {name} at {bias:.3f} V", arrive)
        _records(run, p, name, bias, p.amplitude_vpp)
    run.add_steps(1)

    def superconducting() -> None:
        set_bias(run, 0.0)  # latch
        run.wait(p.settle_s)
        set_bias(run, p.superconducting_bias_v)
        run.wait(p.settle_s)
        lock_loop(run, p.feedback_ohm, reset=True)

    run.step("dI/dV: superconducting", superconducting)
    _records(run, p, "sc", p.superconducting_bias_v, p.amplitude_vpp)


def _records(run: Run, p: ImpedanceParams, state: str, bias: float, amplitude: float) -> None:
    """``p.records`` records without a pulse (more are taken while photons spoil some, up to
    four times as many in all)."""
    stream = f"didv.{state}"
    tags = {"bias_v": bias, "amplitude_vpp": amplitude, "frequency_hz": p.frequency_hz}
    noise_proc.take_records(run, stream, p.records, f"dI/dV {state} record", tags, TAG_UNITS)
    while True:
        rs = run.data.records[stream]
        clean = len(rs) - in_phase(rs)[1]
        if clean >= p.records or len(rs) >= 4 * p.records:
            return
        more = min(p.records - clean, 4 * p.records - len(rs))
        noise_proc.take_records(run, stream, more, f"dI/dV {state} record", tags, TAG_UNITS)


def drive_of(rs: RecordStream, p: ImpedanceParams, amplitude_vpp: float) -> np.ndarray:
    """The generator's voltage at each sample of the joined records.

    Each record's trigger (sample ``presamples``) is the drive's phase 0 (the
    trigger is the generator's second output, in phase with the first).
    """
    n = rs.raw.shape[1]
    phase = np.mod((np.arange(n) - rs.presamples) * rs.dt_s * p.frequency_hz, 1.0)
    if p.function == "SQU":
        one = np.where(phase < 0.5, 0.5, -0.5) * amplitude_vpp
    else:
        one = 0.5 * amplitude_vpp * np.sin(2.0 * np.pi * phase)
    return np.tile(one, len(rs))


def in_phase(rs: RecordStream) -> tuple[np.ndarray, int]:
    """The records without those holding a pulse, and how many were left out.

    All records start at the same phase of the drive, so their median is the
    response (the median, not the mean: the mean carries a share of every
    pulse into every record); what a record holds beyond it is noise, or a
    photon's pulse, which would swamp the harmonics: such records are vetoed
    like noise records.
    """
    volts = rs.volts()
    if len(rs) < 3:
        return volts, 0
    vetoed = veto_pulses(volts - np.median(volts, axis=0), rs.dt_s)
    if np.count_nonzero(~vetoed) < 2:
        raise ValueError(f"{len(rs)} records of one state, fewer than two without a pulse: "
                         "take more records, or shorter ones")
    return volts[~vetoed], int(np.count_nonzero(vetoed))


def state_tf(data: RunData, p: ImpedanceParams, state: str) -> tuple[TransferFunction, int]:
    """The transfer function (loop volts per generator volt) of one state, and the records
    vetoed."""
    rs = data.records[f"didv.{state}"]
    amplitude = float(np.nanmedian(rs.tags["amplitude_vpp"]))
    records, vetoed = in_phase(rs)
    drive = drive_of(rs, p, amplitude)[: records.size]
    return make_tf(drive, records.reshape(-1), rs.dt_s, p.frequency_hz), vetoed


def analyze(data: RunData, p: ImpedanceParams, det: Detector) -> Analysis:
    """Calibrate with normal and superconducting, fit every operating point."""
    iv = iv_proc.analyze_stream(data.points[iv_proc.STREAM], p.iv, det)
    (sc, sc_vetoed), (normal, normal_vetoed) = state_tf(data, p, "sc"), state_tf(data, p,
                                                                                 "normal")
    out = Analysis({"iv": iv_proc.result_json(iv, det), "operating_points": []},
                   [("iv", f"TES I-V, {det.name}", plots.plot_iv(iv, title=f"TES I-V, {det.name}"))],
                   {"iv": iv})
    ops: list[JsonObject] = []
    names = sorted((s.split(".", 1)[1] for s in data.records if s.startswith("didv.op")),
                   key=lambda name: int(name[2:]))
    for name in names:
        rs = data.records[f"didv.{name}"]
        bias = float(np.nanmedian(rs.tags["bias_v"]))
        r0 = r0_at_bias(iv, bias, det.bias_resistor_ohm)
        tf, vetoed = state_tf(data, p, name)
        result: ImpedanceResult = analyze_impedance(tf, sc, normal, r_n_ohm=iv.r_n_ohm,
                                                    r0_ohm=r0)
        fit = result.fit
        ops.append({"name": name, "bias_v": to_json(bias), "r0_ohm": to_json(r0),
                    "r0_fraction": to_json(r0 / iv.r_n_ohm),
                    "loop_gain": to_json(fit.loop_gain), "beta": to_json(fit.beta),
                    "tau_s": to_json(fit.tau_s), "tau_i_s": to_json(fit.tau_i_s),
                    "tau_eff_s": to_json(fit.tau_eff_s),
                    "loop_gain_stderr": to_json(fit.loop_gain_stderr),
                    "beta_stderr": to_json(fit.beta_stderr),
                    "tau_stderr_s": to_json(fit.tau_stderr_s),
                    "chi2_reduced": to_json(fit.chi2_reduced),
                    "r_l_ohm": to_json(result.calibration.r_l_ohm),
                    "inductance_h": to_json(result.calibration.inductance_h),
                    "frequencies": int(result.freqs_hz.size), "vetoed": vetoed})
        title = f"TES complex impedance, {det.name} at R = {r0 / iv.r_n_ohm:.2f} R_n"
        out.figures.append((f"didv_{name}", title, plots.plot_impedance(result, title=title)))
        out.values[name] = result
    out.result["operating_points"] = ops  # type: ignore[assignment]
    out.result["vetoed"] = {"sc": sc_vetoed, "normal": normal_vetoed}
    return out
