"""Delivery through Apprise to real local servers: e-mail (aiosmtpd) and a JSON web hook
(http.server); a failing address is retried and reported, the others are not repeated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daq.alarms.config import NotificationsConfig, Severity
from daq.alarms.notify import DeliveryResult, Notice, Notifier, redact, url_key
from tests.alarms.receivers import HttpReceiver, SmtpReceiver
from tests.procs import free_port
from tests.waiting import wait_until


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        yield http, smtp


def _results(notifier: Notifier, count: int) -> list[DeliveryResult]:
    got: list[DeliveryResult] = []
    while len(got) < count:
        got.append(notifier.results.get(timeout=30))
    return got


def test_a_notice_reaches_mail_and_web_hook_once_each(
        receivers: tuple[HttpReceiver, SmtpReceiver]) -> None:
    http, smtp = receivers
    notifier = Notifier(NotificationsConfig(retry_s=0.2, max_retry_s=0.5))
    notifier.start()
    try:
        notice = Notice("mxc_warm", 1, "raise", Severity.CRITICAL, "CRITICAL mxc_warm: hot",
                        "fridge1/mxc = 0.04 is above 0.03", (http.url(), smtp.url()))
        notifier.submit(notice)
        results = _results(notifier, 2)
    finally:
        notifier.stop()
    assert all(r.ok for r in results)
    assert {r.url_key for r in results} == {url_key(http.url()), url_key(smtp.url())}
    assert http.bodies == [{"version": "1.0", "title": "CRITICAL mxc_warm: hot",
                            "message": "fridge1/mxc = 0.04 is above 0.03", "attachments": [],
                            "type": "failure"}]
    [mail] = smtp.mails()
    assert mail["to"] == ["night@lab.local"] and mail["subject"] == "CRITICAL mxc_warm: hot"
    assert "above 0.03" in mail["body"]


def test_an_undeliverable_url_is_retried_and_reported_failing_the_others_are_not_repeated(
        receivers: tuple[HttpReceiver, SmtpReceiver]) -> None:
    http, _ = receivers
    dead = f"json://user:secret@127.0.0.1:{free_port()}/nobody"
    notifier = Notifier(NotificationsConfig(retry_s=0.1, max_retry_s=0.2,
                                            alarm_after_failures=3))
    notifier.start()
    try:
        notifier.submit(Notice("a", 1, "raise", Severity.WARNING, "t", "b", (dead, http.url())))
        results = _results(notifier, 4)  # one success, three failures
    finally:
        notifier.stop()
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    assert len(ok) == 1 and len(http.bodies) == 1
    assert [r.attempts for r in failed] == [1, 2, 3]
    assert [r.failing for r in failed] == [False, False, True]
    assert failed[0].url == redact(dead) and "secret" not in failed[0].url
    assert redact(dead) == f"json://127.0.0.1:{dead.rsplit(':', 1)[1].split('/')[0]}"


def test_a_refusing_server_recovers() -> None:
    with HttpReceiver() as http:
        http.fail = True
        notifier = Notifier(NotificationsConfig(retry_s=0.1, max_retry_s=0.1,
                                                alarm_after_failures=2))
        notifier.start()
        try:
            notifier.submit(Notice("a", 1, "raise", Severity.INFO, "t", "b", (http.url(),)))
            first, second = _results(notifier, 2)
            assert not first.ok and second.failing
            http.fail = False
            third = _results(notifier, 1)[0]
        finally:
            notifier.stop()
        assert third.ok and third.attempts == 3
        wait_until(lambda: len(http.bodies) == 1, "one delivery")
