"""Simulated Lake Shore 372 AC resistance bridge on a TCP port (real unit: port 7777).

Speaks the 372's protocol: commands end with CR LF (LF alone is accepted),
arguments are separated by commas or spaces, only queries answer, and a
command the unit does not understand (unknown mnemonic, wrong argument
count, a value out of range) gets no reply at all; :attr:`error_count`
counts them. The instrument behind the protocol (scanner, sensors, heater
loops) is :class:`simulators.servers.ls372_model.Ls372Model` (inputs in
:mod:`simulators.servers.ls372_channels`) on a
:class:`simulators.physics.fridge.DilutionFridge`.

Reply formats (``c`` is ``A`` or 1-16, ``o`` an output 0-2):

=====================  ========================================================
``*IDN?``              ``LSCI,MODEL372,<serial>,<firmware>``
``KRDG? c``/``RDGK?``  ``+293.873E+00`` (``+000.000E+00`` without a curve or valid reading)
``SRDG? c``/``RDGR?``  ``+075.123E+03`` ohms; ``RDGPWR? c`` watts; ``QRDG? c`` quadrature
``RDGST? c``           ``000`` (bit sum: 1 CS OVL, 2 VCM, 4 VMIX, 8 VDIF, 16 R.OVER,
                       32 R.UNDER, 64 T.OVER, 128 T.UNDER)
``SCAN?``              ``01,1``
``INSET? c``           ``1,007,003,21,1`` (enabled, dwell, pause, curve, tempco)
``INTYPE? c``          ``0,07,1,10,0,1`` (mode, excitation, autorange, range, shunt, units)
``INNAME? c``          the name, unquoted
``TLIMIT? c``          ``+000.000E+00`` kelvin, 0 = no limit
``FILTER? c``          ``1,010,10`` (on, settle s, window %)
``FREQ? c``            ``1``
``OUTMODE? o``         ``5,A,0,0,1,001`` (mode, input, power-up, polarity, filter, delay)
``HTRSET? o``          ``+120.000E+00,2,+000.000E+00,1`` (ohms, max current, user max A, display)
``RANGE? o``           ``5``
``HTR?``               ``+012.500E+00`` percent (display current) or watts (display power)
``HTRST? o``           ``0`` ok, ``1`` open load, ``2`` short
``MOUT? o``            ``+12.50`` percent
``SETP? o``            ``+050.000E-03`` the present (ramping) setpoint
``PID? o``             ``+100.000E+00,+100.000E+00,+000.000E+00``
``RAMP? o``            ``1,+100.000E-03`` (on, K/min); ``RAMPST? o``: ``1`` while ramping
``STILL?``             ``+10.60`` percent
``CRVHDR? n``          ``<name 15>,<serial 10>,4,+040.000E+00,1``
``CRVPT? n,i``         ``+4.876543E+00,+1.000000E-02,+0.000000E+00`` (units, kelvin, curvature)
``ZONE? o,z``          ``+100.000E-03,+100.000E+00,+100.000E+00,+000.000E+00,+0.00,5,``
                       ``+100.000E-03,0,0`` (upper K, P, I, D, manual %, range, K/min, relays)
=====================  ========================================================

Faults set from the test or the lab: :meth:`LakeShore372Server.set_overrange`,
:meth:`LakeShore372Server.set_open_sensor` (both seen by the client at the
channel's next measurement: status bits 16 / 1 + 16, zero readings; an
open control input also stops its heater loop),
:meth:`LakeShore372Server.set_heater_open`; the connection faults of
:class:`~simulators.servers.base.Faults` as for every server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from simulators.physics.fridge import DilutionFridge
from simulators.physics.thermometers import CalibrationTable
from simulators.servers.base import InstrumentServer
from simulators.servers.lakeshore_common import (
    Malformed,
    arg_float,
    arg_int,
    fmt_eng,
    need,
    parse_command,
)
from simulators.servers.ls372_channels import Ls372Channel
from simulators.servers.ls372_model import Ls372Model, Ls372Output

log = logging.getLogger(__name__)

Handler = Callable[[list[str]], "str | None"]


class LakeShore372Server(InstrumentServer):
    """A Lake Shore 372 on a TCP port, measuring and heating a simulated fridge.

    Args:
        fridge: the refrigerator model (its lock becomes this server's lock).
        host: address to bind.
        port: TCP port; 0 picks a free one.
        name: name in logs and in the lab's list.
        serial: serial number in ``*IDN?``.
        firmware: firmware version in ``*IDN?``.
        **model_options: passed to :class:`~simulators.servers.ls372_model.Ls372Model`
            (``channel_stages``, ``sample_stage``, ``seed``, ...).
    """

    model = "LSCI MODEL372"

    def __init__(
        self,
        fridge: DilutionFridge,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "ls372",
        serial: str = "LSA21SIM",
        firmware: str = "1.4",
        **model_options: Any,
    ) -> None:
        super().__init__(host, port, name=name)
        self.fridge = fridge
        self.lock = fridge.lock  # one lock for everything that touches the fridge: no lock order
        self.serial = serial
        self.firmware = firmware
        self.error_count = 0
        self.state = Ls372Model(fridge, **model_options)
        self._curvature: dict[tuple[int, int], float] = {}
        self._handlers: dict[str, Handler] = {
            "*IDN?": self._idn,
            "*OPC?": lambda a: "1",
            "*CLS": lambda a: None,
            "KRDG?": self._krdg,
            "RDGK?": self._krdg,
            "SRDG?": self._srdg,
            "RDGR?": self._srdg,
            "RDGPWR?": self._rdgpwr,
            "QRDG?": self._qrdg,
            "RDGST?": self._rdgst,
            "SCAN": self._scan_set,
            "SCAN?": self._scan_get,
            "INSET": self._inset_set,
            "INSET?": self._inset_get,
            "INTYPE": self._intype_set,
            "INTYPE?": self._intype_get,
            "INNAME": self._inname_set,
            "INNAME?": lambda a: self._channel(a).setup.name,
            "TLIMIT": self._tlimit_set,
            "TLIMIT?": lambda a: fmt_eng(self._channel(a).setup.tlimit_k),
            "FILTER": self._filter_set,
            "FILTER?": self._filter_get,
            "FREQ": self._freq_set,
            "FREQ?": lambda a: str(self._channel(a).setup.frequency),
            "OUTMODE": self._outmode_set,
            "OUTMODE?": self._outmode_get,
            "HTRSET": self._htrset_set,
            "HTRSET?": self._htrset_get,
            "RANGE": self._range_set,
            "RANGE?": lambda a: str(self._output(a).loop.range),
            "HTR?": self._htr,
            "HTRST?": lambda a: "1" if self._output(a).open_load else "0",
            "MOUT": self._mout_set,
            "MOUT?": lambda a: f"{self._output(a).loop.manual_pct:+.2f}",
            "SETP": self._setp_set,
            "SETP?": self._setp_get,
            "PID": self._pid_set,
            "PID?": self._pid_get,
            "RAMP": self._ramp_set,
            "RAMP?": self._ramp_get,
            "RAMPST?": lambda a: "1" if self._output(a).loop.ramping else "0",
            "STILL": self._still_set,
            "STILL?": self._still_get,
            "CRVHDR": self._crvhdr_set,
            "CRVHDR?": self._crvhdr_get,
            "CRVPT": self._crvpt_set,
            "CRVPT?": self._crvpt_get,
            "CRVDEL": self._crvdel,
            "ZONE": self._zone_set,
            "ZONE?": self._zone_get,
        }

    # ---- faults and helpers for tests and the lab ----------------------------------------------

    def set_overrange(self, channel: int | str, on: bool) -> None:
        """Make a channel read over range (``R.OVER``) from its next measurement on."""
        with self.lock:
            self._channel([str(channel)]).overrange = bool(on)

    def set_open_sensor(self, channel: int | str, on: bool) -> None:
        """Open a channel's sensor leads (``CS OVL`` + ``R.OVER``, zero readings)."""
        with self.lock:
            self._channel([str(channel)]).open_sensor = bool(on)

    def set_heater_open(self, on: bool, output: int = 0) -> None:
        """Open the heater leads of an output: ``HTRST?`` answers 1 and no power flows."""
        with self.lock:
            self.state.outputs[output].open_load = bool(on)

    # ---- protocol ----------------------------------------------------------------------------

    def handle(self, command: str) -> str | None:
        """Answer one command; silence for set commands and anything malformed."""
        try:
            mnemonic, args = parse_command(command)
            handler = self._handlers.get(mnemonic)
            if handler is None:
                raise Malformed(f"unknown command {mnemonic}")
            self.fridge.sync()
            return handler(args)
        except Malformed as exc:
            self.error_count += 1
            log.debug("%s: ignored %r (%s)", self.name, command, exc)
            return None

    def _now(self) -> float:
        return self.fridge.time

    def _channel(self, args: list[str], index: int = 0) -> Ls372Channel:
        if len(args) <= index:
            raise Malformed("missing channel")
        text = args[index].strip().upper()
        key = "A" if text == "A" else str(arg_int(text, 1, 16))
        return self.state.channels[key]

    def _output(self, args: list[str], index: int = 0, *, allowed: range = range(3)) -> Ls372Output:
        if len(args) <= index:
            raise Malformed("missing output")
        number = arg_int(args[index], allowed.start, allowed.stop - 1)
        return self.state.outputs[number]

    def _idn(self, args: list[str]) -> str:
        need(args, 0)
        return f"LSCI,MODEL372,{self.serial},{self.firmware}"

    # readings

    def _krdg(self, args: list[str]) -> str:
        need(args, 1)
        return fmt_eng(self._channel(args).kelvin)

    def _srdg(self, args: list[str]) -> str:
        need(args, 1)
        return fmt_eng(self._channel(args).ohms)

    def _rdgpwr(self, args: list[str]) -> str:
        need(args, 1)
        return fmt_eng(self._channel(args).power_w)

    def _qrdg(self, args: list[str]) -> str:
        need(args, 1)
        self._channel(args)
        return fmt_eng(0.0)  # the quadrature of a resistive sensor stays at zero

    def _rdgst(self, args: list[str]) -> str:
        need(args, 1)
        return f"{self._channel(args).status:03d}"

    # scanner and inputs

    def _scan_set(self, args: list[str]) -> None:
        need(args, 2)
        channel = arg_int(args[0], 1, 16)
        autoscan = arg_int(args[1], 0, 1)
        self.state.select_channel(channel, bool(autoscan), self._now())

    def _scan_get(self, args: list[str]) -> str:
        need(args, 0)
        return f"{self.state.scanner.channel:02d},{int(self.state.scanner.autoscan)}"

    def _inset_set(self, args: list[str]) -> None:
        need(args, 6)
        channel = self._channel(args)
        # clients disable an input with zeros in every field ("INSET 12,0,0,0,0,0"): accept it
        enabled = arg_int(args[1], 0, 1)
        dwell = arg_int(args[2], 0, 200)
        pause = arg_int(args[3], 0, 200)
        curve = arg_int(args[4], 0, 59)
        tempco = arg_int(args[5], 0, 2)
        if enabled and (dwell < 1 or pause < 3 or tempco < 1) and channel.key != "A":
            raise Malformed("dwell 1-200 s, pause 3-200 s, tempco 1-2 for an enabled input")
        s = channel.setup
        s.enabled, s.dwell_s, s.pause_s, s.curve = bool(enabled), dwell, pause, curve
        s.tempco = tempco or s.tempco

    def _inset_get(self, args: list[str]) -> str:
        need(args, 1)
        s = self._channel(args).setup
        return f"{int(s.enabled)},{s.dwell_s:03d},{s.pause_s:03d},{s.curve:02d},{s.tempco}"

    def _intype_set(self, args: list[str]) -> None:
        need(args, 6, at_most=7)
        channel = self._channel(args)
        mode = arg_int(args[1], 0, 1)
        top = 6 if channel.key == "A" else (22 if mode == 1 else 12)
        excitation = arg_int(args[2], 1, top)
        autorange = arg_int(args[3], 0, 2)
        range_index = arg_int(args[4], 0 if channel.key == "A" else 1, 22)
        shunt = arg_int(args[5], 0, 1)
        units = arg_int(args[6], 1, 2) if len(args) == 7 else channel.setup.units
        s = channel.setup
        s.mode, s.excitation, s.autorange, s.range, s.cs_shunt, s.units = (
            mode,
            excitation,
            autorange,
            range_index,
            shunt,
            units,
        )

    def _intype_get(self, args: list[str]) -> str:
        need(args, 1)
        s = self._channel(args).setup
        return f"{s.mode},{s.excitation:02d},{s.autorange},{s.range:02d},{s.cs_shunt},{s.units}"

    def _inname_set(self, args: list[str]) -> None:
        need(args, 2)
        self._channel(args).setup.name = args[1][:15]

    def _tlimit_set(self, args: list[str]) -> None:
        need(args, 2)
        self._channel(args).setup.tlimit_k = arg_float(args[1], 0.0, 9999.0)

    def _filter_set(self, args: list[str]) -> None:
        need(args, 4)
        channel = self._channel(args)
        on = arg_int(args[1], 0, 1)
        settle = arg_int(args[2], 1, 200)
        window = arg_int(args[3], 1, 80)
        s = channel.setup
        s.filter_on, s.settle_s, s.window_pct = bool(on), settle, window
        channel.settling.tau_s = channel.tau_s()

    def _filter_get(self, args: list[str]) -> str:
        need(args, 1)
        s = self._channel(args).setup
        return f"{int(s.filter_on)},{s.settle_s:03d},{s.window_pct:02d}"

    def _freq_set(self, args: list[str]) -> None:
        need(args, 2)
        self._channel(args).setup.frequency = arg_int(args[1], 1, 5)

    # heater outputs

    def _outmode_set(self, args: list[str]) -> None:
        need(args, 7)
        output = self._output(args)
        mode = arg_int(args[1], 0, 6)
        source = args[2].upper()
        if source != "A":
            source = str(arg_int(source, 0, 16))
        powerup = arg_int(args[3], 0, 1)
        polarity = arg_int(args[4], 0, 1)
        use_filter = arg_int(args[5], 0, 1)
        delay = arg_int(args[6], 1, 255)
        if output.loop.mode != mode or output.loop.source != source:
            output.loop.reset()
        output.loop.mode, output.loop.source = mode, source
        output.powerup, output.polarity, output.use_filter, output.delay_s = (
            powerup,
            polarity,
            use_filter,
            delay,
        )

    def _outmode_get(self, args: list[str]) -> str:
        need(args, 1)
        o = self._output(args)
        return (
            f"{o.loop.mode},{o.loop.source},{o.powerup},{o.polarity},{o.use_filter},{o.delay_s:03d}"
        )

    def _htrset_set(self, args: list[str]) -> None:
        need(args, 5)
        output = self._output(args, allowed=range(2))
        output.resistance_ohm = arg_float(args[1], 1.0, 2000.0)
        output.max_current = arg_int(args[2], 0, 2)
        output.max_user_current_a = arg_float(args[3], 0.0, 0.63)
        output.display = arg_int(args[4], 1, 2)

    def _htrset_get(self, args: list[str]) -> str:
        need(args, 1)
        o = self._output(args, allowed=range(2))
        return (
            f"{fmt_eng(o.resistance_ohm)},{o.max_current},{fmt_eng(o.max_user_current_a)},"
            f"{o.display}"
        )

    def _range_set(self, args: list[str]) -> None:
        need(args, 2)
        output = self._output(args)
        top = 8 if output.number == 0 else 1
        output.loop.range = arg_int(args[1], 0, top)

    def _htr(self, args: list[str]) -> str:
        need(args, 0, at_most=1)
        if args:
            self._output(args, allowed=range(1))
        return fmt_eng(self.state.heater_display_value())

    def _mout_set(self, args: list[str]) -> None:
        need(args, 2)
        self._output(args).loop.manual_pct = arg_float(args[1], 0.0, 100.0)

    def _setp_set(self, args: list[str]) -> None:
        need(args, 2)
        output = self._output(args)
        value = arg_float(args[1], 0.0, 1e9)
        process, valid, _ = self.state.process_value(output.loop.source)
        output.loop.set_setpoint(value, process if valid else None)

    def _setp_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args).loop
        present = loop.present_setpoint if loop.present_setpoint is not None else loop.setpoint
        return fmt_eng(present)

    def _pid_set(self, args: list[str]) -> None:
        need(args, 4)
        loop = self._output(args).loop
        p = arg_float(args[1], 0.0, 1000.0)
        i = arg_float(args[2], 0.0, 10000.0)
        d = arg_float(args[3], 0.0, 2500.0)
        loop.p, loop.i, loop.d = p, i, d

    def _pid_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args).loop
        return f"{fmt_eng(loop.p)},{fmt_eng(loop.i)},{fmt_eng(loop.d)}"

    def _ramp_set(self, args: list[str]) -> None:
        need(args, 3)
        loop = self._output(args).loop
        on = arg_int(args[1], 0, 1)
        rate = arg_float(args[2], 0.0 if not on else 0.001, 100.0)
        loop.ramp_on = bool(on)
        if rate > 0:
            loop.ramp_rate_per_min = rate
        if not on:
            loop.present_setpoint = loop.setpoint

    def _ramp_get(self, args: list[str]) -> str:
        need(args, 1)
        loop = self._output(args).loop
        return f"{int(loop.ramp_on)},{fmt_eng(loop.ramp_rate_per_min)}"

    def _still_set(self, args: list[str]) -> None:
        need(args, 1)
        self.state.still_pct = arg_float(args[0], 0.0, 100.0)

    def _still_get(self, args: list[str]) -> str:
        need(args, 0)
        return f"{self.state.still_pct:+.2f}"

    # curves

    def _curve_number(self, text: str, *, writable: bool) -> int:
        return arg_int(text, 21 if writable else 1, 59)

    def _crvhdr_set(self, args: list[str]) -> None:
        need(args, 6)
        number = self._curve_number(args[0], writable=True)
        fmt = arg_int(args[3], 3, 7)
        if fmt not in (3, 4, 7):
            raise Malformed("curve format 3, 4 or 7")
        limit = arg_float(args[4], 0.0, 9999.0)
        coefficient = arg_int(args[5], 1, 2)
        table = self.state.curves.setdefault(number, CalibrationTable(points=[]))
        table.name, table.serial = args[1][:15], args[2][:10]
        table.fmt, table.limit_k, table.coefficient = fmt, limit, coefficient

    def _crvhdr_get(self, args: list[str]) -> str:
        need(args, 1)
        number = self._curve_number(args[0], writable=False)
        table = self.state.curves.get(number)
        if table is None:
            return f"{'':15},{'':10},0,{fmt_eng(0.0)},1"
        return (
            f"{table.name:<15},{table.serial:<10},{table.fmt},{fmt_eng(table.limit_k)},"
            f"{table.coefficient}"
        )

    def _crvpt_set(self, args: list[str]) -> None:
        need(args, 4, at_most=5)
        number = self._curve_number(args[0], writable=True)
        index = arg_int(args[1], 1, 200)
        units = arg_float(args[2])
        kelvin = arg_float(args[3], 0.0, 9999.0)
        table = self.state.curves.setdefault(number, CalibrationTable(points=[]))
        while len(table.points) < index:
            table.points.append((0.0, 0.0))
        table.points[index - 1] = (units, kelvin)
        self._curvature[(number, index)] = arg_float(args[4]) if len(args) == 5 else 0.0

    def _crvpt_get(self, args: list[str]) -> str:
        need(args, 2)
        number = self._curve_number(args[0], writable=False)
        index = arg_int(args[1], 1, 200)
        table = self.state.curves.get(number)
        units, kelvin = (0.0, 0.0)
        if table is not None and index <= len(table.points):
            units, kelvin = table.points[index - 1]
        curvature = self._curvature.get((number, index), 0.0)
        return f"{units:+.6E},{kelvin:+.6E},{curvature:+.6E}"

    def _crvdel(self, args: list[str]) -> None:
        need(args, 1)
        number = self._curve_number(args[0], writable=True)
        self.state.curves.pop(number, None)
        for key in [k for k in self._curvature if k[0] == number]:
            del self._curvature[key]

    def _zone_set(self, args: list[str]) -> None:
        need(args, 11)
        output = self._output(args, allowed=range(2))
        zone = output.zones[arg_int(args[1], 1, 10) - 1]
        zone.upper_k = arg_float(args[2], 0.0, 9999.0)
        zone.p = arg_float(args[3], 0.0, 1000.0)
        zone.i = arg_float(args[4], 0.0, 10000.0)
        zone.d = arg_float(args[5], 0.0, 2500.0)
        zone.manual_pct = arg_float(args[6], 0.0, 100.0)
        zone.range = arg_int(args[7], 0, 8 if output.number == 0 else 1)
        zone.rate_k_per_min = arg_float(args[8], 0.0, 100.0)
        zone.relay1 = arg_int(args[9], 0, 1)
        zone.relay2 = arg_int(args[10], 0, 1)

    def _zone_get(self, args: list[str]) -> str:
        need(args, 2)
        output = self._output(args, allowed=range(2))
        z = output.zones[arg_int(args[1], 1, 10) - 1]
        return (
            f"{fmt_eng(z.upper_k)},{fmt_eng(z.p)},{fmt_eng(z.i)},{fmt_eng(z.d)},"
            f"{z.manual_pct:+.2f},{z.range},{fmt_eng(z.rate_k_per_min)},{z.relay1},{z.relay2}"
        )
