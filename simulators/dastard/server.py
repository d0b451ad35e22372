"""The DASTARD simulator: a TES array on DASTARD's five ports, in DASTARD's formats.

:class:`DastardSim` serves, from a base port:

* base+0: JSON-RPC 1.0 control (:mod:`simulators.dastard.rpc_server`) with
  DASTARD's ``SourceControl.Start`` / ``Stop`` / ``SendAllStatus`` and the
  simulator's own ``SimControl.*`` (below);
* base+1: status, ``[tag, JSON]``: ``ALIVE`` every ``alive_period_s``,
  ``STATUS`` and ``CHANNELNAMES`` at start and stop, ``TRIGGERRATE`` every
  whole second of the run, ``DATADROP`` at the start and after each drop;
  ``SendAllStatus`` repeats STATUS and then the last message of every tag,
  as DASTARD's ``SENDALL`` does (an old TRIGGERRATE included);
* base+2 / +3 / +4: primary records, secondary records (one cross-talk
  record on the next channel per primary trigger), summaries.

Records are made every ``tick_s`` from the sample clock: frame ``f`` is
sampled at ``t0 + f * sample_period`` (``t0``: the start of the run), and a
trigger is published once its whole record has been sampled. Triggers are
dead-time-modified Poisson arrivals (:mod:`simulators.dastard.triggers`),
the samples are stamped from a bank computed once from the TES physics
(:mod:`simulators.dastard.bank`). ``TRIGGERRATE`` counts the primary
triggers per channel in DASTARD's windows: frames ``(hi_prev, hi]``, ``hi``
the frame at a whole second, and is queued only after every record of its
window has been sent, as DASTARD does.

``SimControl`` methods (not DASTARD's; for tests and demos):

``SimControl.Counts``
    ``{"triggered", "sent", "withheld", "secondary", "summaries": [per channel],
    "windows": n, "data_drops": n, "running": bool}``.
``SimControl.Windows``
    every TRIGGERRATE window of the run: ``[{"HiTime": ns, "Duration": ns,
    "CountsSeen": [...]}]``.
``SimControl.Sent``
    with ``log_sent``: every primary record made, ``[channel, frame, trigger
    ns, presamples, samples, sample period, volts per count, type code, CRC-32
    of the sample bytes, withheld]`` (sample period and volts per count as the
    float32 values sent).
``SimControl.Withhold`` ``{"Channel": c, "Count": k}``
    count the next ``k`` primary triggers of channel ``c`` in TRIGGERRATE but
    do not send them: an exact, known loss.
``SimControl.DropFrames`` ``n``
    a data drop at the source: the next ``n`` frames never arrive (no
    trigger can fall in them; the frame index jumps), DATADROP counts it.
``SimControl.PauseAlive`` ``true|false``
    stop or resume ALIVE (a hung DASTARD).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from daq.dastard.status import (
    Alive,
    ChanGroup,
    ChannelNames,
    DataDrop,
    ServerStatus,
    TriggerRate,
)
from daq.dastard.wire import RECORD_HEADER_BYTES, SUMMARY_HEADER_BYTES, Port, SampleType
from simulators.dastard.bank import PulseBank
from simulators.dastard.config import SimConfig
from simulators.dastard.records import projection_basis, record_headers, summaries
from simulators.dastard.rpc_server import RpcFault, RpcServer
from simulators.dastard.triggers import TriggerSchedule

log = logging.getLogger(__name__)

NS = 1_000_000_000
#: Cross-talk fraction of a secondary record's pulse.
CROSSTALK = 0.01
#: Most log entries kept with ``log_sent``.
MAX_LOG = 2_000_000


class _SendAll:
    """Marker for the status thread: repeat the last message of every tag."""


class _Run:
    """The state of one run of the simulated source (between Start and Stop)."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator, t0_ns: int) -> None:
        self.t0_ns = t0_ns
        self.dt_ns = cfg.sample_period_s * NS
        self.schedule = TriggerSchedule(cfg.channels, cfg.rate_hz, cfg.samples,
                                        cfg.sample_period_s, rng)
        self.produced_until = 0  # frames below this have been turned into records
        self.hi_ns = math.ceil(t0_ns / NS) * NS  # the first window ends at a whole second
        self.hi_frame = self.frame_at(self.hi_ns)
        self.window_counts = np.zeros(cfg.channels, dtype=np.int64)

    def frame_at(self, t_ns: int) -> int:
        """The frame sampled at ``t_ns`` (DASTARD's rounding)."""
        return round((t_ns - self.t0_ns) / self.dt_ns)

    def times(self, frames: np.ndarray) -> np.ndarray:
        """Trigger times of ``frames``, ns."""
        return self.t0_ns + np.rint(frames * self.dt_ns).astype(np.int64)


class DastardSim:
    """A simulated DASTARD serving an array of TES channels.

    Args:
        cfg: the simulator's settings.
    """

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self._rng = np.random.default_rng(cfg.seed)
        self.bank = PulseBank.build(cfg, self._rng)
        self._basis = (projection_basis(self.bank.pulses, cfg.summary_coefficients, self._rng)
                       if cfg.summary_coefficients else None)
        self._sample_type = SampleType.INT16 if cfg.signed else SampleType.UINT16
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._status: queue.SimpleQueue[tuple[bytes, bytes] | _SendAll] = queue.SimpleQueue()
        self._context = zmq.Context()
        self._threads: list[threading.Thread] = []
        self._ready: list[threading.Event] = []
        self._errors: list[BaseException] = []
        self._run: _Run | None = None
        self._run_wanted = cfg.start
        self._alive_paused = False
        self._drop_frames = 0
        self._withhold = np.zeros(cfg.channels, dtype=np.int64)
        self._bytes_sent = 0
        n = cfg.channels
        self.triggered = np.zeros(n, dtype=np.int64)
        self.sent = np.zeros(n, dtype=np.int64)
        self.withheld = np.zeros(n, dtype=np.int64)
        self.secondary_sent = np.zeros(n, dtype=np.int64)
        self.summaries_sent = np.zeros(n, dtype=np.int64)
        self.windows: list[TriggerRate] = []
        self.data_drops = 0
        self.sent_log: list[tuple[Any, ...]] = []
        self._rpc: RpcServer | None = None

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind all five ports and start serving; raises if a port cannot be bound."""
        self._rpc = RpcServer(self.cfg.bind, self.cfg.base_port + Port.CONTROL, self.dispatch)
        for name, target in (("data", self._data_loop), ("status", self._status_loop)):
            ready = threading.Event()
            thread = threading.Thread(target=self._guard(target, ready),
                                      name=f"dastard-sim-{name}", daemon=True)
            self._ready.append(ready)
            self._threads.append(thread)
            thread.start()
        for ready in self._ready:
            ready.wait(timeout_s)
        if self._errors:
            self.stop()
            raise self._errors[0]
        self._rpc.start()

    def stop(self) -> None:
        """Stop every thread and close every port."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)
        if self._rpc is not None:
            self._rpc.stop()
            self._rpc = None
        self._context.term()

    def _guard(self, target: Callable[[threading.Event], None],
               ready: threading.Event) -> Callable[[], None]:
        def run() -> None:
            try:
                target(ready)
            except Exception as exc:  # start() reports a failure to bind; later ones are logged
                self._errors.append(exc)
                if ready.is_set() and not self._stop.is_set():
                    log.exception("DASTARD simulator thread failed")
                ready.set()
        return run

    def _pub(self, port: Port) -> zmq.Socket:
        sock = self._context.socket(zmq.PUB)
        # The configured mark is for the record ports; status keeps ZeroMQ's default, as
        # DASTARD's status socket does.
        sock.setsockopt(zmq.SNDHWM, 1000 if port is Port.STATUS else self.cfg.hwm)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(f"tcp://{self.cfg.bind}:{port.of(self.cfg.base_port)}")
        except zmq.ZMQError:
            sock.close()  # an open socket would keep the context from terminating
            raise
        return sock

    @property
    def run_started_ns(self) -> int | None:
        """When the running source's frame 0 was sampled (None: stopped)."""
        run = self._run
        return run.t0_ns if run is not None else None

    # ---- control ----------------------------------------------------------------------------

    def dispatch(self, method: str, param: Any) -> Any:
        """Answer one control request (JSON-RPC thread)."""
        if method == "SourceControl.Start":
            with self._lock:
                if self._run is not None or self._run_wanted:
                    raise RpcFault("already have active source, do not start")
                self._run_wanted = True
                self._follow_wanted_state()  # at once: DASTARD's Start returns a running source
            return True
        if method == "SourceControl.Stop":
            with self._lock:
                if self._run is None and not self._run_wanted:
                    raise RpcFault("No source is active")
                self._run_wanted = False
                self._follow_wanted_state()
            return True
        if method == "SourceControl.SendAllStatus":
            with self._lock:
                self._send_status_message()
            self._status.put(_SendAll())
            return False  # DASTARD never sets this reply
        if method == "SimControl.Counts":
            with self._lock:
                return {"triggered": self.triggered.tolist(), "sent": self.sent.tolist(),
                        "withheld": self.withheld.tolist(),
                        "secondary": self.secondary_sent.tolist(),
                        "summaries": self.summaries_sent.tolist(),
                        "windows": len(self.windows), "data_drops": self.data_drops,
                        "running": self._run is not None}
        if method == "SimControl.Windows":
            with self._lock:
                return [{"HiTime": w.hi_time_ns, "Duration": w.duration_ns,
                         "CountsSeen": list(w.counts)} for w in self.windows]
        if method == "SimControl.Sent":
            with self._lock:
                return [list(entry) for entry in self.sent_log]
        if method == "SimControl.Withhold":
            channel, count = self._withhold_args(param)
            with self._lock:
                self._withhold[channel] += count
            return True
        if method == "SimControl.DropFrames":
            if isinstance(param, bool) or not isinstance(param, int) or param <= 0:
                raise RpcFault(f"DropFrames needs a positive frame count, got {param!r}")
            with self._lock:
                self._drop_frames += param
            return True
        if method == "SimControl.PauseAlive":
            self._alive_paused = bool(param)
            return True
        raise RpcFault(f"rpc: can't find method {method}")

    def _withhold_args(self, param: Any) -> tuple[int, int]:
        if not isinstance(param, dict):
            raise RpcFault('Withhold needs {"Channel": index, "Count": n}')
        channel, count = param.get("Channel"), param.get("Count")
        if not isinstance(channel, int) or not 0 <= channel < self.cfg.channels:
            raise RpcFault(f"Channel must be an index below {self.cfg.channels}, got {channel!r}")
        if not isinstance(count, int) or count < 0:
            raise RpcFault(f"Count must be >= 0, got {count!r}")
        return channel, count

    # ---- status thread ----------------------------------------------------------------------

    def _status_loop(self, ready: threading.Event) -> None:
        pub = self._pub(Port.STATUS)
        ready.set()
        last: dict[bytes, tuple[bytes, bytes]] = {}
        period = self.cfg.alive_period_s
        next_alive = time.monotonic() + period
        last_alive = time.monotonic()
        bytes_at_last_alive = 0
        try:
            while not self._stop.is_set():
                wait = min(0.1, max(0.0, next_alive - time.monotonic()))
                try:
                    item: tuple[bytes, bytes] | _SendAll | None = self._status.get(timeout=wait)
                except queue.Empty:
                    item = None
                if isinstance(item, _SendAll):
                    for frames in list(last.values()):
                        pub.send_multipart(frames)
                elif item is not None:
                    pub.send_multipart(item)
                    last[item[0]] = item
                now = time.monotonic()
                if now >= next_alive:
                    next_alive += period
                    if next_alive < now:
                        next_alive = now + period
                    sent = self._bytes_sent
                    mb = (sent - bytes_at_last_alive) / 1e6
                    alive = Alive(running=self._run is not None, time_s=now - last_alive,
                                  data_mb=mb, hw_actual_mb=mb).encode()
                    bytes_at_last_alive, last_alive = sent, now
                    if not self._alive_paused:
                        pub.send_multipart(alive)
                        last[alive[0]] = alive
        finally:
            pub.close()

    def _send_status_message(self) -> None:
        cfg = self.cfg
        self._status.put(ServerStatus(
            running=self._run is not None, source_name=cfg.source_name,
            nchannels=cfg.channels, nsamples=cfg.samples, npresamp=cfg.presamples,
            sample_period_ns=round(cfg.sample_period_s * NS),
            chan_groups=(ChanGroup(1, cfg.channels),),
            channels_with_projectors=tuple(range(cfg.channels)) if self._basis is not None
            else ()).encode())

    # ---- data thread ------------------------------------------------------------------------

    def _data_loop(self, ready: threading.Event) -> None:
        socks: dict[Port, zmq.Socket] = {}
        try:
            for port in (Port.PRIMARY, Port.SECONDARY, Port.SUMMARIES):
                socks[port] = self._pub(port)
            ready.set()
            tick = self.cfg.tick_s
            next_tick = time.monotonic()
            while not self._stop.is_set():
                with self._lock:
                    self._follow_wanted_state()
                    if self._run is not None:
                        self._produce(self._run, socks, time.time_ns())
                next_tick += tick
                wait = next_tick - time.monotonic()
                if wait < -1.0:  # more than a second behind: do not try to catch up in a burst
                    next_tick = time.monotonic()
                self._stop.wait(max(0.0, wait))
        finally:
            for sock in socks.values():
                sock.close()

    def _follow_wanted_state(self) -> None:
        if self._run_wanted and self._run is None:
            self._run = _Run(self.cfg, self._rng, time.time_ns())
            self.data_drops = 0
            self.windows = []
            self._send_status_message()
            self._status.put(ChannelNames(self.cfg.channel_names).encode())
            self._status.put(DataDrop(0).encode())  # DASTARD sends one at the start of a run
        elif not self._run_wanted and self._run is not None:
            self._run = None
            self._send_status_message()

    def _produce(self, run: _Run, socks: dict[Port, zmq.Socket], now_ns: int) -> None:
        cfg = self.cfg
        sampled = int((now_ns - run.t0_ns) // run.dt_ns)  # frames sampled so far
        until = sampled - (cfg.samples - cfg.presamples) + 1  # whole records end before this
        if until <= run.produced_until:
            return
        if self._drop_frames:
            run.schedule.skip(until, until + self._drop_frames)
            self._drop_frames = 0
            self.data_drops += 1
            self._status.put(DataDrop(self.data_drops).encode())
        channels, frames = run.schedule.take(until)
        if len(channels):
            times = run.times(frames)
            self._send_records(socks, channels, frames, times)
        self._count_windows(run, channels, frames, until)
        run.produced_until = until

    def _send_records(self, socks: dict[Port, zmq.Socket], channels: np.ndarray,
                      frames: np.ndarray, times: np.ndarray) -> None:
        cfg = self.cfg
        rows = self.bank.stamp(channels, self._rng)
        if not cfg.signed:
            unsigned = rows.view(np.uint16)
            np.bitwise_xor(unsigned, 0x8000, out=unsigned)  # baseline at mid-scale
            rows = unsigned
        skip = self._withheld_mask(channels)
        headers = self._headers(channels, frames, times)
        self._publish(socks[Port.PRIMARY], headers, RECORD_HEADER_BYTES, rows, skip)
        self.triggered += np.bincount(channels, minlength=cfg.channels)
        self.sent += np.bincount(channels[~skip], minlength=cfg.channels)
        self.withheld += np.bincount(channels[skip], minlength=cfg.channels)
        self._bytes_sent += int(rows.nbytes)
        if cfg.log_sent:
            self._log(channels, frames, times, rows, skip)
        if cfg.secondary:
            neighbours = (channels + 1) % cfg.channels
            rows2 = self.bank.stamp(neighbours, self._rng, crosstalk=CROSSTALK)
            if not cfg.signed:
                unsigned2 = rows2.view(np.uint16)
                np.bitwise_xor(unsigned2, 0x8000, out=unsigned2)
                rows2 = unsigned2
            headers2 = self._headers(neighbours, frames, times)
            none = np.zeros(len(neighbours), dtype=bool)
            self._publish(socks[Port.SECONDARY], headers2, RECORD_HEADER_BYTES, rows2, none)
            self.secondary_sent += np.bincount(neighbours, minlength=cfg.channels)
        if cfg.summaries:
            sent = ~skip
            head, coefs = summaries(rows[sent], channels[sent], frames[sent], times[sent],
                                    presamples=cfg.presamples, basis=self._basis)
            self._publish(socks[Port.SUMMARIES], memoryview(head), SUMMARY_HEADER_BYTES, coefs,
                          np.zeros(len(coefs), dtype=bool))
            self.summaries_sent += np.bincount(channels[sent], minlength=cfg.channels)

    def _headers(self, channels: np.ndarray, frames: np.ndarray,
                 times: np.ndarray) -> memoryview:
        cfg = self.cfg
        return memoryview(record_headers(
            channels, frames, times, sample_type=self._sample_type, presamples=cfg.presamples,
            samples=cfg.samples, sample_period_s=cfg.sample_period_s,
            volts_per_arb=cfg.volts_per_count))

    @staticmethod
    def _publish(sock: zmq.Socket, headers: memoryview, size: int, payloads: np.ndarray,
                 skip: np.ndarray) -> None:
        """Two frames per item: its header slice, then its row (copied into the message)."""
        more = zmq.SNDMORE
        for i in range(len(payloads)):
            if skip[i]:
                continue
            sock.send(headers[i * size:(i + 1) * size], more)
            sock.send(payloads[i])

    def _withheld_mask(self, channels: np.ndarray) -> np.ndarray:
        skip = np.zeros(len(channels), dtype=bool)
        for channel in np.flatnonzero(self._withhold):
            hits = np.flatnonzero(channels == channel)[: self._withhold[channel]]
            skip[hits] = True
            self._withhold[channel] -= len(hits)
        return skip

    def _log(self, channels: np.ndarray, frames: np.ndarray, times: np.ndarray,
             rows: np.ndarray, skip: np.ndarray) -> None:
        if len(self.sent_log) >= MAX_LOG:
            return
        cfg = self.cfg
        period = float(np.float32(cfg.sample_period_s))
        vpa = float(np.float32(cfg.volts_per_count))
        code = int(self._sample_type)
        for i in range(len(channels)):
            self.sent_log.append((int(channels[i]), int(frames[i]), int(times[i]),
                                  cfg.presamples, cfg.samples, period, vpa, code,
                                  zlib.crc32(rows[i]), bool(skip[i])))

    def _count_windows(self, run: _Run, channels: np.ndarray, frames: np.ndarray,
                       until: int) -> None:
        """Add this batch to DASTARD's trigger-count windows; queue every completed one."""
        start = 0
        while True:
            end = int(np.searchsorted(frames, run.hi_frame, side="right"))
            if end > start:
                run.window_counts += np.bincount(channels[start:end],
                                                 minlength=self.cfg.channels)
                start = end
            if until <= run.hi_frame:  # frames up to hi are not all made yet
                return
            window = TriggerRate(hi_time_ns=run.hi_ns, duration_ns=NS,
                                 counts=tuple(int(c) for c in run.window_counts))
            self.windows.append(window)
            self._status.put(window.encode())
            run.hi_ns += NS
            run.hi_frame = run.frame_at(run.hi_ns)
            run.window_counts = np.zeros(self.cfg.channels, dtype=np.int64)
