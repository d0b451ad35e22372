"""``qupdaq alarms``: the alarm service, and the alarm list from a terminal.

::

    qupdaq alarms CONFIG                      run the alarm service
    qupdaq alarms list CONFIG [--all] [--json]
    qupdaq alarms ack CONFIG ALARM [ALARM ...] [--comment TEXT]
    qupdaq alarms ack CONFIG --all            every unacknowledged alarm
    qupdaq alarms shelve CONFIG ALARM --for 2h --reason TEXT
    qupdaq alarms unshelve CONFIG ALARM

The service prints one parseable line once it is up (tests and ``qupdaq up``
read it instead of sleeping)::

    alarms ready name=alarms-sim ops=tcp://127.0.0.1:7130 rules=6 restored=3 active=1

and ends with status 3 and the reason when a part of it failed (status 2 for
a bad config: file, key path and reason). The other subcommands go through
a daemon's control endpoint (``--daemon NAME`` in a facility; the first
daemon with ``alarms_url`` by default), so roles, CURVE and the audit trail
apply to a person on SSH at night as to anybody.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daq.errors import ConfigError, QupdaqError
from daq.supervisor import EXIT_FAILED, ServiceFailed

CLIENT_COMMANDS = ("list", "ack", "shelve", "unshelve")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|m|min|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``2h`` or ``1d``.

    Raises:
        ValueError: anything else.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (90s, 30m, 2h, 1d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _service_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qupdaq alarms",
        description="Run the alarm service (rules, state, notifications) of a lab config; "
                    "`qupdaq alarms list|ack|shelve|unshelve CONFIG ...` work the alarm list.")
    p.add_argument("config", type=Path, help="lab config YAML with an alarms section")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def _client_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qupdaq alarms",
                                description="The alarm list, through a daemon's control "
                                            "endpoint (roles and audit apply).")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("config", type=Path, help="lab config YAML")
    common.add_argument("--daemon", metavar="NAME", help="which daemon of a facility config to "
                                                         "go through")
    common.add_argument("--client", help="your name in the audit trail (default user@pid)")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
    c = sub.add_parser("list", parents=[common], help="the alarms that are not normal")
    c.add_argument("--all", action="store_true", help="normal ones too")
    c.add_argument("--json", action="store_true", help="JSON instead of a table")
    c = sub.add_parser("ack", parents=[common], help="acknowledge alarms")
    c.add_argument("alarms", nargs="*", metavar="ALARM")
    c.add_argument("--all", action="store_true", help="every unacknowledged alarm")
    c.add_argument("--comment", default="", help="a note for the log book")
    c = sub.add_parser("shelve", parents=[common], help="silence an alarm for a while")
    c.add_argument("alarm", metavar="ALARM")
    c.add_argument("--for", dest="duration", required=True, help="90s, 30m, 2h, 1d")
    c.add_argument("--reason", required=True, help="why (shown to everybody)")
    c = sub.add_parser("unshelve", parents=[common], help="take an alarm off the shelf")
    c.add_argument("alarm", metavar="ALARM")
    return p


def alarms_main(argv: Sequence[str] | None = None) -> int:
    """``qupdaq alarms ...``; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CLIENT_COMMANDS:
        return _client_main(argv)
    return _service_main(argv)


# ---- the service ------------------------------------------------------------------------


def _service_main(argv: list[str]) -> int:
    from daq.alarms.service import AlarmService
    from daq.config import load_config

    args = _service_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        lab = load_config(args.config)
        service = AlarmService(lab)
    except QupdaqError as exc:
        print(f"qupdaq alarms: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, ConfigError) else 1

    def handler(signum: int, frame: object) -> None:
        service.request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    try:
        endpoints = service.start()
    except QupdaqError as exc:
        service.stop(failure=str(exc))
        print(f"qupdaq alarms: {exc}", file=sys.stderr, flush=True)
        return 2 if isinstance(exc, ConfigError) else 1
    config = service.config
    print(f"alarms ready name={service.name} ops={endpoints.ops} rules={len(config.rules)} "
          f"restored={endpoints.restored} active={endpoints.active}", flush=True)
    try:
        service.supervise()
    except ServiceFailed as exc:
        service.stop(failure=str(exc))
        print(f"alarms failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    service.stop()
    print("alarms stopped", flush=True)
    return 0


# ---- the client -------------------------------------------------------------------------


def _default_daemon(config: Any, wanted: str | None) -> str | None:
    """The facility daemon to go through: the one named, else the first with alarms_url."""
    if wanted is not None or not config.daemons:
        return wanted
    for name, section in config.daemons.items():
        if section.daemon.alarms_url:
            return str(name)
    return str(next(iter(config.daemons)))


def _client_main(argv: list[str]) -> int:
    from daq.client import Lab
    from daq.config import load_config

    args = _client_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        with Lab(config, daemon=_default_daemon(config, args.daemon), client=args.client,
                 timeout_s=args.timeout) as lab:
            if args.command == "list":
                reply = lab.request("alarm_list", everything=args.all)
                if args.json:
                    print(json.dumps(reply["alarms"], indent=2))
                else:
                    print(format_alarms(reply["alarms"], reply.get("lab_states", {})))
                return 0
            if args.command == "ack":
                if args.all == bool(args.alarms):
                    print("qupdaq alarms ack: name the alarms, or --all", file=sys.stderr)
                    return 2
                rows = lab.alarm_ack(*(["*"] if args.all else args.alarms),
                                     comment=args.comment)
            elif args.command == "shelve":
                try:
                    duration = parse_duration(args.duration)
                except ValueError as exc:
                    print(f"qupdaq alarms shelve: {exc}", file=sys.stderr)
                    return 2
                rows = lab.alarm_shelve(args.alarm, duration, args.reason)
            else:
                rows = lab.alarm_unshelve(args.alarm)
    except QupdaqError as exc:
        print(f"qupdaq alarms {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(format_alarms(rows, {}))
    return 0


def _ago(t: Any, now: float) -> str:
    if not isinstance(t, int | float):
        return "-"
    s = max(0.0, now - float(t))
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def format_alarms(rows: list[dict[str, Any]], lab_states: dict[str, bool]) -> str:
    """The alarm list as a plain-text table (grouped alarms indented under their cause)."""
    now = time.time()
    if not rows:
        text = "no alarms"
    else:
        table = [("SEVERITY", "STATE", "ALARM", "SINCE", "REASON")]
        for row in rows:
            state = str(row.get("state", "?"))
            if row.get("shelved"):
                state += f" (shelved by {row.get('shelved_by', '?')}, {row.get('shelve_reason')})"
            if row.get("suppressed_by"):
                state += f" (suppressed: {row['suppressed_by']})"
            name = ("  -> " if row.get("grouped") else "") + str(row.get("alarm", "?"))
            table.append((str(row.get("severity", "?")).upper(), state, name,
                          _ago(row.get("t_raised"), now), str(row.get("reason", ""))[:100]))
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True))
                         + "  " + r[4] for r in table)
    active = [name for name, on in lab_states.items() if on]
    if lab_states:
        text += f"\nlab states: {', '.join(active) if active else 'none active'}"
    return text
