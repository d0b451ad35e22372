"""Simulated STAR Cryoelectronics PFL-102 SQUID controller(s) behind a PCI-100 box.

This module is the reference for the PFL-102 wire protocol as qupdaq speaks
it; the driver (``drivers``) and this simulator implement exactly what is
written here. The layout follows the vendor's SCC manual (section 6.5,
"digital control" and "parameter" registers) as used by public lab code.

Transport
---------
RS-232 at 9600 baud through the PCI-100 (here: TCP). The client only ever
*writes*; **the unit never replies** (no echo, no acknowledgement) and
**there is no readback**: a driver keeps its own shadow copy of the state
and always writes whole words. Each frame is exactly 9 ASCII characters::

    CCRRDDDD;

========  =====================================================================
field     meaning
========  =====================================================================
``CC``    channel: the PFL-102 card address on the PCI-100, ``01``..``08`` hex
``RR``    register/opcode: ``50`` digital control, ``60`` parameter, each with
          the parity bit ``0x80`` added when needed (so ``50``/``D0``,
          ``60``/``E0`` are the only valid opcode bytes)
``DDDD``  16-bit data word, hex, most significant digit first
``;``     end of frame
========  =====================================================================

Hex digits may be upper or lower case (send upper case). Anything between
frames that is whitespace (CR, LF, space) is ignored, so any VISA write
termination works. **Odd parity**: the number of 1 bits in the channel
byte, the opcode byte (including bit 7) and the 16 data bits together must
be odd; bit 7 of ``RR`` is set exactly when the other bits hold an even
number of ones. Examples on channel 1 (``0x01``: one 1 bit):

* lock the SQUID, 100 kOhm, 1.5 nF: data ``0x0408`` (two ones) + ``0x50``
  (two ones) + channel (one) = 5, odd -> ``01500408;``
* tune: data ``0x0800`` (one) + ``0x50`` (two) + channel (one) = 4, even ->
  parity bit set -> ``01D00800;``

Digital control word (opcode ``0x50``)
--------------------------------------
A write replaces the whole word (the unit does no read-modify-write).

=====  ==========  ===========================================================
bits   mask        meaning
=====  ==========  ===========================================================
0      ``0x0001``  integrator reset: 1 = integrator shorted, output 0 V;
                   the 1 -> 0 edge relocks at the present flux
1-2    ``0x0006``  feedback resistor R_f: ``0x0000`` 100 kOhm,
                   ``0x0002`` 1 kOhm, ``0x0004`` 10 kOhm (``0x0006`` invalid)
3      ``0x0008``  feedback select: 1 = SQUID (first stage) in the loop,
                   0 = array
4      ``0x0010``  test signal onto SQUID bias
5      ``0x0020``  test signal onto array bias
6      ``0x0040``  test signal onto SQUID flux
7      ``0x0080``  test signal onto array flux
8-9    ``0x0300``  integrator capacitor: ``0x0000`` 1.5 nF, ``0x0100`` 15 nF,
                   ``0x0200`` 150 nF (``0x0300`` invalid)
10     ``0x0400``  LOCK: integrator drives the feedback coil (closed loop)
11     ``0x0800``  TUNE: amplifier output straight to the output (open loop,
                   the output is V(Phi))
12     ``0x1000``  heater on (flux-trap removal; the SQUID is normal while on)
13-15  ``0xE000``  reserved, must be 0
=====  ==========  ===========================================================

Mode: exactly one of LOCK and TUNE is set (the manual defines no other
state). The flux-removal procedure writes TUNE + heater (``0x1800``),
then TUNE, waits 10 s for the SQUID to cool, restores the parameters and
relocks with an integrator reset.

The manual documents no power-on state; the simulator starts every card in
the state a controlling program establishes before tuning: ``0x0800``
(tune, 100 kOhm, 1.5 nF, no reset, heater off, no test signal), every DAC
code 0.

Parameter word (opcode ``0x60``)
--------------------------------
``data = (code << 4) | select`` with a 12-bit DAC ``code`` (0..0xFFF)::

    select  parameter            code 0x000   code 0xFFF
    ------  -------------------  -----------  ----------
    0x0     SQUID flux offset    0 uA         100 uA
    0x1     array flux           0 uA         200 uA
    0x2     SQUID bias           0 uA         2000 uA
    0x3     array bias           0 uA         100 uA
    0x4     output offset        -9.8 mV      +9.8 mV

value = full_scale * code / 4095 (output offset: -9.8 mV + 19.6 mV * code /
4095). Selects 0x5..0xF are invalid.

Malformed frames (wrong length, not hex, even parity, unknown opcode,
invalid select) are ignored, leave the state untouched and are counted in
:attr:`PFL102Server.malformed`. Control words the manual does not define
(the R_f code ``0x0006``, the capacitor code ``0x0300``, reserved bits,
LOCK and TUNE both or neither set) are ignored too and counted in
:attr:`PFL102Server.undefined`: what a real card does with them is not
documented, and a driver that sends one has a bug this should catch.
Frames for a channel with no card are ignored and counted in
:attr:`PFL102Server.unaddressed`. None ever produces a reply.

Simulator interface
-------------------
``PFL102Server(channels=None, *, flux_line_mutual=PHI0/20e-6,
squid_response=biased_squid, preamp_gain=5040.0, host="127.0.0.1", port=0)``:
``channels`` maps card addresses to the
:class:`~simulators.physics.squid.FluxLockedLoop` each card drives (default:
card 1 with a default loop). Every valid frame is pushed into that loop at
once: R_f, C_int, mode, reset, heater (SQUID stops modulating), SQUID bias
(V-Phi from ``squid_response``), SQUID flux offset (``flux_line_mutual`` x
current), output offset (the lock level; the tune output is ``preamp_gain``
x (V(Phi) - offset)) and the test signal on the SQUID flux line (a 50 uA
peak-to-peak, 1 kHz triangle: a simulation choice, the amplitude is not part
of the protocol). The scope's trace source reads the same loop
object, so what the driver sets is what the scope shows. The simulated
readout is a single SQUID stage: array bias, array flux, the feedback-select
bit and test signals on other lines are stored and decoded
(:meth:`PFL102Server.state`) but do not change the output.

To lock the default simulated SQUID: SQUID bias ~25 uA (code 51), output
offset at the SQUID's mean voltage ~0.1 mV (code 2068), then LOCK; an
offset outside the modulation (+/-20 uV around it) has no lock point and the
integrator runs into a rail. :attr:`PFL102Server.malformed`,
:attr:`PFL102Server.undefined`, :attr:`PFL102Server.unaddressed` and
:attr:`PFL102Server.frames` (accepted) count frames; :attr:`received` keeps
only the last :data:`RECEIVED_KEPT` of them; :func:`frame` builds a frame
with its parity bit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from simulators.physics.squid import PHI0, FluxLockedLoop, SquidVPhi, biased_squid
from simulators.servers.base import InstrumentServer

log = logging.getLogger(__name__)

OP_DIGITAL = 0x50
OP_PARAMETER = 0x60
PARITY_BIT = 0x80

RESET = 0x0001
RF_MASK = 0x0006
FEEDBACK_SQUID = 0x0008
TEST_MASK = 0x00F0
C_MASK = 0x0300
LOCK = 0x0400
TUNE = 0x0800
HEATER = 0x1000
RESERVED = 0xE000

FEEDBACK_RESISTORS = {0x0000: 100e3, 0x0002: 1e3, 0x0004: 10e3}
"""Digital-word code (bits 1-2) -> feedback resistor, Ohm."""
INTEGRATOR_CAPACITORS = {0x0000: 1.5e-9, 0x0100: 15e-9, 0x0200: 150e-9}
"""Digital-word code (bits 8-9) -> integrator capacitor, F."""
TEST_LINES = {
    0x0010: "squid_bias",
    0x0020: "array_bias",
    0x0040: "squid_flux",
    0x0080: "array_flux",
}
"""Digital-word bit -> line the test signal is applied to."""

PARAMETERS = ("squid_flux", "array_flux", "squid_bias", "array_bias", "output_offset")
"""Parameter-word select nibble 0..4, in order."""
FULL_SCALE = {
    "squid_flux": 100e-6,
    "array_flux": 200e-6,
    "squid_bias": 2000e-6,
    "array_bias": 100e-6,
    "output_offset": 9.8e-3,
}
"""Full-scale value of each parameter (A, or V for the output offset, which is bipolar)."""
DAC_MAX = 0xFFF
START_WORD = TUNE
"""The word every card starts with (the manual documents no power-on state)."""

TEST_SIGNAL_PP = 50e-6
"""Peak-to-peak amplitude of the triangle test signal, A (on the selected line)."""
TEST_SIGNAL_HZ = 1e3
"""Frequency of the triangle test signal, Hz."""


def odd_parity_ok(channel: int, opcode: int, data: int) -> bool:
    """True when channel, opcode (with bit 7) and data hold an odd number of ones."""
    return (bin(channel).count("1") + bin(opcode).count("1") + bin(data).count("1")) % 2 == 1


def frame(channel: int, opcode: int, data: int) -> str:
    """Build a frame ``CCRRDDDD;`` with the parity bit set as required (for tests and tools)."""
    base = opcode & 0x7F
    if not odd_parity_ok(channel, base, data):
        base |= PARITY_BIT
    return f"{channel:02X}{base:02X}{data:04X};"


def defined_word(data: int) -> bool:
    """True when every field of a control word has a code the manual defines."""
    return not (
        data & RESERVED
        or (data & RF_MASK) not in FEEDBACK_RESISTORS
        or (data & C_MASK) not in INTEGRATOR_CAPACITORS
        or bool(data & LOCK) == bool(data & TUNE)
    )


def parameter_value(name: str, code: int) -> float:
    """Physical value of a 12-bit parameter code (A, or V for ``output_offset``)."""
    full = FULL_SCALE[name]
    if name == "output_offset":
        return -full + 2.0 * full * code / DAC_MAX
    return full * code / DAC_MAX


def parameter_code(name: str, value: float) -> int:
    """Nearest 12-bit code for a physical value (clipped to the range)."""
    full = FULL_SCALE[name]
    frac = (value + full) / (2.0 * full) if name == "output_offset" else value / full
    return int(round(min(1.0, max(0.0, frac)) * DAC_MAX))


@dataclass
class PFLState:
    """What one PFL-102 card holds (decoded on demand).

    Attributes:
        word: the digital control word last written.
        codes: 12-bit DAC code of each parameter, by name.
    """

    word: int = START_WORD
    codes: dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.codes is None:
            self.codes = {name: 0 for name in PARAMETERS}

    def value(self, name: str) -> float:
        """Physical value of parameter ``name``."""
        assert self.codes is not None
        return parameter_value(name, self.codes[name])

    @property
    def feedback_resistor(self) -> float:
        """Selected feedback resistor, Ohm."""
        return FEEDBACK_RESISTORS[self.word & RF_MASK]

    @property
    def integrator_capacitor(self) -> float:
        """Selected integrator capacitor, F."""
        return INTEGRATOR_CAPACITORS[self.word & C_MASK]

    @property
    def mode(self) -> str:
        """``"locked"`` or ``"tune"`` (accepted words have exactly one of the two bits)."""
        return "locked" if self.word & LOCK else "tune"

    @property
    def reset(self) -> bool:
        """Integrator reset held."""
        return bool(self.word & RESET)

    @property
    def heater(self) -> bool:
        """Flux-trap heater on."""
        return bool(self.word & HEATER)

    @property
    def feedback_on_squid(self) -> bool:
        """Feedback select: True = SQUID stage, False = array."""
        return bool(self.word & FEEDBACK_SQUID)

    @property
    def test_lines(self) -> tuple[str, ...]:
        """Lines the test signal is applied to."""
        return tuple(name for bit, name in TEST_LINES.items() if self.word & bit)


class PFL102Server(InstrumentServer):
    """PCI-100 with PFL-102 cards on a TCP port; write-only, frames ``CCRRDDDD;``.

    Args:
        channels: card address (1..8) -> the flux-locked loop that card drives;
            default: one card on address 1 with a default :class:`FluxLockedLoop`.
        flux_line_mutual: SQUID flux-line mutual inductance, H (flux offset and
            test signal currents -> flux).
        squid_response: V-Phi characteristic for a SQUID bias current, A.
        preamp_gain: output gain in tune mode.
        host: address to bind.
        port: TCP port (0: any free one).
        name: shown in logs.
    """

    model = "PFL-102"

    def __init__(
        self,
        channels: Mapping[int, FluxLockedLoop] | None = None,
        *,
        flux_line_mutual: float = PHI0 / 20e-6,
        squid_response: Callable[[float], SquidVPhi] = biased_squid,
        preamp_gain: float = 5040.0,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
    ) -> None:
        super().__init__(host, port, name=name, read_termination=b";", write_termination=b"")
        self.loops: dict[int, FluxLockedLoop] = dict(channels or {1: FluxLockedLoop()})
        self.flux_line_mutual = flux_line_mutual
        self.squid_response = squid_response
        self.preamp_gain = preamp_gain
        self.states: dict[int, PFLState] = {ch: PFLState() for ch in self.loops}
        # A write-only link can see millions of frames in a long run: keep the latest only.
        self.malformed = 0
        self.undefined = 0
        self.unaddressed = 0
        self.frames = 0
        for ch in self.loops:
            self._apply(ch, reset_edge=False)

    def state(self, channel: int = 1) -> PFLState:
        """Decoded state of the card at ``channel``."""
        return self.states[channel]

    # ---- protocol --------------------------------------------------------------------------

    def split_commands(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Frames end with ``;``; whitespace between frames is ignored."""
        *complete, rest = buffer.split(b";")
        if len(rest) > 256:  # never a frame: a stream of junk without terminator
            self.malformed += 1
            rest = b""
        return [c.strip() or b"" for c in complete], rest

    def handle(self, command: str) -> str | bytes | None:
        """Decode and apply one frame; the unit never answers."""
        parsed = self._parse(command)
        if parsed is None:
            self.malformed += 1
            log.info("%s: malformed frame %r ignored", self.name, command)
            return None
        channel, opcode, data = parsed
        if opcode == OP_DIGITAL and not defined_word(data):
            self.undefined += 1
            log.info("%s: control word %04X is not defined by the manual; ignored",
                     self.name, data)
            return None
        if channel not in self.states:
            self.unaddressed += 1
            return None
        state = self.states[channel]
        assert state.codes is not None
        if opcode == OP_DIGITAL:
            was_reset = state.reset
            state.word = data
            self._apply(channel, reset_edge=was_reset and not state.reset)
        else:
            state.codes[PARAMETERS[data & 0xF]] = data >> 4
            self._apply(channel, reset_edge=False)
        self.frames += 1
        return None

    @staticmethod
    def _parse(text: str) -> tuple[int, int, int] | None:
        if len(text) != 8:
            return None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return None
        channel, opcode, data = raw[0], raw[1], (raw[2] << 8) | raw[3]
        if not odd_parity_ok(channel, opcode, data):
            return None
        op = opcode & 0x7F
        if op == OP_DIGITAL:
            return channel, op, data
        if op == OP_PARAMETER and (data & 0xF) < len(PARAMETERS):
            return channel, op, data
        return None

    # ---- physics ---------------------------------------------------------------------------

    def _apply(self, channel: int, *, reset_edge: bool) -> None:
        """Push a card's settings into the loop it drives."""
        state = self.states[channel]
        fll = self.loops[channel]
        fll.r_f = state.feedback_resistor
        fll.c_int = state.integrator_capacitor
        squid = self.squid_response(state.value("squid_bias"))
        if state.heater:  # a normal SQUID does not modulate
            squid = SquidVPhi(v0=squid.v0, dv=0.0, phi0=squid.phi0)
        fll.squid = squid
        fll.phi_bias = self.flux_line_mutual * state.value("squid_flux")
        fll.offset = state.value("output_offset")
        fll.preamp_gain = self.preamp_gain
        on_flux = "squid_flux" in state.test_lines
        fll.test_flux_pp = self.flux_line_mutual * TEST_SIGNAL_PP if on_flux else 0.0
        fll.test_frequency = TEST_SIGNAL_HZ
        fll.mode = "locked" if state.mode == "locked" else "tune"
        if state.reset:
            fll.reset_held = True
            fll.v_int = 0.0
        elif fll.reset_held or reset_edge:
            fll.reset_held = False
            fll.reset()
