"""Scanner timing of the Lake Shore Model 372: which channel is read now, and when each is fresh.

The 372 measures one scanner channel at a time. After switching to a
channel it waits ``pause`` seconds (the channel's reading is not updated),
then updates the reading for ``dwell`` seconds, then, with autoscan on,
moves to the next enabled channel (1 → 16, wrapping). A channel that is not
being scanned keeps reporting its last reading. The instrument does not say
when it switched, so :class:`ScanTracker` combines what it is told
(``SCAN?`` observations, the ``INSET`` dwell and pause of each channel) with
the schedule those imply:

* :meth:`ScanTracker.observe` — record the active channel and autoscan as
  read from ``SCAN?``; a change of channel is dated at the time the schedule
  predicts, clamped between the previous observation and now;
* :meth:`ScanTracker.reading_channel` — the channel whose reading is being
  updated now (``None`` during a pause);
* :meth:`ScanTracker.next_fresh` — when the next new reading of a channel is
  due (``now`` while it is being updated, ``None`` if never with the present
  settings);
* :meth:`ScanTracker.is_fresh` / :meth:`ScanTracker.mark_read` — whether a
  channel has produced a new reading since it was last read (what the
  daemon's ``PollSpec.fresh`` asks).

All times are ``clock()`` seconds (``time.monotonic`` by default).
``time_scale`` is instrument seconds per real second: 1 for a real unit, more
for a simulator that runs faster than real time.

Pure logic, no I/O: :class:`drivers.lakeshore.ls372.LakeShore372` feeds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

SCANNER_CHANNELS = tuple(range(1, 17))


@dataclass(frozen=True)
class ChannelTiming:
    """Scan timing of one channel, from ``INSET``.

    Attributes:
        enabled: visited by the autoscan.
        dwell: seconds of readings.
        pause: seconds of settling before the readings.
    """

    enabled: bool
    dwell: float
    pause: float


class ScanTracker:
    """Follows the 372 scanner from ``SCAN?`` observations and the ``INSET`` timings.

    Args:
        clock: monotonic time source in seconds.
        time_scale: instrument seconds per real second (simulators may run faster).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, time_scale: float = 1.0
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale!r}")
        self.clock = clock
        self.time_scale = time_scale
        self.timings: dict[int, ChannelTiming] = {}
        self.active: int | None = None
        self.autoscan = False
        self.switched_at = 0.0
        self.observed_at: float | None = None
        self._measured_until: dict[int, float] = {}
        self._last_read: dict[tuple[int, str], float] = {}

    # ---- configuration -----------------------------------------------------------------

    def set_timing(self, channel: int, enabled: bool, dwell: float, pause: float) -> None:
        """Record a channel's scan settings (from ``INSET?`` or after setting them).

        Args:
            channel: 1–16.
            enabled: visited by the autoscan.
            dwell: dwell time in instrument seconds.
            pause: pause time in instrument seconds.
        """
        self.timings[channel] = ChannelTiming(enabled, float(dwell), float(pause))

    @property
    def configured(self) -> bool:
        """Whether timings are known for all 16 channels."""
        return all(ch in self.timings for ch in SCANNER_CHANNELS)

    def _timing(self, channel: int) -> ChannelTiming:
        # Unknown channels get the instrument's defaults, so predictions stay finite.
        return self.timings.get(channel, ChannelTiming(True, 10.0, 3.0))

    def _settle_s(self, channel: int) -> float:
        return self._timing(channel).pause / self.time_scale

    def _visit_s(self, channel: int) -> float:
        t = self._timing(channel)
        return (t.pause + t.dwell) / self.time_scale

    def scan_order(self, after: int) -> list[int]:
        """The enabled channels the autoscan visits after ``after``, in order.

        Args:
            after: the present channel.

        Returns:
            Enabled channels after ``after``, wrapping, ending with ``after``
            itself (it is visited again even when it is the only one).
        """
        order = [((after - 1 + k) % 16) + 1 for k in range(1, 17)]
        return [ch for ch in order if ch == after or self._timing(ch).enabled]

    # ---- observations ------------------------------------------------------------------

    def observe(self, active: int, autoscan: bool, now: float | None = None) -> None:
        """Record the scanner state read from ``SCAN?``.

        Args:
            active: the active scanner channel.
            autoscan: whether autoscan is on.
            now: observation time (default ``clock()``).
        """
        now = self.clock() if now is None else now
        self._advance_measured(now)
        if self.active is None:
            self.switched_at = now
        elif active != self.active:
            previous, was_autoscan = self.active, self.autoscan
            start = self.observed_at if self.observed_at is not None else now
            if was_autoscan:
                predicted = self.switched_at + self._visit_s(previous)
                when = min(max(predicted, start), now)
                # Channels strictly between were visited completely while we did not look.
                order = self.scan_order(previous)
                if active in order:
                    for ch in order[: order.index(active)]:
                        self._measured_until[ch] = max(self._measured_until.get(ch, 0.0), when)
            else:
                when = now  # changed by a command: pause restarts now
            settle = self.switched_at + self._settle_s(previous)
            if when > settle:
                prior = self._measured_until.get(previous, 0.0)
                self._measured_until[previous] = max(prior, when)
            self.switched_at = when
        self.active = active
        self.autoscan = bool(autoscan)
        self.observed_at = now
        self._advance_measured(now)

    def switched(self, active: int, autoscan: bool, now: float | None = None) -> None:
        """Record a ``SCAN`` command just sent: the pause of ``active`` starts now.

        Args:
            active: the channel selected.
            autoscan: the autoscan setting sent.
            now: time of the command (default ``clock()``).
        """
        now = self.clock() if now is None else now
        self._advance_measured(now)
        if self.active is not None and active != self.active:
            settle = self.switched_at + self._settle_s(self.active)
            if now > settle:
                prior = self._measured_until.get(self.active, 0.0)
                self._measured_until[self.active] = max(prior, now)
        self.active = active
        self.autoscan = bool(autoscan)
        self.switched_at = now
        self.observed_at = now

    def _dwell_end(self) -> float:
        if self.active is None:
            return 0.0
        if not self.autoscan:
            return float("inf")
        return self.switched_at + self._visit_s(self.active)

    def _advance_measured(self, now: float) -> None:
        if self.active is None:
            return
        settle = self.switched_at + self._settle_s(self.active)
        if now >= settle:
            until = min(now, self._dwell_end())
            self._measured_until[self.active] = max(
                self._measured_until.get(self.active, 0.0), until
            )

    # ---- questions ---------------------------------------------------------------------

    def reading_channel(self, now: float | None = None) -> int | None:
        """The channel whose reading is being updated now, per the last observation.

        Args:
            now: time (default ``clock()``).

        Returns:
            The channel, or ``None`` during a pause or before any observation.
        """
        now = self.clock() if now is None else now
        if self.active is None:
            return None
        settle = self.switched_at + self._settle_s(self.active)
        return self.active if settle <= now <= self._dwell_end() else None

    def next_fresh(self, channel: int, now: float | None = None) -> float | None:
        """When the next new reading of ``channel`` is due.

        Args:
            channel: 1–16.
            now: time (default ``clock()``).

        Returns:
            ``now`` if the channel is being updated, the predicted clock time of
            its next update otherwise, ``None`` if it will not be scanned
            (autoscan off and another channel selected, or the channel disabled).
        """
        now = self.clock() if now is None else now
        if self.active is None:
            return None
        if channel == self.active:
            settle = self.switched_at + self._settle_s(channel)
            if now < settle:
                return settle
            if now <= self._dwell_end():
                return now
        if not self.autoscan or not self._timing(channel).enabled:
            return None
        # Walk the predicted schedule from the end of the present visit.
        t, current = self._dwell_end(), self.active
        for _ in range(64):
            nxt = self.scan_order(current)[0]
            settle, end = t + self._settle_s(nxt), t + self._visit_s(nxt)
            if nxt == channel:
                if now <= settle:
                    return settle
                if now <= end:
                    return now
            t, current = end, nxt
        return None

    def measured_until(self, channel: int, now: float | None = None) -> float | None:
        """The latest time at which ``channel``'s reading is known to have been updated.

        Args:
            channel: 1–16.
            now: time (default ``clock()``).

        Returns:
            Clock time, or ``None`` if never seen updated.
        """
        now = self.clock() if now is None else now
        self._advance_measured(now)
        return self._measured_until.get(channel)

    def is_fresh(self, channel: int, now: float | None = None, key: str = "") -> bool:
        """Whether ``channel`` has a reading newer than its last :meth:`mark_read`.

        A channel never read is fresh (its held reading is worth one read).

        Args:
            channel: 1–16.
            now: time (default ``clock()``).
            key: which reading (kelvin and ohms are read, and marked, separately).

        Returns:
            True when a read would return a new value.
        """
        now = self.clock() if now is None else now
        last = self._last_read.get((channel, key))
        if last is None:
            return True
        until = self.measured_until(channel, now)
        return until is not None and until > last

    def mark_read(self, channel: int, now: float | None = None, key: str = "") -> None:
        """Record that ``channel`` was just read.

        Args:
            channel: 1–16.
            now: time of the read (default ``clock()``).
            key: which reading (see :meth:`is_fresh`).
        """
        self._last_read[(channel, key)] = self.clock() if now is None else now
