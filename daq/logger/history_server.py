"""The logger's history endpoint (protocol and client: :mod:`daq.logger.history`).

A thread owning one ROUTER socket and its own read connection to the store
(SQLite in WAL mode serves readers while the writer writes). A malformed or
refused request gets an error reply and is counted; it never stops the
endpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

import numpy as np
import zmq

from daq.errors import BusError
from daq.logger.config import LoggerConfig
from daq.logger.sink import Store
from daq.logger.stats import LoggerStats
from daq.logger.status import status_fields
from daq.logger.writer import describe, open_store
from daq.messages import now_ns
from daq.security import Gatekeeper

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
MAX_POINTS = 1_000_000


class RequestError(ValueError):
    """A request the endpoint refuses; its text goes back to the client."""


class HistoryServer:
    """Serves history requests in its own thread.

    Args:
        config: the logger section (store and history endpoint).
        stats: the running logger's counters (for ``status``).
        context: zmq context.
    """

    def __init__(self, config: LoggerConfig, stats: LoggerStats, *,
                 context: zmq.Context | None = None) -> None:
        self.config = config
        self.stats = stats
        self.requests = 0
        self.refused = 0
        self._ctx = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._endpoint = ""
        self._error: BaseException | None = None
        self._store: Store | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> str:
        """Bind and start serving; return the bound endpoint.

        Raises:
            BusError: the endpoint cannot be bound.
        """
        self._thread = threading.Thread(target=self._main, name="logger-history", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise BusError(f"history endpoint {self.config.history_endpoint}: "
                           f"{self._error or 'did not start'}")
        return self._endpoint

    def stop(self) -> None:
        """Stop serving and close the socket and the store connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _main(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
            if self.config.curve is not None:  # every allow-listed key may read history
                Gatekeeper.for_context(self._ctx).arm_server(sock, "history", self.config.curve)
            sock.bind(self.config.history_endpoint)
            self._endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = exc
            sock.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(100, zmq.POLLIN):
                    continue
                frames = sock.recv_multipart()
                reply = self._handle(frames)
                if reply is not None:
                    sock.send_multipart(reply)
        finally:
            sock.close()
            if self._store is not None:
                self._store.close()

    def _handle(self, frames: list[bytes]) -> list[bytes] | None:
        # [identity, b"", request] from DEALER/REQ; anything else is answered if possible.
        if len(frames) < 2:
            self.refused += 1
            return None
        peer, body = frames[0], frames[-1]
        self.requests += 1
        rid: Any = None
        try:
            if len(frames) != 3 or frames[1] != b"":
                raise RequestError("expected [empty delimiter, JSON request]")
            try:
                request = json.loads(body)
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise RequestError(f"request is not JSON ({exc})") from None
            if not isinstance(request, dict):
                raise RequestError("request must be a JSON object")
            rid = request.get("id")
            header, payload = self._answer(request)
        except RequestError as exc:
            self.refused += 1
            return [peer, b"", json.dumps({"ok": False, "id": rid, "error": str(exc)}).encode()]
        except Exception as exc:
            self.refused += 1
            self._reset_store()
            log.warning("history request failed: %s", describe(exc))
            return [peer, b"", json.dumps({"ok": False, "id": rid,
                                           "error": f"store: {describe(exc)}"}).encode()]
        header.update({"ok": True, "id": rid})
        return [peer, b"", json.dumps(header).encode(), *payload]

    def _reset_store(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):  # already failing; it is reopened next time
                self._store.close()
            self._store = None

    def _open(self) -> Store:
        if self._store is None:
            try:
                self._store = open_store(self.config, readonly=True)
            except Exception as exc:
                raise RequestError(f"store not available: {describe(exc)}") from None
        return self._store

    def _answer(self, req: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        op = req.get("op")
        if op == "status":
            return {"status": {**status_fields(self.config, self.stats),
                               "history_requests": self.requests,
                               "history_refused": self.refused}}, []
        store = self._open()
        if op == "query":
            stream = _text(req, "stream")
            t1 = _int(req, "t1", now_ns())
            t0 = _int(req, "t0", t1 - 3600 * 10**9)
            max_points = _int(req, "max_points", 2000)
            if not 2 <= max_points <= MAX_POINTS:
                raise RequestError(f"max_points must be 2..{MAX_POINTS}, got {max_points}")
            series = store.series(stream, t0, t1, max_points)
            times = np.ascontiguousarray(series.times, dtype="<i8")
            values = np.ascontiguousarray(series.values, dtype="<f8")
            return ({"stream": stream, "n": len(times), "raw_count": series.raw_count,
                     "decimated": series.decimated}, [times.tobytes(), values.tobytes()])
        if op == "streams":
            return {"streams": store.streams()}, []
        if op == "runs":
            return {"runs": store.runs()}, []
        if op == "run":
            run = store.run(_text(req, "run"))
            if run is None:
                raise RequestError(f"no run {req.get('run')!r}")
            return {"run": run}, []
        if op == "gaps":
            wanted = None if req.get("stream") is None else _text(req, "stream")
            return {"gaps": store.gaps(wanted)}, []
        if op == "events":
            filters = {k: _text(req, k) for k in ("stream", "kind", "prefix") if k in req}
            window = {k: _int(req, k, 0) for k in ("t0", "t1") if k in req}
            latest = req.get("latest", False)
            if not isinstance(latest, bool):
                raise RequestError(f"'latest' must be true or false, got {latest!r}")
            limit = _int(req, "limit", 1000)
            if not 1 <= limit <= MAX_POINTS:
                raise RequestError(f"limit must be 1..{MAX_POINTS}, got {limit}")
            return {"events": store.events(**filters, **window,  # type: ignore[arg-type]
                                           limit=limit, latest=latest)}, []
        if op == "records":
            return {"records": store.records(_text(req, "stream"), _int(req, "t0", 0),
                                             _int(req, "t1", now_ns()))}, []
        if op == "run_index":  # measurement runs (daq.logger.run_sink)
            run_filters = {k: _text(req, k) for k in ("procedure", "sample", "status")
                           if k in req}
            run_span = {k: _int(req, k, 0) for k in ("t0", "t1") if k in req}
            return {"runs": store.run_index(**run_filters, **run_span,  # type: ignore[arg-type]
                                            limit=_int(req, "limit", 1000)),
                    "directory": str(self.config.storage_dir.resolve())}, []
        if op == "run_entry":
            entry = store.run_entry(_text(req, "run"))
            if entry is None:
                raise RequestError(f"no measurement run {req.get('run')!r}")
            return {"run": entry, "file": str((self.config.storage_dir / entry["path"])
                                              .resolve())}, []
        raise RequestError(f"unknown op {op!r} (query, streams, runs, run, gaps, events, "
                           "records, run_index, run_entry, status)")


def _text(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str) or not value or len(value) > 400:
        raise RequestError(f"{key!r} must be non-empty text, got {value!r}")
    return value


def _int(req: dict[str, Any], key: str, default: int) -> int:
    value = req.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**63:
        raise RequestError(f"{key!r} must be an integer, got {value!r}")
    return value
