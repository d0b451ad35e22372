"""The wire format: every kind round-trips; anything malformed raises the typed error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq import messages
from daq.errors import MessageDecodeError
from daq.messages import SAMPLE_DTYPE, InstrumentState, Kind, Message, Quality


def _roundtrip(msg: Message) -> Message:
    frames = [bytes(f) for f in messages.encode(msg)]
    return messages.decode(frames)


def test_scalar_roundtrip_keeps_value_time_units_quality_and_meta() -> None:
    msg = messages.scalar("fridge1", "mxc", 0.0123, units="K", t=1_700_000_000_123_456_789,
                          quality=Quality.STALE, meta={"instrument": "ls372", "input": "6"})
    msg.seq, msg.epoch, msg.pub = 7, 99, "daemon-1"
    out = _roundtrip(msg)
    assert out.stream == "data/fridge1/mxc"
    assert out.value == pytest.approx(0.0123)
    assert out.sample_time == 1_700_000_000_123_456_789
    assert (out.units, out.quality, out.seq, out.epoch, out.pub) == ("K", 1, 7, 99, "daemon-1")
    assert out.meta == {"instrument": "ls372", "input": "6"}
    assert out.t_recv > 0


def test_scalar_batch_roundtrip() -> None:
    times = np.arange(5, dtype=np.int64) * 1_000_000 + 10
    values = np.linspace(0.01, 0.02, 5)
    out = _roundtrip(messages.scalar_batch("fridge1", "still_pressure", times, values,
                                           units="mbar"))
    assert out.data is not None and out.data.dtype == SAMPLE_DTYPE
    np.testing.assert_array_equal(out.data["t"], times)
    np.testing.assert_allclose(out.data["value"], values)


def test_waveform_roundtrip_is_zero_copy_and_converts_to_volts() -> None:
    samples = (np.arange(8192) % 300 - 150).astype(np.int16)
    msg = messages.waveform("tes1", "squid_out", samples, dt=1e-6, scale=2e-4, offset=0.1,
                            presamples=1000, t0=123)
    frames = messages.encode(msg)
    assert isinstance(frames[2], memoryview)
    assert np.shares_memory(np.frombuffer(frames[2], np.int16), samples)  # sent without a copy
    payload = bytearray(frames[2])
    out = messages.decode([bytes(frames[0]), bytes(frames[1]), payload])
    assert out.data is not None
    assert np.shares_memory(out.data, np.frombuffer(payload, np.int16))  # decoded without a copy
    np.testing.assert_array_equal(out.data, samples)
    np.testing.assert_allclose(out.volts(), samples * 2e-4 + 0.1)
    assert out.times()[1000] == 0.0 and out.times()[1001] == pytest.approx(1e-6)


def test_big_endian_arrays_go_out_little_endian() -> None:
    samples = np.arange(4, dtype=">i2")
    out = _roundtrip(messages.waveform("tes1", "x", samples, dt=1.0))
    assert out.data is not None and out.data.dtype == np.dtype("<i2")
    np.testing.assert_array_equal(out.data, [0, 1, 2, 3])


@pytest.mark.parametrize("state", list(InstrumentState))
def test_status_roundtrip(state: InstrumentState) -> None:
    out = _roundtrip(messages.status("fridge1", "ls372", state, "timeout on KRDG? 6", retry=3))
    assert out.kind is Kind.STATUS and out.data is None
    assert out.meta == {"state": state.value, "message": "timeout on KRDG? 6", "retry": 3}


@pytest.mark.parametrize("kind", [Kind.ALARM, Kind.AUDIT, Kind.RUN])
def test_event_roundtrip(kind: Kind) -> None:
    out = _roundtrip(messages.event(kind, "fridge1", "mxc_high", level="critical", value=0.5))
    assert out.kind is kind and out.stream == f"{kind.value}/fridge1/mxc_high"
    assert out.meta == {"level": "critical", "value": 0.5}


def test_heartbeat_roundtrip() -> None:
    out = _roundtrip(messages.heartbeat("daemon-1", 1.0, {"data/f/x": 41}))
    assert out.kind is Kind.HEARTBEAT and out.meta["streams"] == {"data/f/x": 41}


def test_event_refuses_data_kind() -> None:
    with pytest.raises(ValueError, match="event kind"):
        messages.event(Kind.DATA, "a", "b")


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 101, "ü"])
def test_names_are_checked_when_building(bad: str) -> None:
    with pytest.raises(ValueError, match="source"):
        messages.scalar(bad, "mxc", 1.0)


def _valid_frames() -> list[bytes]:
    msg = messages.scalar("fridge1", "mxc", 0.01, units="K")
    return [bytes(f) for f in messages.encode(msg, version=1)]  # the JSON header, edited below


@pytest.mark.parametrize(
    ("frames", "why"),
    [
        ([b"data/fridge1/mxc"], "expected 2 or 3 frames"),
        ([b"data/fridge1", b"{}"], "kind/source/channel"),
        ([b"nope/fridge1/mxc", b"{}"], "unknown kind"),
        ([b"data/fridge1/mxc", b"\xff\xfe"], "not JSON"),
        ([b"data/fridge1/mxc", b"[1,2]"], "not a JSON object"),
        ([b"data/fridge1/mxc", b'{"v": 99}'], "version"),
        ([b"data/fridge1/mxc", b'{"v": 1, "seq": 1}'], "lacks"),
        ([b"data/fridge1/mxc", b'{"v":1,"seq":"1","epoch":0,"t":0,"q":0,"units":"",'
          b'"pub":"","meta":{}}'], "integer"),
    ],
)
def test_malformed_frames_raise_the_typed_error(frames: list[bytes], why: str) -> None:
    with pytest.raises(MessageDecodeError, match=why):
        messages.decode(frames)


def _with_header(**changes: object) -> list[bytes]:
    topic, header, payload = _valid_frames()
    fields = json.loads(header)
    fields.update(changes)
    return [topic, json.dumps(fields).encode(), payload]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"dtype": "|O"}, "not a plain numeric"),  # object arrays would be code, not data
        ({"dtype": [["a", "|O"]]}, "not a plain numeric"),
        ({"dtype": ">f8"}, "big-endian"),
        ({"dtype": "<f8", "shape": [3]}, "payload has 16 bytes"),
        ({"shape": [-1]}, "bad shape"),
        ({"shape": "16"}, "bad shape"),
        ({"dtype": 5}, "bad dtype"),
    ],
)
def test_hostile_payload_descriptions_are_refused(changes: dict, why: str) -> None:
    with pytest.raises(MessageDecodeError, match=why):
        messages.decode(_with_header(**changes))


def test_payload_announced_but_missing_is_refused() -> None:
    topic, header, _ = _valid_frames()
    with pytest.raises(MessageDecodeError, match="missing"):
        messages.decode([topic, header])


def test_pickle_never_decodes() -> None:
    import pickle

    frames = _valid_frames()
    frames[1] = pickle.dumps({"v": 1})
    with pytest.raises(MessageDecodeError):
        messages.decode(frames)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=0, max_size=5))
def test_random_frames_decode_or_raise_the_typed_error(frames: list[bytes]) -> None:
    try:
        msg = messages.decode(frames)
    except MessageDecodeError:
        return
    assert isinstance(msg, Message)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_truncated_or_corrupted_valid_messages_never_crash(data: st.DataObject) -> None:
    msg = messages.waveform("tes1", "squid_out", np.arange(64, dtype=np.int16), dt=1e-6)
    frames = [bytearray(f) for f in messages.encode(msg)]
    index = data.draw(st.integers(0, len(frames) - 1))
    action = data.draw(st.sampled_from(["truncate", "flip", "drop"]))
    if action == "truncate":
        frames[index] = frames[index][: data.draw(st.integers(0, max(0, len(frames[index]) - 1)))]
    elif action == "flip" and frames[index]:
        pos = data.draw(st.integers(0, len(frames[index]) - 1))
        frames[index][pos] ^= data.draw(st.integers(1, 255))
    else:
        del frames[index]
    try:
        out = messages.decode([bytes(f) for f in frames])
    except MessageDecodeError:
        return
    assert isinstance(out, Message)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=20),
)
def test_any_scalar_batch_roundtrips(values: list[float], channel: str) -> None:
    times = list(range(len(values)))
    out = _roundtrip(messages.scalar_batch("src", channel, times, values))
    assert out.data is not None
    np.testing.assert_array_equal(out.data["value"], np.asarray(values))


def test_header_meta_is_neither_shared_between_messages_nor_kept() -> None:
    """A long-running service decodes millions of status and heartbeat headers, each with
    its own meta: none of it may stay in memory, and one message's meta is its own."""
    messages._TAILS.clear()
    frames = messages.encode(messages.status("fridge1", "ls372", InstrumentState.CONNECTED,
                                             "ok", stats={"polls": 1}))
    first = messages.decode(frames)
    first.meta["stats"]["polls"] = 99
    assert messages.decode(frames).meta["stats"] == {"polls": 1}
    for i in range(200):
        messages.decode(messages.encode(messages.status(
            "fridge1", "ls372", InstrumentState.CONNECTED, "ok", stats={"polls": i})))
    assert len(messages._TAILS) == 0
    for _ in range(3):  # a plain scalar's header repeats and is parsed once
        messages.decode(messages.encode(messages.scalar("fridge1", "mxc", 0.01, units="K")))
    assert len(messages._TAILS) == 1
