"""The worker publishes the instrument's verdict and source times, and tells faults apart."""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from daq.daemon.config import BackoffConfig, InstrumentConfig
from daq.daemon.worker import REPLY_ERRORS_BEFORE_RECONNECT, InstrumentWorker, Request
from daq.messages import Kind, Quality
from drivers.common import ControlSpec, PollSpec
from drivers.readings import Reading
from tests.daq.fake_instrument import FakeConnection, FakeInstrument
from tests.daq.test_worker_control import CONFIG, Sink


def _start(instrument: FakeInstrument, config: InstrumentConfig = CONFIG
           ) -> tuple[InstrumentWorker, FakeConnection, Sink]:
    connection = FakeConnection(instrument)
    sink = Sink()
    worker = InstrumentWorker("fake1", config, sink, status_period_s=0.5,
                              connection=connection)  # type: ignore[arg-type]
    worker.start()
    return worker, connection, sink


@pytest.fixture
def instrument() -> Iterator[FakeInstrument]:
    yield FakeInstrument()


def _swap_control(worker: InstrumentWorker, target: str, spec: ControlSpec) -> None:
    """Give a connected worker another driver spec for ``target`` (as a reconnect would)."""
    specs = worker._specs
    worker._specs = dataclasses.replace(specs, controls={**specs.controls, target: spec})


def _request(worker: InstrumentWorker, **fields: Any) -> dict[str, Any]:
    box: queue.Queue[dict[str, Any]] = queue.Queue()
    worker.submit(Request(reply=box.put, **fields))
    return box.get(timeout=10)


def test_a_flagged_reading_is_published_with_its_flags_note_and_status(
        instrument: FakeInstrument) -> None:
    worker, _, sink = _start(instrument)
    try:
        sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality == 0)
        instrument.quality, instrument.note = Quality.SENSOR_ERROR, "RDGST 001: CS OVL"
        bad = sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality)
        assert bad.quality == Quality.SENSOR_ERROR and bad.meta["note"] == "RDGST 001: CS OVL"
        assert bad.value == pytest.approx(instrument.temperature)  # the value is kept
        status = sink.wait_for(lambda m: m.kind is Kind.STATUS and "flagged" in
                               m.meta["message"])
        assert status.meta["message"] == "mxc flagged SENSOR_ERROR: RDGST 001: CS OVL"
        assert status.meta["state"] == "connected"  # a sensor condition is not a link fault
        instrument.quality, instrument.note = Quality.OK, ""
        sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality == 0)
        sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["message"] ==
                      "mxc reads ok again")
    finally:
        worker.stop()


def test_a_batch_keeps_each_samples_own_time_and_splits_by_verdict(
        instrument: FakeInstrument) -> None:
    lines = [Reading(0.01, t_ns=1_000), Reading(0.02, t_ns=2_000),
             Reading(9.9e37, Quality.OVERRANGE, t_ns=3_000, note="over"),
             Reading(0.03, t_ns=4_000)]
    served: list[bool] = []

    def read() -> list[Reading]:
        if served:
            return []  # nothing new: nothing published, and not stale either
        served.append(True)
        return lines

    instrument.poll_specs = lambda: [PollSpec("A", "K", read, 0.05)]  # type: ignore[method-assign]
    worker, _, sink = _start(instrument)
    try:
        got = [sink.wait_for(lambda m: m.kind is Kind.DATA) for _ in range(3)]
    finally:
        worker.stop()
    assert [m.data["t"].tolist() for m in got] == [[1_000, 2_000], [3_000], [4_000]]
    assert [m.quality for m in got] == [0, Quality.OVERRANGE, 0]
    assert got[1].meta["note"] == "over" and got[0].data["value"].tolist() == [0.01, 0.02]


def test_a_garbled_reply_is_an_invalid_reading_and_only_a_run_of_them_reopens_the_link(
        instrument: FakeInstrument) -> None:
    garble = {"n": 0}
    real = instrument.read_temperature

    def read() -> Reading:
        if garble["n"] > 0:
            garble["n"] -= 1
            raise ValueError("could not convert string to float: '\\x1b?#!ERR'")
        return real()

    instrument.poll_specs = lambda: [PollSpec("A", "K", read, 0.05)]  # type: ignore[method-assign]
    worker, connection, sink = _start(instrument)
    try:
        sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality == 0)
        attempts = connection.attempts
        garble["n"] = 1
        invalid = sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality)
        assert invalid.quality == Quality.INVALID and "could not convert" in invalid.meta["note"]
        sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality == 0)
        assert connection.attempts == attempts  # one garbled line: the link stays
        garble["n"] = REPLY_ERRORS_BEFORE_RECONNECT
        sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "reconnecting"
                      and "malformed replies in a row" in m.meta["message"])
        sink.wait_for(lambda m: m.kind is Kind.DATA and m.quality == 0)
        assert connection.attempts == attempts + 1
    finally:
        worker.stop()


def test_backoff_grows_while_connects_succeed_but_the_instrument_never_answers(
        instrument: FakeInstrument) -> None:
    config = InstrumentConfig(**{**CONFIG.__dict__,
                                 "reconnect": BackoffConfig(initial_s=0.05, max_s=0.4)})
    instrument.fail_reads = True  # connect() succeeds, every read times out
    worker, connection, sink = _start(instrument, config)
    try:
        time.sleep(2.0)
    finally:
        worker.stop()
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 + ... : about 6 attempts in 2 s, not one per poll period
    assert 3 <= connection.attempts <= 9, connection.attempts


def test_a_value_the_driver_cannot_convert_is_refused_without_reconnecting(
        instrument: FakeInstrument) -> None:
    worker, connection, sink = _start(instrument)
    try:
        sink.wait_for(lambda m: m.kind is Kind.DATA)
        attempts = connection.attempts
        instrument.control_specs = lambda: [  # type: ignore[method-assign]
            ControlSpec("setpoint", "K", lambda v: float(v) and None, lambda v: v,
                        lambda: 0.0)]
        _swap_control(worker, "fridge1/mxc_setpoint", instrument.control_specs()[0])
        answer = _request(worker, op="set", target="fridge1/mxc_setpoint", value=10**400)
        assert not answer["ok"] and "OverflowError" in answer["error"]
        answer = _request(worker, op="set", target="fridge1/mxc_setpoint", value=0.1)
        assert answer["ok"]
        assert connection.attempts == attempts and worker.state.value == "connected"
    finally:
        worker.stop()


def test_enforce_sets_reads_back_and_fails_when_the_value_does_not_hold(
        instrument: FakeInstrument) -> None:
    worker, _, sink = _start(instrument)
    try:
        sink.wait_for(lambda m: m.kind is Kind.DATA)
        held = _request(worker, op="enforce", target="fridge1/mxc_setpoint", value=0.0)
        assert held == {"ok": True, "value": 0.0, "verified": True, "attempts": 1}
        stuck = ControlSpec("setpoint", "K", lambda v: None, lambda v: float(v), lambda: 0.7)
        _swap_control(worker, "fridge1/mxc_setpoint", stuck)
        failed = _request(worker, op="enforce", target="fridge1/mxc_setpoint", value=0.0)
        assert not failed["ok"]
        assert "set 0.0 but it reads back 0.7 after 3 attempts" in failed["error"]
    finally:
        worker.stop()


def test_setup_values_are_set_and_read_back_before_polling(instrument: FakeInstrument) -> None:
    config = InstrumentConfig(**{**CONFIG.__dict__, "setup": {"setpoint": 0.25}})
    worker, _, sink = _start(instrument, config)
    try:
        sink.wait_for(lambda m: m.kind is Kind.DATA)
        assert instrument.sets[0] == ("setpoint", 0.25)
    finally:
        worker.stop()
    bad = InstrumentConfig(**{**CONFIG.__dict__, "setup": {"tlimit_Z": 1.0}})
    worker, _, sink = _start(FakeInstrument(), bad)
    try:
        status = sink.wait_for(lambda m: m.kind is Kind.STATUS and "tlimit_Z" in
                               m.meta["message"])
        assert "cannot set" in status.meta["message"] and status.meta["state"] == "reconnecting"
    finally:
        worker.stop()


def test_connected_means_the_instrument_answered_its_identity_query(
        instrument: FakeInstrument) -> None:
    from drivers.fake import Fault

    instrument.fault = Fault.IO  # the socket opens, the instrument never answers
    worker, connection, sink = _start(instrument)
    try:
        status = sink.wait_for(lambda m: m.kind is Kind.STATUS and "identity" in
                               m.meta["message"])
        assert status.meta["state"] == "reconnecting"
        assert "no answer to the identity query" in status.meta["message"]
        assert worker.state.value != "connected"
        instrument.fault = Fault.NONE
        sink.wait_for(lambda m: m.kind is Kind.STATUS and m.meta["state"] == "connected")
        sink.wait_for(lambda m: m.kind is Kind.DATA)
    finally:
        worker.stop()
