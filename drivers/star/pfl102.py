"""STAR Cryoelectronics PFL-102 SQUID controllers behind a PCI-100 box.

The PCI-100 passes 9-character ASCII frames ``CCRRDDDD;`` over RS-232
(9600 baud) to up to eight PFL-102 cards: ``CC`` the card address (hex),
``RR`` the opcode (``0x50`` digital control word, ``0x60`` parameter word)
plus the odd-parity bit ``0x80`` when needed, ``DDDD`` 16 data bits in hex.
The exact bit layout is documented in ``simulators/servers/pfl102.py`` and
implemented identically in :mod:`drivers.star.pfl102_frames`:

* digital control word: bit 0 integrator reset, bits 1-2 feedback resistor
  (100 kOhm ``0x0000``, 1 kOhm ``0x0002``, 10 kOhm ``0x0004``), bit 3 feedback
  select (1 = SQUID, 0 = array), bits 4-7 test signal onto SQUID bias /
  array bias / SQUID flux / array flux, bits 8-9 integrator capacitor
  (1.5 nF ``0x0000``, 15 nF ``0x0100``, 150 nF ``0x0200``), bit 10 LOCK,
  bit 11 TUNE (exactly one of the two), bit 12 heater;
* parameter word: ``(code << 4) | select`` with a 12-bit DAC code,
  ``value = full_scale * code / 4095``; select 0 SQUID flux (100 uA),
  1 array flux (200 uA), 2 SQUID bias (2000 uA), 3 array bias (100 uA),
  4 output offset (-9.8 .. +9.8 mV).

The unit never answers and cannot be read back. Each card therefore has a
shadow of what was last *sent* (decoded from the frames themselves, so a
getter returns the DAC-quantised value really in effect), kept by
:class:`~drivers.star.pfl102_state.ShadowStore`. With ``state_file`` (the
daemon passes one: the class sets ``KEEPS_STATE``) the shadow survives a
restart, so the first control word after a restart carries the lock state
the SQUID already has instead of a default that would unlock it. Without
a state file the shadow starts in the safe tune state
(:data:`~drivers.star.pfl102_frames.SAFE_CONTROL`, every DAC code 0);
:meth:`PFL102Channel.write_all` pushes the shadow to the hardware (after a
controller power cycle, or when another program has touched it).

The shadow is never offered to the daemon as a read-back: the control specs
have no getter and there are no poll specs, because nothing here measures
what the card holds.

Interface::

    pfl = PFL102("ASRL/dev/ttyUSB0::INSTR", channels=(1, 2),
                 state_file="state/pfl102.json")   # no I/O, no file access yet
    squid = pfl.ch_1                      # or pfl.channel(1); a SquidController
    squid.bias_current = 25e-6            # A; SettingOutOfRange outside 0..2 mA
    squid.feedback_resistor = FeedbackResistor.R_10K   # or 1e4
    squid.mode = LoopMode.LOCK            # or squid.lock(); "lock" also accepted
    squid.reset_integrator()
    squid.heat(0.2)                       # heater pulse, 10 s cool-down, relock
    pfl.control_specs(); pfl.action_specs()   # names "ch1.bias_current"
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from pymeasure.instruments import Channel, Instrument

from drivers import validators as v
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.errors import InstrumentReplyError, SettingOutOfRange
from drivers.squid.interface import LoopMode, SquidController
from drivers.star.pfl102_frames import (
    CAPACITOR_CODES,
    CONTROL_MAX,
    MODE_CODES,
    PARAMETER_RANGES,
    RESISTOR_CODES,
    STAGE_CODES,
    TEST_CODES,
    ControlBit,
    FeedbackResistor,
    FeedbackStage,
    IntegratorCapacitor,
    Parameter,
    Register,
    SignalInjection,
    build_frame,
    defined_control_word,
    from_code,
    parse_frame,
    to_code,
)
from drivers.star.pfl102_state import CardShadow, ShadowStateError, ShadowStore

__all__ = [
    "ControlBit",
    "FeedbackResistor",
    "FeedbackStage",
    "IntegratorCapacitor",
    "LoopMode",
    "PFL102",
    "PFL102Channel",
    "Parameter",
    "Register",
    "ShadowStateError",
    "SignalInjection",
    "build_frame",
    "parse_frame",
]

#: Heater on-time :meth:`PFL102Channel.heat` accepts, s: at least one heater refresh;
#: at most 10 s, so that a typing error cannot dump heat into the cold stage for minutes.
HEAT_MIN_S = 0.1
HEAT_MAX_S = 10.0
#: The flux-removal procedure transcribed from the SCC manual (section 6.5) repeats
#: the heater word every 0.1 s while heating ...
HEATER_REFRESH_S = 0.1
#: ... and waits 10 s with the heater off before the settings are restored and the
#: loop relocks: the SQUID must be superconducting again, or it traps flux anew.
COOL_DOWN_S = 10.0
#: Longest cool-down :meth:`PFL102Channel.heat` accepts, s.
COOL_DOWN_MAX_S = 600.0


# ---- property factories ----------------------------------------------------------------------


def _dac_property(select: Parameter, docs: str, unit: str) -> v.CheckedProperty:
    """A validated DAC parameter: set writes a parameter word, get reads the shadow."""
    low, high = PARAMETER_RANGES[select]

    def word(value: float) -> str:
        return f"{(to_code(value, low, high) << 4) | select:04X}"

    setter = v.setting(
        f"{Register.PARAMETER:02X}%s",
        docs,
        validator=v.in_range,
        values=(low, high),
        unit=unit,
        set_process=word,
    )

    def fget(self: PFL102Channel) -> float:
        return from_code(self._shadow.codes[select], low, high)

    return v.CheckedProperty(
        property(fget, setter.inner.fset),
        validator=setter.validator,
        values=setter.values,
        unit=unit,
        doc=docs,
    )


def _field_property(
    mask: int, codes: Mapping[Any, int], docs: str, unit: str = ""
) -> v.CheckedProperty:
    """A validated field of the digital control word, merged into the shadow word on set."""

    def fget(self: PFL102Channel) -> Any:
        field = self.control_word & mask
        for member, code in codes.items():
            if code == field:
                return member
        raise InstrumentReplyError(
            instrument=v.instrument_name(self),
            command="control word",
            reply=f"{self.control_word:04X}",
            why=f"no setting has field code {field:04X}",
        )

    def fset(self: PFL102Channel, value: Any) -> None:
        # The anonymous refusal of in_set is named by CheckedProperty.__set__.
        member = v.in_set(value, codes)
        self.write_control((self.control_word & ~mask) | codes[member])

    return v.CheckedProperty(
        property(fget, fset), validator=v.in_set, values=codes, unit=unit, doc=docs
    )


class PFL102Channel(Channel, SquidController[FeedbackResistor, IntegratorCapacitor]):
    """One PFL-102 card (one SQUID + array amplifier channel) on the PCI-100.

    Created by :class:`PFL102`; the channel id is the card address 1..8.
    Writes only; every getter returns the shadow of the last frame sent.
    """

    channel_label = "channel"
    READS_BACK = False

    # ---- the shadow --------------------------------------------------------------------------

    @property
    def _shadow(self) -> CardShadow:
        store: ShadowStore = self.parent.shadow
        return store.card(int(self.id))

    @property
    def control_word(self) -> int:
        """Get the digital control word last sent to this card (the shadow; nothing is sent)."""
        return self._shadow.control_word

    @property
    def codes(self) -> dict[Parameter, int]:
        """Get a copy of the DAC codes last sent to this card (the shadow; nothing is sent)."""
        return dict(self._shadow.codes)

    # ---- transport: "RRDDDD" in, a full frame with address and parity out ------------------

    def write(self, command: str, **kwargs: Any) -> None:
        """Send one register write and record it in the (persisted) shadow.

        Args:
            command: opcode and data as six hex digits, ``"RRDDDD"``
                (what the properties produce); the card address and the
                parity bit are added here.
            **kwargs: passed to the adapter.

        Raises:
            ShadowStateError: the state file cannot be used; nothing was sent.
        """
        register = Register(int(command[:2], 16))
        data = int(command[2:6], 16)
        store: ShadowStore = self.parent.shadow
        store.card(int(self.id))  # a broken state file stops us before anything is sent
        self.parent.write(build_frame(int(self.id), register, data), **kwargs)
        store.record(int(self.id), register, data)

    def write_control(self, word: int) -> None:
        """Write a whole digital control word (the unit replaces all bits at once).

        Args:
            word: the 16-bit word; bits 13-15 must be 0, and only the manual's
                codes are accepted (:func:`defined_control_word`).

        Raises:
            SettingOutOfRange: a word outside the manual's codes; nothing is sent.
        """
        name = v.instrument_name(self)
        v.require_in_range(word, 0, CONTROL_MAX, instrument=name, command="control word",
                           integer=True)
        if not defined_control_word(word):
            raise SettingOutOfRange(
                instrument=name, command="control word", value=f"{word:#06x}",
                allowed="reserved bits 0, resistor and capacitor codes of the manual, "
                        "exactly one of LOCK (0x0400) and TUNE (0x0800)",
            )
        self.write(f"{Register.DIGITAL_CONTROL:02X}{word:04X}")

    def _write_code(self, select: Parameter, code: int) -> None:
        self.write(f"{Register.PARAMETER:02X}{(code << 4) | select:04X}")

    # ---- DAC parameters ----------------------------------------------------------------------

    bias_current = _dac_property(
        Parameter.SQUID_BIAS,
        """Control the SQUID bias current in A (0 to 2 mA, 12-bit DAC, shadow readback).""",
        "A",
    )
    flux_offset = _dac_property(
        Parameter.SQUID_FLUX,
        """Control the SQUID flux-offset current in A (0 to 100 uA, shadow readback).""",
        "A",
    )
    array_bias = _dac_property(
        Parameter.ARRAY_BIAS,
        """Control the array (second stage) bias current in A (0 to 100 uA, shadow readback).""",
        "A",
    )
    array_flux = _dac_property(
        Parameter.ARRAY_FLUX,
        """Control the array flux-offset current in A (0 to 200 uA, shadow readback).""",
        "A",
    )
    output_offset = _dac_property(
        Parameter.OUTPUT_OFFSET,
        """Control the output offset in V (-9.8 mV to +9.8 mV, shadow readback).""",
        "V",
    )

    # ---- digital control word fields ---------------------------------------------------------

    feedback_resistor = _field_property(
        int(ControlBit.FEEDBACK_RESISTOR),
        RESISTOR_CODES,
        """Control the feedback resistor (:class:`FeedbackResistor`, or ohms: 1e3, 1e4, 1e5).""",
        "Ohm",
    )
    integrator_capacitor = _field_property(
        int(ControlBit.INTEGRATOR_CAPACITOR),
        CAPACITOR_CODES,
        """Control the integrator capacitor (:class:`IntegratorCapacitor`, or farads).""",
        "F",
    )
    mode = _field_property(
        int(ControlBit.LOCK | ControlBit.TUNE),
        MODE_CODES,
        """Control the loop mode (:class:`LoopMode`: ``idle``, ``tune`` or ``lock``).""",
    )
    feedback_stage = _field_property(
        int(ControlBit.FEEDBACK_SQUID),
        STAGE_CODES,
        """Control which stage the loop locks (:class:`FeedbackStage`: ``squid``/``array``).""",
    )
    test_input = _field_property(
        int(ControlBit.TEST_SIGNAL),
        TEST_CODES,
        """Control where the test signal goes (:class:`SignalInjection`; ``off`` for none).""",
    )
    heater_enabled = _field_property(
        int(ControlBit.HEATER),
        {False: 0, True: int(ControlBit.HEATER)},
        """Control the flux-trap heater (bool); prefer :meth:`heat`, which restores the bias.""",
    )

    # ---- actions -------------------------------------------------------------------------------

    def reset_integrator(self) -> None:
        """Short the integrator, then release it so the loop relocks at the present flux."""
        word = self.control_word & ~ControlBit.RESET
        self.write_control(word | ControlBit.RESET)
        self.write_control(word)

    def heat(
        self,
        duration_s: float = 0.2,
        cool_s: float = COOL_DOWN_S,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Remove trapped flux: heat the SQUID normal, let it cool, restore and relock.

        The procedure of the SCC manual (section 6.5): the SQUID and array
        bias and flux currents are set to zero, the loop is opened (TUNE) and
        the heater switched on, its word repeated every
        :data:`HEATER_REFRESH_S`; then the heater goes off and the card waits
        ``cool_s`` (at least the documented :data:`COOL_DOWN_S`) before the
        four currents are restored and the previous control word is written
        with an integrator reset, which relocks a loop that was locked.
        Should a write fail on the way, the heater is still switched off
        and the currents stay at zero.

        Args:
            duration_s: heater on-time, 0.1 to 10 s.
            cool_s: wait after the heater is off, 10 to 600 s.
            sleep: how to wait (tests pass a recorder).
        """
        name = v.instrument_name(self)
        duration = v.require_in_range(duration_s, HEAT_MIN_S, HEAT_MAX_S, instrument=name,
                                      command="heat duration_s", unit="s")
        cool = v.require_in_range(cool_s, COOL_DOWN_S, COOL_DOWN_MAX_S, instrument=name,
                                  command="heat cool_s", unit="s")
        saved_word = self.control_word & ~(ControlBit.RESET | ControlBit.HEATER)
        saved_codes = self.codes
        zeroed = (Parameter.SQUID_BIAS, Parameter.ARRAY_BIAS, Parameter.SQUID_FLUX,
                  Parameter.ARRAY_FLUX)
        for select in zeroed:
            self._write_code(select, 0)
        # Loop open while the SQUID is normal: a locked integrator would run into a rail.
        kept = saved_word & (ControlBit.FEEDBACK_RESISTOR | ControlBit.INTEGRATOR_CAPACITOR
                             | ControlBit.FEEDBACK_SQUID)
        open_word = kept | ControlBit.TUNE
        try:
            refreshes = max(1, math.ceil(duration / HEATER_REFRESH_S - 1e-9))
            for _ in range(refreshes):
                self.write_control(open_word | ControlBit.HEATER)
                sleep(duration / refreshes)
        finally:
            self.write_control(open_word)
        sleep(cool)
        for select in zeroed:
            self._write_code(select, saved_codes[select])
        self.write_control(saved_word | ControlBit.RESET)
        self.write_control(saved_word)

    def write_all(self) -> None:
        """Send the whole shadow state (control word and all five parameters).

        Use after a power cycle of the electronics, or to make sure the
        hardware matches what this driver reports.
        """
        self.write_control(self.control_word)
        codes = self.codes
        for select in Parameter:
            self._write_code(select, codes[select])

    # ---- validation for the daemon -----------------------------------------------------------

    def check_setting(self, name: str, value: Any) -> Any:
        """Validate ``value`` for setting ``name`` without sending anything.

        Args:
            name: a property of this channel, e.g. ``"bias_current"``.
            value: the candidate value.

        Returns:
            The value as it will be set.

        Raises:
            SettingOutOfRange: the value is refused.
        """
        return v.validate_setting(self, name, value)

    def allowed(self, name: str) -> str:
        """Describe what setting ``name`` accepts, with its unit.

        Args:
            name: a property of this channel.

        Returns:
            e.g. ``"0 to 0.002 A"``.
        """
        return v.allowed_text(self, name)

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings: the common SQUID ones plus array bias/flux and test input.

        None has a getter: the card cannot be read back, and the shadow is not a
        measurement (a set-and-verify would only compare the driver with itself).

        Returns:
            The control specs, names without channel prefix.
        """
        extras = {"array_bias": "A", "array_flux": "A", "feedback_stage": "", "test_input": ""}
        return super().control_specs() + [
            ControlSpec(
                name=name,
                unit=unit,
                set=self._setter(name),
                validate=partial(self.check_setting, name),
                get=self._read_back(name),
                allowed=self.allowed(name),
            )
            for name, unit in extras.items()
        ]

    def action_specs(self) -> list[ActionSpec]:
        """Describe the actions: the common SQUID ones (``heat`` with ``cool_s``) and ``write_all``.

        Returns:
            The action specs.
        """
        common = [spec for spec in super().action_specs() if spec.name != "heat"]
        return common + [
            ActionSpec("heat", self.heat, "flux-trap removal: heater pulse, cool-down, relock",
                       ("duration_s", "cool_s")),
            ActionSpec("write_all", self.write_all, "send the whole shadow state again"),
        ]


class PFL102(Instrument):
    """The PCI-100 serial link and the PFL-102 cards behind it.

    Args:
        adapter: VISA resource string or PyMeasure adapter.
        name: instrument name used in messages.
        channels: card addresses (1..8) fitted in this PCI-100; each becomes
            ``self.ch_<n>`` and ``self.channels[n]``.
        state_file: JSON file that keeps the shadow across restarts (read on
            first use, rewritten after every frame); None keeps it in memory.
        **kwargs: passed to the VISA adapter (e.g. ``visa_library="@py"``).
    """

    #: The daemon gives drivers that say so a ``state_file`` in its state directory.
    KEEPS_STATE = True

    def __init__(
        self,
        adapter: Any,
        name: str = "PFL-102",
        channels: Sequence[int] = (1,),
        state_file: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("write_termination", "")
        kwargs.setdefault("asrl", {"baud_rate": 9600})
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        addresses = [
            v.require_in_range(c, 1, 8, instrument=name, command="channels", integer=True)
            for c in channels
        ]
        self.shadow = ShadowStore(state_file, addresses)
        for address in addresses:
            self.add_child(PFL102Channel, address, collection="channels", prefix="ch_")

    def channel(self, address: int) -> PFL102Channel:
        """Return the card at ``address``.

        Args:
            address: card address 1..8 given at construction.

        Returns:
            The channel.

        Raises:
            SettingOutOfRange: no such card was configured.
        """
        cards: dict[int, PFL102Channel] = getattr(self, "channels", {})
        v.require_in_set(address, list(cards), instrument=self.name, command="channel")
        return cards[address]

    def _cards(self) -> Iterable[PFL102Channel]:
        cards: dict[int, PFL102Channel] = getattr(self, "channels", {})
        return [cards[address] for address in sorted(cards)]

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities: none.

        The cards measure nothing and cannot be read back; publishing the
        shadow as data would present the driver's memory as a measurement.

        Returns:
            An empty list.
        """
        return []

    def control_specs(self) -> list[ControlSpec]:
        """Describe every card's settings, named ``ch<n>.<setting>``.

        Returns:
            The control specs of all cards.
        """
        return [
            ControlSpec(
                f"ch{card.id}.{spec.name}",
                spec.unit,
                spec.set,
                spec.validate,
                spec.get,
                spec.allowed,
            )
            for card in self._cards()
            for spec in card.control_specs()
        ]

    def action_specs(self) -> list[ActionSpec]:
        """Describe every card's actions, named ``ch<n>.<action>``.

        Returns:
            The action specs of all cards.
        """
        return [
            ActionSpec(f"ch{card.id}.{spec.name}", spec.call, spec.doc, spec.params)
            for card in self._cards()
            for spec in card.action_specs()
        ]
