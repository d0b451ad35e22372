"""A bus peer run as a separate process by the bus tests (``python -m tests.daq.bus_peer``).

Modes:
    burst URL --count N --streams S --wait-topic T
        wait until a subscriber wants T, send N scalar messages round-robin
        over S streams, then heartbeat until stdin closes.
    steady URL --rate HZ --streams S
        publish forever at about HZ messages/s over S streams (value = seq),
        heartbeating; print "publishing" once started.
    count URL --count N --prefix P [--hwm H] [--slow]
        subscribe, receive until every one of N messages is accounted for
        (received or reported missing via heartbeats), print a JSON report
        with the true missing seqs and the reported gaps.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from daq import messages
from daq.bus import Publisher, Subscriber


def _stdin_closed() -> threading.Event:
    closed = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        closed.set()

    threading.Thread(target=watch, daemon=True).start()
    return closed


def burst(args: argparse.Namespace) -> None:
    closed = _stdin_closed()
    pub = Publisher(args.url, name=args.name, heartbeat_s=args.heartbeat, hwm=args.hwm)
    if not pub.wait_for_subscriber(args.wait_topic, timeout_s=30):
        print("no subscriber", flush=True)
        return
    print("sending", flush=True)
    for i in range(args.count):
        pub.publish(messages.scalar("burst", f"s{i % args.streams}", float(i)))
    print("sent", flush=True)
    while not closed.is_set():
        pub.serve(args.heartbeat)
    pub.close()


def steady(args: argparse.Namespace) -> None:
    closed = _stdin_closed()
    pub = Publisher(args.url, name=args.name, heartbeat_s=args.heartbeat)
    period = 1.0 / args.rate
    print("publishing", flush=True)
    next_t = time.monotonic()
    i = 0
    while not closed.is_set():
        stream = f"s{i % args.streams}"
        msg = pub.publish(messages.scalar("steady", stream, 0.0))
        i += 1
        del msg
        next_t += period
        pub.serve(max(0.0, next_t - time.monotonic()))
    pub.close()


def count(args: argparse.Namespace) -> None:
    sub = Subscriber(args.url, [args.prefix], hwm=args.hwm)
    seen: dict[str, set[int]] = {}
    print("subscribed", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        msg = sub.recv(1.0)
        if msg is not None:
            seen.setdefault(msg.stream, set()).add(msg.seq)
            if args.slow and msg.seq % 50 == 0:
                time.sleep(0.02)  # a deliberately slow consumer, to make the HWM drop
        accounted = sum(s.received + s.missed for s in sub.gaps.streams.values())
        if accounted >= args.count:
            break
    true_missing = {}
    for stream, state in sub.gaps.streams.items():
        got = seen.get(stream, set())
        true_missing[stream] = sorted(set(range(0, state.last_seq + 1)) - got)
    reported = {}
    for gap in sub.gaps.gaps:
        reported.setdefault(gap.stream, []).extend(range(gap.first, gap.last + 1))
    print(json.dumps({
        "received": sub.gaps.received,
        "missed": sub.gaps.missed,
        "true_missing": true_missing,
        "reported_missing": reported,
        "first_seq": {s: min(v) for s, v in seen.items()},
        "decode_errors": sub.decode_errors,
    }), flush=True)
    sub.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["burst", "steady", "count"])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--prefix", default="data/")
    parser.add_argument("--wait-topic", default="data/burst/s0")
    parser.add_argument("--name", default="peer")
    parser.add_argument("--heartbeat", type=float, default=0.2)
    parser.add_argument("--hwm", type=int, default=1_000_000)
    parser.add_argument("--slow", action="store_true")
    args = parser.parse_args()
    {"burst": burst, "steady": steady, "count": count}[args.mode](args)


if __name__ == "__main__":
    main()
