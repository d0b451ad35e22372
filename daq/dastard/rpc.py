"""A JSON-RPC 1.0 client for DASTARD's control port (base+0, plain TCP, no ZeroMQ).

DASTARD serves Go's ``net/rpc/jsonrpc`` codec (``rpc_server.go``): a stream
of JSON objects on one TCP connection, requests answered in order::

    -> {"method": "SourceControl.SendAllStatus", "params": ["dummy"], "id": 7}
    <- {"id": 7, "result": false, "error": null}

``params`` is a list holding exactly one argument (Go methods take one);
``error`` is a string or null. The bridge uses ``SourceControl.SendAllStatus``
(DASTARD re-publishes its last message of every status tag, so a bridge that
joins a running DASTARD learns the channel names at once);
``SourceControl.Start`` / ``Stop`` and the others work the same way.
"""

from __future__ import annotations

import json
import socket
from types import TracebackType
from typing import Any

from daq.dastard.errors import DastardRpcError

#: Guard against a peer that streams without end.
MAX_REPLY_BYTES = 64 * 1024 * 1024


class RpcClient:
    """One connection to DASTARD's control port; calls are sequential (not thread-safe).

    Args:
        host: DASTARD's host.
        port: the control port (the base port).
        timeout_s: connect and reply timeout of each call.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 1
        self._decoder = json.JSONDecoder()

    def close(self) -> None:
        """Drop the connection (the next call reconnects)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def call(self, method: str, param: Any = None) -> Any:
        """Call ``method`` with its one argument; return DASTARD's ``result``.

        Raises:
            DastardRpcError: no connection, a timeout, a malformed reply, or
                an error from DASTARD (the connection is dropped on transport errors).
        """
        request_id = self._next_id
        self._next_id += 1
        request = {"method": method, "params": [param], "id": request_id}
        try:
            sock = self._connected()
            sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
            reply = self._read_reply(sock)
        except OSError as exc:
            self.close()
            raise DastardRpcError(method, f"{self.host}:{self.port}: {exc}") from None
        except ValueError as exc:
            self.close()
            raise DastardRpcError(method, f"malformed reply: {exc}") from None
        if not isinstance(reply, dict) or reply.get("id") != request_id:
            self.close()
            raise DastardRpcError(method, f"reply {reply!r} does not answer request {request_id}")
        error = reply.get("error")
        if error is not None:
            raise DastardRpcError(method, str(error))
        return reply.get("result")

    def _connected(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def _read_reply(self, sock: socket.socket) -> Any:
        while True:
            text = self._buffer.lstrip()
            if text:
                try:
                    value, end = self._decoder.raw_decode(text.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    value, end = None, -1  # incomplete: read more
                if end >= 0:
                    self._buffer = text.decode("utf-8")[end:].encode("utf-8")
                    return value
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise ValueError(f"more than {MAX_REPLY_BYTES} bytes without a complete reply")
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("DASTARD closed the control connection")
            self._buffer += chunk
