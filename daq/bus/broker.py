"""The broker: an XSUB/XPUB proxy for the live path, plus the last-value snapshot.

Publishers connect to the broker's XSUB port, subscribers to its XPUB port;
subscriptions flow upstream so a publisher only sends what someone wants.
The forwarding runs in libzmq (``zmq.proxy_steerable``), so the broker adds
no Python work per message.

Late joiners (the "clone" pattern): a cache thread subscribes to every
small kind (data, status, alarm, run, heartbeats; not waveform records nor
audit events) and keeps the newest valid message of each stream (a
malformed one is counted and never served; the cache has a size bound). A client asks
the snapshot port (ROUTER) with ``[b"SNAPSHOT", prefix]`` and gets
``[b"SNAPSHOT", json-list-of-frame-counts, *frames]``: the newest message
of every stream under ``prefix``, in wire format. Because the client
subscribes *before* it asks, and drops live messages whose seq is not newer
than the snapshot's, it sees no value older than the snapshot and misses
nothing after it (:meth:`daq.bus.Subscriber.snapshot`).

The live path drops by design under overload (high-water mark); the
sequence numbers make every drop visible to the subscriber. The archive
uses the logger's acknowledged path instead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

import zmq

from daq import messages
from daq.errors import BusError, MessageDecodeError
from daq.failpoints import failpoint
from daq.links import keep_alive
from daq.security import ClientKeys, CurveServerConfig, Gatekeeper, arm_client

log = logging.getLogger(__name__)

SNAPSHOT = b"SNAPSHOT"
#: Kinds kept in the last-value cache (waveforms are too big, audit is history).
CACHED_PREFIXES = (b"data/", b"status/", b"alarm/", b"run/", b"hb/")


@dataclass(frozen=True)
class BrokerEndpoints:
    """Where a running broker can be reached (ports resolved when bound to 0)."""

    publish: str
    subscribe: str
    snapshot: str


def _bind(sock: zmq.Socket, host: str, port: int) -> str:
    url = f"tcp://{host}:{port if port else '*'}"
    try:
        sock.bind(url)
    except zmq.ZMQError as exc:
        raise BusError(f"cannot bind {url}: {exc}") from None
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


class Broker:
    """XSUB/XPUB proxy with a last-value snapshot service.

    Args:
        host: address to bind (loopback by default).
        publish_port / subscribe_port / snapshot_port: 0 picks a free port.
        hwm: high-water mark of the proxy sockets (messages per peer).
        max_cached: streams the last-value cache holds at most.
        curve: CURVE keys and allow-list (roles ``publisher`` for the publish
            port, ``subscriber`` or ``publisher`` for the subscribe and snapshot ports).
        context: a zmq context to use (a new one by default).

    ``start()`` binds and runs in background threads and returns the resolved
    :class:`BrokerEndpoints`; ``stop()`` ends them. ``qupdaq broker`` runs
    one until interrupted.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        publish_port: int = 0,
        subscribe_port: int = 0,
        snapshot_port: int = 0,
        *,
        hwm: int = 100_000,
        max_cached: int = 50_000,
        context: zmq.Context | None = None,
        curve: CurveServerConfig | None = None,
    ) -> None:
        self.host = host
        self.ports = (publish_port, subscribe_port, snapshot_port)
        self.hwm = hwm
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self.endpoints: BrokerEndpoints | None = None
        self._threads: list[threading.Thread] = []
        self._control_url = f"inproc://broker-control-{id(self)}"
        self._cache_url = f"inproc://broker-xpub-{id(self)}"
        self._stop_url = f"inproc://broker-cache-stop-{id(self)}"
        self._ready = threading.Event()
        self._cache_ready = threading.Event()
        self._snapshot_endpoint: str | None = None
        self._error: BaseException | None = None
        self.max_cached = max_cached
        self.curve = curve
        self.gatekeeper: Gatekeeper | None = None
        # The cache's own subscription (inproc) is a client of the XPUB like any other.
        self._cache_keys = zmq.curve_keypair() if curve is not None else None
        self.cache_refused = 0  # malformed messages kept out of the snapshot
        self.cache_evicted = 0  # streams forgotten to respect max_cached

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> BrokerEndpoints:
        """Bind all ports and start forwarding; returns where clients connect."""
        proxy = threading.Thread(target=self._run_proxy, name="broker-proxy", daemon=True)
        proxy.start()
        self._threads.append(proxy)
        if not self._ready.wait(timeout_s):
            raise BusError("broker did not come up")
        if self._error is not None:
            raise self._error if isinstance(self._error, BusError) else BusError(str(self._error))
        assert self.endpoints is not None
        return self.endpoints

    def stop(self) -> None:
        """Stop forwarding and the snapshot service; close every socket."""
        if self.endpoints is not None:
            for url, command in ((self._control_url, b"TERMINATE"), (self._stop_url, b"STOP")):
                sock = self.ctx.socket(zmq.PAIR)
                sock.connect(url)
                sock.send(command)
                sock.close(linger=1000)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self.gatekeeper is not None:
            Gatekeeper.release(self.ctx)
            self.gatekeeper = None
        if self._own_context:
            self.ctx.term()

    # ---- threads -----------------------------------------------------------------------------

    def _run_proxy(self) -> None:
        xsub = self.ctx.socket(zmq.XSUB)
        xpub = self.ctx.socket(zmq.XPUB)
        control = self.ctx.socket(zmq.PAIR)
        try:
            for sock in (xsub, xpub):
                sock.setsockopt(zmq.SNDHWM, self.hwm)
                sock.setsockopt(zmq.RCVHWM, self.hwm)
                keep_alive(sock)
                sock.setsockopt(zmq.LINGER, 0)
            self._arm(xsub, "broker-publish", {"publisher"})
            self._arm(xpub, "broker-subscribe", {"publisher", "subscriber"})
            control.bind(self._control_url)
            publish = _bind(xsub, self.host, self.ports[0])
            subscribe = _bind(xpub, self.host, self.ports[1])
            xpub.bind(self._cache_url)
            cache = threading.Thread(target=self._run_cache, name="broker-cache", daemon=True)
            cache.start()
            self._threads.append(cache)
            if not self._cache_ready.wait(5) or self._snapshot_endpoint is None:
                raise self._error or BusError("snapshot service did not come up")
        except BaseException as exc:  # reported to start(), which raises it
            self._error = exc
            self._ready.set()
            for sock in (xsub, xpub, control):
                sock.close(linger=0)
            return
        self.endpoints = BrokerEndpoints(publish, subscribe, self._snapshot_endpoint)
        self._ready.set()
        log.info("broker: publishers -> %s, subscribers <- %s, snapshot %s",
                 publish, subscribe, self._snapshot_endpoint)
        try:
            failpoint("broker-proxy")
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (xsub, xpub, control):
                sock.close(linger=0)

    def _run_cache(self) -> None:
        snap_sock = self.ctx.socket(zmq.ROUTER)
        sub = self.ctx.socket(zmq.SUB)
        stop = self.ctx.socket(zmq.PAIR)
        try:
            snap_sock.setsockopt(zmq.LINGER, 0)
            self._arm(snap_sock, "broker-snapshot", {"publisher", "subscriber"})
            if self._cache_keys is not None:
                public, secret = self._cache_keys
                arm_client(sub, ClientKeys(self.curve_public, public, secret))
            self._snapshot_endpoint = _bind(snap_sock, self.host, self.ports[2])
            stop.bind(self._stop_url)
            sub.setsockopt(zmq.RCVHWM, self.hwm)
            for prefix in CACHED_PREFIXES:
                sub.setsockopt(zmq.SUBSCRIBE, prefix)
            sub.connect(self._cache_url)
        except BaseException as exc:
            self._error = exc
            for sock in (sub, stop, snap_sock):
                sock.close(linger=0)
            self._cache_ready.set()
            return
        self._cache_ready.set()
        latest: OrderedDict[bytes, list[zmq.Frame]] = OrderedDict()
        poller = zmq.Poller()
        for sock in (sub, snap_sock, stop):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                failpoint("broker-cache")
                events = dict(poller.poll(1000))
                if stop in events:
                    return
                if sub in events:
                    # Drain what is queued: the cache only needs the newest per stream.
                    while True:
                        try:
                            frames = sub.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._cache(latest, frames)
                if snap_sock in events:
                    self._answer_snapshot(snap_sock, latest)
        finally:
            for sock in (sub, stop, snap_sock):
                sock.close(linger=0)

    def _arm(self, sock: zmq.Socket, domain: str, roles: set[str]) -> None:
        """Make ``sock`` a CURVE server admitting the clients whose role is in ``roles``."""
        if self.curve is None:
            return
        if self.gatekeeper is None:
            self.gatekeeper = Gatekeeper.for_context(self.ctx)
        clients = {key: role for key, role in self.curve.clients.items() if role in roles}
        if self._cache_keys is not None and domain == "broker-subscribe":
            clients[self._cache_keys[0].decode("ascii")] = "subscriber"
        self.gatekeeper.arm_server(sock, domain, self.curve, clients)

    @property
    def curve_public(self) -> bytes:
        """The broker's CURVE public key (z85)."""
        assert self.curve is not None
        return self.curve.public()

    def _cache(self, latest: OrderedDict[bytes, list[zmq.Frame]],
               frames: list[zmq.Frame]) -> None:
        """Keep a message as its stream's newest, if it is a valid message at all.

        A malformed message is never handed to late joiners (it is counted and
        dropped); the cache holds at most :attr:`max_cached` streams, forgetting
        the one silent longest.
        """
        try:
            messages.decode(frames)
        except MessageDecodeError as exc:
            self.cache_refused += 1
            if self.cache_refused <= 10 or self.cache_refused % 1000 == 0:
                log.warning("broker: not caching a malformed message (%d so far): %s",
                            self.cache_refused, exc)
            return
        topic = frames[0].bytes
        latest[topic] = frames
        latest.move_to_end(topic)
        while len(latest) > self.max_cached:
            latest.popitem(last=False)
            self.cache_evicted += 1

    @staticmethod
    def _answer_snapshot(sock: zmq.Socket, latest: dict[bytes, list[zmq.Frame]]) -> None:
        request = sock.recv_multipart()
        identity, body = request[0], request[1:]
        # ROUTER requests from REQ carry an empty delimiter; DEALER clients may omit it.
        delimiter = []
        if body and body[0] == b"":
            delimiter, body = [b""], body[1:]
        if not body or body[0] != SNAPSHOT:
            log.warning("broker: ignored a snapshot request that is not %r", SNAPSHOT)
            sock.send_multipart([identity, *delimiter, b"ERROR", b"expected SNAPSHOT prefix"])
            return
        prefix = body[1] if len(body) > 1 else b""
        counts: list[int] = []
        frames: list[zmq.Frame | bytes] = []
        for topic, message in latest.items():
            if topic.startswith(prefix):
                counts.append(len(message))
                frames.extend(message)
        sock.send_multipart([identity, *delimiter, SNAPSHOT, json.dumps(counts).encode(),
                             *frames], copy=False)

    # ---- for `qupdaq broker` -----------------------------------------------------------------

    @property
    def threads(self) -> dict[str, threading.Thread]:
        """The broker's threads by name (the proxy and the cache), for supervision."""
        return {thread.name: thread for thread in self._threads}

    def wait(self) -> None:
        """Block until the broker is stopped (from another thread or a signal handler)."""
        for thread in list(self._threads):
            while thread.is_alive():
                thread.join(timeout=0.5)
