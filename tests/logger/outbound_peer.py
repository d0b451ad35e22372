"""A daemon-like process for the reliable-path tests (``python -m tests.logger.outbound_peer``).

It runs the daemon's real :class:`~daq.daemon.outbound.OutboundStage` (live
path to a bus nobody listens on, reliable path with its spool on disk) and
puts scalar samples on ``--streams`` streams at ``--rate`` messages per
second; the value of each sample is its index in this run, so a stored
sample's value equals its seq. Lines on stdout (the tests read them)::

    ready epoch <epoch> instance <id>
    stats put=<n> unacked=<n> spooled_bytes=<n> oldest_s=<s> pending_sessions=<n>
          resends=<n> resent=<n> dropped=<n> errors=<n> rss_kb=<n>

one ``stats`` line every 0.2 s. SIGTERM stops it cleanly (what the logger
has not acknowledged within ``--flush`` seconds stays in the spool).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from daq import messages
from daq.daemon.outbound import OutboundStage
from tests.procs import free_port


def rss_kb() -> int:
    """This process's resident memory (VmRSS, kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("logger_url")
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--name", default="peer")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--flush", type=float, default=5.0)
    args = parser.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    stage = OutboundStage(f"tcp://127.0.0.1:{free_port()}", name=args.name,
                          logger_url=args.logger_url, spool_path=args.spool, heartbeat_s=0.2)
    stage.start()
    assert stage.sender is not None
    print(f"ready epoch {stage.epoch} instance {stage.sender.instance}", flush=True)
    put = 0
    started = time.monotonic()
    next_stats = 0.0
    while not done.is_set():
        due = int((time.monotonic() - started) * args.rate)
        while put < due:
            k = put % args.streams
            stage.put(messages.scalar("peer", f"s{k}", float(put // args.streams),
                                      t=1_700_000_000_000_000_000 + put))
            put += 1
        now = time.monotonic()
        if now >= next_stats:
            next_stats = now + 0.2
            s = stage.stats
            if s is not None:
                print(f"stats put={put} unacked={s.unacked} spooled_bytes={s.spooled_bytes} "
                      f"oldest_s={s.oldest_unacked_age_s:.2f} "
                      f"pending_sessions={s.pending_sessions} resends={s.resends} "
                      f"resent={s.resent_messages} dropped={s.overflow_dropped} "
                      f"errors={s.logger_errors_total} rss_kb={rss_kb()}", flush=True)
        done.wait(0.005)
    stage.stop(flush_s=args.flush)
    print(f"stopped put={put} unacked={stage.sender.unacked}", flush=True)


if __name__ == "__main__":
    main()
