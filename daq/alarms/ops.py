"""The alarm service's ops protocol: list, acknowledge, shelve, unshelve.

People never talk to the alarm service directly: they use the daemon's
control endpoint (ops ``alarm_list``, ``alarm_ack``, ``alarm_shelve``,
``alarm_unshelve``), where roles, CURVE and the audit trail apply, and the
daemon forwards the request here (:mod:`daq.daemon.alarm_ops`) with who asked.

Frames: a DEALER sends ``[b"", request JSON]`` to the service's ROUTER and
gets ``[b"", reply JSON]``. Requests::

    {"id": 7, "op": "list", "everything": false}
        -> {"id": 7, "ok": true, "alarms": [record, ...], "lab_states": {...}}
    {"id": 8, "op": "ack", "alarms": ["fridge1_mxc_warm"] | ["*"], "comment": "...",
     "who": {"client": "alice@host", "role": "operator", "key": ""}}
        -> {"id": 8, "ok": true, "alarms": [record after, ...]}
    {"id": 9, "op": "shelve", "alarm": "fridge1_still_low", "duration_s": 3600,
     "reason": "still heater service", "who": {...}}
        -> {"id": 9, "ok": true, "alarms": [record after]}
    {"id": 10, "op": "unshelve", "alarm": "fridge1_still_low", "who": {...}}
    {"id": 11, "op": "ping"} -> {"id": 11, "ok": true, "value": "<service name>"}

A refused request gets ``{"id": n, "ok": false, "error": "..."}``; a
malformed one too (it never ends the service). A record is
:func:`daq.alarms.store.record_meta` plus ``shelved`` and ``grouped``.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from daq.alarms.engine import AlarmEngine, Outbox, Who
from daq.errors import ControlError

MAX_REQUEST_BYTES = 64 * 1024


class AlarmOp(enum.StrEnum):
    """The operations of the protocol."""

    PING = "ping"
    LIST = "list"
    ACK = "ack"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"


class OpError(ControlError):
    """A request the service refuses; its text goes back to the client."""


@dataclass(frozen=True)
class OpRequest:
    """One parsed request."""

    id: Any
    op: AlarmOp
    alarms: tuple[str, ...] = ()
    comment: str = ""
    reason: str = ""
    duration_s: float = 0.0
    everything: bool = False
    who: Who = Who()


def _text(body: dict[str, Any], key: str, limit: int = 1000) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise OpError(f"{key!r} must be text, got {value!r}")
    return value[:limit]


def parse(body_bytes: bytes) -> OpRequest:
    """The request in ``body_bytes``.

    Raises:
        OpError: not a request of this protocol (the message says why).
    """
    if len(body_bytes) > MAX_REQUEST_BYTES:
        raise OpError(f"request longer than {MAX_REQUEST_BYTES} bytes")
    try:
        body = json.loads(body_bytes)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OpError(f"malformed request: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise OpError("malformed request: not a JSON object")
    rid = body.get("id")
    try:
        op = AlarmOp(str(body.get("op")))
    except ValueError:
        raise OpError(f"unknown op {body.get('op')!r}; use one of "
                      f"{', '.join(o.value for o in AlarmOp)}") from None
    who_raw = body.get("who", {})
    if not isinstance(who_raw, dict):
        raise OpError("'who' must be an object")
    who = Who(_text(who_raw, "client", 100), _text(who_raw, "role", 20),
              _text(who_raw, "key", 60))
    alarms: list[str] = []
    if "alarm" in body:
        alarms.append(_text(body, "alarm", 200))
    raw = body.get("alarms", [])
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise OpError("'alarms' must be a list of alarm ids")
    alarms.extend(a[:200] for a in raw[:1000])
    if op in (AlarmOp.ACK, AlarmOp.SHELVE, AlarmOp.UNSHELVE) and not alarms:
        raise OpError(f"{op.value} needs the alarm id (alarm or alarms)")
    if op in (AlarmOp.SHELVE, AlarmOp.UNSHELVE) and len(alarms) != 1:
        raise OpError(f"{op.value} takes one alarm at a time")
    duration = body.get("duration_s", 0.0)
    if op is AlarmOp.SHELVE and (not isinstance(duration, int | float)
                                 or isinstance(duration, bool) or not math.isfinite(duration)):
        raise OpError(f"shelve needs duration_s (seconds), got {duration!r}")
    everything = body.get("everything", False)
    if not isinstance(everything, bool):
        raise OpError("'everything' must be true or false")
    return OpRequest(rid, op, tuple(alarms), _text(body, "comment"), _text(body, "reason"),
                     float(duration) if op is AlarmOp.SHELVE else 0.0, everything, who)


def handle(engine: AlarmEngine, request: OpRequest, now: float,
           service: str) -> tuple[dict[str, Any], Outbox]:
    """Carry out ``request`` on ``engine``; the reply and what the engine asks for.

    Raises:
        ControlError: refused (unknown alarm, nothing to acknowledge, a shelf without
            a reason); nothing changed.
    """
    op = request.op
    if op is AlarmOp.PING:
        return {"ok": True, "value": service}, Outbox()
    if op is AlarmOp.LIST:
        return {"ok": True, "alarms": engine.listing(now, everything=request.everything),
                "lab_states": dict(engine.lab_states)}, Outbox()
    if op is AlarmOp.ACK:
        out = engine.acknowledge(request.alarms, request.who, request.comment, now)
    elif op is AlarmOp.SHELVE:
        out = engine.shelve(request.alarms[0], request.duration_s, request.who,
                            request.reason, now)
    else:
        out = engine.unshelve(request.alarms[0], request.who, now)
    changed = list(dict.fromkeys(e.alarm for e in out.events))
    rows = [row for row in engine.listing(now, everything=True) if row["alarm"] in changed]
    return {"ok": True, "alarms": rows}, out
