"""``qupdaq bench bus``: our live path against raw pyzmq, measured in the same run.

Both sides use the same topology, three processes on this machine:
publisher -> proxy (XSUB/XPUB) -> subscriber. Ours is
:class:`daq.bus.Publisher` -> :class:`daq.bus.Broker` (with its last-value
cache) -> :class:`daq.bus.Subscriber`, every message built, stamped, encoded,
decoded and gap-checked; raw is ``send_multipart([topic, payload])`` through
``zmq.proxy`` to ``recv_multipart()``.

Scalars: raw sends one message per sample (what a plain pyzmq program does);
ours publishes one ``messages.scalar`` per sample too, with the publisher's
batching on (``batch_s`` 5 ms, the daemon's setting), so the samples of the
stream travel as batches of rows; the subscriber counts samples. Both rates
are samples per second.

Each case: the publisher sends warm-up messages until the subscriber has
seen one (so slow-joiner losses do not count), then a burst of N messages.
The subscriber's clock runs from the first to the last burst message it
receives; the rate is received / that time. Dropped messages (high-water
mark) are reported, not hidden.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import zmq

WARMUP_TOPIC = b"data/bench/warmup"
HWM = 1_000_000


@dataclass(frozen=True)
class Case:
    """One payload shape to measure."""

    name: str
    count: int
    payload_bytes: int
    kind: str  # "scalar" or "record"


@dataclass(frozen=True)
class Result:
    """What the subscriber measured for one case and one implementation."""

    received: int
    seconds: float
    missed_reported: int

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else float("nan")


# ---- the proxy process ------------------------------------------------------------------------


def _proxy_main(ours: bool, conn: Connection) -> None:
    if ours:
        from daq.bus import Broker

        broker = Broker(hwm=HWM)
        endpoints = broker.start()
        conn.send((endpoints.publish, endpoints.subscribe))
        conn.recv()  # told to stop
        broker.stop()
        return
    ctx: zmq.Context = zmq.Context()
    xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):
        sock.setsockopt(zmq.SNDHWM, HWM)
        sock.setsockopt(zmq.RCVHWM, HWM)
    xsub.bind("tcp://127.0.0.1:*")
    xpub.bind("tcp://127.0.0.1:*")
    conn.send((xsub.getsockopt_string(zmq.LAST_ENDPOINT), xpub.getsockopt_string(zmq.LAST_ENDPOINT)))
    ctl_url = "inproc://bench-ctl"
    ctl = ctx.socket(zmq.PAIR)
    ctl.bind(ctl_url)

    import threading

    def wait_stop() -> None:
        conn.recv()
        sender = ctx.socket(zmq.PAIR)
        sender.connect(ctl_url)
        sender.send(b"TERMINATE")
        sender.close()

    threading.Thread(target=wait_stop, daemon=True).start()
    zmq.proxy_steerable(xsub, xpub, None, ctl)
    for sock in (xsub, xpub, ctl):
        sock.close(linger=0)
    ctx.term()


# ---- the subscriber process -------------------------------------------------------------------


def _subscriber_main(ours: bool, url: str, count: int, conn: Connection) -> None:
    if ours:
        from daq.bus import Subscriber

        sub = Subscriber(url, ["data/bench", "wave/bench"], hwm=HWM)
        told = False
        while True:
            msg = sub.recv(10)
            if msg is None:
                conn.send(Result(0, 0.0, 0))
                return
            if msg.channel != "warmup":
                break
            if not told:
                conn.send("ready")
                told = True
        received, start = (len(msg.data) if msg.data is not None and msg.kind.value == "data"
                           else 1), time.perf_counter()
        end = start
        while received < count and (msg := sub.recv(2.0)) is not None:
            # A batch of scalars is many samples: count samples, as raw counts messages.
            received += len(msg.data) if msg.data is not None and msg.kind.value == "data" \
                else 1
            end = time.perf_counter()
        missed = sub.gaps.missed
        sub.close()
    else:
        ctx: zmq.Context = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, HWM)
        sock.setsockopt(zmq.SUBSCRIBE, b"data/bench")
        sock.setsockopt(zmq.SUBSCRIBE, b"wave/bench")
        sock.connect(url)
        told = False
        while True:
            if not sock.poll(10_000):
                conn.send(Result(0, 0.0, 0))
                return
            frames = sock.recv_multipart()
            if frames[0] == WARMUP_TOPIC:
                if not told:
                    conn.send("ready")
                    told = True
                continue
            break
        received, start = 1, time.perf_counter()
        end = start
        while received < count and sock.poll(2000):
            sock.recv_multipart()
            received += 1
            end = time.perf_counter()
        missed = -1
        sock.close(linger=0)
    conn.send(Result(received, end - start, missed))


# ---- the publisher (runs in the main process) ---------------------------------------------------


def _publish(ours: bool, url: str, case: Case, ready: Connection) -> None:
    payload = _payload(case)
    if ours:
        from daq import messages
        from daq.bus import Publisher

        pub = Publisher(url, name="bench", hwm=HWM,
                        batch_s=0.005 if case.kind == "scalar" else 0.0)
        while not ready.poll(0.001):
            pub.publish(messages.scalar("bench", "warmup", 0.0))
            pub.flush()
        ready.recv()
        if case.kind == "scalar":
            for i in range(case.count):
                pub.publish(messages.scalar("bench", "x", float(i), units="K"))
        else:
            for _ in range(case.count):
                pub.publish(messages.waveform("bench", "rec", payload, dt=1e-6, scale=1e-4))
        pub.close()
        return
    ctx: zmq.Context = zmq.Context.instance()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.connect(url)
    while not ready.poll(0.001):
        sock.send_multipart([WARMUP_TOPIC, b"0"])
    ready.recv()
    topic = b"data/bench/x" if case.kind == "scalar" else b"wave/bench/rec"
    raw = payload.tobytes()
    for _ in range(case.count):
        sock.send_multipart([topic, raw])
    sock.close(linger=5000)


def _payload(case: Case) -> np.ndarray:
    if case.kind == "scalar":
        return np.zeros(case.payload_bytes // 8, np.float64)
    rng = np.random.default_rng(1)
    return rng.integers(-2000, 2000, case.payload_bytes // 2).astype(np.int16)


def run_case(case: Case, ours: bool) -> Result:
    """Measure one case for one implementation; three processes, fresh each time."""
    ctx = mp.get_context("spawn")
    proxy_parent, proxy_child = ctx.Pipe()
    proxy = ctx.Process(target=_proxy_main, args=(ours, proxy_child), daemon=True)
    proxy.start()
    pub_url, sub_url = proxy_parent.recv()
    sub_parent, sub_child = ctx.Pipe()
    sub = ctx.Process(target=_subscriber_main, args=(ours, sub_url, case.count, sub_child),
                      daemon=True)
    sub.start()
    try:
        _publish(ours, pub_url, case, sub_parent)
        result: Any = sub_parent.recv()
    finally:
        sub.join(timeout=30)
        proxy_parent.send("stop")
        proxy.join(timeout=10)
        for proc in (sub, proxy):
            if proc.is_alive():
                proc.kill()
    return result


def main(count_scale: float = 1.0) -> int:
    """Run every case for ours and raw, print a table with ratios; return 0."""
    cases = [
        Case("scalar 64 B", int(200_000 * count_scale), 64, "scalar"),
        Case("record 16 KiB int16", int(50_000 * count_scale), 16 * 1024, "record"),
    ]
    print("qupdaq bench bus: publisher -> proxy -> subscriber, 3 processes, this machine")
    header = (f"{'case':<22}{'impl':<8}{'received':>10}{'msgs/s':>12}{'MB/s':>10}"
              f"{'missed':>8}{'ours/raw':>10}")
    print(f"load {os.getloadavg()[0]:.2f} at the start; scalars: samples/s (ours batched, "
          "raw one message each)")
    print(header)
    print("-" * len(header))
    for case in cases:
        raw = run_case(case, ours=False)
        ours = run_case(case, ours=True)
        for label, res in (("raw", raw), ("qupdaq", ours)):
            mbps = res.rate * case.payload_bytes / 1e6
            ratio = f"{ours.rate / raw.rate:>10.2f}" if label == "qupdaq" and raw.rate else ""
            missed = "n/a" if res.missed_reported < 0 else str(res.missed_reported)
            print(f"{case.name:<22}{label:<8}{res.received:>10}{res.rate:>12.0f}{mbps:>10.1f}"
                  f"{missed:>8}{ratio}")
    print("payload sizes are the application payload; qupdaq adds topic + binary header frames.")
    return 0
