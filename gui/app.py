"""``qupdaq dashboard``: the control-room window as a program.

::

    qupdaq dashboard [CONFIG] [--daemon NAME] [--read-only] [--settings FILE] [--fps N]

Opens :class:`gui.window.DashboardWindow` on the config's lab, prints one
``dashboard ready ...`` line once the window is shown (``qupdaq up`` waits
for it, as for every service), and runs until the window is closed or the
process gets SIGINT/SIGTERM (the layout is saved either way). Exit codes: 0
closed, 2 bad usage or config.

The settings file (geometry, open view, added charts) is ``--settings``, else
``$QUPDAQ_DASHBOARD_SETTINGS``, else the user's ``qupdaq/dashboard.ini``.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from daq.config import DEFAULT_CONFIG, load_config
from daq.errors import ConfigError
from gui import theme
from gui.window import DashboardWindow, settings_at

SETTINGS_ENV = "QUPDAQ_DASHBOARD_SETTINGS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qupdaq dashboard",
        description="The control-room dashboard: facility overview, strip charts, TES/SQUID "
                    "view, alarms, runs and controls of the lab in CONFIG.")
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG,
                        help=f"lab config YAML (default: {DEFAULT_CONFIG.name})")
    parser.add_argument("--daemon", metavar="NAME",
                        help="control only this daemon of a facility config (all are shown)")
    parser.add_argument("--read-only", action="store_true",
                        help="show everything, control nothing (a visitor's screen)")
    parser.add_argument("--settings", type=Path,
                        help=f"settings file (default: ${SETTINGS_ENV}, else the user's)")
    parser.add_argument("--fps", type=float, default=50.0, help="most frames per second")
    parser.add_argument("--view", choices=["Overview", "Charts", "Detector", "Alarms", "Runs",
                                           "Controls"], help="open this view first")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gui.app [CONFIG] [options]``; returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return run(args.config, daemon=args.daemon, read_only=args.read_only,
               settings=args.settings, fps=args.fps, view=args.view)


def run(config_path: Path | str | None, *, daemon: str | None = None, read_only: bool = False,
        settings: Path | str | None = None, fps: float = 50.0, view: str | None = None) -> int:
    """Open the dashboard on the lab of ``config_path`` and run until it is closed.

    Returns:
        0 when closed (window or SIGINT/SIGTERM), 2 for a bad config or daemon name.
    """
    try:
        config = load_config(config_path)
        if daemon is not None and config.daemons:
            config.for_daemon(daemon)  # an unknown name is a usage error, said now
    except ConfigError as exc:
        print(f"qupdaq dashboard: {exc}", file=sys.stderr)
        return 2
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["qupdaq-dashboard"])
    assert isinstance(app, QtWidgets.QApplication)
    theme.apply(app)
    window = DashboardWindow(config, daemon=daemon, read_only=read_only,
                             settings=settings_at(settings or os.environ.get(SETTINGS_ENV)),
                             fps=fps)
    if view:
        window.show_view(view)
    window.show()
    # Everything built so far lives as long as the window: out of the cyclic collector's
    # sight, its full collections stay short (no hitch in the frames).
    gc.freeze()

    def ready() -> None:
        print(f"dashboard ready title={config.dashboard.title!r} "
              f"fridges={len(config.dashboard.fridges)} "
              f"detectors={len(config.dashboard.detectors)} charts={len(window.model.charts)} "
              f"pid={os.getpid()}", flush=True)

    QtCore.QTimer.singleShot(0, ready)

    def stop(signum: int, frame: object) -> None:
        app.quit()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Python runs signal handlers only between bytecodes: a timer lets it look regularly.
    wake = QtCore.QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    code = app.exec()
    window.save_settings()
    window.shutdown()
    print("dashboard stopped", flush=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
