"""The DASTARD bridge: a source the daemon runs, turning DASTARD's streams into our messages.

:class:`DastardBridge` subscribes to a DASTARD server (see
:mod:`daq.dastard.config` for the ports and the streams it publishes) and
hands every message it makes to ``emit``, the daemon's outbound stage
(:meth:`daq.daemon.outbound.OutboundStage.put`); ``emit`` is called from
several threads and must be thread-safe.

Threads, one ZeroMQ socket each (a socket never changes threads):

* status: SUB on base+1. Keeps the channel names, the run state and the
  ALIVE clock; turns TRIGGERRATE into rate streams and hands it to the
  counting thread; owns the JSON-RPC connection (base+0), over which it asks
  for ``SourceControl.SendAllStatus`` when it starts and whenever a record
  comes for a channel it has no name for, so it never waits for DASTARD's
  next broadcast.
* primary (base+2), secondary (base+3), summaries (base+4): SUB each with a
  high receive high-water mark. Each drains its socket in batches
  (non-blocking receives until the queue is empty, up to a batch limit),
  takes the sample frame without copying, and emits.
* The thread of the counted stream (primary records, or summaries in
  summaries-only mode) also runs the :class:`~daq.dastard.losses.LossCounter`
  and emits the loss streams.

Nothing waits for readiness by sleeping: the receive loops block in
``poll`` (100 ms, so that :meth:`DastardBridge.stop` is honoured quickly),
and :meth:`DastardBridge.wait_ready` / :meth:`DastardBridge.wait_settled`
wait on events set by the threads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import zmq

from daq import messages
from daq.dastard.config import DastardConfig
from daq.dastard.errors import DastardError, DastardFormatError
from daq.dastard.losses import LossCounter, LossTotals, SettledWindow
from daq.dastard.rpc import RpcClient
from daq.dastard.status import (
    Alive,
    ChannelNames,
    DataDrop,
    ServerStatus,
    StatusUpdate,
    TriggerRate,
    parse_status,
)
from daq.dastard.translate import RecordTranslator, SummaryBatcher, topic_name
from daq.dastard.wire import Port, unpack_coefficients, unpack_record_header, unpack_summary_header
from daq.messages import InstrumentState, Message

log = logging.getLogger(__name__)

Emit = Callable[[Message], None]

#: Receives per batch before the loop looks at windows, flushes and the stop flag.
BATCH: Final = 2000
POLL_MS: Final = 100
#: Kernel receive buffer of the record sockets: bursts wait there, not in DASTARD's HWM of 10.
RCVBUF_BYTES: Final = 8 * 1024 * 1024
#: How often the status thread may ask for SendAllStatus.
RESEND_S: Final = 1.0
STATUS_CHANNEL: Final = "dastard"


class _NewRun:
    """Marker in the window queue: DASTARD started a new run (frame indices restart)."""


@dataclass(frozen=True, slots=True)
class BridgeStats:
    """A snapshot of what the bridge has seen and done.

    Attributes:
        state: connected (ALIVE is fresh), stale, or disconnected (never heard).
        running: DASTARD reports a running data source.
        channel_names: DASTARD's channel names, by index.
        primary: primary records emitted, per channel index.
        secondary: secondary records emitted (all channels).
        summaries: summaries filed (all channels).
        unnamed: records or summaries dropped because their channel had no name yet.
        malformed: frames dropped as not matching DASTARD's formats.
        data_drops: DASTARD's own count of data drops at its source this run.
        losses: the per-channel loss totals.
    """

    state: InstrumentState
    running: bool
    channel_names: tuple[str, ...]
    primary: tuple[int, ...]
    secondary: int
    summaries: int
    unnamed: int
    malformed: int
    data_drops: int
    losses: LossTotals


class DastardBridge:
    """Subscribes to one DASTARD and emits records, summaries, rates, losses and status.

    Args:
        config: the ``dastard:`` section.
        emit: called with every message, from several threads (must be thread-safe).
        context: the ZeroMQ context (default: one owned and terminated by the bridge).
    """

    def __init__(self, config: DastardConfig, emit: Emit, *,
                 context: zmq.Context | None = None) -> None:
        self.config = config
        self.emit = emit
        self._own_context = context is None
        self._context = context
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._names_known = threading.Event()
        self._want_names = threading.Event()
        self._settled = threading.Condition()
        self._last_settled_ns = 0
        self._windows: queue.SimpleQueue[TriggerRate | _NewRun] = queue.SimpleQueue()
        self.losses = LossCounter()
        self._primary = RecordTranslator(config.source)
        self._secondary = RecordTranslator(config.source, "_secondary")
        self._batcher = SummaryBatcher(config.source)
        self._names: tuple[str, ...] = ()
        self._state = InstrumentState.DISCONNECTED
        self._last_alive = 0.0
        self._running = False
        self._status_running = False
        self._sample_period_s = 0.0  # from STATUS; summaries do not carry it
        self._last_rate_ns = 0  # HiTime of the newest TRIGGERRATE taken
        self._data_drops = 0
        self._primary_counts: list[int] = []
        self._secondary_count = 0
        self._unnamed = 0
        self._malformed = 0

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the threads (they connect; DASTARD need not be up yet). Returns at once."""
        if self._threads:
            raise RuntimeError("the bridge is already started")
        if self._context is None:
            self._context = zmq.Context(io_threads=1)
        self._stop.clear()
        cfg = self.config
        counted = Port.PRIMARY if cfg.takes_primary else Port.SUMMARIES
        targets: list[tuple[str, Callable[[], None]]] = [("status", self._status_loop)]
        if cfg.takes_primary:
            targets.append(("primary", lambda: self._records_loop(Port.PRIMARY, counted)))
        if cfg.takes_secondary:
            targets.append(("secondary", lambda: self._records_loop(Port.SECONDARY, counted)))
        if cfg.takes_summaries:
            targets.append(("summaries", lambda: self._summaries_loop(counted)))
        for name, target in targets:
            thread = threading.Thread(target=self._guard(target), daemon=True,
                                      name=f"dastard-{name}")
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every thread and close the sockets (and the context, if the bridge owns it)."""
        self._stop.set()
        end = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        if self._own_context and self._context is not None:
            if stuck:  # term() would wait for their sockets for ever
                log.warning("DASTARD bridge threads did not stop: %s", ", ".join(stuck))
            else:
                self._context.term()
            self._context = None

    def __enter__(self) -> DastardBridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what callers look at ---------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """DASTARD's ALIVE is fresh (within ``stale_after_s``) and the bridge runs."""
        return self.running and self._state is InstrumentState.CONNECTED

    @property
    def running(self) -> bool:
        """Every thread of the bridge runs (whether DASTARD is there or not: a quiet or
        restarting DASTARD is a stale source, not a dead bridge)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    @property
    def state(self) -> InstrumentState:
        """Connected, stale, or disconnected (no ALIVE yet)."""
        return self._state

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the channel names are known (records can be named); False on timeout."""
        return self._names_known.wait(timeout_s)

    def wait_settled(self, hi_time_ns: int, timeout_s: float) -> bool:
        """Wait until a counted window ending at or after ``hi_time_ns`` is settled."""
        end = time.monotonic() + timeout_s
        with self._settled:
            while self._last_settled_ns < hi_time_ns:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
        return True

    def stats(self) -> BridgeStats:
        """What the bridge has seen and done so far."""
        return BridgeStats(state=self._state, running=self._running,
                           channel_names=self._names, primary=tuple(self._primary_counts),
                           secondary=self._secondary_count, summaries=self._batcher.rows,
                           unnamed=self._unnamed, malformed=self._malformed,
                           data_drops=self._data_drops, losses=self.losses.totals())

    # ---- threads ----------------------------------------------------------------------------

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:  # a bridge thread must not die silently
                log.exception("DASTARD bridge thread failed")
                self._set_state(InstrumentState.ERROR, "bridge thread failed; see the log")
        return run

    def _socket(self, port: Port, hwm: int) -> zmq.Socket:
        assert self._context is not None
        sock = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.RCVBUF, RCVBUF_BYTES)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.config.url(port))
        return sock

    # status ---------------------------------------------------------------------------------

    def _status_loop(self) -> None:
        cfg = self.config
        sock = self._socket(Port.STATUS, 10_000)
        rpc = RpcClient(cfg.host, cfg.base_port + Port.CONTROL, timeout_s=cfg.rpc_timeout_s)
        heard = False  # any status message since start
        next_ask = 0.0
        self._set_state(InstrumentState.DISCONNECTED,
                        f"waiting for DASTARD at {cfg.host}:{cfg.base_port}")
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if (not heard or not self._names or self._want_names.is_set()) and now >= next_ask:
                    next_ask = now + RESEND_S
                    self._want_names.clear()
                    self._ask_all_status(rpc)
                if sock.poll(POLL_MS):
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        heard = True
                        self._on_status(frames)
                self._check_stale(time.monotonic())
        finally:
            rpc.close()
            sock.close()

    def _ask_all_status(self, rpc: RpcClient) -> None:
        try:
            rpc.call("SourceControl.SendAllStatus", "dummy")
        except DastardError as exc:
            log.debug("%s", exc)

    def _on_status(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            self._malformed += 1  # diagnostic counters: a rare lost increment does not matter
            return
        try:
            update = parse_status(frames[0], frames[1])
        except DastardFormatError as exc:
            self._malformed += 1
            log.warning("%s", exc)
            return
        if update is not None:
            self._apply(update)

    def _apply(self, update: StatusUpdate) -> None:
        if isinstance(update, Alive):
            self._last_alive = time.monotonic()
            self._running = update.running
            if self._state is not InstrumentState.CONNECTED:
                self._set_state(InstrumentState.CONNECTED, "DASTARD is alive")
            else:
                self._emit_status("")
        elif isinstance(update, ServerStatus):
            # A run starts when STATUS says so (ALIVE's flag lags by up to a heartbeat).
            if update.running and not self._status_running:
                self._windows.put(_NewRun())
                self._last_rate_ns = 0
            self._status_running = self._running = update.running
            self._sample_period_s = update.sample_period_ns / 1e9
        elif isinstance(update, ChannelNames):
            self._set_names(update.names)
        elif isinstance(update, TriggerRate):
            # SendAllStatus repeats the last TRIGGERRATE: a window is taken once.
            if update.hi_time_ns > self._last_rate_ns:
                self._last_rate_ns = update.hi_time_ns
                self._windows.put(update)
                self._emit_rates(update)
        elif isinstance(update, DataDrop):
            self._data_drops = update.total_observed
            self._emit(messages.scalar(self.config.source, "data_drops", update.total_observed,
                                       t=messages.now_ns()))

    def _set_names(self, names: tuple[str, ...]) -> None:
        self._primary.set_names(names)
        self._secondary.set_names(names)
        self._batcher.set_names(names)
        self._names = names
        if names:
            self._names_known.set()

    def _emit_rates(self, rate: TriggerRate) -> None:
        names = self._primary.names
        seconds = rate.duration_ns / 1e9
        source = self.config.source
        for index, count in enumerate(rate.counts):
            if index < len(names):
                self._emit(messages.scalar(source, f"{names[index]}_trigger_rate",
                                           count / seconds, units="Hz", t=rate.hi_time_ns,
                                           meta={"index": index}))
        self._emit(messages.scalar(source, "array_trigger_rate", sum(rate.counts) / seconds,
                                   units="Hz", t=rate.hi_time_ns))

    def _check_stale(self, now: float) -> None:
        stale_after = self.config.stale_after_s
        if self._state is InstrumentState.CONNECTED and now - self._last_alive > stale_after:
            self._set_state(InstrumentState.STALE,
                            f"no ALIVE from DASTARD for {now - self._last_alive:.1f} s")

    def _set_state(self, state: InstrumentState, message: str) -> None:
        self._state = state
        self._emit_status(message)

    def _emit_status(self, message: str) -> None:
        totals = self.losses.totals()
        names = self._names
        lost_by_channel = {(names[i] if i < len(names) else str(i)): n
                           for i, n in enumerate(totals.lost) if n}
        self._emit(messages.status(
            self.config.source, STATUS_CHANNEL, self._state, message,
            running=self._running, host=self.config.host, base_port=self.config.base_port,
            lost=totals.total_lost, lost_by_channel=lost_by_channel,
            received=sum(totals.received), late=sum(totals.late), windows=totals.windows,
            unaccounted=totals.unaccounted, records=sum(self._primary_counts),
            data_drops=self._data_drops, malformed=self._malformed, unnamed=self._unnamed))

    def _emit(self, msg: Message) -> None:
        try:
            self.emit(msg)
        except Exception:  # the sink's trouble must not stop the bridge
            log.exception("emit failed for %s", msg.stream)

    # records --------------------------------------------------------------------------------

    def _records_loop(self, port: Port, counted: Port) -> None:
        sock = self._socket(port, self.config.rcv_hwm)
        translator = self._primary if port is Port.PRIMARY else self._secondary
        counting = port is counted
        if counting:
            self.losses.subscribed(time.time_ns())
        counts = self._primary_counts
        emit = self.emit
        record = self.losses.record
        try:
            while not self._stop.is_set():
                received = 0
                idle = True
                if sock.poll(POLL_MS):
                    while received < BATCH:
                        try:
                            header = sock.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        received += 1
                        if not sock.getsockopt(zmq.RCVMORE):
                            self._malformed += 1
                            continue
                        payload = sock.recv(copy=False)
                        if payload.more:
                            self._drain(sock)
                            self._malformed += 1
                            continue
                        try:
                            fields = unpack_record_header(header)
                            msg = translator.message(fields, payload.buffer)
                        except DastardFormatError as exc:
                            self._malformed += 1
                            log.debug("%s", exc)
                            continue
                        if msg is None:
                            self._unnamed += 1
                            self._want_names.set()
                            continue
                        channel = fields[0]
                        if counting:
                            record(channel, fields[8], fields[7], fields[5])
                            try:
                                counts[channel] += 1
                            except IndexError:
                                counts.extend([0] * (channel + 1 - len(counts)))
                                counts[channel] += 1
                        else:
                            self._secondary_count += 1
                        try:
                            emit(msg)
                        except Exception:
                            log.exception("emit failed for %s", msg.stream)
                    else:
                        idle = False  # stopped at the batch limit: more is waiting
                if counting:
                    self._settle(idle)
        finally:
            sock.close()

    @staticmethod
    def _drain(sock: zmq.Socket) -> None:
        while sock.getsockopt(zmq.RCVMORE):
            sock.recv()

    def _settle(self, idle: bool) -> None:
        """Move queued windows into the counter, settle what can be, emit the losses."""
        while True:
            try:
                item = self._windows.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _NewRun):
                self.losses.reset()
            else:
                self.losses.add_window(item)
        for window in self.losses.settle(idle=idle):
            if window.counted:
                self._emit_losses(window)
                with self._settled:
                    self._last_settled_ns = window.hi_time_ns
                    self._settled.notify_all()

    def _emit_losses(self, window: SettledWindow) -> None:
        names = self._names
        source = self.config.source
        for index, lost in enumerate(window.lost):
            name = topic_name(names[index]) if index < len(names) else f"index{index}"
            self._emit(messages.scalar(source, f"{name}_lost", lost, t=window.hi_time_ns,
                                       meta={"index": index,
                                             "expected": window.expected[index],
                                             "received": window.received[index]}))
        self._emit(messages.scalar(source, "array_lost", sum(window.lost), t=window.hi_time_ns))

    # summaries ------------------------------------------------------------------------------

    def _summaries_loop(self, counted: Port) -> None:
        sock = self._socket(Port.SUMMARIES, self.config.rcv_hwm)
        counting = counted is Port.SUMMARIES
        if counting:
            self.losses.subscribed(time.time_ns())
        record = self.losses.record
        batcher = self._batcher
        period = self.config.summary_batch_s
        next_flush = time.monotonic() + period
        try:
            while not self._stop.is_set():
                received = 0
                idle = True
                if sock.poll(POLL_MS):
                    while received < BATCH:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        received += 1
                        if len(frames) != 2:
                            self._malformed += 1
                            continue
                        try:
                            fields = unpack_summary_header(frames[0].bytes)
                            coefficients = unpack_coefficients(frames[1].buffer)
                        except DastardFormatError as exc:
                            self._malformed += 1
                            log.debug("%s", exc)
                            continue
                        if not batcher.add(fields, coefficients):
                            self._unnamed += 1
                            self._want_names.set()
                            continue
                        if counting:
                            # Summaries carry no sample period: STATUS gives it (0 until then:
                            # the counter then measures it from consecutive summaries).
                            record(fields[0], fields[10], fields[9], self._sample_period_s)
                    else:
                        idle = False
                now = time.monotonic()
                if now >= next_flush:
                    next_flush = now + period
                    for msg in batcher.flush():
                        self._emit(msg)
                if counting:
                    self._settle(idle)
        finally:
            for msg in batcher.flush():
                self._emit(msg)
            sock.close()
