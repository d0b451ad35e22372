"""Counting the records DASTARD triggered that never reached the bridge, per channel.

DASTARD numbers nothing per record. The trigger frame index in each header
is its sample clock: it grows by one per sample whether a pulse came or
not, so a channel's consecutive frame indices are separated by whatever
time passed between its pulses, and a jump in them is not a loss (and a
data drop at the source skips frames without any record being lost). The
publisher's sockets keep a send high-water mark of 10 messages
(``startSocket`` in ``publish_data.go``): a subscriber that falls behind
loses records without any sign in the records that do arrive.

What DASTARD does count is its own primary triggers. Its ``TriggerBroker``
(``group_trigger.go``) counts, per channel index, the primary triggers
whose trigger frame lies in ``[lo, hi]``, where ``hi`` is the frame at a
whole second of DASTARD's clock (``HiTime``) and ``lo`` is one past the
previous window's ``hi``; every second it publishes these counts as
``TRIGGERRATE`` on the status port. The method here rebuilds the same
windows from the records that arrived and compares:

1. Every primary record (or, in summaries-only mode, every summary) is
   filed under its channel by its trigger frame index.
2. A ``TRIGGERRATE`` window is turned into each channel's ``hi`` frame
   with DASTARD's own formula, ``hi = key_frame + round((HiTime -
   key_time) / sample_period)``, where (key_frame, key_time) is the trigger
   frame and time of the latest record of that channel (DASTARD derives both
   from the same data block, so the mapping agrees to the sample).
3. The window is settled once no record of it can still be on its way:
   when a record (any channel) stamped later than ``HiTime`` plus
   ``margin`` has arrived, since DASTARD publishes records in the order of
   its data blocks and sends ``TRIGGERRATE`` only after it has queued every
   record of the window; or, when the receive queue is empty, after
   ``settle_timeout_s`` (a DASTARD with no pulses at all).
4. For each channel, ``lost += CountsSeen - records filed with frame <= hi``.
5. A record that arrives after its window was settled (a receive stall
   longer than the settle rules allow for) was counted as lost: it is
   counted as ``late`` and taken off ``lost``, so the totals stay exact.

A missing ``TRIGGERRATE`` (a hole between consecutive windows) leaves the
records of the hole without a verdict: they are counted as ``unaccounted``.
Windows that began before the first record arrived (plus ``arm_margin``:
records of one DASTARD data block are queued channel by channel) are
settled without counting: the subscription was not yet in place for them.
If no record arrives at all, counting begins ``subscribe_margin`` after the
socket was subscribed (by the local clock), so that a stream lost entirely
is reported as lost.
A new run (``reset``, or a channel whose records jump back in frame but
forward in time) starts the bookkeeping afresh; the totals are kept.

Caveats: in summaries-only mode the count runs on summaries, and DASTARD
also sends a summary for each secondary (group-trigger) record, which
``TRIGGERRATE`` does not count: with group triggering on, losses read low
(``lost`` may go negative). Windows are matched by frame, so DASTARD's own
counting is reproduced exactly as long as its clock mapping is linear
within a window.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass

from daq.dastard.status import TriggerRate

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SettledWindow:
    """One ``TRIGGERRATE`` window after all its records were accounted for.

    Attributes:
        hi_time_ns: the end of the window (DASTARD's ``HiTime``).
        duration_ns: its length.
        counted: False for a window from before the bridge was receiving.
        expected: DASTARD's trigger count per channel index.
        received: records of the window that arrived, per channel index.
        lost: cumulative lost records per channel index after this window.
    """

    hi_time_ns: int
    duration_ns: int
    counted: bool
    expected: tuple[int, ...]
    received: tuple[int, ...]
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LossTotals:
    """Cumulative counts per channel index since the bridge started.

    Attributes:
        expected: DASTARD's trigger counts over the counted windows.
        received: records of the counted windows that arrived.
        lost: expected minus received (late arrivals taken off).
        late: records that arrived after their window was settled.
        windows: counted windows settled.
        counted_from: per channel, the last frame before counting began
            (exclusive lower bound; -1 when not known).
        counted_to: per channel, the ``hi`` frame of the last counted window (-1: none).
        unaccounted: records filed in windows whose ``TRIGGERRATE`` never
            arrived (no verdict is possible on them).
    """

    expected: tuple[int, ...]
    received: tuple[int, ...]
    lost: tuple[int, ...]
    late: tuple[int, ...]
    windows: int
    counted_from: tuple[int, ...]
    counted_to: tuple[int, ...]
    unaccounted: int = 0

    @property
    def total_lost(self) -> int:
        """Lost records of all channels."""
        return sum(self.lost)


@dataclass(slots=True)
class _Pending:
    rate: TriggerRate
    received_at: float


_NEVER = -(2**62)


class LossCounter:
    """Per-channel loss bookkeeping against DASTARD's ``TRIGGERRATE`` windows.

    :meth:`record` is the per-record fast path and :meth:`settle` the
    periodic one; both belong to the one thread that receives the counted
    stream. :meth:`totals` may be called from any thread.

    Args:
        margin_s: a window settles when a record later than its end plus
            this has arrived (at least one window duration is used).
        settle_timeout_s: a window also settles this long after its
            ``TRIGGERRATE`` arrived if the receive queue is empty.
        arm_margin_s: windows starting less than this after the first
            record are not counted.
        subscribe_margin_s: with no record at all, windows starting at least
            this long after :meth:`subscribed` are counted (all of them lost).
    """

    def __init__(self, *, margin_s: float = 1.0, settle_timeout_s: float = 10.0,
                 arm_margin_s: float = 0.5, subscribe_margin_s: float = 3.0) -> None:
        self.margin_ns = round(margin_s * NS)
        self.settle_timeout_s = settle_timeout_s
        self.arm_margin_ns = round(arm_margin_s * NS)
        self.subscribe_margin_ns = round(subscribe_margin_s * NS)
        self._lock = threading.Lock()
        self._windows: deque[_Pending] = deque()
        self._first_ns: int | None = None
        self._latest_ns = _NEVER
        self._counted_windows = 0
        # per channel index
        self._pending: list[list[int]] = []  # frames of arrived, not yet settled records
        self._pending_ns: list[list[int]] = []  # their trigger times
        self._last_hi_ns = _NEVER
        self._last_added_ns = _NEVER
        self._unaccounted = 0
        self._ref: list[tuple[int, int, float] | None] = []
        self._settled_hi: list[int] = []
        self._settled_hi_ns: list[int] = []
        self._counted_from: list[int] = []
        self._counted_to: list[int] = []
        self._arm_hi_ns = _NEVER  # where counting began (the end of the last uncounted window)
        self._counting = False
        self._subscribed_ns: int | None = None
        self._hi_unknown: set[int] = set()
        self._expected: list[int] = []
        self._received: list[int] = []
        self._lost: list[int] = []
        self._late: list[int] = []

    # ---- fast path ---------------------------------------------------------------------------

    def record(self, channel: int, frame: int, trigger_ns: int, period_s: float) -> None:
        """File one arrived record (or summary) of ``channel``.

        Args:
            channel: DASTARD's channel index.
            frame: the trigger frame index.
            trigger_ns: the trigger time.
            period_s: the sample period; 0 when unknown (summaries before
                STATUS): it is then measured from the channel's records.
        """
        try:
            frames = self._pending[channel]
        except IndexError:
            self._grow(channel + 1)
            frames = self._pending[channel]
        if period_s <= 0.0:
            period_s = self._measured_period(channel, frame, trigger_ns)
        self._ref[channel] = (frame, trigger_ns, period_s)
        if trigger_ns > self._latest_ns:
            self._latest_ns = trigger_ns
            if self._first_ns is None:
                self._first_ns = trigger_ns
        if self._hi_unknown and channel in self._hi_unknown:
            self._learn_hi(channel, frame, trigger_ns, period_s)
        if frame > self._settled_hi[channel]:
            frames.append(frame)
            self._pending_ns[channel].append(trigger_ns)
        else:
            self._after_settled(channel, frame, trigger_ns, period_s)

    def subscribed(self, now_ns: int) -> None:
        """The counted stream's socket is connected and subscribed as of ``now_ns`` (wall clock).

        Lets windows be counted even if no record ever arrives (every record
        lost); the first record, when one comes, is the better reference.
        """
        self._subscribed_ns = now_ns

    # ---- windows -----------------------------------------------------------------------------

    def add_window(self, rate: TriggerRate, now_s: float | None = None) -> bool:
        """Queue one ``TRIGGERRATE`` window (settled later by :meth:`settle`).

        Returns False (and ignores it) for a window that does not end after
        the last one queued: DASTARD repeats its last TRIGGERRATE on
        ``SendAllStatus``.
        """
        if rate.hi_time_ns <= self._last_added_ns:
            return False
        self._last_added_ns = rate.hi_time_ns
        self._windows.append(_Pending(rate, time.monotonic() if now_s is None else now_s))
        return True

    @property
    def waiting(self) -> int:
        """Windows received but not yet settled."""
        return len(self._windows)

    def settle(self, *, idle: bool, now_s: float | None = None) -> list[SettledWindow]:
        """Settle every window that can be; return them in order.

        Args:
            idle: the receive queue is empty (the timeout rule may apply).
            now_s: monotonic time (default: now).
        """
        now = time.monotonic() if now_s is None else now_s
        done: list[SettledWindow] = []
        while self._windows:
            head = self._windows[0]
            rate = head.rate
            margin = max(self.margin_ns, rate.duration_ns)
            ready = self._latest_ns > rate.hi_time_ns + margin or (
                idle and now - head.received_at >= self.settle_timeout_s)
            if not ready:
                break
            self._windows.popleft()
            done.append(self._settle_one(rate))
        return done

    def reset(self) -> None:
        """A new DASTARD run: forget frames, references and windows; keep the totals."""
        with self._lock:
            self._windows.clear()
            self._first_ns = None
            self._latest_ns = _NEVER
            self._arm_hi_ns = _NEVER
            self._counting = False
            self._hi_unknown.clear()
            n = len(self._pending)
            self._pending = [[] for _ in range(n)]
            self._pending_ns = [[] for _ in range(n)]
            self._last_hi_ns = _NEVER
            self._last_added_ns = _NEVER
            self._ref = [None] * n
            self._settled_hi = [-1] * n
            self._settled_hi_ns = [_NEVER] * n
            self._counted_from = [-1] * n

    def totals(self) -> LossTotals:
        """A snapshot of the cumulative counts (any thread)."""
        with self._lock:
            return LossTotals(tuple(self._expected), tuple(self._received), tuple(self._lost),
                              tuple(self._late), self._counted_windows,
                              tuple(self._counted_from), tuple(self._counted_to),
                              self._unaccounted)

    # ---- internals ---------------------------------------------------------------------------

    def _grow(self, n: int) -> None:
        with self._lock:
            while len(self._pending) < n:
                self._pending.append([])
                self._pending_ns.append([])
                self._ref.append(None)
                self._settled_hi.append(-1)
                self._settled_hi_ns.append(_NEVER)
                self._counted_from.append(-1)
                self._counted_to.append(-1)
                self._expected.append(0)
                self._received.append(0)
                self._lost.append(0)
                self._late.append(0)

    def _measured_period(self, channel: int, frame: int, trigger_ns: int) -> float:
        """The sample period from this record and the channel's previous one (0: not yet)."""
        ref = self._ref[channel]
        if ref is None:
            return 0.0
        if ref[2] > 0.0:
            return ref[2]
        if frame == ref[0]:
            return 0.0
        return (trigger_ns - ref[1]) / (frame - ref[0]) / NS

    def _hi_frame(self, channel: int, hi_ns: int) -> int | None:
        """The frame at ``hi_ns`` on the channel's clock, from its record nearest in time.

        DASTARD maps time to frame with the data block at hand; the record
        nearest to the window's end comes from that block or one next to it,
        so clock drift between the host and the sample clock does not enter.
        """
        ref = self._ref[channel]
        if ref is None or ref[2] <= 0.0:
            return None
        frames, times = self._pending[channel], self._pending_ns[channel]
        if times:
            i = bisect_right(times, hi_ns)
            j = i - 1 if i == len(times) or (i > 0 and hi_ns - times[i - 1] <= times[i] - hi_ns) \
                else i
            frame, t_ns = frames[j], times[j]
        else:
            frame, t_ns = ref[0], ref[1]
        return frame + round((hi_ns - t_ns) / (ref[2] * NS))

    def _arm_ns(self) -> int | None:
        """The earliest window start that is counted, or None while nothing says so."""
        if self._first_ns is not None:
            return self._first_ns + self.arm_margin_ns
        if self._subscribed_ns is not None:
            return self._subscribed_ns + self.subscribe_margin_ns
        return None

    def _settle_one(self, rate: TriggerRate) -> SettledWindow:
        first_counted = False
        if not self._counting:
            arm = self._arm_ns()
            if arm is not None and rate.lo_time_ns >= arm:
                self._counting = first_counted = True
                if self._arm_hi_ns == _NEVER:
                    self._arm_hi_ns = rate.lo_time_ns
            else:
                self._arm_hi_ns = rate.hi_time_ns
        counted = self._counting
        n = max(len(rate.counts), len(self._pending))
        if n > len(self._pending):
            self._grow(n)
        # DASTARD's windows are contiguous; a hole means TRIGGERRATE messages went missing.
        gap = self._last_hi_ns != _NEVER and rate.lo_time_ns > self._last_hi_ns + NS // 1000
        self._last_hi_ns = rate.hi_time_ns
        received = [0] * len(rate.counts)
        with self._lock:
            for ch in range(n):
                frames = self._pending[ch]
                if (gap or first_counted) and frames:
                    # Records from before the window with no window of their own: from a
                    # window whose TRIGGERRATE never came (no verdict possible), or from
                    # before counting began.
                    lo = self._hi_frame(ch, rate.lo_time_ns)
                    if lo is not None:
                        skipped = bisect_right(frames, lo)
                        del frames[:skipped], self._pending_ns[ch][:skipped]
                        if not first_counted:
                            self._unaccounted += skipped
                        if first_counted:
                            self._counted_from[ch] = lo
                hi = self._hi_frame(ch, rate.hi_time_ns)
                if hi is None:
                    got = 0
                    self._hi_unknown.add(ch)
                else:
                    got = bisect_right(frames, hi)
                    del frames[:got], self._pending_ns[ch][:got]
                    self._settled_hi[ch] = hi
                self._settled_hi_ns[ch] = rate.hi_time_ns
                if not counted and hi is not None:
                    self._counted_from[ch] = hi
                if ch >= len(rate.counts):
                    continue  # a channel DASTARD did not count (its list changed): no verdict
                received[ch] = got
                if counted:
                    self._expected[ch] += rate.counts[ch]
                    self._received[ch] += got
                    self._lost[ch] += rate.counts[ch] - got
                    if hi is not None:
                        self._counted_to[ch] = hi
            if counted:
                self._counted_windows += 1
            lost = tuple(self._lost[: len(rate.counts)])
        return SettledWindow(rate.hi_time_ns, rate.duration_ns, counted, rate.counts,
                             tuple(received), lost)

    def _learn_hi(self, channel: int, frame: int, trigger_ns: int, period_s: float) -> None:
        """A channel's first record after windows were settled without its frame mapping."""
        if period_s <= 0.0:
            return  # not yet measurable (summaries before STATUS): the next record tries again
        self._hi_unknown.discard(channel)
        hi = frame + round((self._settled_hi_ns[channel] - trigger_ns) / (period_s * NS))
        self._settled_hi[channel] = hi
        if self._counted_from[channel] < 0 and self._arm_hi_ns != _NEVER:
            self._counted_from[channel] = frame + round(
                (self._arm_hi_ns - trigger_ns) / (period_s * NS))

    def _after_settled(self, channel: int, frame: int, trigger_ns: int, period_s: float) -> None:
        if trigger_ns > self._settled_hi_ns[channel] + round(period_s * NS):
            # Behind in frame but ahead in time: DASTARD started a new run (frames restart).
            with self._lock:
                self._settled_hi[channel] = -1
                self._settled_hi_ns[channel] = _NEVER
                self._pending[channel] = [frame]
                self._pending_ns[channel] = [trigger_ns]
            return
        if trigger_ns <= self._arm_hi_ns:
            return  # from before counting began: never counted, so not late either
        with self._lock:
            self._late[channel] += 1
            self._lost[channel] -= 1
            self._received[channel] += 1
