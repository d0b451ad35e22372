"""Sequence bookkeeping on its own: gaps, tails, restarts, duplicates."""

from daq.bus.gaps import Gap, GapTracker


def test_gaps_are_counted_with_their_ranges() -> None:
    tracker = GapTracker()
    for seq in (0, 1, 2, 5, 6, 9):
        tracker.observe("data/a/b", 1, seq)
    assert tracker.missed == 4 and tracker.received == 6
    assert tracker.gaps == [Gap("data/a/b", 1, 3, 4), Gap("data/a/b", 1, 7, 8)]


def test_tail_losses_are_counted_from_heartbeats() -> None:
    tracker = GapTracker()
    tracker.observe("s", 1, 0)
    assert tracker.observe_tail("s", 1, 3) == 3
    assert tracker.observe_tail("s", 1, 3) == 0  # the next heartbeat says the same
    assert tracker.gaps == [Gap("s", 1, 1, 3)]


def test_a_new_epoch_is_a_restart_not_a_gap() -> None:
    tracker = GapTracker()
    tracker.observe("s", 1, 0)
    tracker.observe("s", 1, 500)
    tracker.observe("s", 2, 0)
    assert tracker.restarts == 1
    assert tracker.missed == 499  # the session before the restart keeps its count
    assert tracker.observe("s", 2, 2) == 1
    assert tracker.missed == 500


def test_duplicates_and_late_joins_are_not_gaps() -> None:
    tracker = GapTracker()
    assert tracker.observe("s", 7, 1000) == 0  # joined late
    assert tracker.observe("s", 7, 1000) == 0
    assert tracker.duplicates == 1 and tracker.missed == 0


def _msg(seq: int, epoch: int = 1):  # type: ignore[no-untyped-def]
    from daq import messages

    msg = messages.scalar("f", "x", float(seq))
    msg.seq, msg.epoch = seq, epoch
    return msg


def test_subscriber_after_snapshot_drops_older_and_counts_only_losses_after_joining() -> None:
    from daq.bus import Subscriber

    sub = Subscriber("tcp://127.0.0.1:9")  # never receives: the bookkeeping is under test
    try:
        # A snapshot newer than where the subscription began: older live values are dropped.
        sub._snapshot_seqs["data/f/x"] = (1, 10)
        sub.gaps.observe("data/f/x", 1, 10)
        assert sub._account(_msg(9)) is None and sub._account(_msg(10)) is None
        assert sub._account(_msg(11)) is not None
        assert sub._account(_msg(13)) is not None
        assert sub.gaps.missed == 1  # seq 12, lost after joining
        # A lagging snapshot (older than the first live value): superseded history, not loss.
        sub._snapshot_seqs["data/f/y"] = (1, 3)
        sub.gaps.observe("data/f/y", 1, 3)
        late = _msg(8)
        late.channel = "y"
        assert sub._account(late) is not None
        assert sub.gaps.missed == 1
    finally:
        sub.close()
