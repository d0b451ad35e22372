"""How values are written and coloured, and what the overview decides (headless, no Qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from daq import messages
from daq.dashboard_config import FridgeView
from daq.messages import Quality
from gui.models.format import Reading, Tone, format_age, format_number, show_value
from gui.models.live import LiveState
from gui.models.overview import fridge_picture

NOW = 1_800_000_000 * 10**9


@pytest.mark.parametrize(("value", "units", "text", "unit"), [
    (0.012971, "K", "12.97", "mK"),
    (0.7849, "K", "784.9", "mK"),
    (2.8838, "K", "2.884", "K"),
    (44.9279, "K", "44.93", "K"),
    (2.7853e-07, "mbar", "2.79e-7", "mbar"),
    (294.25, "mbar", "294.2", "mbar"),
    (3.093, "V", "3.093", "V"),
    (2.5e-6, "A", "2.500", "µA"),
    (17.32, "%", "17.32", "%"),
    (0.0, "K", "0", "K"),
])
def test_numbers_are_written_with_engineering_prefixes(value: float, units: str, text: str,
                                                       unit: str) -> None:
    assert format_number(value, units) == (text, unit)


def test_ages_are_short() -> None:
    assert [format_age(s) for s in (4, 180, 3 * 3600, 5 * 86400)] == ["4 s", "3 min",
                                                                      "3.0 h", "5 d"]


def test_a_flagged_reading_is_never_shown_as_a_number() -> None:
    open_leads = Reading(0.0, "K", int(Quality.SENSOR_ERROR | Quality.OVERRANGE), NOW, NOW,
                         "RDGST 017: CS OVL, R.OVER", "daemon")
    shown = show_value(open_leads, NOW)
    assert shown.text == "SENSOR FAULT" and not shown.is_number and shown.unit == ""
    assert shown.tone is Tone.BAD and shown.hatched
    assert shown.badge == "RDGST 017: CS OVL, R.OVER"
    assert "0 K" in shown.detail and "SENSOR_ERROR" in shown.detail  # the raw value, in the tip
    over = show_value(Reading(5e6, "Ohm", int(Quality.OVERRANGE), NOW, NOW), NOW)
    assert over.text == "OVER RANGE" and over.tone is Tone.BAD
    nan = show_value(Reading(math.nan, "K", int(Quality.INVALID), NOW, NOW), NOW)
    assert nan.text == "NO READING"


def test_old_values_and_silent_publishers_are_greyed_with_their_age() -> None:
    fresh = Reading(0.013, "K", 0, NOW, NOW - 2 * 10**9, "", "daemon")
    assert show_value(fresh, NOW).tone is Tone.GOOD
    old = show_value(fresh, NOW + 60 * 10**9, stale_after_s=30)
    assert old.tone is Tone.STALE and old.text == "13.00" and "62 s" in old.badge
    silent = show_value(fresh, NOW, publisher_silent=True)
    assert silent.tone is Tone.STALE and "publisher silent" in silent.badge
    flagged_stale = show_value(Reading(0.013, "K", int(Quality.STALE), NOW, NOW), NOW)
    assert flagged_stale.tone is Tone.STALE and flagged_stale.is_number
    assert show_value(None, NOW).tone is Tone.NONE


def _data(stream: str, value: float, quality: int = 0, pub: str = "daemon-a",
          t_recv: int = NOW, **meta: object) -> messages.Message:
    source, channel = stream.split("/")
    msg = messages.scalar(source, channel, value, units="K", quality=quality, t=t_recv,
                          meta=meta)
    msg.pub, msg.t_recv = pub, t_recv
    return msg


def test_the_overview_picture_marks_flags_and_a_silent_daemon() -> None:
    view = FridgeView(stages={"Still": "f1/still", "MXC": "f1/mxc"},
                      pressures={"OVC": "f1/p_ovc"}, instruments=["f1/ls372"])
    live = LiveState()
    live.apply(_data("f1/still", 0.78, instrument="ls372"))
    live.apply(_data("f1/mxc", 0.0, int(Quality.SENSOR_ERROR | Quality.OVERRANGE),
                     instrument="ls372", note="RDGST 017: CS OVL, R.OVER"))
    status = messages.status("f1", "ls372", "connected", "connected to X")
    status.pub, status.t_recv = "daemon-a", NOW
    live.apply(status)
    live.set_liveness(frozenset(), frozenset({"daemon-a"}), connected=True)
    picture = fridge_picture("f1", view, live, NOW + 10**9)
    assert [r.label for r in picture.stages] == ["Still", "MXC"]  # the config's order
    assert picture.row("Still").shown.text == "780.0" and picture.row("Still").shown.unit == "mK"
    assert picture.row("MXC").shown.text == "SENSOR FAULT"
    assert picture.row("OVC").shown.tone is Tone.NONE  # never received
    assert picture.instruments[0].state == "connected" and picture.instruments[0].age == "1 s"
    assert picture.tone is Tone.BAD
    # the daemon dies: it says nothing, its heartbeats stop
    live.set_liveness(frozenset({"daemon-a"}), frozenset({"daemon-a"}), connected=True)
    picture = fridge_picture("f1", view, live, NOW + 3 * 10**9)
    assert picture.instruments[0].state == "stale" and picture.instruments[0].tone is Tone.STALE
    assert "daemon-a silent" in picture.instruments[0].message
    assert picture.row("Still").shown.tone is Tone.STALE


def test_a_stream_learns_how_often_it_comes() -> None:
    live = LiveState()
    for k in range(10):
        live.apply(_data("f1/mxc", 0.013, t_recv=NOW + k * 20 * 10**9))
    assert live.stale_after_s("f1/mxc") == pytest.approx(80.0)
    assert live.stale_after_s("f1/never") == 30.0
    assert np.isfinite(live.reading("f1/mxc").value)  # type: ignore[union-attr]
