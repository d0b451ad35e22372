"""Readings, records and the driver error boundary, as plain objects."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from drivers.common import ActionSpec, ControlSpec, PollSpec, classify_fault
from drivers.errors import (
    ArgumentError,
    InstrumentConnectionError,
    InstrumentReplyError,
    SettingOutOfRange,
)
from drivers.readings import (
    BAD,
    PollKind,
    Quality,
    Reading,
    WaveRecord,
    as_samples,
    describe_quality,
    is_bad,
)


def test_a_non_finite_value_is_always_invalid_and_says_why() -> None:
    reading = Reading.of(float("nan"))
    assert reading.quality & Quality.INVALID and not reading.ok
    assert "not a number" in reading.note
    flagged = Reading(math.inf, Quality.OVERRANGE, note="R.OVER")
    assert flagged.quality == Quality.OVERRANGE | Quality.INVALID and flagged.note == "R.OVER"
    assert Reading.of(0.012).ok


def test_every_flag_but_simulated_is_bad() -> None:
    assert not is_bad(Quality.SIMULATED) and not is_bad(0)
    for flag in Quality:
        if flag not in (Quality.OK, Quality.SIMULATED):
            assert is_bad(flag) and flag & BAD
    assert describe_quality(Quality.OVERRANGE | Quality.SENSOR_ERROR) == "OVERRANGE|SENSOR_ERROR"
    assert describe_quality(0) == "OK"


def test_a_record_knows_its_first_sample_time_and_volts() -> None:
    rec = WaveRecord(np.array([0, 10, 20], dtype=np.int16), dt=1e-6, scale=0.5, offset=-1.0,
                     presamples=2, t_ns=1_000_000)
    assert rec.first_sample_ns == 1_000_000 - 2000
    assert rec.volts.tolist() == [-1.0, 4.0, 9.0]
    with pytest.raises(ValueError, match="presamples 5 outside"):
        WaveRecord(np.zeros(3), dt=1e-6, presamples=5)
    with pytest.raises(ValueError, match="sample period"):
        WaveRecord(np.zeros(3), dt=0.0)


def test_poll_results_become_batches_and_anything_else_is_refused() -> None:
    one = Reading.of(1.0)
    assert as_samples(one) == [one]
    assert as_samples([one, one]) == [one, one]
    with pytest.raises(TypeError, match="not float"):
        as_samples(1.0)
    with pytest.raises(TypeError):
        as_samples([one, WaveRecord(np.zeros(2), dt=1.0)])


def test_the_boundary_sorts_link_faults_from_bad_replies_and_bad_arguments() -> None:
    timeout = VisaIOError(StatusCode.error_timeout)
    assert isinstance(classify_fault(timeout, instrument="ls372", command="read ch6"),
                      InstrumentConnectionError)
    assert isinstance(classify_fault(ConnectionResetError(), instrument="x", command="c"),
                      InstrumentConnectionError)
    bad_reply = classify_fault(ValueError("could not convert 'x#'"), instrument="ls372",
                               command="read ch6")
    assert isinstance(bad_reply, InstrumentReplyError) and "ls372 'read ch6'" in str(bad_reply)
    assert isinstance(classify_fault(OverflowError("too big"), instrument="x", command="set",
                                     setting=True), ArgumentError)
    refusal = SettingOutOfRange(instrument="x", command="c", value=9, allowed="0 to 1")
    assert classify_fault(refusal, instrument="x", command="c") is refusal


def test_specs_raise_typed_errors_only() -> None:
    def garbled() -> Reading:
        raise ValueError("could not convert string to float: '\\x1b?#'")

    with pytest.raises(InstrumentReplyError, match="could not convert"):
        PollSpec("A", "K", garbled).sample("ls372")
    with pytest.raises(InstrumentReplyError, match="a poll must return"):
        PollSpec("A", "K", lambda: 1.0).sample("ls372")  # type: ignore[arg-type,return-value]
    with pytest.raises(InstrumentReplyError, match="waveform poll must return WaveRecords"):
        PollSpec("w", "V", lambda: Reading.of(1.0), kind=PollKind.WAVEFORM).sample("scope")

    sent: list[float] = []

    def send(value: float) -> None:
        sent.append(float(value))  # float(10**400) overflows: the driver cannot convert it

    spec = ControlSpec("setpoint", "K", send, lambda v: v)
    with pytest.raises(ArgumentError, match="OverflowError"):
        spec.apply(10**400, "ls372")
    assert spec.apply(0.5, "ls372") == 0.5 and sent == [0.5]
    with pytest.raises(ArgumentError, match="cannot be read back"):
        spec.read_back("ls372")

    action = ActionSpec("ramp", lambda target, rate: None, params=("target", "rate"))
    with pytest.raises(ArgumentError, match="unknown parameter"):
        action.invoke("ls372", speed=1)
    with pytest.raises(ArgumentError, match="TypeError"):
        action.invoke("ls372", target=1)  # missing 'rate'
