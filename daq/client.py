"""``Lab``: the small Python client of a running daemon, for scripts, the GUI and tests.

::

    from daq.client import Lab

    with Lab() as lab:                                # the embedded default config
        lab.list()                                    # targets, units, ranges, values
        lab.set("fridge1/mxc_setpoint", 0.05)         # checked by the daemon, audited
        lab.call("fridge1/mxc_ramp", rate=0.1)
        for msg in lab.subscribe("data/fridge1"):     # live messages (daq.messages.Message)
            print(msg.stream, msg.value, msg.units)

Every refused request raises :class:`daq.errors.ControlError` with the
daemon's explanation (target, value, allowed range, unit); a daemon that
does not answer raises :class:`daq.errors.BusError`. With CURVE, pass the
daemon's public key and this client's key pair (z85 text).
"""

from __future__ import annotations

import builtins
import itertools
import json
import os
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import zmq

from daq.bus import Subscriber
from daq.config import LabConfig, load_config
from daq.daemon.control import MAX_REQUEST_BYTES
from daq.errors import BusError, ControlError
from daq.links import keep_alive
from daq.messages import Message
from daq.names import topic_prefix


class LeaseHandle:
    """A lease this client holds (from :meth:`Lab.lease`); a context manager that releases."""

    def __init__(self, lab: Lab, token: str, holder: str, targets: frozenset[str],
                 ttl_s: float) -> None:
        self.lab = lab
        self.token = token
        self.holder = holder
        self.targets = targets
        self.ttl_s = ttl_s
        self.renewed_at = time.monotonic()

    def renew(self) -> None:
        """Extend the lease by its ttl (raises ControlError when it has lapsed)."""
        self.lab.request("renew", lease=self.token)
        self.renewed_at = time.monotonic()

    def renew_if_due(self) -> None:
        """Renew when a third of the ttl has passed since the last renewal."""
        if time.monotonic() - self.renewed_at > self.ttl_s / 3:
            self.renew()

    def release(self) -> None:
        """Give the targets back (idempotent)."""
        if self in self.lab._leases:
            self.lab._leases.remove(self)
            self.lab.request("release", lease=self.token)

    def __enter__(self) -> LeaseHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lab:
    """Control and live data of one daemon.

    Args:
        config: a lab config (or path); the embedded default when None.
        control_url: override the daemon's control endpoint.
        server_key / public_key / secret_key: CURVE keys (z85) for a remote daemon.
        timeout_s: how long to wait for each reply.
        client: a name for the audit trail (default: user@pid).
        daemon: which daemon of a facility config to control (its ``daemons`` entry).
    """

    def __init__(
        self,
        config: LabConfig | str | None = None,
        *,
        control_url: str | None = None,
        server_key: str | None = None,
        public_key: str | None = None,
        secret_key: str | None = None,
        timeout_s: float = 10.0,
        client: str | None = None,
        context: zmq.Context | None = None,
        daemon: str | None = None,
    ) -> None:
        whole = config if isinstance(config, LabConfig) else load_config(config)
        self.config = whole.for_daemon(daemon) if whole.daemons else whole
        self.control_url = control_url or self.config.daemon.control.bind
        self.timeout_s = timeout_s
        self.client = client or f"{os.environ.get('USER', 'user')}@{os.getpid()}"
        self._ctx = context or zmq.Context.instance()
        self._ids = itertools.count(1)
        if server_key and not (public_key and secret_key):
            raise ControlError("CURVE needs this client's public_key and secret_key too")
        if server_key is None and control_url is None:
            keys = self.config.keys_for("control")  # from the config's identity section
            if keys is not None:
                server_key, public_key, secret_key = (
                    keys.server_public.decode(), keys.public.decode(), keys.secret.decode())
        self._keys = (server_key, public_key, secret_key)
        self._leases: list[LeaseHandle] = []
        self._sock = self._open()

    def _open(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Queue requests only on a completed connection: with the daemon down, or a CURVE
        # handshake refused, a send then fails within the timeout instead of blocking forever.
        sock.setsockopt(zmq.IMMEDIATE, 1)
        keep_alive(sock)
        server_key, public_key, secret_key = self._keys
        if server_key and public_key and secret_key:
            sock.curve_serverkey = server_key.encode()
            sock.curve_publickey = public_key.encode()
            sock.curve_secretkey = secret_key.encode()
        sock.connect(self.control_url)
        return sock

    def _reset(self) -> None:
        """A fresh socket after a timeout: nothing stale is queued or answered later."""
        self._sock.close()
        self._sock = self._open()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- control -----------------------------------------------------------------------------

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and return the daemon's reply (raises on refusal)."""
        request_id = next(self._ids)
        if "lease" not in fields and (token := self._lease_for(fields.get("target"))):
            fields = {**fields, "lease": token}
        timeout_ms = int(self.timeout_s * 1000)
        what = f"{op} {fields.get('target', '')}".strip()
        if not self._sock.poll(timeout_ms, zmq.POLLOUT):
            self._reset()
            raise BusError(f"no reply from the daemon at {self.control_url} within "
                           f"{self.timeout_s:g} s ({what}): no connection (daemon down, or "
                           "its CURVE handshake refused this client's key)")
        body = json.dumps({"id": request_id, "op": op, "client": self.client, **fields},
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(body) > MAX_REQUEST_BYTES:
            raise ControlError(f"{what}: the request is {len(body)} bytes; the daemon takes at "
                               f"most {MAX_REQUEST_BYTES}")
        self._sock.send(body)
        while True:
            if not self._sock.poll(timeout_ms, zmq.POLLIN):
                self._reset()
                raise BusError(f"no reply from the daemon at {self.control_url} within "
                               f"{self.timeout_s:g} s ({what})")
            reply = json.loads(self._sock.recv())
            if reply.get("id") == request_id:
                break  # older replies (after a timeout) are skipped
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "refused"))
        return dict(reply)

    def lease(self, targets: list[str], holder: str, ttl_s: float = 30.0) -> LeaseHandle:
        """Hold ``targets`` exclusively: others' sets and calls on them are refused with
        ``holder``'s name until :meth:`LeaseHandle.release` or expiry; this client's own
        requests carry the lease. Renew it (:meth:`LeaseHandle.renew_if_due`) while working.
        """
        reply = self.request("lease", targets=list(targets), holder=holder, ttl_s=ttl_s)
        handle = LeaseHandle(self, str(reply["lease"]), holder, frozenset(targets), ttl_s)
        self._leases.append(handle)
        return handle

    def _lease_for(self, target: object) -> str | None:
        for handle in self._leases:
            if target in handle.targets:
                return handle.token
        return None

    def ping(self) -> str:
        """The daemon's name; proves the control endpoint answers."""
        return str(self.request("ping")["value"])

    def list(self) -> list[dict[str, Any]]:
        """Every target: kind, instrument, unit, allowed range, limits, current value."""
        return list(self.request("list")["targets"])

    def get(self, target: str) -> Any:
        """The current value of a control target, read from the instrument."""
        return self.request("get", target=target)["value"]

    def set(self, target: str, value: Any) -> Any:
        """Set a control target; returns the value as sent to the instrument."""
        return self.request("set", target=target, value=value)["value"]

    def call(self, target: str, **args: Any) -> Any:
        """Run an action (start a ramp, reset the SQUID integrator) with keyword arguments."""
        return self.request("call", target=target, args=args)["value"]

    # ---- alarms (forwarded by the daemon to the alarm service: daq.daemon.alarm_ops) -------

    def alarm_list(self, everything: bool = False) -> builtins.list[dict[str, Any]]:
        """The alarms that are not normal (``everything``: all), first causes first."""
        return list(self.request("alarm_list", everything=everything)["alarms"])

    def alarm_ack(self, *alarms: str, comment: str = "") -> builtins.list[dict[str, Any]]:
        """Acknowledge alarms (``"*"``: every unacknowledged one); returns their records."""
        return list(self.request("alarm_ack", alarms=list(alarms), comment=comment)["alarms"])

    def alarm_shelve(self, alarm: str, duration_s: float,
                     reason: str) -> builtins.list[dict[str, Any]]:
        """Shelve an alarm for ``duration_s`` seconds, saying why; it unshelves itself."""
        return list(self.request("alarm_shelve", alarm=alarm, duration_s=duration_s,
                                 reason=reason)["alarms"])

    def alarm_unshelve(self, alarm: str) -> builtins.list[dict[str, Any]]:
        """Take an alarm off the shelf now."""
        return list(self.request("alarm_unshelve", alarm=alarm)["alarms"])

    # ---- live data ---------------------------------------------------------------------------

    def subscriber(self, *prefixes: str) -> Subscriber:
        """A :class:`daq.bus.Subscriber` on this lab's broker (close it when done)."""
        bus = self.config.bus
        wanted = tuple(topic_prefix(p) for p in prefixes) or ("",)  # fridge1/x: data/fridge1/x
        return Subscriber(bus.subscribe_url, wanted, snapshot_url=bus.snapshot_url,
                          curve=self.config.keys_for("bus"),
                          context=self._ctx)

    def subscribe(self, *prefixes: str, timeout_s: float | None = None) -> Iterator[Message]:
        """Live messages under ``prefixes``; stops after ``timeout_s`` of silence (if given)."""
        sub = self.subscriber(*prefixes)
        try:
            while (msg := sub.recv(timeout_s)) is not None:
                yield msg
        finally:
            sub.close()
