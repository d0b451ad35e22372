"""The errors of the DASTARD bridge, under the project's one hierarchy (:mod:`daq.errors`)."""

from __future__ import annotations

from daq.errors import QupdaqError


class DastardError(QupdaqError):
    """Something went wrong talking to, or understanding, a DASTARD server."""


class DastardFormatError(DastardError):
    """A frame from DASTARD does not match its binary or JSON format; dropped, never fatal."""

    def __init__(self, what: str, why: str) -> None:
        self.what = what
        self.why = why
        super().__init__(f"malformed DASTARD {what}: {why}")


class DastardRpcError(DastardError):
    """A JSON-RPC call to DASTARD's control port failed, or DASTARD answered with an error."""

    def __init__(self, method: str, why: str) -> None:
        self.method = method
        self.why = why
        super().__init__(f"DASTARD {method}: {why}")
