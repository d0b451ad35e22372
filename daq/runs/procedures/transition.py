"""R(T) and T_c: ramp the bath through the transition and back, reading the unbiased TES.

Measurement: the TES bias is set to zero (the lock-in's small excitation is
all that flows); the lock-in drives its excitation through
``lockin_bias_resistor_ohm`` and reads the voltage across the TES (plus the
shunt and parasitic resistance in series); the 372 brings the mixing chamber
to ``start_k`` and waits until it is stable, then ramps its setpoint to
``stop_k`` and back (``sweeps`` ramps) at ``rate_k_per_min``. Every lock-in
reading is paired with the bath thermometer's temperature at the same moment
(interpolated between its readings) and with the setpoint commanded at that
moment. Each ramp is one step: a ramp interrupted by a condition is done
again from its start.

Stream ``rt``: ``temperature_k`` (K, the bath thermometer), ``lockin_x_v``
(V), ``resistance_ohm`` (Ohm), ``setpoint_k`` (K), ``sweep`` (ramp index).

Analysis (:func:`daq.analysis.transition.fit_transition` per ramp): T_c, the
10-90 % width, R_n and the series resistance per sweep direction, the
warming-cooling hysteresis; figure: R(T) with the fits.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from daq.analysis import plots
from daq.analysis.transition import TransitionFit, TransitionResult, fit_transition
from daq.bus import Subscriber
from daq.runs.data import RunData
from daq.runs.documents import JsonObject, to_json
from daq.runs.engine import Run
from daq.runs.params import Detector, Stability, TransitionParams
from daq.runs.procedures import Analysis
from daq.runs.procedures.common import latest, set_bias, wait_for_temperature
from daq.runs.recipe import Recipe, TargetUse

STREAM = "rt"
UNITS = {"temperature_k": "K", "lockin_x_v": "V", "resistance_ohm": "Ohm", "setpoint_k": "K",
         "sweep": ""}
#: Lock-in time constants (s) the SR830 offers; the recipe's is rounded to the nearest.
TIME_CONSTANTS = (10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3, 100e-3, 300e-3, 1.0,
                  3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 10e3, 30e3)


def uses(recipe: Recipe) -> list[TargetUse]:
    """The bias (off), the lock-in, the 372's setpoint, ramp and heater, the streams."""
    p: TransitionParams = recipe.params()
    w = recipe.detector.wiring
    temps = (p.start_k, p.stop_k) + ((p.end_k,) if p.end_k is not None else ())
    return [TargetUse(w.bias, "transition", (0.0,)),
            TargetUse(w.lockin("amplitude"), "transition.lockin_amplitude_v",
                      (p.lockin_amplitude_v,)),
            TargetUse(w.lockin("frequency"), "transition.lockin_frequency_hz",
                      (p.lockin_frequency_hz,)),
            TargetUse(w.lockin("time_constant"), "transition.lockin_time_constant_s"),
            TargetUse(w.mxc_setpoint, "transition.start_k", temps),
            TargetUse(w.mxc_ramp, "transition.rate_k_per_min", kind="action"),
            TargetUse(w.mxc_stop_ramp, "transition", kind="action"),
            TargetUse(w.heater_range, "transition.heater_range_a", (p.heater_range_a,)),
            TargetUse(w.heater_mode, "transition"),
            TargetUse(w.bath, "detector.wiring.bath", kind="stream"),
            TargetUse(w.mxc, "detector.wiring.mxc", kind="stream"),
            TargetUse(w.lockin_x, "detector.wiring.lockin_x", kind="stream")]


def measure(run: Run, p: TransitionParams) -> None:
    """Zero bias, lock-in, stable at the start, ramps."""
    w = run.detector.wiring
    run.plan(2 + p.sweeps)
    before = {"setpoint": float(run.get(w.mxc_setpoint))}  # type: ignore[arg-type]

    def setup() -> None:
        set_bias(run, 0.0)
        run.set(w.lockin("amplitude"), p.lockin_amplitude_v)
        run.set(w.lockin("frequency"), p.lockin_frequency_hz)
        run.set(w.lockin("time_constant"),
                min(TIME_CONSTANTS, key=lambda tc: abs(np.log(tc / p.lockin_time_constant_s))))
        run.set(w.heater_mode, 5)
        run.set(w.heater_range, p.heater_range_a)

    run.step("R(T): zero bias, lock-in, heater", setup)
    run.step(f"R(T): stable at {p.start_k * 1e3:.2f} mK",
             lambda: _settle(run, p.start_k, p.stable))
    for k in range(p.sweeps):
        start, stop = (p.start_k, p.stop_k) if k % 2 == 0 else (p.stop_k, p.start_k)

        def ramp(k: int = k, start: float = start, stop: float = stop) -> None:
            _ramp(run, p, k, start, stop)

        run.step(f"R(T): ramp {k + 1}/{p.sweeps} to {stop * 1e3:.2f} mK", ramp)
    end = p.end_k if p.end_k is not None else before["setpoint"]
    run.set(w.mxc_setpoint, end)


def _settle(run: Run, target_k: float, stable: Stability) -> None:
    w = run.detector.wiring
    run.call(w.mxc_stop_ramp)
    run.set(w.mxc_setpoint, target_k)
    wait_for_temperature(run, w.mxc, lambda: target_k, stable)


def _ramp(run: Run, p: TransitionParams, sweep: int, start: float, stop: float) -> None:
    """One ramp from ``start`` (settled there first if the bath is elsewhere) to ``stop``."""
    w = run.detector.wiring
    if abs(latest(run, w.mxc) - start) > p.stable.band_k:
        _settle(run, start, p.stable)  # a repeated ramp starts where it started before
    bus = run.config.bus
    sub = Subscriber(bus.subscribe_url, [f"data/{w.bath}", f"data/{w.lockin_x}"],
                     curve=run.config.keys_for("bus"))
    bath_stream, x_stream = f"data/{w.bath}", f"data/{w.lockin_x}"
    temps: deque[tuple[int, float]] = deque(maxlen=64)
    pending: deque[tuple[int, float, float]] = deque()  # lock-in (t, x, setpoint) awaiting T
    excitation_a = p.lockin_amplitude_v / run.detector.lockin_bias_resistor_ohm
    direction = 1.0 if stop > start else -1.0
    try:
        run.call(w.mxc_ramp, target=stop, rate=p.rate_k_per_min)
        setpoint = start
        next_get = 0.0
        arrived: float | None = None
        while True:
            run.checkpoint()
            now = time.monotonic()
            if now >= next_get:
                setpoint = float(run.get(w.mxc_setpoint))  # type: ignore[arg-type]
                next_get = now + 0.5
            msg = sub.recv(0.1)
            if msg is not None and not msg.quality and msg.data is not None:
                for t, value in zip(msg.data["t"].tolist(), msg.data["value"].tolist(),
                                    strict=True):
                    if msg.stream == bath_stream:
                        temps.append((int(t), float(value)))
                    elif msg.stream == x_stream:
                        pending.append((int(t), float(value), setpoint))
            while pending and temps and temps[-1][0] >= pending[0][0]:
                t_x, x, sp = pending.popleft()
                temperature = _interpolate(temps, t_x)
                if temperature is None:
                    continue
                run.emit(STREAM, {"temperature_k": temperature, "lockin_x_v": x,
                                  "resistance_ohm": x / excitation_a, "setpoint_k": sp,
                                  "sweep": float(sweep)}, UNITS)
            reached = direction * (setpoint - stop) >= -1e-9
            if reached and temps and direction * (temps[-1][1] - stop) >= -p.stable.band_k:
                arrived = arrived if arrived is not None else now
                if now - arrived >= p.stable.hold_s:
                    return
    finally:
        sub.close()


def _interpolate(temps: deque[tuple[int, float]], t: int) -> float | None:
    times = np.array([s[0] for s in temps], dtype=np.int64)
    values = np.array([s[1] for s in temps])
    if t < times[0] or t > times[-1]:
        return None
    return float(np.interp(t, times, values))


def analyze(data: RunData, p: TransitionParams, det: Detector) -> Analysis:
    """T_c and width per ramp, from the ``rt`` stream."""
    points = data.points[STREAM]
    fits: list[TransitionFit] = []
    for sweep in np.unique(points["sweep"]):
        sel = points["sweep"] == sweep
        warming = int(sweep) % 2 == 0 if p.stop_k > p.start_k else int(sweep) % 2 == 1
        fits.append(fit_transition(points["temperature_k"][sel], points["resistance_ohm"][sel],
                                   direction="warming" if warming else "cooling"))
    warm = [f.t_c_k for f in fits if f.direction == "warming"]
    cool = [f.t_c_k for f in fits if f.direction == "cooling"]
    result_obj = TransitionResult(tuple(fits), float(np.mean(warm) - np.mean(cool))
                                  if warm and cool else None)
    result: JsonObject = {"t_c_k": to_json(result_obj.t_c_k),
              "width_k": to_json(float(np.mean([f.width_k for f in fits]))),
              "r_n_ohm": to_json(float(np.mean([f.r_n_ohm for f in fits]))),
              "r_series_ohm": to_json(float(np.mean([f.r_series_ohm for f in fits]))),
              "hysteresis_k": to_json(result_obj.hysteresis_k),
              "sweeps": [{"direction": f.direction, "t_c_k": to_json(f.t_c_k),
                          "t_c_stderr_k": to_json(f.t_c_stderr_k), "width_k": to_json(f.width_k),
                          "points": int(f.temperature_k.size)} for f in fits]}
    title = f"Superconducting transition, {det.name}"
    return Analysis(result, [("rt", title, plots.plot_transition(result_obj, title=title))],
                    {"transition": result_obj})
