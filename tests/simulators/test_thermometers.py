"""Thermometer curves, self-heating, noise, settling and stored calibration tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulators.physics.thermometers import (
    CalibrationTable,
    CernoxCurve,
    DiodeCurve,
    Excitation,
    RuOxCurve,
    SettlingFilter,
    Thermometer,
    stage_sensor,
    table_from_curve,
)


def test_ruox_resistance_at_10_mk_and_room_temperature() -> None:
    curve = RuOxCurve()
    assert 50e3 < curve.value(0.010) < 100e3
    assert 1e3 < curve.value(300.0) < 2e3


@pytest.mark.parametrize("curve", [RuOxCurve(), CernoxCurve(), DiodeCurve()])
def test_curves_are_monotonic_and_invert(curve: RuOxCurve | CernoxCurve | DiodeCurve) -> None:
    temps = np.geomspace(max(curve.t_min, 0.008), min(curve.t_max, 300.0), 40)
    values = [curve.value(float(t)) for t in temps]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))  # negative tempco
    for t, v in zip(temps, values, strict=True):
        assert curve.temperature(v) == pytest.approx(float(t), rel=1e-6)


def test_diode_reads_about_1v6_at_4k() -> None:
    assert DiodeCurve().value(4.0) == pytest.approx(1.58, abs=0.03)
    assert DiodeCurve().value(300.0) == pytest.approx(0.56, abs=0.02)


def test_cernox_spans_tens_of_ohms_to_kilohms() -> None:
    curve = CernoxCurve()
    assert 30 < curve.value(300.0) < 150
    assert 1000 < curve.value(4.2) < 2000


def test_more_excitation_reads_warmer_at_millikelvin() -> None:
    thermo = Thermometer(RuOxCurve())
    gentle = thermo.measure(0.010, Excitation("voltage", 20e-6))
    harsh = thermo.measure(0.010, Excitation("voltage", 2e-3))
    assert gentle.t_sensor == pytest.approx(0.010, rel=0.01)
    assert harsh.t_sensor > 0.012
    assert harsh.clean < gentle.clean  # NTC: a warmer sensor has less resistance
    assert harsh.power_w > 1000 * gentle.power_w


def test_self_heating_is_p_over_g_when_small() -> None:
    thermo = Thermometer(RuOxCurve(), g0_w_per_k=6e-5, n=2.0)
    t, p = 0.1, 1e-12
    assert thermo.sensor_temperature(t, p) - t == pytest.approx(p / (6e-5 * t**2), rel=1e-3)


def test_noise_grows_as_excitation_shrinks() -> None:
    thermo = Thermometer(RuOxCurve())
    rng = np.random.default_rng(3)

    def spread(volts: float) -> float:
        values = [thermo.measure(0.05, Excitation("voltage", volts), rng).value for _ in range(400)]
        return float(np.std(values) / np.mean(values))

    assert spread(2e-6) > 5 * spread(63.2e-6)
    assert spread(63.2e-6) > 0


def test_settling_is_first_order() -> None:
    settle = SettlingFilter(tau_s=10.0)
    settle.reset(0.0)
    assert settle.update(1.0, 10.0) == pytest.approx(1 - math.exp(-1))
    assert settle.update(1.0, 1000.0) == pytest.approx(1.0)
    fresh = SettlingFilter(tau_s=10.0)
    assert fresh.update(5.0, 0.1) == 5.0  # nothing to settle from


def test_table_from_curve_reproduces_the_curve() -> None:
    curve = RuOxCurve()
    table = table_from_curve(curve, name="MXC", serial="X1", t_min=0.005, t_max=40.0)
    assert len(table.points) == 200
    assert table.fmt == 4  # log10 ohm / K
    for t in (0.008, 0.012, 0.05, 0.8, 4.0, 30.0):
        assert table.temperature(curve.value(t)) == pytest.approx(t, rel=2e-3)
    assert table.temperature(curve.value(0.002)) is None
    assert table.beyond(curve.value(0.002)) == -1  # colder than the curve
    assert table.beyond(curve.value(100.0)) == 1


def test_table_ends_at_its_first_zero_point() -> None:
    table = CalibrationTable(points=[(1.0, 10.0), (2.0, 5.0), (0.0, 0.0), (3.0, 1.0)], fmt=3)
    assert table.valid_points() == [(1.0, 10.0), (2.0, 5.0)]
    assert table.temperature(1.5) == pytest.approx(7.5)
    assert table.temperature(2.5) is None


def test_stage_sensors_are_cernox_on_50k_and_ruox_below() -> None:
    assert isinstance(stage_sensor("50k")[1], CernoxCurve)
    assert isinstance(stage_sensor("mxc")[1], RuOxCurve)
    assert stage_sensor("mxc", 1)[1] != stage_sensor("mxc", 2)[1]
