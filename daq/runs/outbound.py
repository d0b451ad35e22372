"""A run's own way out: its Publisher (live path) and ReliableSender (the archive), one thread.

A run process is a publisher like a daemon: every document goes to the
broker (dashboards see the run live) and, except the progress messages,
through a :class:`daq.reliable.ReliableSender` to the logger, spooled on
disk first. A run that crashes leaves its unacknowledged documents in the
spool; the next run started from the same state directory sends them (the
reliable path resumes older sessions), so nothing a run measured is lost to
a crash of the run, the logger or the network.

Spools live in ``<daemon state dir>/../runs/slot-N/`` (N = 0..7): a run takes
the first slot no other running run holds (two runs at once each get their
own spool and publisher name ``runs-<host>-N``).

Interface: :class:`RunOutbound` (``start``, ``put``, ``close``; ``unacked``).
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from daq.bus import Publisher
from daq.config import LabConfig
from daq.errors import BusError
from daq.messages import Message
from daq.reliable import ReliableSender, SpoolBusy

log = logging.getLogger(__name__)

#: How many runs of one host and lab may run at once (one spool each).
SLOTS = 8


@dataclass(frozen=True)
class _Item:
    msg: Message
    archive: bool


def runs_state_dir(config: LabConfig) -> Path:
    """Where runs keep their spools: beside the daemon's state directory."""
    return config.daemon.state_path.parent / "runs"


class RunOutbound:
    """Stamps, publishes and archives a run's messages in its own thread.

    Args:
        config: the lab config (broker, logger endpoint, keys, heartbeat).
        state_dir: directory of the spool slots (default: :func:`runs_state_dir`).
    """

    def __init__(self, config: LabConfig, state_dir: Path | None = None) -> None:
        self.config = config
        self.state_dir = state_dir or runs_state_dir(config)
        self.name = ""
        self.slot = -1
        self.published = 0
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._sender: ReliableSender | None = None
        self._flush_s = 10.0
        self._acked = threading.Event()
        self._unacked = 0
        self._lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread; return once the publisher and the spool are ready.

        Raises:
            BusError: no free spool slot, or the spool cannot be opened.
        """
        self._thread = threading.Thread(target=self._run, name="run-outbound", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            error = self._error
            raise error if isinstance(error, BusError) else BusError(
                f"run spool in {self.state_dir}: {error}")

    def put(self, msg: Message, *, archive: bool = True) -> None:
        """Queue ``msg`` (any thread); ``archive=False`` sends it on the live path only."""
        self._queue.put(_Item(msg, archive))

    def close(self, flush_s: float = 10.0) -> bool:
        """Send what is queued, wait up to ``flush_s`` for the logger's acknowledgements.

        Returns:
            True when the logger acknowledged everything (what it did not stays in
            the spool and is sent by the next run from this state directory).
        """
        self._flush_s = flush_s
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(flush_s + 10)
        return self._acked.is_set()

    @property
    def unacked(self) -> int:
        """Messages the logger has not acknowledged yet (any thread)."""
        with self._lock:
            return self._unacked

    @property
    def archived(self) -> bool:
        """Whether a logger is configured (else the run is only published live)."""
        return bool(self.config.daemon.logger_url)

    # ---- the thread -----------------------------------------------------------------------

    def _open_sender(self, epoch: int) -> ReliableSender:
        host = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname().split(".")[0])[:40]
        busy: list[str] = []
        for slot in range(SLOTS):
            path = self.state_dir / f"slot-{slot}"
            path.mkdir(parents=True, exist_ok=True)
            name = f"runs-{host}-{slot}"
            try:
                sender = ReliableSender(
                    str(self.config.daemon.logger_url), pub=name, epoch=epoch,
                    spool_path=path / "spool.sqlite",
                    heartbeat_s=self.config.bus.heartbeat_s,
                    curve=self.config.keys_for("logger"))
            except SpoolBusy as exc:
                busy.append(str(exc))
                continue
            self.name, self.slot = name, slot
            return sender
        raise BusError(f"all {SLOTS} run spool slots in {self.state_dir} are held by running "
                       f"runs: {'; '.join(busy[:2])}")

    def _run(self) -> None:
        epoch = time.time_ns()
        try:
            sender = self._open_sender(epoch) if self.archived else None
            pub_name = self.name or f"runs-{socket.gethostname().split('.')[0]}"
            pub = Publisher(self.config.bus.publish_url, name=pub_name,
                            heartbeat_s=self.config.bus.heartbeat_s, hwm=self.config.bus.hwm,
                            curve=self.config.keys_for("bus"))
            pub.epoch = epoch  # the same session on both paths
        except Exception as exc:
            self._error = exc
            self._ready.set()
            return
        self._sender = sender
        if sender is not None and sender.unacked:
            log.info("run spool slot %d: %d messages of an earlier run to send first",
                     self.slot, sender.unacked)
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                items, stopping = self._take(0.05)
                for item in items:
                    pub.publish(item.msg)
                    self.published += 1
                    if item.archive and sender is not None:
                        sender.send(item.msg)
                pub.tick()
                if sender is not None:
                    sender.poll(0)
                    with self._lock:
                        self._unacked = sender.unacked
            if sender is None or sender.finish(self._flush_s):
                self._acked.set()
            else:
                log.warning("the logger did not acknowledge %d messages of this run within "
                            "%.0f s; they stay in the spool %s and go with the next run",
                            sender.unacked, self._flush_s, self.state_dir / f"slot-{self.slot}")
        finally:
            if sender is not None:
                with self._lock:
                    self._unacked = sender.unacked
                sender.close()
            pub.close()

    def _take(self, timeout_s: float) -> tuple[list[_Item], bool]:
        try:
            first = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return [], False
        items = [first]
        while len(items) < 1000:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return [i for i in items if i is not None], any(i is None for i in items)
