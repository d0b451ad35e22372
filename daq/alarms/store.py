"""Alarm records on the wire and in the archive, and the rebuild of the state at start.

Every transition of an alarm travels as one ``alarm/<service>/<alarm id>``
message whose ``meta`` holds the whole record (:func:`record_meta`) plus the
transition and who caused it. The logger stores it as an event; the broker's
last-value cache keeps the newest per alarm, so a late joiner (a dashboard)
sees every alarm's state from the snapshot alone.

At start the service asks the logger's history endpoint for the newest
stored event of each of its alarm streams (``events`` with ``prefix`` and
``latest``, :meth:`daq.logger.HistoryClient.events_under`) and rebuilds its
records from them (:func:`rebuild`): active, acknowledged, shelved-until and
the deliveries already made survive a restart, so an unacknowledged critical
alarm is still there and nothing is notified twice.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from daq.alarms.config import Severity
from daq.alarms.state import AlarmRecord, AlarmState
from daq.logger.history import HistoryClient
from daq.messages import now_ns

log = logging.getLogger(__name__)

#: Alarm events asked for at once during a rebuild (newest per alarm: one per alarm).
REBUILD_LIMIT = 100_000
#: Text fields are cut to this on the wire (a header has a size limit).
MAX_TEXT = 2000


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def record_meta(rec: AlarmRecord) -> dict[str, Any]:
    """The record as a JSON-able mapping (an alarm message's ``meta``)."""
    value = rec.value if rec.value is None or math.isfinite(rec.value) else None
    return {
        "alarm": rec.id, "severity": rec.severity.value, "kind": rec.kind,
        "state": rec.state.value, "occurrence": rec.occurrence, "reason": _cut(rec.reason),
        "value": value, "description": _cut(rec.description), "guidance": _cut(rec.guidance),
        "latch": rec.latch, "t_raised": rec.t_raised, "t_changed": rec.t_changed,
        "t_cleared": rec.t_cleared, "t_acked": rec.t_acked, "acked_by": rec.acked_by,
        "ack_comment": _cut(rec.ack_comment), "activations": rec.activations,
        "shelved_until": rec.shelved_until, "shelved_by": rec.shelved_by,
        "shelve_reason": _cut(rec.shelve_reason), "suppressed_by": rec.suppressed_by,
        "group": rec.group, "delivered": {k: list(v) for k, v in rec.delivered.items()},
    }


def _opt_float(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, got {value!r}")
    return value


def record_from_meta(meta: dict[str, Any]) -> AlarmRecord:
    """The record an alarm message's ``meta`` describes.

    Raises:
        ValueError: the mapping is not a record this version understands.
    """
    try:
        delivered = meta.get("delivered") or {}
        if not isinstance(delivered, dict) or not all(
                isinstance(v, list) and all(isinstance(u, str) for u in v)
                for v in delivered.values()):
            raise ValueError(f"delivered must map notice keys to lists, got {delivered!r}")
        occurrence = meta.get("occurrence", 0)
        activations = meta.get("activations", 0)
        if not isinstance(occurrence, int) or not isinstance(activations, int):
            raise ValueError("occurrence and activations must be whole numbers")
        return AlarmRecord(
            id=_text(meta, "alarm"), severity=Severity(meta["severity"]),
            kind=_text(meta, "kind") or "rule", state=AlarmState(meta["state"]),
            occurrence=occurrence, reason=_text(meta, "reason"),
            value=_opt_float(meta, "value"), description=_text(meta, "description"),
            guidance=_text(meta, "guidance"), latch=bool(meta.get("latch", True)),
            t_raised=_opt_float(meta, "t_raised"), t_changed=_opt_float(meta, "t_changed"),
            t_cleared=_opt_float(meta, "t_cleared"), t_acked=_opt_float(meta, "t_acked"),
            acked_by=_text(meta, "acked_by"), ack_comment=_text(meta, "ack_comment"),
            activations=activations, shelved_until=_opt_float(meta, "shelved_until"),
            shelved_by=_text(meta, "shelved_by"), shelve_reason=_text(meta, "shelve_reason"),
            suppressed_by=_text(meta, "suppressed_by"), group=_text(meta, "group"),
            delivered={str(k): list(v) for k, v in delivered.items()},
        )
    except KeyError as exc:
        raise ValueError(f"no {exc.args[0]!r}") from None


def rebuild(history: HistoryClient, service: str, window_s: float,
            now: int | None = None) -> dict[str, AlarmRecord]:
    """Every alarm of ``service`` as its newest stored event (within ``window_s``) says.

    An event that does not parse is logged and skipped (its alarm starts afresh).

    Raises:
        BusError: the logger's history endpoint did not answer.
        HistoryError: it refused the request.
    """
    t1 = now_ns() if now is None else now
    events = history.events_under(f"alarm/{service}/", kind="alarm",
                                  t0_ns=t1 - int(window_s * 1e9), t1_ns=t1, latest=True,
                                  limit=REBUILD_LIMIT)
    records: dict[str, AlarmRecord] = {}
    for event in events:
        meta = event.get("meta")
        try:
            if not isinstance(meta, dict):
                raise ValueError("meta is not a mapping")
            rec = record_from_meta(meta)
        except ValueError as exc:
            log.warning("stored alarm event of %s not understood (%s); that alarm starts "
                        "afresh", event.get("stream"), exc)
            continue
        records[rec.id] = rec
    return records
