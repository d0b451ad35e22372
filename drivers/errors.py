"""The instrument half of qupdaq's one error hierarchy.

The root of the hierarchy lives here, in the lowest layer, because drivers
may not import ``daq`` (imports point down: gui -> daq -> drivers).
``daq.errors`` re-exports everything below and adds the service-side errors,
so application code imports from ``daq.errors`` only.

Every message names the instrument, the command or property, the value, the
allowed range and the unit, so that an operator can act on it without
reading code.
"""

from __future__ import annotations

from typing import Any


class QupdaqError(Exception):
    """Root of every error qupdaq raises on purpose."""


class InstrumentError(QupdaqError):
    """Something went wrong talking to, or about, one instrument."""

    def __init__(self, message: str, *, instrument: str = "", command: str = "") -> None:
        self.instrument = instrument
        self.command = command
        where = " ".join(part for part in (instrument, f"'{command}'" if command else "") if part)
        super().__init__(f"{where}: {message}" if where else message)


class SettingOutOfRange(InstrumentError, ValueError):
    """A value was refused before anything was sent to the instrument.

    Subclasses ``ValueError`` so that PyMeasure's validators and callers that
    catch ``ValueError`` keep working.
    """

    def __init__(
        self,
        *,
        instrument: str,
        command: str,
        value: Any,
        allowed: str,
        unit: str = "",
    ) -> None:
        self.value = value
        self.allowed = allowed
        self.unit = unit
        unit_text = f" {unit}" if unit else ""
        super().__init__(
            f"value {value!r}{unit_text} is out of range; allowed: {allowed}{unit_text}",
            instrument=instrument,
            command=command,
        )


class InstrumentReplyError(InstrumentError):
    """The instrument answered something that cannot be parsed or is an error flag."""

    def __init__(self, *, instrument: str, command: str, reply: Any, why: str) -> None:
        self.reply = reply
        super().__init__(f"unexpected reply {reply!r}: {why}", instrument=instrument, command=command)


class ArgumentError(InstrumentError, ValueError):
    """A value or argument the driver cannot convert or use (a missing argument,
    a number too large to send); refused like an out-of-range setting, never
    taken for a link fault."""


class InstrumentConnectionError(InstrumentError):
    """The instrument cannot be reached, timed out, or dropped the connection."""
