"""An in-memory instrument with the driver interface, for unit tests of the daemon's pieces.

The end-to-end tests use the real drivers against the simulated lab; this
stands in only where one piece (a worker, the control server) is under test.
"""

from __future__ import annotations

import threading
from typing import Any

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentConnectionError, SettingOutOfRange
from drivers.readings import Quality, Reading


class FakeInstrument:
    """A heater-and-thermometer box: ``temperature`` follows ``setpoint``."""

    def __init__(self) -> None:
        self.temperature = 0.010
        self.setpoint = 0.0
        self.heater_range = 0
        self.sets: list[tuple[str, Any]] = []  # what reached the "instrument"
        self.calls: list[str] = []
        self.fail_reads = False
        self.crash = False  # a driver bug that escapes ordinary error handling
        self.fresh = True
        self.reads = 0
        self.quality = Quality.OK  # the verdict the next reading carries
        self.note = ""

    def read_temperature(self) -> Reading:
        if self.crash:
            raise SystemExit("driver bug")
        if self.fail_reads:
            raise InstrumentConnectionError("timeout on KRDG? A", instrument="fake")
        self.reads += 1
        self.temperature += 0.5 * (self.setpoint - self.temperature) if self.heater_range else 0
        return Reading(self.temperature, self.quality, note=self.note)

    def _validate_setpoint(self, value: Any) -> float:
        if not isinstance(value, int | float) or not 0 <= value <= 2:
            raise SettingOutOfRange(instrument="fake", command="setpoint", value=value,
                                    allowed="0 to 2", unit="K")
        return float(value)

    def _set(self, name: str) -> Any:
        def setter(value: Any) -> None:
            self.sets.append((name, value))
            setattr(self, name, value)
        return setter

    def poll_specs(self) -> list[PollSpec]:
        return [PollSpec("A", "K", self.read_temperature, 0.05, "temperature",
                         fresh=lambda: self.fresh)]

    def control_specs(self) -> list[ControlSpec]:
        return [
            ControlSpec("setpoint", "K", self._set("setpoint"), self._validate_setpoint,
                        lambda: self.setpoint, "0 to 2 K"),
            ControlSpec("heater_range", "", self._set("heater_range"),
                        lambda v: int(v) if v in range(9) else (_ for _ in ()).throw(
                            SettingOutOfRange(instrument="fake", command="heater_range",
                                              value=v, allowed="0..8"))),
        ]

    def action_specs(self) -> list[ActionSpec]:
        return [ActionSpec("reset", lambda: self.calls.append("reset"), "reset it")]


class FakeConnection:
    """A Connection whose connect() can be made to fail, counting attempts."""

    def __init__(self, instrument: FakeInstrument) -> None:
        self.instrument_obj = instrument
        self.instrument: Any = None
        self.refuse = False
        self.attempts = 0
        self.lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self.instrument is not None

    def connect(self) -> Any:
        self.attempts += 1
        if self.refuse:
            raise InstrumentConnectionError("connection refused", instrument="fake")
        self.instrument = self.instrument_obj
        return self.instrument

    def close(self) -> None:
        self.instrument = None
