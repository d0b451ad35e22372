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


def test_a_flagged_reading_blinds_every_interlock_on_its_stream() -> None:
    from daq.messages import Quality

    locks = Interlocks([
        InterlockConfig(name="hot", stream="f/mxc", target="f/heater_range", value=0, above=0.8),
        InterlockConfig(name="blind", stream="f/mxc", target="f/heater_range", value=0,
                        stale_s=30.0)])
    assert locks.on_sample("f/mxc", 0.01, 0.0) == []
    # An open RuOx reads 0 K: below the limit, but flagged; both interlocks go blind.
    trips = locks.on_sample("f/mxc", 0.0, 1.0, Quality.SENSOR_ERROR, "RDGST 001: CS OVL")
    assert sorted(t.interlock for t in trips) == ["blind", "hot"]
    assert "flagged SENSOR_ERROR (RDGST 001: CS OVL): the interlock is blind" in trips[0].reason
    assert locks.on_sample("f/mxc", 0.0, 2.0, Quality.SENSOR_ERROR) == []  # once per crossing
    assert locks.on_sample("f/mxc", 0.01, 3.0) == []  # good again: re-armed
    assert len(locks.on_sample("f/mxc", 0.0, 4.0, Quality.OVERRANGE)) == 2
    assert locks.on_sample("f/mxc", 0.01, 5.0, Quality.SIMULATED) == []  # not a bad flag


def test_the_enforcer_retries_a_failed_action_with_alarms_until_it_holds() -> None:
    from daq.daemon.enforce import TripEnforcer
    from daq.daemon.safety import Trip
    from daq.messages import Kind

    answers = [{"ok": False, "error": "ls372 is not connected"},
               {"ok": False, "error": "reads back 1e-3"}, {"ok": True, "value": 0}]
    submitted: list[tuple[str, object]] = []
    emitted = []

    def submit(target: str, value: object, reason: str, done: object) -> None:
        submitted.append((target, value))
        done(answers.pop(0))  # type: ignore[operator]

    enforcer = TripEnforcer(submit, emitted.append, daemon_name="d1", retry_s=1.0)
    trip = Trip("mxc_blind", "f/heater_range", 0, "f/mxc is flagged SENSOR_ERROR")
    enforcer.on_trip(trip)
    assert [m.meta["state"] for m in emitted] == ["tripped", "action_failed"]
    assert all(m.kind is Kind.ALARM for m in emitted)
    assert enforcer.snapshot()["mxc_blind"]["state"] == "failing"
    import time

    now = time.monotonic()
    enforcer.tick(now)  # the retry is not due yet
    assert len(submitted) == 1
    enforcer.tick(now + 1.5)
    assert len(submitted) == 2 and emitted[-1].meta["attempt"] == 2
    assert emitted[-1].meta["retry_in_s"] == 2.0  # the delay doubles
    enforcer.tick(now + 10)
    assert len(submitted) == 3
    state = enforcer.snapshot()["mxc_blind"]
    assert state["state"] == "held" and state["attempts"] == 3
    enforcer.tick(now + 100)
    assert len(submitted) == 3  # held: no more attempts


def test_a_huge_integer_is_refused_as_not_a_number() -> None:
    limits = Limits({"f/setpoint": LimitConfig(min=0, max=1, unit="K")})
    with pytest.raises(NotPermitted, match="not a number"):
        limits.check("f/setpoint", 10**400)
