"""A batch the store fails on: poison is isolated and refused, a failing store is not poison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daq import messages, reliable
from daq.logger.config import logger_config_from_mapping
from daq.logger.sink import Batch
from daq.logger.stats import LoggerStats
from daq.logger.writer import Writer
from daq.messages import Message
from tests.logger.conftest import Stamper
from tests.logger.cycles import beat, peer_of, scalars, values


def _bind(writer: Writer, *stamps: Stamper) -> None:
    for stamp in stamps:
        writer.process([(peer_of(stamp.pub), beat(stamp.pub, stamp.epoch, {}))])


def _decoded(replies: list[tuple[bytes, list[bytes]]]) -> list[tuple[bytes, dict[str, Any]]]:
    out = []
    for peer, frames in replies:
        parsed = reliable.parse(frames)
        assert isinstance(parsed, reliable.Control)
        out.append((peer, {"verb": parsed.verb.decode(), **parsed.body}))
    return out


def test_a_stream_the_store_chokes_on_is_refused_and_every_other_stream_is_stored(
        writer: Writer) -> None:
    good, bad = Stamper("good"), Stamper("bad")
    _bind(writer, good, bad)
    poison = bad(messages.scalar("tes1", "odd", 1.0, units="\ud800"))  # SQL cannot encode it
    items: list[tuple[bytes, Message]] = []
    for i in range(20):
        items.append((peer_of("good"), good(messages.scalar("fridge1", "mxc", float(i)))))
        items.append((peer_of("bad"), bad(messages.scalar("tes1", "fine", float(i)))))
        if i == 10:
            items.append((peer_of("bad"), poison))
    replies = _decoded(writer.process(items))  # type: ignore[arg-type]
    assert values(writer, "data/fridge1/mxc") == [float(i) for i in range(20)]
    assert values(writer, "data/tes1/fine") == [float(i) for i in range(20)]
    errors = [body for peer, body in replies if body["verb"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["code"] == "refused"
    assert errors[0]["items"] == [{"stream": "data/tes1/odd", "epoch": bad.epoch, "first": 0,
                                   "last": 0, "why": errors[0]["items"][0]["why"]}]
    assert "UnicodeEncodeError" in errors[0]["items"][0]["why"]
    acked = {(peer, s): q for peer, body in replies if body["verb"] == "ACK"
             for s, q in body["streams"].items()}
    assert acked == {(peer_of("good"), "data/fridge1/mxc"): 19,
                     (peer_of("bad"), "data/tes1/fine"): 19}
    assert writer.stats.poisoned == 1 and writer.stats.isolations == 1


def test_one_poisoned_message_in_a_stream_is_found_and_the_rest_of_the_stream_is_stored(
        writer: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = Stamper("d1")
    _bind(writer, stamp)
    msgs = scalars(stamp, 40)
    assert writer.store is not None
    real = writer.store.write_batch

    def choke(batch: Batch) -> None:
        if any(m.seq == 17 for m in batch.messages):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        real(batch)

    monkeypatch.setattr(writer.store, "write_batch", choke)
    replies = _decoded(writer.process([(peer_of("d1"), m) for m in msgs]))
    errors = [body for _, body in replies if body["verb"] == "ERROR"]
    assert [(i["first"], i["last"]) for i in errors[0]["items"]] == [(17, 17)]
    assert values(writer, "data/fridge1/mxc") == [float(i) for i in range(40) if i != 17]
    acked = max(body["streams"]["data/fridge1/mxc"] for _, body in replies
                if body["verb"] == "ACK")
    assert acked == 16  # the sender parks 17 and sends a GAP; then the rest is acknowledged


def test_a_failing_store_is_never_taken_for_poison(writer: Writer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = Stamper("a"), Stamper("b")
    _bind(writer, a, b)
    assert writer.store is not None
    real = writer.store.write_batch

    def full(batch: Batch) -> None:
        if any(m.pub == "b" for m in batch.messages):  # b's records happen not to fit
            raise OSError(28, "No space left on device")
        real(batch)

    monkeypatch.setattr(writer.store, "write_batch", full)
    replies = _decoded(writer.process([(peer_of("a"), a(messages.scalar("f", "x", 1.0))),
                                       (peer_of("b"), b(messages.scalar("f", "y", 1.0)))]))
    assert {body["code"] for _, body in replies} == {"store"}  # nothing parked, all resent
    assert writer.stats.poisoned == 0 and values(writer, "data/f/x") == []


def test_a_message_failing_alone_is_refused_only_when_it_fails_again(
        writer: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = Stamper("d1")
    _bind(writer, stamp)
    assert writer.store is not None
    real = writer.store.write_batch

    def choke(batch: Batch) -> None:
        if batch.messages:
            raise ValueError("cannot store this")
        real(batch)

    monkeypatch.setattr(writer.store, "write_batch", choke)
    msg = stamp(messages.scalar("f", "x", 1.0))
    first = _decoded(writer.process([(peer_of("d1"), msg)]))
    assert first[0][1]["code"] == "store"  # nothing else proved the store healthy: kept
    second = _decoded(writer.process([(peer_of("d1"), msg)]))
    assert second[0][1]["code"] == "refused" and second[0][1]["items"][0]["first"] == 0


def test_a_record_for_a_logger_without_hdf5_is_refused_with_the_reason_and_scalars_flow(
        tmp_path: Path) -> None:
    config = logger_config_from_mapping({"directory": str(tmp_path / "store"),
                                         "endpoint": "tcp://127.0.0.1:0",
                                         "history_endpoint": "tcp://127.0.0.1:0",
                                         "sinks": ["sqlite"]})
    writer = Writer(config, LoggerStats())
    writer.open()
    try:
        stamp = Stamper("d1")
        _bind(writer, stamp)
        items: list[tuple[bytes, Message]] = [
            (peer_of("d1"), stamp(messages.scalar("fridge1", "mxc", 0.01))),
            (peer_of("d1"), stamp(messages.waveform("tes1", "scope", np.zeros(64, np.int16),
                                                    dt=1e-6))),
            (peer_of("d1"), stamp(messages.scalar("fridge1", "mxc", 0.02)))]
        replies = _decoded(writer.process(items))  # type: ignore[arg-type]
        assert values(writer, "data/fridge1/mxc") == [0.01, 0.02]
    finally:
        writer.close()
    [error] = [body for _, body in replies if body["verb"] == "ERROR"]
    assert error["code"] == "refused"
    [item] = error["items"]
    assert item["stream"] == "wave/tes1/scope"
    assert "keeps no waveform records" in item["why"] and "logger.sinks" in item["why"]
    assert writer.stats.isolations == 0  # known up front: no batch failed for it
