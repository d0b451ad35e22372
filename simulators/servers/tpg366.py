"""Simulated Pfeiffer TPG 366 MaxiGauge (six gauges) on a TCP port (real unit: port 8000).

Protocol (Pfeiffer's two-step exchange):

1. the client sends a mnemonic, optionally with parameters, ended by CR LF
   (CR or LF alone are accepted): ``PR1``, ``PRX``, ``SEN,0,0,1,0,0,0``,
   ``UNI,1`` (commas or spaces between parameters);
2. the unit answers ACK ``\\x06\\r\\n``, or NAK ``\\x15\\r\\n`` for an unknown
   mnemonic or a bad parameter;
3. the client sends ENQ, the single byte ``\\x05`` (no terminator), and the
   unit answers the data line + CR LF. Further ENQs repeat the last
   mnemonic's data with fresh values.

Data lines:

=========  ===================================================================
``PRn``    ``0,+1.2345E-03`` (status, pressure in the current unit)
``PRX``    ``0,+1.2345E-03,0,+2.0000E-01,...`` (six status, pressure pairs)
``SEN``    ``2,2,2,2,2,2`` (0 cannot be switched, 1 off, 2 on); setting takes
           0 no change, 1 off, 2 on per gauge
``UNI``    ``0`` mbar, ``1`` Torr, ``2`` Pa
``ERR``    ``0000`` (``0001`` after a syntax error; reading clears it)
``TID``    ``PKR,PKR,CMR,CMR,CMR,PKR`` gauge types
``AYT``    ``TPG366,PTG28290,<serial>,010100,010200``
=========  ===================================================================

Status: 0 ok, 1 under range, 2 over range, 3 sensor error, 4 sensor off,
5 no sensor, 6 identification error. Under/over range report the range
limit; statuses 3-6 report ``+0.0000E+00``.

Continuous output: with ``streaming=True`` the unit, from power-up, sends
the PRX data line every ``stream_period_s`` wall seconds to every client
until it receives ENQ (as after power-up on the real unit).

Faults: :meth:`TPG366Server.set_gauge_fault` (force any status 1-6 on one
gauge: under range, over range, sensor error, sensor off, no sensor,
identification error), :meth:`TPG366Server.set_overrange`,
:meth:`TPG366Server.set_sensor_off`, plus the connection faults every server has.

``received`` keeps the last :data:`RECEIVED_KEPT` commands (for tests and logs);
a unit polled for weeks must not grow without bound.
"""

from __future__ import annotations

import logging
import re
import threading

from simulators.physics.gauges import FridgePressures
from simulators.servers.base import InstrumentServer

log = logging.getLogger(__name__)

ACK = b"\x06\r\n"
NAK = b"\x15\r\n"
ENQ = b"\x05"
UNIT_FACTORS = (1.0, 0.750062, 100.0)  # from mbar to mbar, Torr, Pa
GAUGE_TYPES = ("PKR", "PKR", "CMR", "CMR", "CMR", "PKR")
_RANGES_MBAR = {"PKR": (5e-9, 1000.0), "CMR": (1e-4, 1100.0)}
#: How many of the newest received commands ``received`` keeps.
_MNEMONIC = re.compile(r"^([A-Za-z][A-Za-z0-9]{2})(.*)$")


class TPG366Server(InstrumentServer):
    """A MaxiGauge on a TCP port, reading the fridge's pressures.

    Args:
        pressures: the pressure model.
        host: address to bind.
        port: TCP port; 0 picks a free one.
        name: name in logs and in the lab's list.
        streaming: send continuous PRX lines from power-up until ENQ.
        stream_period_s: wall seconds between streamed lines.
        serial: serial number in ``AYT``.
    """

    model = "Pfeiffer TPG 366"

    def __init__(
        self,
        pressures: FridgePressures,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "tpg366",
        streaming: bool = False,
        stream_period_s: float = 1.0,
        serial: str = "44990000",
    ) -> None:
        super().__init__(host, port, name=name)
        self.pressures = pressures
        self.lock = pressures.fridge.lock
        self.serial = serial
        self.unit = 0
        self.sensor_on = [True] * 6
        self.forced_status: list[int | None] = [None] * 6
        self.streaming = streaming
        self.stream_period_s = stream_period_s
        self.error_count = 0
        self._error_flags = "0000"
        self._pending: tuple[str, list[str]] | None = None
        self._last: tuple[str, list[str]] | None = None
        self._stop_stream = threading.Event()

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TPG366Server:
        """Start listening and, when configured, streaming."""
        super().start()
        thread = threading.Thread(target=self._stream_loop, name=f"{self.name}-stream", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop streaming and listening."""
        self._stop_stream.set()
        super().stop()

    def _stream_loop(self) -> None:
        while not self._stop_stream.wait(self.stream_period_s):
            if not self.streaming or not self.client_count:
                continue
            with self.lock:
                line = self._data("PRX", [])
            if line is not None:
                self.broadcast(line.encode("ascii") + self.write_termination)

    # ---- faults ----------------------------------------------------------------------------------

    def set_gauge_fault(self, gauge: int, status: int | None) -> None:
        """Force one gauge's status (1-6), or ``None`` to read normally again."""
        if not 1 <= gauge <= 6 or (status is not None and not 1 <= status <= 6):
            raise ValueError(
                f"TPG366 gauge {gauge!r} status {status!r}; allowed gauges 1-6, status 1-6 or None"
            )
        with self.lock:
            self.forced_status[gauge - 1] = status

    def set_overrange(self, gauge: int, on: bool) -> None:
        """Make a gauge read over range (status 2)."""
        self.set_gauge_fault(gauge, 2 if on else None)

    def set_sensor_off(self, gauge: int, off: bool) -> None:
        """Switch a gauge's sensor off (status 4), as ``SEN`` would."""
        with self.lock:
            self.sensor_on[gauge - 1] = not off

    # ---- protocol --------------------------------------------------------------------------------

    def split_commands(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Split on CR, LF or CR LF; an ENQ byte is a command of its own wherever it appears."""
        commands: list[bytes] = []
        current = bytearray()
        for byte in buffer:
            if byte == ENQ[0]:
                # a half-typed mnemonic before ENQ is dropped: ENQ always means "send data"
                current.clear()
                commands.append(ENQ)
            elif byte in (0x0A, 0x0D):
                if current:
                    commands.append(bytes(current))
                current.clear()
            else:
                current.append(byte)
        return commands, bytes(current)

    def handle(self, command: str) -> str | bytes | None:
        """ACK/NAK a mnemonic; answer ENQ with the data of the last acknowledged one."""
        if command == ENQ.decode():
            was_streaming = self.streaming
            self.streaming = False
            request = self._pending or self._last
            self._pending = None
            if request is None:
                if not was_streaming:
                    log.debug("%s: ENQ without a request", self.name)
                return None
            self._last = request
            return self._data(*request)
        match = _MNEMONIC.match(command.strip())
        if match is None:
            return self._nak(command)
        mnemonic = match.group(1).upper()
        args = [a for a in re.split(r"[,\s]+", match.group(2).strip(" ,")) if a]
        if not self._apply(mnemonic, args):
            return self._nak(command)
        self._pending = (mnemonic, args)
        return ACK

    def _nak(self, command: str) -> bytes:
        self.error_count += 1
        self._error_flags = "0001"
        self._pending = None
        log.debug("%s: NAK for %r", self.name, command)
        return NAK

    def _apply(self, mnemonic: str, args: list[str]) -> bool:
        """Check a mnemonic and carry out its settings; False means NAK."""
        if mnemonic in ("PR1", "PR2", "PR3", "PR4", "PR5", "PR6", "PRX", "TID", "AYT", "ERR"):
            return not args
        if mnemonic == "UNI":
            if not args:
                return True
            if len(args) != 1 or args[0] not in ("0", "1", "2"):
                return False
            self.unit = int(args[0])
            return True
        if mnemonic == "SEN":
            if not args:
                return True
            if len(args) != 6 or any(a not in ("0", "1", "2") for a in args):
                return False
            for index, action in enumerate(args):
                if action != "0":
                    self.sensor_on[index] = action == "2"
            return True
        return False

    def _data(self, mnemonic: str, args: list[str]) -> str | None:
        """The data line for an acknowledged mnemonic."""
        if mnemonic.startswith("PR"):
            readings = self._readings()
            if mnemonic == "PRX":
                return ",".join(f"{s},{p:+.4E}" for s, p in readings)
            status, pressure = readings[int(mnemonic[2]) - 1]
            return f"{status},{pressure:+.4E}"
        if mnemonic == "UNI":
            return str(self.unit)
        if mnemonic == "SEN":
            return ",".join("2" if on else "1" for on in self.sensor_on)
        if mnemonic == "ERR":
            flags, self._error_flags = self._error_flags, "0000"
            return flags
        if mnemonic == "TID":
            return ",".join(GAUGE_TYPES)
        if mnemonic == "AYT":
            return f"TPG366,PTG28290,{self.serial},010100,010200"
        return None

    def _readings(self) -> list[tuple[int, float]]:
        pressures = self.pressures.pressures_mbar()
        factor = UNIT_FACTORS[self.unit]
        out = []
        for index, p in enumerate(pressures):
            low, high = _RANGES_MBAR[GAUGE_TYPES[index]]
            status = self.forced_status[index]
            if not self.sensor_on[index]:
                status = 4
            if status is None:
                status = 1 if p < low else 2 if p > high else 0
            if status == 1:
                value = low
            elif status == 2:
                value = high
            elif status == 0:
                value = p
            else:
                value = 0.0
            out.append((status, value * factor))
        return out
