"""SRS SIM921 AC resistance bridge (TES R(T), thermometry), as a SIM900 module.

Commands (module language, sent through the mainframe):

==============  ===========================================================
``RVAL?``       resistance, ohms (``+9.9E+37`` over range, see below)
``TVAL?``       temperature from the loaded calibration curve, kelvin (same)
``RANG i``      full-scale range, i = 0 (20 mOhm) .. 9 (20 MOhm), decades of 2
``EXCI i``      excitation voltage, i = 0 (3 uV) .. 8 (30 mV), 1-3 steps
``EXON z``      excitation on (1) / off (0)
``FREQ f``      excitation frequency, 1.95 .. 61.1 Hz
``TCON i``      output filter time constant, i = 0 (0.3 s) .. 6 (300 s), -1 off
``*IDN?``       identification
==============  ===========================================================

Every property here is in SI units (ohms, volts, hertz, seconds); the index
tables live in this module. Interface::

    bridge = frame.module(5, SIM921)
    bridge.range = 2e3                    # ohms full scale -> RANG 5
    bridge.excitation = 100e-6            # volts -> EXCI 3 (1 % match: 1e-4 also works)
    bridge.excitation_enabled = True
    bridge.resistance, bridge.temperature # Readings: the number and the bridge's verdict
    bridge.poll_specs()                   # resistance (Ohm), temperature (K)
    bridge.control_specs()                # range, excitation, excitation_enabled,
                                          # frequency, time_constant

Over range (excitation off, sensor open, resistance above the full-scale
range) the bridge answers the SRS overflow value ``+9.9E+37`` instead of a
number. That is the instrument's verdict, not a broken conversation: the
reading keeps the value it sent, flagged ``OVERRANGE`` with a note, and the
mainframe link (and the SIM928 bias next to it) carries on. Only a reply
that is not a number at all is a reply error.
"""

from __future__ import annotations

from typing import Any

from drivers import validators as v
from drivers.common import ControlSpec, PollSpec
from drivers.readings import Quality, Reading
from drivers.srs.sim900 import SIMModule

__all__ = ["EXCITATIONS_V", "OVERFLOW", "RANGES_OHM", "SIM921", "TIME_CONSTANTS_S"]

#: Full-scale resistance range (ohm) -> ``RANG`` index.
RANGES_OHM: dict[float, int] = {
    20e-3: 0,
    200e-3: 1,
    2.0: 2,
    20.0: 3,
    200.0: 4,
    2e3: 5,
    20e3: 6,
    200e3: 7,
    2e6: 8,
    20e6: 9,
}
#: Excitation voltage (V) -> ``EXCI`` index.
EXCITATIONS_V: dict[float, int] = {
    3e-6: 0,
    10e-6: 1,
    30e-6: 2,
    100e-6: 3,
    300e-6: 4,
    1e-3: 5,
    3e-3: 6,
    10e-3: 7,
    30e-3: 8,
}
#: Output filter time constant (s) -> ``TCON`` index; 0 s switches the filter off.
TIME_CONSTANTS_S: dict[float, int] = {
    0.0: -1,
    0.3: 0,
    1.0: 1,
    3.0: 2,
    10.0: 3,
    30.0: 4,
    100.0: 5,
    300.0: 6,
}
#: What ``RVAL?`` / ``TVAL?`` answer over range (excitation off, sensor open, beyond the range).
OVERFLOW = 9.9e37


def _reading(value: Any) -> Reading:
    """The bridge's answer as a reading: over range is a flag, only a non-number an error."""
    if not isinstance(value, float):
        raise v.bad_reply(value, "expected a number")
    if value >= OVERFLOW * 0.99:
        return Reading(value, Quality.OVERRANGE,
                       note=f"{value:+.1E}: over range (excitation off, sensor open, "
                            "or above the full-scale range)")
    return Reading(value)


#: Excitation frequency limits, Hz.
FREQUENCY_RANGE_HZ = (1.95, 61.1)


class SIM921(SIMModule):
    """SRS SIM921 AC resistance bridge in a SIM900 port."""

    resistance = v.measurement(
        "RVAL?",
        """Measure the resistance in ohms (Reading; over range: the bridge's +9.9E+37 flagged
        OVERRANGE).""",
        unit="Ohm",
        get_process=_reading,
    )

    temperature = v.measurement(
        "TVAL?",
        """Measure the temperature in K from the loaded curve (Reading; over range flagged
        OVERRANGE).""",
        unit="K",
        get_process=_reading,
    )

    range = v.control(
        "RANG?",
        "RANG %d",
        """Control the full-scale resistance range in ohms (20 mOhm to 20 MOhm, decades of 2).""",
        validator=v.in_set,
        values=RANGES_OHM,
        map_values=True,
        unit="Ohm",
    )

    excitation = v.control(
        "EXCI?",
        "EXCI %d",
        """Control the excitation voltage amplitude in V (3 uV to 30 mV in 1-3 steps).""",
        validator=v.in_set,
        values=EXCITATIONS_V,
        map_values=True,
        unit="V",
    )

    excitation_enabled = v.control(
        "EXON?",
        "EXON %d",
        """Control whether the excitation is on (bool).""",
        validator=v.in_set,
        values={True: 1, False: 0},
        map_values=True,
    )

    frequency = v.control(
        "FREQ?",
        "FREQ %.3f",
        """Control the excitation frequency in Hz (1.95 to 61.1 Hz).""",
        validator=v.in_range,
        values=FREQUENCY_RANGE_HZ,
        unit="Hz",
    )

    time_constant = v.control(
        "TCON?",
        "TCON %d",
        """Control the output filter time constant in s (0.3 s to 300 s in 1-3 steps; 0 off).""",
        validator=v.in_set,
        values=TIME_CONSTANTS_S,
        map_values=True,
        unit="s",
    )

    def poll_specs(self) -> list[PollSpec]:
        """Describe the readable quantities.

        Returns:
            ``resistance`` (Ohm) and ``temperature`` (K).
        """
        return [
            PollSpec("resistance", "Ohm", lambda: self.resistance, 1.0, "resistance"),
            PollSpec("temperature", "K", lambda: self.temperature, 1.0, "temperature"),
        ]

    def control_specs(self) -> list[ControlSpec]:
        """Describe the settings.

        Returns:
            ``range`` (Ohm), ``excitation`` (V), ``excitation_enabled``,
            ``frequency`` (Hz) and ``time_constant`` (s).
        """
        return [
            self._control("range", "Ohm"),
            self._control("excitation", "V"),
            self._control("excitation_enabled", ""),
            self._control("frequency", "Hz"),
            self._control("time_constant", "s"),
        ]
