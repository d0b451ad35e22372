"""SRS SIM928 isolated voltage source (the TES bias supply), as a SIM900 module.

The SIM928 is a battery-powered, isolated DC source: +/-20 V with 1 mV
resolution. Two batteries alternate between powering the output and
charging; ``BATS?`` reports each battery's state and whether the pack needs
service. Commands (module language, sent through the mainframe):

==============  ===========================================================
``VOLT v``      set the output voltage, volts; ``VOLT?`` reads it back
``OPON``        output on (``OPOF``: off); ``EXON?`` answers 1 / 0
``BATS?``       ``a,b,s``: battery A and B state (1 in use, 2 charging,
                3 ready), service flag (1 = replace the pack soon)
``*IDN?``       identification
==============  ===========================================================

Interface::

    bias = frame.module(1, SIM928)        # or SIM900(..., modules={1: SIM928}).port1
    bias.voltage = 0.250                  # V, rounded to 1 mV; SettingOutOfRange beyond 20 V
    bias.output_enabled = True            # OPON
    bias.battery_state                    # BatteryState(a=IN_USE, b=CHARGING, service_needed=False)
    bias.poll_specs()                     # bias_voltage (V), output_enabled, battery_service
    bias.control_specs()                  # bias_voltage (V), output_enabled
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentReplyError
from drivers.readings import Reading
from drivers.srs.sim900 import SIMModule

__all__ = ["BatteryState", "BatteryStatus", "SIM928", "VOLTAGE_LIMIT_V"]

#: Largest output magnitude, volts.
VOLTAGE_LIMIT_V = 20.0


class BatteryStatus(IntEnum):
    """State code of one SIM928 battery, as answered by ``BATS?``."""

    IN_USE = 1
    CHARGING = 2
    READY = 3


@dataclass(frozen=True)
class BatteryState:
    """The SIM928's answer to ``BATS?``.

    Attributes:
        a: state of battery A.
        b: state of battery B.
        service_needed: the battery pack should be replaced soon.
    """

    a: BatteryStatus
    b: BatteryStatus
    service_needed: bool

    @classmethod
    def parse(cls, values: list[Any]) -> BatteryState:
        """Build from the three fields of a ``BATS?`` reply.

        Args:
            values: ``[a, b, service]`` as returned by PyMeasure's ``values``.

        Returns:
            The state.

        Raises:
            InstrumentReplyError: not three known codes.
        """
        try:
            a, b, service = (int(float(x)) for x in values)
            return cls(BatteryStatus(a), BatteryStatus(b), bool(service))
        except (TypeError, ValueError):
            raise InstrumentReplyError(
                instrument="SIM928",
                command="BATS?",
                reply=values,
                why="expected three codes 'a,b,service' with a, b in 1..3",
            ) from None


class SIM928(SIMModule):
    """SRS SIM928 isolated voltage source in a SIM900 port."""

    voltage = v.control(
        "VOLT?",
        "VOLT %.3f",
        """Control the output voltage in V (-20 to +20 V, rounded to 1 mV).""",
        validator=v.in_range,
        values=(-VOLTAGE_LIMIT_V, VOLTAGE_LIMIT_V),
        unit="V",
        set_process=lambda value: round(float(value), 3),
    )

    output_enabled = v.control(
        "EXON?",
        "%s",
        """Control whether the output is on (bool): ``OPON`` / ``OPOF``, read with ``EXON?``.""",
        validator=v.in_set,
        values={True: "OPON", False: "OPOF"},
        map_values=True,
        # EXON? answers 1/0; map it onto the set commands so one table serves both ways.
        get_process=lambda reply: "OPON" if int(float(reply)) else "OPOF",
    )

    battery_state = v.measurement(
        "BATS?",
        """Get the state of both batteries and the service flag (:class:`BatteryState`).""",
        cast=int,
        get_process_list=BatteryState.parse,
        # A one-field reply skips get_process_list; parse it anyway so that it is refused.
        get_process=lambda reply: BatteryState.parse([reply]),
    )

    def enable_output(self) -> None:
        """Switch the output on (``OPON``)."""
        self.output_enabled = True

    def disable_output(self) -> None:
        """Switch the output off (``OPOF``)."""
        self.output_enabled = False

    def zero_and_disable(self) -> None:
        """Set 0 V, then switch the output off: the safe state for a TES bias line."""
        self.voltage = 0.0
        self.output_enabled = False

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``bias_voltage`` (V), ``output_enabled`` (1/0) and ``battery_service`` (1/0).
        """
        return [
            PollSpec("bias_voltage", "V", lambda: Reading.of(self.voltage), 1.0, "voltage"),
            PollSpec("output_enabled", "", lambda: Reading.of(self.output_enabled), 5.0, "state"),
            PollSpec(
                "battery_service",
                "",
                lambda: Reading.of(self.battery_state.service_needed),
                60.0,
                "state",
            ),
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings.

        Returns:
            ``bias_voltage`` (V, -20 to 20) and ``output_enabled`` (bool).
        """
        voltage = self._control("voltage", "V")
        return [
            ControlSpec(
                "bias_voltage",
                voltage.unit,
                voltage.set,
                voltage.validate,
                voltage.get,
                voltage.allowed,
            ),
            self._control("output_enabled", ""),
        ]

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions.

        Returns:
            ``zero_and_disable``: 0 V then output off.
        """
        return [ActionSpec("zero_and_disable", self.zero_and_disable, "set 0 V, output off")]
