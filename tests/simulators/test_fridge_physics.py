"""The lumped dilution-refrigerator model: base, cool-down, heater response, stability."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simulators.clock import SimClock
from simulators.physics.fridge import STAGES, DilutionFridge, HeatCapacity

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_base_temperatures_are_those_of_a_working_fridge() -> None:
    temps = DilutionFridge().temperatures
    assert list(temps) == list(STAGES)
    assert 35 < temps["50k"] < 60
    assert 2.5 < temps["4k"] < 4.5
    assert 0.6 < temps["still"] < 1.0
    assert 0.03 < temps["cold_plate"] < 0.15
    assert 0.007 < temps["mxc"] < 0.020


def test_circulation_rate_is_in_the_usual_range() -> None:
    assert 100e-6 < DilutionFridge().circulation_mol_s < 800e-6


def test_cooldown_from_4k_reaches_base() -> None:
    fridge = DilutionFridge(start="4k")
    assert fridge.temperature("mxc") == pytest.approx(4.0)
    history = []
    for _ in range(60):  # ten simulated hours in ten-minute steps
        fridge.advance(600)
        history.append(fridge.temperature("mxc"))
    assert 0.007 < history[-1] < 0.020
    # once dilution starts, the mixing chamber only goes down
    assert all(b <= a * 1.001 for a, b in zip(history, history[1:], strict=False))


def test_still_heater_sets_the_circulation() -> None:
    fridge = DilutionFridge()
    low = fridge.circulation_mol_s
    fridge.set_heater("still", 10e-3)
    fridge.advance(3600)
    assert fridge.circulation_mol_s > 1.5 * low
    assert fridge.temperature("still") > 0.8


def _heater_step(fridge: DilutionFridge, watts: float, steps: int, dt: float) -> list[float]:
    fridge.set_heater("mxc", watts)
    curve = []
    for _ in range(steps):
        fridge.advance(dt)
        curve.append(fridge.temperature("mxc"))
    return curve


def test_sample_heater_step_raises_mxc_monotonically_to_a_new_steady_state() -> None:
    fridge = DilutionFridge()
    base = fridge.temperature("mxc")
    rise = _heater_step(fridge, 10e-6, steps=40, dt=30.0)
    assert all(b > a for a, b in zip(rise, rise[1:], strict=False) if b - a > 1e-9)
    assert all(b >= a - 1e-9 for a, b in zip(rise, rise[1:], strict=False))
    final = rise[-1]
    assert 0.020 < final < 0.045
    assert abs(rise[-1] - rise[-2]) < 1e-4 * final  # settled
    # first-order-ish: well over half-way after a few time constants, not instantly
    assert base < rise[0] < final
    assert rise[5] - base > 0.5 * (final - base)
    fall = _heater_step(fridge, 0.0, steps=40, dt=30.0)
    assert all(b <= a + 1e-9 for a, b in zip(fall, fall[1:], strict=False))
    assert fall[-1] == pytest.approx(base, rel=0.02)


def test_hundred_microwatts_is_reached_near_hundred_millikelvin() -> None:
    fridge = DilutionFridge()
    fridge.set_heater("mxc", 100e-6)
    fridge.advance(3 * 3600)
    assert 0.06 < fridge.temperature("mxc") < 0.15


def test_hours_in_one_call_are_stable_and_agree_with_small_steps() -> None:
    one_call = DilutionFridge(start="4k")
    one_call.advance(10 * 3600)
    stepped = DilutionFridge(start="4k")
    for _ in range(3600):
        stepped.advance(10)
    for stage in STAGES:
        a, b = one_call.temperature(stage), stepped.temperature(stage)
        assert math.isfinite(a) and a > 0
        assert a == pytest.approx(b, rel=0.02)


def test_stopping_circulation_warms_the_mixing_chamber() -> None:
    fridge = DilutionFridge()
    fridge.set_circulation(False)
    fridge.advance(3600)
    assert fridge.circulation_mol_s == 0
    assert fridge.temperature("mxc") > 0.1


def test_heaters_of_several_sources_add_up_and_bad_values_are_refused() -> None:
    fridge = DilutionFridge()
    fridge.set_heater("mxc", 1e-6, source="a")
    fridge.set_heater("mxc", 2e-6, source="b")
    assert fridge.heater("mxc") == pytest.approx(3e-6)
    with pytest.raises(ValueError, match="mxc.*-1.*allowed"):
        fridge.set_heater("mxc", -1.0)
    with pytest.raises(KeyError, match="allowed"):
        fridge.set_heater("1k_pot", 1.0)


def test_fridge_follows_its_clock_lazily() -> None:
    clock = SimClock(time_scale=0.0)
    fridge = DilutionFridge(clock=clock, start="4k")
    assert fridge.time == 0.0
    clock.advance(7200)
    assert fridge.mxc_temperature() < 0.05  # reading made it catch up two hours
    assert fridge.time == pytest.approx(7200)


def test_controllers_are_called_at_their_period() -> None:
    fridge = DilutionFridge()
    calls: list[float] = []
    fridge.add_controller(calls.append, period_s=2.0)
    fridge.advance(10.0)
    assert len(calls) == 5
    assert calls[-1] == pytest.approx(10.0)
    assert all(b - a == pytest.approx(2.0) for a, b in zip(calls, calls[1:], strict=False))


def test_heat_capacity_is_linear_cubic_and_saturates() -> None:
    c = HeatCapacity(gamma=1e-3, beta=1e-4, c_max=10.0)
    assert c(0.01) == pytest.approx(1e-5, rel=1e-3)
    assert c(1000.0) == pytest.approx(10.0, rel=1e-3)


def test_cooldown_plot_is_rendered() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fridge = DilutionFridge(start="4k")
    times, series = [0.0], {stage: [fridge.temperature(stage)] for stage in STAGES}
    fridge.set_heater("mxc", 0.0)
    for _ in range(300):
        fridge.advance(30.0)
        times.append(fridge.time / 3600)
        for stage in STAGES:
            series[stage].append(fridge.temperature(stage))
    fridge.set_heater("mxc", 20e-6)  # a heater step at the end, then off again
    for k in range(240):
        if k == 120:
            fridge.set_heater("mxc", 0.0)
        fridge.advance(15.0)
        times.append(fridge.time / 3600)
        for stage in STAGES:
            series[stage].append(fridge.temperature(stage))
    ARTIFACTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    for stage in STAGES:
        ax.semilogy(times, series[stage], label=stage)
    ax.set_xlabel("time since 4 K (h)")
    ax.set_ylabel("temperature (K)")
    ax.set_title("Simulated cool-down from 4 K, then a 20 uW sample-heater pulse")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path = ARTIFACTS / "cooldown.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    assert path.stat().st_size > 10_000
    assert min(series["mxc"]) < 0.02
