"""Cryogenic thermometers: calibration curves, self-heating, noise, settling.

Sensor curves (each maps temperature to the sensor's reading and back):

* :class:`RuOxCurve` ``(r0_ohm=1000, t0_k=3.47)``: variable-range hopping,
  ``R = R0*exp((T0/T)^(1/4))``; the defaults give ~75 kOhm at 10 mK and
  ~1.4 kOhm at 300 K (mixing chamber, cold plate, still).
* :class:`CernoxCurve` ``(r_ref_ohm=1300, t_ref_k=4.2, ...)``: a zirconium
  oxynitride film, ``ln R`` quadratic in ``ln T`` (4 K and 50 K plates).
* :class:`DiodeCurve` ``()``: a DT-670-like silicon diode at 10 uA, volts
  (1.58 V at 4.2 K, 1.02 V at 77 K, 0.56 V at 300 K).

:class:`Thermometer` ``(curve, g0_w_per_k=..., n=..., noise_v=...)`` puts a
curve on a stage: ``sensor_temperature(t_stage, power_w)`` adds the
excitation self-heating (``T_s^(n+1) = T^(n+1) + (n+1)*P/g0`` for a sensor
conductance ``g0*T^n``, i.e. ``T + P/G`` when small), ``measure(t_stage,
excitation, rng)`` returns a :class:`Measurement` with white noise whose
relative size is the amplifier noise over the signal (less excitation,
noisier reading).

:class:`SettlingFilter` ``(tau_s)``: the first-order settling of a reading
after a scanner switch or a filter restart.

:class:`CalibrationTable` ``(points, fmt)``: a stored curve as an
instrument holds it (``(sensor units, kelvin)`` points; format 3 Ohm/K, 4
log10 Ohm/K, 7 cubic spline, 2 V/K), with ``temperature(reading)`` by
interpolation; :func:`table_from_curve` samples a curve into one.

:func:`stage_sensor` ``(stage, variant=0)``: the sensor a typical fridge has
on a stage (Cernox on the 50 K plate, RuOx below).

:class:`Excitation` ``(mode, amplitude)``: voltage or current excitation;
``power(resistance)`` is what heats the sensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np


class SensorCurve(Protocol):
    """What every sensor curve offers."""

    @property
    def unit(self) -> str:
        """``"ohm"`` or ``"V"``."""
        ...

    @property
    def negative_tempco(self) -> bool:
        """True when the reading falls as the temperature rises."""
        ...

    @property
    def t_min(self) -> float:
        """Lowest temperature the curve is meant for, K."""
        ...

    @property
    def t_max(self) -> float:
        """Highest temperature the curve is meant for, K."""
        ...

    def value(self, t: float) -> float:
        """Sensor reading (ohms or volts) at temperature ``t`` in K."""
        ...

    def temperature(self, value: float) -> float:
        """Temperature in K for a sensor reading (the inverse of :meth:`value`)."""
        ...


@dataclass(frozen=True)
class RuOxCurve:
    """Ruthenium-oxide chip: ``R = r0*exp((t0/T)^(1/4))``.

    Attributes:
        r0_ohm: the high-temperature asymptote.
        t0_k: the hopping temperature scale.
    """

    r0_ohm: float = 1000.0
    t0_k: float = 3.47
    unit: str = "ohm"
    negative_tempco: bool = True
    t_min: float = 0.005
    t_max: float = 320.0

    def value(self, t: float) -> float:
        """Resistance in ohms at ``t`` K."""
        return self.r0_ohm * math.exp((self.t0_k / max(t, 1e-6)) ** 0.25)

    def temperature(self, value: float) -> float:
        """Temperature in K for ``value`` ohms (inf above the high-T asymptote)."""
        if value <= self.r0_ohm:
            return math.inf
        return self.t0_k / math.log(value / self.r0_ohm) ** 4


@dataclass(frozen=True)
class CernoxCurve:
    """Cernox film: ``ln R = ln r_ref - a*x + b*x^2`` with ``x = ln(T/t_ref)``.

    Attributes:
        r_ref_ohm: resistance at ``t_ref_k``.
        t_ref_k: reference temperature.
        a: log-log slope at ``t_ref_k`` (positive: resistance falls with T).
        b: curvature; the slope flattens towards room temperature.
    """

    r_ref_ohm: float = 1300.0
    t_ref_k: float = 4.2
    a: float = 0.95
    b: float = 0.06
    unit: str = "ohm"
    negative_tempco: bool = True
    t_min: float = 1.0
    t_max: float = 325.0

    def value(self, t: float) -> float:
        """Resistance in ohms at ``t`` K."""
        x = math.log(max(t, 1e-6) / self.t_ref_k)
        return self.r_ref_ohm * math.exp(-self.a * x + self.b * x * x)

    def temperature(self, value: float) -> float:
        """Temperature in K for ``value`` ohms, on the monotonic branch of the curve."""
        # solve b*x^2 - a*x - ln(R/Rref) = 0 for the root continuous with x = 0
        y = math.log(value / self.r_ref_ohm)
        disc = self.a * self.a + 4 * self.b * y
        if disc < 0:
            return math.inf
        x = (self.a - math.sqrt(disc)) / (2 * self.b) if self.b else -y / self.a
        return self.t_ref_k * math.exp(x)


# A DT-670-like silicon diode at 10 uA: (K, V), voltage falling with temperature.
_DIODE_TABLE = np.array(
    [
        (1.4, 1.6448),
        (2.0, 1.6293),
        (3.0, 1.6059),
        (4.2, 1.5781),
        (6.0, 1.5380),
        (10.0, 1.4222),
        (15.0, 1.2872),
        (20.0, 1.2176),
        (25.0, 1.1314),
        (30.0, 1.1040),
        (40.0, 1.0870),
        (50.0, 1.0703),
        (77.35, 1.0195),
        (100.0, 0.9741),
        (150.0, 0.8636),
        (200.0, 0.7532),
        (250.0, 0.6389),
        (300.0, 0.5596),
        (325.0, 0.5140),
    ]
)


@dataclass(frozen=True)
class DiodeCurve:
    """Silicon diode voltage at 10 uA; interpolated in a DT-670-like table."""

    unit: str = "V"
    negative_tempco: bool = True
    t_min: float = 1.4
    t_max: float = 325.0

    def value(self, t: float) -> float:
        """Forward voltage in V at ``t`` K (clamped to the table's ends)."""
        return float(np.interp(t, _DIODE_TABLE[:, 0], _DIODE_TABLE[:, 1]))

    def temperature(self, value: float) -> float:
        """Temperature in K for ``value`` volts (clamped to the table's ends)."""
        return float(np.interp(value, _DIODE_TABLE[::-1, 1], _DIODE_TABLE[::-1, 0]))


@dataclass(frozen=True)
class Excitation:
    """How a bridge excites a resistive sensor.

    Attributes:
        mode: ``"voltage"`` (the bridge holds the sensor voltage) or
            ``"current"``; a diode is read at a fixed current.
        amplitude: volts or amperes (RMS).
    """

    mode: Literal["voltage", "current"]
    amplitude: float

    def power(self, resistance: float) -> float:
        """Power dissipated in a sensor of ``resistance`` ohms, W."""
        if resistance <= 0 or not math.isfinite(resistance):
            return 0.0
        if self.mode == "voltage":
            return self.amplitude**2 / resistance
        return self.amplitude**2 * resistance

    def signal_volts(self, resistance: float) -> float:
        """The voltage across the sensor, which sets the signal-to-noise ratio."""
        if self.mode == "voltage":
            return self.amplitude
        return self.amplitude * resistance


@dataclass(frozen=True)
class Measurement:
    """One reading of a thermometer.

    Attributes:
        value: the noisy sensor reading (ohms or volts).
        clean: the same without noise.
        power_w: excitation power dissipated in the sensor.
        t_sensor: the sensor's own (self-heated) temperature, K.
    """

    value: float
    clean: float
    power_w: float
    t_sensor: float


@dataclass(frozen=True)
class Thermometer:
    """A sensor on a stage: curve, thermal link to the stage, amplifier noise.

    Attributes:
        curve: the sensor's calibration.
        g0_w_per_k: sensor-to-stage conductance at 1 K, ``G = g0*T^n``.
        n: temperature exponent of that conductance.
        noise_v: RMS voltage noise per reading at the amplifier input.
    """

    curve: SensorCurve
    g0_w_per_k: float = 6e-5
    n: float = 2.0
    noise_v: float = 5e-9

    def sensor_temperature(self, t_stage: float, power_w: float) -> float:
        """The sensor's temperature (K) with ``power_w`` dissipated in it."""
        if power_w <= 0:
            return t_stage
        m = self.n + 1.0
        return (t_stage**m + m * power_w / self.g0_w_per_k) ** (1.0 / m)

    def measure(
        self,
        t_stage: float,
        excitation: Excitation,
        rng: np.random.Generator | None = None,
        *,
        noise_factor: float = 1.0,
    ) -> Measurement:
        """Read the sensor on a stage at ``t_stage``.

        Args:
            t_stage: the stage temperature, K.
            excitation: the bridge's excitation; for a diode (volts) the
                excitation only sets the self-heating ``V*I``.
            rng: noise source; no noise when omitted.
            noise_factor: scales the noise (a bridge's filter lowers it).

        Returns:
            The reading, its clean value, the dissipated power and the
            sensor temperature.
        """
        t_sensor = t_stage
        value = self.curve.value(t_sensor)
        power = 0.0
        for _ in range(4):  # self-heating and resistance depend on each other; converges fast
            power = self._power(value, excitation)
            t_sensor = self.sensor_temperature(t_stage, power)
            value = self.curve.value(t_sensor)
        noisy = value
        if rng is not None and noise_factor > 0:
            signal = abs(value) if self.curve.unit == "V" else excitation.signal_volts(value)
            relative = self.noise_v / signal if signal > 0 else 0.0
            noisy = value * (1.0 + noise_factor * relative * float(rng.standard_normal()))
        return Measurement(value=noisy, clean=value, power_w=power, t_sensor=t_sensor)

    def _power(self, value: float, excitation: Excitation) -> float:
        if self.curve.unit == "V":
            return value * excitation.amplitude if excitation.mode == "current" else 0.0
        return excitation.power(value)


class SettlingFilter:
    """First-order settling: ``y += (x - y)*(1 - exp(-dt/tau))``.

    Args:
        tau_s: time constant in (simulated) seconds; 0 follows at once.
    """

    def __init__(self, tau_s: float) -> None:
        self.tau_s = max(0.0, float(tau_s))
        self.value: float | None = None

    def reset(self, value: float | None) -> None:
        """Restart from ``value`` (``None``: the next input is taken as is)."""
        self.value = value

    def update(self, target: float, dt_s: float) -> float:
        """Move toward ``target`` for ``dt_s`` seconds; returns the new output."""
        if self.value is None or self.tau_s <= 0 or not math.isfinite(self.value):
            self.value = target
        elif dt_s > 0:
            self.value += (target - self.value) * (1.0 - math.exp(-dt_s / self.tau_s))
        return self.value


CurveFormat = Literal[2, 3, 4, 7]


@dataclass
class CalibrationTable:
    """A calibration curve as an instrument stores it: up to 200 ``(units, kelvin)`` points.

    Attributes:
        points: ``(sensor units, kelvin)`` pairs; for format 4 the units are
            ``log10(ohms)``.
        fmt: 2 V/K, 3 Ohm/K, 4 log10 Ohm/K, 7 Ohm/K cubic spline (interpolated
            linearly here, which is within the sensor noise for 200 points).
        name: curve name (15 characters on the instrument).
        serial: sensor serial number (10 characters).
        limit_k: temperature limit of the curve.
        coefficient: 1 negative, 2 positive temperature coefficient.
    """

    points: list[tuple[float, float]]
    fmt: int = 4
    name: str = ""
    serial: str = ""
    limit_k: float = 325.0
    coefficient: int = 1

    def units_of(self, reading: float) -> float:
        """The table's units for a sensor reading (ohms -> log10 ohms for format 4)."""
        if self.fmt == 4:
            return math.log10(reading) if reading > 0 else -math.inf
        return reading

    def temperature(self, reading: float) -> float | None:
        """Kelvin for a sensor reading, or ``None`` when it lies outside the table.

        Returns:
            The interpolated temperature; ``None`` for an empty table or a
            reading beyond the first or last point.
        """
        pts = self.valid_points()
        if len(pts) < 2:
            return None
        pts.sort()
        units = [p[0] for p in pts]
        x = self.units_of(reading)
        if not (units[0] <= x <= units[-1]):
            return None
        return float(np.interp(x, units, [p[1] for p in pts]))

    def beyond(self, reading: float) -> int:
        """Where a reading lies: -1 colder than the curve, +1 warmer, 0 within it."""
        pts = sorted(self.valid_points())
        if len(pts) < 2:
            return 0
        x = self.units_of(reading)
        if pts[0][0] <= x <= pts[-1][0]:
            return 0
        end_kelvin = pts[-1][1] if x > pts[-1][0] else pts[0][1]
        return -1 if end_kelvin == min(p[1] for p in pts) else 1

    def valid_points(self) -> list[tuple[float, float]]:
        """The points in use: like the instruments, a curve ends at its first zero point."""
        used = []
        for units, kelvin in self.points:
            if kelvin <= 0 or not math.isfinite(units):
                break
            used.append((units, kelvin))
        return used

    def limits(self) -> tuple[float, float]:
        """The lowest and highest temperature in the table."""
        kelvins = [p[1] for p in self.valid_points()] or [0.0]
        return min(kelvins), max(kelvins)


def table_from_curve(
    curve: SensorCurve,
    *,
    name: str,
    serial: str,
    t_min: float | None = None,
    t_max: float | None = None,
    points: int = 200,
) -> CalibrationTable:
    """Sample a sensor curve into a calibration table, points spaced evenly in ``ln T``.

    Args:
        curve: the sensor's curve.
        name: curve name stored with it.
        serial: sensor serial number stored with it.
        t_min: lowest temperature (default: the curve's).
        t_max: highest temperature (default: the curve's).
        points: number of points, at most 200 like the instruments.

    Returns:
        Format 4 (log10 Ohm/K) for resistors, format 2 (V/K) for diodes.
    """
    lo = t_min if t_min is not None else curve.t_min
    hi = t_max if t_max is not None else curve.t_max
    temps = np.geomspace(lo, hi, min(points, 200))
    fmt = 2 if curve.unit == "V" else 4
    rows = []
    for t in temps:
        value = curve.value(float(t))
        units = math.log10(value) if fmt == 4 else value
        rows.append((units, float(t)))
    return CalibrationTable(
        points=rows,
        fmt=fmt,
        name=name,
        serial=serial,
        limit_k=hi,
        coefficient=1 if curve.negative_tempco else 2,
    )


def stage_sensor(stage: str, variant: int = 0) -> tuple[Thermometer, SensorCurve, float, float]:
    """The resistance thermometer a typical dilution fridge carries on a stage.

    Args:
        stage: fridge stage name (``"50k"`` gets a Cernox, colder stages a RuOx).
        variant: makes sensors of one kind differ slightly, like real
            calibrated sensors.

    Returns:
        ``(thermometer, curve, t_min, t_max)``: the calibration range for a table.
    """
    if stage == "50k":
        cernox = CernoxCurve(r_ref_ohm=1300.0 + 17.0 * variant)
        return Thermometer(cernox, g0_w_per_k=1e-3, n=1.0), cernox, 1.4, 325.0
    ruox = RuOxCurve(r0_ohm=1000.0 + 12.0 * variant, t0_k=3.47 - 0.02 * variant)
    return Thermometer(ruox, g0_w_per_k=6e-5, n=2.0), ruox, 0.005, 40.0
