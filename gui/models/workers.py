"""The dashboard's I/O threads: nothing that waits on a socket runs on the GUI thread.

Each worker is a plain thread owning its own ZeroMQ socket (one socket per
thread, as ZeroMQ requires) and talks to the GUI thread through queues that
the GUI drains on its frame timer:

* :class:`BusFeed`: a :class:`daq.bus.Subscriber` on the broker; first the
  snapshot (the newest value of every stream, so the screen fills at once),
  then every live message; four times a second a :class:`Liveness` report
  (publishers that missed two heartbeats, and whether the broker is there:
  when nothing at all is heard, its snapshot endpoint is asked, so that dead
  publishers are not mistaken for a dead broker). A snapshot that fails is
  retried while live messages keep flowing.
* :class:`ControlWorker`: one :class:`daq.client.Lab` per daemon; runs each
  :class:`~gui.models.control.Command` and answers with an
  :class:`~gui.models.control.Answer` (the daemon's refusal verbatim, or why
  there was no answer). A dead daemon costs its own worker a timeout, never
  the GUI a frame.
* :class:`HistoryWorker`: one :class:`daq.logger.history.HistoryClient`;
  queries are de-duplicated per chart and stream (only the newest view's
  request is worth answering after a fast zoom), other history ops
  (``runs``, ``run``, ``events``) go through :meth:`HistoryWorker.call`.

Qt-free: the same classes serve the headless tests and ``qupdaq bench gui``.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import zmq

from daq.bus import Subscriber
from daq.config import LabConfig
from daq.errors import BusError, ControlError, QupdaqError
from daq.messages import Message
from gui.models.chart import HistoryAnswer, HistoryRequest
from gui.models.control import Answer, Command

log = logging.getLogger(__name__)


#: A snapshot prefix no stream has: asking for it only proves the broker answers.
_NOTHING = "hb/~probe~"


def client_name() -> str:
    """How the dashboard names itself in the audit trail: ``dashboard:user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"dashboard:{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Liveness:
    """The receiving thread's view of the bus.

    Attributes:
        stale: publishers that missed two heartbeats.
        known: every publisher heard of.
        connected: heartbeats arrive (or the snapshot answered) recently.
        error: why not connected, in words.
        dropped: messages dropped because the GUI fell behind.
    """

    stale: frozenset[str]
    known: frozenset[str]
    connected: bool
    error: str = ""
    dropped: int = 0


class BusFeed:
    """The live path into the dashboard (see the module docstring).

    Args:
        config: the lab config (bus endpoints and keys).
        prefixes: topic prefixes to receive.
        max_queue: messages waiting for the GUI at most; beyond, new ones are dropped
            and counted (the screen shows the count).
        silent_after_s: nothing heard for this long (not even a heartbeat): not connected.
        missed_beats: heartbeat periods after which a publisher is stale.
    """

    def __init__(self, config: LabConfig, prefixes: tuple[str, ...] = ("",), *,
                 max_queue: int = 200_000, silent_after_s: float = 3.0,
                 missed_beats: float = 2.0, liveness_every_s: float = 0.25) -> None:
        self.config = config
        self.prefixes = prefixes
        self.out: queue.Queue[Message | Liveness] = queue.Queue(maxsize=max_queue)
        self.silent_after_s = silent_after_s
        self.missed_beats = missed_beats
        self.liveness_every_s = liveness_every_s
        self.dropped = 0
        self.received = 0
        self.snapshot_ok = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BusFeed:
        self._thread = threading.Thread(target=self._run, name="dashboard-bus", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _put(self, item: Message | Liveness) -> None:
        try:
            self.out.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        bus = self.config.bus
        try:
            keys = self.config.keys_for("bus")
        except QupdaqError as exc:
            self._put(Liveness(frozenset(), frozenset(), False, str(exc)))
            return
        sub = Subscriber(bus.subscribe_url, self.prefixes, snapshot_url=bus.snapshot_url,
                         hwm=bus.hwm, curve=keys, context=zmq.Context.instance())
        last_heard = 0.0
        next_snapshot = 0.0
        next_report = 0.0
        next_probe = 0.0
        broker_answers = False
        error = ""
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if not self.snapshot_ok and now >= next_snapshot:
                    try:
                        for cached in sub.snapshot("", timeout_s=1.0):
                            self._put(cached)
                        self.snapshot_ok = True
                        last_heard = time.monotonic()
                        error = ""
                    except BusError as exc:
                        error = f"broker: {exc}"
                        next_snapshot = time.monotonic() + 2.0
                msg: Message | None = sub.recv(0.05)
                if msg is not None:
                    self.received += 1
                    last_heard = time.monotonic()
                    self._put(msg)
                    # Drain what is queued without waiting, then report liveness on time.
                    while (more := sub.recv_nowait()) is not None:
                        self.received += 1
                        self._put(more)
                        if time.monotonic() >= next_report:
                            break
                now = time.monotonic()
                beats = [s.last_beat for s in sub.publishers.values()]
                if beats:
                    last_heard = max(last_heard, *beats)
                if now >= next_report:
                    next_report = now + self.liveness_every_s
                    silent = now - last_heard > self.silent_after_s if last_heard else True
                    if silent and self.snapshot_ok and now >= next_probe:
                        # Nothing heard: every publisher may be dead while the broker is
                        # fine. Its snapshot endpoint tells (an empty answer is an answer).
                        next_probe = now + 2.0
                        try:
                            sub.snapshot(_NOTHING, timeout_s=1.0)
                            broker_answers = True
                        except BusError:
                            broker_answers = False
                    elif not silent:
                        broker_answers = True
                    why = error or (f"nothing heard from the broker at {bus.subscribe_url} for "
                                    f"{now - last_heard:.0f} s" if last_heard else
                                    f"no answer from the broker at {bus.subscribe_url}")
                    connected = not silent or broker_answers
                    self._put(Liveness(frozenset(sub.stale_publishers(self.missed_beats)),
                                       frozenset(sub.publishers), connected,
                                       "" if connected else why, self.dropped))
        except Exception:
            log.exception("dashboard bus feed stopped")
            raise
        finally:
            sub.close()


class ControlWorker:
    """Runs control commands against one daemon in its own thread (see the module docstring).

    Args:
        config: the lab config (a facility's whole file, with ``daemon`` naming which).
        daemon: the daemon of a facility config; None for a single-daemon config.
        timeout_s: how long each request waits for the daemon's answer.
        client: the name in the audit trail.
    """

    def __init__(self, config: LabConfig, daemon: str | None = None, *,
                 timeout_s: float = 5.0, client: str | None = None) -> None:
        self.config = config
        self.daemon = daemon
        self.timeout_s = timeout_s
        self.client = client or client_name()
        self.inbox: queue.Queue[Command | None] = queue.Queue()
        self.out: queue.Queue[Answer] = queue.Queue()
        self.busy_since: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ControlWorker:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"dashboard-control-{self.daemon or 'daemon'}")
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self.inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def submit(self, command: Command) -> None:
        """Queue ``command`` (any thread); its :class:`Answer` comes out of :attr:`out`."""
        self.inbox.put(command)

    def _run(self) -> None:
        from daq.client import Lab  # the client module pulls in the daemon's protocol

        lab: Lab | None = None
        try:
            while (command := self.inbox.get()) is not None:
                self.busy_since = time.monotonic()
                try:
                    if lab is None:
                        lab = Lab(self.config, daemon=self.daemon, timeout_s=self.timeout_s,
                                  client=self.client)
                    reply = lab.request(command.op, **command.fields)
                    self.out.put(Answer(command, True, reply))
                except ControlError as exc:
                    self.out.put(Answer(command, False, error=str(exc), refused=True))
                except (BusError, QupdaqError, zmq.ZMQError) as exc:
                    self.out.put(Answer(command, False, error=str(exc), refused=False))
                except Exception as exc:  # the worker must answer whatever happens
                    log.exception("control request %s failed", command.describe())
                    self.out.put(Answer(command, False, error=f"{type(exc).__name__}: {exc}"))
                finally:
                    self.busy_since = None
        finally:
            if lab is not None:
                lab.close()


@dataclass(frozen=True)
class HistoryCall:
    """A history op other than ``query`` (``runs``, ``run``, ``events``, ``streams``)."""

    key: str
    op: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallAnswer:
    """The logger's answer to a :class:`HistoryCall`."""

    call: HistoryCall
    ok: bool
    reply: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class HistoryWorker:
    """Asks the logger's history endpoint in its own thread (see the module docstring).

    Args:
        url: the history endpoint.
        config: the lab config (CURVE keys for the logger), optional.
        timeout_s: how long each request waits.
    """

    def __init__(self, url: str, config: LabConfig | None = None, *,
                 timeout_s: float = 5.0) -> None:
        self.url = url
        self.config = config
        self.timeout_s = timeout_s
        self.out: queue.Queue[HistoryAnswer | CallAnswer] = queue.Queue()
        self._pending: OrderedDict[tuple[str, ...], HistoryRequest | HistoryCall] = OrderedDict()
        self._lock = threading.Condition()
        self._stop = False
        self.superseded = 0
        self.answered = 0
        self._thread: threading.Thread | None = None

    def start(self) -> HistoryWorker:
        self._thread = threading.Thread(target=self._run, name="dashboard-history", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def submit(self, request: HistoryRequest) -> None:
        """Queue a query; an older one for the same chart and stream is dropped."""
        key = (request.chart, request.stream, request.purpose)
        with self._lock:
            if key in self._pending:
                # The chart now waits for the newer request's id; the older answer would be
                # ignored, so it is not asked for at all.
                self.superseded += 1
                del self._pending[key]
            self._pending[key] = request
            self._lock.notify()

    def call(self, call: HistoryCall) -> None:
        """Queue another op (one pending per key)."""
        with self._lock:
            self._pending[("call", call.key)] = call
            self._lock.notify()

    def _next(self) -> HistoryRequest | HistoryCall | None:
        with self._lock:
            while not self._pending and not self._stop:
                self._lock.wait(0.5)
            if self._stop:
                return None
            return self._pending.popitem(last=False)[1]

    def _run(self) -> None:
        from daq.logger.history import HistoryClient, HistoryError

        curve = None
        if self.config is not None:
            with contextlib.suppress(QupdaqError):
                curve = self.config.keys_for("logger")
        client = HistoryClient(self.url, timeout_s=self.timeout_s,
                               context=zmq.Context.instance(), curve=curve)
        try:
            while (item := self._next()) is not None:
                try:
                    if isinstance(item, HistoryRequest):
                        header, (times, values) = client.query_info(
                            item.topic, item.t0, item.t1, item.max_points)
                        self.out.put(HistoryAnswer(
                            item, True, times.copy(), values.copy(),
                            bool(header.get("decimated")), int(header.get("raw_count", 0))))
                    else:
                        reply, _ = client.request(item.op, **item.fields)
                        self.out.put(CallAnswer(item, True, reply))
                except (BusError, HistoryError, zmq.ZMQError) as exc:
                    text = str(exc)
                    if isinstance(item, HistoryRequest):
                        self.out.put(HistoryAnswer(item, False, error=text))
                    else:
                        self.out.put(CallAnswer(item, False, error=text))
                except Exception as exc:
                    log.exception("history request failed")
                    if isinstance(item, HistoryRequest):
                        self.out.put(HistoryAnswer(item, False, error=repr(exc)))
                    else:
                        self.out.put(CallAnswer(item, False, error=repr(exc)))
                self.answered += 1
        finally:
            client.close()
