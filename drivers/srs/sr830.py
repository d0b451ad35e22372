"""SRS SR830 lock-in amplifier: PyMeasure's driver plus the daemon description.

PyMeasure's :class:`pymeasure.instruments.srs.SR830` already speaks the
SR830 (and sends nothing in its constructor); this subclass adds only what
qupdaq needs on top: :meth:`SR830.poll_specs`, :meth:`SR830.control_specs`,
:meth:`SR830.action_specs`, and :meth:`SR830.check_setting`, which refuses
out-of-range values with :class:`~drivers.errors.SettingOutOfRange` before
anything is sent. (PyMeasure's own properties *truncate* out-of-range
values, e.g. ``sine_voltage = 10`` sends 5 V; the daemon path never relies
on that.)

Interface::

    lockin = SR830("GPIB0::8::INSTR")     # no I/O; over RS-232 pass read_termination="\\r"
    lockin.x, lockin.y, lockin.magnitude, lockin.theta       # PyMeasure's properties
    lockin.check_setting("sine_voltage", 0.1)               # -> 0.1, nothing sent
    lockin.control_specs()    # sine_voltage (V), frequency (Hz), phase (deg),
                              # sensitivity (V), time_constant (s)
    lockin.poll_specs()       # x, y, magnitude (V), theta (deg)
    lockin.action_specs()     # auto_gain, auto_phase, auto_reserve
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pymeasure.instruments.srs.sr830 import SR830 as PyMeasureSR830

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.readings import Reading

__all__ = ["SR830"]


class SR830(PyMeasureSR830):
    """SRS SR830 lock-in amplifier with qupdaq's daemon description.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: passed to the VISA adapter (``read_termination`` defaults
            to LF, right for GPIB and for CR LF terminated links).
    """

    #: Settable property -> (kind, allowed values, unit); kind "range" or "set".
    LIMITS: dict[str, tuple[str, Any, str]] = {
        "sine_voltage": ("range", (0.004, 5.0), "V"),
        "frequency": ("range", (0.001, 102_000.0), "Hz"),
        "phase": ("range", (-360.0, 729.99), "deg"),
        "sensitivity": ("set", PyMeasureSR830.SENSITIVITIES, "V"),
        "time_constant": ("set", PyMeasureSR830.TIME_CONSTANTS, "s"),
    }

    def __init__(self, adapter: Any, name: str = "SR830", **kwargs: Any) -> None:
        kwargs.setdefault("read_termination", "\n")
        super().__init__(adapter, name, **kwargs)

    def check_setting(self, name: str, value: Any) -> Any:
        """Validate ``value`` for property ``name`` without sending anything.

        Args:
            name: a key of :attr:`LIMITS`.
            value: the candidate value.

        Returns:
            The value that will be set (for discrete settings, the table entry).

        Raises:
            SettingOutOfRange: the value is outside the instrument's range.
        """
        kind, values, unit = self.LIMITS[name]
        if kind == "range":
            return v.require_in_range(
                value, min(values), max(values), instrument=self.name, command=name, unit=unit
            )
        return v.require_in_set(value, values, instrument=self.name, command=name, unit=unit)

    def _allowed(self, name: str) -> str:
        kind, values, unit = self.LIMITS[name]
        validator = v.in_range if kind == "range" else v.in_set
        return f"{v.describe_allowed(validator, values)} {unit}"

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``x``, ``y``, ``magnitude`` (V) and ``theta`` (deg).
        """
        return [
            PollSpec("x", "V", lambda: Reading.of(self.x), 1.0, "voltage"),
            PollSpec("y", "V", lambda: Reading.of(self.y), 1.0, "voltage"),
            PollSpec("magnitude", "V", lambda: Reading.of(self.magnitude), 1.0, "voltage"),
            PollSpec("theta", "deg", lambda: Reading.of(self.theta), 1.0, "phase"),
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings, each validated strictly before it is sent.

        Returns:
            ``sine_voltage``, ``frequency``, ``phase``, ``sensitivity``, ``time_constant``.
        """
        specs = []
        for name, (_, _, unit) in self.LIMITS.items():

            def set_value(value: Any, name: str = name) -> None:
                setattr(self, name, self.check_setting(name, value))

            specs.append(
                ControlSpec(
                    name=name,
                    unit=unit,
                    set=set_value,
                    validate=partial(self.check_setting, name),
                    get=partial(getattr, self, name),
                    allowed=self._allowed(name),
                )
            )
        return specs

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``auto_gain``, ``auto_phase`` and ``auto_reserve``.
        """
        return [
            ActionSpec("auto_gain", self.auto_gain, "automatic sensitivity (AGAN)"),
            ActionSpec("auto_phase", self.auto_phase, "automatic phase (APHS)"),
            ActionSpec("auto_reserve", self.auto_reserve, "automatic reserve (ARSV)"),
        ]
