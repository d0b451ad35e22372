"""The simulated Lake Shore 372's output commands: modes, heater set-up, ranges, loops, zones.

:class:`OutputCommands` is a mix-in of
:class:`~simulators.servers.lakeshore372.LakeShore372Server`; it needs the
server's ``state`` (:class:`~simulators.servers.ls372_model.Ls372Model`) and
answers (``o`` is an output: 0 sample heater, 1 warm-up heater, 2 still):

=====================  ========================================================
``OUTMODE? o``         ``5,A,0,0,1,001`` (mode, input, power-up, polarity, filter, delay)
``HTRSET? 0``          ``+120.000,0,+000.000,1`` (ohms, max current, user max A, display)
``HTRSET? 1``          ``2,2,+000.000,1`` (25/50 ohm code, max current code, user A, display)
``RANGE? o``           ``5``
``HTR?``               ``+12.500`` percent of range (display current) or W (power)
``AOUT? o``            ``+012.500E+00`` percent, outputs 1 and 2
``HTRST? o``           ``0`` ok, ``1`` open load, ``2`` short (outputs 0 and 1)
``MOUT? o``            ``+12.50`` percent
``SETP? o``            ``+050.000E-03`` the present (ramping) setpoint
``PID? o``             ``+100.000E+00,+100.000E+00,+000.000E+00``
``RAMP? o``            ``1,+100.000E-03`` (on, K/min); ``RAMPST? o``: ``1`` while ramping
``STILL?``             ``+10.60`` percent
``ZONE? o,z``          ``+100.000E-03,+100.000E+00,+100.000E+00,+000.000E+00,+0.00,5,``
                       ``+100.000E-03,0,0`` (upper K, P, I, D, manual %, range, K/min, relays)
=====================  ========================================================
"""

from __future__ import annotations

from simulators.servers.lakeshore_common import (
    Handler,
    Malformed,
    arg_float,
    arg_int,
    fmt_eng,
    need,
)
from simulators.servers.ls372_model import Ls372Model, Ls372Output


class OutputCommands:
    """Mix-in: the 372's output commands on ``self.state``."""

    state: Ls372Model

    def output_handlers(self) -> dict[str, Handler]:
        """The output mnemonics and their handlers."""
        return {
            "OUTMODE": self._outmode_set,
            "OUTMODE?": self._outmode_get,
            "HTRSET": self._htrset_set,
            "HTRSET?": self._htrset_get,
            "RANGE": self._range_set,
            "RANGE?": lambda a: str(self._output(a).loop.range),
            "HTR?": self._htr,
            "AOUT?": self._aout,
            "HTRST?": self._htrst,
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
            "ZONE": self._zone_set,
            "ZONE?": self._zone_get,
        }

    def _output(self, args: list[str], index: int = 0, *, allowed: range = range(3)) -> Ls372Output:
        if len(args) <= index:
            raise Malformed("missing output")
        number = arg_int(args[index], allowed.start, allowed.stop - 1)
        return self.state.outputs[number]

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
        if output.number == 0:
            resistance = arg_float(args[1], 1.0, 2000.0)  # the sample heater's load in ohms
        else:
            resistance = float(arg_int(args[1], 1, 2))  # warm-up heater: 1 = 25 ohm, 2 = 50 ohm
        max_current = arg_int(args[2], 0, 2)
        user = arg_float(args[3], 0.0, 0.63)
        display = arg_int(args[4], 1, 2)
        output.resistance_ohm = resistance if output.number == 0 else 25.0 * resistance
        output.max_current, output.max_user_current_a, output.display = max_current, user, display

    def _htrset_get(self, args: list[str]) -> str:
        need(args, 1)
        o = self._output(args, allowed=range(2))
        user = f"{o.max_user_current_a:+08.3f}"
        if o.number == 0:
            return f"{o.resistance_ohm:+08.3f},{o.max_current},{user},{o.display}"
        code = 1 if o.resistance_ohm < 50.0 else 2
        return f"{code},{o.max_current},{user},{o.display}"

    def _range_set(self, args: list[str]) -> None:
        need(args, 2)
        output = self._output(args)
        top = 8 if output.number == 0 else 1
        output.loop.range = arg_int(args[1], 0, top)

    def _htr(self, args: list[str]) -> str:
        need(args, 0, at_most=1)
        if args:
            self._output(args, allowed=range(1))
        # The manual's +nn.nnn: percent of range, or watts in power display.
        return f"{self.state.heater_display_value():+07.3f}"

    def _aout(self, args: list[str]) -> str:
        need(args, 1)
        output = self._output(args, allowed=range(1, 3))
        return fmt_eng(output.loop.output_pct)

    def _htrst(self, args: list[str]) -> str:
        need(args, 1)
        output = self._output(args, allowed=range(2))
        return "2" if output.short else "1" if output.open_load else "0"

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

    def _zone_set(self, args: list[str]) -> None:
        need(args, 11)
        output = self._output(args, allowed=range(2))
        zone = output.zones[arg_int(args[1], 1, 10) - 1]
        values = (
            arg_float(args[2], 0.0, 9999.0),
            arg_float(args[3], 0.0, 1000.0),
            arg_float(args[4], 0.0, 10000.0),
            arg_float(args[5], 0.0, 2500.0),
            arg_float(args[6], 0.0, 100.0),
            arg_int(args[7], 0, 8 if output.number == 0 else 1),
            arg_float(args[8], 0.0, 100.0),
            arg_int(args[9], 0, 1),
            arg_int(args[10], 0, 1),
        )
        (zone.upper_k, zone.p, zone.i, zone.d, zone.manual_pct, zone.range,
         zone.rate_k_per_min, zone.relay1, zone.relay2) = values

    def _zone_get(self, args: list[str]) -> str:
        need(args, 2)
        output = self._output(args, allowed=range(2))
        z = output.zones[arg_int(args[1], 1, 10) - 1]
        return (
            f"{fmt_eng(z.upper_k)},{fmt_eng(z.p)},{fmt_eng(z.i)},{fmt_eng(z.d)},"
            f"{z.manual_pct:+.2f},{z.range},{fmt_eng(z.rate_k_per_min)},{z.relay1},{z.relay2}"
        )
