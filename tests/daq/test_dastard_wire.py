"""DASTARD's binary headers and status messages: exact layouts, round trips, refusals."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from daq.config_schema import from_mapping
from daq.dastard import DastardConfig
from daq.dastard.errors import DastardFormatError
from daq.dastard.status import (
    Alive,
    ChanGroup,
    ChannelNames,
    DataDrop,
    NumberWritten,
    ServerStatus,
    TriggerRate,
    format_go_time,
    parse_go_time,
    parse_status,
)
from daq.dastard.wire import (
    RECORD_HEADER_BYTES,
    RECORD_HEADER_DTYPE,
    SUMMARY_HEADER_BYTES,
    SUMMARY_HEADER_DTYPE,
    Port,
    RecordHeader,
    SampleType,
    SummaryHeader,
    channel_prefix,
    float32,
    unpack_coefficients,
    unpack_record_header,
)
from daq.errors import ConfigError

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
u64 = st.integers(0, 2**64 - 1)
f32 = st.floats(width=32, allow_nan=False)


@st.composite
def record_headers(draw: st.DrawFn) -> RecordHeader:
    samples = draw(u32)
    return RecordHeader(channel=draw(u16), sample_type=draw(st.sampled_from(SampleType)),
                        presamples=draw(st.integers(0, samples)), samples=samples,
                        sample_period=draw(f32), volts_per_arb=draw(f32),
                        trigger_ns=draw(i64), trigger_frame=draw(u64))


summary_headers = st.builds(
    SummaryHeader, channel=u16, presamples=u32, samples=u32, pretrig_mean=f32, peak=f32,
    pulse_rms=f32, pulse_average=f32, residual_std=f32, trigger_ns=i64, trigger_frame=i64)


# ---- record header -------------------------------------------------------------------------


def test_record_header_is_dastards_36_byte_layout() -> None:
    """Byte offsets as DASTARD documents them: channel 0, version 2, type 3, presamples 4,
    samples 8, period 12, volts/arb 16, trigger time 20, frame 28."""
    header = RecordHeader(channel=0x0102, sample_type=SampleType.INT16, presamples=250,
                          samples=1000, sample_period=4e-6, volts_per_arb=1e-4,
                          trigger_ns=1_700_000_000_123_456_789, trigger_frame=2**40 + 7)
    raw = header.pack()
    assert len(raw) == RECORD_HEADER_BYTES == 36
    assert raw[0:2] == b"\x02\x01" == channel_prefix(0x0102)
    assert raw[2] == 0 and raw[3] == 2
    assert struct.unpack_from("<I", raw, 4)[0] == 250
    assert struct.unpack_from("<I", raw, 8)[0] == 1000
    assert struct.unpack_from("<f", raw, 12)[0] == np.float32(4e-6)
    assert struct.unpack_from("<f", raw, 16)[0] == np.float32(1e-4)
    assert struct.unpack_from("<q", raw, 20)[0] == 1_700_000_000_123_456_789
    assert struct.unpack_from("<Q", raw, 28)[0] == 2**40 + 7
    assert np.frombuffer(raw, RECORD_HEADER_DTYPE)["trigger_frame"][0] == 2**40 + 7


@given(record_headers())
def test_record_header_round_trips(header: RecordHeader) -> None:
    raw = header.pack()
    back = RecordHeader.unpack(raw)
    assert back == header
    assert back.pack() == raw
    # the numpy layout (the simulator's) reads the same bytes the same way
    row = np.frombuffer(raw, RECORD_HEADER_DTYPE)[0]
    assert int(row["channel"]) == header.channel
    assert int(row["trigger_ns"]) == header.trigger_ns
    assert int(row["trigger_frame"]) == header.trigger_frame
    assert float(row["sample_period"]) == header.sample_period


@given(st.binary(min_size=36, max_size=36))
def test_any_36_bytes_of_a_known_version_and_type_repack_identically(raw: bytes) -> None:
    raw = raw[:2] + b"\x00" + bytes([raw[3] % 8]) + raw[4:]
    fields = struct.unpack("<HBBIIffqQ", raw)
    if fields[3] > fields[4] or math.isnan(fields[5]) or math.isnan(fields[6]):
        return  # refused (presamples beyond the record) or NaN, whose payload bits may change
    assert RecordHeader.unpack(raw).pack() == raw


@pytest.mark.parametrize(("raw", "why"), [
    (b"\x00" * 35, "35 bytes"),
    (b"\x00" * 37, "37 bytes"),
    (b"\x00\x00\x01\x02" + b"\x00" * 32, "version 1"),
    (b"\x00\x00\x00\x09" + b"\x00" * 32, "sample type code 9"),
    (struct.pack("<HBBIIffqQ", 0, 0, 2, 11, 10, 1e-6, 1.0, 0, 0), "11 presamples"),
])
def test_bad_record_headers_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(DastardFormatError, match=why):
        unpack_record_header(raw)


def test_payload_length_must_match_the_header() -> None:
    header = RecordHeader(channel=1, sample_type=SampleType.UINT16, presamples=1, samples=4,
                          sample_period=1e-6, volts_per_arb=1.0, trigger_ns=0, trigger_frame=0)
    header.check_payload(8)
    with pytest.raises(DastardFormatError, match="6 sample bytes"):
        header.check_payload(6)


def test_sample_types_map_to_little_endian_dtypes() -> None:
    assert SampleType.INT16.dtype == np.dtype("<i2")
    assert SampleType.UINT16.dtype == np.dtype("<u2")
    assert SampleType.of_dtype(np.uint64) is SampleType.UINT64
    with pytest.raises(ValueError, match="integer"):
        SampleType.of_dtype(np.float32)


def test_ports_follow_the_base_port() -> None:
    assert [p.of(5500) for p in Port] == [5500, 5501, 5502, 5503, 5504]


def test_float32_values_read_as_they_were_set() -> None:
    assert float32(4e-6) == 4e-6  # not 3.9999999e-06
    assert float32(1e-4) == 1e-4
    assert math.isinf(float32(1e39))


@given(f32)
@example(999999995904.0)  # 1e12: fewer digits, yet a longer repr
def test_float32_widening_is_the_shortest_decimal_of_the_same_float32(x: float) -> None:
    clean = float32(x)
    assert np.float32(clean) == np.float32(x)
    assert _significant_digits(clean) <= _significant_digits(float(np.float32(x)))


def _significant_digits(value: float) -> int:
    """How many significant decimal digits ``repr`` needs for ``value`` (1e12 needs one)."""
    mantissa = repr(abs(value)).split("e")[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


# ---- summary header ------------------------------------------------------------------------


def test_summary_header_is_dastards_48_byte_layout() -> None:
    header = SummaryHeader(channel=3, presamples=250, samples=1000, pretrig_mean=1.5,
                           peak=8000.0, pulse_rms=900.0, pulse_average=400.0, residual_std=0.0,
                           trigger_ns=-5, trigger_frame=123)
    raw = header.pack()
    assert len(raw) == SUMMARY_HEADER_BYTES == 48
    assert struct.unpack_from("<HH", raw, 0) == (3, 0)
    assert struct.unpack_from("<II", raw, 4) == (250, 1000)
    assert struct.unpack_from("<5f", raw, 12) == (1.5, 8000.0, 900.0, 400.0, 0.0)
    assert struct.unpack_from("<qq", raw, 32) == (-5, 123)
    assert np.frombuffer(raw, SUMMARY_HEADER_DTYPE)["peak"][0] == 8000.0


@given(summary_headers)
def test_summary_header_round_trips(header: SummaryHeader) -> None:
    raw = header.pack()
    assert SummaryHeader.unpack(raw) == header
    assert SummaryHeader.unpack(raw).pack() == raw


def test_bad_summaries_are_refused() -> None:
    with pytest.raises(DastardFormatError, match="47 bytes"):
        SummaryHeader.unpack(b"\x00" * 47)
    with pytest.raises(DastardFormatError, match="version 2"):
        SummaryHeader.unpack(b"\x00\x00\x02\x00" + b"\x00" * 44)
    with pytest.raises(DastardFormatError, match="whole number"):
        unpack_coefficients(b"\x00" * 12)
    assert unpack_coefficients(b"").size == 0
    assert unpack_coefficients(np.array([1.0, -2.0]).tobytes()).tolist() == [1.0, -2.0]


# ---- status messages -----------------------------------------------------------------------


@given(st.integers(-(10**18), 4 * 10**18), st.integers(-14 * 60, 14 * 60))
def test_go_times_round_trip_to_the_nanosecond(ns: int, offset_min: int) -> None:
    text = format_go_time(ns, offset_min * 60)
    assert parse_go_time(text) == ns


def test_go_time_text_is_what_go_marshals() -> None:
    ns = 1_700_000_000 * 10**9 + 120_000_000
    assert format_go_time(ns, 0) == "2023-11-14T22:13:20.12Z"
    assert format_go_time(1_700_000_000 * 10**9, -6 * 3600) == "2023-11-14T16:13:20-06:00"
    assert parse_go_time("2023-11-14T16:13:20.000000001-06:00") == 1_700_000_000 * 10**9 + 1
    with pytest.raises(DastardFormatError, match="RFC 3339"):
        parse_go_time("2023-11-14 16:13:20")


@pytest.mark.parametrize("update", [
    Alive(running=True, time_s=2.0, data_mb=102.4, hw_actual_mb=100.0),
    ServerStatus(running=True, source_name="SimPulses", nchannels=4, nsamples=1000,
                 npresamp=250, sample_period_ns=2000, chan_groups=(ChanGroup(1, 4),),
                 channels_with_projectors=(0, 2)),
    TriggerRate(hi_time_ns=1_700_000_001 * 10**9, duration_ns=10**9, counts=(3, 0, 7)),
    ChannelNames(("chan1", "chan2")),
    DataDrop(2),
    NumberWritten((5, 6)),
])
def test_status_messages_round_trip(update: object) -> None:
    tag, body = update.encode()  # type: ignore[attr-defined]
    assert parse_status(tag, body) == update


def test_status_bodies_are_dastards_json() -> None:
    tag, body = TriggerRate(hi_time_ns=10**18, duration_ns=10**9, counts=(1, 2)).encode(0)
    assert tag == b"TRIGGERRATE"
    assert json.loads(body) == {"HiTime": "2001-09-09T01:46:40Z", "Duration": 10**9,
                                "CountsSeen": [1, 2]}
    # an older DASTARD's heartbeat has no HWactualMB; a nil Go slice arrives as null
    assert parse_status(b"ALIVE", b'{"Running":false,"Time":2,"DataMB":0}') == Alive(
        running=False, time_s=2.0)
    status = parse_status(b"STATUS", b'{"Running":true,"ChanGroups":null,'
                                     b'"ChannelsWithProjectors":null}')
    assert isinstance(status, ServerStatus) and status.chan_groups == ()
    assert parse_status(b"WRITING", b'{"Active":false}') is None
    assert parse_status(b"\xff", b"{}") is None


@pytest.mark.parametrize(("tag", "body", "why"), [
    (b"ALIVE", b"{not json", "not JSON"),
    (b"ALIVE", b'{"Time":2}', "Running"),
    (b"TRIGGERRATE", b'{"HiTime":"x","Duration":1,"CountsSeen":[]}', "RFC 3339"),
    (b"TRIGGERRATE", b'{"HiTime":"2001-09-09T01:46:40Z","Duration":0,"CountsSeen":[]}',
     "Duration"),
    (b"TRIGGERRATE", b'{"HiTime":"2001-09-09T01:46:40Z","Duration":1,"CountsSeen":[-1]}',
     "negative"),
    (b"CHANNELNAMES", b'[1, 2]', "strings"),
    (b"DATADROP", b'{"TotalObserved": "3"}', "integer"),
])
def test_malformed_status_is_refused(tag: bytes, body: bytes, why: str) -> None:
    with pytest.raises(DastardFormatError, match=why):
        parse_status(tag, body)


# ---- the config section ----------------------------------------------------------------------


def test_the_dastard_section_loads_and_refuses_what_cannot_work() -> None:
    cfg = from_mapping(DastardConfig, {"host": "10.0.0.5", "summaries_only": True},
                       file="lab.yaml", path="dastard")
    assert cfg.url(Port.SUMMARIES) == "tcp://10.0.0.5:5504"
    assert (cfg.takes_primary, cfg.takes_secondary, cfg.takes_summaries) == (False, False, True)
    with pytest.raises(ConfigError, match="dastard.hots"):
        from_mapping(DastardConfig, {"hots": "x"}, file="lab.yaml", path="dastard")
    with pytest.raises(ConfigError, match="loss counting"):
        from_mapping(DastardConfig, {"primary": False}, file="lab.yaml", path="dastard")
    with pytest.raises(ConfigError, match="source"):
        from_mapping(DastardConfig, {"source": "tes array"}, file="lab.yaml", path="dastard")
