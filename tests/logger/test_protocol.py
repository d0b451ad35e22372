"""The reliable path's frames at the edge: every integer range-checked, every shape checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from daq import messages, reliable
from daq.errors import MessageDecodeError
from daq.reliable import ErrorCode, Refused

INSTANCE = "0123456789abcdef0123456789abcdef"


def _header(**fields: Any) -> bytes:
    header = {"v": 1, "seq": 0, "epoch": 1, "pub": "d", "t": 0, "units": "", "q": 0, "meta": {}}
    header.update(fields)
    return json.dumps(header).encode()


@pytest.mark.parametrize("field,value", [
    ("seq", 2**64), ("seq", 2**63), ("seq", -2), ("epoch", -1), ("epoch", 2**63),
    ("t", 2**63), ("t", -(2**63) - 1), ("q", -1), ("q", 2**31),
])
def test_decode_refuses_header_integers_out_of_range(field: str, value: int) -> None:
    with pytest.raises(MessageDecodeError, match=field):
        messages.decode([b"status/a/b", _header(**{field: value})])


@pytest.mark.parametrize("field,value", [
    ("seq", 2**63 - 1), ("seq", -1), ("epoch", 0), ("t", -(2**63)), ("q", 2**31 - 1),
])
def test_decode_takes_header_integers_at_the_edges_of_their_range(field: str, value: int) -> None:
    msg = messages.decode([b"status/a/b", _header(**{field: value})])
    assert getattr(msg, {"q": "quality"}.get(field, field)) == value


def _control(verb: bytes, **body: Any) -> list[bytes]:
    return [reliable.PROTOCOL, verb, json.dumps(body).encode()]


GOOD = {
    reliable.HELLO: {"pub": "d", "epoch": 1, "instance": INSTANCE, "resume": [0]},
    reliable.HB: {"pub": "d", "epoch": 1, "instance": INSTANCE, "streams": {"data/a/b": 3}},
    reliable.CLOSE: {"pub": "d", "epoch": 1, "instance": INSTANCE, "streams": {"data/a/b": -1}},
    reliable.GAP: {"pub": "d", "epoch": 1, "instance": INSTANCE, "stream": "data/a/b",
                   "first": 2, "last": 2, "reason": "spool overflow"},
    reliable.ACK: {"epoch": 1, "streams": {"data/a/b": 5}, "closed": True},
    reliable.ERROR: {"why": "x", "code": "refused", "items": [
        {"stream": "data/a/b", "epoch": 1, "first": 0, "last": 4, "why": "odd"}]},
}


@pytest.mark.parametrize("verb", list(GOOD))
def test_every_verb_parses_when_well_formed(verb: bytes) -> None:
    parsed = reliable.parse(_control(verb, **GOOD[verb]))
    assert isinstance(parsed, reliable.Control) and parsed.verb == verb


@pytest.mark.parametrize("verb,change", [
    (reliable.HELLO, {"epoch": 2**64}),
    (reliable.HELLO, {"epoch": -1}),
    (reliable.HELLO, {"instance": ""}),
    (reliable.HELLO, {"instance": "x" * 65}),
    (reliable.HELLO, {"resume": [2**63]}),
    (reliable.HELLO, {"resume": list(range(1001))}),
    (reliable.HELLO, {"pub": 5}),
    (reliable.HELLO, {"ephemeral": "yes"}),
    (reliable.HB, {"streams": {"data/a/b": 2**64}}),
    (reliable.HB, {"streams": {"data/a/b": -2}}),
    (reliable.HB, {"streams": {"not a stream": 1}}),
    (reliable.HB, {"streams": {"data/a/\ud800": 1}}),
    (reliable.HB, {"streams": {"data/a/b": True}}),
    (reliable.GAP, {"first": 3, "last": 2}),
    (reliable.GAP, {"last": 2**63}),
    (reliable.GAP, {"reason": "because"}),
    (reliable.GAP, {"stream": "fly/a/b"}),
    (reliable.ACK, {"closed": "yes"}),
    (reliable.ERROR, {"items": [{"stream": "data/a/b", "epoch": 1, "first": 5, "last": 4}]}),
    (reliable.ERROR, {"items": "all"}),
])
def test_out_of_range_or_malformed_bodies_are_refused(verb: bytes, change: dict[str, Any]) -> None:
    with pytest.raises(MessageDecodeError):
        reliable.parse(_control(verb, **{**GOOD[verb], **change}))


def test_an_oversized_control_body_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(MessageDecodeError, match="bytes"):
        reliable.parse([reliable.PROTOCOL, reliable.HB, b" " * (reliable.protocol.MAX_BODY_BYTES
                                                               + 1)])


def test_a_message_with_seq_2_to_the_64_is_malformed_on_the_reliable_path_too() -> None:
    with pytest.raises(MessageDecodeError, match="seq"):
        reliable.parse([reliable.PROTOCOL, reliable.MSG, b"status/a/b", _header(seq=2**64)])


def test_error_frames_carry_code_and_ranges_and_round_trip() -> None:
    item = Refused("data/a/b", 7, 3, 5, "the store fails on it")
    parsed = reliable.parse(reliable.error_frames("refused: ...", ErrorCode.REFUSED, [item]))
    assert isinstance(parsed, reliable.Control)
    assert parsed.code is ErrorCode.REFUSED and parsed.refused == [item]
    plain = reliable.parse(reliable.error_frames("disk full"))
    assert isinstance(plain, reliable.Control) and plain.code is ErrorCode.STORE
