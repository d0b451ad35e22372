"""Simulated Lake Shore 372 AC resistance bridge on a TCP port (real unit: port 7777).

Speaks the 372's protocol: commands end with CR LF (LF alone is accepted),
arguments are separated by commas or spaces, several commands and queries
may share one line separated by ``;`` (every query of the line is answered
in one line, the answers separated by ``;``), only queries answer, and a
command the unit does not understand (unknown mnemonic, wrong argument
count, a value out of range) gets no reply at all; :attr:`error_count`
counts them. The instrument behind the protocol (scanner, sensors, heater
loops) is :class:`simulators.servers.ls372_model.Ls372Model` (inputs in
:mod:`simulators.servers.ls372_channels`) on a
:class:`simulators.physics.fridge.DilutionFridge`; the output commands are
in :mod:`simulators.servers.ls372_output_commands`, the curve commands in
:mod:`simulators.servers.lakeshore_curves`.

Input reply formats (``c`` is ``A`` or 1-16):

=====================  ========================================================
``*IDN?``              ``LSCI,MODEL372,<serial>,<firmware>``
``RDGK? c``/``KRDG?``  ``+293.873E+00`` (``+000.000E+00`` without a curve or valid reading)
``RDGR? c``/``SRDG?``  ``+075.123E+03`` ohms; ``RDGPWR? c`` watts; ``QRDG? c`` quadrature
``RDGST? c``           ``000`` (bit sum: 1 CS OVL, 2 VCM, 4 VMIX, 8 VDIF, 16 R.OVER,
                       32 R.UNDER, 64 T.OVER, 128 T.UNDER)
``SCAN?``              ``01,1``
``INSET? c``           ``1,007,003,21,1`` (enabled, dwell, pause, curve, tempco)
``INTYPE? c``          ``0,07,1,10,0,1`` (mode, excitation, autorange, range, shunt, units);
                       input A: current mode only, excitation 1-6 (316 pA-100 nA)
``INNAME? c``          the name, unquoted
``TLIMIT? c``          ``+001.500E+00`` kelvin, 0 = no limit; enforced: every heater
                       output goes to range 0 while the input reads above it
``FILTER? c``          ``1,010,10`` (on, settle s, window %)
``FREQ? 0`` / ``A``    ``1`` (the scanner channels' frequency, the control input's)
``CRVHDR? n``          ``<name 15>,<serial 10>,4,+040.000,1``
``CRVPT? n,i``         ``+487.654E-02,+100.000E-04`` (units, kelvin; curvature for format 7)
=====================  ========================================================

Faults set from a test or the lab (each seen as the real unit would show it):
:meth:`LakeShore372Server.set_open_sensor` (``RDGST`` 017: CS OVL and
R.OVER, readings 0; an open control input also stops its heater loop) and
:meth:`LakeShore372Server.set_overrange` (``RDGST`` 016, readings 0), both
seen at the channel's next measurement (the control input: at once; a
scanner channel: when the scanner reaches it), and
:meth:`LakeShore372Server.clear_faults`; :meth:`LakeShore372Server.set_heater_open`
and :meth:`LakeShore372Server.set_heater_short` (``HTRST?`` 1 or 2, no
power); :meth:`LakeShore372Server.corrupt_curve_point`; the connection
faults of :class:`~simulators.servers.base.Faults` as for every server.
"""

from __future__ import annotations

from typing import Any

from simulators.physics.fridge import DilutionFridge
from simulators.servers.lakeshore_common import (
    LakeShoreServer,
    Malformed,
    arg_float,
    arg_int,
    fmt_eng,
    need,
)
from simulators.servers.lakeshore_curves import CurveStore
from simulators.servers.ls372_channels import CONTROL_CURRENT_A, Ls372Channel
from simulators.servers.ls372_model import Ls372Model
from simulators.servers.ls372_output_commands import OutputCommands


class LakeShore372Server(OutputCommands, LakeShoreServer):
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
        super().__init__(fridge, host, port, name=name)
        self.serial = serial
        self.firmware = firmware
        self.state = Ls372Model(fridge, **model_options)
        self.curve_store = CurveStore(self.state.curves, formats=(3, 4, 7), curvature=True)
        self.handlers = {
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
            "FREQ?": self._freq_get,
            **self.output_handlers(),
            **self.curve_store.handlers(),
        }

    # ---- faults and helpers for tests and the lab ----------------------------------------------

    def set_overrange(self, channel: int | str, on: bool) -> None:
        """Make an input read over range (``R.OVER``) from its next measurement on."""
        with self.lock:
            self._channel([str(channel)]).overrange = bool(on)

    def set_open_sensor(self, channel: int | str, on: bool) -> None:
        """Open an input's sensor leads (``CS OVL`` + ``R.OVER``, zero readings)."""
        with self.lock:
            self._channel([str(channel)]).open_sensor = bool(on)

    def clear_faults(self, channel: int | str | None = None) -> None:
        """Clear the open-sensor and over-range faults of one input (``None``: of every input)."""
        with self.lock:
            channels = (self.state.channels.values() if channel is None
                        else [self._channel([str(channel)])])
            for item in channels:
                item.open_sensor = item.overrange = False

    def set_heater_open(self, on: bool, output: int = 0) -> None:
        """Open the heater leads of output 0 or 1: ``HTRST?`` answers 1 and no power flows."""
        with self.lock:
            self.state.outputs[output].open_load = bool(on)

    def set_heater_short(self, on: bool, output: int = 0) -> None:
        """Short the heater of output 0 or 1: ``HTRST?`` answers 2 and no power reaches the load."""
        with self.lock:
            self.state.outputs[output].short = bool(on)

    def corrupt_curve_point(self, curve: int, index: int) -> None:
        """Make the next write of point ``index`` of user curve ``curve`` store a wrong value."""
        with self.lock:
            self.curve_store.corrupt_point(curve, index)

    # ---- protocol ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.fridge.time

    def _channel(self, args: list[str], index: int = 0) -> Ls372Channel:
        if len(args) <= index:
            raise Malformed("missing channel")
        text = args[index].strip().upper()
        key = "A" if text == "A" else str(arg_int(text, 1, 16))
        return self.state.channels[key]

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
        # the control input is excited by a current only, from its own six-step table
        mode = arg_int(args[1], 1 if channel.key == "A" else 0, 1)
        top = len(CONTROL_CURRENT_A) if channel.key == "A" else (22 if mode == 1 else 12)
        excitation = arg_int(args[2], 1, top)
        autorange = arg_int(args[3], 0, 1 if channel.key == "A" else 2)
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
        channels = ([c for k, c in self.state.channels.items() if k != "A"]
                    if args[0].strip() == "0" else [self._channel(args)])  # 0: every channel
        on = arg_int(args[1], 0, 1)
        settle = arg_int(args[2], 1, 200)
        window = arg_int(args[3], 1, 80)
        for channel in channels:
            s = channel.setup
            s.filter_on, s.settle_s, s.window_pct = bool(on), settle, window
            channel.settling.tau_s = channel.tau_s()

    def _filter_get(self, args: list[str]) -> str:
        need(args, 1)
        s = self._channel(args).setup
        return f"{int(s.filter_on)},{s.settle_s:03d},{s.window_pct:02d}"

    def _frequency_input(self, args: list[str]) -> str:
        """``FREQ`` takes 0 (the measurement input: every scanner channel) or ``A``."""
        if not args:
            return "0"  # the manual: 0 is assumed when no input is given
        text = args[0].strip().upper()
        if text not in ("0", "A"):
            raise Malformed("FREQ input is 0 (measurement input) or A (control input)")
        return text

    def _freq_set(self, args: list[str]) -> None:
        need(args, 1, at_most=2)
        which = self._frequency_input(args[:-1])
        frequency = arg_int(args[-1], 1, 5)
        if which == "A":
            self.state.channels["A"].setup.frequency = frequency
        else:
            for key, channel in self.state.channels.items():
                if key != "A":
                    channel.setup.frequency = frequency

    def _freq_get(self, args: list[str]) -> str:
        need(args, 0, at_most=1)
        which = self._frequency_input(args)
        return str(self.state.channels["A" if which == "A" else "1"].setup.frequency)
