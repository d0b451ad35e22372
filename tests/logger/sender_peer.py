"""A daemon-side sender run as its own process by the crash tests (``python -m tests.logger.sender_peer``).

Sends scalar samples (value = seq) on one stream through a ReliableSender
as fast as its window allows, heartbeating, and prints one line per
acknowledgement progress: ``acked <seq> sent <last seq> unacked <n>``.
It runs until killed. ``--instance`` fixes its instance id (a daemon's
restart is recognised by it), ``--spool`` puts its spool on disk.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from daq import messages
from daq.reliable import ReliableSender


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--pub", default="peer")
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--instance", default=None)
    parser.add_argument("--spool", type=Path, default=None)
    args = parser.parse_args()
    epoch = time.time_ns()
    sender = ReliableSender(args.url, pub=args.pub, epoch=epoch, window=args.window,
                            heartbeat_s=0.05, resend_after_s=1.0, instance=args.instance,
                            spool_path=args.spool)
    print(f"epoch {epoch}", flush=True)
    seq = 0
    last_acked = -1
    while True:
        msg = messages.scalar("peer", "x", float(seq), t=1_000_000 + seq)
        msg.seq, msg.epoch, msg.pub = seq, epoch, args.pub
        sender.send(msg)
        seq += 1
        sender.poll(0.0005)
        acked = sender.acked.get("data/peer/x", -1)
        if acked != last_acked:
            last_acked = acked
            print(f"acked {acked} sent {seq - 1} unacked {sender.unacked}", flush=True)


if __name__ == "__main__":
    main()
