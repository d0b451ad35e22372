"""Simulated SRS SR830 lock-in amplifier measuring a resistor through a bias resistor.

Made for PyMeasure's own ``pymeasure.instruments.srs.SR830`` driver,
unmodified, over PyVISA: ``SR830(server.resource, read_termination="\\n",
write_termination="\\n")``. Commands end with LF or CR; replies end with
``\\n``. Several commands per line are separated by ``;``; the header and its
parameters may be separated by a space or not (``SENS5``, ``OUTP? 1``);
parameters are comma-separated.

The signal: the reference sine (``SLVL``, V rms, at ``FREQ``) drives a
current through ``bias_resistor`` into the sample (``sample`` Ohm, or a
callable, e.g. a thermometer's R(T)) shunted by ``cable_capacitance``; the
lock-in measures the voltage across the sample at the harmonic ``HARM``
(the signal exists only at the first), relative to ``PHAS``, with input noise
``noise_density`` (V/sqrt(Hz)) in the equivalent noise bandwidth of the
time constant and slope. With the external reference selected (``FMOD 0``)
there is no reference: LIA status bit 3 (unlock) and noise only.

Commands: ``*IDN?`` (``Stanford_Research_Systems,SR830,s/n12345,ver1.07``),
``*RST``, ``*CLS``, ``*STB?``, ``*ESR?``, ``SLVL``, ``FREQ``, ``PHAS``,
``HARM``, ``SENS`` (0..26), ``OFLT`` (0..19), ``OFSL`` (0..3), ``SYNC``,
``ISRC``, ``IGND``, ``ICPL``, ``ILIN``, ``FMOD``, ``RSLP``, ``RMOD``,
``DDEF i,j,k`` / ``DDEF? i`` (-> ``j,k``), ``OEXP i,x,e`` / ``OEXP? i``,
``AUXV i,v`` / ``AUXV? i``, ``OAUX? i``, ``SRAT``, ``SEND``, ``TSTR``,
``AGAN``, ``ARSV``, ``APHS`` (sets PHAS to the signal's phase), ``AOFF i``,
``STRT``, ``PAUS``, ``REST``, ``TRIG``, ``FAST``, ``STRD``, ``SPTS?`` (0),
``OUTP? i`` (1 X, 2 Y, 3 R, 4 theta), ``OUTR? i``, ``SNAP? a,b[,...]``
(1 X, 2 Y, 3 R, 4 theta, 5-8 aux in, 9 frequency, 10/11 display),
``LIAS? [i]``, ``ERRS? [i]``, ``LIAE``, ``ERRE``, ``SSET``, ``RSET``.
Numbers come back as ``%.6g`` text (``1.00000e-05`` style where needed).
Unknown commands and illegal values set the command-error (bit 5) or
execution-error (bit 4) bit of ``*ESR?`` and produce no reply. An output
larger than the sensitivity sets LIA status bit 2 (output overload).

Simulator interface: ``SR830Server(sample=100.0, *, bias_resistor=1e6,
cable_capacitance=1e-9, noise_density=10e-9, seed=None, host="127.0.0.1", port=0)``.
"""

from __future__ import annotations

import cmath
import math
import re
from collections.abc import Callable

import numpy as np

from simulators.servers.base import InstrumentServer

IDN = "Stanford_Research_Systems,SR830,s/n12345,ver1.07"
SENSITIVITIES = [
    2e-9,
    5e-9,
    10e-9,
    20e-9,
    50e-9,
    100e-9,
    200e-9,
    500e-9,
    1e-6,
    2e-6,
    5e-6,
    10e-6,
    20e-6,
    50e-6,
    100e-6,
    200e-6,
    500e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    20e-3,
    50e-3,
    100e-3,
    200e-3,
    500e-3,
    1.0,
]
TIME_CONSTANTS = [
    10e-6,
    30e-6,
    100e-6,
    300e-6,
    1e-3,
    3e-3,
    10e-3,
    30e-3,
    100e-3,
    300e-3,
    1.0,
    3.0,
    10.0,
    30.0,
    100.0,
    300.0,
    1e3,
    3e3,
    10e3,
    30e3,
]
ENBW_FACTOR = [1 / 4, 1 / 8, 3 / 32, 5 / 64]  # ENBW * time constant for 6..24 dB/oct
_INDEXED = {  # header -> (allowed range, default)
    "SENS": (range(27), 22),
    "OFLT": (range(20), 10),
    "OFSL": (range(4), 1),
    "SYNC": (range(2), 0),
    "ISRC": (range(4), 0),
    "IGND": (range(2), 0),
    "ICPL": (range(2), 0),
    "ILIN": (range(4), 0),
    "FMOD": (range(2), 1),
    "RSLP": (range(3), 0),
    "RMOD": (range(3), 1),
    "SRAT": (range(15), 4),
    "SEND": (range(2), 1),
    "TSTR": (range(2), 0),
    "FAST": (range(3), 0),
}
_HEADER = re.compile(r"^(\*?[A-Za-z]{3,4})(\?)?\s*(.*)$", re.DOTALL)


class _Refused(Exception):
    def __init__(self, bit: int) -> None:
        super().__init__(bit)
        self.bit = bit


ESR_EXECUTION = 1 << 4
ESR_COMMAND = 1 << 5


class SR830Server(InstrumentServer):
    """SR830 lock-in reading the voltage across a current-biased sample.

    Args:
        sample: sample resistance, Ohm, or a callable giving it.
        bias_resistor: resistor from the sine output to the sample, Ohm.
        cable_capacitance: capacitance across the sample, F (phase lag at high f).
        noise_density: input voltage noise, V/sqrt(Hz).
        seed: random seed.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "SR830"

    def __init__(
        self,
        sample: float | Callable[[], float] = 100.0,
        *,
        bias_resistor: float = 1e6,
        cable_capacitance: float = 1e-9,
        noise_density: float = 10e-9,
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b"\n", write_termination=b"\n")
        self.sample = sample
        self.bias_resistor = bias_resistor
        self.cable_capacitance = cable_capacitance
        self.noise_density = noise_density
        self._rng = np.random.default_rng(seed)
        self._reset()

    def _reset(self) -> None:
        self.amplitude = 1.0
        self.frequency = 1000.0
        self.phase = 0.0
        self.harmonic = 1
        self.index = {name: default for name, (_r, default) in _INDEXED.items()}
        self.display = {1: (0, 0), 2: (0, 0)}
        self.expand = {1: (0.0, 0), 2: (0.0, 0), 3: (0.0, 0)}
        self.aux_out = {k: 0.0 for k in range(1, 5)}
        self.esr = 0
        self.lias = 0

    def split_commands(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Either CR or LF ends a command line."""
        *complete, rest = buffer.replace(b"\r", b"\n").split(b"\n")
        return complete, rest

    # ---- physics ---------------------------------------------------------------------------

    def sample_resistance(self) -> float:
        """Present sample resistance, Ohm."""
        return float(self.sample()) if callable(self.sample) else float(self.sample)

    def signal(self) -> complex:
        """Complex amplitude (V rms) at the detection frequency, relative to the reference phase."""
        if self.index["FMOD"] == 0:
            self.lias |= 1 << 3  # nothing on the reference input: unlocked
            return self._noise()
        f = self.frequency * self.harmonic
        z = 0j
        if self.harmonic == 1:
            r = self.sample_resistance()
            z_sample = r / (1.0 + 2j * math.pi * f * r * self.cable_capacitance)
            current = self.amplitude / (self.bias_resistor + z_sample)
            z = current * z_sample
        value = z * cmath.exp(-1j * math.radians(self.phase)) + self._noise()
        if abs(value) > SENSITIVITIES[self.index["SENS"]]:
            self.lias |= 1 << 2
        return value

    def _noise(self) -> complex:
        tau = TIME_CONSTANTS[self.index["OFLT"]]
        enbw = ENBW_FACTOR[self.index["OFSL"]] / tau
        sigma = self.noise_density * math.sqrt(enbw)
        return complex(sigma * self._rng.standard_normal(), sigma * self._rng.standard_normal())

    def _outputs(self, z: complex) -> dict[int, float]:
        return {
            1: z.real,
            2: z.imag,
            3: abs(z),
            4: math.degrees(cmath.phase(z)),
            5: 0.0,
            6: 0.0,
            7: 0.0,
            8: 0.0,
            9: self.frequency,
            10: z.real,
            11: z.imag,
        }

    # ---- protocol --------------------------------------------------------------------------

    def handle(self, command: str) -> str | bytes | None:
        """Execute a line of ``;``-separated commands; each query's reply on its own line."""
        replies: list[str] = []
        for part in command.split(";"):
            text = part.strip()
            if not text:
                continue
            m = _HEADER.match(text)
            try:
                if not m:
                    raise _Refused(ESR_COMMAND)
                header, query, rest = m.group(1).upper(), bool(m.group(2)), m.group(3).strip()
                args = [a.strip() for a in rest.split(",")] if rest else []
                reply = self._command(header, query, args)
            except _Refused as exc:
                self.esr |= exc.bit
                reply = None
            except (ValueError, IndexError, KeyError):
                self.esr |= ESR_COMMAND
                reply = None
            if reply is not None:
                replies.append(reply)
        return "\n".join(replies) if replies else None

    def _command(self, header: str, query: bool, args: list[str]) -> str | None:
        if header == "*IDN" and query:
            return IDN
        if header == "*RST" and not query:
            self._reset()
            return None
        if header == "*CLS" and not query:
            self.esr = self.lias = 0
            return None
        if header in ("*STB", "*ESR", "LIAS", "ERRS") and query:
            return self._status(header, args)
        if header in ("SLVL", "FREQ", "PHAS", "HARM"):
            return self._reference(header, query, args)
        if header in _INDEXED:
            allowed = _INDEXED[header][0]
            if query:
                return str(self.index[header])
            value = int(float(args[0]))
            if value not in allowed:
                raise _Refused(ESR_EXECUTION)
            self.index[header] = value
            return None
        if header in ("OUTP", "OUTR") and query:
            return _fmt(self._outputs(self.signal())[int(args[0])]) if int(args[0]) <= 4 else None
        if header == "SNAP" and query:
            if not 2 <= len(args) <= 6:
                raise _Refused(ESR_COMMAND)
            values = self._outputs(self.signal())
            return ",".join(_fmt(values[int(a)]) for a in args)
        if header in ("DDEF", "OEXP", "AUXV", "OAUX"):
            return self._indexed_pairs(header, query, args)
        if header == "APHS" and not query:
            self.phase = 0.0
            self.phase = round(math.degrees(cmath.phase(self.signal())), 2)
            return None
        if header == "SPTS" and query:
            return "0"
        if not query and header in (
            "AGAN",
            "ARSV",
            "AOFF",
            "STRT",
            "PAUS",
            "REST",
            "TRIG",
            "STRD",
            "LIAE",
            "ERRE",
            "SSET",
            "RSET",
            "*SRE",
            "*ESE",
            "LOCL",
            "OVRM",
        ):
            return None
        raise _Refused(ESR_COMMAND)

    def _status(self, header: str, args: list[str]) -> str:
        if header == "*STB":
            return str((1 << 5) if self.esr else 0)
        if header == "ERRS":
            return "0"
        register = self.esr if header == "*ESR" else self.lias
        if header == "*ESR":
            self.esr = 0
        else:
            self.lias = 0
        if args:
            return str((register >> int(args[0])) & 1)
        return str(register)

    def _reference(self, header: str, query: bool, args: list[str]) -> str | None:
        if query:
            value = {"SLVL": self.amplitude, "FREQ": self.frequency, "PHAS": self.phase}.get(header)
            return str(self.harmonic) if value is None else _fmt(value)
        value = float(args[0])
        if header == "SLVL" and 0.004 <= value <= 5.0:
            self.amplitude = round(value, 3)
        elif header == "FREQ" and 0.001 <= value <= 102e3 / self.harmonic:
            self.frequency = value
        elif header == "PHAS" and -360.0 <= value <= 729.99:
            self.phase = (value + 180.0) % 360.0 - 180.0
        elif header == "HARM" and 1 <= int(value) <= 19999 and self.frequency * value <= 102e3:
            self.harmonic = int(value)
        else:
            raise _Refused(ESR_EXECUTION)
        return None

    def _indexed_pairs(self, header: str, query: bool, args: list[str]) -> str | None:
        i = int(args[0])
        if header == "OAUX":
            if not query or i not in range(1, 5):
                raise _Refused(ESR_COMMAND)
            return _fmt(0.0)
        if header == "DDEF":
            if i not in self.display:
                raise _Refused(ESR_EXECUTION)
            if query:
                return "{},{}".format(*self.display[i])
            self.display[i] = (int(args[1]), int(args[2]))
            return None
        if header == "OEXP":
            if i not in self.expand:
                raise _Refused(ESR_EXECUTION)
            if query:
                offset, expand = self.expand[i]
                return f"{offset:.2f},{expand}"
            self.expand[i] = (float(args[1]), int(args[2]))
            return None
        if i not in self.aux_out:
            raise _Refused(ESR_EXECUTION)
        if query:
            return _fmt(self.aux_out[i])
        value = float(args[1])
        if not -10.5 <= value <= 10.5:
            raise _Refused(ESR_EXECUTION)
        self.aux_out[i] = round(value, 3)
        return None


def _fmt(value: float) -> str:
    return f"{value:.6g}"
