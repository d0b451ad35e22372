"""Driving a :class:`~daq.logger.writer.Writer` by hand: frames as a sender sends them, replies
decoded, a clock the test moves (shared by the writer, session and isolation tests)."""

from __future__ import annotations

from typing import Any

from daq import messages, reliable
from daq.logger.writer import LoggerStats, Writer
from daq.messages import Message
from daq.reliable import Control
from tests.logger.conftest import Stamper

PEER = b"peer-1"
INSTANCE = "0123456789abcdef0123456789abcdef"


class FakeClock:
    """A monotonic clock the test moves by hand (for grace periods)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reopen(w: Writer) -> Writer:
    """The same store after a restart of the logger (state only from the store)."""
    w.close()
    fresh = Writer(w.config, LoggerStats())
    fresh.open()
    return fresh


def hello(pub: str, epoch: int, resume: tuple[int, ...] = (),
          instance: str = INSTANCE, ephemeral: bool = False) -> Control:
    return Control(reliable.HELLO, {"pub": pub, "epoch": epoch, "instance": instance,
                                    "resume": list(resume), "ephemeral": ephemeral})


def beat(pub: str, epoch: int, streams: dict[str, int], instance: str = INSTANCE) -> Control:
    return Control(reliable.HB, {"pub": pub, "epoch": epoch, "instance": instance,
                                 "streams": streams})


def close(pub: str, epoch: int, streams: dict[str, int], instance: str = INSTANCE) -> Control:
    return Control(reliable.CLOSE, {"pub": pub, "epoch": epoch, "instance": instance,
                                    "streams": streams})


def gap(pub: str, epoch: int, stream: str, first: int, last: int,
        reason: str = "spool overflow", instance: str = INSTANCE) -> Control:
    return Control(reliable.GAP, {"pub": pub, "epoch": epoch, "instance": instance,
                                  "stream": stream, "first": first, "last": last,
                                  "reason": reason})


def peer_of(pub: str) -> bytes:
    """Each publisher talks over its own connection, as each daemon does."""
    return PEER + pub.encode()


def _pub(item: Message | Control) -> str:
    return item.pub if isinstance(item, Message) else str(item.body.get("pub", ""))


def run(w: Writer, *items: Message | Control, tick: bool = False) -> list[dict[str, Any]]:
    """One cycle, each publisher on its connection; the replies decoded as {verb, ...body}.

    A connection that never said who it is gets bound first, by an empty HB of the
    session of its first message (as a sender's heartbeat would), in a cycle of its own.
    """
    bound: set[bytes] = w.__dict__.setdefault("_test_bound", set())
    for item in items:
        peer = peer_of(_pub(item))
        if peer not in bound:
            bound.add(peer)
            if isinstance(item, Message):
                w.process([(peer, beat(item.pub, item.epoch, {}))])
    replies = w.process([(peer_of(_pub(item)), item) for item in items], tick=tick)
    out = []
    for _peer, frames in replies:
        parsed = reliable.parse(frames)
        assert isinstance(parsed, Control)
        out.append({"verb": parsed.verb.decode(), **parsed.body})
    return out


def acks(replies: list[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for r in replies:
        if r["verb"] == "ACK":
            merged.update(r["streams"])
    return merged


def values(w: Writer, stream: str) -> list[float]:
    assert w.store is not None
    return w.store.samples(stream, 0, 2**62)["value"].tolist()


def scalars(stamp: Stamper, n: int, channel: str = "mxc") -> list[Message]:
    return [stamp(messages.scalar("fridge1", channel, float(i), t=1_000 + i)) for i in range(n)]


def fake_clock(writer: Writer) -> FakeClock:
    """Put the writer's ledger and sessions on a clock the test moves."""
    clock = FakeClock()
    assert writer.ledger is not None and writer.sessions is not None
    writer.ledger.clock = writer.sessions.clock = clock
    return clock
