"""Frames of the reliable path: builders and the one parser both ends use.

The rules are in the package docstring (:mod:`daq.reliable`). Every body is
checked here, at the edge, so neither end ever works with an out-of-range
integer, an unbounded list or a body of the wrong shape: anything else is a
:class:`daq.errors.MessageDecodeError` (counted and dropped, or refused).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daq import messages
from daq.errors import MessageDecodeError
from daq.messages import INT64_MAX, MAX_TOPIC_BYTES, Message

PROTOCOL = b"QDR2"

HELLO = b"HELLO"
MSG = b"MSG"
MSGS = b"MSGS"
HB = b"HB"
CLOSE = b"CLOSE"
GAP = b"GAP"
ACK = b"ACK"
ERROR = b"ERROR"

#: Verbs a sender sends besides MSG (each carries pub, epoch and instance).
SENDER_VERBS = frozenset({HELLO, HB, CLOSE, GAP})
#: Verbs the logger sends.
LOGGER_VERBS = frozenset({ACK, ERROR})

#: A control body larger than this is refused before it is parsed.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Streams one HB/ACK/CLOSE may name.
MAX_STREAMS = 100_000
#: Older sessions one HELLO may resume.
MAX_RESUME = 1000
#: Ranges one ERROR may name.
MAX_ERROR_ITEMS = 10_000
#: Messages one MSGS may carry.
MAX_BATCH_MESSAGES = 100_000
#: One row per message of a MSGS frame set: the sizes of its topic, header and payload
#: (payload -1: the message has none), little-endian.
BATCH_INDEX = np.dtype([("topic", "<u2"), ("header", "<u4"), ("payload", "<i8")])
MAX_INSTANCE_CHARS = 64
MAX_PUB_CHARS = 100
MAX_WHY_CHARS = 2000


class GapReason(enum.StrEnum):
    """Why a sender says a range of its messages will never come (GAP frames)."""

    SPOOL_OVERFLOW = "spool overflow"
    REFUSED = "refused by the logger"
    SPOOL_FAILED = "spool write failed"


#: The reason the logger records for what CLOSE finds announced but never sent.
LOST_BEFORE_SPOOLING = "lost before spooling"


class ErrorCode(enum.StrEnum):
    """What an ERROR asks of the sender."""

    STORE = "store"  # the store fails: keep everything spooled, it is resent later
    REFUSED = "refused"  # these ranges can never be stored: park them, send a GAP, go on
    IDENTITY = "identity"  # the name belongs to another live instance: keep data, retry later
    HELLO = "hello"  # the logger does not know this connection: send HELLO, then resend


@dataclass(frozen=True)
class Refused:
    """A seq range of one stream session the logger can never store (an ERROR item)."""

    stream: str
    epoch: int
    first: int
    last: int
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "epoch": self.epoch, "first": self.first,
                "last": self.last, "why": self.why}


@dataclass(frozen=True)
class Control:
    """A decoded non-MSG frame set: its verb and its (checked) JSON body."""

    verb: bytes
    body: dict[str, Any]

    @property
    def code(self) -> ErrorCode:
        """An ERROR's code (``store`` when it names none)."""
        try:
            return ErrorCode(self.body.get("code", ErrorCode.STORE.value))
        except ValueError:
            return ErrorCode.STORE

    @property
    def refused(self) -> list[Refused]:
        """An ERROR's refused ranges (empty for other verbs)."""
        return [Refused(i["stream"], i["epoch"], i["first"], i["last"], i["why"])
                for i in self.body.get("items", ())]


# ---- builders -----------------------------------------------------------------------------------


def _frames(verb: bytes, body: dict[str, Any]) -> list[bytes]:
    return [PROTOCOL, verb, json.dumps(body, separators=(",", ":")).encode()]


def hello_frames(pub: str, epoch: int, instance: str, resume: Iterable[int] = (), *,
                 ephemeral: bool = False) -> list[bytes]:
    body: dict[str, Any] = {"pub": pub, "epoch": epoch, "instance": instance,
                            "resume": sorted(resume)}
    if ephemeral:
        body["ephemeral"] = True
    return _frames(HELLO, body)


def heartbeat_frames(pub: str, epoch: int, instance: str,
                     streams: Mapping[str, int]) -> list[bytes]:
    return _frames(HB, {"pub": pub, "epoch": epoch, "instance": instance,
                        "streams": dict(streams)})


def close_frames(pub: str, epoch: int, instance: str,
                 streams: Mapping[str, int]) -> list[bytes]:
    return _frames(CLOSE, {"pub": pub, "epoch": epoch, "instance": instance,
                           "streams": dict(streams)})


def gap_frames(pub: str, epoch: int, instance: str, stream: str, first: int, last: int,
               reason: GapReason | str) -> list[bytes]:
    return _frames(GAP, {"pub": pub, "epoch": epoch, "instance": instance, "stream": stream,
                         "first": first, "last": last, "reason": str(reason)})


def batch_frames(items: Sequence[tuple[bytes, bytes, Any]]) -> list[Any]:
    """A MSGS frame set of ``(topic, header, payload or None)`` messages.

    Frames: ``[PROTOCOL, MSGS, index, heads, payloads]``: the index (:data:`BATCH_INDEX`,
    one row per message), every topic and header concatenated, every payload
    concatenated. A receiver takes each payload as a view of the last frame, so
    consecutive records of one stream are one contiguous block there.
    """
    index = np.empty(len(items), BATCH_INDEX)
    heads: list[bytes] = []
    payloads: list[Any] = []
    for i, (topic, header, payload) in enumerate(items):
        heads.append(topic)
        heads.append(header)
        if payload is None:
            index[i] = (len(topic), len(header), -1)
        else:
            index[i] = (len(topic), len(header), len(payload))
            payloads.append(payload)
    return [PROTOCOL, MSGS, index.tobytes(), b"".join(heads), b"".join(payloads)]


def parse_batch(frames: Sequence[Any]) -> list[Message]:
    """The messages of a MSGS frame set (``frames`` from the protocol frame on).

    Payloads are read-only views of the last frame (no copies).

    Raises:
        MessageDecodeError: the index does not describe the frames, or a message
            in it is malformed (the whole frame set is refused).
    """
    if len(frames) != 5:
        raise MessageDecodeError(f"reliable path: MSGS has {len(frames)} frames, expected 5")
    index_view = messages.frame_view(frames[2])
    heads = messages.frame_view(frames[3])
    payloads = messages.frame_view(frames[4])
    if len(index_view) % BATCH_INDEX.itemsize or \
            len(index_view) // BATCH_INDEX.itemsize > MAX_BATCH_MESSAGES:
        raise MessageDecodeError("reliable path: MSGS index is not whole rows", frame=2)
    index = np.frombuffer(index_view, BATCH_INDEX)
    topics = index["topic"].astype(np.int64)
    headers = index["header"].astype(np.int64)
    sizes = index["payload"]
    if int(topics.sum() + headers.sum()) != len(heads) or \
            int(np.where(sizes < 0, 0, sizes).sum()) != len(payloads) or bool((sizes < -1).any()):
        raise MessageDecodeError("reliable path: MSGS index does not match its frames", frame=2)
    out: list[Message] = []
    h = p = 0
    for t_len, h_len, p_len in zip(topics.tolist(), headers.tolist(), sizes.tolist(),
                                   strict=True):
        topic = heads[h:h + t_len]
        header = heads[h + t_len:h + t_len + h_len]
        h += t_len + h_len
        if p_len < 0:
            out.append(messages.decode((topic, header)))
        else:
            out.append(messages.decode((topic, header, payloads[p:p + p_len])))
            p += p_len
    return out


def ack_frames(epoch: int, streams: Mapping[str, int], *, closed: bool = False,
               batch: bool = False) -> list[bytes]:
    body: dict[str, Any] = {"epoch": epoch, "streams": dict(streams)}
    if batch:  # this logger takes MSGS (a sender sends MSG to one that does not say so)
        body["batch"] = True
    if closed:
        body["closed"] = True
    return _frames(ACK, body)


def error_frames(why: str, code: ErrorCode = ErrorCode.STORE,
                 items: Sequence[Refused] = ()) -> list[bytes]:
    body: dict[str, Any] = {"why": why[:MAX_WHY_CHARS], "code": code.value}
    if items:
        body["items"] = [item.as_dict() for item in items[:MAX_ERROR_ITEMS]]
    return _frames(ERROR, body)


# ---- the parser ---------------------------------------------------------------------------------


def parse(frames: Sequence[Any]) -> Message | Control | list[Message]:
    """Parse one frame set of the reliable path (either direction); MSGS gives a list.

    Raises:
        MessageDecodeError: for anything malformed or out of range (callers
            count it and drop it, or refuse it).
    """
    if len(frames) < 3:
        raise MessageDecodeError(f"reliable path: expected >= 3 frames, got {len(frames)}")
    proto = bytes(messages.frame_view(frames[0]))
    if proto != PROTOCOL:
        raise MessageDecodeError(f"reliable path: protocol {proto[:16]!r}, expected {PROTOCOL!r}",
                                 frame=0)
    verb = bytes(messages.frame_view(frames[1]))
    if verb == MSG:
        return messages.decode(frames[2:])
    if verb == MSGS:
        return parse_batch(frames)
    if verb not in SENDER_VERBS | LOGGER_VERBS or len(frames) != 3:
        raise MessageDecodeError(f"reliable path: unknown verb {verb[:16]!r}", frame=1)
    name = verb.decode()
    view = messages.frame_view(frames[2])
    if len(view) > MAX_BODY_BYTES:
        raise MessageDecodeError(f"reliable path: {name} body over {MAX_BODY_BYTES} bytes",
                                 frame=2)
    try:
        body = json.loads(bytes(view))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"reliable path: {name} body is not JSON ({exc})",
                                 frame=2) from None
    if not isinstance(body, dict):
        raise MessageDecodeError(f"reliable path: {name} body is not an object", frame=2)
    check = _Checker(name)
    if verb in SENDER_VERBS:
        check.text(body, "pub", 0, MAX_PUB_CHARS)
        check.text(body, "instance", 1, MAX_INSTANCE_CHARS)
    if verb != ERROR:
        check.integer(body, "epoch", 0)
    if verb in (HB, ACK, CLOSE):
        check.streams(body)
    if verb == HELLO:
        resume = body.setdefault("resume", [])
        if not isinstance(resume, list) or len(resume) > MAX_RESUME or not all(
                _is_int(e) and 0 <= e <= INT64_MAX for e in resume):
            raise check.error(f"resume must list at most {MAX_RESUME} epochs")
        if not isinstance(body.setdefault("ephemeral", False), bool):
            raise check.error("ephemeral must be true or false")
    elif verb == GAP:
        check.stream(body, "stream")
        check.integer(body, "first", 0)
        check.integer(body, "last", body["first"])
        if body.get("reason") not in set(GapReason):
            raise check.error(f"reason must be one of {sorted(GapReason)}")
    elif verb == ACK and not (isinstance(body.get("closed", False), bool)
                              and isinstance(body.get("batch", False), bool)):
        raise check.error("closed and batch must be true or false")
    elif verb == ERROR:
        check.text(body, "why", 0, 1 << 20)
        items = body.get("items", [])
        if not isinstance(items, list) or len(items) > MAX_ERROR_ITEMS:
            raise check.error("items must be a list")
        for item in items:
            if not isinstance(item, dict):
                raise check.error("items must be objects")
            check.stream(item, "stream")
            check.integer(item, "epoch", 0)
            check.integer(item, "first", 0)
            check.integer(item, "last", item["first"])
            if not isinstance(item.setdefault("why", ""), str):
                raise check.error("an item's why must be text")
    return Control(verb, body)


_KINDS = frozenset(kind.value for kind in messages.Kind)


def is_stream(name: Any) -> bool:
    """True for a well-formed stream name (``kind/source/channel``, the topic grammar)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TOPIC_BYTES:
        return False
    parts = name.split("/")
    if len(parts) != 3 or parts[0] not in _KINDS:
        return False
    try:
        messages.check_name(parts[1])
        messages.check_name(parts[2])
    except ValueError:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Range and type checks of one body, with errors that name the verb."""

    def __init__(self, verb: str) -> None:
        self.verb = verb

    def error(self, why: str) -> MessageDecodeError:
        return MessageDecodeError(f"reliable path: {self.verb} {why}", frame=2)

    def integer(self, body: dict[str, Any], key: str, low: int) -> None:
        value = body.get(key)
        if not isinstance(value, int) or isinstance(value, bool) \
                or not low <= value <= INT64_MAX:
            raise self.error(f"{key} must be an integer in [{low}, 2**63-1], got {value!r:.40}")

    def text(self, body: dict[str, Any], key: str, low: int, high: int) -> None:
        value = body.get(key)
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise self.error(f"{key} must be text of {low}..{high} characters")

    def stream(self, body: dict[str, Any], key: str) -> None:
        if not is_stream(body.get(key)):
            raise self.error(f"{key} must be a stream name (kind/source/channel)")

    def streams(self, body: dict[str, Any]) -> None:
        streams = body.get("streams")
        if not isinstance(streams, dict) or len(streams) > MAX_STREAMS or not all(
            is_stream(k) and _is_int(v) and -1 <= v <= INT64_MAX for k, v in streams.items()
        ):
            raise self.error("streams must map stream names (kind/source/channel) to integers "
                             "in [-1, 2**63-1]")
