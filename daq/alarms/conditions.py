"""Conditions: plain logic that says, from samples and instrument states, whether something holds.

A :class:`Condition` is built from a :class:`daq.alarms.config.ConditionConfig`
by :func:`build`. The engine feeds it every sample of the streams it reads
(:meth:`Condition.on_sample`) and every state of the instruments it watches
(:meth:`Condition.on_status`), and asks :meth:`Condition.evaluate` at each
tick for a :class:`Verdict`: whether it holds, why, and the value behind it.
No I/O, no clocks of their own: time is given (seconds since the epoch), so
the whole module is testable with made-up times.

Semantics worth knowing:

* threshold: holds above ``above`` (below ``below``); once holding, it lets go
  only ``deadband`` below (above) the limit, so a noisy reading near the limit
  does not chatter. A flagged reading (:func:`daq.messages.is_bad`) is no reading:
  it changes nothing (the bad-quality condition is what reports it).
* rate: the least-squares slope of the good samples of the last ``window_s``,
  in units per ``per``; it needs at least three samples spanning half the window.
* stale: no sample for ``stale_s`` (or ``stale_periods`` x the period, given or
  learned from the stream's own arrivals); a stream never seen counts from the
  first evaluation.
* quality: the newest sample is flagged bad; the reason names the flags and
  the instrument's own note.
* status: the instrument's newest status is one of ``status_in``.
* all / any: of the items; an item that cannot tell yet counts as not holding.
"""

from __future__ import annotations

import abc
import statistics
from collections import deque
from dataclasses import dataclass

from daq.alarms.config import PER_SECONDS, ConditionConfig
from daq.messages import describe_quality, is_bad

#: Without period_s, a stale_periods condition learns the period from this many arrivals.
LEARN_INTERVALS = 8
#: A stream never seen, whose period cannot be learned, is stale after this many seconds
#: times stale_periods.
DEFAULT_PERIOD_S = 10.0


@dataclass(frozen=True)
class Sample:
    """One scalar sample as the conditions see it.

    Attributes:
        stream: ``source/channel``.
        t: source time, s since the epoch.
        t_recv: when it arrived here, s since the epoch (staleness counts from it).
        value: the reading.
        quality: the instrument's flags (0: good).
        note: the instrument's own words on a flagged reading.
    """

    stream: str
    t: float
    t_recv: float
    value: float
    quality: int = 0
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a condition says now.

    Attributes:
        holds: True or False; None when it cannot tell yet (no data).
        reason: why, in words a person on call understands.
        value: the number behind it, when there is one.
    """

    holds: bool | None
    reason: str = ""
    value: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.holds)


class Condition(abc.ABC):
    """One condition's state (see the module docstring)."""

    def __init__(self, config: ConditionConfig) -> None:
        self.config = config

    @property
    def streams(self) -> set[str]:
        return self.config.streams()

    @property
    def instruments(self) -> set[str]:
        return self.config.instruments()

    def on_sample(self, sample: Sample) -> None:  # noqa: B027 - most conditions need none
        """A new sample of one of :attr:`streams`."""

    def on_status(self, instrument: str, state: str, message: str) -> None:  # noqa: B027
        """A new status of one of :attr:`instruments`."""

    @abc.abstractmethod
    def evaluate(self, now: float) -> Verdict:
        """The verdict at time ``now`` (s since the epoch)."""


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class Threshold(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.value: float | None = None
        self.holding = False

    def on_sample(self, sample: Sample) -> None:
        if is_bad(sample.quality):
            return
        cfg = self.config
        self.value = sample.value
        if cfg.above is not None:
            limit = cfg.above if not self.holding else cfg.above - cfg.deadband
            self.holding = sample.value > limit
        elif cfg.below is not None:
            limit = cfg.below if not self.holding else cfg.below + cfg.deadband
            self.holding = sample.value < limit

    def evaluate(self, now: float) -> Verdict:
        cfg = self.config
        if self.value is None:
            return Verdict(None, f"{cfg.stream}: no reading yet")
        side, limit = ("above", cfg.above) if cfg.above is not None else ("below", cfg.below)
        assert limit is not None
        if self.holding:
            return Verdict(True, f"{cfg.stream} = {_fmt(self.value)} is {side} {_fmt(limit)}",
                           self.value)
        return Verdict(False, f"{cfg.stream} = {_fmt(self.value)}", self.value)


class Rate(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.points: deque[tuple[float, float]] = deque()

    def on_sample(self, sample: Sample) -> None:
        if is_bad(sample.quality):
            return
        if self.points and sample.t <= self.points[-1][0]:
            return  # a repeat (snapshot) or out of order: the slope needs increasing times
        self.points.append((sample.t, sample.value))
        self._trim(sample.t)

    def _trim(self, now: float) -> None:
        while self.points and self.points[0][0] < now - self.config.window_s:
            self.points.popleft()

    def slope(self) -> float | None:
        """Least-squares slope in units per second, or None with too few samples."""
        pts = self.points
        if len(pts) < 3 or pts[-1][0] - pts[0][0] < self.config.window_s / 2:
            return None
        t0 = pts[0][0]
        ts = [t - t0 for t, _ in pts]
        vs = [v for _, v in pts]
        mt, mv = statistics.fmean(ts), statistics.fmean(vs)
        var = sum((t - mt) ** 2 for t in ts)
        if var <= 0:
            return None
        return sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / var

    def evaluate(self, now: float) -> Verdict:
        cfg = self.config
        slope = self.slope()
        if slope is None:
            return Verdict(None, f"{cfg.stream}: too few samples for a rate over "
                                 f"{cfg.window_s:g} s")
        rate = slope * PER_SECONDS[cfg.per]
        unit = f"/{cfg.per}"
        words = f"{cfg.stream} changes {rate:+.3g}{unit} over {cfg.window_s:g} s"
        if cfg.rate_above is not None and rate > cfg.rate_above:
            return Verdict(True, f"{words} (limit {cfg.rate_above:+g}{unit})", rate)
        if cfg.rate_below is not None and rate < cfg.rate_below:
            return Verdict(True, f"{words} (limit {cfg.rate_below:+g}{unit})", rate)
        return Verdict(False, words, rate)


class Stale(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.last: float | None = None
        self.first_eval: float | None = None
        self.intervals: deque[float] = deque(maxlen=LEARN_INTERVALS)

    def on_sample(self, sample: Sample) -> None:
        # Arrival time, except for a sample older than its arrival (a snapshot of a stream
        # that stopped long ago): then its own time, so an old value does not look fresh.
        seen = min(sample.t_recv, sample.t) if sample.t > 0 else sample.t_recv
        if self.last is not None and seen > self.last:
            self.intervals.append(seen - self.last)
        if self.last is None or seen > self.last:
            self.last = seen

    def limit_s(self) -> float:
        """How long without a sample is stale."""
        cfg = self.config
        if cfg.stale_s is not None:
            return cfg.stale_s
        assert cfg.stale_periods is not None
        if cfg.period_s is not None:
            period = cfg.period_s
        elif len(self.intervals) >= 2:
            period = statistics.median(self.intervals)
        else:
            period = DEFAULT_PERIOD_S
        return cfg.stale_periods * period

    def evaluate(self, now: float) -> Verdict:
        if self.first_eval is None:
            self.first_eval = now
        limit = self.limit_s()
        since = self.last if self.last is not None else self.first_eval
        age = now - since
        what = "no sample" if self.last is None else "no new sample"
        if age > limit:
            return Verdict(True, f"{self.config.stream}: {what} for {age:.1f} s "
                                 f"(limit {limit:.3g} s)", age)
        return Verdict(False, f"{self.config.stream}: last sample {age:.1f} s ago", age)


class BadQuality(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.quality: int | None = None
        self.note = ""
        self.value: float | None = None

    def on_sample(self, sample: Sample) -> None:
        self.quality, self.note, self.value = sample.quality, sample.note, sample.value

    def evaluate(self, now: float) -> Verdict:
        stream = self.config.stream
        if self.quality is None:
            return Verdict(None, f"{stream}: no reading yet")
        if is_bad(self.quality):
            note = f" ({self.note})" if self.note else ""
            return Verdict(True, f"{stream} is flagged {describe_quality(self.quality)}{note}",
                           self.value)
        return Verdict(False, f"{stream} reads ok", self.value)


class Status(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.state: str | None = None
        self.message = ""

    def on_status(self, instrument: str, state: str, message: str) -> None:
        self.state, self.message = state, message

    def evaluate(self, now: float) -> Verdict:
        inst = self.config.instrument
        if self.state is None:
            return Verdict(None, f"{inst}: no status yet")
        states = {s.value for s in self.config.status_in}
        text = f"{inst} is {self.state}" + (f": {self.message}" if self.message else "")
        return Verdict(self.state in states, text)


class Combination(Condition):
    def __init__(self, config: ConditionConfig) -> None:
        super().__init__(config)
        self.every = config.all is not None
        self.items = [build(item) for item in (config.all or config.any or [])]

    def on_sample(self, sample: Sample) -> None:
        for item in self.items:
            if sample.stream in item.streams:
                item.on_sample(sample)

    def on_status(self, instrument: str, state: str, message: str) -> None:
        for item in self.items:
            if instrument in item.instruments:
                item.on_status(instrument, state, message)

    def evaluate(self, now: float) -> Verdict:
        verdicts = [item.evaluate(now) for item in self.items]
        if self.every:
            holds = all(v.active for v in verdicts)
            shown = verdicts if holds else [v for v in verdicts if not v.active]
            return Verdict(holds, " and ".join(v.reason for v in shown))
        holding = [v for v in verdicts if v.active]
        if holding:
            return Verdict(True, "; ".join(v.reason for v in holding))
        return Verdict(False, "; ".join(v.reason for v in verdicts))


def build(config: ConditionConfig) -> Condition:
    """The condition object for ``config``."""
    kinds: dict[str, type[Condition]] = {
        "threshold": Threshold, "rate": Rate, "stale": Stale, "quality": BadQuality,
        "status": Status, "all": Combination, "any": Combination,
    }
    return kinds[config.kind](config)
