"""The TCP server every simulated instrument is built on.

A :class:`InstrumentServer` listens on ``host:port`` (port 0 picks a free
one; read :attr:`InstrumentServer.port` after :meth:`start`), accepts any
number of clients, one thread each, splits what they send into commands and
passes each to :meth:`InstrumentServer.handle`. A handler returns the reply
(``str`` gets the write termination appended, ``bytes`` is sent verbatim) or
``None`` for silence, which is what real units do for set commands.

Faults on demand (:class:`Faults`) are applied here, so that every server
has them: drop the connection, stop answering (hang), answer garbage,
answer slowly. Instrument-level faults (over-range, open sensor) belong to
the instrument model and are set by each server's own API.

Subclasses override :meth:`handle` and, for protocols that are not plain
terminated lines (e.g. the Pfeiffer ENQ byte), :meth:`split_commands`.
A unit that sends without being asked (a gauge controller streaming after
power-up) uses :meth:`InstrumentServer.broadcast`; :attr:`client_count`
says whether anyone is listening.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Faults a client will see; change them at any time, they apply to the next command.

    Attributes:
        drop: close the connection instead of answering the next command(s).
        hang: read commands but never answer (until cleared).
        garbage: answer random-looking bytes instead of the real reply.
        delay_s: wait this long before every reply.
    """

    drop: bool = False
    hang: bool = False
    garbage: bool = False
    delay_s: float = 0.0

    def clear(self) -> None:
        self.drop = self.hang = self.garbage = False
        self.delay_s = 0.0


GARBAGE_REPLY = b"\x1b?#!ERR\xfe\xff"

#: How many of the newest received commands a server keeps in ``received``.
RECEIVED_KEPT = 1000


class InstrumentServer:
    """A threaded TCP server speaking one instrument's line protocol.

    Args:
        host: address to bind; simulators bind loopback by default.
        port: TCP port; 0 lets the OS choose (tests).
        name: shown in logs.
        read_termination: what ends a command from the client; ``\\n`` also
            accepts ``\\r\\n`` because trailing ``\\r`` is stripped.
        write_termination: appended to ``str`` replies.
    """

    model = "generic"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "",
        read_termination: bytes = b"\n",
        write_termination: bytes = b"\r\n",
    ) -> None:
        self.host = host
        self._requested_port = port
        self.name = name or self.model
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.faults = Faults()
        self.lock = threading.RLock()  # guards instrument state shared by client threads
        # The newest commands, for tests and logs; bounded, since a lab runs for weeks.
        self.received: deque[str] = deque(maxlen=RECEIVED_KEPT)
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._stopping = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError(f"{self.name}: server not started")
        return int(self._sock.getsockname()[1])

    @property
    def resource(self) -> str:
        """The VISA resource string a driver uses to reach this server."""
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> InstrumentServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        sock.listen(8)
        self._sock = sock
        thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("%s (%s) listening on %s", self.name, self.model, self.resource)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        for client in list(self._clients):
            self._close(client)
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> InstrumentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drop_clients(self) -> None:
        """Close every open client connection now (a cable pulled)."""
        for client in list(self._clients):
            self._close(client)

    @property
    def client_count(self) -> int:
        """How many clients are connected now."""
        return len(self._clients)

    def broadcast(self, data: bytes) -> int:
        """Send unsolicited bytes to every connected client (a unit that streams).

        The ``hang`` fault suppresses the output and ``garbage`` replaces it,
        as for replies.

        Returns:
            How many clients were sent the bytes.
        """
        if self.faults.hang:
            return 0
        if self.faults.garbage:
            data = GARBAGE_REPLY + self.write_termination
        sent = 0
        for client in list(self._clients):
            try:
                client.sendall(data)
                sent += 1
            except OSError:
                self._close(client)
        return sent

    # ---- protocol hooks --------------------------------------------------------------------

    def split_commands(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Split received bytes into complete commands and the unfinished rest."""
        *complete, rest = buffer.split(self.read_termination)
        return [c.rstrip(b"\r") for c in complete], rest

    def handle(self, command: str) -> str | bytes | None:
        """Answer one command; ``None`` means no reply. Override in every server."""
        raise NotImplementedError

    def on_connect(self) -> None:
        """Called when a client connects (e.g. to start a stream)."""

    # ---- internals -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._clients.add(client)
            self.on_connect()
            thread = threading.Thread(
                target=self._serve, args=(client,), name=f"{self.name}-client", daemon=True
            )
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _close(self, client: socket.socket) -> None:
        self._clients.discard(client)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()

    def _serve(self, client: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stopping.is_set():
                try:
                    chunk = client.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                commands, buffer = self.split_commands(buffer + chunk)
                for raw in commands:
                    if not self._answer(client, raw):
                        return
        finally:
            self._close(client)

    def _answer(self, client: socket.socket, raw: bytes) -> bool:
        """Answer one command; False when the connection is to be closed."""
        text = raw.decode("ascii", errors="replace").strip()
        if not text:
            return True
        self.received.append(text)
        faults = self.faults
        if faults.drop:
            log.info("%s: fault 'drop' closes the connection on %r", self.name, text)
            return False
        try:
            with self.lock:
                reply = self.handle(text)
        except Exception:  # a simulator must never die from a client's input
            log.exception("%s: handler failed on %r", self.name, text)
            reply = None
        if faults.hang:
            return True
        if reply is None:
            return True
        if faults.delay_s:
            time.sleep(faults.delay_s)
        if faults.garbage:
            data = GARBAGE_REPLY + self.write_termination
        elif isinstance(reply, str):
            data = reply.encode("ascii") + self.write_termination
        else:
            data = reply
        try:
            client.sendall(data)
        except OSError:
            return False
        return True
