"""``qupdaq``: the one command line of the system.

Subcommands::

    qupdaq broker  [CONFIG]          the live-path broker (XSUB/XPUB + snapshot)
    qupdaq status  [CONFIG]          latest value of every stream, as a table
    qupdaq sim     CONFIG [--list]   the simulated lab
    qupdaq bench   bus               live path against raw pyzmq
    qupdaq daemon  [CONFIG]          the acquisition daemon
    qupdaq up      [CONFIG] [--headless]   everything as child processes
    qupdaq logger  CONFIG            the logging service (reliable path, history)
    qupdaq alarms  CONFIG            the alarm service; alarms list|ack|shelve|unshelve CONFIG
    qupdaq export  CONFIG STREAM ... a channel and time range to CSV or HDF5
    qupdaq bench   logger            storage path against sqlite3, h5py, QCoDeS
    qupdaq dashboard [CONFIG]        the control-room dashboard (Qt; gui/)
    qupdaq bench   gui               dashboard frames per second, publish-to-paint latency
    qupdaq run     RECIPE.yaml       a measurement run (I-V, dI/dV, R(T), V-Phi, noise, pulses)

Every subcommand takes ``--help``. Exit codes: 0 ok, 1 runtime failure,
2 bad usage or config (with a message naming file, key and expectation).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from daq.config import DEFAULT_CONFIG, BusConfig, LabConfig, load_config
from daq.errors import ConfigError, QupdaqError
from daq.sdnotify import notify
from daq.supervisor import EXIT_FAILED, ServiceFailed, Supervisor

log = logging.getLogger("qupdaq")

#: Subcommands that parse their own arguments.
PASSTHROUGH = ("logger", "export", "alarms", "run")


def _add_config(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "config", nargs=None if required else "?", type=Path,
        default=None if required else DEFAULT_CONFIG,
        help=f"lab config YAML (default: {DEFAULT_CONFIG.name})" if not required else
        "lab config YAML",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qupdaq",
        description="Data acquisition and instrument control for cryogenic detector labs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("broker", help="run the live-path broker",
                       description="Run the XSUB/XPUB broker and the last-value snapshot "
                                   "service on the ports of the config's bus section.")
    _add_config(p)
    p.add_argument("--host", help="override bus.host")
    p.add_argument("--publish-port", type=int, help="override bus.publish_port (0: any)")
    p.add_argument("--subscribe-port", type=int, help="override bus.subscribe_port (0: any)")
    p.add_argument("--snapshot-port", type=int, help="override bus.snapshot_port (0: any)")
    p.add_argument("--hwm", type=int, help="override bus.hwm (messages queued per peer)")

    p = sub.add_parser("status", help="print the latest value of every stream",
                       description="Ask the broker for the newest value of every stream "
                                   "and print them as a table.")
    _add_config(p)
    p.add_argument("--prefix", default="", help="only streams under this topic prefix")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the broker")
    p.add_argument("--subscribe-url", help="override the broker's subscribe endpoint")
    p.add_argument("--snapshot-url", help="override the broker's snapshot endpoint")

    p = sub.add_parser("daemon", help="run the acquisition daemon",
                       description="Own every instrument of the config: poll, publish, "
                                   "control with limits and interlocks, audit.")
    _add_config(p)
    p.add_argument("--daemon", metavar="NAME",
                   help="which daemon of a facility config (its daemons section) to run")

    for name, helptext in zip(PASSTHROUGH, ("run the logging service (lossless storage, history)",
                                            "export a channel and time range to CSV or HDF5",
                                            "run the alarm service, or list|ack|shelve|unshelve "
                                            "alarms",
                                            "check a measurement recipe and run it"),
                              strict=True):
        p = sub.add_parser(name, help=helptext, add_help=False,
                           description=f"{helptext}; `qupdaq {name} --help` for its options.")
        p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    p = sub.add_parser("up", help="start the whole system as child processes",
                       description="Start broker, simulated lab (for a simulated config), "
                                   "logger, daemon and dashboard; Ctrl-C stops them all.")
    _add_config(p)
    p.add_argument("--headless", action="store_true", help="without the dashboard")

    p = sub.add_parser("dashboard", help="open the control-room dashboard",
                       description="The control-room window: facility overview, strip "
                                   "charts, TES/SQUID view, alarms, runs and controls.")
    _add_config(p)
    p.add_argument("--daemon", metavar="NAME",
                   help="control only this daemon of a facility config (all are shown)")
    p.add_argument("--read-only", action="store_true", help="show everything, control nothing")
    p.add_argument("--settings", type=Path, help="settings file (geometry, layout)")
    p.add_argument("--fps", type=float, default=50.0, help="most frames per second")

    p = sub.add_parser("sim", help="run the simulated lab",
                       description="Start every simulated instrument of the config's "
                                   "simulation section on its TCP port.")
    p.add_argument("config", type=Path, help="lab config YAML with a simulation section")
    p.add_argument("--list", action="store_true",
                   help="print name, model and VISA resource of each instrument and exit")

    p = sub.add_parser("init", help="write a commented starter config for a real lab",
                       description="Write DIR/lab.yaml: one fridge with the usual instruments, "
                                   "every key explained, ready to fill in.")
    p.add_argument("directory", type=Path, help="where to write lab.yaml")
    p.add_argument("--name", default="cryo-lab", help="the lab's name (default: cryo-lab)")
    p.add_argument("--force", action="store_true", help="overwrite an existing lab.yaml")

    p = sub.add_parser("units", help="write systemd units for the config's services",
                       description="One unit per service (broker, logger, alarms, each "
                                   "daemon): restart on failure, start order, the daemon's "
                                   "watchdog.")
    _add_config(p, required=True)
    p.add_argument("--user", action="store_true",
                   help="user units (~/.config/systemd/user) instead of system units")
    p.add_argument("--output", type=Path,
                   help="directory to write to (default: systemd's unit directory)")

    p = sub.add_parser("bench", help="run a benchmark against a same-run baseline",
                       description="Benchmarks print figures and ratios against a baseline "
                                   "measured in the same run.")
    p.add_argument("target", choices=["bus", "logger", "dastard", "gui"],
                   help="what to measure")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply message counts (e.g. 0.1 for a quick look)")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="dastard: --seconds --channels --rate --samples; gui: --scale")

    return parser


def _bus_from(config: LabConfig, args: argparse.Namespace) -> BusConfig:
    bus = config.bus
    overrides = {
        "host": getattr(args, "host", None),
        "publish_port": getattr(args, "publish_port", None),
        "subscribe_port": getattr(args, "subscribe_port", None),
        "snapshot_port": getattr(args, "snapshot_port", None),
        "hwm": getattr(args, "hwm", None),
    }
    values = {k: v for k, v in overrides.items() if v is not None}
    return BusConfig(**{**bus.__dict__, **values}) if values else bus


def _wait_for_signal(stop: Callable[[], None],
                     check: Callable[[], object] = lambda: None) -> None:
    """Block until SIGINT/SIGTERM, then call ``stop``; ``check`` runs twice a second
    meanwhile (a supervisor's check: whatever it raises ends the wait)."""
    done = threading.Event()

    def handler(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not done.wait(0.5):
        check()
    stop()


def cmd_broker(args: argparse.Namespace) -> int:
    from daq.bus import Broker

    bus = _bus_from(load_config(args.config), args)
    broker = Broker(bus.host, bus.publish_port, bus.subscribe_port, bus.snapshot_port,
                    hwm=bus.hwm, curve=bus.curve)
    endpoints = broker.start()
    # One parseable line: tests and `qupdaq up` read it instead of sleeping.
    print(f"broker ready publish={endpoints.publish} subscribe={endpoints.subscribe} "
          f"snapshot={endpoints.snapshot}", flush=True)
    supervisor = Supervisor("broker")
    for name, thread in broker.threads.items():
        supervisor.watch(name, thread.is_alive)
    try:
        _wait_for_signal(broker.stop, supervisor.check)
    except ServiceFailed as exc:
        broker.stop()
        print(f"broker failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print("broker stopped", flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from daq.bus import Subscriber
    from daq.names import topic_prefix
    from daq.status_table import format_status_table

    config = load_config(args.config)
    bus = config.bus
    prefix = topic_prefix(args.prefix)  # fridge1/t4k means data/fridge1/t4k
    sub = Subscriber(args.subscribe_url or bus.subscribe_url, [prefix],
                     snapshot_url=args.snapshot_url or bus.snapshot_url,
                     curve=config.keys_for("bus"))
    try:
        snapshot = sub.snapshot(prefix, timeout_s=args.timeout)
    finally:
        sub.close()
    print(format_status_table(snapshot, sub.publishers))
    return 0


def cmd_daemon(args: argparse.Namespace) -> int:
    from daq.daemon.service import Daemon

    daemon = Daemon(load_config(args.config).for_daemon(args.daemon))
    endpoint = daemon.start()
    print(f"daemon ready name={daemon.name} control={endpoint} "
          f"instruments={','.join(sorted(daemon.workers)) or '-'}", flush=True)
    notify("READY=1", f"STATUS=serving {len(daemon.workers)} instruments on {endpoint}")

    def handler(signum: int, frame: object) -> None:
        daemon.request_stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    try:
        daemon.supervise()
    except ServiceFailed as exc:
        notify("STOPPING=1", f"STATUS=failed: {exc}")
        daemon.stop(failure=str(exc))
        print(f"daemon failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    notify("STOPPING=1")
    daemon.stop()
    print("daemon stopped", flush=True)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from daq.up import up

    return up(args.config, args.headless)


def cmd_sim(args: argparse.Namespace) -> int:
    # The one runtime entry into simulators/ (docs/architecture.md, "Layers").
    from simulators import cli as sim_cli  # type: ignore[attr-defined,unused-ignore]

    argv = [str(args.config)] + (["--list"] if args.list else [])
    return int(sim_cli.main(argv))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.target == "gui":  # Qt is imported here only: daq itself never imports it
        from gui import bench as bench_gui

        return bench_gui.main(args.scale, args.rest)
    if args.target == "logger":
        from daq.bench import logger as bench_logger

        return bench_logger.main(args.scale)
    if args.target == "dastard":
        from daq.bench import dastard as bench_dastard

        return bench_dastard.main(args.rest)
    from daq.bench import bus as bench_bus

    return bench_bus.main(args.scale)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from gui.app import run  # the `qupdaq dashboard` entry point: Qt only from here on

    return run(args.config, daemon=args.daemon, read_only=args.read_only,
               settings=args.settings, fps=args.fps)


def cmd_logger(args: argparse.Namespace) -> int:
    from daq.logger.cli import logger_main

    return logger_main(args.args)


def cmd_export(args: argparse.Namespace) -> int:
    from daq.logger.cli import export_main

    return export_main(args.args)


def cmd_alarms(args: argparse.Namespace) -> int:
    from daq.alarms.cli import alarms_main

    return alarms_main(args.args)


def cmd_init(args: argparse.Namespace) -> int:
    from daq.init_config import write_starter

    path = write_starter(args.directory, args.name, overwrite=args.force)
    print(f"wrote {path}: fill in your instruments' addresses, limits and interlocks, then "
          f"check it with `qupdaq daemon {path}`")
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    from daq.units import default_directory, write_units

    directory = args.output or default_directory(args.user)
    for path in write_units(args.config, directory, user=args.user):
        print(path)
    manager = "systemctl --user" if args.user else "systemctl"
    print(f"next: {manager} daemon-reload && {manager} enable --now qupdaq-broker ...")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from daq.runs.cli import run_main

    return run_main(args.args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "broker": cmd_broker,
    "status": cmd_status,
    "daemon": cmd_daemon,
    "up": cmd_up,
    "logger": cmd_logger,
    "export": cmd_export,
    "alarms": cmd_alarms,
    "sim": cmd_sim,
    "bench": cmd_bench,
    "dashboard": cmd_dashboard,
    "init": cmd_init,
    "units": cmd_units,
    "run": cmd_run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qupdaq`` console command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        # These parse their own options (argparse's REMAINDER cannot pass a leading --help).
        args = argparse.Namespace(command=argv[0], args=argv[1:], verbose=False)
    else:
        args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except QupdaqError as exc:
        print(f"qupdaq {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


if __name__ == "__main__":
    sys.exit(main())
