"""InfiniiVision instrument codes and one analog input channel.

The character parameters as the scope answers them (the short forms of the
programmer's guide), as :class:`~enum.StrEnum` s so that a setting reads
back as the member it was set with, and :class:`ScopeChannel`, one
``:CHANnel<n>`` input. Commands are written in the guide's own long form
(``:CHANnel1:COUPling``), so that what is sent can be compared with the
manual verbatim.
"""

from __future__ import annotations

from enum import StrEnum

from pymeasure.instruments import Channel

from drivers import validators as v

__all__ = [
    "AcquisitionMode",
    "AcquisitionType",
    "Coupling",
    "Impedance",
    "PointsMode",
    "ScopeChannel",
    "TriggerSlope",
    "TriggerSweep",
    "XListType",
    "on_off",
]


class AcquisitionType(StrEnum):
    """``:ACQuire:TYPE``: how samples are made from the ADC's conversions."""

    NORMAL = "NORM"
    AVERAGE = "AVER"
    HIGH_RESOLUTION = "HRES"
    PEAK = "PEAK"


class AcquisitionMode(StrEnum):
    """``:ACQuire:MODE``: one record per trigger (real time) or segmented memory."""

    REAL_TIME = "RTIM"
    SEGMENTED = "SEGM"


class XListType(StrEnum):
    """``:WAVeform:SEGMented:XLISt?``: which X (time) value of every segment."""

    RELATIVE_X_ORIGIN = "RELX"
    ABSOLUTE_X_ORIGIN = "ABSX"
    TIME_TAG = "TTAG"


class TriggerSlope(StrEnum):
    """``:TRIGger:EDGE:SLOPe``."""

    POSITIVE = "POS"
    NEGATIVE = "NEG"
    EITHER = "EITH"
    ALTERNATE = "ALT"


class TriggerSweep(StrEnum):
    """``:TRIGger:SWEep``: wait for a trigger (NORMal) or take untriggered records (AUTO)."""

    NORMAL = "NORM"
    AUTO = "AUTO"


class PointsMode(StrEnum):
    """``:WAVeform:POINts:MODE``: the screen record (NORMal) or the acquisition memory."""

    NORMAL = "NORM"
    MAXIMUM = "MAX"
    RAW = "RAW"


class Coupling(StrEnum):
    """``:CHANnel<n>:COUPling``."""

    AC = "AC"
    DC = "DC"


class Impedance(StrEnum):
    """``:CHANnel<n>:IMPedance``: 1 MOhm or 50 Ohm."""

    ONE_MEGOHM = "ONEM"
    FIFTY_OHM = "FIFT"


def on_off(reply: str) -> bool:
    """A SCPI boolean reply (``1``/``0``, ``ON``/``OFF``) as a bool."""
    return reply.strip().upper() in ("1", "ON", "+1")


class ScopeChannel(Channel):
    """One analog input, ``:CHANnel<n>``."""

    channel_label = "channel"

    display = v.control(
        ":CHANnel{ch}:DISPlay?",
        ":CHANnel{ch}:DISPlay %d",
        """Control whether the channel is displayed / acquired (bool).""",
        validator=v.in_set,
        values={True: 1, False: 0},
        map_values=True,
    )
    scale = v.control(
        ":CHANnel{ch}:SCALe?",
        ":CHANnel{ch}:SCALe %g",
        """Control the vertical scale in V/div (1 mV/div to 5 V/div; 1 V/div into 50 Ohm).""",
        validator=v.in_range,
        values=(1e-3, 5.0),
        unit="V/div",
    )
    offset = v.control(
        ":CHANnel{ch}:OFFSet?",
        ":CHANnel{ch}:OFFSet %g",
        """Control the vertical offset in V (-40 to 40 V; the scope limits it per scale).""",
        validator=v.in_range,
        values=(-40.0, 40.0),
        unit="V",
    )
    coupling = v.control(
        ":CHANnel{ch}:COUPling?",
        ":CHANnel{ch}:COUPling %s",
        """Control the input coupling (:class:`Coupling`: ``AC`` or ``DC``).""",
        validator=v.in_set,
        values=tuple(Coupling),
        cast=str,
        get_process=lambda reply: Coupling(reply.strip()),
    )
    impedance = v.control(
        ":CHANnel{ch}:IMPedance?",
        ":CHANnel{ch}:IMPedance %s",
        """Control the input impedance (:class:`Impedance`: ``ONEM`` 1 MOhm, ``FIFT`` 50 Ohm).""",
        validator=v.in_set,
        values=tuple(Impedance),
        cast=str,
        get_process=lambda reply: Impedance(reply.strip()),
    )
