"""The newest state of the lab as received: readings, instrument states, publisher liveness.

:class:`LiveState` takes decoded messages (:meth:`LiveState.apply`) and the
receiving thread's liveness reports (:meth:`LiveState.set_liveness`) and
answers what the views ask: the newest :class:`~gui.models.format.Reading`
of a stream, an instrument's :class:`InstrumentStatus`, whether a publisher
went silent, how long ago an instrument's last sample came.

A dead daemon publishes nothing, not even "I am dead": its instruments'
last status still says ``connected``. So liveness comes from the bus's
heartbeats (:meth:`daq.bus.Subscriber.stale_publishers`), and every status
and reading remembers its publisher: when that publisher is silent, the
views grey its values and call its instruments stale within two heartbeat
periods. Qt-free and single-threaded (the GUI thread owns it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from daq.messages import InstrumentState, Kind, Message
from gui.models.format import Reading

#: A stream's staleness threshold is this many of its own observed intervals...
STALE_INTERVALS = 4.0
#: ...but never less than this, nor, before an interval is known, other than the default.
MIN_STALE_S = 10.0
DEFAULT_STALE_S = 30.0


@dataclass(frozen=True, slots=True)
class InstrumentStatus:
    """The newest ``status/<source>/<instrument>`` message.

    Attributes:
        state: connected, stale, reconnecting, error or disconnected (as sent).
        message: the daemon's words.
        t_recv_ns: when it arrived.
        publisher: the daemon that sent it.
        meta: the whole meta (a daemon's status carries its instruments and interlocks).
    """

    state: str
    message: str = ""
    t_recv_ns: int = 0
    publisher: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Arrivals:
    """The running estimate of a stream's arrival interval (seconds)."""

    last_recv_ns: int = 0
    interval_s: float | None = None

    def observe(self, t_recv_ns: int) -> None:
        if self.last_recv_ns:
            dt = (t_recv_ns - self.last_recv_ns) / 1e9
            if dt > 0:
                # A slow follower: one long pause (a scanner's dwell elsewhere) raises it
                # at once, many short intervals lower it gently.
                self.interval_s = dt if self.interval_s is None else (
                    dt if dt > self.interval_s else 0.9 * self.interval_s + 0.1 * dt)
        self.last_recv_ns = t_recv_ns


class LiveState:
    """The newest of everything, as the GUI thread has received it."""

    def __init__(self) -> None:
        self.readings: dict[str, Reading] = {}
        self.statuses: dict[str, InstrumentStatus] = {}
        self._arrivals: dict[str, _Arrivals] = {}
        #: (source, instrument) -> receive time (ns) of its newest sample.
        self.instrument_samples: dict[tuple[str, str], int] = {}
        self.stale_publishers: set[str] = set()
        self.known_publishers: set[str] = set()
        self.bus_connected = False
        self.bus_error = ""
        self.last_message_ns = 0
        self.messages = 0
        #: Streams changed since the last :meth:`take_changes` (``source/channel``).
        self._changed: set[str] = set()

    # ---- input --------------------------------------------------------------------------------

    def apply(self, msg: Message) -> None:
        """Take one decoded message (data and status kinds; others are ignored here)."""
        self.messages += 1
        self.last_message_ns = max(self.last_message_ns, msg.t_recv)
        if msg.pub:
            self.known_publishers.add(msg.pub)
        key = f"{msg.source}/{msg.channel}"
        if msg.kind is Kind.DATA and msg.data is not None and len(msg.data):
            note = msg.meta.get("note", "")
            self.readings[key] = Reading(
                value=float(msg.data["value"][-1]), units=msg.units, quality=msg.quality,
                t_ns=int(msg.data["t"][-1]), t_recv_ns=msg.t_recv,
                note=note if isinstance(note, str) else str(note), publisher=msg.pub)
            self._arrivals.setdefault(key, _Arrivals()).observe(msg.t_recv)
            instrument = msg.meta.get("instrument")
            if isinstance(instrument, str):
                self.instrument_samples[(msg.source, instrument)] = msg.t_recv
            self._changed.add(key)
        elif msg.kind is Kind.STATUS:
            state = msg.meta.get("state", "")
            message = msg.meta.get("message", "")
            self.statuses[key] = InstrumentStatus(
                state=str(state), message=str(message), t_recv_ns=msg.t_recv,
                publisher=msg.pub, meta=dict(msg.meta))
            self._changed.add(key)

    def set_liveness(self, stale: set[str] | frozenset[str], known: set[str] | frozenset[str],
                     *, connected: bool, error: str = "") -> None:
        """The receiving thread's view of the publishers (from heartbeats) and of the broker."""
        self.stale_publishers = set(stale)
        self.known_publishers |= set(known)
        self.bus_connected = connected
        self.bus_error = error

    def take_changes(self) -> set[str]:
        """Streams changed since the last call (and forget them)."""
        changed, self._changed = self._changed, set()
        return changed

    # ---- questions ----------------------------------------------------------------------------

    def reading(self, stream: str) -> Reading | None:
        """The newest reading of ``source/channel``."""
        return self.readings.get(stream)

    def stale_after_s(self, stream: str) -> float:
        """How old a reading of ``stream`` may be before it is greyed."""
        arrivals = self._arrivals.get(stream)
        if arrivals is None or arrivals.interval_s is None:
            return DEFAULT_STALE_S
        return max(MIN_STALE_S, STALE_INTERVALS * arrivals.interval_s)

    def publisher_silent(self, publisher: str) -> bool:
        """Whether ``publisher`` missed its heartbeats (or the bus itself is gone)."""
        if not publisher:
            return False
        return publisher in self.stale_publishers or (
            not self.bus_connected and publisher in self.known_publishers)

    def status(self, instrument: str) -> InstrumentStatus | None:
        """The newest status of ``source/instrument``."""
        return self.statuses.get(instrument)

    def last_sample_age_s(self, instrument: str, now_ns: int) -> float | None:
        """Seconds since the newest sample of ``source/instrument`` arrived (None: none yet)."""
        source, _, name = instrument.partition("/")
        t = self.instrument_samples.get((source, name))
        return None if t is None else max(0.0, (now_ns - t) / 1e9)

    def daemon_statuses(self) -> dict[str, InstrumentStatus]:
        """Every ``status/<daemon>/daemon`` by daemon name."""
        return {key.split("/")[0]: st for key, st in self.statuses.items()
                if key.endswith("/daemon")}

    def service_state(self, publisher: str) -> str:
        """``running``, ``silent`` or ``unknown`` for a service's publisher name."""
        if publisher in self.stale_publishers:
            return "silent"
        return "running" if publisher in self.known_publishers else "unknown"


def effective_state(status: InstrumentStatus | None, publisher_silent: bool) -> str:
    """An instrument's state as the overview shows it: a silent daemon makes it stale."""
    if status is None:
        return "unknown"
    if publisher_silent and status.state != InstrumentState.DISCONNECTED:
        return InstrumentState.STALE.value
    return status.state


def finite_or_nan(value: Any) -> float:
    """``value`` as a float, NaN when it is no finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan
