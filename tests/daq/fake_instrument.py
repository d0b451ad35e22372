"""The in-package instrument double (:mod:`drivers.fake`) and a connection whose connect fails
on request, for unit tests of the daemon's pieces.

The end-to-end tests use the real drivers against the simulated lab; this
stands in only where one piece (a worker, the control server) is under test.
"""

from __future__ import annotations

import threading
from typing import Any

from drivers.common import Connection
from drivers.errors import InstrumentConnectionError
from drivers.fake import FakeInstrument

__all__ = ["FakeConnection", "FakeInstrument"]


class FakeConnection(Connection):
    """A Connection to a given instrument object whose connect() can be made to fail,
    counting attempts (identify() is the real one)."""

    def __init__(self, instrument: FakeInstrument) -> None:
        super().__init__(FakeInstrument, "FAKE::1")
        self.instrument_obj = instrument
        self.refuse = False
        self.attempts = 0
        self.lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self.instrument is not None

    def connect(self) -> Any:
        self.attempts += 1
        if self.refuse:
            raise InstrumentConnectionError("connection refused", instrument="fake")
        self.instrument = self.instrument_obj
        return self.instrument

    def close(self) -> None:
        self.instrument = None
