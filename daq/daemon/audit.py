"""Audit events that always fit on the wire.

Every request that runs must leave an audit event, and an event travels in
a message header, which has a size limit (:data:`daq.messages.MAX_HEADER_BYTES`).
A request may be large (a long curve upload, a value with thousands of
non-ASCII characters, each escaped to six bytes in JSON), so
:func:`fit_audit` makes the fields JSON-able and shortens the largest ones,
with a marker saying how much was cut, until the encoded event fits: the
event is truncated, never dropped.
"""

from __future__ import annotations

import json
from typing import Any

#: Encoded size budget of an audit event's fields (well inside the header limit).
AUDIT_BUDGET_BYTES = 16 * 1024
_MIN_KEEP = 64


def _encoded_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    return value


def fit_audit(fields: dict[str, Any], budget: int = AUDIT_BUDGET_BYTES) -> dict[str, Any]:
    """``fields`` made JSON-able and, if needed, shortened to at most ``budget`` bytes encoded.

    A field that is cut becomes its text form cut short plus
    ``"...[truncated: N bytes]"`` naming its full encoded size.
    """
    out = {key: _jsonable(value) for key, value in fields.items()}
    while _encoded_size(out) > budget:
        key = max(out, key=lambda k: _encoded_size(out[k]))
        size = _encoded_size(out[key])
        text = out[key] if isinstance(out[key], str) else json.dumps(out[key])
        excess = _encoded_size(out) - budget
        # Keep characters worth at least what must go; escaped characters count up to six bytes.
        keep = max(_MIN_KEEP, len(text) - excess - 64)
        if keep >= len(text):
            keep = len(text) // 2
        out[key] = f"{text[:keep]}...[truncated: {size} bytes]"
        if keep <= _MIN_KEEP and _encoded_size(out[key]) >= size:
            out[key] = f"[truncated: {size} bytes]"
    return out
