"""Simulated SRS SIM900 mainframe with SIM928 voltage source and SIM921 AC bridge modules.

Transport: TCP standing in for the mainframe's RS-232. Commands end with LF
(a CR before it is ignored); replies end with CR LF. Clients (PyVISA) use
``read_termination="\\r\\n"``, ``write_termination="\\n"``.

Mainframe commands
------------------
==========================  =====================================================================
``*IDN?``                   ``Stanford_Research_Systems,SIM900,s/n152417,ver3.6``
``SNDT p,"text"``           send ``text`` (one or more ``;``-separated module commands) to the
                            module in port p (1-8); its replies (each ending CR LF) go into
                            port p's output queue
``GETN? p,n``               up to n (<= 999) bytes of port p's queue as a definite-length block:
                            ``#3nnn<bytes>`` (the bytes include the module's CR LF), then the
                            mainframe's own CR LF; e.g. ``#3008+1.000\\r\\n\\r\\n``
``NINP? p``                 number of bytes waiting in port p's queue
``FLSH p`` / ``FLSH``       clear port p's queue / every queue
``CONN p,"esc"``            transparent connection to port p: every following line goes to the
                            module and its reply comes straight back, until the escape string
                            ``esc`` is received (anywhere, with or without a terminator)
==========================  =====================================================================

Unknown mainframe commands, bad ports (no module) and bad syntax are ignored
(no reply), as on the real unit; the server keeps answering.

Each TCP connection is a host link of its own (own port output queues, own
``CONN`` session; the modules are shared): a second connection, e.g. a test
reading back what the daemon set, never takes the daemon's replies.

The modules (SIM928 voltage source, SIM921 AC bridge, their commands and errors)
are in :mod:`simulators.servers.sim900_modules`.

Simulator interface: ``SIM900Server(modules=None, *, host="127.0.0.1",
port=0)`` with ``modules`` mapping ports 1-8 to :class:`SIM928` /
:class:`SIM921` objects (default: SIM928 in port 1, SIM921 in port 2);
``received`` keeps the last :data:`~simulators.servers.base.RECEIVED_KEPT` commands.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from simulators.servers.base import InstrumentServer
from simulators.servers.sim900_modules import SIM921, SIM928, SimModule

__all__ = ["SIM900Server", "SIM921", "SIM928", "SimModule"]

#: Bytes a port's output queue holds; beyond that the oldest are lost.
QUEUE_BYTES = 4096
_ESCAPE_TOKEN = "\x00ESCAPE\x00"
_SNDT = re.compile(r'^SNDT\s+(\d+)\s*,\s*"(.*)"$', re.IGNORECASE | re.DOTALL)
_CONN = re.compile(r'^CONN\s+(\d+)\s*,\s*"(.+)"$', re.IGNORECASE)
_GETN = re.compile(r"^GETN\?\s*(\d+)\s*,\s*(\d+)$", re.IGNORECASE)
_PORT = re.compile(r"^(NINP\?|FLSH)\s*(\d*)$", re.IGNORECASE)


class _HostLink(threading.local):
    """What belongs to one host connection: port output queues and a CONN session.

    A ``threading.local``: the base server serves every connection in a thread
    of its own, so each connection sees its own instance.
    """

    def __init__(self) -> None:
        self.queues: dict[int, bytearray] = {p: bytearray() for p in range(1, 9)}
        self.connected: int | None = None  # port of a CONN session (handler side)
        self.split_escape: bytes | None = None  # the same session, as seen by the splitter


class SIM900Server(InstrumentServer):
    """SIM900 mainframe routing to its modules.

    Args:
        modules: port (1-8) -> module; default: SIM928 in port 1, SIM921 in port 2.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "SIM900"
    idn = "Stanford_Research_Systems,SIM900,s/n152417,ver3.6"

    def __init__(
        self,
        modules: Mapping[int, SimModule] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\r\n")
        self.modules: dict[int, SimModule] = dict(modules or {1: SIM928(), 2: SIM921()})
        self.ignored = 0
        self._link = _HostLink()

    @property
    def queues(self) -> dict[int, bytearray]:
        """The port output queues of the calling connection."""
        return self._link.queues

    def module(self, port: int) -> SimModule:
        """The module in ``port``."""
        return self.modules[port]

    # ---- framing ---------------------------------------------------------------------------

    def split_commands(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Lines, except that inside a CONN session the escape string ends the session."""
        out: list[bytes] = []
        while True:
            term = buffer.find(b"\n")
            escape = self._link.split_escape
            if escape is not None:
                esc = buffer.find(escape)
                if esc != -1 and (term == -1 or esc < term):
                    if buffer[:esc].strip():
                        out.append(buffer[:esc].rstrip(b"\r"))
                    out.append(_ESCAPE_TOKEN.encode("ascii"))
                    buffer = buffer[esc + len(escape) :]
                    self._link.split_escape = None
                    continue
            if term == -1:
                return out, buffer
            line = buffer[:term].rstrip(b"\r")
            buffer = buffer[term + 1 :]
            out.append(line)
            if self._link.split_escape is None:
                conn = self._parse_conn(line.decode("ascii", errors="replace").strip())
                if conn is not None:
                    self._link.split_escape = conn[1].encode("ascii")

    def _parse_conn(self, text: str) -> tuple[int, str] | None:
        m = _CONN.match(text)
        if m and int(m.group(1)) in self.modules:
            return int(m.group(1)), m.group(2)
        return None

    # ---- commands --------------------------------------------------------------------------

    def handle(self, command: str) -> str | bytes | None:
        """Mainframe command, or a module line inside a CONN session."""
        if command == _ESCAPE_TOKEN:
            self._link.connected = None
            return None
        if self._link.connected is not None:
            replies = self.modules[self._link.connected].handle(command)
            return "\r\n".join(replies) if replies else None
        return self._mainframe(command)

    def _mainframe(self, text: str) -> str | None:
        upper = text.upper()
        if upper == "*IDN?":
            return self.idn
        m = _SNDT.match(text)
        if m:
            port = int(m.group(1))
            if port in self.modules:
                module = self.modules[port]
                data = b"".join(r.encode("ascii") + b"\r\n" for r in module.handle(m.group(2)))
                if data and module.reply_delay_s > 0:
                    late = threading.Timer(module.reply_delay_s, self._append_late,
                                           (self.queues[port], data))
                    late.daemon = True
                    late.start()
                elif data:
                    self._append(self.queues[port], data)
                return None
        m = _GETN.match(text)
        if m:
            port, count = int(m.group(1)), min(int(m.group(2)), 999)
            if 1 <= port <= 8:
                queue = self.queues[port]
                data = bytes(queue[:count])
                del queue[:count]
                return f"#3{len(data):03d}{data.decode('ascii', errors='replace')}"
        conn = self._parse_conn(text)
        if conn is not None:
            self._link.connected = conn[0]
            return None
        m = _PORT.match(text)
        if m:
            port_text = m.group(2)
            ports = [int(port_text)] if port_text else list(self.queues)
            if all(1 <= p <= 8 for p in ports):
                if m.group(1).upper() == "FLSH":
                    for p in ports:
                        self.queues[p].clear()
                    return None
                if port_text:
                    return str(len(self.queues[ports[0]]))
        self.ignored += 1
        return None

    def _append_late(self, queue: bytearray, data: bytes) -> None:
        with self.lock:
            self._append(queue, data)

    @staticmethod
    def _append(queue: bytearray, data: bytes) -> None:
        queue.extend(data)
        if len(queue) > QUEUE_BYTES:  # the mainframe's buffer overflows; the oldest bytes are lost
            del queue[: len(queue) - QUEUE_BYTES]
