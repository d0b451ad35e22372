"""Keithley 2400 / 2450 source-measure units as TES bias sources: PyMeasure plus specs.

PyMeasure's :class:`~pymeasure.instruments.keithley.Keithley2400` and
:class:`~pymeasure.instruments.keithley.Keithley2450` speak the instruments;
the subclasses here add what qupdaq needs and nothing else:

* no I/O in the constructor: PyMeasure's 2400 writes ``:FORMAT:ELEMENTS``
  when built; here that happens in :meth:`Keithley2400.prepare`, which the
  first measurement through a poll spec calls once;
* :meth:`check_setting` refuses out-of-range values with
  :class:`~drivers.errors.SettingOutOfRange` before anything is sent
  (PyMeasure's 2450 properties truncate or do not check at all);
* :meth:`poll_specs` / :meth:`control_specs` / :meth:`action_specs`;
* on the 2450, ``measured_voltage`` / ``measured_current`` (``:MEAS:VOLT?`` /
  ``:MEAS:CURR?``), because PyMeasure's ``voltage`` and ``current`` both read
  whatever ``:READ?`` is configured for.

Interface::

    smu = Keithley2400("GPIB0::24::INSTR")       # or Keithley2450(...); no I/O
    smu.check_setting("source_current", 20e-6)   # -> 2e-05, nothing sent
    smu.control_specs()  # source_mode, source_voltage (V), source_current (A),
                         # source_enabled, compliance_voltage (V), compliance_current (A)
    smu.poll_specs()     # voltage (V), current (A), source_enabled
    smu.action_specs()   # zero_and_disable
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley import Keithley2400 as PyMeasureKeithley2400
from pymeasure.instruments.keithley import Keithley2450 as PyMeasureKeithley2450

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.readings import Reading

__all__ = ["Keithley2400", "Keithley2450", "SMU_LIMITS"]

#: Settable property -> (kind, allowed values, unit); kind "range" or "set".
SMU_LIMITS: dict[str, tuple[str, Any, str]] = {
    "source_mode": ("set", ("current", "voltage"), ""),
    "source_voltage": ("range", (-210.0, 210.0), "V"),
    "source_current": ("range", (-1.05, 1.05), "A"),
    "source_enabled": ("set", (True, False), ""),
    "compliance_voltage": ("range", (-210.0, 210.0), "V"),
    "compliance_current": ("range", (-1.05, 1.05), "A"),
}


class _SMUDescription:
    """The daemon description shared by both source-measure units."""

    name: str
    source_mode: Any
    source_enabled: Any
    source_voltage: Any
    source_current: Any

    def check_setting(self, name: str, value: Any) -> Any:
        """Validate ``value`` for property ``name`` without sending anything.

        Args:
            name: a key of :data:`SMU_LIMITS`.
            value: the candidate value.

        Returns:
            The value that will be set.

        Raises:
            SettingOutOfRange: the value is outside the instrument's range.
        """
        kind, values, unit = SMU_LIMITS[name]
        if kind == "range":
            return v.require_in_range(
                value, min(values), max(values), instrument=self.name, command=name, unit=unit
            )
        return v.require_in_set(value, values, instrument=self.name, command=name, unit=unit)

    def _apply(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def _read(self, name: str) -> Any:
        return getattr(self, name)

    def _measure(self, quantity: str) -> float:
        raise NotImplementedError

    def zero_and_disable(self) -> None:
        """Set the source level to zero, then switch the output off (the safe TES state)."""
        if self.source_mode == "current":
            self.source_current = 0.0
        else:
            self.source_voltage = 0.0
        self._apply("source_enabled", False)

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``voltage`` (V), ``current`` (A) and ``source_enabled`` (1/0).
        """
        return [
            PollSpec("voltage", "V", lambda: Reading.of(self._measure("voltage")), 1.0, "voltage"),
            PollSpec("current", "A", lambda: Reading.of(self._measure("current")), 1.0, "current"),
            PollSpec(
                "source_enabled",
                "",
                lambda: Reading.of(bool(self._read("source_enabled"))),
                5.0,
                "state",
            ),
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings, each validated strictly before it is sent.

        Returns:
            One spec per entry of :data:`SMU_LIMITS`.
        """
        specs = []
        for name, (kind, values, unit) in SMU_LIMITS.items():
            validator = v.in_range if kind == "range" else v.in_set
            allowed = v.describe_allowed(validator, values)

            def set_value(value: Any, name: str = name) -> None:
                self._apply(name, self.check_setting(name, value))

            specs.append(
                ControlSpec(
                    name=name,
                    unit=unit,
                    set=set_value,
                    validate=partial(self.check_setting, name),
                    get=partial(self._read, name),
                    allowed=f"{allowed} {unit}".strip(),
                )
            )
        return specs

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``zero_and_disable``.
        """
        return [ActionSpec("zero_and_disable", self.zero_and_disable, "source 0, output off")]


class Keithley2400(_SMUDescription, PyMeasureKeithley2400):
    """Keithley 2400 SourceMeter with qupdaq's daemon description.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: passed to the VISA adapter.
    """

    def __init__(self, adapter: Any, name: str = "Keithley 2400", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        # Skip PyMeasure's Keithley2400.__init__: it writes the data format (I/O).
        super(PyMeasureKeithley2400, self).__init__(adapter, name, **kwargs)
        self.prepared = False

    def prepare(self) -> None:
        """Set the data format the measurements expect (``:FORMAT:ELEMENTS ...``)."""
        self.reset_data_format()
        self.prepared = True

    def _measure(self, quantity: str) -> float:
        if not self.prepared:
            self.prepare()
        return float(self.voltage if quantity == "voltage" else self.current)


class Keithley2450(_SMUDescription, PyMeasureKeithley2450):
    """Keithley 2450 SourceMeter (SCPI command set) with qupdaq's daemon description.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: passed to the VISA adapter.
    """

    def __init__(self, adapter: Any, name: str = "Keithley 2450", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    measured_voltage = Instrument.measurement(
        ":MEAS:VOLT?", """Measure the voltage at the terminals in V (float)."""
    )
    measured_current = Instrument.measurement(
        ":MEAS:CURR?", """Measure the current through the terminals in A (float)."""
    )

    def _apply(self, name: str, value: Any) -> None:
        # PyMeasure's 2450 reads the output state but switches it with methods.
        if name == "source_enabled":
            if value:
                self.enable_source()
            else:
                self.disable_source()
        else:
            setattr(self, name, value)

    def _measure(self, quantity: str) -> float:
        reading = self.measured_voltage if quantity == "voltage" else self.measured_current
        return float(reading)
