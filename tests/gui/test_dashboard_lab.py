"""The dashboard against the running simulated lab (broker, logger, daemon, alarm service).

Each test opens the window (offscreen) on the lab of :class:`tests.gui.conftest.GuiLab`
and drives it as an operator would: reading the overview against the simulator's
own temperatures, opening the MXC thermometer's leads in the simulator and
finding the reading shown as bad (and the alarm on every view, then
acknowledged from the GUI so that the alarm service's latch clears), a strip
chart filled from the archive and then growing live, controls that change the
simulated instrument or come back refused in the daemon's words, the TES view,
runs. Every view is photographed into ``artifacts/gui/``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from daq.bus import Publisher
from daq.client import Lab
from daq.errors import ControlError
from daq.runs import documents
from gui.models.alarms import AlarmState
from gui.models.control import RequestState
from gui.models.format import Tone
from tests.gui.conftest import GuiLab, LoopProbe, open_window, shot, wait_for, write_config
from tests.procs import qupdaq

#: Overview label -> the simulated fridge's stage.
STAGES = {"50K": "50k", "4K": "4k", "Still": "still", "Cold plate": "cold_plate", "MXC": "mxc"}
SCALE = {"mK": 1e-3, "K": 1.0}

pytestmark = pytest.mark.usefixtures("themed")


def kelvin(text: str, unit: str) -> float:
    """A displayed temperature back in K."""
    return float(text) * SCALE[unit]


def stages_good(window: Any, fridge: str = "fridge1") -> bool:
    column = window.overview.columns[fridge]
    window.overview.refresh(time.time_ns())
    picture = column.picture
    return picture is not None and all(r.shown.tone is Tone.GOOD for r in picture.stages)


def test_the_overview_shows_the_simulators_temperatures_and_an_open_thermometer_as_bad(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    window = open_window(qtbot, gui_lab.config, tmp_path)
    wait_for(qtbot, lambda: stages_good(window), 30, "every stage with a good reading")
    picture = window.overview.columns["fridge1"].picture
    assert picture is not None
    assert [r.label for r in picture.stages] == ["50K", "4K", "Still", "Cold plate", "MXC"]
    truth = gui_lab.sim.fridge.temperatures
    for row in picture.stages:
        assert row.shown.is_number
        assert kelvin(row.shown.text, row.shown.unit) == pytest.approx(
            truth[STAGES[row.label]], rel=0.1), row
    assert all(i.state == "connected" and i.age for i in picture.instruments)
    assert {r.label for r in picture.pressures} == {"OVC", "Still", "Condensing", "Tank"}
    assert all(r.shown.tone is Tone.GOOD for r in picture.pressures)
    shot(window, "overview_sim_lab")

    # ---- the MXC thermometer's leads open --------------------------------------------------
    gui_lab.ls372.set_open_sensor("A", True)
    try:
        def mxc() -> Any:
            window.overview.refresh(time.time_ns())
            pic = window.overview.columns["fridge1"].picture
            return None if pic is None else pic.row("MXC").shown

        wait_for(qtbot, lambda: mxc().tone is Tone.BAD, 30, "the MXC shown as bad")
        bad = mxc()
        assert bad.text == "SENSOR FAULT" and not bad.is_number and bad.unit == ""
        assert "RDGST 017" in bad.badge  # the instrument's own words
        shot(window, "overview_open_thermometer")

        # ---- the alarm service raises it: a banner over every view --------------------------
        book = window.model.alarms
        key = f"{gui_lab.config.alarms.name}/fridge1_mxc_thermometer"  # type: ignore[union-attr]
        wait_for(qtbot, lambda: key in book.alarms
                 and book.alarms[key].state is AlarmState.ACTIVE_UNACK, 30,
                 "the thermometer alarm raised")
        wait_for(qtbot, lambda: window.banner.isVisible(), 5, "the critical banner")
        for view in ("Charts", "Detector", "Controls"):
            window.show_view(view)
            qtbot.wait(50)
            assert window.banner.isVisible() and "fridge1_mxc_thermometer" in \
                window.banner.text()
        shot(window, "banner_over_controls")
        window.show_view("Alarms")
        alarm = window.alarms.select("fridge1_mxc_thermometer")
        assert alarm.guidance and alarm.state is AlarmState.ACTIVE_UNACK
        shot(window, "alarms_active")
    finally:
        gui_lab.ls372.clear_faults()

    # ---- cleared, the alarm stays latched until a person acknowledges it here ----------------
    wait_for(qtbot, lambda: book.alarms[key].state is AlarmState.CLEARED_UNACK, 60,
             "the alarm cleared but latched")
    window.alarms.select("fridge1_mxc_thermometer")
    window.alarms.comment.setText("leads re-seated")
    qtbot.mouseClick(window.alarms.ack_button, QtCore.Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: window.alarms.answer.text().startswith("OK"), 20,
             "the alarm service's answer")
    wait_for(qtbot, lambda: book.alarms[key].state is AlarmState.NORMAL, 20,
             "the latch cleared")
    with Lab(gui_lab.config, timeout_s=10) as lab:
        (record,) = [a for a in lab.alarm_list(everything=True)
                     if a["alarm"] == "fridge1_mxc_thermometer"]
    assert record["state"] == "normal" and record["ack_comment"] == "leads re-seated"
    assert record["acked_by"].startswith("dashboard:")
    shot(window, "alarms_acknowledged")


def test_a_strip_chart_backfills_from_the_logger_then_grows_live(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    stream = "fridge1/mxc_control"
    gui_lab.wait_archived(qtbot, f"data/{stream}", 5)
    window = open_window(qtbot, gui_lab.config, tmp_path)
    window.show_view("Charts")
    chart = window.charts.charts["stage_temperatures"]
    chart.set_span(120)
    model = chart.model

    def backfilled() -> bool:
        history = model.history(stream)
        live = window.model.store.series.get(stream)
        return (history is not None and live is not None and live.first_ns is not None
                and bool(np.any(history.times < live.first_ns)))

    wait_for(qtbot, backfilled, 30, "history from the logger")
    live = window.model.store.get(stream)
    first_live = live.first_ns
    assert first_live is not None
    drawn = model.points(stream, chart.columns)
    assert drawn.t[0] < first_live  # the archive's part is drawn before the live part
    n_live, last_drawn = live.n, drawn.t[-1]
    wait_for(qtbot, lambda: live.n >= n_live + 3, 30, "three more live samples")
    qtbot.wait(100)  # a frame or two to draw them
    grown = model.points(stream, chart.columns)
    assert grown.t[-1] > last_drawn and chart.points_drawn >= len(grown)
    assert np.any(grown.t < first_live)  # still joined to the history
    # a cursor on the archived part reads an exact sample
    history = model.history(stream)
    assert history is not None
    at = int(history.times[len(history.times) // 2])
    chart.place_cursor(at)
    def reading() -> Any:
        return next(v for v in model.cursor(at) if v.stream == stream)

    wait_for(qtbot, lambda: reading().exact, 20, "an exact cursor value")
    assert "mK" in chart.readout.text() and "fridge1 MXC" in chart.readout.text()
    png = chart.export_png(tmp_path / "chart.png")
    rows = list(csv.DictReader(chart.export_csv(tmp_path / "chart.csv").open()))
    mine = [r for r in rows if r["stream"] == stream and r["value"]]
    assert png.stat().st_size > 5000
    assert any(int(r["t_ns"]) < first_live for r in mine) and mine[-1]["kind"] == "sample"
    # the live part carries the instrument's verdict (flagged samples are empty cells); the
    # archive's query has no quality yet (an earlier test opened this thermometer)
    assert all(0.005 < float(r["value"]) < 0.05 for r in mine if int(r["t_ns"]) >= first_live)
    shot(window, "charts_backfill_live")


def test_controls_change_the_simulator_and_a_refusal_shows_the_daemons_words(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    window = open_window(qtbot, gui_lab.config, tmp_path)
    window.show_view("Controls")
    target = "fridge1/mxc_setpoint"
    wait_for(qtbot, lambda: target in window.controls.panels[None].rows, 30,
             "the daemon's targets")
    row = window.controls.row(target)
    wait_for(qtbot, row.isVisible, 5, "the row on screen")  # a row just listed shows next frame
    loop = gui_lab.ls372.state.outputs[0].loop
    start = float(loop.setpoint)
    assert row.limits.text() == "limits 0 to 0.5 K"

    # raising the setpoint heats the fridge: it asks first, in the row itself
    row.fields["value"].setText(f"{start * 1e3 + 25:g} mK")
    qtbot.mouseClick(row.button, QtCore.Qt.MouseButton.LeftButton)
    assert row.request.state is RequestState.CONFIRMING and row.confirm_box.isVisible()
    assert "heats the fridge" in row.question.text()
    shot(window, "controls_confirm")
    qtbot.mouseClick(row.confirm_button, QtCore.Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: row.request.state is RequestState.OK, 20, "the daemon's answer")
    assert float(loop.setpoint) == pytest.approx(start + 0.025)  # at the instrument

    # beyond the config's limits: refused, in the daemon's own words
    with Lab(gui_lab.config, timeout_s=10) as lab, pytest.raises(ControlError) as refusal:
        lab.set(target, 0.9)
    row.fields["value"].setText("0.9")
    qtbot.mouseClick(row.button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.mouseClick(row.confirm_button, QtCore.Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: row.request.state is RequestState.REFUSED, 20, "the refusal")
    assert row.answer.text().startswith("REFUSED by the daemon (")
    assert row.answer.text().endswith(f"): {refusal.value}")  # word for word
    assert float(loop.setpoint) == pytest.approx(start + 0.025)  # unchanged
    shot(window, "controls_refused")

    # back down: cooler, no question asked
    row.fields["value"].setText(f"{start:g}")
    qtbot.mouseClick(row.button, QtCore.Qt.MouseButton.LeftButton)
    assert row.request.state is RequestState.SENT
    wait_for(qtbot, lambda: row.request.state is RequestState.OK, 20, "the daemon's answer")
    assert float(loop.setpoint) == pytest.approx(start), (row.answer.text(), vars(loop))

    # an action with arguments: a setpoint ramp (it can heat: confirmed first)
    ramp = window.controls.row("fridge1/mxc_ramp")
    ramp.fields["target"].setText(f"{start:g}")
    ramp.fields["rate"].setText("0.5")
    qtbot.mouseClick(ramp.button, QtCore.Qt.MouseButton.LeftButton)
    assert ramp.request.state is RequestState.CONFIRMING
    qtbot.mouseClick(ramp.confirm_button, QtCore.Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: ramp.request.state is RequestState.OK, 20, "the ramp started")
    assert loop.ramp_rate_per_min == pytest.approx(0.5), (ramp.answer.text(), vars(loop))
    shot(window, "controls_done")


def test_a_read_only_dashboard_shows_the_controls_disabled_and_says_why(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    window = open_window(qtbot, gui_lab.config, tmp_path, read_only=True)
    window.show_view("Controls")
    wait_for(qtbot, lambda: "fridge1/mxc_setpoint" in window.controls.panels[None].rows, 30,
             "the daemon's targets (reads still work)")
    row = window.controls.row("fridge1/mxc_setpoint")
    assert not row.button.isEnabled() and not row.fields["value"].isEnabled()
    assert window.controls.permission.isVisible()
    assert "read-only" in window.controls.permission.text()
    assert not window.alarms.ack_button.isEnabled()
    shot(window, "controls_read_only")


def test_the_tes_view_shows_live_records_the_noise_spectrum_and_the_trigger_rate(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    window = open_window(qtbot, gui_lab.config, tmp_path)
    window.show_view("Detector")
    panel = window.detector.panels["tes1"]
    model = panel.model
    wait_for(qtbot, lambda: model.records >= 3 and panel.frames >= 2
             and panel.psd_curve.getData()[0] is not None, 40, "records and a spectrum drawn")
    rec = model.record
    assert rec is not None and rec.t_us[0] < 0 < rec.t_us[-1]  # µs from the trigger
    assert np.allclose(rec.amps, rec.volts * -2.5e-6)
    spectrum = model.spectrum()
    assert spectrum is not None
    assert 1e-13 < spectrum.white_a_per_rthz < 1e-9  # A/√Hz: pA/√Hz is a TES's noise
    assert model.trigger_rate() > 0.1
    assert panel.rate.text().endswith("/s") and panel.bias.text().endswith("V")
    shot(window, "detector_tes1")


def test_a_run_is_listed_with_its_live_progress_and_opens_with_its_plots(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    window = open_window(qtbot, gui_lab.config, tmp_path)
    window.show_view("Runs")
    run_id = documents.new_run_id("iv-sweep")
    start = documents.StartDocument(
        run_id=run_id, procedure="iv", recipe_name="iv-sweep", recipe_path="",
        operator="alice", sample="TES A3", description="I-V at 20 mK",
        parameters={"bias_v": [0, 3]}, detector={}, config_path="", daemon="",
        settings=[], targets=())
    with Publisher(gui_lab.config.bus.publish_url, name="run-under-test") as pub:
        assert pub.wait_for_subscriber("run/", timeout_s=10)
        pub.publish(documents.start_message(start))
        for i, bias in enumerate(np.linspace(0, 3, 12)):
            pub.publish(documents.point_message(run_id, "iv", i, {
                "bias_v": bias, "current_a": 1e-6 * np.tanh(bias)},
                {"bias_v": "V", "current_a": "A"}))
        pub.publish(documents.progress_message(run_id, documents.Progress(
            12, 40, 30.0, 70.0, "bias 3.0 V", documents.Phase.RUNNING)))
        wait_for(qtbot, lambda: run_id in window.runs.bars
                 and window.runs.bars[run_id].value() == 300, 20, "the run's progress")
        assert "12 / 40" in window.runs.bars[run_id].format()
        run = window.runs.select(run_id)
        assert run.running and run.sample == "TES A3"
        qtbot.wait(100)
        shot(window, "runs_live")
        pub.publish(documents.stop_message(run_id, documents.StopDocument(
            documents.RunStatus.COMPLETED, "", time.time_ns(), {"iv": 12}, 0, 0.0)))
        wait_for(qtbot, lambda: window.model.runs.runs[run_id].status == "completed", 20,
                 "the run's end")
    assert window.runs.plots.getItem(0, 0) is not None  # the I-V plot


def test_the_window_never_waits_on_a_socket(qtbot: Any, gui_lab: GuiLab,
                                            tmp_path: Path) -> None:
    """Clicking through every view while data flow: the event loop stays responsive."""
    window = open_window(qtbot, gui_lab.config, tmp_path)
    probe = LoopProbe()
    try:
        for _ in range(2):
            for view in ("Overview", "Charts", "Detector", "Alarms", "Runs", "Controls"):
                window.show_view(view)
                qtbot.wait(250)
    finally:
        probe.stop()
    assert probe.worst_s < 1.0, f"the event loop stalled for {probe.worst_s:.2f} s"
    assert window.frame_count > 20
    frames = sorted(window.frame_times)
    assert frames[len(frames) // 2] < 0.05  # a median frame's own work well under 50 ms
    QtWidgets.QApplication.processEvents()


def test_a_real_run_shows_its_progress_live_and_opens_from_the_archive_with_its_plots(
        qtbot: Any, gui_lab: GuiLab, tmp_path: Path) -> None:
    """A short I-V through the run engine (``qupdaq run``): listed while it runs, with the
    engine's own progress; afterwards a fresh window finds it in the logger's list and
    draws its points from the archive. (Last in this module: it leaves the TES unbiased.)"""
    recipe = tmp_path / "iv.yaml"
    write_config(recipe, {
        "name": "iv-dashboard", "procedure": "iv", "sample": "simulated TES (dashboard test)",
        "lab": str(gui_lab.path), "safe_state": {"bias_v": 0.0, "modulation_off": True},
        "iv": {"bias_v": [{"start": 10.0, "stop": 0.0, "step": 0.5}],
               "thermal_overbias": {"band_k": 0.001, "hold_s": 1, "timeout_s": 60}}})
    window = open_window(qtbot, gui_lab.config, tmp_path)
    window.show_view("Runs")
    run = qupdaq("run", str(recipe), "--no-progress", name="run")
    try:
        line = run.wait_line("recipe ", timeout_s=60)
        assert "iv on" in line
        book = window.model.runs

        def live() -> Any:
            return next((r for r in book.runs.values() if r.recipe == "iv-dashboard"
                         and r.running and r.done > 0), None)

        wait_for(qtbot, live, 60, "the run's live progress")
        entry = live()
        assert entry.total >= 21 and entry.sample == "simulated TES (dashboard test)"
        window.runs.select(entry.run_id)
        qtbot.wait(200)
        shot(window, "runs_engine_live")
        wait_for(qtbot, lambda: entry.status == "completed", 120, "the run's end")
        assert run.proc.wait(timeout=30) == 0
    finally:
        run.stop()
    assert entry.streams["iv"].index and entry.result  # points and numbers, live

    # a window opened afterwards knows the run only from the archive
    later = open_window(qtbot, gui_lab.config, tmp_path / "later")
    later.show_view("Runs")
    later._ask_runs()
    wait_for(qtbot, lambda: entry.run_id in later.model.runs.runs, 30, "the logger's list")
    stored = later.model.runs.runs[entry.run_id]
    assert stored.procedure == "iv" and stored.t_stop is not None and not stored.running
    later.runs.select(entry.run_id)
    wait_for(qtbot, lambda: stored.loaded and stored.curves(), 30,
             f"the run's points from the archive ({stored.loaded=}, {list(stored.streams)=}, "
             f"{later.runs.selected=})")
    assert len(stored.streams["iv"].index) == len(entry.streams["iv"].index)
    qtbot.wait(200)
    shot(later, "runs_archive")
