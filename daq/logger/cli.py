"""``qupdaq logger CONFIG`` and ``qupdaq export ...``: the logging service's command lines.

``logger_main`` runs the service until SIGINT/SIGTERM. Once both endpoints
are bound it prints one parseable line (tests and ``qupdaq up`` read it
instead of sleeping)::

    logger ready endpoint=tcp://127.0.0.1:7120 history=tcp://127.0.0.1:7121 store=ok

``store=error`` means the store could not be opened yet: the logger runs,
answers every sender with ERROR (their data stays spooled) and retries.

When the config file has a ``bus:`` section (or ``--publish-url`` is
given), the logger publishes its own status on the live bus as
``status/<logger name>/logger`` every ``logger.status_period_s``.

``export_main`` writes one stream and time range to CSV or HDF5.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from daq.errors import ConfigError, QupdaqError

if TYPE_CHECKING:
    from daq.security import ClientKeys


def _logger_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qupdaq logger",
        description="Run the logging service: receive the daemons' reliable path, store "
                    "it (SQLite/PostgreSQL + HDF5), acknowledge, serve history queries.")
    p.add_argument("config", type=Path, help="lab config YAML (its logger: section is used)")
    p.add_argument("--endpoint", help="override logger.endpoint (port 0: any free port)")
    p.add_argument("--history-endpoint", help="override logger.history_endpoint")
    p.add_argument("--directory", help="override logger.directory")
    p.add_argument("--publish-url", help="publish the logger's status here (default: the "
                                         "config's bus.publish_url, if it has a bus section)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


def logger_main(argv: Sequence[str] | None = None) -> int:
    """Run the logger until SIGINT/SIGTERM; return the exit code."""
    import dataclasses

    from daq.config_schema import anchor
    from daq.logger.config import load_logger_config
    from daq.logger.service import LoggerService

    args = _logger_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_logger_config(args.config)
        overrides = {key: value for key, value in (
            ("endpoint", args.endpoint), ("history_endpoint", args.history_endpoint),
            ("directory", args.directory)) if value is not None}
        if overrides:
            try:
                overridden = dataclasses.replace(config, **overrides)
            except ValueError as exc:
                raise ConfigError(str(exc), file=str(args.config), key_path="logger") from None
            anchor(overridden, config.base_dir, config.data_root)
            config = overridden
        publish_url, keys = _bus_target(args.config)
        service = LoggerService(config, publish_url=args.publish_url or publish_url,
                                publish_keys=keys)
        endpoints = service.start()
    except QupdaqError as exc:
        print(f"qupdaq logger: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(f"logger ready endpoint={endpoints.endpoint} history={endpoints.history} "
          f"store={'ok' if service.stats.store_ok else 'error'}", flush=True)
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not done.wait(0.5):
        pass
    service.stop()
    print("logger stopped", flush=True)
    return 0


def _bus_target(path: Path) -> tuple[str | None, ClientKeys | None]:
    """The lab config's ``bus.publish_url`` and this host's keys for it (None, None without
    a bus section). A bus this host cannot reach is a warning: the archive runs without
    publishing its status."""
    from daq.config import BusConfig, anchor
    from daq.config_schema import from_mapping, read_yaml
    from daq.security import IdentityConfig, client_keys

    data = read_yaml(path)
    if data.get("bus") is None:
        return None, None
    base_dir = str(path.resolve().parent)
    bus = from_mapping(BusConfig, data["bus"], file=str(path), path="bus")
    identity = (from_mapping(IdentityConfig, data["identity"], file=str(path), path="identity")
                if data.get("identity") is not None else None)
    anchor(bus, base_dir)
    if identity is not None:
        anchor(identity, base_dir)
    try:
        return bus.publish_url, client_keys(bus.curve, identity)
    except ConfigError as exc:
        logging.getLogger("daq.logger").warning("no status on the bus: %s", exc)
        return None, None


def _export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qupdaq export",
        description="Export one stream and time range from the archive to CSV or HDF5. "
                    "Times: ns since the epoch, ISO 8601 (UTC unless zoned), 'now', "
                    "or relative like -2h, -30m, -7d.")
    p.add_argument("config", type=Path, help="lab config YAML (its logger: section names "
                                             "the store)")
    p.add_argument("stream", help="stream to export, e.g. fridge1/mxc (data/ implied) or "
                                  "wave/tes1/squid_out")
    p.add_argument("--from", dest="t0", default="-1d", help="start time (default -1d)")
    p.add_argument("--to", dest="t1", default="now", help="end time (default now)")
    p.add_argument("--format", choices=["csv", "hdf5"], default=None,
                   help="output format (default: from the file suffix, else csv)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output file")
    return p


def export_main(argv: Sequence[str] | None = None) -> int:
    """Export a stream; return the exit code."""
    from daq.logger.config import load_logger_config
    from daq.logger.export import export_csv, export_hdf5, parse_time
    from daq.logger.writer import describe, open_store
    from daq.messages import now_ns
    from daq.names import join_relative_times, stream_name

    args = _export_parser().parse_args(
        join_relative_times(list(sys.argv[1:] if argv is None else argv)))
    fmt = args.format or ("hdf5" if args.out.suffix in (".h5", ".hdf5") else "csv")
    try:
        config = load_logger_config(args.config)
        now = now_ns()
        t0, t1 = parse_time(args.t0, now), parse_time(args.t1, now)
        args.stream = stream_name(args.stream)
    except (QupdaqError, ValueError) as exc:
        print(f"qupdaq export: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(config, readonly=True)
    except Exception as exc:
        print(f"qupdaq export: store not available: {describe(exc)}", file=sys.stderr)
        return 1
    try:
        if fmt == "csv":
            rows = export_csv(store, args.stream, t0, t1, args.out)
        else:
            rows = export_hdf5(store, args.stream, t0, t1, args.out, config.storage_dir)
    except ValueError as exc:
        print(f"qupdaq export: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"qupdaq export: {args.out}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"exported {rows} rows of {args.stream} to {args.out} ({fmt})")
    return 0
