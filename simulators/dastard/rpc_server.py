"""A JSON-RPC 1.0 server over plain TCP, as DASTARD's control port speaks it.

Each connection carries a stream of JSON request objects
``{"method": "Service.Method", "params": [arg], "id": n}`` (whitespace
between them is optional) and gets one reply per request, in order, each
followed by a newline: ``{"id": n, "result": ..., "error": null}``, or
``{"id": n, "result": null, "error": "what went wrong"}`` (Go's
``net/rpc/jsonrpc`` codec, which DASTARD uses, writes errors as strings).
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class RpcFault(Exception):
    """Raised by a handler: the text goes back to the caller as the ``error``."""


Dispatch = Callable[[str, Any], Any]


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        decoder = json.JSONDecoder()
        text = ""
        self.request.settimeout(None)
        while True:
            try:
                chunk = self.request.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            text += chunk.decode("utf-8", errors="replace")
            while True:
                text = text.lstrip()
                if not text:
                    break
                try:
                    request, end = decoder.raw_decode(text)
                except ValueError:
                    break  # incomplete: read more
                text = text[end:]
                reply = self._answer(request)
                try:
                    self.request.sendall(json.dumps(reply).encode("utf-8") + b"\n")
                except OSError:
                    return

    def _answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"id": None, "result": None, "error": "request is not a JSON object"}
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params")
        if not isinstance(method, str):
            return {"id": request_id, "result": None, "error": "no method"}
        param = params[0] if isinstance(params, list) and params else None
        try:
            result = self.server.dispatch(method, param)
        except RpcFault as exc:
            return {"id": request_id, "result": None, "error": str(exc)}
        except Exception as exc:  # a handler bug must reach the caller, not kill the server
            log.exception("control request %s failed", method)
            return {"id": request_id, "result": None, "error": f"{type(exc).__name__}: {exc}"}
        return {"id": request_id, "result": result, "error": None}


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        super().__init__(address, _Handler)


class RpcServer:
    """Serves ``dispatch(method, param) -> result`` on a TCP port, one thread per connection.

    Args:
        host: address to bind.
        port: port to bind (0: the system chooses; see :attr:`port`).
        dispatch: called for every request; raise :class:`RpcFault` to answer an error.
    """

    def __init__(self, host: str, port: int, dispatch: Dispatch) -> None:
        self._server = _Server((host, port), dispatch)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="dastard-sim-rpc")

    def start(self) -> None:
        """Start accepting connections."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must run
            self._server.shutdown()
        self._server.server_close()

