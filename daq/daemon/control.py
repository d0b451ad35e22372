"""The daemon's control endpoint (ROUTER): get, set, call, list; every command audited.

Protocol: a client (DEALER, :class:`daq.client.Lab`) sends one JSON frame
``{"id": 7, "op": "set", "target": "fridge1/mxc_setpoint", "value": 0.05,
"client": "alice"}`` (``args`` for ``call``) and gets one JSON frame back
``{"id": 7, "ok": true, "value": 0.05}`` or ``{"id": 7, "ok": false, "error":
"..."}``. ``op`` is ``ping``, ``list``, ``get``, ``set`` or ``call``, or one of
the lease operations (:mod:`daq.daemon.leases`): ``lease`` ``{holder, targets,
ttl_s}`` answers ``{lease: token}``; ``renew`` and ``release`` take ``{lease}``;
a ``set``/``call`` on a leased target must carry the ``lease`` token. The alarm
operations ``alarm_list`` (read-only), ``alarm_ack``, ``alarm_shelve`` and
``alarm_unshelve`` are forwarded to the alarm service (:mod:`daq.daemon.alarm_ops`).

Order of checks, all before the request reaches the instrument: the frame
is JSON with a known op; the target exists; the client's role allows the op
(read-only: ping, list, get); the config's limits allow the value
(:class:`daq.daemon.safety.Limits`); then the owning worker runs the
driver's strict validator, and only then sends. Every request, refused or
not, is published as ``audit/<daemon>/control`` with who (client name, CURVE
key, role), what (op, target, value), when, and the outcome.

Security: a non-loopback bind requires CURVE (checked when the config is
loaded); with CURVE, a ZAP handler admits only keys on the allow-list and
the role comes from that list. Without CURVE (loopback), every client has
``default_role``.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from daq import messages
from daq.daemon.alarm_ops import ALARM_OPS, READ_ONLY_ALARM_OPS, AlarmForwarder
from daq.daemon.audit import fit_audit
from daq.daemon.config import ControlEndpointConfig
from daq.daemon.leases import LeaseTable
from daq.daemon.safety import Limits
from daq.daemon.worker import Busy, InstrumentWorker, Request, TargetKind
from daq.errors import BusError, NotPermitted
from daq.failpoints import failpoint
from daq.messages import Kind, Message
from daq.security import Gatekeeper, user_key

log = logging.getLogger(__name__)

READ_ONLY_OPS = frozenset({"ping", "list", "get"}) | READ_ONLY_ALARM_OPS
MAX_LIST_WAITERS = 256
LEASE_OPS = frozenset({"lease", "renew", "release"})
ALL_OPS = READ_ONLY_OPS | {"set", "call"} | LEASE_OPS | set(ALARM_OPS)
MAX_REQUEST_BYTES = 64 * 1024
LIST_TIMEOUT_S = 3.0


@dataclass
class ListRound:
    """One gathering of every worker's targets, shared by the list requests that wait on it."""

    round_id: int
    deadline: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: list[tuple[bytes, dict[str, Any], dict[str, str]]] = field(default_factory=list)


class ControlServer:
    """Receives control requests, checks them, queues them to workers, replies, audits.

    Args:
        config: the control endpoint section.
        workers: instrument workers by name.
        limits: the config's limits.
        emit: where audit messages go (the outbound stage).
        daemon_name: source of the audit stream.
    """

    def __init__(
        self,
        config: ControlEndpointConfig,
        workers: dict[str, InstrumentWorker],
        limits: Limits,
        emit: Callable[[Message], None],
        *,
        daemon_name: str,
        context: zmq.Context | None = None,
        alarm_ops: AlarmForwarder | None = None,
    ) -> None:
        self.config = config
        self.workers = workers
        # Alarm ops (daq.daemon.alarm_ops): forwarded to the alarm service by this thread.
        self.alarm_ops = alarm_ops or AlarmForwarder()
        self.limits = limits
        self._emit = emit
        self.daemon_name = daemon_name
        self.ctx = context or zmq.Context.instance()
        self.endpoint: str | None = None
        self.requests = 0
        self.malformed = 0
        self._replies: queue.Queue[tuple[bytes, dict[str, Any]]] = queue.Queue()
        # A ``list`` gathers every worker's description; concurrent lists share one round,
        # answered by the control thread itself (no thread per request).
        self._round: ListRound | None = None
        self._described: queue.Queue[tuple[int, str, dict[str, Any]]] = queue.Queue()
        self._round_ids = itertools.count(1)
        self.internal_errors = 0
        self.leases = LeaseTable()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self._gatekeeper: Gatekeeper | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve in a thread; returns the bound endpoint."""
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        assert self.endpoint is not None
        return self.endpoint

    @property
    def alive(self) -> bool:
        """Whether the control thread runs (the supervisor checks it)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


    # ---- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        try:
            if self.config.curve is not None:
                self._gatekeeper = Gatekeeper.for_context(self.ctx)
                self._gatekeeper.arm_server(sock, "control", self.config.curve)
            try:
                sock.bind(self.config.bind)
            except zmq.ZMQError as exc:
                raise BusError(f"control endpoint cannot bind {self.config.bind}: {exc}") \
                    from None
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException as exc:
            self._error = exc
            sock.close()
            self._ready.set()
            return
        self._ready.set()
        self.alarm_ops.open(self.ctx)
        log.info("control endpoint on %s (%s)", self.endpoint,
                 "CURVE" if self.config.curve else "loopback, no keys")
        try:
            while not self._stop.is_set():
                failpoint("control")
                if sock.poll(20, zmq.POLLIN):
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._on_request_guarded(frames)
                self._advance_round()
                self.alarm_ops.pump(self._finish)
                while True:
                    try:
                        identity, reply = self._replies.get_nowait()
                    except queue.Empty:
                        break
                    sock.send_multipart([identity, json.dumps(reply).encode()])
        except BaseException as exc:  # the supervisor sees the thread gone and ends the daemon
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("control endpoint thread died")
            raise
        finally:
            self.alarm_ops.close()
            sock.close()

    # ---- requests ----------------------------------------------------------------------------

    def _role_of(self, frame: zmq.Frame) -> tuple[str, str]:
        """(role, key) of the client that sent ``frame``."""
        if self.config.curve is None:
            return self.config.default_role, ""
        key = user_key(frame)
        return self.config.curve.clients.get(key, "none"), key

    def _on_request_guarded(self, frames: list[zmq.Frame]) -> None:
        """Handle one request; whatever it provokes is a refusal, never the thread's end."""
        try:
            self._on_request(frames)
        except Exception as exc:
            self.internal_errors += 1
            log.exception("control: request failed unexpectedly")
            identity = frames[0].bytes if frames else b""
            if identity:
                self._finish(identity, {}, {"role": "?", "key": ""},
                             {"ok": False, "error": f"internal error: {type(exc).__name__}: "
                                                    f"{str(exc)[:200]}"})

    def _on_request(self, frames: list[zmq.Frame]) -> None:
        self.requests += 1
        identity = frames[0].bytes
        role, key = self._role_of(frames[-1])
        who = {"role": role, "key": key}
        if len(frames) != 2:
            self._refuse(identity, {}, who, f"expected one JSON frame, got {len(frames) - 1}")
            return
        try:
            request = json.loads(frames[1].bytes)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            self._refuse(identity, {}, who, f"malformed request: not JSON ({exc})")
            return
        if not isinstance(request, dict):
            self._refuse(identity, {}, who, "malformed request: not a JSON object")
            return
        who["client"] = str(request.get("client", ""))[:100]
        op = request.get("op")
        if op not in ALL_OPS:
            self._refuse(identity, request, who,
                         f"unknown op {op!r}; use one of {', '.join(sorted(ALL_OPS))}")
            return
        if role not in ("operator", "read-only"):
            self._refuse(identity, request, who, "client has no role")
            return
        if op not in READ_ONLY_OPS and role != "operator":
            self._refuse(identity, request, who,
                         f"{op} needs the operator role; this client is {role}")
            return
        if op == "ping":
            self._finish(identity, request, who, {"ok": True, "value": self.daemon_name})
            return
        if op == "list":
            self._join_round(identity, request, who)
            return
        if op in ALARM_OPS:
            self.alarm_ops.forward(identity, request, who, self._finish)
            return
        if op in LEASE_OPS:
            self._lease_op(identity, request, who)
            return
        target = request.get("target")
        worker = self._owner(target) if isinstance(target, str) else None
        if worker is None or not isinstance(target, str):
            known = ", ".join(sorted(t for w in self.workers.values() for t in w.targets))
            self._refuse(identity, request, who,
                         f"unknown target {target!r}; known targets: {known or 'none yet'}")
            return
        kind = worker.targets[target].kind
        if (op == "call") != (kind is TargetKind.ACTION):
            self._refuse(identity, request, who,
                         f"{target} is {'an action: use call' if kind == 'action' else 'a control: use get or set'}")
            return
        token = request.get("lease")
        try:  # a target a run holds is read-only to everyone else
            self.leases.check(target, token if isinstance(token, str) else None)
        except NotPermitted as exc:
            if op != "get":
                self._refuse(identity, request, who, str(exc))
                return
        if op == "set":
            if "value" not in request:
                self._refuse(identity, request, who, f"set {target}: no value given")
                return
            try:
                self.limits.check(target, request["value"])
            except NotPermitted as exc:
                self._refuse(identity, request, who, str(exc))
                return
        args = request.get("args", {})
        if not isinstance(args, dict):
            self._refuse(identity, request, who, "args must be a JSON object")
            return
        try:
            worker.submit(Request(op=op, target=target, value=request.get("value"),
                                  kwargs=args,
                                  reply=lambda result: self._finish(identity, request, who,
                                                                    result)))
        except Busy as exc:
            self._refuse(identity, request, who, str(exc))

    def _lease_op(self, identity: bytes, request: dict[str, Any], who: dict[str, str]) -> None:
        """``lease`` {holder, targets, ttl_s} -> {lease: token}; ``renew``/``release`` {lease}."""
        op = request["op"]
        try:
            if op == "lease":
                targets = request.get("targets")
                holder = request.get("holder")
                ttl = request.get("ttl_s", 30.0)
                if (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
                        or not isinstance(holder, str)
                        or not isinstance(ttl, int | float) or isinstance(ttl, bool)):
                    raise NotPermitted("lease needs holder (text), targets (a list of names) "
                                       "and ttl_s (seconds)")
                unknown = [t for t in targets if self._owner(t) is None]
                if unknown:
                    raise NotPermitted(f"cannot lease unknown target(s) {', '.join(unknown)}")
                lease = self.leases.grant(holder, targets, float(ttl))
                result: dict[str, Any] = {"ok": True, "lease": lease.token,
                                          "value": lease.describe(self.leases.clock())}
            else:
                token = request.get("lease")
                if not isinstance(token, str):
                    raise NotPermitted(f"{op} needs the lease token")
                if op == "renew":
                    lease = self.leases.renew(token)
                    result = {"ok": True, "value": lease.describe(self.leases.clock())}
                else:
                    released = self.leases.release(token)
                    result = {"ok": True, "value": None if released is None else
                              released.describe(self.leases.clock())}
        except NotPermitted as exc:
            self._refuse(identity, request, who, str(exc))
            return
        # The audit names who holds what; the token itself stays with its holder.
        audited = {k: v for k, v in request.items() if k != "lease"}
        audited["value"] = result["value"]
        self._finish(identity, request, who, result, audited=audited)

    def submit_internal(self, op: str, target: str, value: Any, reason: str,
                        done: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Act on behalf of the daemon itself (interlocks); audited like any request.

        ``done`` is called with the worker's answer (from the worker's thread).
        """
        worker = self._owner(target)
        request = {"op": op, "target": target, "value": value, "client": f"interlock: {reason}"}
        who = {"role": "daemon", "key": "", "client": "interlock"}

        def finished(result: dict[str, Any]) -> None:
            self._audit(request, who, result, reason)
            if done is not None:
                done(result)

        if worker is None:
            finished({"ok": False, "error": f"unknown target {target!r}"})
            return
        worker.submit(Request(op=op, target=target, value=value, reply=finished), internal=True)

    def _owner(self, target: str) -> InstrumentWorker | None:
        for worker in self.workers.values():
            if target in worker.targets:
                return worker
        return None

    def _join_round(self, identity: bytes, request: dict[str, Any], who: dict[str, str]) -> None:
        """Add a ``list`` request to the round in flight, or start one."""
        if self._round is None:
            round_id = next(self._round_ids)
            self._round = ListRound(round_id, time.monotonic() + LIST_TIMEOUT_S)
            for name, worker in self.workers.items():
                def reply(result: dict[str, Any], name: str = name) -> None:
                    self._described.put((round_id, name, result))
                worker.submit(Request(op="describe", reply=reply), internal=True)
        if len(self._round.waiting) >= MAX_LIST_WAITERS:
            self._refuse(identity, request, who,
                         f"busy: {MAX_LIST_WAITERS} list requests are waiting; try again")
            return
        self._round.waiting.append((identity, request, who))

    def _advance_round(self) -> None:
        """Take in workers' descriptions; answer the round when complete or overdue."""
        while True:
            try:
                round_id, name, result = self._described.get_nowait()
            except queue.Empty:
                break
            if self._round is not None and round_id == self._round.round_id:
                self._round.results[name] = result
        current = self._round
        if current is None or (len(current.results) < len(self.workers)
                               and time.monotonic() < current.deadline):
            return
        self._round = None
        targets: list[dict[str, Any]] = []
        for name, worker in self.workers.items():
            described = current.results.get(name)
            if described is not None and described.get("ok"):
                targets.extend(described["targets"])
            else:
                targets.extend({"target": t.target, "kind": t.kind.value, "instrument": name,
                                "unit": t.unit, "allowed": t.allowed, "params": list(t.params),
                                "value_error": f"{name} did not answer within "
                                               f"{LIST_TIMEOUT_S:g} s"}
                               for t in worker.targets.values())
        for item in targets:
            item["limits"] = self.limits.describe(item["target"])
        leases = self.leases.active()
        for identity, request, who in current.waiting:
            self._finish(identity, request, who, {"ok": True, "targets": targets,
                                                  "leases": leases})

    def _refuse(self, identity: bytes, request: dict[str, Any], who: dict[str, str],
                error: str) -> None:
        self.malformed += 1 if error.startswith(("malformed", "expected one")) else 0
        self._finish(identity, request, who, {"ok": False, "error": error})

    def _finish(self, identity: bytes, request: dict[str, Any], who: dict[str, str],
                result: dict[str, Any], *, audited: dict[str, Any] | None = None) -> None:
        """Queue the reply and audit the request (``audited``: the request as the audit
        trail shows it, when it differs, e.g. without a lease's secret token)."""
        reply = {"id": request.get("id"), **result}
        self._replies.put((identity, reply))
        if request.get("op") != "ping":
            self._audit(audited if audited is not None else request, who, result)

    def _audit(self, request: dict[str, Any], who: dict[str, str], result: dict[str, Any],
               reason: str = "") -> None:
        outcome = "ok" if result.get("ok") else "refused"
        fields: dict[str, Any] = {
            "who": who, "op": request.get("op"), "target": request.get("target"),
            "value": request.get("value"), "args": request.get("args"),
            "outcome": outcome, "error": result.get("error", ""),
        }
        if reason:
            fields["reason"] = reason
        fields = fit_audit(fields)
        self._emit(messages.event(Kind.AUDIT, self.daemon_name, "control", **fields))
        log.info("audit: %s %s %s %s by %s -> %s %s", fields["op"], fields["target"],
                 fields["value"], reason, who, outcome, fields["error"])
