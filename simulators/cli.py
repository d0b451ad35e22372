"""``qupdaq sim CONFIG [--list]``: run the simulated lab described by a lab config file.

The file's ``simulation:`` section says what to serve (see
:mod:`simulators.config`): one lab, or with ``fridges`` a facility of
several (:mod:`simulators.facility`); every other top-level key belongs to
the services and is ignored here, so one file starts both.

* ``--list`` prints one line per instrument, ``name  model  resource`` with
  the VISA resource ``TCPIP::127.0.0.1::PORT::SOCKET``, and exits. With
  fixed ports nothing is started; with port 0 the lab is started just long
  enough to learn the ports the system chose.
* Otherwise the lab starts, prints the same lines followed by
  ``sim ready`` (the line `qupdaq up` waits for), and serves until SIGINT or SIGTERM, then
  stops cleanly and exits 0.

Exit codes: 0 done, 1 the lab could not start (e.g. a port in use), 2 a bad
config (the message names the file and the key).

Interface: :func:`main` ``(argv=None) -> int``; also ``python -m simulators.cli``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from daq.errors import ConfigError
from simulators.config import load_simulation_config
from simulators.facility import SimFacility
from simulators.lab import SimLab

log = logging.getLogger("simulators.cli")

READY_LINE = "sim ready"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qupdaq sim",
        description="Serve simulated instruments (fridge, thermometry, TES readout) on TCP ports.",
    )
    parser.add_argument("config", help="lab config file (YAML) with a 'simulation:' section")
    parser.add_argument(
        "--list", action="store_true", help="print the instruments and their VISA resources"
    )
    return parser


def _print_rows(lab: SimLab | SimFacility) -> None:
    rows = lab.describe()
    width = max((len(name) for name, _, _ in rows), default=0) + 2
    for name, model, resource in rows:
        print(f"{name:<{width}}{model:<20}{resource}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``qupdaq sim``; returns the process exit code."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        config = load_simulation_config(args.config)
    except ConfigError as exc:
        print(f"qupdaq sim: bad config: {exc}", file=sys.stderr)
        return 2
    lab: SimLab | SimFacility = SimFacility(config) if config.fridges else SimLab(config)
    labs = [config.lab(name) for name in config.fridges] if config.fridges else [config]
    items = [item for lab_config in labs for _, item in lab_config.instruments.items()]
    if args.list and all(item.port for item in items if item.enabled):
        _print_rows(lab)
        return 0
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the simulated lab", signum)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            lab.start()
        except OSError as exc:
            print(f"qupdaq sim: cannot start the simulated lab: {exc}", file=sys.stderr)
            return 1
        try:
            _print_rows(lab)
            if args.list:
                return 0
            print(READY_LINE, flush=True)
            while not stop.wait(timeout=1.0):  # wakes up for the signal handler
                pass
        finally:
            lab.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("simulated lab stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
