"""The publishing side of ``qupdaq bench gui``: a broker and a publisher, in a process of their own.

::

    python -m gui.bench_source CHANNELS RATE_HZ SAMPLES

Starts a :class:`daq.bus.Broker` on free loopback ports, prints one
``source ready publish=... subscribe=... snapshot=...`` line, waits for a
subscriber, then publishes until its stdin closes, every ``1/RATE_HZ``
seconds: one sample on each of ``bench/ch0`` ... ``bench/ch<CHANNELS-1>``
(a slow random walk around 15 mK, in K) and one ``wave/bench/record`` of
``SAMPLES`` int16 samples (a TES-like pulse on noise, 1 µs per sample).
Every message's header time is its publish time, so the dashboard can tell
the publish-to-paint latency. Qt-free (it runs beside the GUI, like a daemon).
"""

from __future__ import annotations

import select
import sys
import time

import numpy as np

from daq import messages
from daq.bus import Broker, Publisher

NAME = "bench-source"


def pulse_record(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, int]:
    """One int16 record: a two-exponential pulse after a quarter of pre-trigger noise."""
    pre = samples // 4
    t = np.arange(samples) - pre
    shape = np.where(t >= 0, np.exp(-t / 400.0) - np.exp(-t / 40.0), 0.0)
    volts = 0.6 * shape * rng.uniform(0.5, 1.0) + rng.normal(0.0, 0.004, samples)
    return np.clip(volts / 6.103515625e-05, -32768, 32767).astype(np.int16), pre


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    channels, rate, samples = int(args[0]), float(args[1]), int(args[2])
    broker = Broker("127.0.0.1", 0, 0, 0)
    ends = broker.start()
    print(f"source ready publish={ends.publish} subscribe={ends.subscribe} "
          f"snapshot={ends.snapshot}", flush=True)
    rng = np.random.default_rng(1)
    level = np.full(channels, 0.015)
    try:
        with Publisher(ends.publish, name=NAME, heartbeat_s=0.5) as pub:
            if not pub.wait_for_subscriber("data/bench", timeout_s=60):
                print("source: no subscriber came", file=sys.stderr, flush=True)
                return 1
            period = 1.0 / rate
            start = time.monotonic()
            k = 0
            while True:
                if select.select([sys.stdin], [], [], 0)[0] and not sys.stdin.readline():
                    break  # the bench closed our stdin: done
                level *= np.exp(rng.normal(0.0, 0.002, channels))
                for ch in range(channels):
                    pub.publish(messages.scalar("bench", f"ch{ch}", float(level[ch]), units="K"))
                raw, pre = pulse_record(rng, samples)
                pub.publish(messages.waveform("bench", "record", raw, dt=1e-6,
                                              scale=6.103515625e-05, presamples=pre))
                k += 1
                delay = start + k * period - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the source, not waiting for readiness
                pub.tick()
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
