"""The dashboard's tests: Qt offscreen, the simulated lab and the services as real processes.

* :class:`GuiLab` runs broker, logger, daemon and the alarm service as
  processes on free ports, and the simulated lab in this process (the tests
  reach its fault API, as ``tests/daq/test_e2e_thermometry_quality.py`` does);
* :func:`open_window` opens a :class:`gui.window.DashboardWindow` with its
  settings in the test's directory;
* :func:`shot` saves a widget's picture into ``artifacts/gui/`` (git-ignored);
* :class:`LoopProbe` measures the event loop's latency while a test waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PySide6 import QtCore, QtWidgets

from daq.config import LabConfig, load_config
from daq.logger.history import HistoryClient
from gui import theme
from gui.window import DashboardWindow, settings_at
from tests.procs import ROOT, Service, qupdaq, sim_lab_config

ARTIFACTS = ROOT / "artifacts" / "gui"
#: The simulated lab runs this much faster than the wall clock: the 372's scanner then
#: visits every stage's channel within a few wall seconds.
TIME_SCALE = 50.0


def shot(widget: QtWidgets.QWidget, name: str) -> Path:
    """Save ``widget`` as it is on screen to ``artifacts/gui/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not write {path}"
    return path


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """Write a config keeping the order of its keys (the overview's stages are ordered)."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class LoopProbe:
    """The event loop's latency: a timer that should fire every ``period_ms`` notes how late
    it is (a frozen window shows as one long gap)."""

    def __init__(self, period_ms: int = 20) -> None:
        self.period_s = period_ms / 1000
        self.gaps: list[float] = []
        self._last = time.monotonic()
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.timer.start(period_ms)

    def _tick(self) -> None:
        now = time.monotonic()
        self.gaps.append(now - self._last)
        self._last = now

    @property
    def worst_s(self) -> float:
        return max(self.gaps, default=0.0)

    def stop(self) -> None:
        self.timer.stop()


@pytest.fixture(scope="session")
def themed(qapp: QtWidgets.QApplication) -> QtWidgets.QApplication:
    """The application in the dashboard's palette (as ``qupdaq dashboard`` dresses it)."""
    theme.apply(qapp)
    return qapp


def open_window(qtbot: Any, config: LabConfig, tmp_path: Path, *,
                size: tuple[int, int] = (1600, 1000), **kwargs: Any) -> DashboardWindow:
    """A shown dashboard window whose settings live in ``tmp_path``; closed after the test."""
    window = DashboardWindow(config, settings=settings_at(tmp_path / "dashboard.ini"),
                             **kwargs)
    qtbot.addWidget(window, before_close_func=lambda w: w.shutdown())
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


def wait_for(qtbot: Any, condition: Callable[[], Any], timeout_s: float = 30.0,
             what: str = "") -> None:
    """Wait (the event loop running) until ``condition()`` is true."""
    try:
        qtbot.waitUntil(lambda: bool(condition()), timeout=int(timeout_s * 1000))
    except Exception as exc:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}"
                             ) from exc


class GuiLab:
    """Broker, logger, daemon and alarm service as processes; the simulated lab in here."""

    def __init__(self, tmp_path: Path, *, alarms: bool = True) -> None:
        from simulators.config import load_simulation_config
        from simulators.lab import SimLab

        self.path, _, self.data = sim_lab_config(tmp_path, time_scale=TIME_SCALE)
        data = self.data
        data["simulation"]["bluefors_log"]["directory"] = ""
        data["instruments"]["ls372"]["setup"] = {"tlimit_A": 0.8}
        if alarms and data.get("alarms") is not None:
            data["alarms"].update({"period_s": 0.2, "status_period_s": 1.0})
            for rule in data["alarms"]["rules"]:
                if rule["name"] == "fridge1_mxc_thermometer":
                    rule["delay_s"] = 1.0
        else:
            data.pop("alarms", None)
            data["daemon"].pop("alarms_url", None)
        write_config(self.path, data)
        self.config = load_config(self.path)
        self.services: dict[str, Service] = {}
        self.sim = SimLab(load_simulation_config(self.path)).start()
        try:
            for name in ("broker", "logger", "daemon", *(("alarms",) if "alarms" in data
                                                         else ())):
                self.start(name)
        except BaseException:
            self.stop()
            raise

    def start(self, name: str) -> Service:
        service = qupdaq(name, str(self.path))
        self.services[name] = service
        service.wait_line(f"{name} ready", timeout_s=90)
        return service

    @property
    def ls372(self) -> Any:
        return self.sim.servers["ls372"]

    def history(self) -> HistoryClient:
        assert self.config.logger is not None
        return HistoryClient(self.config.logger.history_endpoint, timeout_s=5)

    def wait_archived(self, qtbot: Any, stream: str, count: int,
                      timeout_s: float = 60.0) -> None:
        """Wait until the logger holds ``count`` samples of ``stream``."""
        with self.history() as history:
            wait_for(qtbot, lambda: len(history.query(stream)[1]) >= count, timeout_s,
                     f"{count} samples of {stream} in the archive")

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def gui_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuiLab]:
    lab = GuiLab(tmp_path_factory.mktemp("gui_lab"))
    yield lab
    lab.stop()
