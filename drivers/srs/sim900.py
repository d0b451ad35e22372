"""SRS SIM900 mainframe: reaching SIM modules through their mainframe ports.

The SIM900 is the only thing on the wire (GPIB, RS-232 at 9600 baud, or a
terminal server); the modules sit in ports 1-8 behind it. A command for a
module travels as ``SNDT p,"text"``; the module's reply lands in the port's
output queue and is fetched with ``GETN? p,n``, which answers an IEEE 488.2
definite-length block ``#3nnn<bytes>`` (``#3000`` while the module has not
answered yet) followed by the mainframe's own line terminator, e.g.
``#3008+1.000\r\n\r\n``. ``FLSH p`` empties a port's queues.

This module hides all of that behind module objects. A module is a
PyMeasure :class:`~pymeasure.instruments.Channel` (:class:`SIMModule`) whose
``write`` becomes ``SNDT`` and whose ``read`` polls ``GETN?`` until one
complete reply line has arrived, so module drivers (``sim928.py``,
``sim921.py``) are written with ordinary declarative properties in the
module's own command language.

One port's trouble stays in that port. Every port has its own queue, here
and in the mainframe: a module that does not answer in time is a reply error
of that module (the mainframe itself answered), never a link fault that
would reopen the connection for every module behind it; and the port is
marked out of step, so before its next query its stale bytes are dropped
here and in the mainframe (``FLSH p``, that port only) and a late answer is
never taken for the next one. The other ports' queued bytes are not touched.

Interface::

    frame = SIM900("ASRL/dev/ttyUSB0::INSTR", modules={1: SIM928, 5: SIM921})  # no I/O
    frame.port1.voltage = 0.125           # SNDT 1,"VOLT 0.125" (SettingOutOfRange if > 20 V)
    frame.module(5, SIM921).resistance    # typed access; SNDT 5,"RVAL?" then GETN? 5,128
    frame.send(3, "*RST"); frame.ask_port(3, "*IDN?")   # raw access to any port
    frame.flush()                         # FLSH: drop stale replies of every port
    frame.poll_specs()                    # module specs, named "port1.bias_voltage", ...

``modules`` maps port numbers to module classes or to their model names
(``"SIM928"``, ``"SIM921"``), so a YAML config can name them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar

from pymeasure.instruments import Channel, Instrument

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentReplyError

__all__ = ["PORTS", "SIM900", "SIMModule", "module_type"]

#: Module slots of the mainframe.
PORTS = (1, 2, 3, 4, 5, 6, 7, 8)
#: Largest count one ``GETN?`` may ask for (the block length has three digits).
GETN_MAX = 999

M = TypeVar("M", bound="SIMModule")


class SIMModule(Channel):
    """A SIM module in one SIM900 port; subclasses add the module's properties.

    The channel id is the port number. ``write`` sends the text with
    ``SNDT``; ``read`` returns the module's next reply line.
    """

    channel_label = "port"

    identity = v.measurement(
        "*IDN?",
        """Get the module identification, e.g. ``Stanford_Research_Systems,SIM928,...``.""",
        cast=str,
        maxsplit=0,
    )

    def write(self, command: str, **kwargs: Any) -> None:
        """Send ``command`` to this module's port.

        Args:
            command: text in the module's language, e.g. ``"VOLT 1.000"``.
            **kwargs: ignored (kept for PyMeasure's signature).
        """
        self.parent.send(int(self.id), command)

    def read(self, **kwargs: Any) -> str:
        """Return the module's next reply line, without its terminator.

        Args:
            **kwargs: ignored (kept for PyMeasure's signature).

        Returns:
            The reply text.
        """
        return str(self.parent.receive(int(self.id)))

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Query the module through :meth:`SIM900.ask_port` (stale bytes of this port dropped).

        Args:
            command: the query in the module's language, e.g. ``"VOLT?"``.
            query_delay: unused (the reply is polled for); kept for PyMeasure.

        Returns:
            The reply line.
        """
        return str(self.parent.ask_port(int(self.id), command))

    def clear(self) -> None:
        """Clear the module's status registers (``*CLS``)."""
        self.write("*CLS")

    def reset(self) -> None:
        """Reset the module to its defaults (``*RST``)."""
        self.write("*RST")

    def poll_specs(self) -> list[PollSpec]:
        """Describe the module's readable quantities (none for a bare module).

        Returns:
            The poll specs, names without port prefix.
        """
        return []

    def control_specs(self) -> list[ControlSpec]:
        """Describe the module's settings (none for a bare module).

        Returns:
            The control specs, names without port prefix.
        """
        return []

    def action_specs(self) -> list[ActionSpec]:
        """Describe the module's actions (none for a bare module).

        Returns:
            The action specs, names without port prefix.
        """
        return []

    def _control(self, name: str, unit: str) -> ControlSpec:
        """A control spec for validated property ``name`` of this module."""

        def set_value(value: Any) -> None:
            setattr(self, name, v.validate_setting(self, name, value))

        return ControlSpec(
            name=name,
            unit=unit,
            set=set_value,
            validate=lambda value: v.validate_setting(self, name, value),
            get=lambda: getattr(self, name),
            allowed=v.allowed_text(self, name),
        )


def module_type(kind: type[SIMModule] | str) -> type[SIMModule]:
    """Resolve a module class given as a class or as its model name.

    Args:
        kind: a :class:`SIMModule` subclass, or ``"SIM928"`` / ``"SIM921"``
            (case-insensitive), or ``"SIM"`` for a bare module.

    Returns:
        The class.

    Raises:
        SettingOutOfRange: unknown model name.
    """
    if isinstance(kind, type):
        return kind
    # Imported here: the module drivers import this file for SIMModule.
    from drivers.srs.sim921 import SIM921
    from drivers.srs.sim928 import SIM928

    known: dict[str, type[SIMModule]] = {"SIM928": SIM928, "SIM921": SIM921, "SIM": SIMModule}
    name = v.require_in_set(kind.upper(), known, instrument="SIM900", command="module type")
    return known[name]


class SIM900(Instrument):
    """The SRS SIM900 mainframe and the modules in its ports.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        modules: port number -> module class (or model name); each becomes
            ``self.port<n>`` and ``self.modules[n]``.
        reply_timeout_s: how long :meth:`receive` waits for a module's reply.
        **kwargs: passed to the VISA adapter (e.g. ``visa_library="@py"``).
    """

    #: Bytes requested per ``GETN?``; longer than any reply of SIM928/SIM921.
    getn_count = 128
    #: Pause between two ``GETN?`` that found the port queue empty.
    poll_interval_s = 0.002

    def __init__(
        self,
        adapter: Any,
        name: str = "SIM900",
        modules: Mapping[int, type[SIMModule] | str] | None = None,
        reply_timeout_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("read_termination", "\r\n")
        kwargs.setdefault("write_termination", "\r\n")
        kwargs.setdefault("asrl", {"baud_rate": 9600})
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.reply_timeout_s = reply_timeout_s
        self._pending: dict[int, bytes] = {}
        self._out_of_step: set[int] = set()  # ports whose queues may hold a stale reply
        for port, kind in (modules or {}).items():
            self.add_module(port, kind)

    identity = v.measurement(
        "*IDN?",
        """Get the mainframe identification, e.g. ``Stanford_Research_Systems,SIM900,...``.""",
        cast=str,
        maxsplit=0,
    )

    def identify(self) -> str:
        """The mainframe's identity (``*IDN?``): the daemon's connect check."""
        return str(self.identity)

    # ---- modules ---------------------------------------------------------------------------

    def _check_port(self, port: int) -> int:
        return int(v.require_in_set(port, PORTS, instrument=self.name, command="port"))

    def add_module(self, port: int, kind: type[SIMModule] | str = SIMModule) -> SIMModule:
        """Declare the module in ``port`` (no I/O).

        Args:
            port: 1..8.
            kind: module class or model name (see :func:`module_type`).

        Returns:
            The module object, also reachable as ``self.port<n>``.
        """
        port = self._check_port(port)
        module = self.add_child(module_type(kind), port, collection="modules", prefix="port")
        return module

    def module(self, port: int, kind: type[M] = SIMModule) -> M:
        """Return the module declared in ``port``, checked to be a ``kind``.

        Args:
            port: 1..8.
            kind: the expected class, for typed access (``frame.module(1, SIM928)``).

        Returns:
            The module.

        Raises:
            SettingOutOfRange: no module was declared in that port.
            TypeError: the module there is not a ``kind``.
        """
        modules: dict[int, SIMModule] = getattr(self, "modules", {})
        v.require_in_set(port, list(modules), instrument=self.name, command="port")
        module = modules[port]
        if not isinstance(module, kind):
            raise TypeError(f"{self.name} port {port} holds a {type(module).__name__}")
        return module

    # ---- port traffic ------------------------------------------------------------------------

    def send(self, port: int, text: str) -> None:
        """Send one line to the module in ``port`` (``SNDT p,"text"``).

        A port left out of step (a reply that timed out or did not parse) is
        first brought back in step: its bytes here are dropped and ``FLSH p``
        empties its queues in the mainframe, before anything new is sent to
        it (so no command of ours is in transit when they are emptied). Other
        ports are not touched.

        Args:
            port: 1..8.
            text: the module command; double quotes are escaped by doubling.
        """
        port = self._check_port(port)
        if port in self._out_of_step:
            self.flush(port)
        quoted = text.replace('"', '""')
        self.write(f'SNDT {port},"{quoted}"')

    def receive(self, port: int, timeout_s: float | None = None) -> str:
        """Return the next complete reply line of the module in ``port``.

        Polls ``GETN?`` until a line feed has arrived; bytes after it are
        kept for the next call.

        Args:
            port: 1..8.
            timeout_s: give up after this long; default ``reply_timeout_s``.

        Returns:
            The line without CR / LF.

        Raises:
            InstrumentReplyError: the module did not answer in time (the
                mainframe did: the link is fine); the port is marked out of
                step, so its next query first drops what arrives late.
            InstrumentConnectionError: the mainframe itself did not answer.
        """
        port = self._check_port(port)
        limit = self.reply_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        buffer = self._pending.pop(port, b"")
        while b"\n" not in buffer:
            chunk = self.read_port(port, self.getn_count)
            buffer += chunk
            if chunk:
                continue
            if time.monotonic() > deadline:
                self._pending[port] = buffer
                self._out_of_step.add(port)
                raise InstrumentReplyError(
                    instrument=f"{self.name} port {port}",
                    command=f"GETN? {port}",
                    reply=buffer,
                    why=f"no complete reply from the module within {limit:g} s",
                )
            time.sleep(self.poll_interval_s)
        line, _, rest = buffer.partition(b"\n")
        if rest:
            self._pending[port] = rest
        return line.rstrip(b"\r").decode("ascii", errors="replace")

    def ask_port(self, port: int, text: str) -> str:
        """Send a query to the module in ``port`` and return its reply line.

        Bytes left over from an earlier answer (a module that sent more lines
        than asked for) put the port out of step: they and the port's queues
        in the mainframe are dropped before the query is sent (see :meth:`send`).

        Args:
            port: 1..8.
            text: the query, e.g. ``"*IDN?"``.

        Returns:
            The reply.
        """
        port = self._check_port(port)
        if self._pending.get(port):
            self._out_of_step.add(port)
        self.send(port, text)
        return self.receive(port)

    def read_port(self, port: int, count: int) -> bytes:
        """Fetch up to ``count`` bytes from the output queue of ``port`` (``GETN?``).

        Args:
            port: 1..8.
            count: 1..999.

        Returns:
            The bytes (empty when the module has sent nothing).
        """
        port = self._check_port(port)
        count = v.require_in_range(
            count, 1, GETN_MAX, instrument=self.name, command="GETN? count", integer=True
        )
        self.write(f"GETN? {port},{count}")
        try:
            return self._read_block()
        except InstrumentReplyError:
            self._out_of_step.add(port)  # part of this port's answer may be lost or still coming
            raise

    def _read_block(self) -> bytes:
        """Read one ``#<d><len><data>`` block and the mainframe's terminator after it."""
        start = self.read_bytes(1)
        digits = self.read_bytes(1)
        if start != b"#" or not digits.isdigit() or digits == b"0":
            raise InstrumentReplyError(
                instrument=self.name,
                command="GETN?",
                reply=start + digits,
                why="expected a definite-length block '#<d><length>'",
            )
        size_text = self.read_bytes(int(digits))
        if not size_text.isdigit():
            raise InstrumentReplyError(
                instrument=self.name,
                command="GETN?",
                reply=start + digits + size_text,
                why="block length is not a number",
            )
        size = int(size_text)
        data = self.read_bytes(size) if size else b""
        if len(data) != size:
            raise InstrumentReplyError(
                instrument=self.name,
                command="GETN?",
                reply=data,
                why=f"block announced {size} bytes",
            )
        # The mainframe ends every response with its terminator (CR LF on RS-232, LF on GPIB),
        # also after a block whose data ends in the module's own CR LF.
        end = self.read_bytes(1)
        if end == b"\r":
            end += self.read_bytes(1)
        if end not in (b"\n", b"\r\n"):
            raise InstrumentReplyError(
                instrument=self.name,
                command="GETN?",
                reply=data + end,
                why=f"block of {size} bytes not followed by the line terminator",
            )
        return data

    def flush(self, port: int | None = None) -> None:
        """Discard what is queued for and from one port, or every port (``FLSH``).

        Args:
            port: 1..8, or None for all ports.
        """
        if port is None:
            self._pending.clear()
            self._out_of_step.clear()
            self.write("FLSH")
        else:
            port = self._check_port(port)
            self._pending.pop(port, None)
            self._out_of_step.discard(port)
            self.write(f"FLSH {port}")

    def reset_port(self, port: int) -> None:
        """Send a break (reset the interface) to the module in ``port`` (``SRST p``).

        Args:
            port: 1..8.
        """
        port = self._check_port(port)
        self._pending.pop(port, None)
        self._out_of_step.add(port)  # whatever the module had queued is stale now
        self.write(f"SRST {port}")

    # ---- daemon description -----------------------------------------------------------------

    def _modules(self) -> list[SIMModule]:
        modules: dict[int, SIMModule] = getattr(self, "modules", {})
        return [modules[port] for port in sorted(modules)]

    def poll_specs(self) -> list[PollSpec]:
        """Describe every module's readable quantities, named ``port<n>.<name>``.

        Returns:
            The poll specs.
        """
        return [
            PollSpec(
                f"port{m.id}.{s.name}", s.unit, s.read, s.period_s, s.quantity, s.kind, s.fresh
            )
            for m in self._modules()
            for s in m.poll_specs()
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe every module's settings, named ``port<n>.<name>``.

        Returns:
            The control specs.
        """
        return [
            ControlSpec(f"port{m.id}.{s.name}", s.unit, s.set, s.validate, s.get, s.allowed)
            for m in self._modules()
            for s in m.control_specs()
        ]

    def action_specs(self) -> list[ActionSpec]:
        """Describe every module's actions (``port<n>.<name>``) and ``flush``.

        Returns:
            The action specs.
        """
        specs = [
            ActionSpec(f"port{m.id}.{s.name}", s.call, s.doc, s.params)
            for m in self._modules()
            for s in m.action_specs()
        ]
        specs.append(ActionSpec("flush", self.flush, "discard every port's queued bytes"))
        return specs
