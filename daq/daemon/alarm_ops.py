"""The daemon's alarm operations: forwarded from the control endpoint to the alarm service.

The control endpoint (:class:`daq.daemon.control.ControlServer`) checks roles
(``alarm_list`` is read-only; ``alarm_ack``, ``alarm_shelve`` and
``alarm_unshelve`` need ``operator``) and audits every request, as for any
other op; what passes is handed to :class:`AlarmForwarder`, which sends it
to the alarm service's ops endpoint (``daemon.alarms_url``; the protocol is
in :mod:`daq.alarms.ops`) together with who asked, and relays the answer.

No thread per request: the control thread owns the forwarder's one DEALER
and calls :meth:`AlarmForwarder.pump` on every turn of its loop, which
takes the replies in, matches them to their requests by id, and answers
requests older than ``timeout_s`` with a clear error (a request that could
not be sent for want of a connection is tried again on every turn until
then, and never sent after it). At most
``max_pending`` requests wait at a time; one more is refused as busy.

Client requests (to the daemon)::

    {"op": "alarm_list", "everything"?: bool}
    {"op": "alarm_ack", "alarm": id | "alarms": [ids] | "alarm": "*", "comment"?: text}
    {"op": "alarm_shelve", "alarm": id, "duration_s": s, "reason": text}
    {"op": "alarm_unshelve", "alarm": id}

The answer is the alarm service's (``alarms``: the records), or a refusal.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from daq.security import ClientKeys, arm_client

log = logging.getLogger(__name__)

#: Control op -> the alarm service's op.
ALARM_OPS = {"alarm_list": "list", "alarm_ack": "ack", "alarm_shelve": "shelve",
             "alarm_unshelve": "unshelve"}
READ_ONLY_ALARM_OPS = frozenset({"alarm_list"})
#: The request fields passed on (everything else stays at the daemon).
_FIELDS = ("alarm", "alarms", "comment", "reason", "duration_s", "everything")

#: finish(identity, request, who, result, audited=...) of the control server.
Finish = Callable[..., None]


@dataclass
class _Waiting:
    identity: bytes
    request: dict[str, Any]
    who: dict[str, str]
    deadline: float
    body: bytes | None = None  # not sent yet (no connection): the frame to send


class AlarmForwarder:
    """Forwards alarm ops to the alarm service (see the module docstring).

    Args:
        url: the alarm service's ops endpoint (``daemon.alarms_url``); None: no alarm
            service, every alarm op is refused saying so.
        curve: client keys when the alarm service's endpoint runs CURVE.
        timeout_s: a request without an answer this long is answered with an error.
        max_pending: requests waiting at most.
    """

    def __init__(self, url: str | None = None, *, curve: ClientKeys | None = None,
                 timeout_s: float = 5.0, max_pending: int = 64) -> None:
        self.url = url
        self.curve = curve
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.forwarded = 0
        self.timeouts = 0
        self.busy = 0
        self.error = ""
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiting] = {}
        self._sock: zmq.Socket | None = None

    def open(self, context: zmq.Context) -> None:
        """Create the DEALER (in the thread that will use it)."""
        if self.url is None:
            return
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Nothing queued for an alarm service that is not there: the request fails at once
        # instead of surprising it later with an acknowledgement nobody waits for.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.SNDHWM, self.max_pending)
        try:
            arm_client(sock, self.curve)
            sock.connect(self.url)
        except zmq.ZMQError as exc:  # a bad URL must not take the control endpoint down
            self.error = f"cannot connect to {self.url}: {exc}"
            log.error("alarm ops: %s", self.error)
            sock.close()
            return
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def forward(self, identity: bytes, request: dict[str, Any], who: dict[str, str],
                finish: Finish) -> None:
        """Send one alarm op on (or answer it at once when that cannot be done)."""
        audited = self._audited(request)
        if self._sock is None:
            finish(identity, request, who, {"ok": False, "error": (
                self.error or "no alarm service: set daemon.alarms_url to its ops endpoint")},
                audited=audited)
            return
        if len(self._waiting) >= self.max_pending:
            self.busy += 1
            finish(identity, request, who, {"ok": False, "error": (
                f"busy: {self.max_pending} alarm requests are waiting for the alarm service; "
                "try again")}, audited=audited)
            return
        fid = next(self._ids)
        body = {k: request[k] for k in _FIELDS if k in request}
        body.update({"id": fid, "op": ALARM_OPS[str(request["op"])], "who": who})
        waiting = _Waiting(identity, request, who, time.monotonic() + self.timeout_s,
                           json.dumps(body).encode())
        self._waiting[fid] = waiting
        self._send(waiting)

    def _send(self, waiting: _Waiting) -> None:
        """Send a waiting request if the connection is up; otherwise the next pump tries
        again, until its deadline (a service that just restarted is reconnected meanwhile)."""
        assert self._sock is not None and waiting.body is not None
        try:
            self._sock.send_multipart([b"", waiting.body], zmq.NOBLOCK)
        except zmq.Again:
            return
        waiting.body = None
        self.forwarded += 1

    def pump(self, finish: Finish) -> None:
        """Relay the answers that arrived; time out the overdue (the control thread's loop)."""
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                reply = json.loads(frames[-1])
                waiting = self._waiting.pop(int(reply["id"]))
            except (ValueError, KeyError, TypeError, IndexError):
                continue  # late (already timed out) or malformed: nobody waits for it
            result = {k: v for k, v in reply.items() if k != "id"}
            result["ok"] = bool(result.get("ok"))
            finish(waiting.identity, waiting.request, waiting.who, result,
                   audited=self._audited(waiting.request))
        now = time.monotonic()
        for fid in [f for f, w in self._waiting.items() if w.deadline <= now]:
            waiting = self._waiting.pop(fid)
            self.timeouts += 1
            what = ("is not reachable (nothing was sent)" if waiting.body is not None
                    else f"did not answer within {self.timeout_s:g} s")
            finish(waiting.identity, waiting.request, waiting.who, {"ok": False, "error": (
                f"the alarm service at {self.url} {what}")},
                audited=self._audited(waiting.request))
        for waiting in self._waiting.values():
            if waiting.body is not None:
                self._send(waiting)

    @staticmethod
    def _audited(request: dict[str, Any]) -> dict[str, Any]:
        """The request as the audit trail shows it: the alarm as the target, the rest as the
        value."""
        target = request.get("alarm", request.get("alarms"))
        if isinstance(target, list):
            target = ", ".join(str(t) for t in target)
        value = {k: request[k] for k in ("comment", "reason", "duration_s", "everything")
                 if k in request}
        return {**request, "target": target, "value": value or None}
