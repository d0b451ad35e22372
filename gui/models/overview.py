"""What the facility overview shows of one refrigerator, decided without Qt.

:func:`fridge_picture` turns a fridge of the config's ``dashboard:`` section
(:class:`daq.dashboard_config.FridgeView`) and the :class:`~gui.models.live.LiveState`
into a :class:`FridgePicture`: every stage warmest first, the pressures,
the flow, the heaters (each a :class:`ValueRow` whose
:class:`~gui.models.format.Shown` already says how to write and colour it),
and each instrument's state with the age of its last sample
(:class:`InstrumentRow`). The widget paints the picture and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from daq.dashboard_config import FridgeView
from daq.messages import InstrumentState
from gui.models.format import Shown, Tone, format_age, show_value, worst
from gui.models.live import LiveState, effective_state

#: The tone each instrument state is shown in.
STATE_TONES = {
    InstrumentState.CONNECTED.value: Tone.GOOD,
    InstrumentState.STALE.value: Tone.STALE,
    InstrumentState.RECONNECTING.value: Tone.WARN,
    InstrumentState.ERROR.value: Tone.ALARM,
    InstrumentState.DISCONNECTED.value: Tone.STALE,
    "unknown": Tone.NONE,
}


@dataclass(frozen=True, slots=True)
class ValueRow:
    """One labelled value: a stage temperature, a pressure, the flow, a heater.

    ``alarm`` is set while an active alarm (a rule of the alarm service, or an
    interlock) concerns the stream: the value is framed in the alarm colour.
    """

    label: str
    stream: str
    shown: Shown
    alarm: bool = False


@dataclass(frozen=True, slots=True)
class InstrumentRow:
    """One instrument's state line.

    Attributes:
        name: the instrument (``ls372``).
        stream: its status stream (``fridge1/ls372``).
        state: connected, stale, reconnecting, error, disconnected or unknown.
        tone: the colour role of the state.
        age: the age of its newest sample in words ("2 s"), "" when none came.
        message: the daemon's words on it.
    """

    name: str
    stream: str
    state: str
    tone: Tone
    age: str
    message: str


@dataclass(frozen=True)
class FridgePicture:
    """One refrigerator as the overview draws it."""

    name: str
    daemon: str | None
    stages: tuple[ValueRow, ...]
    pressures: tuple[ValueRow, ...]
    flow: ValueRow | None
    heaters: tuple[ValueRow, ...]
    instruments: tuple[InstrumentRow, ...]
    #: Who publishes this fridge (its daemon) and whether it is heard: text and tone.
    source: tuple[str, Tone] = ("", Tone.NONE)

    @property
    def rows(self) -> tuple[ValueRow, ...]:
        return (*self.stages, *self.pressures, *([self.flow] if self.flow else []),
                *self.heaters)

    @property
    def tone(self) -> Tone:
        """The worst tone of any value or instrument (the column's frame colour); an active
        alarm on any of its values makes it the alarm colour."""
        if any(r.alarm for r in self.rows):
            return Tone.ALARM
        tones = [r.shown.tone for r in self.rows if r.shown.tone is not Tone.NONE]
        return worst(tones + [i.tone for i in self.instruments] + [self.source[1]])

    def row(self, label: str) -> ValueRow:
        """The stage, pressure, heater or flow row called ``label``."""
        for group in (self.stages, self.pressures, self.heaters):
            for item in group:
                if item.label == label:
                    return item
        if self.flow is not None and self.flow.label == label:
            return self.flow
        raise KeyError(f"{self.name} has no row {label!r}")


def value_row(label: str, stream: str, live: LiveState, now_ns: int,
              alarmed: frozenset[str] | set[str] = frozenset()) -> ValueRow:
    """One row: the newest reading of ``stream`` judged at ``now_ns``."""
    reading = live.reading(stream)
    silent = reading is not None and live.publisher_silent(reading.publisher)
    return ValueRow(label, stream, show_value(reading, now_ns,
                                              stale_after_s=live.stale_after_s(stream),
                                              publisher_silent=silent),
                    alarm=stream in alarmed)


def source_state(publisher: str | None, live: LiveState) -> tuple[str, Tone]:
    """The header line of a fridge: its daemon and whether the bus hears it."""
    if not live.bus_connected:
        return "bus not connected", Tone.ALARM
    if not publisher:
        return "", Tone.NONE
    state = live.service_state(publisher)
    if state == "silent":
        return f"{publisher} SILENT", Tone.WARN
    if state == "unknown":
        return f"{publisher} not heard yet", Tone.NONE
    return f"{publisher} · running", Tone.GOOD


def instrument_row(stream: str, live: LiveState, now_ns: int) -> InstrumentRow:
    """One instrument's line: its state (a silent daemon makes it stale) and sample age."""
    status = live.status(stream)
    silent = status is not None and live.publisher_silent(status.publisher)
    state = effective_state(status, silent)
    age_s = live.last_sample_age_s(stream, now_ns)
    message = "" if status is None else status.message
    if silent and status is not None:
        message = f"{status.publisher} silent (no heartbeat); last said: {status.message}"
    return InstrumentRow(name=stream.split("/", 1)[1], stream=stream, state=state,
                         tone=STATE_TONES.get(state, Tone.WARN),
                         age="" if age_s is None else format_age(age_s), message=message)


def fridge_picture(name: str, view: FridgeView, live: LiveState, now_ns: int, *,
                   publisher: str | None = None,
                   alarmed: frozenset[str] | set[str] = frozenset()) -> FridgePicture:
    """The picture of fridge ``name`` at ``now_ns``.

    Args:
        publisher: the bus name of the fridge's daemon (for the header line).
        alarmed: streams an active alarm concerns (framed in the alarm colour).
    """
    def rows(group: dict[str, str]) -> tuple[ValueRow, ...]:
        return tuple(value_row(label, s, live, now_ns, alarmed) for label, s in group.items())

    return FridgePicture(
        name=name,
        daemon=view.daemon,
        stages=rows(view.stages),
        pressures=rows(view.pressures),
        flow=None if view.flow is None else value_row("Flow", view.flow, live, now_ns, alarmed),
        heaters=rows(view.heaters),
        instruments=tuple(instrument_row(s, live, now_ns) for s in view.instruments),
        source=source_state(publisher, live),
    )
