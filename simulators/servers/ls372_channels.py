"""The simulated Lake Shore 372's inputs: range tables, status bits, one input's reading.

Interface: :class:`ChannelSetup` (what ``INSET``, ``INTYPE``, ``INNAME``,
``TLIMIT``, ``FILTER`` and ``FREQ`` set), :class:`Ls372Channel` (one input:
its sensor on a fridge stage, its latest reading and status, its faults,
``measure(t, t_stage, rng, curves)``); the excitation, resistance-range and
heater-range tables; the ``RDGST`` bits (:data:`CS_OVL` ... :data:`T_UNDER`);
:data:`CHANNEL_KEYS`, :data:`DEFAULT_STAGES`, :data:`DEFAULT_NAMES`,
:data:`DEFAULT_INTYPE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulators.physics.thermometers import (
    CalibrationTable,
    Excitation,
    SettlingFilter,
    Thermometer,
)


def _decades(first: float, count: int) -> tuple[float, ...]:
    """``first, 3.16*first, 10*first, ...``: the 1-3.16 steps of Lake Shore's range tables."""
    values = []
    for k in range(count):
        mantissa = 1.0 if k % 2 == 0 else 3.16
        values.append(float(f"{first * mantissa * 10 ** (k // 2):.3g}"))
    return tuple(values)


VOLTAGE_EXCITATION_V = _decades(2e-6, 12)  # 2 uV .. 632 mV, INTYPE index 1..12
CURRENT_EXCITATION_A = _decades(1e-12, 22)  # 1 pA .. 31.6 mA, index 1..22
CONTROL_CURRENT_A = (316e-12, 1e-9, 3.16e-9, 10e-9, 31.6e-9, 100e-9)
RESISTANCE_RANGE_OHM = _decades(2e-3, 22)  # 2 mOhm .. 63.2 MOhm, index 1..22
SAMPLE_RANGE_A = (0.0, 31.6e-6, 100e-6, 316e-6, 1e-3, 3.16e-3, 10e-3, 31.6e-3, 100e-3)
MAX_CURRENT_A = {1: 0.45, 2: 0.63}

CS_OVL = 1
VCM_OVL = 2
VMIX_OVL = 4
VDIF_OVL = 8
R_OVER = 16
R_UNDER = 32
T_OVER = 64
T_UNDER = 128
INVALID_BITS = CS_OVL | VCM_OVL | VMIX_OVL | VDIF_OVL | R_OVER | R_UNDER

CHANNEL_KEYS: tuple[str, ...] = ("A", *(str(n) for n in range(1, 17)))

DEFAULT_STAGES: dict[str, str] = {
    "1": "50k",
    "2": "4k",
    "5": "still",
    "6": "mxc",
    "9": "cold_plate",
    "A": "mxc",
}


@dataclass
class ChannelSetup:
    """Everything ``INSET``, ``INTYPE``, ``INNAME``, ``TLIMIT``, ``FILTER`` and ``FREQ`` set."""

    enabled: bool = False
    dwell_s: int = 7
    pause_s: int = 3
    curve: int = 0
    tempco: int = 1
    mode: int = 0
    excitation: int = 7
    autorange: int = 1
    range: int = 10
    cs_shunt: int = 0
    units: int = 1
    name: str = ""
    tlimit_k: float = 0.0
    filter_on: bool = True
    settle_s: int = 10
    window_pct: int = 10
    frequency: int = 1


@dataclass
class Ls372Channel:
    """One input: its setup, its sensor and stage, its latest reading and faults.

    Attributes:
        key: ``"A"`` or ``"1"``..``"16"``.
        setup: the settings.
        thermometer: the sensor wired to it (``None``: nothing connected,
            which reads as an open sensor).
        stage: the fridge stage the sensor sits on.
        ohms: latest resistance reading (0 when invalid).
        kelvin: latest temperature reading (0 without a curve or when invalid).
        power_w: excitation power of the latest reading.
        status: ``RDGST`` bits of the latest reading.
        open_sensor: fault: the sensor leads are open.
        overrange: fault: the reading is beyond the range.
        updated_at: simulated time of the latest reading (``None``: never).
    """

    key: str
    setup: ChannelSetup
    thermometer: Thermometer | None = None
    stage: str | None = None
    ohms: float = 0.0
    kelvin: float = 0.0
    power_w: float = 0.0
    status: int = 0
    open_sensor: bool = False
    overrange: bool = False
    updated_at: float | None = None
    settling: SettlingFilter = field(default_factory=lambda: SettlingFilter(0.0))

    def excitation(self) -> Excitation:
        """The excitation the setup selects."""
        s = self.setup
        if self.key == "A":
            return Excitation("current", CONTROL_CURRENT_A[max(1, min(s.excitation, 6)) - 1])
        if s.mode == 1:
            return Excitation("current", CURRENT_EXCITATION_A[max(1, min(s.excitation, 22)) - 1])
        return Excitation("voltage", VOLTAGE_EXCITATION_V[max(1, min(s.excitation, 12)) - 1])

    def tau_s(self) -> float:
        """Settling time constant: the filter's, or the analog settling without it."""
        return self.setup.settle_s / 3.0 if self.setup.filter_on else 0.3

    def restart_settling(self) -> None:
        """A scanner switch: settle from the held reading toward the new one."""
        self.settling = SettlingFilter(self.tau_s())
        self.settling.reset(
            self.ohms if self.ohms > 0 and self.status & INVALID_BITS == 0 else None
        )

    def measure(
        self,
        t: float,
        t_stage: float | None,
        rng: np.random.Generator,
        curves: dict[int, CalibrationTable],
    ) -> None:
        """Update the reading at simulated time ``t`` with the stage at ``t_stage`` K."""
        dt = t - self.updated_at if self.updated_at is not None else math.inf
        self.updated_at = t
        if self.setup.cs_shunt:
            self._invalid(R_UNDER)
            return
        if self.thermometer is None or t_stage is None or self.open_sensor:
            self._invalid(CS_OVL | R_OVER)
            return
        excitation = self.excitation()
        noise = 0.3 if self.setup.filter_on else 1.0
        reading = self.thermometer.measure(t_stage, excitation, rng, noise_factor=0.0)
        settled = self.settling.update(reading.clean, dt if math.isfinite(dt) else 0.0)
        relative = self.thermometer.noise_v / max(excitation.signal_volts(settled), 1e-30)
        ohms = settled * (1.0 + noise * relative * float(rng.standard_normal()))
        full_scale = RESISTANCE_RANGE_OHM[-1]
        if not self.setup.autorange and self.key != "A":
            full_scale = RESISTANCE_RANGE_OHM[max(1, min(self.setup.range, 22)) - 1]
        if self.overrange or ohms > full_scale:
            self._invalid(R_OVER)
            return
        self.ohms = ohms
        self.power_w = reading.power_w
        self.status = 0
        self.kelvin = 0.0
        table = curves.get(self.setup.curve) if self.setup.curve else None
        if table is not None:
            kelvin = table.temperature(ohms)
            if kelvin is None:
                self.status |= T_UNDER if table.beyond(ohms) < 0 else T_OVER
            else:
                self.kelvin = kelvin

    def _invalid(self, bits: int) -> None:
        self.ohms = 0.0
        self.kelvin = 0.0
        self.power_w = 0.0
        self.status = bits


DEFAULT_NAMES = {
    "50k": "50K Flange",
    "4k": "4K Flange",
    "still": "Still",
    "cold_plate": "Cold Plate",
    "mxc": "MXC",
}

# INTYPE defaults per stage: mode, excitation, autorange, range
DEFAULT_INTYPE = {
    "50k": (0, 7, 1, 10),
    "4k": (0, 5, 1, 13),
    "still": (0, 4, 1, 14),
    "cold_plate": (0, 3, 1, 15),
    "mxc": (0, 3, 1, 16),
}
