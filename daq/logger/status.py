"""The logger's own status: counters, store health, free disk, refused sessions.

:func:`status_fields` is what both the history endpoint's ``status`` and
the live bus carry. :class:`StatusPublisher` (a thread owning one
:class:`daq.bus.Publisher`) puts it on the live bus every
``status_period_s`` as ``status/<logger name>/logger``, state ``connected``
while the store takes writes and ``error`` when it does not, so the
dashboard and ``qupdaq status`` show a failing archive like any failing
instrument.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from daq import messages
from daq.bus import Publisher
from daq.logger.config import LoggerConfig
from daq.logger.stats import LoggerStats
from daq.messages import InstrumentState
from daq.security import ClientKeys

log = logging.getLogger(__name__)

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:@+")


def disk_space(directory: Path) -> dict[str, int]:
    """Free and total bytes of the file system holding ``directory`` (or its nearest parent)."""
    path = directory
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {}
    return {"disk_free_bytes": usage.free, "disk_total_bytes": usage.total}


def status_fields(config: LoggerConfig, stats: LoggerStats) -> dict[str, Any]:
    """Counters, store health and free disk space, JSON-able."""
    store = ("PostgreSQL" if config.store == "postgresql"
             else str(config.storage_dir))
    return {**stats.as_dict(), "store": store, **disk_space(config.storage_dir)}


#: A status header must stay well below the wire's 64 KiB header limit.
_MAX_TEXT = 300
_MAX_OWNERS = 100
_MAX_REFUSALS = 10


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` cut down for the bus: short error texts, at most 100 owners, 10 refusals."""
    out = dict(fields)
    out["last_error"] = str(out.get("last_error", ""))[:_MAX_TEXT]
    out["errors"] = [{**e, "error": str(e.get("error", ""))[:_MAX_TEXT]}
                     for e in out.get("errors", [])]
    sessions = dict(out.get("sessions") or {})
    owners = sessions.get("owners") or {}
    if len(owners) > _MAX_OWNERS:
        sessions["owners"] = dict(list(owners.items())[:_MAX_OWNERS])
        sessions["owners_not_shown"] = len(owners) - _MAX_OWNERS
    sessions["refusals"] = list(sessions.get("refusals") or [])[-_MAX_REFUSALS:]
    out["sessions"] = sessions
    return out


def source_name(name: str) -> str:
    """The logger name as a topic element (characters a topic cannot hold become '-')."""
    cleaned = "".join(c if c in _NAME_CHARS else "-" for c in name)[:100]
    return cleaned or "logger"


class StatusPublisher:
    """Publishes the logger's status on the live bus (see the module docstring).

    Args:
        url: the broker's publish endpoint (``bus.publish_url``).
        config: the logger section (name, storage directory, period).
        stats: the running logger's counters.
        context: zmq context.
        heartbeat_s: the publisher's heartbeat period on the bus.
        curve: this host's keys for the bus, when it runs CURVE.
    """

    def __init__(self, url: str, config: LoggerConfig, stats: LoggerStats, *,
                 context: zmq.Context | None = None, heartbeat_s: float = 1.0,
                 curve: ClientKeys | None = None) -> None:
        self.url = url
        self.curve = curve
        self.config = config
        self.stats = stats
        self.heartbeat_s = heartbeat_s
        self.published = 0
        self._ctx = context or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="logger-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def message(self) -> messages.Message:
        """The status message as it is now."""
        stats = self.stats
        fields = compact(status_fields(self.config, stats))
        state = InstrumentState.CONNECTED if stats.store_ok else InstrumentState.ERROR
        text = (f"storing: {stats.stored_messages} messages, {stats.gaps_recorded} gaps"
                if stats.store_ok else f"store failing: {stats.last_error[:_MAX_TEXT]}")
        return messages.status(source_name(self.config.logger_name), "logger", state, text,
                               **fields)

    def _main(self) -> None:
        name = source_name(self.config.logger_name)
        period = self.config.status_period_s
        try:
            pub = Publisher(self.url, name=name, heartbeat_s=self.heartbeat_s,
                            context=self._ctx, curve=self.curve)
        except Exception as exc:  # a status that cannot be published must not stop the archive
            log.error("logger status cannot be published on %s: %s", self.url, exc)
            return
        try:
            next_status = 0.0
            while not self._stop.wait(min(self.heartbeat_s, period) / 2):
                pub.tick()
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + period
                    try:
                        pub.publish(self.message())
                        self.published += 1
                    except Exception as exc:
                        log.warning("logger status not published: %s", exc)
        finally:
            pub.close()

