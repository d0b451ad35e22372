"""Limits and interlocks as plain decisions."""

from __future__ import annotations

import pytest

from daq.daemon.config import InterlockConfig, LimitConfig
from daq.daemon.safety import Interlocks, Limits
from daq.errors import NotPermitted


def test_limits_refuse_with_target_value_range_and_unit() -> None:
    limits = Limits({"fridge1/mxc_setpoint": LimitConfig(min=0, max=0.8, unit="K"),
                     "fridge1/heater_range": LimitConfig(allowed=[0, 1, 2, 3])})
    limits.check("fridge1/mxc_setpoint", 0.5)
    limits.check("fridge1/other", 1e9)  # unlimited
    with pytest.raises(NotPermitted) as info:
        limits.check("fridge1/mxc_setpoint", 1.5)
    assert str(info.value) == ("fridge1/mxc_setpoint: value 1.5 K is outside the lab's limits; "
                               "allowed: 0 to 0.8 K")
    with pytest.raises(NotPermitted, match="one of 0, 1, 2, 3"):
        limits.check("fridge1/heater_range", 5)
    with pytest.raises(NotPermitted, match="not a number"):
        limits.check("fridge1/mxc_setpoint", "hot")
    with pytest.raises(NotPermitted, match="not a number"):
        limits.check("fridge1/mxc_setpoint", float("nan"))


def test_interlock_trips_once_per_crossing_and_rearms() -> None:
    locks = Interlocks([InterlockConfig(name="hot", stream="f/mxc", target="f/heater_range",
                                        value=0, above=0.5)])
    assert locks.on_sample("f/mxc", 0.1, 0.0) == []
    trips = locks.on_sample("f/mxc", 0.6, 1.0)
    assert [(t.interlock, t.target, t.value) for t in trips] == [("hot", "f/heater_range", 0)]
    assert "0.6 is above 0.5" in trips[0].reason
    assert locks.on_sample("f/mxc", 0.7, 2.0) == []  # still hot: no second action
    assert locks.on_sample("f/mxc", 0.2, 3.0) == []  # cleared: re-armed
    assert len(locks.on_sample("f/mxc", 0.9, 4.0)) == 1


def test_stale_interlock_trips_when_the_stream_falls_silent() -> None:
    locks = Interlocks([InterlockConfig(name="blind", stream="f/mxc", target="f/heater_range",
                                        stale_s=5.0)])
    assert locks.on_tick(0.0) == []
    locks.on_sample("f/mxc", 0.01, 1.0)
    assert locks.on_tick(5.9) == []
    trips = locks.on_tick(6.1)
    assert len(trips) == 1 and "no fresh value" in trips[0].reason
    assert locks.on_tick(7.0) == []
    locks.on_sample("f/mxc", 0.01, 8.0)  # fresh again: re-armed
    assert len(locks.on_tick(13.5)) == 1


def test_below_threshold_interlock() -> None:
    locks = Interlocks([InterlockConfig(name="unlock", stream="tes1/squid_locked",
                                        target="tes1/bias_output", value=0, below=0.5)])
    assert locks.on_sample("tes1/squid_locked", 1.0, 0.0) == []
    assert len(locks.on_sample("tes1/squid_locked", 0.0, 0.1)) == 1
