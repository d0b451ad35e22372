"""Simulated Lake Shore 336 temperature controller on a TCP port (real unit: port 7777).

Inputs A-D read sensors on the fridge's warm plates (defaults: A a silicon
diode on the 50 K plate, B a diode on the 4 K plate, C a Cernox on the 4 K
plate, D disabled). Outputs 1 and 2 are current heaters (defaults: output 1
on the 50 K plate, output 2 on the 4 K plate) with ranges 0 off, 1 low
(1 % of full power), 2 medium (10 %), 3 high; outputs 3 and 4 are voltage
outputs that heat nothing. Commands end with CR LF, arguments are separated
by commas or spaces, several commands and queries may share a line
separated by ``;`` (the answers come back in one line, separated by ``;``),
only queries answer, anything malformed is ignored (and counted in
:attr:`LakeShore336Server.error_count`).

Reply formats (``x`` is an input ``A``-``D``, ``o`` an output 1-4):

=================  ===========================================================
``*IDN?``          ``LSCI,MODEL336,<serial>,<firmware>``
``KRDG? x``        ``+004.2150`` kelvin; ``KRDG? 0`` all four, comma-separated
``CRDG? x``        ``-268.9350`` Celsius; ``SRDG? x`` sensor units (V or ohms), same format
``RDGST? x``       ``000`` (bit sum: 1 invalid reading, 16 temperature under range,
                   32 temperature over range, 64 sensor units zero,
                   128 sensor units over range)
``INTYPE? x``      ``1,0,0,0,1`` (type, autorange, range, compensation, units; the
                   NTC excitation may follow in the command but is not reported;
                   the range code must exist for the type: diode 0-1, platinum
                   0-6, NTC 0-8, thermocouple 0)
``INCRV? x``       ``02``
``RANGE? o``       ``3``
``SETP? o``        ``+045.0000`` (the present, ramping setpoint)
``PID? o``         ``+0050.0,+0020.0,+0000.0``
``MOUT? o``        ``+012.50``; ``HTR? o`` ``+012.50`` percent (or watts with the power display)
``OUTMODE? o``     ``1,1,0`` (mode, input 0 none / 1-4 = A-D, power-up enable)
``RAMP? o``        ``1,+0001.0`` (on, K/min); ``RAMPST? o``: ``1`` while ramping
``HTRSET? o``      ``2,2,+0.000,1`` (resistance 1 = 25 / 2 = 50 ohm, max current,
                   user max A, display)
``HTRST? o``       ``0`` ok, ``1`` open load, ``2`` short
``CRVHDR? n``      ``<name 15>,<serial 10>,2,+325.000,1`` (formats 1 mV/K .. 4 log ohm/K)
``CRVPT? n,i``     ``+0.101910,+470.000`` (units, kelvin)
=================  ===========================================================

Faults: :meth:`LakeShore336Server.set_overrange` (status 128, zero
readings) and :meth:`LakeShore336Server.set_open_sensor` (status 1 + 128,
zero readings), seen from the next query on (the 336 measures every input
continuously), :meth:`LakeShore336Server.clear_faults`;
:meth:`LakeShore336Server.set_heater_open` / ``set_heater_short`` (``HTRST?``
1 / 2, no power); :meth:`LakeShore336Server.corrupt_curve_point`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from simulators.physics.fridge import STAGES, DilutionFridge
from simulators.physics.thermometers import (
    CalibrationTable,
    CernoxCurve,
    DiodeCurve,
    Excitation,
    Thermometer,
    table_from_curve,
)
from simulators.servers.lakeshore_common import (
    ControlLoop,
    LakeShoreServer,
    Malformed,
    arg_float,
    arg_int,
    fmt_fixed,
    need,
)
from simulators.servers.lakeshore_curves import CurveStore

INPUTS = ("A", "B", "C", "D")
INVALID = 1
T_UNDER = 16
T_OVER = 32
S_ZERO = 64
S_OVER = 128
MAX_CURRENT_A = {1: 0.707, 2: 1.0, 3: 1.141, 4: 1.732}
RANGE_FRACTION = (0.0, 0.01, 0.1, 1.0)  # power fraction of off / low / medium / high
DEFAULT_INPUTS: dict[str, tuple[str, str]] = {
    "A": ("diode", "50k"),
    "B": ("diode", "4k"),
    "C": ("cernox", "4k"),
}
DEFAULT_OUTPUTS: dict[int, str] = {1: "50k", 2: "4k"}
RANGE_CODES = {1: 1, 2: 6, 3: 8, 4: 0, 5: 0}  # sensor type -> highest INTYPE range code


@dataclass
class Input336:
    """One input: sensor type, curve, the latest reading and faults."""

    key: str
    sensor_type: int = 0  # 0 disabled, 1 diode, 2 platinum, 3 NTC RTD
    autorange: int = 0
    range: int = 0
    compensation: int = 0
    units: int = 1  # 1 K, 2 C, 3 sensor
    excitation: int = 0
    curve: int = 0
    thermometer: Thermometer | None = None
    stage: str | None = None
    sensor_value: float = 0.0
    kelvin: float = 0.0
    status: int = 0
    open_sensor: bool = False
    overrange: bool = False
    name: str = ""


@dataclass
class Output336:
    """One output: its loop and heater setup."""

    number: int
    loop: ControlLoop = field(
        default_factory=lambda: ControlLoop(source="0", integral_time_s=False)
    )
    powerup: int = 0
    resistance: int = 2  # 1 = 25 ohm, 2 = 50 ohm
    max_current: int = 2
    max_user_current_a: float = 0.0
    display: int = 1
    power_w: float = 0.0
    open_load: bool = False
    short: bool = False

    def full_power_w(self) -> float:
        """Heater power at 100 % on the high range."""
        current = (
            self.max_user_current_a if self.max_current == 0 else MAX_CURRENT_A[self.max_current]
        )
        return current * current * (25.0 if self.resistance == 1 else 50.0)


class LakeShore336Server(LakeShoreServer):
    """A Lake Shore 336 on a TCP port, reading and heating the fridge's warm plates.

    Args:
        fridge: the refrigerator model (its lock becomes this server's lock).
        host: address to bind.
        port: TCP port; 0 picks a free one.
        name: name in logs and in the lab's list.
        inputs: input -> (``"diode"`` or ``"cernox"``, stage); others disabled.
        outputs: heater output (1, 2) -> stage it heats.
        serial: serial number in ``*IDN?``.
        seed: noise seed.
        control_period_s: simulated seconds between control updates.

    Raises:
        ValueError: an unknown input, sensor kind or stage.
    """

    model = "LSCI MODEL336"

    def __init__(
        self,
        fridge: DilutionFridge,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "ls336",
        inputs: dict[str, tuple[str, str]] | None = None,
        outputs: dict[int, str] | None = None,
        serial: str = "LSA36SIM",
        seed: int = 1,
        control_period_s: float = 1.0,
    ) -> None:
        super().__init__(fridge, host, port, name=name)
        self.serial = serial
        self.rng = np.random.default_rng(seed)
        self.curves: dict[int, CalibrationTable] = {
            2: table_from_curve(DiodeCurve(), name="DT-670", serial="STANDARD"),
            21: table_from_curve(CernoxCurve(), name="CX-1050-SIM", serial="X1050SIM"),
        }
        self.inputs = {key: Input336(key, name=f"Input {key}") for key in INPUTS}
        for key, (kind, stage) in (DEFAULT_INPUTS if inputs is None else inputs).items():
            self._wire_input(key, kind, stage)
        self.output_stages = dict(DEFAULT_OUTPUTS if outputs is None else outputs)
        for number, stage in self.output_stages.items():
            if number not in (1, 2) or stage not in STAGES:
                raise ValueError(
                    f"LS336 output {number!r} -> {stage!r}; allowed outputs 1, 2 and stages "
                    f"{', '.join(STAGES)}"
                )
        self.outputs = {n: Output336(n) for n in range(1, 5)}
        self._last_tick = fridge.time
        with fridge.lock:
            self._measure_all()
            fridge.add_controller(self._tick, control_period_s)
        self.curve_store = CurveStore(self.curves, formats=(1, 2, 3, 4), curvature=False)
        self.handlers = {
            "*IDN?": lambda a: f"LSCI,MODEL336,{self.serial},2.9",
            "*OPC?": lambda a: "1",
            "*CLS": lambda a: None,
            "KRDG?": lambda a: self._reading(a, lambda i: i.kelvin),
            "CRDG?": lambda a: self._reading(a, lambda i: i.kelvin - 273.15 if i.kelvin else 0.0),
            "SRDG?": lambda a: self._reading(a, lambda i: i.sensor_value),
            "RDGST?": lambda a: f"{self._input(a).status:03d}",
            "INTYPE": self._intype_set,
            "INTYPE?": self._intype_get,
            "INCRV": self._incrv_set,
            "INCRV?": lambda a: f"{self._input(a).curve:02d}",
            "INNAME": self._inname_set,
            "INNAME?": lambda a: self._input(a).name,
            "RANGE": self._range_set,
            "RANGE?": lambda a: str(self._output(a).loop.range),
            "SETP": self._setp_set,
            "SETP?": self._setp_get,
            "PID": self._pid_set,
            "PID?": self._pid_get,
            "MOUT": self._mout_set,
            "MOUT?": lambda a: f"{self._output(a).loop.manual_pct:+07.2f}",
            "HTR?": self._htr,
            "HTRST?": self._htrst,
            "OUTMODE": self._outmode_set,
            "OUTMODE?": self._outmode_get,
            "RAMP": self._ramp_set,
            "RAMP?": self._ramp_get,
            "RAMPST?": lambda a: "1" if self._output(a).loop.ramping else "0",
            "HTRSET": self._htrset_set,
            "HTRSET?": self._htrset_get,
            **self.curve_store.handlers(),
        }

    def _wire_input(self, key: str, kind: str, stage: str) -> None:
        if key not in INPUTS or kind not in ("diode", "cernox") or stage not in STAGES:
            raise ValueError(
                f"LS336 input {key!r} = ({kind!r}, {stage!r}); allowed inputs A-D, sensors "
                f"'diode' or 'cernox', stages {', '.join(STAGES)}"
            )
        item = self.inputs[key]
        item.stage = stage
        if kind == "diode":
            item.sensor_type, item.curve = 1, 2
            item.thermometer = Thermometer(DiodeCurve(), g0_w_per_k=0.05, n=1.0, noise_v=20e-6)
        else:
            item.sensor_type, item.curve, item.autorange = 3, 21, 1
            item.thermometer = Thermometer(CernoxCurve(), g0_w_per_k=1e-3, n=1.0, noise_v=50e-9)
        item.name = f"{stage.upper()} {kind}"[:15]

    # ---- faults ----------------------------------------------------------------------------------

    def set_overrange(self, key: str, on: bool) -> None:
        """Make an input read over range (status 128), from now on."""
        with self.lock:
            item = self.inputs[key.upper()]
            item.overrange = bool(on)
            self._measure(item, self.fridge.temperatures)

    def set_open_sensor(self, key: str, on: bool) -> None:
        """Open an input's sensor leads (status 1 + 128), from now on."""
        with self.lock:
            item = self.inputs[key.upper()]
            item.open_sensor = bool(on)
            self._measure(item, self.fridge.temperatures)

    def clear_faults(self, key: str | None = None) -> None:
        """Clear the open-sensor and over-range faults of one input (``None``: of all)."""
        with self.lock:
            for item in self.inputs.values() if key is None else [self.inputs[key.upper()]]:
                item.open_sensor = item.overrange = False
                self._measure(item, self.fridge.temperatures)

    def set_heater_open(self, on: bool, output: int = 1) -> None:
        """Open the heater leads of output 1 or 2: ``HTRST?`` answers 1 and no power flows."""
        with self.lock:
            self.outputs[output].open_load = bool(on)

    def set_heater_short(self, on: bool, output: int = 1) -> None:
        """Short the heater of output 1 or 2: ``HTRST?`` answers 2 and no power reaches it."""
        with self.lock:
            self.outputs[output].short = bool(on)

    def corrupt_curve_point(self, curve: int, index: int) -> None:
        """Make the next write of point ``index`` of user curve ``curve`` store a wrong value."""
        with self.lock:
            self.curve_store.corrupt_point(curve, index)

    # ---- simulation ------------------------------------------------------------------------------

    def _measure_all(self) -> None:
        temps = self.fridge.temperatures
        for item in self.inputs.values():
            self._measure(item, temps)

    def _measure(self, item: Input336, temps: dict[str, float]) -> None:
        if item.sensor_type == 0 or item.thermometer is None or item.stage is None:
            item.sensor_value, item.kelvin, item.status = 0.0, 0.0, INVALID
            return
        if item.open_sensor or item.overrange:
            item.sensor_value, item.kelvin = 0.0, 0.0
            item.status = S_OVER | (INVALID if item.open_sensor else 0)
            return
        if item.thermometer.curve.unit == "V":
            excitation = Excitation("current", 10e-6)
        else:
            excitation = Excitation("voltage", 1e-3 if item.excitation == 0 else 10e-3)
        reading = item.thermometer.measure(temps[item.stage], excitation, self.rng)
        item.sensor_value = reading.value
        item.status = 0
        item.kelvin = 0.0
        table = self.curves.get(item.curve) if item.curve else None
        if table is not None:
            kelvin = table.temperature(reading.value)
            if kelvin is None:
                item.status = T_UNDER if table.beyond(reading.value) < 0 else T_OVER
            else:
                item.kelvin = kelvin

    def _process_value(self, source: str) -> tuple[float, bool, bool]:
        if source not in ("1", "2", "3", "4"):
            return 0.0, False, False
        item = self.inputs[INPUTS[int(source) - 1]]
        valid = item.status & (INVALID | S_OVER | S_ZERO) == 0
        if item.units == 3:
            return item.sensor_value, valid and item.sensor_value > 0, True
        if item.units == 2:
            return item.kelvin - 273.15, valid and item.kelvin > 0, False
        return item.kelvin, valid and item.kelvin > 0, False

    def _tick(self, t: float) -> None:
        dt = t - self._last_tick
        self._last_tick = t
        self._measure_all()
        for number, stage in self.output_stages.items():
            output = self.outputs[number]
            loop = output.loop
            pct = 0.0
            if loop.range > 0 and not (output.open_load or output.short):
                if loop.mode == 3:
                    pct = loop.manual_pct
                elif loop.mode in (1, 2):
                    value, valid, inverted = self._process_value(loop.source)
                    setpoint = loop.advance_ramp(dt)
                    if valid:
                        error = (value - setpoint) if inverted else (setpoint - value)
                        pct = min(100.0, loop.pid(error, dt) + loop.manual_pct)
                    else:
                        loop.reset()
            loop.output_pct = pct
            output.power_w = (pct / 100.0) ** 2 * output.full_power_w() * RANGE_FRACTION[loop.range]
            self.fridge.set_heater(stage, output.power_w, source=f"{self.name}.{number}")

    # ---- protocol ----------------------------------------------------------------------------

    def _input(self, args: list[str]) -> Input336:
        if not args or args[0].upper() not in INPUTS:
            raise Malformed("input A-D expected")
        return self.inputs[args[0].upper()]

    def _output(self, args: list[str], *, heaters_only: bool = False) -> Output336:
        if not args:
            raise Malformed("output expected")
        return self.outputs[arg_int(args[0], 1, 2 if heaters_only else 4)]

    def _reading(self, args: list[str], value: Callable[[Input336], float]) -> str:
        need(args, 1)
        if args[0] == "0":
            return ",".join(fmt_fixed(value(self.inputs[k])) for k in INPUTS)
        return fmt_fixed(value(self._input(args)))

    def _intype_set(self, args: list[str]) -> None:
        need(args, 6, at_most=7)
        item = self._input(args)
        sensor_type = arg_int(args[1], 0, 5)
        values = (
            sensor_type,
            arg_int(args[2], 0, 1),
            arg_int(args[3], 0, RANGE_CODES.get(sensor_type, 8)),
            arg_int(args[4], 0, 1),
            arg_int(args[5], 1, 3),
            arg_int(args[6], 0, 1) if len(args) == 7 else item.excitation,
        )
        (item.sensor_type, item.autorange, item.range, item.compensation, item.units,
         item.excitation) = values
        self._measure(item, self.fridge.temperatures)  # the next reading follows the new setup

    def _intype_get(self, args: list[str]) -> str:
        need(args, 1)
        i = self._input(args)
        return f"{i.sensor_type},{i.autorange},{i.range},{i.compensation},{i.units}"

    def _incrv_set(self, args: list[str]) -> None:
        need(args, 2)
        item = self._input(args)
        item.curve = arg_int(args[1], 0, 59)
        self._measure(item, self.fridge.temperatures)

    def _inname_set(self, args: list[str]) -> None:
        need(args, 2)
        self._input(args).name = args[1][:15]

    def _range_set(self, args: list[str]) -> None:
        need(args, 2)
        output = self._output(args)
        output.loop.range = arg_int(args[1], 0, 3 if output.number <= 2 else 1)

    def _setp_set(self, args: list[str]) -> None:
        need(args, 2)
        loop = self._output(args).loop
        value = arg_float(args[1], -273.15, 1e6)
        process, valid, _ = self._process_value(loop.source)
        loop.set_setpoint(value, process if valid else None)

    def _setp_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args).loop
        present = loop.present_setpoint if loop.present_setpoint is not None else loop.setpoint
        return fmt_fixed(present)

    def _pid_set(self, args: list[str]) -> None:
        need(args, 4)
        loop = self._output(args, heaters_only=True).loop
        loop.p = arg_float(args[1], 0.1, 1000.0)
        loop.i = arg_float(args[2], 0.1, 1000.0)
        loop.d = arg_float(args[3], 0.0, 200.0)

    def _pid_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args, heaters_only=True).loop
        return f"{loop.p:+07.1f},{loop.i:+07.1f},{loop.d:+07.1f}"

    def _mout_set(self, args: list[str]) -> None:
        need(args, 2)
        self._output(args).loop.manual_pct = arg_float(args[1], 0.0, 100.0)

    def _htr(self, args: list[str]) -> str:
        need(args, 1)
        output = self._output(args, heaters_only=True)
        if output.display == 2:
            return f"{output.power_w:+07.2f}"
        return f"{output.loop.output_pct:+07.2f}"

    def _htrst(self, args: list[str]) -> str:
        need(args, 1)
        output = self._output(args, heaters_only=True)
        return "2" if output.short else "1" if output.open_load else "0"

    def _outmode_set(self, args: list[str]) -> None:
        need(args, 4)
        output = self._output(args)
        mode = arg_int(args[1], 0, 5)
        source = str(arg_int(args[2], 0, 4))
        if (mode, source) != (output.loop.mode, output.loop.source):
            output.loop.reset()
        output.loop.mode, output.loop.source = mode, source
        output.powerup = arg_int(args[3], 0, 1)

    def _outmode_get(self, args: list[str]) -> str:
        need(args, 1)
        output = self._output(args)
        return f"{output.loop.mode},{output.loop.source},{output.powerup}"

    def _ramp_set(self, args: list[str]) -> None:
        need(args, 3)
        loop = self._output(args, heaters_only=True).loop
        on = arg_int(args[1], 0, 1)
        rate = arg_float(args[2], 0.0 if not on else 0.1, 100.0)
        loop.ramp_on = bool(on)
        if rate > 0:
            loop.ramp_rate_per_min = rate
        if not on:
            loop.present_setpoint = loop.setpoint

    def _ramp_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args, heaters_only=True).loop
        return f"{int(loop.ramp_on)},{loop.ramp_rate_per_min:+07.1f}"

    def _htrset_set(self, args: list[str]) -> None:
        need(args, 5)
        output = self._output(args, heaters_only=True)
        output.resistance = arg_int(args[1], 1, 2)
        output.max_current = arg_int(args[2], 0, 4)
        output.max_user_current_a = arg_float(args[3], 0.0, 2.0)
        output.display = arg_int(args[4], 1, 2)
        if output.max_current == 0 and output.max_user_current_a <= 0:
            output.max_current = 2  # a zero user limit is not accepted by the unit

    def _htrset_get(self, args: list[str]) -> str:
        need(args, 1)
        o = self._output(args, heaters_only=True)
        return f"{o.resistance},{o.max_current},{o.max_user_current_a:+.3f},{o.display}"


__all__ = ["DEFAULT_INPUTS", "DEFAULT_OUTPUTS", "INPUTS", "LakeShore336Server"]
