"""The typed interface of one SQUID readout channel, whatever electronics drive it.

A TES is read out by a SQUID in a flux-locked loop (FLL). The room-temperature
electronics differ between vendors (STAR Cryoelectronics PFL-102, Magnicon
XXF-1, ...) but a physicist sets the same few things on all of them, and the
daemon, the procedures (V-Phi scans, lock, I-V curves) and the dashboard talk
to :class:`SquidController` only:

========================  =====  ===============================================
member                    unit   meaning
========================  =====  ===============================================
``bias_current``          A      current through the (first-stage) SQUID
``flux_offset``           A      current through the flux (modulation) coil that
                                 sets the working point on V(Phi)
``output_offset``         V      offset added to the amplifier output (to centre
                                 V(Phi) in tune mode)
``feedback_resistor``     Ohm    an enum member; its ``value`` is in ohms
``integrator_capacitor``  F      an enum member; its ``value`` is in farads
``mode``                         :class:`LoopMode`: ``idle``, ``tune``, ``lock``
``reset_integrator()``           short the integrator, then release (relock)
``heat(duration_s)``             flux-trap removal: heat the SQUID normal, cool, relock
========================  =====  ===============================================

Every value is SI (amperes, volts, ohms, farads, seconds). Setting a value
outside what the electronics can produce raises
:class:`drivers.errors.SettingOutOfRange` before anything is sent; reading a
value returns what the electronics hold, or, for write-only electronics such
as the PFL-102, the last value actually sent (quantised to the DAC). Such
electronics set :attr:`SquidController.READS_BACK` to False: the daemon then
gets no poll specs and no read-back getters, because the last value sent is
the driver's memory, not a measurement.

For the author of the next implementation (e.g. a Magnicon XXF-1 driver):

* Subclass :class:`SquidController` next to your PyMeasure ``Channel`` or
  ``Instrument`` class (``class XXF1Channel(Channel, SquidController[Rf, Gbp])``)
  and implement every abstract member. PyMeasure properties built with
  :mod:`drivers.validators` satisfy the abstract properties.
* Define your own enums for the feedback resistor and the loop speed, with SI
  values (``class Rf(float, Enum): R_7K5 = 7.5e3 ...``) and pass them as the
  type parameters. The XXF-1 sets the loop speed by a gain-bandwidth product
  rather than an integrator capacitor: expose that enum as
  ``integrator_capacitor`` anyway and say so in its docstring, so that generic
  code can list and choose the loop-speed settings.
* The XXF-1 addresses channels on one serial bus, like the PCI-100 does
  PFL-102 cards; one :class:`SquidController` is one channel.
* :meth:`SquidController.check_setting` must run the same validator as the
  setter without any I/O: the daemon calls it before queueing a command.
* The daemon description (:meth:`poll_specs`, :meth:`control_specs`,
  :meth:`action_specs`) comes for free from the members above; extend the
  lists for vendor extras (the PFL-102 adds array bias and flux).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum, StrEnum
from functools import partial
from typing import Any, Generic, TypeVar

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.readings import Reading

__all__ = ["LoopMode", "SquidController", "SQUID_SETTINGS"]


class LoopMode(StrEnum):
    """State of the flux-locked loop.

    Attributes:
        IDLE: loop open and output off, for electronics that document such a
            state (the PFL-102 does not: it is always in tune or lock).
        TUNE: open loop; the output is the amplified SQUID voltage V(Phi),
            used to choose bias, flux offset and lock point.
        LOCK: closed loop; the integrator feeds flux back through the
            feedback resistor, the output is proportional to the input flux.
    """

    IDLE = "idle"
    TUNE = "tune"
    LOCK = "lock"


R = TypeVar("R", bound=Enum)
C = TypeVar("C", bound=Enum)

#: The settings every :class:`SquidController` has, with their units.
SQUID_SETTINGS: dict[str, str] = {
    "bias_current": "A",
    "flux_offset": "A",
    "output_offset": "V",
    "feedback_resistor": "Ohm",
    "integrator_capacitor": "F",
    "mode": "",
}


class SquidController(ABC, Generic[R, C]):
    """One SQUID channel of any FLL electronics; every value in SI units.

    Type parameters: ``R`` is the implementation's feedback-resistor enum
    (values in ohms), ``C`` its integrator-capacitor (loop-speed) enum (values
    in farads).

    Attributes:
        READS_BACK: whether the electronics can report their settings; when
            False the getters return the last value sent, and neither poll
            specs nor control-spec getters are offered to the daemon.
    """

    READS_BACK: bool = True

    # ---- settings ------------------------------------------------------------------------

    @property
    @abstractmethod
    def bias_current(self) -> float:
        """Control the SQUID bias current in amperes."""

    @bias_current.setter
    @abstractmethod
    def bias_current(self, value: float) -> None: ...

    @property
    @abstractmethod
    def flux_offset(self) -> float:
        """Control the flux-offset current in amperes (through the flux coil)."""

    @flux_offset.setter
    @abstractmethod
    def flux_offset(self, value: float) -> None: ...

    @property
    @abstractmethod
    def output_offset(self) -> float:
        """Control the offset added to the output, in volts."""

    @output_offset.setter
    @abstractmethod
    def output_offset(self, value: float) -> None: ...

    @property
    @abstractmethod
    def feedback_resistor(self) -> R:
        """Control the feedback resistor (an enum member, value in ohms)."""

    @feedback_resistor.setter
    @abstractmethod
    def feedback_resistor(self, value: R | float) -> None: ...

    @property
    @abstractmethod
    def integrator_capacitor(self) -> C:
        """Control the integrator capacitor / loop speed (enum member, value in farads)."""

    @integrator_capacitor.setter
    @abstractmethod
    def integrator_capacitor(self, value: C | float) -> None: ...

    @property
    @abstractmethod
    def mode(self) -> LoopMode:
        """Control the loop mode (:class:`LoopMode`, or its text ``"lock"`` ...)."""

    @mode.setter
    @abstractmethod
    def mode(self, value: LoopMode | str) -> None: ...

    # ---- actions ---------------------------------------------------------------------------

    @abstractmethod
    def reset_integrator(self) -> None:
        """Short the integrator and release it, so the loop relocks at the present flux."""

    @abstractmethod
    def heat(self, duration_s: float) -> None:
        """Remove trapped flux: drive the SQUID normal for ``duration_s`` seconds.

        Args:
            duration_s: how long the heater stays on. The implementation
                validates it, waits for the SQUID to cool down again and
                then restores the previous settings (relocking a loop that
                was locked).
        """

    @abstractmethod
    def check_setting(self, name: str, value: Any) -> Any:
        """Validate ``value`` for setting ``name`` without sending anything.

        Args:
            name: one of :data:`SQUID_SETTINGS` (or an implementation extra).
            value: the value a caller wants to set.

        Returns:
            The value as it will be set (e.g. the matching enum member).

        Raises:
            SettingOutOfRange: the value is refused; names the channel,
                setting, value, allowed range and unit.
        """

    @abstractmethod
    def allowed(self, name: str) -> str:
        """Describe in words what setting ``name`` accepts, with its unit.

        Args:
            name: a setting name, as for :meth:`check_setting`.

        Returns:
            e.g. ``"0 to 0.002 A"``.
        """

    # ---- conveniences built on the members above --------------------------------------------

    def lock(self) -> None:
        """Close the flux-locked loop (``mode = LoopMode.LOCK``)."""
        self.mode = LoopMode.LOCK

    def tune(self) -> None:
        """Open the loop to look at V(Phi) (``mode = LoopMode.TUNE``)."""
        self.mode = LoopMode.TUNE

    def relock(self) -> None:
        """Reset the integrator while locked: what to do after a flux jump or at a rail."""
        self.reset_integrator()

    # ---- the daemon's description ------------------------------------------------------------

    def _setter(self, name: str) -> Any:
        def set_value(value: Any) -> None:
            setattr(self, name, self.check_setting(name, value))

        return set_value

    def _getter(self, name: str) -> Any:
        return partial(getattr, self, name)

    def _read_back(self, name: str) -> Any:
        """The getter the daemon may use to read setting ``name`` back, or None."""
        return self._getter(name) if self.READS_BACK else None

    def _reading(self, name: str) -> Reading:
        return Reading.of(getattr(self, name))

    def control_specs(self) -> list[ControlSpec]:
        """Describe the common SQUID settings to the daemon.

        Returns:
            One :class:`ControlSpec` per entry of :data:`SQUID_SETTINGS`.
        """
        return [
            ControlSpec(
                name=name,
                unit=unit,
                set=self._setter(name),
                validate=partial(self.check_setting, name),
                get=self._read_back(name),
                allowed=self.allowed(name),
            )
            for name, unit in SQUID_SETTINGS.items()
        ]

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities: the numeric settings, read back.

        Returns:
            Poll specs for bias current, flux offset and output offset; none
            when the electronics cannot read back (:attr:`READS_BACK`).
        """
        if not self.READS_BACK:
            return []
        return [
            PollSpec(
                name=name,
                unit=unit,
                read=partial(self._reading, name),
                period_s=10.0,
                quantity="setting",
            )
            for name, unit in SQUID_SETTINGS.items()
            if name in ("bias_current", "flux_offset", "output_offset")
        ]

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions: lock, tune, reset the integrator, heat.

        Returns:
            The action specs.
        """
        return [
            ActionSpec("lock", self.lock, "close the flux-locked loop"),
            ActionSpec("tune", self.tune, "open the loop (output = V(Phi))"),
            ActionSpec(
                "reset_integrator", self.reset_integrator, "short and release the integrator"
            ),
            ActionSpec("heat", self.heat, "flux-trap removal heater pulse", ("duration_s",)),
        ]
