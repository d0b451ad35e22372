"""Driver for the Pfeiffer TPG 366 MaxiGauge (six gauges), with its ACK / ENQ protocol.

Connect over Ethernet (``TCPIP::<host>::8000::SOCKET``) or serial. The
constructor sends nothing; call :meth:`TPG366.stop_stream` once after
connecting (the daemon does), because the unit may be streaming readings
since power-up.

Protocol: every exchange is two steps. The host sends a mnemonic (with
arguments) and CR LF; the unit answers ACK (``0x06``) CR LF, or NAK
(``0x15``) CR LF when it refuses (raised as
:class:`~drivers.errors.InstrumentReplyError`). To get data the host then
sends ENQ (``0x05``, one byte, no terminator) and reads the data line. This
driver's :meth:`TPG366.write` does the first step, :meth:`TPG366.ask` both,
so PyMeasure's declarative properties work unchanged.

Interface:

* ``tpg.gauges`` / ``tpg.gauge_1`` … ``tpg.gauge_6`` — :class:`Gauge`:
  ``reading`` (:class:`GaugeReading`: status and pressure), ``pressure``
  (float in the present unit; NaN unless the status is OK), ``status``
  (:class:`GaugeStatus`), ``sensor_on`` (bool; settable);
* ``tpg.readings`` — all six at once (``PRX``); ``tpg.snapshot()`` — the same
  as a :class:`PressureSnapshot` (with the time it was taken), kept for
  :meth:`TPG366.gauge_reading`;
* ``tpg.gauge_reading(n)`` — gauge ``n`` as a :class:`~drivers.readings.Reading`
  (the number the unit sent, its status as quality flags), served from the
  newest ``PRX`` exchange: the six gauges of one poll cycle cost one exchange;
* ``tpg.unit`` — :class:`PressureUnit` (``UNI``); ``tpg.sensor_states`` —
  :class:`SensorState` of all six (``SEN``); ``tpg.gauge_types`` (``TID``);
  ``tpg.identity`` (``AYT``);
* ``stop_stream()``;
* the daemon's view: poll specs ``gauge1`` … ``gauge6`` (pressure in the unit
  read at :meth:`TPG366.poll_specs` time, through :meth:`TPG366.gauge_reading`),
  control spec ``unit``, actions ``sensor_on(gauge)``, ``sensor_off(gauge)``,
  ``stop_stream()``.

Status codes and their flags are in :mod:`drivers.pfeiffer.codes`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyvisa
from pymeasure.instruments import Channel, Instrument

from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.pfeiffer.codes import (
    UNIT_TEXT,
    GaugeReading,
    GaugeStatus,
    PressureUnit,
    SensorState,
    parse_reading,
    parse_readings,
    parse_sensor_states,
    parse_unit,
)
from drivers.readings import Reading
from drivers.validators import (
    allowed_text,
    control,
    in_set,
    instrument_name,
    measurement,
    require_in_range,
    validate_setting,
)

__all__ = [
    "ACK",
    "ENQ",
    "GAUGES",
    "NAK",
    "TPG366",
    "Gauge",
    "GaugeReading",
    "GaugeStatus",
    "PressureSnapshot",
    "PressureUnit",
    "SensorState",
]

ACK = "\x06"
NAK = "\x15"
ENQ = b"\x05"
GAUGES = tuple(range(1, 7))


@dataclass(frozen=True)
class PressureSnapshot:
    """The six gauges as one ``PRX`` exchange returned them.

    Attributes:
        readings: gauge 1 first.
        t_ns: when the unit was asked (ns since the epoch, UTC).
        monotonic_s: the same moment on the monotonic clock (for its age).
    """

    readings: tuple[GaugeReading, ...]
    t_ns: int
    monotonic_s: float


class Gauge(Channel):
    """One of the six gauge channels."""

    channel_label = "gauge"

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Query through the instrument's ACK / ENQ exchange.

        Args:
            command: mnemonic, ``{ch}`` replaced by the gauge number.
            query_delay: unused; kept for PyMeasure.

        Returns:
            The data line.
        """
        return str(self.parent.ask(self.insert_id(command)))

    reading = measurement(
        "PR{ch}",
        """Get the gauge reading (GaugeReading: status and pressure).""",
        cast=str,
        get_process=parse_reading,
        get_process_list=parse_reading,
    )
    status = measurement(
        "PR{ch}",
        """Get the gauge status (GaugeStatus).""",
        cast=str,
        get_process=lambda r: parse_reading(r).status,
        get_process_list=lambda r: parse_reading(r).status,
    )
    pressure = measurement(
        "PR{ch}",
        """Get the pressure in the present unit (float; NaN unless the status is OK).""",
        cast=str,
        get_process=lambda r: parse_reading(r).value,
        get_process_list=lambda r: parse_reading(r).value,
    )

    @property
    def sensor_on(self) -> bool:
        """Control whether the sensor is switched on (bool); ``SEN``."""
        states: list[SensorState] = self.parent.sensor_states
        return states[int(self.id) - 1] == SensorState.ON

    @sensor_on.setter
    def sensor_on(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise SettingOutOfRange(
                instrument=instrument_name(self),
                command="sensor_on",
                value=on,
                allowed="True, False",
            )
        codes = ["0"] * 6  # 0 leaves a sensor as it is
        codes[int(self.id) - 1] = "2" if on else "1"
        self.parent.write("SEN," + ",".join(codes))


class TPG366(Instrument):
    """Pfeiffer TPG 366 MaxiGauge: six gauges, ACK / ENQ protocol.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        **kwargs: adapter settings (``timeout`` in ms, ...).
    """

    gauges = Instrument.MultiChannelCreator(Gauge, list(GAUGES), prefix="gauge_")

    readings = measurement(
        "PRX",
        """Get all six readings (list of GaugeReading).""",
        cast=str,
        get_process=parse_readings,
        get_process_list=parse_readings,
    )
    unit = control(
        "UNI",
        "UNI,%d",
        """Control the pressure unit (PressureUnit: mbar, Torr, Pa).""",
        validator=in_set,
        values=list(PressureUnit),
        cast=str,
        get_process=lambda r: parse_unit(r),
    )
    sensor_states = measurement(
        "SEN",
        """Get the on/off state of all six sensors (list of SensorState).""",
        cast=str,
        get_process=parse_sensor_states,
        get_process_list=parse_sensor_states,
    )
    gauge_types = measurement(
        "TID",
        """Get the type of each gauge, e.g. ['TPR', 'IKR', 'noSen', ...] (list of str).""",
        cast=str,
        get_process=lambda r: [str(r).strip()],
        get_process_list=lambda r: [str(f).strip() for f in r],
    )
    identity = measurement(
        "AYT",
        """Get the identity: type, model, part number, serial, firmware (list of str).""",
        cast=str,
        get_process=lambda r: [str(r).strip()],
        get_process_list=lambda r: [str(f).strip() for f in r],
    )

    def identify(self) -> str:
        """The unit's identity (``AYT``): the daemon's connect check."""
        return ",".join(self.identity)

    def __init__(
        self,
        adapter: Any,
        name: str = "Pfeiffer TPG 366",
        prx_max_age_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("read_termination", "\r\n")
        kwargs.setdefault("write_termination", "\r\n")
        kwargs.setdefault("timeout", 2000)
        kwargs.setdefault("asrl", {"baud_rate": 9600, "data_bits": 8, "parity": 0, "stop_bits": 10})
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.prx_max_age_s = prx_max_age_s
        self._snapshot: PressureSnapshot | None = None
        self._served: set[int] = set()  # gauges already handed out from _snapshot

    # ---- the ACK / ENQ exchange -----------------------------------------------------------

    def write(self, command: str, **kwargs: Any) -> None:
        """Send a mnemonic (CR LF appended) and check the unit acknowledges it.

        Args:
            command: mnemonic with arguments, e.g. ``"PR1"`` or ``"UNI,0"``.
            **kwargs: passed to the adapter.

        Raises:
            InstrumentReplyError: NAK, or anything but ACK.
        """
        super().write(command, **kwargs)
        answer = self.read()
        if answer == ACK:
            return
        why = "NAK: the unit refused the command" if answer == NAK else "expected ACK (0x06)"
        raise InstrumentReplyError(
            instrument=instrument_name(self), command=command, reply=answer, why=why
        )

    def ask(self, command: str, query_delay: float | None = None) -> str:
        """Send a mnemonic, check the ACK, send ENQ and return the data line.

        Args:
            command: mnemonic, e.g. ``"PR1"``.
            query_delay: unused (the ACK paces the exchange); kept for PyMeasure.

        Returns:
            The data line without CR LF.
        """
        self.write(command)
        self.write_bytes(ENQ)
        return str(self.read())

    def stop_stream(self, quiet_ms: int = 200, max_lines: int = 1000) -> int:
        """Stop a continuous output and discard whatever the unit has already sent.

        Sends ENQ, then reads and discards lines until none arrives for
        ``quiet_ms``. Call after connecting, not in the constructor.

        Args:
            quiet_ms: read timeout that ends the draining, in ms.
            max_lines: safety bound on the number of lines discarded.

        Returns:
            The number of lines discarded.
        """
        self.write_bytes(ENQ)
        connection: Any = getattr(self.adapter, "connection", None)
        saved = getattr(connection, "timeout", None)
        if saved is not None:
            connection.timeout = quiet_ms
        discarded = 0
        try:
            while discarded < max_lines:
                self.read()
                discarded += 1
        except (pyvisa.errors.VisaIOError, TimeoutError):
            pass  # quiet: nothing left in the buffer
        finally:
            if saved is not None:
                connection.timeout = saved
        return discarded

    # ---- convenience ----------------------------------------------------------------------

    def _check_gauge(self, gauge: int) -> int:
        return int(
            require_in_range(
                gauge, 1, 6, instrument=instrument_name(self), command="gauge", integer=True
            )
        )

    def set_sensor(self, gauge: int, on: bool) -> None:
        """Switch one gauge's sensor on or off (``SEN``).

        Args:
            gauge: 1–6.
            on: switch on (True) or off (False).
        """
        self.gauges[self._check_gauge(gauge)].sensor_on = bool(on)

    # ---- one PRX exchange for all six gauges -------------------------------------------------

    def snapshot(self) -> PressureSnapshot:
        """Ask all six gauges in one ``PRX`` exchange and keep the answer.

        Returns:
            The snapshot, also used by :meth:`gauge_reading` from now on.
        """
        t_ns = time.time_ns()
        readings = tuple(self.readings)
        self._snapshot = PressureSnapshot(readings, t_ns, time.monotonic())
        self._served = set()
        return self._snapshot

    def gauge_reading(self, gauge: int) -> Reading:
        """One gauge as a :class:`~drivers.readings.Reading`, from the newest ``PRX`` exchange.

        A new exchange is made when this gauge was already handed out from
        the kept one (the next poll cycle has begun) or the kept one is older
        than ``prx_max_age_s``; so the six gauges polled in one cycle cost one
        exchange, and no value is ever handed out twice.

        Args:
            gauge: 1-6.

        Returns:
            The number the unit sent, with its status as quality flags (the
            status in the unit's words in the note) and the time of the exchange.
        """
        n = self._check_gauge(gauge)
        snap = self._snapshot
        if (snap is None or n in self._served
                or time.monotonic() - snap.monotonic_s > self.prx_max_age_s):
            snap = self.snapshot()
        self._served.add(n)
        return snap.readings[n - 1].reading(snap.t_ns)

    # ---- daemon view ----------------------------------------------------------------------

    def poll_specs(self) -> list[PollSpec]:
        """What the daemon can poll; asks ``UNI`` once to label the pressures.

        Returns:
            ``gauge1`` … ``gauge6``: the pressures of one shared ``PRX``
            exchange per cycle, flagged with each gauge's status.
        """
        unit = UNIT_TEXT[int(self.unit)]
        return [
            PollSpec(
                f"gauge{n}", unit, partial(self.gauge_reading, n), 2.0, "pressure"
            )
            for n in GAUGES
        ]

    def control_specs(self) -> list[ControlSpec]:
        """What the daemon can set.

        Returns:
            ``unit`` (PressureUnit).
        """
        return [
            ControlSpec(
                "unit",
                "",
                partial(setattr, self, "unit"),
                partial(validate_setting, self, "unit"),
                partial(getattr, self, "unit"),
                allowed_text(self, "unit"),
            )
        ]

    def action_specs(self) -> list[ActionSpec]:
        """What the daemon can call.

        Returns:
            ``sensor_on(gauge)``, ``sensor_off(gauge)``, ``stop_stream()``.
        """
        return [
            ActionSpec(
                "sensor_on",
                lambda gauge: self.set_sensor(gauge, True),
                "Switch a gauge's sensor on (1-6).",
                ("gauge",),
            ),
            ActionSpec(
                "sensor_off",
                lambda gauge: self.set_sensor(gauge, False),
                "Switch a gauge's sensor off (1-6).",
                ("gauge",),
            ),
            ActionSpec(
                "stop_stream",
                self.stop_stream,
                "Stop continuous output and discard buffered lines.",
            ),
        ]

