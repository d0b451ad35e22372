"""Figures of the detector physics for a human to check: I-V with latching, V-Phi, a pulse.

Written to ``artifacts/`` (git-ignored). Each test also checks the data it plots.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from simulators.physics.readout import TESReadout  # noqa: E402
from simulators.physics.squid import PHI0, SquidVPhi, biased_squid  # noqa: E402
from simulators.physics.tes import (  # noqa: E402
    EV,
    SET_A_30NH,
    bias_for_resistance,
    iv_sweep,
    operating_point,
    simulate_pulse,
    small_signal,
    small_signal_pulse,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """The artifacts directory, created when missing."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _saved(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_tes_iv_plot(artifacts):
    p = SET_A_30NH
    down_bias = np.linspace(1.0e-3, 0.0, 401)
    up_bias = down_bias[::-1]
    down = iv_sweep(p, down_bias)
    up = iv_sweep(p, up_bias, start_temperature=down.t_tes[-1])
    assert set(down.branch) == {"normal", "transition", "superconducting"}
    assert set(up.branch) == {"superconducting"}

    fig, (ax_i, ax_p) = plt.subplots(1, 2, figsize=(11, 4.5))
    colours = {"normal": "tab:red", "transition": "tab:green", "superconducting": "tab:blue"}
    for name, colour in colours.items():
        sel = np.array(down.branch) == name
        ax_i.plot(
            down.i_bias[sel] * 1e6,
            down.i_tes[sel] * 1e6,
            ".",
            ms=3,
            color=colour,
            label=f"down: {name}",
        )
    ax_i.plot(
        up.i_bias * 1e6,
        up.i_tes * 1e6,
        "-",
        color="k",
        lw=0.8,
        alpha=0.6,
        label="up: stays superconducting",
    )
    ax_i.set(
        xlabel="bias current (uA)",
        ylabel="TES current (uA)",
        title="TES I-V, set A: latch on the way down, hysteresis up",
    )
    branches = np.array(down.branch)
    k = int(np.nonzero(branches == "superconducting")[0][0])  # first point after the latch
    ax_i.annotate(
        "latch",
        xy=(down.i_bias[k] * 1e6, down.i_tes[k] * 1e6),
        xytext=(down.i_bias[k] * 1e6 + 150, down.i_tes[k] * 1e6),
        arrowprops={"arrowstyle": "->"},
    )
    ax_i.set_ylim(0, 1.15 * down.i_tes[k] * 1e6)
    ax_i.legend(fontsize=8)
    for name in ("normal", "transition"):
        sel = branches == name
        ax_p.plot(
            down.v_tes[sel] * 1e9,
            down.power[sel] * 1e12,
            ".",
            ms=3,
            color=colours[name],
            label=name,
        )
    ax_p.set(
        xlabel="TES voltage (nV)",
        ylabel="Joule power (pW)",
        title="constant power on the transition",
    )
    ax_p.legend(fontsize=8)
    _saved(fig, artifacts / "tes_iv.png")


def test_squid_vphi_plot(artifacts):
    phi = np.linspace(-2.0, 2.0, 801) * PHI0
    curves = {ib: biased_squid(ib) for ib in (17e-6, 20e-6, 25e-6, 40e-6)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for ib, squid in curves.items():
        ax.plot(phi / PHI0, np.asarray(squid.voltage(phi)) * 1e6, label=f"I_b = {ib * 1e6:.0f} uA")
    ref = SquidVPhi(v0=curves[25e-6].v0, dv=curves[25e-6].dv)
    ax.axhline(ref.v0 * 1e6, color="grey", lw=0.6, ls="--")
    ax.plot([0.0], [ref.v0 * 1e6], "ko", label="lock point (steepest slope)")
    ax.set(xlabel="flux (Phi0)", ylabel="SQUID voltage (uV)", title="SQUID V-Phi: period Phi0")
    ax.legend(fontsize=8)
    v = np.asarray(ref.voltage(phi))
    period = np.argmax(v[200:]) + 200 - np.argmax(v)
    assert period * (phi[1] - phi[0]) == pytest.approx(PHI0, rel=0.01)
    _saved(fig, artifacts / "squid_vphi.png")


def test_tes_pulse_plot(artifacts):
    p = SET_A_30NH
    op = operating_point(p, bias_for_resistance(p, 0.2))
    ss = small_signal(p, op)
    dt, n, pre = 0.25e-6, 800, 80
    t = (np.arange(n) - pre) * dt
    fig, (ax_i, ax_v) = plt.subplots(1, 2, figsize=(11, 4.5))
    for energy in (50, 200, 1000):
        numeric = simulate_pulse(p, op, energy * EV, dt, n, n_pre=pre) - op.i
        analytic = small_signal_pulse(p, op, energy * EV, t)
        ax_i.plot(t * 1e6, numeric * 1e6, label=f"{energy} eV, time domain")
        ax_i.plot(t * 1e6, analytic * 1e6, "k--", lw=0.8)
    ax_i.set(
        xlabel="time (us)",
        ylabel="delta I (uA)",
        title=f"pulses, set A 30 nH (tau+ {ss.tau_plus * 1e6:.1f} us, "
        f"tau- {ss.tau_minus * 1e6:.1f} us)\ndashed: small-signal formula",
    )
    ax_i.legend(fontsize=8)
    readout = TESReadout(seed=5, rate=0.0)
    trace = readout.acquire(n, dt, event_at=pre)
    assert trace.max() > 0.5  # the photon at the trigger position, through the locked loop
    ax_v.plot(t * 1e6, trace, lw=0.8)
    ax_v.set(
        xlabel="time (us)",
        ylabel="FLL output (V)",
        title="50 eV photon with noise,\nas the scope sees it (locked FLL)",
    )
    _saved(fig, artifacts / "tes_pulse.png")
