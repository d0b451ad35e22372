"""Nesting: at each bath temperature, wait until stable, then an I-V, a noise spectrum, pulses.

Measurement: for each of ``bath_k`` the 372's setpoint is set (closed loop,
``heater_range_a``; or ramped there at ``ramp_k_per_min``, the bath then
compared with the setpoint commanded at each moment, and stable only once
the ramp has arrived) and the run waits until the mixing chamber has been
within ``stable.band_k`` of it for ``stable.hold_s``; then each of ``steps``
runs with its own section, its streams prefixed ``t<k>.`` (``t0.iv``,
``t0.noise``, ...). A noise or pulse operating point given as a fraction of
R_n is found on the I-V just taken at that temperature.

Streams: ``bath`` (one point per temperature: ``target_k``, ``mxc_k``,
``bath_k`` as the thermometers read it when stable), and the steps' streams.

Analysis: each step's own analysis per temperature; the I-Vs' saturation
powers against the bath temperature (with the thermal-link fit
P = K (T_c^n - T_bath^n) when three or more temperatures were measured);
figures: every step's, and P_sat(T_bath).
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.optimize import curve_fit

from daq.runs.data import RunData
from daq.runs.documents import JsonObject, to_json
from daq.runs.engine import Run
from daq.runs.params import (
    Detector,
    NoiseParams,
    PulsesParams,
    TemperatureSeriesParams,
)
from daq.runs.procedures import Analysis
from daq.runs.procedures import iv as iv_proc
from daq.runs.procedures import noise as noise_proc
from daq.runs.procedures import pulses as pulses_proc
from daq.runs.procedures.common import Commanded, latest, wait_for_temperature
from daq.runs.recipe import Recipe, TargetUse

UNITS = {"target_k": "K", "mxc_k": "K", "bath_k": "K"}


def uses(recipe: Recipe) -> list[TargetUse]:
    """The 372's setpoint and heater, and each step's targets."""
    p: TemperatureSeriesParams = recipe.params()
    det = recipe.detector
    w = det.wiring
    out = [TargetUse(w.mxc_setpoint, "temperature_series.bath_k", tuple(p.bath_k)),
           TargetUse(w.mxc_ramp, "temperature_series.ramp_k_per_min", kind="action"),
           TargetUse(w.heater_range, "temperature_series.heater_range_a", (p.heater_range_a,)),
           TargetUse(w.heater_mode, "temperature_series"),
           TargetUse(w.mxc, "detector.wiring.mxc", kind="stream"),
           TargetUse(w.bath, "detector.wiring.bath", kind="stream")]
    if "iv" in p.steps:
        out += iv_proc.iv_uses(p.iv, det, "temperature_series.iv")
    if "noise" in p.steps:
        out += noise_proc.noise_uses(p.noise or NoiseParams(), det, "temperature_series.noise")
    if "pulses" in p.steps:
        out += pulses_proc.pulses_uses(p.pulses or PulsesParams(), det,
                                       "temperature_series.pulses")
    return out


def measure(run: Run, p: TemperatureSeriesParams) -> None:
    """Each temperature, each step."""
    w = run.detector.wiring
    run.plan(len(p.bath_k) * _steps_per_temperature(p), fixed=True)
    for k, target in enumerate(p.bath_k):
        prefix = f"t{k}."

        def arrive(target: float = target) -> None:
            with run.exempt(w.mxc, w.bath):  # the bath moves on purpose
                run.set(w.heater_mode, 5)
                run.set(w.heater_range, p.heater_range_a)
                if p.ramp_k_per_min is None:
                    run.set(w.mxc_setpoint, target)
                    mxc = wait_for_temperature(run, w.mxc, lambda: target, p.stable)
                else:
                    run.call(w.mxc_ramp, target=target, rate=p.ramp_k_per_min)
                    commanded = Commanded(run, w.mxc_setpoint)
                    mxc = wait_for_temperature(run, w.mxc, commanded, p.stable,
                                               until=lambda: abs(commanded() - target) < 1e-9)
            run.emit("bath", {"target_k": target, "mxc_k": mxc, "bath_k": latest(run, w.bath)},
                     UNITS)

        run.step(f"bath {target * 1e3:.1f} mK", arrive)
        iv = None
        if "iv" in p.steps:
            iv_proc.sweep_iv(run, p.iv, stream=f"{prefix}iv")
            iv = iv_proc.analyze_stream(run.data.points[f"{prefix}iv"], p.iv, run.detector)
        for step in p.steps:
            if step == "noise":
                noise_proc.measure_noise(run, p.noise or NoiseParams(), prefix, iv)
            elif step == "pulses":
                pulses_proc.measure_pulses(run, p.pulses or PulsesParams(), prefix, iv)


def _steps_per_temperature(p: TemperatureSeriesParams) -> int:
    """Counted steps at one temperature (for the ETA of the whole series)."""
    steps = 1
    if "iv" in p.steps:
        steps += len(p.iv.sweep()) + 2
    if "noise" in p.steps:
        steps += 1 + (p.noise or NoiseParams()).records
    if "pulses" in p.steps:
        pulses = p.pulses or PulsesParams()
        steps += 2 + pulses.records + pulses.noise_records
    return steps


def _without_iv(data: RunData, prefix: str) -> RunData:
    """The streams of one temperature, without its I-V (analysed with the series' own
    I-V parameters)."""
    return RunData({k: v for k, v in data.points.items()
                    if k.startswith(prefix) and k != f"{prefix}iv"},
                   {k: v for k, v in data.records.items() if k.startswith(prefix)})


def analyze(data: RunData, p: TemperatureSeriesParams, det: Detector) -> Analysis:
    """Every step at every temperature; P_sat against the bath temperature."""
    out = Analysis({"temperatures": []})
    rows: list[JsonObject] = []
    bath = data.points.get("bath")
    p_sat: list[tuple[float, float]] = []
    for k, target in enumerate(p.bath_k):
        prefix = f"t{k}."
        row: JsonObject = {"target_k": target}
        if bath is not None and k < len(bath):
            row["mxc_k"] = to_json(float(bath["mxc_k"][k]))
            row["bath_k"] = to_json(float(bath["bath_k"][k]))
        if f"{prefix}iv" in data.points:
            iv = iv_proc.analyze_stream(data.points[f"{prefix}iv"], p.iv, det)
            row["iv"] = iv_proc.result_json(iv, det)
            title = f"TES I-V, {det.name}, bath {target * 1e3:.1f} mK"
            out.figures.append((f"t{k}_iv", title, iv_proc.plots.plot_iv(iv, title=title)))
            if iv.p_sat_w is not None and "mxc_k" in row:
                p_sat.append((float(bath["mxc_k"][k]), iv.p_sat_w))  # type: ignore[index]
        sub = _without_iv(data, prefix)
        if f"{prefix}noise" in sub.records and "noise" in p.steps:
            noise = noise_proc.analyze_prefixed(sub, p.noise or NoiseParams(), det, prefix)
            row["noise"] = noise.result
            out.figures += [(f"t{k}_{name.split('.')[-1]}", title, fig)
                            for name, title, fig in noise.figures]
        if f"{prefix}pulses" in sub.records:
            pulses = pulses_proc.analyze_prefixed(sub, p.pulses or PulsesParams(), det, prefix)
            row["pulses"] = pulses.result
            out.figures += [(f"t{k}_{name.split('.')[-1]}", title, fig)
                            for name, title, fig in pulses.figures]
        rows.append(row)
    out.result["temperatures"] = rows  # type: ignore[assignment]
    if p_sat:
        fit = _thermal_fit(p_sat)
        out.result["thermal_link"] = fit
        out.figures.append(("psat_vs_bath", f"Saturation power vs bath temperature, {det.name}",
                            _psat_figure(p_sat, fit, det)))
    return out


def _model(t_bath: np.ndarray, k: float, t_c: float, n: float) -> np.ndarray:
    return k * (t_c**n - t_bath**n)


def _thermal_fit(points: list[tuple[float, float]]) -> JsonObject:
    if len(points) < 3:
        return {}
    t = np.array([x for x, _ in points])
    pw = np.array([y for _, y in points])
    try:
        popt, _ = curve_fit(_model, t, pw, p0=[pw[0] / (0.05**3.5), 0.05, 3.5], maxfev=20000)
    except RuntimeError:
        return {}
    k, t_c, n = (float(x) for x in popt)
    return {"k_w_per_k_n": to_json(k), "t_c_k": to_json(t_c), "n": to_json(n),
            "g_w_per_k": to_json(n * k * t_c ** (n - 1.0))}


def _psat_figure(points: list[tuple[float, float]], fit: JsonObject, det: Detector) -> Figure:
    fig = Figure(figsize=(7.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, alpha=0.3)
    t = np.array([x for x, _ in points])
    pw = np.array([y for _, y in points])
    ax.plot(t * 1e3, pw * 1e12, "o", label="P_sat from the I-V")
    if fit:
        grid = np.linspace(0.0, float(fit["t_c_k"]), 200)  # type: ignore[arg-type]
        ax.plot(grid * 1e3, _model(grid, float(fit["k_w_per_k_n"]),  # type: ignore[arg-type]
                                   float(fit["t_c_k"]), float(fit["n"])) * 1e12,  # type: ignore[arg-type]
                "-", label=f"K (T_c^n - T^n): n = {float(fit['n']):.2f}, "  # type: ignore[arg-type]
                           f"T_c = {float(fit['t_c_k']) * 1e3:.1f} mK")  # type: ignore[arg-type]
    ax.set_xlabel("bath temperature (mK)")
    ax.set_ylabel("saturation power (pW)")
    ax.set_title(f"Saturation power vs bath temperature, {det.name}")
    ax.legend(fontsize=8.5)
    return fig
