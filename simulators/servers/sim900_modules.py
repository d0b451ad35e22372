"""Simulated SRS SIM modules for the SIM900 mainframe: the SIM928 voltage source and the
SIM921 AC resistance bridge (the mainframe itself is :mod:`simulators.servers.sim900`).

SIM928 isolated voltage source
------------------------------
``VOLT v`` (-20..+20 V, rounded to 1 mV; outside: refused, execution error
1), ``VOLT?`` -> ``+1.000``, ``OPON``, ``OPOF``, ``EXON?`` -> ``1``/``0``,
``BATS?`` -> ``1,3,0`` (battery A in use, B charged/standby, no service
needed; 2 = charging), ``*IDN?`` ->
``Stanford_Research_Systems,SIM928,s/n012345,ver2.2``. With the output on,
the voltage drives the TES bias through ``r_bias``:
:meth:`SIM928.bias_current` = V / r_bias (0 when off); ``on_bias_change`` is
called with the new current on every change.

SIM921 AC resistance bridge
---------------------------
Reads a RuOx thermometer ``R(T) = r0 exp((t0 / T)^(1/4))`` at the
temperature given by the ``temperature`` callable, warmed by its own
excitation (electron-phonon coupling: T_e^5 = T^5 + P / sigma, P = V_exc^2 / R),
with white noise falling with excitation and time constant.

==================  =======================================================================
``RVAL?``           resistance, Ohm, ``+6.012345E+04``
``TVAL?``           temperature from the bridge's curve, K, ``+1.000123E-02``
``RANG r`` / ``?``  range index 0..9: 20 mOhm, 200 mOhm, 2 Ohm ... 20 MOhm (full scale)
``EXCI e`` / ``?``  excitation index 0..8: 3, 10, 30, 100, 300 uV, 1, 3, 10, 30 mV
``EXON b`` / ``?``  excitation on (1/ON) or off (0/OFF)
``FREQ f`` / ``?``  excitation frequency 1.95..61.1 Hz, ``+1.500000E+01``
``TCON t`` / ``?``  time constant index -1 (filter off), 0..6: 0.3, 1, 3, 10, 30, 100, 300 s
``*IDN?``           ``Stanford_Research_Systems,SIM921,s/n006789,ver1.7``
==================  =======================================================================

Over-range (resistance above the range's full scale, excitation off, or the
sensor open, :attr:`SIM921.sensor_open`): ``RVAL?`` and ``TVAL?`` answer
``+9.900000E+37``, the overflow value SRS instruments use; the driver flags
that reading ``OVERRANGE`` and keeps the link.

Module syntax errors are silent and recorded: ``LCME?`` (last command
error: 1 illegal, 2 undefined command, 3 illegal query, 4 illegal set,
5 missing parameter, 9 bad number) and ``LEXE?`` (last execution error:
1 illegal value) read and clear them; ``*CLS`` clears both.

Simulator interface: ``SIM928(r_bias=10e3, on_bias_change=None)``,
``SIM921(temperature=None, *, r0=1e3, t0=2.81, sigma=1e-5, seed=None)``; a
module's ``reply_delay_s`` makes its replies reach the queue that late.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

OVERFLOW = "+9.900000E+37"
RANGES_OHM = tuple(2e-2 * 10**k for k in range(10))
EXCITATIONS_V = (3e-6, 10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3)
TIME_CONSTANTS_S = {-1: 0.0, 0: 0.3, 1: 1.0, 2: 3.0, 3: 10.0, 4: 30.0, 5: 100.0, 6: 300.0}


class SimModule:
    """Common SIM module behaviour: ``;``-separated commands, error registers.

    Subclasses implement :meth:`command` for one ``HEADER[?] [argument]``.
    """

    idn = "Stanford_Research_Systems,SIM,s/n000000,ver1.0"

    def __init__(self) -> None:
        self.last_command_error = 0
        self.last_execution_error = 0
        # a slow module: its replies reach the port queue this long after SNDT
        self.reply_delay_s = 0.0

    def handle(self, line: str) -> list[str]:
        """Execute a line of module commands; the replies, without terminators."""
        replies: list[str] = []
        for part in line.split(";"):
            text = part.strip()
            if not text:
                continue
            header, _, argument = text.partition(" ")
            header = header.upper()
            argument = argument.strip()
            is_query = header.endswith("?")
            header = header.rstrip("?")
            try:
                reply = self._common(header, argument, is_query)
                if reply is None and header not in ("*CLS", "*RST"):
                    reply = self.command(header, argument, is_query)
            except _CommandError as exc:
                self.last_command_error = exc.code
                reply = None
            except ValueError:
                self.last_command_error = 9
                reply = None
            if reply is not None:
                replies.append(reply)
        return replies

    def _common(self, header: str, argument: str, is_query: bool) -> str | None:
        if header == "*IDN" and is_query:
            return self.idn
        if header == "LCME" and is_query:
            code, self.last_command_error = self.last_command_error, 0
            return str(code)
        if header == "LEXE" and is_query:
            code, self.last_execution_error = self.last_execution_error, 0
            return str(code)
        if header == "*CLS" and not is_query:
            self.last_command_error = self.last_execution_error = 0
            return None
        if header == "*RST" and not is_query:
            self.reset()
            return None
        return None

    def reset(self) -> None:
        """Return to power-on settings."""

    def command(self, header: str, argument: str, is_query: bool) -> str | None:
        """One module-specific command; raise :class:`_CommandError` when not understood."""
        raise _CommandError(2)

    def _refuse(self) -> None:
        self.last_execution_error = 1


class _CommandError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _need(argument: str) -> str:
    if not argument:
        raise _CommandError(5)
    return argument


def _parse_bool(argument: str) -> bool:
    t = _need(argument).upper()
    if t in ("1", "ON"):
        return True
    if t in ("0", "OFF"):
        return False
    raise _CommandError(9)


class SIM928(SimModule):
    """SIM928 isolated voltage source, biasing a TES through ``r_bias``.

    Args:
        r_bias: bias resistor between the source and the TES shunt, Ohm.
        on_bias_change: called with the bias current (A) whenever it changes.
    """

    idn = "Stanford_Research_Systems,SIM928,s/n012345,ver2.2"

    def __init__(
        self, r_bias: float = 10e3, on_bias_change: Callable[[float], None] | None = None
    ) -> None:
        super().__init__()
        self.r_bias = r_bias
        self.on_bias_change = on_bias_change
        self.voltage = 0.0
        self.output_on = False
        self.battery = "1,3,0"

    def bias_current(self) -> float:
        """Current into the TES bias circuit, A (0 with the output off)."""
        return self.voltage / self.r_bias if self.output_on else 0.0

    def reset(self) -> None:
        """Output off, 0 V."""
        self.voltage = 0.0
        self.output_on = False
        self._changed()

    def _changed(self) -> None:
        if self.on_bias_change is not None:
            self.on_bias_change(self.bias_current())

    def command(self, header: str, argument: str, is_query: bool) -> str | None:
        """VOLT, OPON, OPOF, EXON?, BATS?."""
        if header == "VOLT":
            if is_query:
                return f"{self.voltage:+.3f}"
            value = float(_need(argument))
            if not -20.0 <= value <= 20.0:
                self._refuse()
                return None
            self.voltage = round(value, 3) + 0.0
            self._changed()
            return None
        if header in ("OPON", "OPOF"):
            if is_query:
                raise _CommandError(3)
            self.output_on = header == "OPON"
            self._changed()
            return None
        if header == "EXON":
            if not is_query:
                raise _CommandError(4)
            return "1" if self.output_on else "0"
        if header == "BATS":
            if not is_query:
                raise _CommandError(4)
            return self.battery
        raise _CommandError(2)


class SIM921(SimModule):
    """SIM921 AC resistance bridge reading a RuOx thermometer.

    Args:
        temperature: the thermometer's (bath) temperature, K; default 30 mK.
        r0: RuOx prefactor, Ohm.
        t0: RuOx hopping temperature, K.
        sigma: electron-phonon coupling of the chip, W/K^5 (self-heating).
        seed: random seed for the reading noise.
    """

    idn = "Stanford_Research_Systems,SIM921,s/n006789,ver1.7"

    def __init__(
        self,
        temperature: Callable[[], float] | None = None,
        *,
        r0: float = 1e3,
        t0: float = 2.81,
        sigma: float = 1e-5,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = temperature if temperature is not None else (lambda: 0.030)
        self.r0 = r0
        self.t0 = t0
        self.sigma = sigma
        self.sensor_open = False
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Power-on settings: 200 kOhm range, 30 uV, excitation on, 15 Hz, 3 s."""
        self.range_index = 7
        self.excitation_index = 2
        self.excitation_on = True
        self.frequency = 15.0
        self.time_constant_index = 2

    def resistance_at(self, t: float) -> float:
        """RuOx calibration R(T), Ohm."""
        return self.r0 * math.exp((self.t0 / t) ** 0.25)

    def temperature_at(self, r: float) -> float:
        """Inverse calibration T(R), K."""
        return self.t0 / math.log(r / self.r0) ** 4

    def reading(self) -> tuple[float, float] | None:
        """(resistance, temperature) as the bridge reads them, or None when over range."""
        if self.sensor_open or not self.excitation_on:
            return None
        t_bath = float(self.temperature())
        v_exc = EXCITATIONS_V[self.excitation_index]
        r = self.resistance_at(t_bath)
        # Self-heating: the sensor's electrons decouple from the lattice at low T.
        t_e = (t_bath**5 + v_exc**2 / r / self.sigma) ** 0.2
        r = self.resistance_at(t_e)
        tau = TIME_CONSTANTS_S[self.time_constant_index] or 0.1
        r *= 1.0 + (3e-9 / v_exc) / math.sqrt(tau) * self._rng.standard_normal()
        if r > RANGES_OHM[self.range_index]:
            return None
        return r, self.temperature_at(r)

    def command(self, header: str, argument: str, is_query: bool) -> str | None:
        """RVAL?, TVAL?, RANG, EXCI, EXON, FREQ, TCON."""
        if header in ("RVAL", "TVAL"):
            if not is_query:
                raise _CommandError(4)
            reading = self.reading()
            if reading is None:
                return OVERFLOW
            return f"{reading[0] if header == 'RVAL' else reading[1]:+.6E}"
        if header == "RANG":
            return self._index(is_query, argument, "range_index", range(10))
        if header == "EXCI":
            return self._index(is_query, argument, "excitation_index", range(9))
        if header == "TCON":
            return self._index(is_query, argument, "time_constant_index", range(-1, 7))
        if header == "EXON":
            if is_query:
                return "1" if self.excitation_on else "0"
            self.excitation_on = _parse_bool(argument)
            return None
        if header == "FREQ":
            if is_query:
                return f"{self.frequency:+.6E}"
            value = float(_need(argument))
            if not 1.95 <= value <= 61.1:
                self._refuse()
                return None
            self.frequency = value
            return None
        raise _CommandError(2)

    def _index(self, is_query: bool, argument: str, attr: str, allowed: range) -> str | None:
        if is_query:
            return str(getattr(self, attr))
        value = int(_need(argument))
        if value not in allowed:
            self._refuse()
            return None
        setattr(self, attr, value)
        return None
