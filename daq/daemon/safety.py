"""Limits and interlocks: plain decisions, no I/O, so they are testable alone.

:class:`Limits` checks a requested value against the config's bounds for its
target before the request is queued to a worker (the driver's own strict
validators run after, still before anything is sent).

:class:`Interlocks` watches samples and staleness and says which actions to
take: each interlock trips once when its condition becomes true and re-arms
when the condition clears, so a heater switched off is not switched off
again every poll. A flagged reading (over-range, open sensor) counts as no
reading: the interlock is blind and trips as on staleness. The daemon
enforces a trip's action by setting and reading back until it holds (an operator may deliberately switch it back on after
acknowledging, and it trips again on the next crossing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daq.daemon.config import InterlockConfig, LimitConfig
from daq.errors import NotPermitted
from daq.messages import describe_quality, is_bad


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is not a number a float can hold."""
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:  # a 401-digit integer: no instrument takes that
            return None
    return None


class Limits:
    """The config's limits per target (``source/name``)."""

    def __init__(self, limits: Mapping[str, LimitConfig]) -> None:
        self._limits = dict(limits)

    def describe(self, target: str) -> str:
        """Human-readable bounds of ``target`` (empty when unlimited)."""
        limit = self._limits.get(target)
        if limit is None:
            return ""
        parts = []
        if limit.allowed is not None:
            parts.append("one of " + ", ".join(repr(a) for a in limit.allowed))
        if limit.min is not None or limit.max is not None:
            low = "-inf" if limit.min is None else f"{limit.min:g}"
            high = "+inf" if limit.max is None else f"{limit.max:g}"
            parts.append(f"{low} to {high} {limit.unit}".rstrip())
        return "; ".join(parts)

    def check(self, target: str, value: Any) -> None:
        """Raise :class:`NotPermitted` naming target, value and allowed range when out of limits."""
        limit = self._limits.get(target)
        if limit is None:
            return
        unit = f" {limit.unit}" if limit.unit else ""
        if limit.allowed is not None and value not in limit.allowed:
            raise NotPermitted(
                f"{target}: value {value!r}{unit} refused by the lab's limits; "
                f"allowed: {self.describe(target)}"
            )
        if limit.min is None and limit.max is None:
            return
        number = _number(value)
        if number is None or math.isnan(number):
            raise NotPermitted(f"{target}: value {value!r} is not a number; "
                               f"allowed: {self.describe(target)}")
        if (limit.min is not None and number < limit.min) or (
            limit.max is not None and number > limit.max
        ):
            raise NotPermitted(
                f"{target}: value {value!r}{unit} is outside the lab's limits; "
                f"allowed: {self.describe(target)}"
            )


@dataclass(frozen=True)
class Trip:
    """An interlock decided to act: set ``target`` to ``value`` because of ``reason``."""

    interlock: str
    target: str
    value: Any
    reason: str


class Interlocks:
    """Evaluates the configured interlocks on samples and on staleness.

    An interlock is bad when its last value is beyond ``above``/``below`` or
    when its stream has had no fresh value for ``stale_s`` (counted from the
    first call when the stream was never seen). It trips on the transition
    from good to bad.
    """

    def __init__(self, interlocks: Sequence[InterlockConfig]) -> None:
        self._config = list(interlocks)
        self._tripped: dict[str, bool] = {i.name: False for i in self._config}
        self._value_bad: dict[str, str | None] = {}
        self._last_seen: dict[str, float] = {}
        self._start: float | None = None
        self._by_stream: dict[str, list[InterlockConfig]] = {}
        for interlock in self._config:
            self._by_stream.setdefault(interlock.stream, []).append(interlock)

    @property
    def streams(self) -> set[str]:
        """The streams (``source/channel``) the interlocks watch."""
        return set(self._by_stream)

    def on_sample(self, stream: str, value: float, now: float, quality: int = 0,
                  note: str = "") -> list[Trip]:
        """A new value of ``stream`` arrived at monotonic time ``now``; return trips.

        A value whose ``quality`` is bad (:func:`daq.messages.is_bad`) blinds
        every interlock on the stream: it trips as it would on staleness,
        whatever the number says (an open thermometer reads 0 K).
        """
        self._last_seen[stream] = now
        trips = []
        for interlock in self._by_stream.get(stream, ()):
            reason = None
            if is_bad(quality):
                reason = (f"{stream} is flagged {describe_quality(quality)}"
                          f"{f' ({note})' if note else ''}: the interlock is blind")
            elif interlock.above is not None and value > interlock.above:
                reason = f"{stream} = {value:g} is above {interlock.above:g}"
            elif interlock.below is not None and value < interlock.below:
                reason = f"{stream} = {value:g} is below {interlock.below:g}"
            self._value_bad[interlock.name] = reason
            trips.extend(self._evaluate(interlock, now))
        return trips

    def on_tick(self, now: float) -> list[Trip]:
        """Re-evaluate every interlock at monotonic time ``now`` (staleness); return trips."""
        trips = []
        for interlock in self._config:
            trips.extend(self._evaluate(interlock, now))
        return trips

    def _evaluate(self, interlock: InterlockConfig, now: float) -> list[Trip]:
        if self._start is None:
            self._start = now
        reason = self._value_bad.get(interlock.name)
        if interlock.stale_s is not None:
            age = now - self._last_seen.get(interlock.stream, self._start)
            if age > interlock.stale_s and reason is None:
                reason = (f"{interlock.stream} has no fresh value for {age:.1f} s "
                          f"(limit {interlock.stale_s:g} s)")
        if reason is None:
            self._tripped[interlock.name] = False
            return []
        if self._tripped[interlock.name]:
            return []
        self._tripped[interlock.name] = True
        return [Trip(interlock.name, interlock.target, interlock.value, reason)]
