"""Current noise at an operating point: untriggered records, averaged PSD in A/sqrt(Hz).

Measurement: (an I-V first when the operating point is a fraction of R_n),
overbias and step onto the transition at the operating point, relock the
loop with the sensitive feedback resistor, then take records triggered by
the generator's second output at a frequency that has nothing to do with
the photons: records at random times, some with a pulse (vetoed).

Stream ``noise``: records (volts at the loop output), tag ``bias_v``.

Analysis (:func:`daq.analysis.noise.average_psd`): the one-sided current-noise
PSD at the TES (loop volts divided by the readout gain, the window's
normalisation so white noise of variance s^2 reads 2 s^2 / fs), pulses
vetoed, and the noise level at ``report_hz``; figure: the ASD.
"""

from __future__ import annotations

import numpy as np

from daq.analysis import plots
from daq.analysis.noise import NoiseSpectrum, average_psd
from daq.runs.data import RunData
from daq.runs.documents import JsonObject, to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, NoiseParams
from daq.runs.procedures import Analysis
from daq.runs.procedures import iv as iv_proc
from daq.runs.procedures.common import (
    RecordReader,
    random_trigger_hz,
    resolve_bias,
    setup_scope,
    start_trigger,
)
from daq.runs.recipe import Recipe, TargetUse

STREAM = "noise"


def noise_uses(p: NoiseParams, det: Detector, key: str) -> list[TargetUse]:
    """Everything a noise measurement drives and reads."""
    return iv_proc.point_uses(p.iv, det, key, p.operating_point.bias_v)


def uses(recipe: Recipe) -> list[TargetUse]:
    """The recipe's noise measurement."""
    return noise_uses(recipe.params(), recipe.detector, "noise")


def take_records(run: Run, stream: str, count: int, label: str, tags: dict[str, float],
                 units: dict[str, str]) -> None:
    """``count`` fresh records into ``stream``, one step each."""
    reader = RecordReader(run, run.detector.wiring.squid_out)
    try:
        run.add_steps(count)
        for k in range(count):
            def one() -> None:
                reader.mark()
                run.emit_record(stream, reader.take(1)[0], tags, units)

            run.step(f"{label} {k + 1}/{count}", one)
    finally:
        reader.close()


def measure_noise(run: Run, p: NoiseParams, prefix: str = "",
                  iv: iv_proc.IVResult | None = None) -> float:
    """The measurement (``iv``: an I-V already taken, for an operating point given as a
    fraction of R_n); returns the bias used, V."""
    if iv is None:
        iv = iv_proc.iv_for(run, p.operating_point.r_fraction is not None, p.iv, prefix)
    bias = resolve_bias(p.operating_point, iv, run.detector.bias_resistor_ohm)

    def arrive() -> None:
        iv_proc.settle_at(run, bias, p.iv, p.feedback_ohm, p.settle_s)
        setup_scope(run, p.record)
        start_trigger(run, random_trigger_hz(p.trigger_hz, p.record))

    run.add_steps(1)
    run.step(f"{prefix}noise: to {bias:.3f} V", arrive)
    take_records(run, f"{prefix}{STREAM}", p.records, f"{prefix}noise record",
                 {"bias_v": bias}, {"bias_v": "V"})
    return bias


def measure(run: Run, p: NoiseParams) -> None:
    """A noise spectrum."""
    measure_noise(run, p)


def spectrum(data: RunData, p: NoiseParams, det: Detector, stream: str) -> NoiseSpectrum:
    """The averaged current-noise PSD of a record stream."""
    rs = data.records[stream]
    return average_psd(rs.volts(), rs.dt_s, gain_v_per_a=det.gain_v_per_a(p.feedback_ohm),
                       segment_samples=p.segment_samples, window=p.window,
                       veto_threshold=p.veto_threshold)


def noise_result(psd: NoiseSpectrum, p: NoiseParams, bias_v: float) -> JsonObject:
    """The numbers of a noise spectrum."""
    return {"bias_v": to_json(bias_v), "report_hz": p.report_hz,
            "noise_a_per_rthz": to_json(psd.level(p.report_hz)),
            "records": psd.n_records, "vetoed": psd.n_vetoed,
            "resolution_hz": to_json(psd.resolution_hz),
            "window": psd.window, "segment_samples": psd.segment_samples}


def analyze_prefixed(data: RunData, p: NoiseParams, det: Detector, prefix: str = "") -> Analysis:
    """The analysis of ``<prefix>noise`` (and ``<prefix>iv`` when there is one)."""
    stream = f"{prefix}{STREAM}"
    psd = spectrum(data, p, det, stream)
    bias = float(np.nanmedian(data.records[stream].tags["bias_v"]))
    result = noise_result(psd, p, bias)
    title = f"Current noise, {det.name} at {bias:.3f} V bias"
    out = Analysis(result, [(f"{prefix}noise", title, plots.plot_noise(psd, title=title))],
                   {"noise": psd})
    if f"{prefix}iv" in data.points:
        iv_params = p.iv or iv_proc.IVParams()
        iv = iv_proc.analyze_stream(data.points[f"{prefix}iv"], iv_params, det)
        result["iv"] = iv_proc.result_json(iv, det)
        out.figures.append((f"{prefix}iv", f"TES I-V, {det.name}",
                            plots.plot_iv(iv, title=f"TES I-V, {det.name}")))
        out.values["iv"] = iv
    return out


def analyze(data: RunData, p: NoiseParams, det: Detector) -> Analysis:
    """PSD and noise level from the ``noise`` stream."""
    return analyze_prefixed(data, p, det)
