"""Control-loop settings shared by Lake Shore controllers: PID gains and setpoint ramps.

:class:`PIDGains` (``PID o,P,I,D``) and :class:`Ramp` (``RAMP o,on,rate``)
are structured settings (see :mod:`drivers.lakeshore.wire`); each model
subclasses them with its own allowed ranges in ``RULES``
(:class:`drivers.lakeshore.ls372_outputs.PID372`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from drivers.lakeshore.wire import Structured, decimal_text, reply_fields, reply_float, reply_int
from drivers.validators import in_range, in_set

BOOL_CODES = {False: 0, True: 1}


@dataclass(frozen=True)
class PIDGains(Structured):
    """``PID``: the gains of a control loop.

    Attributes:
        p: proportional gain.
        i: integral gain (reset).
        d: derivative gain (rate).
    """

    p: float
    i: float
    d: float

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "p": (in_range, (0.0, 1000.0), ""),
        "i": (in_range, (0.0, 10000.0), ""),
        "d": (in_range, (0.0, 2500.0), ""),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> PIDGains:
        """Parse a ``PID?`` reply such as ``+0010.0,+0020.0,+0000.0``.

        Args:
            reply: the reply.

        Returns:
            The gains.
        """
        f = reply_fields(reply, 3)
        return cls(reply_float(f[0]), reply_float(f[1]), reply_float(f[2]))

    def wire(self) -> tuple[str, ...]:
        """Validate and format the arguments after the output number.

        Returns:
            ``(P, I, D)`` as text.
        """
        c = self.checked()
        return (decimal_text(c["p"]), decimal_text(c["i"]), decimal_text(c["d"]))


@dataclass(frozen=True)
class Ramp(Structured):
    """``RAMP``: whether setpoint changes are ramped, and how fast.

    Attributes:
        enabled: ramping on.
        rate: ramp rate in K/min.
    """

    enabled: bool
    rate: float

    RULES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "enabled": (in_set, BOOL_CODES, ""),
        "rate": (in_range, (0.001, 100.0), "K/min"),
    }

    @classmethod
    def from_reply(cls, reply: Any) -> Ramp:
        """Parse a ``RAMP?`` reply such as ``1,0.100``.

        Args:
            reply: the reply.

        Returns:
            The ramp setting.
        """
        f = reply_fields(reply, 2)
        return cls(bool(reply_int(f[0])), reply_float(f[1]))

    def wire(self) -> tuple[str, ...]:
        """Validate and format the arguments after the output number.

        Returns:
            ``(on, rate)`` as text.
        """
        c = self.checked()
        return (str(BOOL_CODES[c["enabled"]]), decimal_text(c["rate"]))


class RampActions:
    """Mix-in for output channels that have ``ramp`` (a :class:`Ramp`) and ``setpoint``."""

    ramp: Any
    setpoint: Any

    def start_ramp(self, target: float, rate: float) -> None:
        """Ramp the setpoint to ``target`` at ``rate`` K/min.

        Both values are validated before anything is sent. Sends ``RAMP`` (on,
        rate) and then ``SETP``: the controller ramps from the present setpoint.

        Args:
            target: the final setpoint, in the control input's units.
            rate: ramp rate in K/min.

        Raises:
            SettingOutOfRange: target or rate refused; nothing sent.
        """
        owner = type(self)
        target = owner.setpoint.validate(self, target)
        ramp = owner.ramp.values(True, rate)  # the property's dataclass (model's own limits)
        owner.ramp.validate(self, ramp)
        self.ramp = ramp
        self.setpoint = target

    def stop_ramp(self) -> None:
        """Switch ramping off (the setpoint stays where the ramp has brought it).

        Reads the ramp setting and writes it back with ramping off.
        """
        current = self.ramp
        self.ramp = type(current)(False, current.rate)
