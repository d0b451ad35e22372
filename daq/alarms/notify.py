"""Notifications: what to tell whom, how often, and delivery through Apprise in its own thread.

Three parts:

* :class:`Notice`: one message for people (title, body, the Apprise URLs it
  goes to), with a key that says which notice of which occurrence it is
  (``raise``, ``escalate1``, ``clear``; ``digest`` and ``flood`` summaries).
* :class:`RateLimiter` (plain logic, used by the engine): per alarm, notices
  closer than ``min_interval_s`` are held and sent as one digest when the
  interval has passed; all notices together at most ``max_per_hour``, the
  rest wait in one digest until the hour allows it. So a flapping sensor
  costs at most ``1 + T / min_interval_s`` notices over ``T`` seconds, however
  often it flaps.
* :class:`Notifier`: a thread that delivers each notice to each of its URLs
  with Apprise (one plugin per URL, so one failing address neither blocks nor
  repeats the others), retries a failed delivery with a doubling delay for as
  long as it takes, and reports every outcome on :attr:`Notifier.results`:
  the engine records deliveries (a restart never repeats them) and raises the
  ``notify_failed`` alarm after ``alarm_after_failures`` failed attempts of a
  URL. Evaluation never waits for it. Around each delivery it writes the
  :class:`daq.alarms.journal.DeliveryJournal` (sending, then sent), so a
  delivery made just before the process died is known at the next start.

URLs carry secrets (passwords, tokens): they are never published or logged
as they are, only as :func:`url_key` (a hash, to recognise a URL) and
:func:`redact` (scheme and host).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from daq.alarms.config import NotificationsConfig, Severity
from daq.alarms.journal import DeliveryJournal, DeliveryStep, Target
from daq.errors import ConfigError
from daq.failpoints import failpoint

log = logging.getLogger(__name__)

#: Deliveries waiting (new or being retried) at most; beyond, the oldest is given up and
#: reported as a failure (so it raises notify_failed: never silently).
MAX_PENDING = 10_000
ONE_HOUR_S = 3600.0


def url_key(url: str) -> str:
    """A short stable id of ``url`` that does not reveal it (stored with deliveries)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def redact(url: str) -> str:
    """``url`` without its secrets: scheme and host only (for logs and alarms)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("://", 1)[0] + "://?"
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class Notice:
    """One message for people.

    Attributes:
        alarm: the alarm id ("" for a summary of several).
        occurrence: the alarm's occurrence it is about (0 for summaries).
        key: ``raise``, ``escalate<N>``, ``clear``, ``digest``, ``flood``.
        severity: picks the Apprise notify type.
        title, body: the text.
        urls: Apprise URLs it goes to.
        record: True when its delivery is stored with the alarm (raise, escalations):
            a restart then never sends it again.
        covers: what a digest or flood summary stands for: (alarm, occurrence, key) of
            the notices it replaces, recorded as delivered with it.
    """

    alarm: str
    occurrence: int
    key: str
    severity: Severity
    title: str
    body: str
    urls: tuple[str, ...]
    record: bool = True
    covers: tuple[Target, ...] = ()

    @property
    def targets(self) -> tuple[Target, ...]:
        """(alarm, occurrence, notice key) whose delivery this notice makes: its own, and
        those a digest or a flood summary stands for."""
        own = ((self.alarm, self.occurrence, self.key),) if self.alarm and self.key not in (
            "digest", "flood") else ()
        return own + self.covers


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one attempt to deliver a notice to one URL.

    Attributes:
        notice: what was sent.
        url_key: which URL (:func:`url_key`).
        url: the URL redacted (:func:`redact`).
        ok: delivered.
        attempts: attempts so far for this notice and URL.
        failing: this URL has failed ``alarm_after_failures`` times in a row.
        error: why it failed.
    """

    notice: Notice
    url_key: str
    url: str
    ok: bool
    attempts: int
    failing: bool = False
    error: str = ""


# ---- rate limiting (plain logic, in the engine's thread) --------------------------------


@dataclass
class _Held:
    since: float
    notices: list[Notice] = field(default_factory=list)


class RateLimiter:
    """Per-alarm interval and a global hourly budget (see the module docstring).

    Args:
        config: the notifications section.
    """

    def __init__(self, config: NotificationsConfig,
                 describe: Callable[[str], str] = lambda alarm: "") -> None:
        self.config = config
        self.describe = describe
        self._last: dict[str, float] = {}
        self._held: dict[str, _Held] = {}
        self._sent: deque[float] = deque()
        self._overflow: list[Notice] = []
        self.held_total = 0

    def offer(self, notice: Notice, now: float) -> list[Notice]:
        """Notices to send now for ``notice`` (none when it is held for a digest)."""
        alarm = notice.alarm
        last = self._last.get(alarm)
        if alarm and last is not None and now - last < self.config.min_interval_s:
            held = self._held.setdefault(alarm, _Held(now))
            held.notices.append(notice)
            self.held_total += 1
            return []
        if not alarm:
            return self._budget([notice], now)
        self._last[alarm] = now
        waiting = self._held.pop(alarm, None)
        if waiting is not None:  # the interval is over with notices held: one digest with it
            return self._budget([self.digest(alarm, [*waiting.notices, notice])], now)
        return self._budget([notice], now)

    def due(self, now: float) -> list[Notice]:
        """Digests whose interval has passed, and held-back notices the budget now allows."""
        out: list[Notice] = []
        for alarm in list(self._held):
            if now - self._last.get(alarm, 0.0) < self.config.min_interval_s:
                continue
            held = self._held.pop(alarm)
            self._last[alarm] = now
            out.append(self.digest(alarm, held.notices))
        return self._release(now) + self._budget(out, now)

    def digest(self, alarm: str, notices: list[Notice]) -> Notice:
        """One notice for several of one alarm: how many of what, and where it stands now."""
        counts: dict[str, int] = {}
        for n in notices:
            counts[n.key] = counts.get(n.key, 0) + 1
        lines = [f"{count}x {key}" for key, count in counts.items()]
        lines += [f"- {n.title}" for n in notices[-5:]]
        first = notices[0]
        worst = max((n.severity for n in notices), key=lambda s: s.rank)
        return Notice(alarm, first.occurrence, "digest", worst,
                      f"{self.config.title_prefix}{alarm}: {len(notices)} changes held back",
                      "Held back by the rate limit (one notice per "
                      f"{self.config.min_interval_s:g} s per alarm):\n" + "\n".join(lines)
                      + f"\n\nNow: {self.describe(alarm)}",
                      tuple(dict.fromkeys(u for n in notices for u in n.urls)),
                      covers=tuple(c for n in notices if n.record for c in n.targets))

    def _budget(self, notices: list[Notice], now: float) -> list[Notice]:
        while self._sent and now - self._sent[0] > ONE_HOUR_S:
            self._sent.popleft()
        out = []
        for notice in notices:
            if len(self._sent) < self.config.max_per_hour:
                self._sent.append(now)
                out.append(notice)
            else:
                self._overflow.append(notice)
                self.held_total += 1
        return out

    def _release(self, now: float) -> list[Notice]:
        """One summary of what the hourly budget held back, once it allows one more."""
        if not self._overflow:
            return []
        while self._sent and now - self._sent[0] > ONE_HOUR_S:
            self._sent.popleft()
        if len(self._sent) >= self.config.max_per_hour:
            return []
        held, self._overflow = self._overflow, []
        self._sent.append(now)
        worst = max((n.severity for n in held), key=lambda s: s.rank)
        lines = [f"- {n.title}" for n in held[:50]]
        if len(held) > 50:
            lines.append(f"- ... and {len(held) - 50} more")
        return [Notice("", 0, "digest", worst,
                       f"{self.config.title_prefix}{len(held)} notices held back",
                       f"More than {self.config.max_per_hour} notices within an hour; these "
                       "were held back:\n" + "\n".join(lines),
                       tuple(dict.fromkeys(u for n in held for u in n.urls)),
                       covers=tuple(c for n in held if n.record for c in n.targets))]


# ---- delivery (its own thread) ----------------------------------------------------------


class Plugin(Protocol):
    """What the notifier needs of an Apprise plugin."""

    def notify(self, body: str, title: str = ..., notify_type: Any = ...,
               **kwargs: Any) -> Any: ...


def apprise_plugin(url: str) -> Plugin:
    """The Apprise plugin for ``url``.

    Raises:
        ValueError: Apprise does not understand the URL.
    """
    import apprise  # imported here: only the alarm service needs it (its import takes a while)

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ValueError(f"Apprise does not understand {redact(url)} (unknown scheme or "
                         "missing parts)")
    return plugin


def check_urls(config: NotificationsConfig, file: str = "",
               path: str = "alarms.notifications") -> None:
    """Every URL of the section parsed by Apprise, at start.

    Raises:
        ConfigError: naming the file, the key path of the URL and the reason.
    """
    for where, url in config.all_urls():
        try:
            apprise_plugin(url)
        except ValueError as exc:
            raise ConfigError(str(exc), file=file, key_path=f"{path}.{where}") from None


_TYPES = {Severity.CRITICAL: "failure", Severity.WARNING: "warning", Severity.INFO: "info"}


@dataclass
class _Pending:
    notice: Notice
    url: str
    attempts: int = 0
    next_at: float = 0.0


class Notifier:
    """Delivers notices in its own thread (see the module docstring).

    Args:
        config: the notifications section (retry timing, failure threshold).
        make_plugin: URL -> plugin (Apprise by default; tests give their own).
        clock: monotonic seconds (tests give their own).
        journal: where each delivery is written down around the send (none: nowhere).
    """

    def __init__(self, config: NotificationsConfig, *,
                 make_plugin: Callable[[str], Plugin] = apprise_plugin,
                 clock: Callable[[], float] = time.monotonic,
                 journal: DeliveryJournal | None = None) -> None:
        self.config = config
        self.make_plugin = make_plugin
        self.clock = clock
        self.journal = journal
        self.inbox: queue.Queue[Notice | None] = queue.Queue()
        self.results: queue.Queue[DeliveryResult] = queue.Queue()
        self.delivered = 0
        self.failed_attempts = 0
        self.last_error = ""
        self._plugins: dict[str, Plugin] = {}
        self._pending: deque[_Pending] = deque()
        self._failures: dict[str, int] = {}  # consecutive failures per URL key
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="alarms-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Deliveries waiting in the thread (approximate from another thread)."""
        return len(self._pending) + self.inbox.qsize()

    def submit(self, notice: Notice) -> None:
        """Queue ``notice`` for delivery to each of its URLs (any thread)."""
        self.inbox.put(notice)

    # ---- the thread ----------------------------------------------------------------------

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                failpoint("alarms-notify")
                self._take(self._wait_s())
                self._deliver_due()
        except BaseException as exc:  # the supervisor sees the thread gone and restarts it
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("notification thread died")
            raise

    def _wait_s(self) -> float:
        if not self._pending:
            return 0.5
        soonest = min(p.next_at for p in self._pending)
        return max(0.0, min(0.5, soonest - self.clock()))

    def _take(self, wait_s: float) -> None:
        try:
            item = self.inbox.get(timeout=wait_s) if wait_s > 0 else self.inbox.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            for url in item.urls:
                self._pending.append(_Pending(item, url))
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
        while len(self._pending) > MAX_PENDING:
            lost = self._pending.popleft()
            self._report(lost, False, "given up: more than "
                         f"{MAX_PENDING} deliveries waiting", failing=True)

    def _deliver_due(self) -> None:
        now = self.clock()
        for _ in range(len(self._pending)):
            item = self._pending.popleft()
            if item.next_at > now:
                self._pending.append(item)
                continue
            self._journal(DeliveryStep.SENDING, item)
            ok, error = self._send(item)
            item.attempts += 1
            key = url_key(item.url)
            if ok:
                failpoint("alarms-notify-sent")  # delivered, not yet written down
                self._journal(DeliveryStep.SENT, item)
                failpoint("alarms-notify-journalled")  # written down, not yet reported
                self._failures.pop(key, None)
                self.delivered += 1
                self._report(item, True, "")
                continue
            self._journal(DeliveryStep.FAILED, item)
            self.failed_attempts += 1
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(self.config.retry_s * 2 ** (item.attempts - 1), self.config.max_retry_s)
            item.next_at = self.clock() + delay
            self._pending.append(item)
            log.warning("notification %s of %s to %s failed (attempt %d): %s; again in %.0f s",
                        item.notice.key, item.notice.alarm or "alarms", redact(item.url),
                        item.attempts, error, delay)
            self._report(item, False, error,
                         failing=failures >= self.config.alarm_after_failures)

    def _journal(self, step: DeliveryStep, item: _Pending) -> None:
        if self.journal is None or not item.notice.record:
            return
        try:
            self.journal.write(step, item.notice.targets, url_key(item.url))
        except sqlite3.Error as exc:  # the archive still learns of the delivery: log, go on
            self.last_error = f"delivery journal: {exc}"
            log.warning("cannot write the delivery journal %s (%s): a restart in the next "
                        "moments may repeat this notice", self.journal.path, exc)

    def _send(self, item: _Pending) -> tuple[bool, str]:
        notice = item.notice
        try:
            plugin = self._plugins.get(item.url)
            if plugin is None:
                plugin = self._plugins[item.url] = self.make_plugin(item.url)
            ok = bool(plugin.notify(body=notice.body, title=notice.title,
                                    notify_type=_TYPES[notice.severity]))
        except Exception as exc:  # whatever a plugin raises is a failed delivery, never fatal
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False, self.last_error[:300]
        return ok, "" if ok else "the service refused or could not be reached"

    def _report(self, item: _Pending, ok: bool, error: str, failing: bool = False) -> None:
        self.results.put(DeliveryResult(item.notice, url_key(item.url), redact(item.url), ok,
                                        item.attempts, failing, error))


def retarget(notice: Notice, urls: tuple[str, ...]) -> Notice:
    """``notice`` sent to ``urls`` only (the ones it has not reached yet)."""
    return replace(notice, urls=urls)
