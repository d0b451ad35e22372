"""A daemon killed under the dashboard: its instruments go stale within seconds, never frozen.

Broker, simulated lab and daemon run as processes; the logger is deliberately
not started (a dead logger). The window shows the lab; then the daemon gets
SIGKILL (it says nothing on its way out). Within a few seconds every
instrument of its fridge is shown stale and its values greyed, a control sent
to it ends as "no answer" after the control timeout, the charts say the
history is unavailable, and all the while the event loop keeps its pace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daq.config import load_config
from gui.models.control import RequestState
from gui.models.format import Tone
from tests.gui.conftest import LoopProbe, open_window, shot, wait_for, write_config
from tests.procs import Service, qupdaq, sim_lab_config

pytestmark = pytest.mark.usefixtures("themed")


class SmallLab:
    """Broker, simulated lab and daemon as processes (no logger, no alarm service)."""

    def __init__(self, tmp_path: Path) -> None:
        self.path, _, data = sim_lab_config(tmp_path, time_scale=50.0)
        data["simulation"]["bluefors_log"]["directory"] = ""
        data.pop("alarms", None)
        data["daemon"].pop("alarms_url", None)
        write_config(self.path, data)
        self.config = load_config(self.path)
        self.services: dict[str, Service] = {}
        try:
            for name in ("broker", "sim", "daemon"):
                self.services[name] = service = qupdaq(name, str(self.path))
                service.wait_line(f"{name} ready", timeout_s=90)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()


@pytest.fixture
def small_lab(tmp_path: Path) -> Iterator[SmallLab]:
    (tmp_path / "lab").mkdir()
    lab = SmallLab(tmp_path / "lab")
    yield lab
    lab.stop()


def test_killing_the_daemon_marks_its_instruments_stale_without_freezing_the_window(
        qtbot: Any, small_lab: SmallLab, tmp_path: Path) -> None:
    window = open_window(qtbot, small_lab.config, tmp_path, control_timeout_s=2.0)
    column = window.overview.columns["fridge1"]

    def picture() -> Any:
        window.overview.refresh(time.time_ns())
        return column.picture

    wait_for(qtbot, lambda: all(i.state == "connected" for i in picture().instruments)
             and picture().row("4K").shown.tone is Tone.GOOD, 60, "the lab connected")
    window.show_view("Controls")
    target = "fridge1/sample_heater_range"
    wait_for(qtbot, lambda: target in window.controls.panels[None].rows, 30, "the targets")
    window.show_view("Overview")

    probe = LoopProbe()
    small_lab.services["daemon"].kill()
    killed = time.monotonic()
    wait_for(qtbot, lambda: all(i.state == "stale" for i in picture().instruments), 10,
             "every instrument of the dead daemon stale")
    noticed_s = time.monotonic() - killed
    pic = picture()
    assert all(i.tone is Tone.STALE and "silent" in i.message for i in pic.instruments)
    assert all(r.shown.tone is Tone.STALE for r in pic.stages)  # greyed, numbers kept
    wait_for(qtbot, lambda: "SILENT: daemon-sim" in window.status_bus.text(), 3,
             "the status bar naming the silent daemon")
    shot(window, "overview_daemon_killed")

    # a control to the dead daemon: "no answer" after the worker's timeout, window alive
    window.show_view("Controls")
    row = window.controls.row(target)
    row.fields["value"].setText("0")  # heater off: no confirmation needed
    row.button.click()
    assert row.request.state is RequestState.SENT
    wait_for(qtbot, lambda: row.request.state is RequestState.FAILED, 10, "no answer")
    assert "no reply from the daemon" in row.answer.text()
    shot(window, "controls_daemon_dead")

    # the logger never ran: the charts say so instead of waiting for it
    window.show_view("Charts")
    chart = window.charts.charts["stage_temperatures"]
    wait_for(qtbot, lambda: "history unavailable" in chart.status.text(), 20,
             "the charts telling that the logger does not answer")
    shot(window, "charts_logger_dead")
    probe.stop()
    assert noticed_s < 5.0, f"stale only after {noticed_s:.1f} s"
    # generous, on a shared 2-core machine; a window that waited on a socket would show
    # a gap of the control (2 s) or history (5 s) timeout
    assert probe.worst_s < 1.0, f"the event loop stalled for {probe.worst_s:.2f} s"
    assert len(probe.gaps) > 100
