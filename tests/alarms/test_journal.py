"""The delivery journal on its own, and written by the notifier around real deliveries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from daq.alarms.config import NotificationsConfig, Severity
from daq.alarms.journal import DeliveryJournal, DeliveryStep, JournalEntry
from daq.alarms.notify import DeliveryResult, Notice, Notifier, url_key
from tests.alarms.receivers import HttpReceiver
from tests.procs import free_port

RAISE = [("mxc_warm", 3, "raise")]
KEY = url_key("mailto://night@lab.local")


def _states(journal: DeliveryJournal) -> list[tuple[str, int, str, str, DeliveryStep]]:
    return [(e.alarm, e.occurrence, e.key, e.url_key, e.state) for e in journal.entries()]


def test_a_delivery_is_sending_then_sent_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deliveries.sqlite"
    with DeliveryJournal(path) as journal:
        journal.write(DeliveryStep.SENDING, RAISE, KEY)
        assert _states(journal) == [("mxc_warm", 3, "raise", KEY, DeliveryStep.SENDING)]
        journal.write(DeliveryStep.SENT, RAISE, KEY)
    with DeliveryJournal(path) as again:  # another process would see the same
        [entry] = again.entries()
    assert isinstance(entry, JournalEntry)
    assert (entry.state, entry.key, entry.url_key) == (DeliveryStep.SENT, "raise", KEY)
    assert abs(entry.t - time.time()) < 60


def test_a_sent_delivery_is_never_turned_back_and_a_failed_attempt_leaves_no_row(
        tmp_path: Path) -> None:
    other = url_key("json://127.0.0.1:9/hook")
    with DeliveryJournal(tmp_path / "j.sqlite") as journal:
        journal.write(DeliveryStep.SENDING, RAISE, KEY)
        journal.write(DeliveryStep.SENT, RAISE, KEY)
        # a digest covering the same notice goes out again to the same address
        journal.write(DeliveryStep.SENDING, [*RAISE, ("ls336_link", 1, "raise")], KEY)
        journal.write(DeliveryStep.FAILED, [*RAISE, ("ls336_link", 1, "raise")], KEY)
        journal.write(DeliveryStep.SENDING, RAISE, other)
        journal.write(DeliveryStep.FAILED, RAISE, other)
        assert _states(journal) == [("mxc_warm", 3, "raise", KEY, DeliveryStep.SENT)]


def test_rows_older_than_the_window_are_pruned(tmp_path: Path) -> None:
    with DeliveryJournal(tmp_path / "j.sqlite") as journal:
        journal.write(DeliveryStep.SENT, RAISE, KEY)
        assert journal.prune(time.time() - 3600) == 0
        assert journal.prune(time.time() + 1) == 1
        assert journal.entries() == []


class _Watcher:
    """A plugin that looks at the journal while it is being sent (what a kill would leave)."""

    def __init__(self, journal: DeliveryJournal) -> None:
        self.journal = journal
        self.seen: list[list[tuple[str, int, str, str, DeliveryStep]]] = []

    def notify(self, body: str, title: str = "", notify_type: Any = None, **_: Any) -> bool:
        self.seen.append(_states(self.journal))
        return True


def test_the_notifier_writes_sending_before_the_send_and_sent_before_it_reports(
        tmp_path: Path) -> None:
    journal = DeliveryJournal(tmp_path / "j.sqlite").open()
    watcher = _Watcher(journal)
    url = "json://127.0.0.1:9/hook"
    notifier = Notifier(NotificationsConfig(), make_plugin=lambda _: watcher, journal=journal)
    notifier.start()
    try:
        notifier.submit(Notice("mxc_warm", 3, "raise", Severity.CRITICAL, "t", "b", (url,)))
        result: DeliveryResult = notifier.results.get(timeout=30)
        after_report = _states(journal)
    finally:
        notifier.stop()
        journal.close()
    assert result.ok
    assert watcher.seen == [[("mxc_warm", 3, "raise", url_key(url), DeliveryStep.SENDING)]]
    assert after_report == [("mxc_warm", 3, "raise", url_key(url), DeliveryStep.SENT)]


def test_real_deliveries_are_journalled_and_failed_ones_are_not(tmp_path: Path) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    with HttpReceiver() as http, DeliveryJournal(tmp_path / "j.sqlite") as journal:
        notifier = Notifier(NotificationsConfig(retry_s=5, max_retry_s=5), journal=journal)
        notifier.start()
        try:
            notifier.submit(Notice("a", 1, "raise", Severity.WARNING, "t", "b",
                                   (http.url(), dead)))
            results = [notifier.results.get(timeout=30) for _ in range(2)]
            # an unrecorded notice (a summary of notices already journalled) leaves no row
            notifier.submit(Notice("", 0, "digest", Severity.WARNING, "t", "b", (http.url(),),
                                   record=False))
            assert notifier.results.get(timeout=30).ok
            rows = _states(journal)
        finally:
            notifier.stop()
    assert sorted(r.ok for r in results) == [False, True]
    assert len(http.bodies) == 2
    assert rows == [("a", 1, "raise", url_key(http.url()), DeliveryStep.SENT)]
