"""The one wire format of qupdaq. Nothing else builds or parses frames by hand.

A message travels as ZeroMQ multipart frames ``[topic, header, payload?]``:

``topic``
    ASCII ``kind/source/channel`` (``data/fridge1/mxc``,
    ``wave/tes1/squid_out``, ``status/fridge1/ls372``), so that SUB prefix
    filtering selects by kind, then source, then channel. The source is
    where the quantity lives and the channel what it is, named as a
    physicist says them; the instrument and its own channel number travel
    in the header (``meta``).
``header``
    Version 2 (what :func:`encode` writes): a compact binary header, fixed
    little-endian fields first, so that a stamped message is encoded and
    decoded without building or parsing JSON for its routine fields::

        offset size
        0      1    version: 2
        1      1    flags: 1 payload described, 2 wave block present
        2      1    dtype code (:data:`DTYPE_CODES`; 255: a dtype text follows, see below)
        3      1    ndim (0..8)
        4      8    seq    int64 (-1: not stamped)
        12     8    epoch  int64
        20     8    t      int64, source time ns
        28     4    q      uint32, quality flags
        32     40   wave block (flag 2 only): dt f8, t0 i8, scale f8, offset f8,
                    presamples i8 -- the five ``meta`` keys of a wave record
        then   8*ndim shape, uint64 each
        then   1+n  units: length byte, UTF-8
        then   1+n  pub: length byte, UTF-8
        then   2+n  dtype text (code 255 only): uint16 length, the version-1 JSON of
                    the dtype (a structured dtype of plain numbers)
        rest        the other ``meta`` keys as a UTF-8 JSON object (empty: none)

    Everything after the shape repeats from message to message of a stream
    (units, publisher, dtype, mostly the same meta): an encoder caches those
    bytes and a decoder its parse of them.

    Version 1 (still decoded, and written by ``encode(msg, version=1)``): a
    UTF-8 JSON object (never pickle: a message is data, not code)::

        {"v": 1,                      # schema version
         "seq": 41,                   # per-stream sequence number, from 0
         "epoch": 1732470000123,      # publisher session id; seq restarts with it
         "pub": "daemon@host",        # publisher name (heartbeats, staleness)
         "t": 1732470000123456789,    # source time, ns since the epoch (UTC)
         "units": "K",
         "q": 0,                      # Quality flags (drivers.readings.Quality; 0 = good)
         "dtype": "<f8", "shape": [1],  # payload layout; absent without payload
         "meta": {...}}               # kind-specific, JSON-able

    The receive time (``t_recv``) is stamped by the receiver, never sent. The
    first byte tells the versions apart (``{`` is JSON); every field of both is
    checked the same way on decode, and both give the same :class:`Message`.
``payload``
    Raw little-endian numpy buffer of ``dtype``/``shape``; sent with
    ``copy=False`` and decoded with ``np.frombuffer`` (no copies). Only
    plain numeric dtypes (and structured dtypes made of them) are accepted.

Kinds (:class:`Kind`) and their payloads:

* ``data``: scalar samples of one channel. Payload is :data:`SAMPLE_DTYPE`
  (``t`` ns int64, ``value`` float64), one row per sample, so a poll and a
  batch share a format. Build with :func:`scalar` / :func:`scalar_batch`.
* ``wave``: one waveform record (pulse or noise trace). Payload is the raw
  samples (int16 typically); ``meta`` holds ``dt`` (s), ``t0`` (ns of the
  first sample), ``scale`` and ``offset`` (volts = raw*scale + offset) and
  optionally ``presamples``; the header ``t`` is the trigger time. Build
  with :func:`record` (from a driver's ``WaveRecord``) or :func:`waveform`.
* ``status``: instrument or service state; ``meta`` holds ``state``
  (:class:`InstrumentState` value) and ``message``.
* ``alarm``, ``audit``, ``run``: events; everything in ``meta``.
* ``hb``: heartbeat of a publisher; ``meta`` holds ``period`` (s) and
  ``streams`` ({stream: last seq}) so receivers see trailing losses too.

Decoding anything malformed raises :class:`daq.errors.MessageDecodeError`
with the frame and the reason; callers count it, log it and drop it. The
integer header fields are range-checked on decode: ``seq`` in [-1, 2**63-1]
(-1: not stamped), ``epoch`` in [0, 2**63-1], ``t`` a signed 64-bit integer
and ``q`` in [0, 2**31-1].
"""

from __future__ import annotations

import enum
import json
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daq.errors import MessageDecodeError

# The quality flags are defined in the lowest layer (drivers produce them) and travel as
# ``q``; they are re-exported here with the wire format.
from drivers.readings import BAD as BAD
from drivers.readings import Quality as Quality
from drivers.readings import WaveRecord
from drivers.readings import describe_quality as describe_quality
from drivers.readings import is_bad as is_bad

HEADER_VERSION = 2
#: Header versions this build decodes (it writes HEADER_VERSION).
HEADER_VERSIONS = (1, 2)
MAX_TOPIC_BYTES = 255
#: The range of every integer header field that a store keeps as a signed 64-bit column.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Quality flags are a 31-bit set (never negative).
QUALITY_MAX = 2**31 - 1
MAX_HEADER_BYTES = 64 * 1024

#: One scalar sample: when (ns since the epoch) and what.
SAMPLE_DTYPE = np.dtype([("t", "<i8"), ("value", "<f8")])

#: Version-2 dtype codes (index + 1); other plain dtypes travel as text (code 255).
DTYPE_CODES: tuple[np.dtype, ...] = tuple(np.dtype(t) for t in (
    "|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8", "<c8", "<c16",
)) + (SAMPLE_DTYPE,)
_CODE_OF: dict[np.dtype, int] = {dtype: i + 1 for i, dtype in enumerate(DTYPE_CODES)}
_DTYPE_TEXT = 255
_V2 = struct.Struct("<BBBBqqqI")
_WAVE = struct.Struct("<dqddq")
_WAVE_KEYS = ("dt", "t0", "scale", "offset", "presamples")
_WAVE_TYPES = (float, int, float, float, int)
_FLAG_PAYLOAD = 1
_FLAG_WAVE = 2

_ALLOWED_DTYPE_KINDS = frozenset("biufc")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:@+")


class Kind(enum.StrEnum):
    """Message kinds; the first element of every topic."""

    DATA = "data"
    WAVE = "wave"
    STATUS = "status"
    ALARM = "alarm"
    AUDIT = "audit"
    RUN = "run"
    HEARTBEAT = "hb"


class InstrumentState(enum.StrEnum):
    """What a status message says about an instrument."""

    CONNECTED = "connected"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    ERROR = "error"
    DISCONNECTED = "disconnected"


_KINDS = {k.value: k for k in Kind}


def now_ns() -> int:
    """Wall-clock time in ns since the epoch (the unit of every timestamp on the wire)."""
    return time.time_ns()


def check_name(part: str, what: str = "name") -> str:
    """Check one topic element (source or channel); return it or raise ValueError."""
    if not part or not set(part) <= _NAME_CHARS or len(part) > 100:
        raise ValueError(
            f"{what} {part!r} must be 1-100 characters of letters, digits and _-.:@+"
        )
    return part


@dataclass(slots=True)
class Message:
    """One decoded or to-be-sent message.

    ``seq``, ``epoch`` and ``pub`` are stamped by the publisher
    (:class:`daq.bus.Publisher`); ``t_recv`` by the receiver. ``data`` is a
    read-only view on the received frame when decoded (copy it to keep it
    beyond the next receive if you modify it).
    """

    kind: Kind
    source: str
    channel: str
    t: int = 0
    units: str = ""
    quality: int = 0
    data: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    seq: int = -1
    epoch: int = 0
    pub: str = ""
    t_recv: int = 0

    @property
    def stream(self) -> str:
        """The stream name, identical to the topic: ``kind/source/channel``."""
        return f"{self.kind.value}/{self.source}/{self.channel}"

    @property
    def topic(self) -> bytes:
        return self.stream.encode("ascii")

    # ---- convenience views ------------------------------------------------------------------

    @property
    def value(self) -> float:
        """The latest scalar value of a ``data`` message."""
        if self.kind is not Kind.DATA or self.data is None or len(self.data) == 0:
            raise ValueError(f"{self.stream}: not a scalar data message")
        return float(self.data["value"][-1])

    @property
    def sample_time(self) -> int:
        """Source time (ns) of the latest sample of a ``data`` message."""
        if self.kind is Kind.DATA and self.data is not None and len(self.data):
            return int(self.data["t"][-1])
        return self.t

    def volts(self) -> np.ndarray:
        """A ``wave`` record's samples converted to volts with ``scale``/``offset``."""
        if self.kind is not Kind.WAVE or self.data is None:
            raise ValueError(f"{self.stream}: not a waveform message")
        scale = float(self.meta.get("scale", 1.0))
        offset = float(self.meta.get("offset", 0.0))
        return self.data.astype(np.float64) * scale + offset

    def times(self) -> np.ndarray:
        """A ``wave`` record's time axis in seconds relative to ``t0`` (trigger at 0 with presamples)."""
        if self.kind is not Kind.WAVE or self.data is None:
            raise ValueError(f"{self.stream}: not a waveform message")
        dt = float(self.meta["dt"])
        pre = int(self.meta.get("presamples", 0))
        return (np.arange(self.data.shape[-1]) - pre) * dt


# ---- builders --------------------------------------------------------------------------------


def scalar(
    source: str,
    channel: str,
    value: float,
    *,
    units: str = "",
    t: int | None = None,
    quality: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> Message:
    """One scalar sample of ``source/channel``."""
    t = now_ns() if t is None else int(t)
    data = np.empty(1, SAMPLE_DTYPE)
    data[0] = (t, value)
    return Message(Kind.DATA, check_name(source, "source"), check_name(channel, "channel"),
                   t=t, units=units, quality=int(quality), data=data, meta=dict(meta or {}))


def scalar_batch(
    source: str,
    channel: str,
    times_ns: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    units: str = "",
    quality: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> Message:
    """Several samples of one channel in one message (one row per sample)."""
    times = np.asarray(times_ns, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if times.shape != vals.shape or times.ndim != 1 or times.size == 0:
        raise ValueError("times and values must be equal-length, non-empty 1-D sequences")
    data = np.empty(times.size, SAMPLE_DTYPE)
    data["t"] = times
    data["value"] = vals
    return Message(Kind.DATA, check_name(source, "source"), check_name(channel, "channel"),
                   t=int(times[0]), units=units, quality=int(quality), data=data,
                   meta=dict(meta or {}))


def waveform(
    source: str,
    channel: str,
    samples: np.ndarray,
    *,
    dt: float,
    t0: int | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
    presamples: int = 0,
    units: str = "V",
    quality: int = 0,
    meta: Mapping[str, Any] | None = None,
) -> Message:
    """One waveform record; volts = samples * scale + offset, sample spacing ``dt`` seconds."""
    if dt <= 0:
        raise ValueError(f"dt must be > 0 s, got {dt}")
    t0 = now_ns() if t0 is None else int(t0)
    full_meta = {"dt": float(dt), "t0": t0, "scale": float(scale), "offset": float(offset),
                 "presamples": int(presamples)}
    full_meta.update(meta or {})
    return Message(Kind.WAVE, check_name(source, "source"), check_name(channel, "channel"),
                   t=t0, units=units, quality=int(quality),
                   data=np.ascontiguousarray(samples), meta=full_meta)


def record(
    source: str,
    channel: str,
    rec: WaveRecord,
    *,
    units: str = "V",
    t_default: int | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Message:
    """A ``wave`` message from a driver's :class:`~drivers.readings.WaveRecord`.

    The header time is the trigger time (``rec.t_ns``, or ``t_default`` when
    the instrument gave none); ``meta["t0"]`` is the time of the first sample.
    The record's own note and meta travel in ``meta``.
    """
    t_trigger = rec.t_ns if rec.t_ns is not None else (now_ns() if t_default is None
                                                        else int(t_default))
    extra: dict[str, Any] = {**rec.meta, **(meta or {})}
    if rec.note:
        extra["note"] = rec.note
    msg = waveform(source, channel, rec.raw, dt=rec.dt,
                   t0=t_trigger - round(rec.presamples * rec.dt * 1e9), scale=rec.scale,
                   offset=rec.offset, presamples=rec.presamples, units=units,
                   quality=int(rec.quality), meta=extra)
    msg.t = t_trigger
    return msg


def status(
    source: str,
    channel: str,
    state: InstrumentState | str,
    message: str = "",
    **extra: Any,
) -> Message:
    """An instrument's or service's state (``status/fridge1/ls372``)."""
    meta = {"state": InstrumentState(state).value, "message": message, **extra}
    return Message(Kind.STATUS, check_name(source, "source"), check_name(channel, "channel"),
                   t=now_ns(), meta=meta)


def event(kind: Kind, source: str, channel: str, **meta: Any) -> Message:
    """An ``alarm``, ``audit`` or ``run`` event with its fields in ``meta``."""
    if kind not in (Kind.ALARM, Kind.AUDIT, Kind.RUN):
        raise ValueError(f"event kind must be alarm, audit or run, not {kind}")
    return Message(kind, check_name(source, "source"), check_name(channel, "channel"),
                   t=now_ns(), meta=dict(meta))


def heartbeat(publisher: str, period_s: float, streams: Mapping[str, int]) -> Message:
    """A publisher's heartbeat: alive, its period, and the last seq of each of its streams."""
    return Message(Kind.HEARTBEAT, check_name(publisher, "publisher"), "beat", t=now_ns(),
                   meta={"period": float(period_s), "streams": dict(streams)})


# ---- encoding --------------------------------------------------------------------------------


def encode(msg: Message, version: int = HEADER_VERSION) -> list[bytes | memoryview]:
    """Frames for ``msg``: ``[topic, header]`` or ``[topic, header, payload]``.

    The payload frame is a memoryview on the array's buffer (no copy); keep
    the array unchanged until the send completes or send with ``copy=True``.

    Args:
        msg: the message.
        version: header version, 2 (binary, the default) or 1 (JSON, for peers
            that read only version 1).
    """
    if version == 2:
        return _encode_v2(msg)
    if version != 1:
        raise ValueError(f"header version {version} is not one of {HEADER_VERSIONS}")
    header: dict[str, Any] = {"v": 1, "seq": msg.seq, "epoch": msg.epoch,
                              "pub": msg.pub, "t": msg.t, "units": msg.units, "q": msg.quality,
                              "meta": msg.meta}
    frames: list[bytes | memoryview] = [msg.topic, b""]
    if msg.data is not None:
        arr = msg.data
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        if _has_big_endian(arr.dtype):
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        header["dtype"] = _wire_dtype(arr.dtype)
        header["shape"] = list(arr.shape)
        frames.append(arr.data.cast("B") if arr.size else b"")
    frames[1] = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return frames


_TEXTS: dict[str, bytes] = {}
_META_JSON: dict[Any, bytes] = {}


def _short_text(text: str, what: str) -> bytes:
    """A length byte and the UTF-8 of ``text`` (cached: units and names repeat)."""
    out = _TEXTS.get(text)
    if out is None:
        # As JSON would: any str travels (a lone surrogate too); the stores judge it.
        raw = text.encode("utf-8", errors="surrogatepass")
        if len(raw) > 255:
            raise ValueError(f"{what} {text[:40]!r}... is longer than 255 bytes")
        out = bytes((len(raw),)) + raw
        if len(_TEXTS) < 4096:
            _TEXTS[text] = out
    return out


def _meta_json(meta: dict[str, Any]) -> bytes:
    """The JSON of ``meta`` (cached by content when its values are plain and hashable)."""
    if not meta:
        return b""
    try:
        key: Any = tuple(meta.items())
        cached = _META_JSON.get(key)
    except TypeError:  # a list or dict value: not hashable, encode it every time
        key, cached = None, None
    if cached is None:
        cached = json.dumps(meta, separators=(",", ":"), allow_nan=True).encode("utf-8")
        if key is not None and len(_META_JSON) < 4096:
            _META_JSON[key] = cached
    return cached


_PAYLOAD_INFO: dict[np.dtype, tuple[int, bytes, bool]] = {}
_TOPIC_BYTES: dict[tuple[Kind, str, str], bytes] = {}


def _payload_info(dtype: np.dtype) -> tuple[int, bytes, bool]:
    """(dtype code, dtype text for code 255, big-endian?) of ``dtype`` (cached)."""
    info = _PAYLOAD_INFO.get(dtype)
    if info is None:
        big = _has_big_endian(dtype)
        wire = dtype.newbyteorder("<") if big else dtype
        code = _CODE_OF.get(wire, _DTYPE_TEXT)
        text = b""
        if code == _DTYPE_TEXT:
            spec = json.dumps(_wire_dtype(wire)).encode("ascii")
            text = struct.pack("<H", len(spec)) + spec
        info = (code, text, big)
        if len(_PAYLOAD_INFO) < 256:
            _PAYLOAD_INFO[dtype] = info
    return info


def _encode_v2(msg: Message) -> list[bytes | memoryview]:
    key = (msg.kind, msg.source, msg.channel)
    topic = _TOPIC_BYTES.get(key)
    if topic is None:
        topic = msg.topic
        if len(_TOPIC_BYTES) < 100_000:
            _TOPIC_BYTES[key] = topic
    frames: list[bytes | memoryview] = [topic, b""]
    flags = 0
    code = 0
    ndim = 0
    shape_bytes = b""
    dtype_text = b""
    arr = msg.data
    if arr is not None:
        code, dtype_text, big = _payload_info(arr.dtype)
        if big:
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        flags = _FLAG_PAYLOAD
        ndim = arr.ndim
        shape_bytes = struct.pack(f"<{ndim}Q", *arr.shape)
        frames.append(arr.data.cast("B") if arr.size else b"")
    meta = msg.meta
    wave = b""
    rest = meta
    if msg.kind is Kind.WAVE:
        dt, t0, scale = meta.get("dt"), meta.get("t0"), meta.get("scale")
        offset, pre = meta.get("offset"), meta.get("presamples")
        if (type(dt) is float and type(t0) is int and type(scale) is float
                and type(offset) is float and type(pre) is int):
            flags |= _FLAG_WAVE
            wave = _WAVE.pack(dt, t0, scale, offset, pre)
            rest = ({k: val for k, val in meta.items() if k not in _WAVE_KEYS}
                    if len(meta) > 5 else {})
    frames[1] = b"".join((
        _V2.pack(2, flags, code, ndim, msg.seq, msg.epoch, msg.t, msg.quality), wave,
        shape_bytes, _short_text(msg.units, "units"), _short_text(msg.pub, "publisher name"),
        dtype_text, _meta_json(rest)))
    return frames


def _dtype_parts(dtype: np.dtype) -> list[np.dtype]:
    """The field dtypes of a structured dtype, or the dtype itself."""
    fields = dtype.fields
    if fields is None:
        return [dtype]
    return [fields[name][0] for name in dtype.names or ()]


def _has_big_endian(dtype: np.dtype) -> bool:
    return any(part.byteorder == ">" for part in _dtype_parts(dtype))


def frame_view(frame: Any) -> memoryview:
    """A zero-copy view of a received frame (bytes, memoryview or ``zmq.Frame``).

    Raises:
        MessageDecodeError: the frame is of no such type.
    """
    if isinstance(frame, bytes | bytearray):
        return memoryview(frame)
    if isinstance(frame, memoryview):
        return frame
    buffer = getattr(frame, "buffer", None)  # zmq.Frame: zero-copy view
    if buffer is not None:
        return memoryview(buffer)
    raise MessageDecodeError(f"frame of type {type(frame).__name__} is not bytes")


_WIRE_DTYPES: dict[np.dtype, Any] = {}
_DECODED_DTYPES: dict[Any, np.dtype] = {}


def _wire_dtype(dtype: np.dtype) -> Any:
    """The header's description of ``dtype`` (cached: ``descr`` is slow for records)."""
    wire = _WIRE_DTYPES.get(dtype)
    if wire is None:
        wire = dtype.descr if dtype.names else dtype.str
        if len(_WIRE_DTYPES) < 256:
            _WIRE_DTYPES[dtype] = wire
    return wire


def _safe_dtype(spec: Any) -> np.dtype:
    """A plain numeric dtype from its header description (cached), or TypeError/ValueError."""
    try:
        key = spec if isinstance(spec, str) else tuple(tuple(field) for field in spec)
    except TypeError:
        raise TypeError("dtype must be a string or a list of [name, type] pairs") from None
    dtype = _DECODED_DTYPES.get(key)
    if dtype is None:
        dtype = _parse_dtype(spec)
        if len(_DECODED_DTYPES) < 256:
            _DECODED_DTYPES[key] = dtype
    return dtype


def _parse_dtype(spec: Any) -> np.dtype:
    if isinstance(spec, str):
        dtype = np.dtype(spec)
    elif isinstance(spec, list) and all(
        isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f) for f in spec
    ):
        dtype = np.dtype([(str(n), str(t)) for n, t in spec])
    else:
        raise TypeError("dtype must be a string or a list of [name, type] pairs")
    for part in _dtype_parts(dtype):
        if part.kind not in _ALLOWED_DTYPE_KINDS or part.subdtype is not None:
            raise TypeError(f"dtype {part} is not a plain numeric type")
        if part.byteorder == ">":
            raise TypeError(f"dtype {part} is big-endian; the wire is little-endian")
    return dtype


def decode(frames: Sequence[Any], *, t_recv: int | None = None) -> Message:
    """Decode received frames into a :class:`Message`.

    Accepts ``bytes`` or ``zmq.Frame`` (``recv_multipart(copy=False)``); the
    payload array is a zero-copy, read-only view on the last frame.

    Raises:
        MessageDecodeError: for anything that is not a valid message.
    """
    if not 2 <= len(frames) <= 3:
        raise MessageDecodeError(f"expected 2 or 3 frames, got {len(frames)}")
    kind, source, channel = _parse_topic(bytes(frame_view(frames[0])))

    header_view = frame_view(frames[1])
    if len(header_view) > MAX_HEADER_BYTES:
        raise MessageDecodeError(f"header longer than {MAX_HEADER_BYTES} bytes", frame=1)
    if len(header_view) and header_view[0] == 2:
        return _decode_v2(kind, source, channel, header_view, frames, t_recv)
    try:
        header = json.loads(bytes(header_view))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageDecodeError(f"header is not JSON ({exc})", frame=1) from None
    if not isinstance(header, dict):
        raise MessageDecodeError("header is not a JSON object", frame=1)
    if header.get("v") != 1:
        raise MessageDecodeError(
            f"header version {header.get('v')!r}, this build reads {HEADER_VERSIONS}", frame=1
        )
    try:
        seq = _int_field(header, "seq", -1, INT64_MAX)
        epoch = _int_field(header, "epoch", 0, INT64_MAX)
        t = _int_field(header, "t", INT64_MIN, INT64_MAX)
        quality = _int_field(header, "q", 0, QUALITY_MAX)
        units = header["units"]
        pub = header["pub"]
        meta = header["meta"]
    except KeyError as exc:
        raise MessageDecodeError(f"header lacks {exc.args[0]!r}", frame=1) from None
    if not isinstance(units, str) or not isinstance(pub, str) or not isinstance(meta, dict):
        raise MessageDecodeError("header units/pub must be text and meta an object", frame=1)

    data = None
    if len(frames) == 3:
        if "dtype" not in header or "shape" not in header:
            raise MessageDecodeError("payload without dtype/shape in header", frame=1)
        data = _decode_payload(header["dtype"], header["shape"], frames[2])
    elif "dtype" in header:
        raise MessageDecodeError("header announces a payload that is missing", frame=2)
    _check_kind_payload(kind, data)

    return Message(kind, source, channel, t=t, units=units, quality=quality, data=data,
                   meta=meta, seq=seq, epoch=epoch, pub=pub,
                   t_recv=now_ns() if t_recv is None else t_recv)


def _decode_v2(kind: Kind, source: str, channel: str, view: memoryview, frames: Sequence[Any],
               t_recv: int | None) -> Message:
    """The version-2 (binary) header; see the module docstring for the layout."""
    size = len(view)
    if size < _V2.size:
        raise MessageDecodeError(f"binary header of {size} bytes is too short", frame=1)
    _, flags, code, ndim, seq, epoch, t, quality = _V2.unpack_from(view)
    if seq < -1:
        raise MessageDecodeError(f"header 'seq' = {seq} is outside [-1, {INT64_MAX}]", frame=1)
    if epoch < 0:
        raise MessageDecodeError(f"header 'epoch' = {epoch} is outside [0, {INT64_MAX}]",
                                 frame=1)
    if quality > QUALITY_MAX:
        raise MessageDecodeError(f"header 'q' = {quality} is outside [0, {QUALITY_MAX}]",
                                 frame=1)
    if flags & ~(_FLAG_PAYLOAD | _FLAG_WAVE) or ndim > 8:
        raise MessageDecodeError(f"binary header flags {flags} / ndim {ndim} unknown", frame=1)
    pos = _V2.size
    try:
        meta: dict[str, Any]
        if flags & _FLAG_WAVE:
            meta = dict(zip(_WAVE_KEYS, _WAVE.unpack_from(view, pos), strict=True))
            pos += _WAVE.size
        else:
            meta = {}
        shape = list(struct.unpack_from(f"<{ndim}Q", view, pos)) if ndim else []
        pos += 8 * ndim
        tail = bytes(view[pos:])
        parsed = _TAILS.get((tail, code, flags & _FLAG_PAYLOAD))
        if parsed is None:
            parsed = _parse_tail(tail, code, bool(flags & _FLAG_PAYLOAD))
            # Only tails without JSON meta repeat (a stream's units, publisher, dtype):
            # a tail with meta (status, heartbeat) is mostly new each time, would fill the
            # cache with dead entries, and its dict must not be shared between messages.
            if not parsed[3]:
                if len(_TAILS) >= 4096:
                    _TAILS.clear()
                _TAILS[(tail, code, flags & _FLAG_PAYLOAD)] = parsed
        units, pub, dtype, extra = parsed
        if extra:
            meta.update(extra)
    except MessageDecodeError:
        raise
    except (struct.error, UnicodeDecodeError, ValueError, TypeError, RecursionError,
            IndexError) as exc:
        raise MessageDecodeError(f"binary header is malformed ({exc})", frame=1) from None
    data = None
    if len(frames) == 3:
        if dtype is None:
            raise MessageDecodeError("payload without dtype/shape in header", frame=1)
        data = _payload(dtype, shape, frames[2])
    elif dtype is not None:
        raise MessageDecodeError("header announces a payload that is missing", frame=2)
    _check_kind_payload(kind, data)
    return Message(kind, source, channel, t=t, units=units, quality=quality, data=data,
                   meta=meta, seq=seq, epoch=epoch, pub=pub,
                   t_recv=now_ns() if t_recv is None else t_recv)


_TAILS: dict[tuple[bytes, int, int], tuple[str, str, np.dtype | None, dict[str, Any]]] = {}


def _parse_tail(tail: bytes, code: int, payload: bool,
                ) -> tuple[str, str, np.dtype | None, dict[str, Any]]:
    """Units, publisher, dtype and the JSON meta keys of a version-2 header's tail."""
    view = memoryview(tail)
    units, pos = _read_text(view, 0)
    pub, pos = _read_text(view, pos)
    dtype: np.dtype | None = None
    if payload:
        if code == _DTYPE_TEXT:
            (length,) = struct.unpack_from("<H", view, pos)
            if pos + 2 + length > len(tail):
                raise MessageDecodeError("binary header is truncated", frame=1)
            spec = json.loads(tail[pos + 2:pos + 2 + length])
            pos += 2 + length
            dtype = _safe_dtype(spec)
        elif 1 <= code <= len(DTYPE_CODES):
            dtype = DTYPE_CODES[code - 1]
        else:
            raise MessageDecodeError(f"unknown dtype code {code}", frame=1)
    extra: dict[str, Any] = {}
    if pos < len(tail):
        extra = json.loads(tail[pos:])
        if not isinstance(extra, dict):
            raise MessageDecodeError("header meta is not a JSON object", frame=1)
    return units, pub, dtype, extra


def _read_text(view: memoryview, pos: int) -> tuple[str, int]:
    if pos >= len(view):
        raise MessageDecodeError("binary header is truncated", frame=1)
    length = view[pos]
    end = pos + 1 + length
    if end > len(view):
        raise MessageDecodeError("binary header is truncated", frame=1)
    return bytes(view[pos + 1:end]).decode("utf-8", errors="surrogatepass"), end


def _check_kind_payload(kind: Kind, data: np.ndarray | None) -> None:
    """What each kind's payload must be: ``data`` rows of SAMPLE_DTYPE, a ``wave`` record of
    plain numbers; the event kinds carry none."""
    if kind is Kind.DATA:
        if data is None or data.dtype != SAMPLE_DTYPE or data.ndim != 1 or data.size == 0:
            raise MessageDecodeError(
                f"a data message carries rows of (t, value), got "
                f"{'no payload' if data is None else f'{data.dtype} {list(data.shape)}'}",
                frame=2)
    elif kind is Kind.WAVE:
        if data is None or data.dtype.names is not None or data.ndim not in (1, 2):
            raise MessageDecodeError("a wave message carries a 1-D record (or 2-D records) of "
                                     "plain numbers", frame=2)
    elif data is not None:
        raise MessageDecodeError(f"a {kind.value} message carries no payload", frame=2)


_TOPICS: dict[bytes, tuple[Kind, str, str]] = {}


def _parse_topic(topic_bytes: bytes) -> tuple[Kind, str, str]:
    """(kind, source, channel) of a topic frame; validated once per distinct topic."""
    parsed = _TOPICS.get(topic_bytes)
    if parsed is not None:
        return parsed
    if len(topic_bytes) > MAX_TOPIC_BYTES:
        raise MessageDecodeError(f"topic longer than {MAX_TOPIC_BYTES} bytes", frame=0)
    try:
        topic = topic_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise MessageDecodeError("topic is not ASCII", frame=0) from None
    parts = topic.split("/")
    if len(parts) != 3:
        raise MessageDecodeError(f"topic {topic!r} is not kind/source/channel", frame=0)
    kind_text, source, channel = parts
    kind = _KINDS.get(kind_text)
    if kind is None:
        raise MessageDecodeError(f"unknown kind {kind_text!r} in topic {topic!r}", frame=0)
    if not (set(source) <= _NAME_CHARS and set(channel) <= _NAME_CHARS and source and channel):
        raise MessageDecodeError(f"bad source or channel in topic {topic!r}", frame=0)
    parsed = (kind, source, channel)
    if len(_TOPICS) < 100_000:  # bounded: hostile peers cannot grow it without limit
        _TOPICS[topic_bytes] = parsed
    return parsed


def _int_field(header: dict[str, Any], key: str, low: int, high: int) -> int:
    value = header[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageDecodeError(f"header {key!r} must be an integer, got {value!r}", frame=1)
    # Stores keep these as signed 64-bit columns: a value beyond them must fail here, at the
    # edge, not in the middle of somebody else's write batch.
    if not low <= value <= high:
        raise MessageDecodeError(f"header {key!r} = {value} is outside [{low}, {high}]",
                                 frame=1)
    return value


def _decode_payload(dtype_spec: Any, shape: Any, frame: Any) -> np.ndarray:
    try:
        dtype = _safe_dtype(dtype_spec)
    except (TypeError, ValueError) as exc:
        raise MessageDecodeError(f"bad dtype {dtype_spec!r}: {exc}", frame=1) from None
    if (
        not isinstance(shape, list)
        or len(shape) > 8
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise MessageDecodeError(f"bad shape {shape!r}", frame=1)
    return _payload(dtype, shape, frame)


def _payload(dtype: np.dtype, shape: list[int], frame: Any) -> np.ndarray:
    """A read-only, zero-copy view of ``frame`` as ``dtype`` x ``shape`` (sizes checked)."""
    view = frame_view(frame)
    count = 1
    for n in shape:
        count *= n
    if count * dtype.itemsize != len(view):
        raise MessageDecodeError(
            f"payload has {len(view)} bytes, header says {count} x {dtype.itemsize}", frame=2
        )
    array = np.frombuffer(view, dtype=dtype, count=count).reshape(shape)
    array.flags.writeable = False
    return array
