"""The window remembers its geometry, open view, added charts and spans; no broker is shown as
no broker. (No lab runs here: the window must come up and say so.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daq.config import load_config
from gui.window import DashboardWindow, settings_at
from tests.gui.conftest import open_window, shot, wait_for, write_config
from tests.procs import sim_lab_config

pytestmark = pytest.mark.usefixtures("themed")


def test_the_window_remembers_its_geometry_view_and_charts(qtbot: Any, tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path)
    config = load_config(write_config(path, data))
    first = DashboardWindow(config, settings=settings_at(tmp_path / "memory.ini"))
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    key = first.add_chart("Mixing chamber", ["fridge1/mxc_control", "fridge1/mxc"], True)
    first.model.charts[key].set_span(6 * 3600, 0)
    first.model.charts["pressures"].set_span(60, 0)
    first.show_view("Charts")
    first.resize(760, 740)  # within the offscreen screen (800 x 800), which Qt keeps it on
    qtbot.wait(50)
    size = (first.width(), first.height())
    assert size != (1600, 1000)
    first.close()  # saves, stops its threads

    second = DashboardWindow(config, settings=settings_at(tmp_path / "memory.ini"))
    qtbot.addWidget(second, before_close_func=lambda w: w.shutdown())
    second.show()
    qtbot.waitExposed(second)
    assert second.current_view == "Charts"
    assert (second.width(), second.height()) == size  # not the default 1600 x 1000
    restored = second.model.charts[key]
    assert restored.streams == ["fridge1/mxc_control", "fridge1/mxc"] and restored.log_y
    assert restored.span_ns == 6 * 3600 * 10**9
    assert second.model.charts["pressures"].span_ns == 60 * 10**9
    assert key in second.charts.charts  # drawn, and closable (a person added it)


def test_a_broker_that_is_not_there_is_said_within_seconds(qtbot: Any, tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path)
    window = open_window(qtbot, load_config(write_config(path, data)), tmp_path)
    wait_for(qtbot, lambda: "NOT CONNECTED" in window.status_bus.text(), 10,
             "the status bar saying the bus is not connected")
    window.overview.refresh(0)
    picture = window.overview.columns["fridge1"].picture
    assert picture is not None and all(r.shown.text == "—" for r in picture.stages)
    shot(window, "overview_no_broker")
