"""The thin layer between drivers and the daemon: what can be polled, set and called.

Every driver module exposes, next to its PyMeasure ``Instrument`` class, a
function or method that describes the instrument to the daemon:

* :class:`PollSpec` — one readable quantity (a thermometer channel, a gauge,
  the bias voltage): a driver-local name, the unit, a read function that
  returns :class:`~drivers.readings.Reading` s (or
  :class:`~drivers.readings.WaveRecord` s) with the instrument's quality
  verdict and source time, and a sensible default period. The daemon's
  config maps these names to the physicist's names (``fridge1/mxc``).
* :class:`ControlSpec` — one settable target (setpoint, heater range, TES
  bias): unit, a validator that raises
  :class:`drivers.errors.SettingOutOfRange` *before* anything is sent, a
  setter and an optional getter.
* :class:`ActionSpec` — one thing the instrument can be told to do (start a
  ramp, reset the SQUID integrator), with keyword arguments.

The error boundary: the daemon calls a spec only through
:meth:`PollSpec.sample`, :meth:`ControlSpec.apply`, :meth:`ControlSpec.read_back`
and :meth:`ActionSpec.invoke`, which translate whatever the VISA layer or a
parser raised into the hierarchy (:func:`classify_fault`):
:class:`~drivers.errors.InstrumentConnectionError` for I/O (the only fault
after which the daemon reconnects), :class:`~drivers.errors.InstrumentReplyError`
for a reply that does not parse, :class:`~drivers.errors.ArgumentError` for a
value or argument the driver cannot use. A condition the instrument itself
reports (over-range, open sensor) is not an error at all: it is a quality
flag on the reading.

:class:`Connection` holds a driver class and its VISA resource without doing
any I/O; :meth:`Connection.connect` opens it, :meth:`Connection.reconnect`
closes and opens again after a fault. The daemon's worker thread is the only
user of a connection, so nothing here is thread-safe on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pyvisa.errors import InvalidSession, VisaIOError

from drivers.errors import (
    ArgumentError,
    InstrumentConnectionError,
    InstrumentError,
    InstrumentReplyError,
)
from drivers.readings import PollKind, PollResult, Reading, WaveRecord, as_samples

#: Exceptions that mean the link itself failed (timeouts, refused or dropped connections).
IO_FAULTS: tuple[type[BaseException], ...] = (VisaIOError, InvalidSession, OSError, EOFError)


def classify_fault(exc: BaseException, *, instrument: str, command: str,
                   setting: bool = False) -> InstrumentError:
    """Translate what a driver call raised into the error hierarchy.

    Args:
        exc: the exception.
        instrument: instrument name, for the message.
        command: what was being done (``"read ch6"``, ``"set setpoint"``).
        setting: the call was a set or an action: a conversion or argument
            error is then the caller's mistake (:class:`ArgumentError`),
            where during a read it is a reply that did not parse.

    Returns:
        The typed error (``exc`` itself when it already is one).
    """
    if isinstance(exc, InstrumentError):
        return exc
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, IO_FAULTS):
        return InstrumentConnectionError(text, instrument=instrument, command=command)
    if setting:
        return ArgumentError(text, instrument=instrument, command=command)
    return InstrumentReplyError(instrument=instrument, command=command, reply=None, why=text)


@dataclass(frozen=True)
class PollSpec:
    """One quantity the daemon can read periodically.

    Attributes:
        name: driver-local name, e.g. ``"A"``, ``"ch6"``, ``"gauge3"``, ``"bias_voltage"``.
        unit: SI-style unit text, e.g. ``"K"``, ``"Ohm"``, ``"mbar"``, ``"V"``.
        read: returns a :class:`~drivers.readings.Reading` (a
            :class:`~drivers.readings.WaveRecord` for waveforms), or a list of
            them for a batch, each with its quality and, where the
            instrument knows it, its source time.
        period_s: default poll period; the config may override it.
        quantity: what is measured (``"temperature"``, ``"pressure"``, ...).
        kind: scalar readings or waveform records.
        fresh: optional; returns True when the instrument has produced a new
            reading since the last read (the 372 scanner uses this so the
            daemon reads a channel when its dwell produced one, not blindly).
    """

    name: str
    unit: str
    read: Callable[[], PollResult]
    period_s: float = 1.0
    quantity: str = ""
    kind: PollKind = PollKind.SCALAR
    fresh: Callable[[], bool] | None = None

    def sample(self, instrument: str) -> list[Reading] | list[WaveRecord]:
        """Read once through the error boundary; a batch of one or more samples.

        Raises:
            InstrumentConnectionError: the link failed (reconnect).
            InstrumentReplyError: the reply did not parse, or the driver
                returned something that is not a reading.
        """
        try:
            result = self.read()
        except Exception as exc:
            raise classify_fault(exc, instrument=instrument, command=f"read {self.name}") \
                from exc
        try:
            samples = as_samples(result)
        except TypeError as exc:
            raise InstrumentReplyError(instrument=instrument, command=f"read {self.name}",
                                       reply=result, why=str(exc)) from None
        wanted = WaveRecord if self.kind is PollKind.WAVEFORM else Reading
        if samples and not isinstance(samples[0], wanted):
            raise InstrumentReplyError(instrument=instrument, command=f"read {self.name}",
                                       reply=type(samples[0]).__name__,
                                       why=f"a {self.kind.value} poll must return "
                                           f"{wanted.__name__}s")
        return samples


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

    def check(self, value: Any, instrument: str) -> Any:
        """Run the validator (no I/O); the value as it will be sent.

        Raises:
            SettingOutOfRange: refused by the driver's validator.
            ArgumentError: a value the validator cannot even interpret.
        """
        try:
            return self.validate(value)
        except Exception as exc:
            raise classify_fault(exc, instrument=instrument, command=f"set {self.name}",
                                 setting=True) from exc

    def apply(self, value: Any, instrument: str) -> Any:
        """Validate, then send; returns the value sent.

        Raises:
            SettingOutOfRange / ArgumentError: refused, nothing was sent.
            InstrumentConnectionError: the link failed while sending.
        """
        checked = self.check(value, instrument)
        try:
            self.set(checked)
        except Exception as exc:
            raise classify_fault(exc, instrument=instrument, command=f"set {self.name}",
                                 setting=True) from exc
        return checked

    def read_back(self, instrument: str) -> Any:
        """The instrument's present value of this setting.

        Raises:
            ArgumentError: the setting cannot be read back.
            InstrumentConnectionError / InstrumentReplyError: as for a read.
        """
        if self.get is None:
            raise ArgumentError("cannot be read back", instrument=instrument,
                                command=f"get {self.name}")
        try:
            return self.get()
        except Exception as exc:
            raise classify_fault(exc, instrument=instrument, command=f"get {self.name}") \
                from exc


@dataclass(frozen=True)
class ActionSpec:
    """One command without a persistent value (start a ramp, reset the integrator)."""

    name: str
    call: Callable[..., Any]
    doc: str = ""
    params: Sequence[str] = field(default_factory=tuple)

    def invoke(self, instrument: str, **kwargs: Any) -> Any:
        """Call the action through the error boundary.

        Raises:
            ArgumentError: an unknown or missing parameter, or a value the
                driver cannot use (nothing, or not all, was sent).
            InstrumentConnectionError: the link failed.
        """
        unknown = set(kwargs) - set(self.params)
        if unknown:
            raise ArgumentError(f"unknown parameter(s) {', '.join(sorted(unknown))}; takes "
                                f"{', '.join(self.params) or 'none'}", instrument=instrument,
                                command=self.name)
        try:
            return self.call(**kwargs)
        except Exception as exc:
            raise classify_fault(exc, instrument=instrument, command=self.name,
                                 setting=True) from exc


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
        self.identity = ""

    @property
    def connected(self) -> bool:
        """True between a successful :meth:`connect` and :meth:`close`."""
        return self.instrument is not None

    def connect(self) -> Any:
        """Open the resource and build the driver; returns the driver instance.

        Raises:
            InstrumentConnectionError: the resource cannot be opened.
        """
        if self.instrument is None:
            name = getattr(self.driver, "__name__", str(self.driver))
            try:
                self.instrument = self.driver(self.resource, **self.options)
            except Exception as exc:
                raise classify_fault(exc, instrument=name, command=f"open {self.resource}",
                                     setting=True) from exc
        return self.instrument

    def identify(self) -> str:
        """Ask the connected instrument who it is, so "connected" means it answered.

        Uses the driver's ``identify()`` when it has one, else a SCPI ``id``
        property (``*IDN?``); an instrument that can answer neither (a
        write-only one such as the PFL-102) is taken as it is. The answer is
        kept in :attr:`identity`.

        Raises:
            InstrumentConnectionError: no answer (a hung or absent instrument).
        """
        instrument = self.instrument
        if instrument is None:
            raise InstrumentConnectionError("not connected", command="identify")
        name = getattr(self.driver, "__name__", str(self.driver))
        identify = getattr(instrument, "identify", None)
        # PyMeasure's ``id`` property exists on every Instrument; it asks only when SCPI.
        scpi = (isinstance(getattr(type(instrument), "id", None), property)
                and bool(getattr(instrument, "SCPI", True)))
        if not callable(identify) and not scpi:
            return self.identity
        try:
            self.identity = str(identify() if callable(identify) else instrument.id)
        except Exception as exc:
            fault = classify_fault(exc, instrument=name, command="identify")
            raise InstrumentConnectionError(f"no answer to the identity query: {fault}",
                                            instrument=name, command="identify") from exc
        return self.identity

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
