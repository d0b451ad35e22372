"""Suspenders as plain logic: what makes each kind of condition bad, and good again."""

from __future__ import annotations

import numpy as np
import pytest

from daq import messages
from daq.messages import InstrumentState, Kind, Quality
from daq.runs.conditions import Check, ConditionConfig, ConditionKind


def _sample(stream: str, value: float, quality: int = 0) -> messages.Message:
    source, channel = stream.split("/")
    return messages.scalar(source, channel, value, units="K", quality=quality)


def test_above_is_bad_while_the_newest_good_value_is_above_the_limit() -> None:
    check = Check(ConditionConfig("warm", ConditionKind.ABOVE, "fridge1/mxc", limit=0.03))
    assert "no value" in (check.verdict(0.0) or "")
    check.on_message(_sample("fridge1/mxc", 0.012), 1.0)
    assert check.verdict(1.0) is None
    check.on_message(_sample("fridge1/mxc", 0.045), 2.0)
    assert "0.045 is above 0.03" in (check.verdict(2.0) or "")
    check.on_message(_sample("fridge1/mxc", 0.5, Quality.OVERRANGE), 3.0)  # flagged: no reading
    assert check.value == 0.045
    check.on_message(_sample("fridge1/other", 0.001), 4.0)  # another stream: ignored
    check.on_message(_sample("fridge1/mxc", 0.02), 5.0)
    assert check.verdict(5.0) is None


def test_stale_covers_silence_flags_and_the_instruments_state() -> None:
    check = Check(ConditionConfig("bath", ConditionKind.STALE, "tes1/bath", after_s=10.0),
                  status_stream="status/tes1/sim900")
    check.on_message(_sample("tes1/bath", 0.05), 0.0)
    assert check.verdict(5.0) is None
    assert "no good value for 11 s" in (check.verdict(11.0) or "")
    check.on_message(_sample("tes1/bath", 0.05, Quality.OVERRANGE), 12.0)
    assert "flagged bad" in (check.verdict(12.0) or "")
    check.on_message(_sample("tes1/bath", 0.05), 13.0)
    assert check.verdict(13.0) is None
    check.on_message(messages.status("tes1", "sim900", InstrumentState.RECONNECTING), 14.0)
    assert "is reconnecting" in (check.verdict(14.0) or "")
    check.on_message(messages.status("tes1", "sim900", InstrumentState.CONNECTED), 15.0)
    assert check.verdict(15.0) is None


def test_a_clipped_record_means_the_squid_is_unlocked() -> None:
    check = Check(ConditionConfig("squid", ConditionKind.SQUID_UNLOCKED, "tes1/squid_out"))
    record = messages.waveform("tes1", "squid_out", np.zeros(100, np.int16), dt=1e-6)
    assert "no record" in (check.verdict(0.0) or "")
    check.on_message(record, 1.0)
    assert check.verdict(1.0) is None
    railed = messages.waveform("tes1", "squid_out", np.full(100, 32767, np.int16), dt=1e-6,
                               quality=Quality.CLIPPED, meta={"note": "100 of 100 at the rails"})
    check.on_message(railed, 2.0)
    assert "100 of 100 at the rails (SQUID unlocked?)" in (check.verdict(2.0) or "")
    check.on_message(record, 3.0)
    assert check.verdict(3.0) is None


@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_alarms_of_the_service_and_the_interlocks(severity: str) -> None:
    check = Check(ConditionConfig("alarms", ConditionKind.ALARM, severity="critical",
                                  hold_s=30.0))
    raised = messages.event(Kind.ALARM, "alarms", "mxc_hot", alarm="mxc_hot", severity=severity,
                            state="active_unack", reason="MXC above 60 mK")
    check.on_message(raised, 0.0)
    if severity != "critical":
        assert check.verdict(0.0) is None  # below the condition's severity
        return
    assert "critical alarm alarms/mxc_hot: MXC above 60 mK" in (check.verdict(0.0) or "")
    check.on_message(messages.event(Kind.ALARM, "alarms", "mxc_hot", alarm="mxc_hot",
                                    severity="critical", state="cleared_unack"), 1.0)
    assert check.verdict(1.0) is None
    # An interlock's trip has no clear: it counts for hold_s.
    check.on_message(messages.event(Kind.ALARM, "daemon-sim", "mxc_overheat", level="critical",
                                    state="tripped", reason="above 0.8"), 2.0)
    assert check.verdict(10.0) is not None and check.verdict(32.5) is None


def test_a_condition_without_what_its_kind_needs_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a limit"):
        ConditionConfig("x", ConditionKind.ABOVE, "fridge1/mxc")
    with pytest.raises(ValueError, match="source/channel"):
        ConditionConfig("x", ConditionKind.STALE, "mxc")
