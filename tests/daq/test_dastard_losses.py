"""The loss bookkeeping against DASTARD's TRIGGERRATE windows, as plain logic.

A channel's sample clock runs at 1 MHz from T0; frame f is at T0 + f us.
Windows end on whole seconds of that clock, as DASTARD's do.
"""

from __future__ import annotations

import random

from daq.dastard.losses import LossCounter
from daq.dastard.status import TriggerRate

NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # a whole second
PERIOD = 1e-6  # s per frame
FPS = 1_000_000  # frames per second


def t_of(frame: int) -> int:
    return T0 + frame * 1000


def window(k: int, counts: list[int]) -> TriggerRate:
    """DASTARD's k-th window: frames (k-1 s, k s], as HiTime T0 + k s."""
    return TriggerRate(hi_time_ns=T0 + k * NS, duration_ns=NS, counts=tuple(counts))


def feed(counter: LossCounter, arrived: list[tuple[int, int]]) -> None:
    for channel, frame in arrived:
        counter.record(channel, frame, t_of(frame), PERIOD)


def dastard_counts(triggers: list[tuple[int, int]], k: int, channels: int) -> list[int]:
    """What DASTARD counts in window k: frames in ((k-1) FPS, k FPS]."""
    counts = [0] * channels
    for channel, frame in triggers:
        if (k - 1) * FPS < frame <= k * FPS:
            counts[channel] += 1
    return counts


def make_triggers(seconds: int, channels: int, rate: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out = [(c, rng.randrange(1, seconds * FPS)) for c in range(channels)
           for _ in range(rate * seconds)]
    out.sort(key=lambda cf: cf[1])
    return out


def run_windows(counter: LossCounter, triggers: list[tuple[int, int]], arrived: set[int],
                seconds: int, channels: int) -> list:
    """Deliver the arrived triggers (indices into triggers) and every window, in time order."""
    settled = []
    index = 0
    for k in range(1, seconds + 1):
        while index < len(triggers) and triggers[index][1] <= k * FPS + FPS // 2:
            if index in arrived:
                channel, frame = triggers[index]
                counter.record(channel, frame, t_of(frame), PERIOD)
            index += 1
        counter.add_window(window(k, dastard_counts(triggers, k, channels)))
        settled += counter.settle(idle=False)
    return settled


def test_every_lost_record_is_counted_on_its_channel() -> None:
    channels, seconds = 3, 8
    triggers = make_triggers(seconds, channels, rate=50, seed=1)
    lost_index = {i for i in range(len(triggers)) if i % 17 == 5 and triggers[i][0] != 2}
    arrived = set(range(len(triggers))) - lost_index
    counter = LossCounter(arm_margin_s=0.0)
    run_windows(counter, triggers, arrived, seconds, channels)
    totals = counter.totals()
    assert totals.windows > 0
    # the truth over the counted frames, channel by channel
    for channel in range(channels):
        lo, hi = totals.counted_from[channel], totals.counted_to[channel]
        truth = sum(1 for i in lost_index
                    if triggers[i][0] == channel and lo < triggers[i][1] <= hi)
        assert totals.lost[channel] == truth
        expected = sum(1 for c, f in triggers if c == channel and lo < f <= hi)
        assert totals.expected[channel] == expected
        assert totals.received[channel] == expected - truth
    assert totals.lost[2] == 0 and totals.lost[0] > 0 and totals.late == (0, 0, 0)


def test_nothing_lost_means_zero_and_windows_before_the_first_record_do_not_count() -> None:
    triggers = make_triggers(6, 2, rate=30, seed=2)
    counter = LossCounter()
    settled = run_windows(counter, triggers, set(range(len(triggers))), 6, 2)
    # window 1 began before the first record (+0.5 s); from window 2 on everything counts
    assert [w.counted for w in settled] == [False] + [True] * (len(settled) - 1)
    assert len(settled) >= 3
    assert counter.totals().lost == (0, 0)


def primed() -> LossCounter:
    """A counter that has seen a record at the start of window 1: window 2 on is counted."""
    counter = LossCounter(arm_margin_s=0.0)
    feed(counter, [(0, 1)])
    counter.add_window(window(1, [1]))
    return counter


def test_a_window_settles_only_when_a_later_record_proves_it_complete() -> None:
    counter = primed()
    feed(counter, [(0, 1_000_010), (0, 1_999_999)])
    counter.add_window(window(2, [2]))
    assert counter.settle(idle=False) == []
    feed(counter, [(0, 2_999_000)])  # window 1 is complete; window 2 needs HiTime + 1 s
    (first,) = counter.settle(idle=False)
    assert not first.counted
    feed(counter, [(0, 3_000_001)])
    (second,) = counter.settle(idle=False)
    assert second.counted and second.received == (2,) and second.lost == (0,)


def test_an_idle_stream_settles_after_the_timeout() -> None:
    counter = LossCounter(settle_timeout_s=5.0)
    counter.subscribed(T0 - 10 * NS)
    counter.add_window(window(1, [4]), now_s=100.0)
    assert counter.settle(idle=True, now_s=104.0) == []
    assert counter.settle(idle=False, now_s=200.0) == []  # busy: records may still be queued
    (settled,) = counter.settle(idle=True, now_s=105.0)
    # no record ever came although DASTARD triggered: all four are lost
    assert settled.counted and counter.totals().lost == (4,)


def test_a_late_record_is_taken_off_the_losses() -> None:
    counter = primed()
    feed(counter, [(0, 1_500_000)])
    counter.add_window(window(2, [2]))  # DASTARD made 2; one is still on its way
    feed(counter, [(0, 3_500_000)])
    _, second = counter.settle(idle=False)
    assert second.lost == (1,)
    feed(counter, [(0, 1_700_000)])  # the missing one, after its window was settled
    totals = counter.totals()
    assert totals.lost == (0,) and totals.late == (1,) and totals.received == (2,)
    feed(counter, [(0, 700_000)])  # from before counting began: neither late nor lost
    assert counter.totals().late == (1,)


def test_a_repeated_trigger_rate_is_taken_once() -> None:
    counter = LossCounter()
    assert counter.add_window(window(1, [1]))
    assert not counter.add_window(window(1, [1]))  # SendAllStatus repeats the last one
    assert not counter.add_window(window(0, [1]))
    assert counter.waiting == 1


def test_records_of_a_missing_window_get_no_verdict() -> None:
    counter = primed()
    feed(counter, [(0, 1_500_000)])
    counter.add_window(window(2, [1]))
    feed(counter, [(0, 2_500_000), (0, 3_500_000), (0, 5_000_001)])
    # window 3 never arrives
    counter.add_window(window(4, [1]))
    counter.settle(idle=False)
    totals = counter.totals()
    assert totals.lost == (0,) and totals.unaccounted == 1 and totals.windows == 2


def test_frames_that_restart_mark_a_new_run() -> None:
    counter = primed()
    feed(counter, [(0, 1_500_000)])
    counter.add_window(window(2, [1]))
    feed(counter, [(0, 3_100_000)])
    counter.settle(idle=False)
    # a new run: frame 100 again, but 5 s later on the clock
    counter.record(0, 100, T0 + 5 * NS, PERIOD)
    assert counter.totals().late == (0,)
    counter.reset()
    assert counter.totals().lost == (0,)  # totals survive a reset


def test_summaries_without_a_sample_period_measure_it() -> None:
    counter = LossCounter(arm_margin_s=0.0)
    for frame in (1, 400_000, 1_100_000, 1_600_000, 1_800_000, 3_500_000):
        counter.record(0, frame, t_of(frame), 0.0)
    counter.add_window(window(1, [2]))
    counter.add_window(window(2, [3]))
    first, second = counter.settle(idle=False)
    assert second.counted and second.received == (3,) and second.lost == (0,)


def test_a_channel_with_no_record_yet_learns_its_window_later() -> None:
    counter = primed()
    feed(counter, [(0, 1_500_000), (0, 3_500_000)])
    counter.add_window(window(2, [1, 2]))  # channel 1 triggered twice; nothing came
    counter.settle(idle=False)
    assert counter.totals().lost == (0, 2)
    feed(counter, [(1, 1_900_000)])  # one of them, late: still inside window 2
    feed(counter, [(1, 2_200_000)])  # a record of window 3
    totals = counter.totals()
    assert totals.lost == (0, 1) and totals.late == (0, 1)
