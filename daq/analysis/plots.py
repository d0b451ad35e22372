"""Figures of analysis results, one per result type, as in a detector paper.

Each function takes a result and returns a :class:`matplotlib.figure.Figure`
(on the Agg canvas; pyplot and its global state are never touched), with
labelled axes and units, the fit drawn over the data and the key numbers in
a legend or text box; :func:`save` writes it as a PNG. :func:`plot`
dispatches on the result's type.

==========================  =============================================
result                      figure
==========================  =============================================
IVResult                    I-V with branch fits; P vs R/R_n; R vs V
ImpedanceResult             Z_TES in the complex plane; Re / Im vs f
TransitionResult            R(T) per sweep direction with the step fits
VPhiResult                  V-Phi with the fit, slope and lock point
NoiseSpectrum               current-noise ASD (optionally over a model)
PulseResult                 average pulse with its fit; energy histogram
==========================  =============================================
"""

from __future__ import annotations

from functools import singledispatch
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from daq.analysis.impedance import ImpedanceResult
from daq.analysis.iv import IVResult
from daq.analysis.noise import NoiseSpectrum
from daq.analysis.pulses import FWHM_PER_SIGMA, PulseResult
from daq.analysis.squid import VPhiResult
from daq.analysis.transition import TransitionResult

__all__ = ["plot", "plot_impedance", "plot_iv", "plot_noise", "plot_pulses", "plot_transition",
           "plot_vphi", "save"]

_BRANCH_COLOURS = {"normal": "tab:red", "transition": "tab:green",
                   "superconducting": "tab:blue"}
_BOX = {"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7", "alpha": 0.9}


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, k + 1) for k in range(ncols)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _text(ax: Axes, lines: list[str], loc: str = "upper left") -> None:
    x, ha = (0.03, "left") if "left" in loc else (0.97, "right")
    y, va = (0.97, "top") if "upper" in loc else (0.03, "bottom")
    ax.text(x, y, "\n".join(lines), transform=ax.transAxes, ha=ha, va=va, fontsize=8.5,
            bbox=_BOX)


def save(fig: Figure, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` as a PNG (the directory is created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out


@singledispatch
def plot(result: Any, **kwargs: Any) -> Figure:
    """The figure for any analysis result (dispatches on its type)."""
    raise TypeError(f"no figure for {type(result).__name__}")


@plot.register
def plot_iv(result: IVResult, *, title: str = "TES I-V") -> Figure:
    """I-V: TES current vs bias with both branch fits, P vs R/R_n with P_sat, R vs V."""
    fig, (ax_i, ax_p, ax_r) = _figure(14.0, 4.4, 3)
    ib, it = result.i_bias_a * 1e6, result.i_tes_a * 1e6
    for name, colour in _BRANCH_COLOURS.items():
        sel = result.mask(name)  # type: ignore[arg-type]
        if np.any(sel):
            ax_i.plot(ib[sel], it[sel], ".", ms=4, color=colour, label=name)
    # The branch lines in the plotted (offset-free, signed) coordinates.
    top = float(np.max(np.abs(result.i_bias_a)))
    sign = -1.0 if np.any(result.i_bias_a < 0) else 1.0
    span = sign * np.linspace(0.0, top, 50)
    ax_i.plot(span * 1e6, (result.normal_fit.slope * span + result.normal_intercept_a) * 1e6,
              "--", color="tab:red", lw=1, label=f"normal fit: R_n = {result.r_n_ohm*1e3:.3f} mΩ")
    if result.superconducting_fit is not None:
        sc_top = float(np.max(np.abs(result.i_bias_a[result.mask("superconducting")])))
        s = sign * np.linspace(0.0, 1.3 * sc_top, 20)
        ax_i.plot(s * 1e6, (result.superconducting_fit.slope * s
                            + result.superconducting_intercept_a) * 1e6, "--", color="tab:blue",
                  lw=1, label=f"SC fit: R_par = {_milliohm(result.r_par_ohm, 3)}")
    if result.latch_index is not None:
        latch = float(result.i_bias_a[result.latch_index])
        ax_i.axvline(latch * 1e6, color="0.5", ls=":", lw=1, label=f"latch at {latch * 1e6:.1f} µA")
    ax_i.set(xlabel="bias current I_bias (µA)", ylabel="TES current I_TES (µA)", title=title)
    ax_i.legend(fontsize=8, loc="upper right")

    trans = result.transition_points()
    frac = result.r_tes_ohm[trans] / result.r_n_ohm
    power = result.p_tes_w[trans] * 1e12
    ax_p.plot(frac, power, "o-", ms=3, lw=0.8, color="tab:green", label="transition (sweep down)")
    if result.p_sat_w is not None:
        ax_p.plot([result.p_sat_fraction], [result.p_sat_w * 1e12], "s", ms=9, mfc="none",
                  mew=1.5, color="k", label=f"P_sat({result.p_sat_fraction:.0%} R_n) = "
                                            f"{result.p_sat_w*1e12:.3f} pW")
    low, high = (float(np.min(power)), float(np.max(power))) if power.size else (0.0, 1.0)
    ax_p.set(xlabel="R / R_n", ylabel="Joule power P (pW)", xlim=(0, 1.02),
             ylim=(low - 0.6 * (high - low), high + 0.6 * (high - low)),
             title="Joule power on the transition")
    ax_p.legend(fontsize=8, loc="upper left")

    ok = np.isfinite(result.r_tes_ohm) & ~result.mask("superconducting")
    ax_r.plot(result.v_tes_v[ok] * 1e6, result.r_tes_ohm[ok] * 1e3, ".", ms=4, color="tab:green")
    ax_r.axhline(result.r_n_ohm * 1e3, color="tab:red", ls="--", lw=1, label="R_n")
    ax_r.set(xlabel="TES voltage V_TES (µV)", ylabel="TES resistance R (mΩ)",
             title="Resistance along the sweep")
    _text(ax_r, [f"R_n = {result.r_n_ohm*1e3:.3f} mΩ ± {result.r_n_stderr_ohm*1e6:.2f} µΩ",
                 f"R_par = {_milliohm(result.r_par_ohm, 4)}",
                 f"output offset = {result.output_offset_v*1e3:.2f} mV"], "lower right")
    return fig


def _milliohm(ohm: float | None, digits: int) -> str:
    if ohm is None:
        return "unknown (no superconducting branch)"
    return f"{ohm * 1e3:.{digits}f} mΩ"


def _log_binned(f: np.ndarray, z: np.ndarray, sigma: np.ndarray, per_decade: int = 12) \
        -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-variance means of ``z`` in logarithmic frequency bins (for display only)."""
    edges = np.logspace(np.log10(f.min()) - 1e-9, np.log10(f.max()) + 1e-9,
                        max(2, int(np.ceil(per_decade * np.log10(f.max() / f.min()))) + 1))
    idx = np.digitize(f, edges)
    out_f, out_z, out_s = [], [], []
    for k in np.unique(idx):
        sel = idx == k
        w = 1.0 / sigma[sel] ** 2
        out_f.append(float(np.exp(np.sum(w * np.log(f[sel])) / np.sum(w))))
        out_z.append(complex(np.sum(w * z[sel]) / np.sum(w)))
        out_s.append(float(1.0 / np.sqrt(np.sum(w))))
    return np.array(out_f), np.array(out_z), np.array(out_s)


@plot.register
def plot_impedance(result: ImpedanceResult, *, title: str = "TES complex impedance") -> Figure:
    """Z_TES in the complex plane (colour = frequency) with the fit; Re and Im vs frequency.

    The many harmonics of a square-wave drive are shown averaged in
    logarithmic frequency bins (inverse-variance weights); the fit used every
    harmonic.
    """
    fig, (ax_c, ax_f) = _figure(12.5, 5.2, 2)
    fit = result.fit
    fb, zb, sb = _log_binned(result.freqs_hz, result.z_tes_ohm, result.z_sigma_ohm)
    zb, sb = zb * 1e3, sb * 1e3
    fine = np.geomspace(max(fb.min() / 3, 1e-3), fb.max() * 3, 600)
    model = fit.z_tes(fine) * 1e3
    ax_c.plot(model.real, model.imag, "-", color="tab:red", lw=1.5, label="one-body fit",
              zorder=2)
    ax_c.errorbar(zb.real, zb.imag, xerr=sb, yerr=sb, fmt="none", ecolor="0.6", lw=0.8,
                  zorder=1)
    pts = ax_c.scatter(zb.real, zb.imag, c=np.log10(fb), s=22, cmap="viridis", zorder=3,
                       label="measured (log-binned)")
    cbar = fig.colorbar(pts, ax=ax_c)
    cbar.set_label("log10(frequency / Hz)")
    ax_c.set(xlabel="Re Z_TES (mΩ)", ylabel="Im Z_TES (mΩ)", title=title, aspect="equal")
    ax_c.legend(fontsize=8, loc="upper left")
    _text(ax_f, [f"R_0 = {fit.r0_ohm*1e3:.3f} mΩ (from the I-V)",
                 f"L_I = {fit.loop_gain:.2f} ± {fit.loop_gain_stderr:.2f}",
                 f"β = {fit.beta:.3f} ± {fit.beta_stderr:.3f}",
                 f"τ = C/G = {fit.tau_s*1e6:.1f} µs",
                 f"τ_I = {fit.tau_i_s*1e6:.1f} µs, τ_eff = {fit.tau_eff_s*1e6:.1f} µs",
                 f"R_L = {result.calibration.r_l_ohm*1e3:.3f} mΩ, "
                 f"L = {result.calibration.inductance_h*1e9:.1f} nH",
                 f"χ²/dof = {fit.chi2_reduced:.2f}"], "upper left")
    ax_f.errorbar(fb, zb.real, yerr=sb, fmt="o", ms=4, color="tab:blue",
                  label="Re Z (measured, log-binned)")
    ax_f.errorbar(fb, zb.imag, yerr=sb, fmt="s", ms=4, color="tab:orange",
                  label="Im Z (measured, log-binned)")
    ax_f.plot(fine, model.real, "-", color="tab:blue", lw=1, label="Re Z (fit)")
    ax_f.plot(fine, model.imag, "-", color="tab:orange", lw=1, label="Im Z (fit)")
    ax_f.set_xscale("log")
    ax_f.set(xlabel="frequency (Hz)", ylabel="Z_TES (mΩ)",
             title="calibrated with the SC and normal states")
    ax_f.legend(fontsize=8, loc="lower right")
    return fig


@plot.register
def plot_transition(result: TransitionResult, *, title: str = "Superconducting transition") \
        -> Figure:
    """R(T) of every sweep with its step fit, T_c marked, per direction."""
    fig, (ax,) = _figure(7.5, 5.0)
    colours = {"cooling": "tab:blue", "warming": "tab:red"}
    lines = []
    for k, fit in enumerate(result.fits):
        colour = colours[fit.direction]
        label = f"{fit.direction} (sweep {k + 1})"
        ax.plot(fit.temperature_k * 1e3, fit.resistance_ohm * 1e3, ".", ms=3, color=colour,
                alpha=0.5, label=label)
        grid = np.linspace(fit.temperature_k.min(), fit.temperature_k.max(), 500)
        ax.plot(grid * 1e3, fit.resistance(grid) * 1e3, "-", color=colour, lw=1.2,
                label=f"{fit.model} fit, T_c dotted")
        ax.axvline(fit.t_c_k * 1e3, color=colour, ls=":", lw=1)
        lines.append(f"{fit.direction}: T_c = {fit.t_c_k*1e3:.3f} ± {fit.t_c_stderr_k*1e3:.3f} mK,"
                     f" ΔT(10-90%) = {fit.width_k*1e3:.3f} mK")
    fit0 = result.fits[0]
    lines.append(f"R_n = {fit0.r_n_ohm*1e3:.3f} mΩ, series {fit0.r_series_ohm*1e3:.3f} mΩ "
                 f"({fit0.model} fit)")
    if result.hysteresis_k is not None:
        lines.append(f"hysteresis (warming − cooling) = {result.hysteresis_k*1e6:.1f} µK")
    ax.set(xlabel="thermometer temperature T (mK)", ylabel="resistance R (mΩ)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    _text(ax, lines, "upper left")
    return fig


@plot.register
def plot_vphi(result: VPhiResult, *, title: str = "SQUID V-Φ (tune mode)") -> Figure:
    """V-Phi: data, Fourier fit, the lock point and the tangent there."""
    fig, (ax,) = _figure(8.5, 4.8)
    i = result.coil_current_a
    ax.plot(i * 1e6, result.output_v * 1e3, ".", ms=3, color="0.55", label="measured")
    grid = np.linspace(i.min(), i.max(), 2000)
    ax.plot(grid * 1e6, result.voltage(grid) * 1e3, "-", color="tab:blue", lw=1.2,
            label="Fourier fit")
    lock, v_lock = result.lock_current_a, result.lock_voltage_v
    half = 0.12 * result.period_a
    ax.plot(np.array([lock - half, lock + half]) * 1e6,
            (v_lock + result.slope_v_per_a * np.array([-half, half])) * 1e3, "-",
            color="tab:red", lw=2, label=f"slope {result.slope_v_per_a*1e-3:.2f} mV/µA")
    ax.plot([lock * 1e6], [v_lock * 1e3], "o", color="tab:red", ms=7,
            label=f"lock point {lock*1e6:.2f} µA")
    low, high = float(np.min(result.output_v)) * 1e3, float(np.max(result.output_v)) * 1e3
    span = high - low
    ax.set(xlabel="feedback-coil current (µA)", ylabel="output voltage (mV)", title=title,
           ylim=(low - 0.08 * span, high + 0.5 * span))  # headroom for the legend and numbers
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    _text(ax, [f"period = {result.period_a*1e6:.3f} µA / Φ0",
               f"M = Φ0 / period = {result.mutual_inductance_h*1e12:.2f} pH",
               f"modulation = {result.amplitude_v*1e3:.1f} mV p-p",
               f"lock level = {v_lock*1e3:.2f} mV"], "upper left")
    return fig


@plot.register
def plot_noise(result: NoiseSpectrum, *, model: tuple[np.ndarray, np.ndarray] | None = None,
               model_label: str = "model", mark_hz: float = 1e3,
               title: str = "TES current noise") -> Figure:
    """Current-noise ASD, log-log; ``model`` = (freqs Hz, PSD A^2/Hz) is drawn over it."""
    fig, (ax,) = _figure(8.0, 5.0)
    f, asd = result.freqs_hz[1:], result.asd_a_per_rthz[1:] * 1e12
    ax.loglog(f, asd, "-", color="tab:blue", lw=0.9,
              label=f"measured ({result.n_records} records, {result.window} window)")
    if model is not None:
        mf, mpsd = model
        ax.loglog(mf, np.sqrt(mpsd) * 1e12, "--", color="tab:red", lw=1.5, label=model_label)
    level = result.level(mark_hz)
    ax.plot([mark_hz], [level * 1e12], "o", color="k", ms=6,
            label=f"{level*1e12:.1f} pA/√Hz at {mark_hz:g} Hz")
    ax.set(xlabel="frequency (Hz)", ylabel="current noise (pA/√Hz)", title=title)
    plain = FuncFormatter(lambda value, _pos: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.legend(fontsize=8, loc="lower left")
    _text(ax, [f"resolution {result.resolution_hz:.3g} Hz, {result.n_segments} segments",
               f"{result.n_vetoed} of {result.n_records + result.n_vetoed} records vetoed "
               "(pulses)"], "upper right")
    return fig


@plot.register
def plot_pulses(result: PulseResult, *, energy_unit: str = "eV",
                title: str = "Average pulse") -> Figure:
    """Average pulse with its two-exponential fit; histogram of filtered energies."""
    fig, (ax_p, ax_h) = _figure(12.0, 4.8, 2)
    tpl, shape = result.template, result.shape
    t = tpl.time_s * 1e6
    ax_p.plot(t, tpl.current_a * 1e9, ".", ms=3, color="0.45",
              label=f"average of {tpl.n_averaged} pulses")
    ax_p.plot(t, shape.current(tpl.time_s) * 1e9, "-", color="tab:red", lw=1.3,
              label="two-exponential fit")
    right = min(t[-1], (shape.t0_s + 12 * shape.fall_s) * 1e6)
    ax_p.set(xlabel="time from trigger (µs)", ylabel="TES current change (nA)", title=title,
             xlim=(max(t[0], -0.25 * right), right))
    ax_p.legend(fontsize=8, loc="lower right")
    _text(ax_p, [f"τ_rise = {shape.rise_s*1e6:.2f} ± {shape.rise_stderr_s*1e6:.2f} µs",
                 f"τ_fall = {shape.fall_s*1e6:.2f} ± {shape.fall_stderr_s*1e6:.2f} µs",
                 f"peak = {tpl.peak_a*1e9:.2f} nA"], "upper right")

    e = result.energies
    ax_h.hist(e, bins=30, color="tab:blue", alpha=0.6, label="optimal-filter energies")
    sigma = result.resolution_fwhm_predicted / FWHM_PER_SIGMA
    grid = np.linspace(e.min(), e.max(), 300)
    width = (e.max() - e.min()) / 30
    gauss = e.size * width / (sigma * np.sqrt(2 * np.pi)) * np.exp(
        -0.5 * ((grid - np.median(e)) / sigma) ** 2)
    ax_h.plot(grid, gauss, "-", color="tab:red", lw=1.5, label="expected from the noise")
    ax_h.set(xlabel=f"energy ({energy_unit})", ylabel="records per bin",
             title=f"{result.line_energy:g} {energy_unit} line")
    ax_h.legend(fontsize=8, loc="upper right")
    _text(ax_h, [f"ΔE_FWHM predicted = {result.resolution_fwhm_predicted:.3f} {energy_unit}",
                 f"ΔE_FWHM measured = {result.resolution_fwhm_measured:.3f} {energy_unit}"],
          "upper left")
    return fig
