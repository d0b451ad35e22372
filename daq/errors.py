"""qupdaq's one small error hierarchy.

::

    QupdaqError
    ├── InstrumentError               (drivers.errors)
    │   ├── SettingOutOfRange         value refused before it was sent
    │   ├── ArgumentError             a value or argument the driver cannot use
    │   ├── InstrumentReplyError      reply did not parse / error flag
    │   └── InstrumentConnectionError timeout, refused, dropped
    ├── ConfigError                   file, key path, what was expected
    ├── MessageDecodeError            a frame that is not a qupdaq message
    ├── BusError                      endpoint/socket trouble on the bus
    └── ControlError                  a control request that was refused
        └── NotPermitted              role or limit forbids it

The instrument errors live in ``drivers.errors`` (drivers may not import
``daq``) and are re-exported here; import every error from this module.
"""

from __future__ import annotations

from drivers.errors import (
    ArgumentError,
    InstrumentConnectionError,
    InstrumentError,
    InstrumentReplyError,
    QupdaqError,
    SettingOutOfRange,
)

__all__ = [
    "ArgumentError",
    "BusError",
    "ConfigError",
    "ControlError",
    "InstrumentConnectionError",
    "InstrumentError",
    "InstrumentReplyError",
    "MessageDecodeError",
    "NotPermitted",
    "QupdaqError",
    "SettingOutOfRange",
]


class ConfigError(QupdaqError):
    """A configuration file is unreadable or does not match its schema."""

    def __init__(self, message: str, *, file: str = "", key_path: str = "") -> None:
        self.file = file
        self.key_path = key_path
        where = ":".join(part for part in (file, key_path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class MessageDecodeError(QupdaqError):
    """A received frame set is not a valid qupdaq message; it is dropped, never fatal."""

    def __init__(self, why: str, *, frame: int | None = None) -> None:
        self.why = why
        self.frame = frame
        where = f"frame {frame}: " if frame is not None else ""
        super().__init__(f"malformed message: {where}{why}")


class BusError(QupdaqError):
    """A bus endpoint could not be bound, connected or used."""


class ControlError(QupdaqError):
    """A control request (get/set/call) was refused or failed."""


class NotPermitted(ControlError):
    """The client's role, or a configured limit, forbids the request."""
