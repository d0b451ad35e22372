"""The facility overview: four refrigerators, one daemon each, side by side with the simulator.

``configs/facility.yaml`` on free ports: the simulated facility runs in this
process (its four fridges' physics are read directly), broker, logger and the
four daemons as processes. The overview must show every stage of every fridge
with the simulator's temperatures (fridge3 starts warm, cooling down: a
different picture from the three at base), and each fridge's instruments.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.config import load_config
from gui.models.format import Tone
from tests.gui.conftest import TIME_SCALE, open_window, shot, wait_for, write_config
from tests.procs import ROOT, Service, free_port, qupdaq

STAGES = {"50K": "50k", "4K": "4k", "Still": "still", "Cold plate": "cold_plate", "MXC": "mxc"}
SCALE = {"mK": 1e-3, "K": 1.0}

pytestmark = pytest.mark.usefixtures("themed")


def facility_config(tmp_path: Path) -> Path:
    """configs/facility.yaml on free ports, its data and state in ``tmp_path``."""
    data = yaml.safe_load((ROOT / "configs" / "facility.yaml").read_text())
    bus = data["bus"]
    for key in ("publish_port", "subscribe_port", "snapshot_port"):
        bus[key] = free_port()
    bus["heartbeat_s"] = 0.5
    logger = data["logger"]
    logger["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    logger["history_endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    logger["directory"] = str(tmp_path / "data")
    sim = data["simulation"]
    sim["time_scale"] = TIME_SCALE
    ports: dict[tuple[str, str], int] = {}
    for fridge, spec in sim["fridges"].items():
        for name, item in spec["instruments"].items():
            item = dict(item)
            item["port"] = ports[(fridge, name)] = free_port()
            spec["instruments"][name] = item
    for daemon, section in data["daemons"].items():
        section["daemon"] = {**section["daemon"], "logger_url": logger["endpoint"],
                             "state_dir": str(tmp_path / "state"),
                             "control": {"bind": f"tcp://127.0.0.1:{free_port()}"}}
        section["daemon"].pop("alarms_url", None)
        instruments = {}
        for name, inst in section["instruments"].items():
            inst = dict(inst)
            inst["resource"] = f"TCPIP::127.0.0.1::{ports[(daemon, name)]}::SOCKET"
            if name == "ls372":
                inst["options"] = {**inst.get("options", {}), "time_scale": TIME_SCALE}
            instruments[name] = inst
        section["instruments"] = instruments
    data.pop("alarms", None)
    return write_config(tmp_path / "facility.yaml", data)


class Facility:
    """The simulated facility in this process; broker, logger and four daemons outside."""

    def __init__(self, tmp_path: Path) -> None:
        from simulators.config import load_simulation_config
        from simulators.facility import SimFacility

        self.path = facility_config(tmp_path)
        self.config = load_config(self.path)
        self.sim = SimFacility(load_simulation_config(self.path)).start()
        self.services: list[Service] = []
        try:
            for args, ready in ((("broker",), "broker ready"), (("logger",), "logger ready")):
                self._start(qupdaq(*args, str(self.path)), ready)
            daemons = [qupdaq("daemon", str(self.path), "--daemon", name, name=name)
                       for name in self.config.daemons]
            self.services.extend(daemons)
            for daemon in daemons:
                daemon.wait_line("daemon ready", timeout_s=90)
        except BaseException:
            self.stop()
            raise

    def _start(self, service: Service, ready: str) -> None:
        self.services.append(service)
        service.wait_line(ready, timeout_s=90)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facility]:
    lab = Facility(tmp_path_factory.mktemp("facility"))
    yield lab
    lab.stop()


def test_the_overview_shows_every_stage_of_every_fridge_with_the_simulators_values(
        qtbot: Any, facility: Facility, tmp_path: Path) -> None:
    window = open_window(qtbot, facility.config, tmp_path, size=(1920, 1080))
    fridges = ["fridge1", "fridge2", "fridge3", "fridge4"]
    assert list(window.overview.columns) == fridges

    def all_good() -> bool:
        window.overview.refresh(time.time_ns())
        return all(col.picture is not None
                   and all(r.shown.tone is Tone.GOOD for r in col.picture.stages)
                   and all(i.state == "connected" and i.age for i in col.picture.instruments)
                   for col in window.overview.columns.values())

    wait_for(qtbot, all_good, 90, "every stage of every fridge with a good reading and every "
             "instrument connected with a sample")
    for fridge in fridges:
        picture = window.overview.columns[fridge].picture
        assert picture is not None
        assert [r.label for r in picture.stages] == list(STAGES)
        truth = facility.sim.labs[fridge].fridge.temperatures
        for row in picture.stages:
            shown = float(row.shown.text) * SCALE[row.shown.unit]
            # fridge3 cools while its scanner channels wait their turn: a wider margin
            assert shown == pytest.approx(truth[STAGES[row.label]],
                                          rel=0.35 if fridge == "fridge3" else 0.1), \
                (fridge, row.label, row.shown, truth)
        assert [i.name for i in picture.instruments] == ["ls372", "ls336", "tpg366"]
    mxc = {f: window.overview.columns[f].picture.row("MXC").shown  # type: ignore[union-attr]
           for f in fridges}
    assert mxc["fridge3"].unit == "K" and float(mxc["fridge3"].text) > 1.0  # cooling down
    assert all(mxc[f].unit == "mK" and float(mxc[f].text) < 50 for f in fridges
               if f != "fridge3")
    shot(window, "overview_facility")
    # every daemon has its own controls
    window.show_view("Controls")
    wait_for(qtbot, lambda: all(f"{f}/mxc_setpoint" in window.controls.panels[f].rows
                                for f in fridges), 30, "every daemon's targets")
    assert "tes1/bias_voltage" in window.controls.panels["fridge1"].rows
    assert "fridge1/mxc_setpoint" not in window.controls.panels["fridge2"].rows
    shot(window, "controls_facility")
