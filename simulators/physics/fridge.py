"""Lumped thermal model of a dry dilution refrigerator.

Five stages, warmest first: ``"50k"``, ``"4k"``, ``"still"``, ``"cold_plate"``,
``"mxc"``. Each has a heat capacity ``C(T) = gamma*T + beta*T^3`` that
saturates at a high-temperature constant (:class:`HeatCapacity`), a
conductive link to its neighbours (conductance proportional to T, the
metallic and support-structure case), a parasitic load and a heater.

Cooling:

* pulse tube on the 50 K and 4 K plates, linear above a floor temperature;
* the still is cooled by evaporating 3He; the evaporation rate (the
  circulation ``ndot``) follows the 3He vapour pressure, so the heat put
  into the still (heater plus loads) sets ``ndot`` and the still temperature
  follows;
* the mixing chamber is cooled by dilution, ``ndot*(95*T^2 - 11*T_in^2)`` W
  (``84*ndot*T^2`` with perfect heat exchangers), where the returning 3He
  arrives at ``T_in`` from imperfect exchangers; dilution only works below
  the phase-separation temperature (~0.85 K); above it the circulating
  liquid carries heat from the mixing chamber and cold plate to the still;
* the cold plate is cooled by the dilute stream leaving the mixing chamber.

With the defaults the fridge sits at about 45 K / 3 K / 0.8 K / 75 mK /
12 mK; a 10 uW sample heater takes the mixing chamber to ~30 mK and 100 uW
to ~90 mK, with a time constant of order 100 s.

The state is integrated in ``ln T`` with a linearly implicit (Rosenbrock)
Euler step and step-size control, so it is stable for any step: advancing
hours in one call takes a handful of steps once the fridge is near steady
state.

Interface:

* :class:`DilutionFridge` ``(params=None, *, clock=None, start="base")``;
  ``advance(dt_s)``, ``advance_to(t_s)``, ``sync()`` (catch up with the
  clock, if one was given), ``temperatures`` (dict by stage),
  ``temperature(stage)``, ``mxc_temperature()`` (the bath temperature for
  the detector models), ``set_heater(stage, watts, source="")``,
  ``heater(stage)``, ``circulation_mol_s``, ``set_circulation(on)``,
  ``set_pulse_tube(on)``, ``add_controller(callback, period_s)``, ``lock``,
  ``time``.
* :class:`FridgeParams`, :class:`HeatCapacity`; :data:`STAGES`.

Controllers (the simulated temperature controllers' PID loops and the 372
scanner) register with :meth:`DilutionFridge.add_controller`; the fridge
calls them at least every ``period_s`` of simulated time while it advances,
whichever server asked it to catch up, so a loop keeps regulating even when
only another instrument is being polled.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.clock import SimClock

STAGES: tuple[str, ...] = ("50k", "4k", "still", "cold_plate", "mxc")
_INDEX = {name: i for i, name in enumerate(STAGES)}
_T_FLOOR = 1e-4  # K; keeps ln T finite if a parameter set goes wild


@dataclass(frozen=True)
class HeatCapacity:
    """Heat capacity ``gamma*T + beta*T^3`` that saturates at ``c_max`` at high T.

    Attributes:
        gamma: electronic (or Fermi-liquid 3He) term, J/K^2.
        beta: phonon term, J/K^4.
        c_max: high-temperature limit (Dulong-Petit of the plate), J/K.
    """

    gamma: float
    beta: float
    c_max: float

    def __call__(self, t: float) -> float:
        """Heat capacity in J/K at temperature ``t`` (K)."""
        c = self.gamma * t + self.beta * t**3
        return c / (1.0 + c / self.c_max)


@dataclass(frozen=True)
class FridgeParams:
    """Every constant of the lumped model; the defaults describe a typical dry fridge.

    Heat capacities are per stage; links are ``k`` in ``G = k*T`` (W/K^2) so
    that the heat flowing from ``T_hi`` to ``T_lo`` is ``k/2*(T_hi^2 - T_lo^2)``.
    """

    c_50k: HeatCapacity = HeatCapacity(0.22, 0.015, 7700.0)  # ~20 kg of copper
    c_4k: HeatCapacity = HeatCapacity(0.11, 0.0075, 3900.0)
    c_still: HeatCapacity = HeatCapacity(0.5, 0.0015, 800.0)  # plate + dilute phase
    c_cold_plate: HeatCapacity = HeatCapacity(0.011, 0.00075, 390.0)
    c_mxc: HeatCapacity = HeatCapacity(2.5, 0.00075, 390.0)  # 3He Fermi liquid dominates
    pt1_w_per_k: float = 1.0
    pt1_floor_k: float = 25.0
    pt2_w_per_k: float = 1.0
    pt2_floor_k: float = 2.7
    link_50k_4k: float = 8e-5
    link_4k_still: float = 3.4e-5
    link_still_cold_plate: float = 6e-5
    link_cold_plate_mxc: float = 3e-4
    load_50k_w: float = 20.0
    load_4k_w: float = 0.15
    load_still_w: float = 3e-4
    load_cold_plate_w: float = 5e-6
    load_mxc_w: float = 1e-6
    latent_heat_j_per_mol: float = 33.0  # 3He evaporation
    vapour_temperature_k: float = 4.0  # L/R of the 3He vapour-pressure curve
    ndot_ref_mol_s: float = 150e-6  # circulation with the still at still_ref_k
    still_ref_k: float = 0.8
    ndot_max_mol_s: float = 1e-3  # pumping / compressor limit
    return_4k_j_per_mol: float = 150.0  # precooling and condensing the return on the 4 K plate
    liquid_j_per_mol_k: float = 20.0  # heat carried by the circulating liquid
    condenser_k: float = 1.2  # return line temperature after the flow impedance
    exchanger_inefficiency: float = 0.05
    cold_plate_exchange_j_per_mol_k2: float = 30.0
    phase_separation_k: float = 0.85
    phase_separation_width_k: float = 0.05
    still_heater_w: float = 3e-3  # the still heater setting at start


@dataclass
class _Controller:
    callback: Callable[[float], None]
    period_s: float


def _softplus(x: float, width: float) -> float:
    """A smooth ``max(x, 0)``: keeps the Jacobian continuous at switch-over points."""
    z = x / width
    if z > 30.0:
        return x
    if z < -30.0:
        return width * math.exp(z)
    return width * math.log1p(math.exp(z))


def _sigmoid_below(t: float, centre: float, width: float) -> float:
    """1 well below ``centre``, 0 well above: the fraction that is phase separated."""
    z = (t - centre) / width
    if z > 40.0:
        return 0.0
    return 1.0 / (1.0 + math.exp(z))


class DilutionFridge:
    """The lumped dilution refrigerator; thread-safe, advanced lazily.

    Args:
        params: model constants; defaults if omitted.
        clock: when given, :meth:`sync` and every reader catch up with
            ``clock.now()`` first, so servers always see the present state.
        start: ``"base"`` (steady state at base temperature) or ``"4k"``
            (still, cold plate and mixing chamber at 4 K, circulation just
            started: the start of a cool-down).
        max_control_ticks: most controller ticks per catch-up; a long jump
            (large time scale, rarely polled) uses longer ticks instead of
            taking ever more CPU.

    Raises:
        ValueError: an unknown ``start``.
    """

    def __init__(
        self,
        params: FridgeParams | None = None,
        *,
        clock: SimClock | None = None,
        start: Literal["base", "4k"] = "base",
        max_control_ticks: int = 200,
    ) -> None:
        self.params = params or FridgeParams()
        self.clock = clock
        self.lock = threading.RLock()
        self._heaters: dict[str, dict[str, float]] = {name: {} for name in STAGES}
        self._heaters["still"][""] = self.params.still_heater_w
        self._circulating = 1.0
        self._pulse_tube = 1.0
        self._controllers: list[_Controller] = []
        self._advancing = False
        self._max_ticks = max(1, int(max_control_ticks))
        self._h = 1.0  # last accepted integration step, s
        self._time = clock.now() if clock is not None else 0.0
        self._u = [math.log(t) for t in (45.0, 3.0, 0.8, 0.075, 0.012)]
        self._relax()
        if start == "4k":
            for name in ("4k", "still", "cold_plate", "mxc"):
                self._u[_INDEX[name]] = math.log(4.0)
        elif start != "base":
            raise ValueError(f"DilutionFridge: start {start!r} is not one of 'base', '4k'")

    # ---- reading ------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """The simulated time (s) the model has been advanced to."""
        with self.lock:
            return self._time

    @property
    def temperatures(self) -> dict[str, float]:
        """Every stage temperature in K, keyed by stage name (after catching up)."""
        with self.lock:
            self.sync()
            return {name: math.exp(u) for name, u in zip(STAGES, self._u, strict=True)}

    def temperature(self, stage: str) -> float:
        """One stage's temperature in K (after catching up with the clock).

        Raises:
            KeyError: an unknown stage name.
        """
        index = _stage_index(stage)
        with self.lock:
            self.sync()
            return math.exp(self._u[index])

    def mxc_temperature(self) -> float:
        """The mixing-chamber temperature in K: the bath of the detectors on the MXC plate."""
        return self.temperature("mxc")

    @property
    def circulation_mol_s(self) -> float:
        """The 3He circulation rate ``ndot`` in mol/s."""
        with self.lock:
            self.sync()
            return self._ndot(math.exp(self._u[_INDEX["still"]]))

    @property
    def circulating(self) -> bool:
        """Whether the circulation pumps run."""
        return self._circulating > 0

    @property
    def pulse_tube_on(self) -> bool:
        """Whether the pulse-tube cooler runs."""
        return self._pulse_tube > 0

    def heater(self, stage: str) -> float:
        """Total heater power on a stage in W (all sources), after catching up with the clock."""
        index = _stage_index(stage)
        with self.lock:
            self.sync()
            return sum(self._heaters[STAGES[index]].values())

    # ---- changing -----------------------------------------------------------------------------

    def set_heater(self, stage: str, watts: float, source: str = "") -> None:
        """Set one heater's power on a stage; several sources on one stage add up.

        Args:
            stage: ``"50k"``, ``"4k"``, ``"still"``, ``"cold_plate"`` or ``"mxc"``.
            watts: power, >= 0.
            source: who drives it (e.g. ``"ls372.sample"``), so that two
                controllers on one stage do not overwrite each other.

        Raises:
            KeyError: an unknown stage.
            ValueError: a negative or non-finite power.
        """
        index = _stage_index(stage)
        if not (watts >= 0 and math.isfinite(watts)):
            raise ValueError(
                f"fridge heater {stage!r}: power {watts!r} W is out of range; allowed: >= 0 W"
            )
        with self.lock:
            self.sync()  # the old power applies up to now
            self._heaters[STAGES[index]][source] = float(watts)

    def set_circulation(self, on: bool) -> None:
        """Start or stop the 3He circulation (pumps and compressor)."""
        with self.lock:
            self.sync()
            self._circulating = 1.0 if on else 0.0

    def set_pulse_tube(self, on: bool) -> None:
        """Start or stop the pulse-tube cooler."""
        with self.lock:
            self.sync()
            self._pulse_tube = 1.0 if on else 0.0

    def add_controller(self, callback: Callable[[float], None], period_s: float = 1.0) -> None:
        """Call ``callback(t)`` at least every ``period_s`` simulated seconds while advancing.

        The callback runs with the lock held and the model at time ``t``; it
        may read :attr:`temperatures` and call :meth:`set_heater`.
        """
        if not period_s > 0:
            raise ValueError(f"fridge controller period {period_s!r} s; allowed: > 0 s")
        with self.lock:
            self._controllers.append(_Controller(callback, float(period_s)))

    # ---- time -----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Catch up with the clock; a no-op without a clock or from inside a controller."""
        if self.clock is not None:
            self.advance_to(self.clock.now())

    def advance(self, dt_s: float) -> None:
        """Advance the model by ``dt_s`` simulated seconds (any length, stays stable)."""
        if not dt_s >= 0:
            raise ValueError(f"fridge advance: dt {dt_s!r} s; allowed: >= 0 s")
        with self.lock:
            self.advance_to(self._time + dt_s)

    def advance_to(self, t_s: float) -> None:
        """Advance the model to simulated time ``t_s``; earlier times are ignored."""
        with self.lock:
            if self._advancing or t_s <= self._time:
                return
            self._advancing = True
            try:
                self._advance_with_controllers(t_s)
            finally:
                self._advancing = False

    def _advance_with_controllers(self, t_end: float) -> None:
        if not self._controllers:
            self._integrate(t_end - self._time)
            self._time = t_end
            return
        period = min(c.period_s for c in self._controllers)
        ticks = min(self._max_ticks, max(1, math.ceil((t_end - self._time) / period - 1e-9)))
        start = self._time
        for k in range(1, ticks + 1):
            t_k = t_end if k == ticks else start + (t_end - start) * k / ticks
            self._integrate(t_k - self._time)
            self._time = t_k
            for controller in self._controllers:
                controller.callback(t_k)

    # ---- the model ------------------------------------------------------------------------------

    def _ndot(self, t_still: float) -> float:
        p = self.params
        ratio = p.ndot_ref_mol_s / (p.ndot_max_mol_s - p.ndot_ref_mol_s)
        exponent = p.vapour_temperature_k * (1.0 / p.still_ref_k - 1.0 / t_still)
        x = ratio * math.exp(min(exponent, 50.0))
        return self._circulating * p.ndot_max_mol_s * x / (1.0 + x)

    def _net_power(self, temps: list[float]) -> list[float]:
        """Net heat flowing into each stage (W) at the given temperatures."""
        p = self.params
        t50, t4, ts, tcp, tm = temps
        ndot = self._ndot(ts)
        heat = [sum(self._heaters[name].values()) for name in STAGES]
        q_50_4 = 0.5 * p.link_50k_4k * (t50 * t50 - t4 * t4)
        q_4_s = 0.5 * p.link_4k_still * (t4 * t4 - ts * ts)
        q_s_cp = 0.5 * p.link_still_cold_plate * (ts * ts - tcp * tcp)
        q_cp_m = 0.5 * p.link_cold_plate_mxc * (tcp * tcp - tm * tm)
        pt1 = self._pulse_tube * p.pt1_w_per_k * _softplus(t50 - p.pt1_floor_k, 2.0)
        pt2 = self._pulse_tube * p.pt2_w_per_k * _softplus(t4 - p.pt2_floor_k, 0.2)
        c3 = p.liquid_j_per_mol_k
        stream_cp = ndot * c3 * _softplus(tcp - ts, 0.02)
        stream_m = ndot * c3 * _softplus(tm - ts, 0.02)
        precool_still = ndot * c3 * _softplus(p.condenser_k - ts, 0.02)
        evaporation = ndot * p.latent_heat_j_per_mol
        sep_cp = _sigmoid_below(tcp, p.phase_separation_k, p.phase_separation_width_k)
        sep_m = _sigmoid_below(tm, p.phase_separation_k, p.phase_separation_width_k)
        exchange_cp = ndot * p.cold_plate_exchange_j_per_mol_k2 * sep_cp * (tcp * tcp - tm * tm)
        t_in = tm + p.exchanger_inefficiency * (tcp - tm)
        dilution = ndot * sep_m * (95.0 * tm * tm - 11.0 * t_in * t_in)
        return [
            p.load_50k_w + heat[0] - pt1 - q_50_4,
            p.load_4k_w + heat[1] + q_50_4 - pt2 - q_4_s + ndot * p.return_4k_j_per_mol,
            p.load_still_w
            + heat[2]
            + q_4_s
            - q_s_cp
            - evaporation
            + precool_still
            + stream_cp
            + stream_m,
            p.load_cold_plate_w + heat[3] + q_s_cp - q_cp_m - stream_cp - exchange_cp,
            p.load_mxc_w + heat[4] + q_cp_m - stream_m - dilution,
        ]

    def _rate(self, u: list[float]) -> list[float]:
        """d(ln T)/dt for each stage."""
        temps = [math.exp(x) for x in u]
        power = self._net_power(temps)
        capacities = (
            self.params.c_50k,
            self.params.c_4k,
            self.params.c_still,
            self.params.c_cold_plate,
            self.params.c_mxc,
        )
        return [q / (c(t) * t) for q, c, t in zip(power, capacities, temps, strict=True)]

    def _step(self, u: list[float], h: float) -> list[float]:
        """One linearly implicit Euler step of length ``h``: the change in ``ln T``."""
        f0 = self._rate(u)
        n = len(u)
        jac = np.empty((n, n))
        eps = 1e-6
        for j in range(n):
            shifted = list(u)
            shifted[j] += eps
            f1 = self._rate(shifted)
            for i in range(n):
                jac[i, j] = (f1[i] - f0[i]) / eps
        lhs = np.eye(n) - h * jac
        return [float(x) for x in np.linalg.solve(lhs, h * np.asarray(f0))]

    def _integrate(self, dt: float, tolerance: float = 0.05) -> None:
        """Advance the state by ``dt`` with step-size control on the change of ``ln T``."""
        remaining = dt
        h = self._h
        while remaining > 1e-12:
            h = min(h, remaining)
            du = self._step(self._u, h)
            change = max(abs(x) for x in du)
            if change > 4 * tolerance and h > 1e-6:
                h *= max(0.1, 0.5 * tolerance / change)
                continue
            self._u = [max(x + d, math.log(_T_FLOOR)) for x, d in zip(self._u, du, strict=True)]
            remaining -= h
            grow = tolerance / change if change > 0 else 4.0
            self._h = h = min(h * min(4.0, max(0.25, 0.9 * grow)), 1e6)
        self._h = max(h, 1e-3)

    def _relax(self) -> None:
        """Settle the state at steady state without moving the model time."""
        self._integrate(3e6)


def _stage_index(stage: str) -> int:
    try:
        return _INDEX[stage]
    except KeyError:
        raise KeyError(f"fridge stage {stage!r} is unknown; allowed: {', '.join(STAGES)}") from None


__all__ = ["STAGES", "DilutionFridge", "FridgeParams", "HeatCapacity"]
