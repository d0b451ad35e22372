"""The PFL-102 wire format: frames ``CCRRDDDD;``, register codes and DAC scaling.

The bit layout is the one documented in ``simulators/servers/pfl102.py``
(after the vendor's SCC manual, section 6.5); the driver in
:mod:`drivers.star.pfl102` builds every frame with the helpers here. Only
the documented codes exist here: the loop mode is either LOCK or TUNE
(never both, never neither), the feedback resistor and the integrator
capacitor each have three codes.

Interface: :func:`build_frame` / :func:`parse_frame` (with odd parity),
:func:`to_code` / :func:`from_code` (12-bit DAC scaling), the instrument
codes :class:`Register`, :class:`Parameter`, :class:`ControlBit`, the
settings :class:`FeedbackResistor` (ohms), :class:`IntegratorCapacitor`
(farads), :class:`FeedbackStage`, :class:`SignalInjection`, and the tables
mapping settings to control-word codes (``RESISTOR_CODES`` ...) and
parameters to physical ranges (``PARAMETER_RANGES``).
"""

from __future__ import annotations

from enum import Enum, IntEnum, IntFlag, StrEnum

from drivers.errors import InstrumentReplyError
from drivers.squid.interface import LoopMode

__all__ = [
    "CAPACITOR_CODES",
    "CONTROL_MAX",
    "DAC_MAX",
    "MODE_CODES",
    "PARAMETER_RANGES",
    "RESISTOR_CODES",
    "SAFE_CONTROL",
    "STAGE_CODES",
    "TEST_CODES",
    "ControlBit",
    "FeedbackResistor",
    "FeedbackStage",
    "IntegratorCapacitor",
    "Parameter",
    "Register",
    "SignalInjection",
    "build_frame",
    "defined_control_word",
    "from_code",
    "parse_frame",
    "to_code",
]

DAC_MAX = 0xFFF
#: Bits 13-15 of the control word are reserved (0).
CONTROL_MAX = 0x1FFF
#: Tune, 100 kOhm, 1.5 nF, no reset, heater and test signal off: the state a
#: controlling program puts a card in before tuning (the shadow's starting point).
SAFE_CONTROL = 0x0800


class Register(IntEnum):
    """Opcodes of the two PFL-102 registers (without the parity bit)."""

    DIGITAL_CONTROL = 0x50
    PARAMETER = 0x60


class Parameter(IntEnum):
    """Select codes (low nibble) of the parameter word."""

    SQUID_FLUX = 0x0
    ARRAY_FLUX = 0x1
    SQUID_BIAS = 0x2
    ARRAY_BIAS = 0x3
    OUTPUT_OFFSET = 0x4


class ControlBit(IntFlag):
    """Single-bit fields and field masks of the digital control word."""

    RESET = 0x0001
    FEEDBACK_RESISTOR = 0x0006
    FEEDBACK_SQUID = 0x0008
    TEST_SQUID_BIAS = 0x0010
    TEST_ARRAY_BIAS = 0x0020
    TEST_SQUID_FLUX = 0x0040
    TEST_ARRAY_FLUX = 0x0080
    TEST_SIGNAL = 0x00F0
    INTEGRATOR_CAPACITOR = 0x0300
    LOCK = 0x0400
    TUNE = 0x0800
    HEATER = 0x1000


class FeedbackResistor(float, Enum):
    """Feedback resistors of the PFL-102; the value is in ohms."""

    R_1K = 1e3
    R_10K = 1e4
    R_100K = 1e5


class IntegratorCapacitor(float, Enum):
    """Integrator capacitors of the PFL-102; the value is in farads."""

    C_1N5 = 1.5e-9
    C_15N = 15e-9
    C_150N = 150e-9


class FeedbackStage(StrEnum):
    """Which stage the feedback loop closes around (control-word bit 3)."""

    SQUID = "squid"
    ARRAY = "array"


class SignalInjection(StrEnum):
    """Where the test signal is injected (control-word bits 4-7); ``off`` for none."""

    OFF = "off"
    SQUID_BIAS = "squid_bias"
    ARRAY_BIAS = "array_bias"
    SQUID_FLUX = "squid_flux"
    ARRAY_FLUX = "array_flux"


RESISTOR_CODES: dict[FeedbackResistor, int] = {
    FeedbackResistor.R_100K: 0x0000,
    FeedbackResistor.R_1K: 0x0002,
    FeedbackResistor.R_10K: 0x0004,
}
CAPACITOR_CODES: dict[IntegratorCapacitor, int] = {
    IntegratorCapacitor.C_1N5: 0x0000,
    IntegratorCapacitor.C_15N: 0x0100,
    IntegratorCapacitor.C_150N: 0x0200,
}
# The PFL-102 has no documented "idle": one of LOCK (integrator drives the feedback)
# and TUNE (amplifier to the output) is always set.
MODE_CODES: dict[LoopMode, int] = {
    LoopMode.LOCK: ControlBit.LOCK,
    LoopMode.TUNE: ControlBit.TUNE,
}
STAGE_CODES: dict[FeedbackStage, int] = {
    FeedbackStage.ARRAY: 0x0000,
    FeedbackStage.SQUID: ControlBit.FEEDBACK_SQUID,
}
TEST_CODES: dict[SignalInjection, int] = {
    SignalInjection.OFF: 0x0000,
    SignalInjection.SQUID_BIAS: ControlBit.TEST_SQUID_BIAS,
    SignalInjection.ARRAY_BIAS: ControlBit.TEST_ARRAY_BIAS,
    SignalInjection.SQUID_FLUX: ControlBit.TEST_SQUID_FLUX,
    SignalInjection.ARRAY_FLUX: ControlBit.TEST_ARRAY_FLUX,
}

#: (low, high) physical range of each DAC parameter, SI units; code 0 is ``low``.
PARAMETER_RANGES: dict[Parameter, tuple[float, float]] = {
    Parameter.SQUID_FLUX: (0.0, 100e-6),
    Parameter.ARRAY_FLUX: (0.0, 200e-6),
    Parameter.SQUID_BIAS: (0.0, 2000e-6),
    Parameter.ARRAY_BIAS: (0.0, 100e-6),
    Parameter.OUTPUT_OFFSET: (-9.8e-3, 9.8e-3),
}


# ---- frames ----------------------------------------------------------------------------------


def _ones(value: int) -> int:
    return bin(value).count("1")


def defined_control_word(word: int) -> bool:
    """Whether every field of a digital control word has a code the manual defines.

    Args:
        word: the 16-bit word.

    Returns:
        True for reserved bits 0, a defined resistor and capacitor code and
        exactly one of LOCK and TUNE.
    """
    return (
        0 <= word <= CONTROL_MAX
        and word & ControlBit.FEEDBACK_RESISTOR in RESISTOR_CODES.values()
        and word & ControlBit.INTEGRATOR_CAPACITOR in CAPACITOR_CODES.values()
        and bool(word & ControlBit.LOCK) != bool(word & ControlBit.TUNE)
    )


def build_frame(channel: int, register: Register, data: int) -> str:
    """Build one ``CCRRDDDD;`` frame with odd parity.

    Args:
        channel: card address 1..8.
        register: the opcode without parity.
        data: the 16-bit data word.

    Returns:
        The frame, upper-case hex, e.g. ``"01D00800;"``.
    """
    opcode = int(register)
    if (_ones(channel) + _ones(opcode) + _ones(data)) % 2 == 0:
        opcode |= 0x80
    return f"{channel:02X}{opcode:02X}{data:04X};"


def parse_frame(frame: str) -> tuple[int, Register, int]:
    """Decode a frame built by :func:`build_frame` (the inverse, with checks).

    Args:
        frame: ``CCRRDDDD;`` (the ``;`` may be missing).

    Returns:
        ``(channel, register, data)``.

    Raises:
        InstrumentReplyError: the frame is malformed or has even parity.
    """
    text = frame.strip().rstrip(";")
    try:
        if len(text) != 8:
            raise ValueError("a frame has 8 hex digits")
        channel, opcode, data = int(text[:2], 16), int(text[2:4], 16), int(text[4:], 16)
        if (_ones(channel) + _ones(opcode) + _ones(data)) % 2 == 0:
            raise ValueError("even parity")
        register = Register(opcode & 0x7F)
    except ValueError as exc:
        raise InstrumentReplyError(
            instrument="PFL-102", command="frame", reply=frame, why=str(exc)
        ) from None
    return channel, register, data


def to_code(value: float, low: float, high: float) -> int:
    """Scale a physical value to the nearest 12-bit DAC code.

    Args:
        value: the value (already validated to lie within ``low .. high``).
        low: value at code 0.
        high: value at code 0xFFF.

    Returns:
        The code 0..4095.
    """
    return max(0, min(DAC_MAX, round((value - low) / (high - low) * DAC_MAX)))


def from_code(code: int, low: float, high: float) -> float:
    """Convert a 12-bit DAC code back to the physical value.

    Args:
        code: 0..4095.
        low: value at code 0.
        high: value at code 0xFFF.

    Returns:
        The value the DAC produces.
    """
    return low + (high - low) * code / DAC_MAX
