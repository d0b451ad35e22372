"""An in-package test double of an instrument: a heater-and-thermometer box with no wire.

The daemon's own tests (and anyone trying the daemon without hardware or a
simulator) configure it like any driver::

    instruments:
      box:
        driver: fake:FakeInstrument
        resource: FAKE::box1          # no I/O; the name is only shown in messages
        source: fridge1
        options: {period_s: 0.1}

It reads a temperature that relaxes towards the setpoint while the heater
range is on, and its faults are themselves controls, so a test in another
process can provoke them through the daemon's control endpoint:

* ``fault`` (:class:`Fault`): ``none``; ``open`` (the sensor reads 0 with
  ``SENSOR_ERROR``), ``overrange`` (``OVERRANGE``), ``garbage`` (reads raise a
  reply error), ``io`` (reads raise a link error), ``hang`` (reads block for
  ``hang_s`` and then raise a link error, like a VISA timeout).

End-to-end tests of real drivers use the simulated lab instead; this double
stands in where the daemon itself is under test.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Any

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentConnectionError, InstrumentReplyError, SettingOutOfRange
from drivers.readings import Quality, Reading


class Fault(enum.StrEnum):
    """What the fake instrument does wrong on request."""

    NONE = "none"
    OPEN = "open"
    OVERRANGE = "overrange"
    GARBAGE = "garbage"
    IO = "io"
    HANG = "hang"


class FakeInstrument:
    """A heater-and-thermometer box: ``temperature`` follows ``setpoint`` while heating.

    Args:
        resource: any text (shown in messages).
        period_s: default poll period of ``A``.
        hang_s: how long a read blocks under ``Fault.HANG``.
        **options: ignored (the daemon may pass adapter settings such as ``timeout``).
    """

    def __init__(self, resource: str = "FAKE::1", *, period_s: float = 0.05,
                 hang_s: float = 2.0, **options: Any) -> None:
        self.resource = resource
        self.period_s = period_s
        self.hang_s = hang_s
        self.temperature = 0.010
        self.setpoint = 0.0
        self.heater_range = 0
        self.sets: list[tuple[str, Any]] = []  # what reached the "instrument" (bounded below)
        self.calls: list[str] = []
        self.fault = Fault.NONE
        self.fail_reads = False
        self.crash = False  # a driver bug that escapes ordinary error handling
        self.fresh = True
        self.reads = 0
        self.quality = Quality.OK  # the verdict the next reading carries
        self.note = ""
        self._lock = threading.Lock()

    def identify(self) -> str:
        """What a real instrument's identity query would answer."""
        if self.fault in (Fault.IO, Fault.HANG):
            self._fail_link("*IDN?")
        return f"qupdaq,FakeInstrument,{self.resource},1.0"

    def _fail_link(self, command: str) -> None:
        if self.fault is Fault.HANG:
            time.sleep(self.hang_s)
        raise InstrumentConnectionError("timeout", instrument="fake", command=command)

    def read_temperature(self) -> Reading:
        """One reading of input A with its verdict."""
        if self.crash:
            raise SystemExit("driver bug")
        if self.fail_reads or self.fault in (Fault.IO, Fault.HANG):
            if self.fault is Fault.HANG:
                time.sleep(self.hang_s)
            raise InstrumentConnectionError("timeout on KRDG? A", instrument="fake")
        if self.fault is Fault.GARBAGE:
            raise InstrumentReplyError(instrument="fake", command="KRDG? A",
                                       reply="\x1b?#!ERR", why="not a number")
        with self._lock:
            self.reads += 1
            if self.heater_range:
                self.temperature += 0.5 * (self.setpoint - self.temperature)
            value = self.temperature
        if self.fault is Fault.OPEN:
            return Reading(0.0, Quality.SENSOR_ERROR, note="sensor open")
        if self.fault is Fault.OVERRANGE:
            return Reading(value, Quality.OVERRANGE, note="over range")
        return Reading(value, self.quality, note=self.note)

    def _validate_setpoint(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise SettingOutOfRange(instrument="fake", command="setpoint", value=value,
                                    allowed="0 to 2", unit="K")
        return float(value)

    def _validate_range(self, value: Any) -> int:
        if isinstance(value, bool) or value not in range(9):
            raise SettingOutOfRange(instrument="fake", command="heater_range", value=value,
                                    allowed="0..8")
        return int(value)

    def _validate_fault(self, value: Any) -> Fault:
        try:
            return Fault(value)
        except ValueError:
            raise SettingOutOfRange(instrument="fake", command="fault", value=value,
                                    allowed=", ".join(f.value for f in Fault)) from None

    def _set(self, name: str) -> Any:
        def setter(value: Any) -> None:
            with self._lock:
                self.sets.append((name, value))
                del self.sets[:-1000]
                setattr(self, name, value)
        return setter

    def poll_specs(self) -> list[PollSpec]:
        """``A``: the temperature (K)."""
        return [PollSpec("A", "K", self.read_temperature, self.period_s, "temperature",
                         fresh=lambda: self.fresh)]

    def control_specs(self) -> list[ControlSpec]:
        """``setpoint`` (K), ``heater_range`` (0-8), ``fault`` (:class:`Fault`)."""
        return [
            ControlSpec("setpoint", "K", self._set("setpoint"), self._validate_setpoint,
                        lambda: self.setpoint, "0 to 2 K"),
            ControlSpec("heater_range", "", self._set("heater_range"), self._validate_range,
                        lambda: self.heater_range, "0..8"),
            ControlSpec("fault", "", self._set("fault"), self._validate_fault,
                        lambda: self.fault.value, ", ".join(f.value for f in Fault)),
        ]

    def action_specs(self) -> list[ActionSpec]:
        """``reset``: records that it was called."""
        return [ActionSpec("reset", lambda: self.calls.append("reset"), "reset it")]
