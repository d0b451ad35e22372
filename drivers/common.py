"""The thin layer between drivers and the daemon: what can be polled, set and called.

Every driver module exposes, next to its PyMeasure ``Instrument`` class, a
function or method that describes the instrument to the daemon:

* :class:`PollSpec` — one readable quantity (a thermometer channel, a gauge,
  the bias voltage): a driver-local name, the unit, a read function and a
  sensible default period. The daemon's config maps these names to the
  physicist's names (``fridge1/mxc``).
* :class:`ControlSpec` — one settable target (setpoint, heater range, TES
  bias): unit, a validator that raises
  :class:`drivers.errors.SettingOutOfRange` *before* anything is sent, a
  setter and an optional getter.
* :class:`ActionSpec` — one thing the instrument can be told to do (start a
  ramp, reset the SQUID integrator), with keyword arguments.

:class:`Connection` holds a driver class and its VISA resource without doing
any I/O; :meth:`Connection.connect` opens it, :meth:`Connection.reconnect`
closes and opens again after a fault. The daemon's worker thread is the only
user of a connection, so nothing here is thread-safe on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class PollSpec:
    """One quantity the daemon can read periodically.

    Attributes:
        name: driver-local name, e.g. ``"A"``, ``"ch6"``, ``"gauge3"``, ``"bias_voltage"``.
        unit: SI-style unit text, e.g. ``"K"``, ``"Ohm"``, ``"mbar"``, ``"V"``.
        read: returns the current value (float, or numpy array for waveforms).
        period_s: default poll period; the config may override it.
        quantity: what is measured (``"temperature"``, ``"pressure"``, ...).
        kind: ``"scalar"`` or ``"waveform"``.
        fresh: optional; returns True when the instrument has produced a new
            reading since the last read (the 372 scanner uses this so the
            daemon reads a channel when its dwell produced one, not blindly).
    """

    name: str
    unit: str
    read: Callable[[], Any]
    period_s: float = 1.0
    quantity: str = ""
    kind: str = "scalar"
    fresh: Callable[[], bool] | None = None


@dataclass(frozen=True)
class ControlSpec:
    """One settable target; ``validate`` raises before anything reaches the instrument.

    Attributes:
        name: driver-local name, e.g. ``"setpoint"``, ``"heater_range"``, ``"bias_voltage"``.
        unit: unit of the value.
        set: sends the (validated) value.
        validate: returns the value as it will be sent, or raises
            :class:`drivers.errors.SettingOutOfRange`.
        get: reads the current value back, when the instrument can.
        allowed: human-readable allowed range, e.g. ``"0 to 2 K"`` or ``"off, 31.6 uA, ..."``.
    """

    name: str
    unit: str
    set: Callable[[Any], None]
    validate: Callable[[Any], Any]
    get: Callable[[], Any] | None = None
    allowed: str = ""


@dataclass(frozen=True)
class ActionSpec:
    """One command without a persistent value (start a ramp, reset the integrator)."""

    name: str
    call: Callable[..., Any]
    doc: str = ""
    params: Sequence[str] = field(default_factory=tuple)


@runtime_checkable
class Describable(Protocol):
    """What the daemon needs from a connected driver."""

    def poll_specs(self) -> list[PollSpec]:
        """The quantities the daemon may read periodically."""
        ...

    def control_specs(self) -> list[ControlSpec]:
        """The settable targets, each with its validator."""
        ...

    def action_specs(self) -> list[ActionSpec]:
        """The commands without a persistent value."""
        ...


class Connection:
    """A driver class and where to find it; ``connect()`` is the only step that does I/O.

    Args:
        driver: the driver class (a PyMeasure ``Instrument`` subclass or any
            class taking ``adapter`` as first argument).
        resource: VISA resource string, e.g. ``TCPIP::127.0.0.1::7777::SOCKET``.
        options: keyword arguments passed to the driver (timeouts, terminations, ...).
    """

    def __init__(self, driver: type, resource: str, **options: Any) -> None:
        self.driver = driver
        self.resource = resource
        self.options = options
        self.instrument: Any = None

    @property
    def connected(self) -> bool:
        """True between a successful :meth:`connect` and :meth:`close`."""
        return self.instrument is not None

    def connect(self) -> Any:
        """Open the resource and build the driver; returns the driver instance."""
        if self.instrument is None:
            self.instrument = self.driver(self.resource, **self.options)
        return self.instrument

    def close(self) -> None:
        """Close the resource; safe to call when already closed or half-broken."""
        instrument, self.instrument = self.instrument, None
        if instrument is None:
            return
        adapter = getattr(instrument, "adapter", None)
        try:
            if adapter is not None:
                adapter.close()
        except Exception:  # noqa: BLE001 - a broken link must still be released
            pass

    def reconnect(self) -> Any:
        """Close and open again, e.g. after a timeout or a dropped connection."""
        self.close()
        return self.connect()
