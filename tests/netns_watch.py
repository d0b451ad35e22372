"""The server side's view of a facility, run on the server (inside its namespace) by a test.

::

    python -m tests.netns_watch watch CONFIG CHANNEL FRIDGE [FRIDGE ...]
    python -m tests.netns_watch logger-status CONFIG

``watch`` subscribes, with the config's identity, to ``data/<fridge>/<CHANNEL>``
of every fridge, to the daemons' status and to the alarms, and prints one
line per event, stamped with ``time.monotonic()`` (one clock for every
process of the machine, whatever its namespace)::

    watch ready fridges=fridge1,fridge2                      every fridge delivered a sample
    sample <fridge> <mono>                                   one message of the channel
    stale <publisher> <mono>                                 its heartbeats stopped (2 periods)
    fresh <publisher> <mono>                                 they came back
    backlog <daemon> <mono> <source t ns> <unacked> <oldest unacked age s>
    alarm <stream> <state> <mono>
    watch stopped live_gaps=<messages the live path lost, per stream, JSON>

until SIGTERM. ``logger-status`` prints the logger's counters as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from daq.bus import Subscriber
from daq.config import load_config
from daq.logger.history import HistoryClient
from daq.messages import Kind

POLL_S = 0.05  # how often staleness is looked at, at most


def watch(config_path: Path, channel: str, fridges: list[str]) -> int:
    """Print the events until SIGTERM (see the module docstring)."""
    config = load_config(config_path)
    wanted = {f"data/{fridge}/{channel}": fridge for fridge in fridges}
    sub = Subscriber(config.bus.subscribe_url, [*wanted, "status/", "alarm/"],
                     curve=config.keys_for("bus"))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: done.set())
    signal.signal(signal.SIGINT, lambda signum, frame: done.set())
    seen: set[str] = set()
    stale: set[str] = set()
    try:
        while not done.is_set():
            msg = sub.recv(POLL_S)
            now = time.monotonic()
            if msg is not None:
                if msg.kind is Kind.DATA and msg.stream in wanted:
                    fridge = wanted[msg.stream]
                    print(f"sample {fridge} {now:.3f}", flush=True)
                    if fridge not in seen:
                        seen.add(fridge)
                        if seen == set(fridges):
                            print(f"watch ready fridges={','.join(fridges)}", flush=True)
                elif msg.kind is Kind.STATUS and msg.channel == "daemon":
                    reliable = msg.meta.get("reliable") or {}
                    print(f"backlog {msg.source} {now:.3f} {msg.t} "
                          f"{msg.meta.get('unacked', -1)} "
                          f"{float(reliable.get('oldest_unacked_age_s', -1.0)):.3f}", flush=True)
                elif msg.kind is Kind.ALARM:
                    print(f"alarm {msg.stream} {msg.meta.get('state', '?')} {now:.3f}",
                          flush=True)
            current = set(sub.stale_publishers())
            for name in sorted(current - stale):
                print(f"stale {name} {now:.3f}", flush=True)
            for name in sorted(stale - current):
                print(f"fresh {name} {now:.3f}", flush=True)
            stale = current
        lost = {stream: state.missed for stream, state in sub.gaps.streams.items()
                if state.missed}
        print(f"watch stopped live_gaps={json.dumps(lost)}", flush=True)
    finally:
        sub.close()
    return 0


def logger_status(config_path: Path) -> int:
    """Print the logger's counters (one JSON line)."""
    config = load_config(config_path)
    assert config.logger is not None
    with HistoryClient(config.logger.history_endpoint, curve=config.keys_for("logger"),
                       timeout_s=10) as history:
        print(json.dumps(history.status()), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.netns_watch")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("watch")
    p.add_argument("config", type=Path)
    p.add_argument("channel")
    p.add_argument("fridges", nargs="+")
    p = sub.add_parser("logger-status")
    p.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    if args.command == "watch":
        return watch(args.config, args.channel, args.fridges)
    return logger_status(args.config)


if __name__ == "__main__":
    sys.exit(main())
