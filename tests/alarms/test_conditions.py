"""Conditions alone: samples and states in, verdicts out, with made-up times."""

from __future__ import annotations

from typing import Any

from daq.alarms.conditions import Sample, build
from daq.alarms.config import ConditionConfig
from daq.messages import InstrumentState, Quality


def _cond(**fields: Any) -> Any:
    return build(ConditionConfig(**fields))


def _feed(cond: Any, t: float, value: float, quality: int = 0, note: str = "",
          stream: str = "f/x") -> None:
    cond.on_sample(Sample(stream, t, t, value, quality, note))


def test_threshold_holds_above_and_lets_go_only_past_the_deadband() -> None:
    cond = _cond(stream="f/x", above=0.030, deadband=0.002)
    assert cond.evaluate(0).holds is None  # no reading yet
    _feed(cond, 1, 0.029)
    assert cond.evaluate(1).holds is False
    _feed(cond, 2, 0.031)
    verdict = cond.evaluate(2)
    assert verdict.holds and verdict.reason == "f/x = 0.031 is above 0.03" and verdict.value == 0.031
    _feed(cond, 3, 0.0295)  # below the limit, inside the deadband: still holding
    assert cond.evaluate(3).holds is True
    _feed(cond, 4, 0.0279)
    assert cond.evaluate(4).holds is False
    _feed(cond, 5, 0.1, quality=Quality.SENSOR_ERROR)  # a flagged reading is no reading
    assert cond.evaluate(5).holds is False


def test_below_threshold() -> None:
    cond = _cond(stream="f/p", below=0.01, deadband=0.001)
    _feed(cond, 1, 0.005, stream="f/p")
    assert cond.evaluate(1).holds
    _feed(cond, 2, 0.0105, stream="f/p")
    assert cond.evaluate(2).holds  # inside the deadband
    _feed(cond, 3, 0.012, stream="f/p")
    assert not cond.evaluate(3).holds


def test_rate_of_change_is_the_slope_over_the_window() -> None:
    cond = _cond(stream="f/t4k", rate_above=1.0, per="h", window_s=600)
    for i in range(4):
        _feed(cond, i * 60.0, 3.0, stream="f/t4k")
    assert cond.evaluate(180).holds is None  # less than half a window
    for i in range(4, 11):
        _feed(cond, i * 60.0, 3.0 + (i - 3) * 0.05, stream="f/t4k")  # 3 K/h after a flat start
    verdict = cond.evaluate(600)
    assert verdict.holds and verdict.value is not None and 1.5 < verdict.value < 3.0
    assert "K" not in verdict.reason and "/h over 600 s (limit +1/h)" in verdict.reason
    for i in range(11, 25):
        _feed(cond, i * 60.0, 3.4, stream="f/t4k")  # flat again
    assert cond.evaluate(1500).holds is False


def test_stale_counts_from_the_last_arrival_or_from_the_start() -> None:
    cond = _cond(stream="f/x", stale_s=5.0)
    assert cond.evaluate(100).holds is False  # the first evaluation starts the clock
    verdict = cond.evaluate(106)
    assert verdict.holds and "no sample for 6.0 s (limit 5 s)" in verdict.reason
    _feed(cond, 106, 1.0)
    assert cond.evaluate(107).holds is False
    assert cond.evaluate(111.5).holds is True


def test_stale_periods_learns_the_period() -> None:
    cond = _cond(stream="f/x", stale_periods=3)
    for t in (0.0, 2.0, 4.0, 6.0):
        _feed(cond, t, 1.0)
    assert cond.evaluate(11.9).holds is False  # 3 x 2 s
    assert cond.evaluate(12.1).holds is True


def test_bad_quality_names_the_flags_and_the_instruments_words() -> None:
    cond = _cond(stream="f/mxc", bad_quality=True)
    _feed(cond, 1, 0.0, Quality.SENSOR_ERROR | Quality.OVERRANGE, "RDGST 017: CS OVL",
          stream="f/mxc")
    verdict = cond.evaluate(1)
    assert verdict.holds and "SENSOR_ERROR" in verdict.reason and "RDGST 017" in verdict.reason
    _feed(cond, 2, 0.01, stream="f/mxc")
    assert cond.evaluate(2).holds is False


def test_instrument_status_and_combinations() -> None:
    status = _cond(instrument="f/ls336", status_in=[InstrumentState.DISCONNECTED])
    assert status.evaluate(0).holds is None
    status.on_status("f/ls336", "disconnected", "connection refused")
    assert status.evaluate(0).reason == "f/ls336 is disconnected: connection refused"
    both = build(ConditionConfig(all=[ConditionConfig(stream="f/heater", above=0.001),
                                      ConditionConfig(stream="f/p", below=0.01)]))
    either = build(ConditionConfig(any=[ConditionConfig(stream="f/heater", above=0.001),
                                        ConditionConfig(stream="f/p", below=0.01)]))
    for cond in (both, either):
        cond.on_sample(Sample("f/heater", 1, 1, 0.002))
        cond.on_sample(Sample("f/p", 1, 1, 0.5))
    assert not both.evaluate(1).holds and either.evaluate(1).holds
    for cond in (both, either):
        cond.on_sample(Sample("f/p", 2, 2, 0.005))
    verdict = both.evaluate(2)
    assert verdict.holds and verdict.reason == "f/heater = 0.002 is above 0.001 and f/p = 0.005 is below 0.01"
