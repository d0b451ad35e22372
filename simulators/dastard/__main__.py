"""``python -m simulators.dastard [CONFIG] [options]``: a simulated DASTARD on five TCP ports.

CONFIG is an optional YAML file (see :mod:`simulators.dastard.config`);
the options override it. When every port is bound it prints
``dastard-sim ready base=<port>`` and serves until SIGINT or SIGTERM, then
stops cleanly and exits 0. Exit codes: 1 a port could not be bound, 2 a bad
config or option.

Example, the benchmark array (256 channels x 100 triggers/s x 1000 samples)::

    python -m simulators.dastard --base-port 5500 --channels 256 --rate 100 --samples 1000
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from daq.errors import ConfigError
from simulators.dastard.config import SimConfig, load_sim_config
from simulators.dastard.server import DastardSim

READY_LINE = "dastard-sim ready"

#: option -> SimConfig field
_OPTIONS: dict[str, tuple[str, type, str]] = {
    "--bind": ("bind", str, "address of the five ports"),
    "--base-port": ("base_port", int, "control port; status, records, secondary and "
                    "summaries follow"),
    "--channels": ("channels", int, "TES channels"),
    "--rate": ("rate_hz", float, "primary triggers per second per channel"),
    "--samples": ("samples", int, "samples per record"),
    "--presamples": ("presamples", int, "samples before the trigger"),
    "--sample-period": ("sample_period_s", float, "seconds per sample"),
    "--volts-per-count": ("volts_per_count", float, "digitiser scale"),
    "--hwm": ("hwm", int, "send high-water mark per socket (DASTARD uses 10)"),
    "--alive-period": ("alive_period_s", float, "seconds between ALIVE messages"),
    "--tick": ("tick_s", float, "seconds between record batches"),
    "--summary-coefficients": ("summary_coefficients", int, "projection coefficients per "
                               "summary"),
    "--seed": ("seed", int, "random seed"),
}
_FLAGS: dict[str, tuple[str, bool, str]] = {
    "--secondary": ("secondary", True, "publish secondary (cross-talk) records"),
    "--summaries": ("summaries", True, "publish pulse summaries"),
    "--unsigned": ("signed", False, "uint16 samples (baseline at 32768)"),
    "--no-start": ("start", False, "wait for SourceControl.Start"),
    "--log-sent": ("log_sent", True, "keep every sent header for SimControl.Sent"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.dastard",
                                     description="Serve a simulated DASTARD (TES array).")
    parser.add_argument("config", nargs="?", help="YAML file with the simulator's settings")
    for option, (field, kind, text) in _OPTIONS.items():
        parser.add_argument(option, dest=field, type=kind, help=text)
    for option, (field, value, text) in _FLAGS.items():
        parser.add_argument(option, dest=field, action="store_const", const=value, help=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; see the module docstring for exit codes."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {field: value for field, value in vars(args).items()
                                 if field != "config" and value is not None}
    try:
        cfg = (load_sim_config(args.config, **overrides) if args.config
               else SimConfig(**overrides))
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"dastard-sim: {exc}", file=sys.stderr)
        return 2
    sim = DastardSim(cfg)
    try:
        sim.start()
    except Exception as exc:  # a port in use, most likely
        print(f"dastard-sim: cannot start: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"{READY_LINE} base={cfg.base_port}", flush=True)
    done.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
