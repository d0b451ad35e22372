"""Header version 2 (binary) beside version 1 (JSON), and scalar batching on the live path."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from daq import messages
from daq.bus import Broker, Publisher, ScalarBatcher, Subscriber
from daq.errors import MessageDecodeError
from daq.messages import SAMPLE_DTYPE, Kind, Message


def _stamped(msg: Message, seq: int = 4) -> Message:
    msg.seq, msg.epoch, msg.pub = seq, 1_700_000_000, "daemon-x"
    return msg


SAMPLES = [
    _stamped(messages.scalar("fridge1", "mxc", 0.0123, units="K", quality=2,
                             meta={"instrument": "ls372", "spec": "ch6"})),
    _stamped(messages.scalar_batch("f", "p", [1, 2, 3], [1.0, np.nan, 3.0], units="mbar")),
    _stamped(messages.waveform("tes1", "sq", np.arange(5, dtype=np.int16), dt=1e-6, t0=7,
                               scale=1e-4, offset=-0.5, presamples=2,
                               meta={"frame": 12, "index": 3})),
    _stamped(messages.waveform("tes1", "sq", np.zeros((2, 3), np.float32), dt=1, t0=0)),
    _stamped(messages.status("fridge1", "ls372", "connected", "ok", errors=0)),
    _stamped(messages.event(Kind.ALARM, "fridge1", "mxc", reason="hot", level=[1, 2])),
    _stamped(messages.waveform("a", "b", np.arange(3, dtype="<f2"), dt=1e-3, t0=0)),  # text
    _stamped(messages.scalar("a", "b", 1.0, units="Ω\ud800")),  # any text, as JSON allowed
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.stream)
def test_version_2_decodes_to_what_version_1_decodes(msg: Message) -> None:
    v2 = messages.decode([bytes(f) for f in messages.encode(msg)], t_recv=5)
    v1 = messages.decode([bytes(f) for f in messages.encode(msg, version=1)], t_recv=5)
    assert bytes(messages.encode(msg)[1])[:1] == b"\x02"  # binary by default
    assert (v2.kind, v2.stream, v2.t, v2.units, v2.quality, v2.seq, v2.epoch, v2.pub) == \
        (v1.kind, v1.stream, v1.t, v1.units, v1.quality, v1.seq, v1.epoch, v1.pub)
    assert v2.meta == v1.meta == msg.meta
    assert [type(v) for v in v2.meta.values()] == [type(v) for v in msg.meta.values()]
    if msg.data is None:
        assert v2.data is None
        return
    assert v2.data is not None
    assert v2.data.dtype == msg.data.dtype and v2.data.shape == msg.data.shape
    assert v2.data.tobytes() == msg.data.tobytes()  # bit for bit (NaN too)
    assert not v2.data.flags.writeable


def test_version_2_header_is_compact() -> None:
    header = messages.encode(SAMPLES[2])[1]
    assert len(header) < 0.6 * len(messages.encode(SAMPLES[2], version=1)[1])


def _v2(**changes: int) -> list[bytes]:
    frames = [bytes(f) for f in messages.encode(SAMPLES[0])]
    fields = dict(zip(("v", "flags", "code", "ndim", "seq", "epoch", "t", "q"),
                      struct.unpack_from("<BBBBqqqI", frames[1]), strict=True))
    fields.update(changes)
    frames[1] = struct.pack("<BBBBqqqI", *fields.values()) + frames[1][32:]
    return frames


@pytest.mark.parametrize(("changes", "why"), [
    ({"seq": -2}, "seq"), ({"epoch": -1}, "epoch"), ({"q": 2**31}, "'q'"),
    ({"code": 99}, "dtype code"), ({"ndim": 9}, "ndim"), ({"flags": 64}, "flags"),
    ({"ndim": 0}, "malformed|rows|truncated"),
])
def test_hostile_version_2_headers_are_refused(changes: dict[str, int], why: str) -> None:
    with pytest.raises(MessageDecodeError, match=why):
        messages.decode(_v2(**changes))


def test_truncated_version_2_headers_are_refused() -> None:
    frames = _v2()
    for cut in range(1, len(frames[1])):
        try:
            messages.decode([frames[0], frames[1][:cut], frames[2]])
        except MessageDecodeError:
            continue


def test_the_batcher_merges_one_streams_samples_and_keeps_every_order() -> None:
    batcher = ScalarBatcher(0.005)
    out: list[Message] = []
    for i in range(5):
        out += batcher.add(messages.scalar("f", "x", float(i), t=i, units="K"), now=0.0)
    out += batcher.add(messages.scalar("f", "x", 9.0, t=9, units="mK"), now=0.001)  # differs
    out += batcher.add(messages.scalar("f", "y", 1.0, t=10), now=0.001)
    assert [len(m.data) for m in out if m.data is not None] == [5]
    assert out[0].data is not None and out[0].data["value"].tolist() == [0, 1, 2, 3, 4]
    wave = messages.waveform("t", "w", np.zeros(2), dt=1.0)
    assert batcher.add(wave) == [wave]  # records pass straight through
    alarm = messages.event(Kind.ALARM, "f", "x", reason="r")
    flushed = batcher.add(alarm)  # an event: every held sample leaves before it
    assert [m.stream for m in flushed] == ["data/f/x", "data/f/y", "alarm/f/x"]
    assert batcher.due(1.0) == [] and batcher.pending == 0


def test_a_publisher_batches_scalars_and_the_subscriber_counts_every_sample() -> None:
    broker = Broker()
    ends = broker.start()
    pub = Publisher(ends.publish, name="batcher", batch_s=0.005)
    sub = Subscriber(ends.subscribe, ["data/b/"])
    try:
        assert pub.wait_for_subscriber(b"data/b/", 10)
        for i in range(3000):
            pub.publish(messages.scalar("b", "x", float(i), t=i))
        pub.flush()
        got: list[Message] = []
        end = time.monotonic() + 10
        while sum(len(m.data) for m in got if m.data is not None) < 3000 \
                and time.monotonic() < end:
            msg = sub.recv(0.5)
            if msg is not None:
                got.append(msg)
    finally:
        sub.close()
        pub.close()
        broker.stop()
    values = np.concatenate([m.data["value"] for m in got if m.data is not None])
    assert values.tolist() == [float(i) for i in range(3000)]
    assert len(got) < 3000 / 10  # batches, not one message per sample
    assert sub.gaps.missed == 0 and all(m.data is not None and m.data.dtype == SAMPLE_DTYPE
                                        for m in got)
