"""DASTARD's status port (base+1): two frames, a tag and a JSON body, as typed values.

DASTARD's ``RunClientUpdater`` (``client_updater.go``) sends every update as
``[tag, json.Marshal(state)]``. The tags the bridge reads, with their bodies
(Go field names as DASTARD marshals them):

``ALIVE``
    heartbeat every 2 s (``broadcastHeartbeat``, ``rpc_server.go``):
    ``{"Running": bool, "Time": s, "DataMB": MB, "HWactualMB": MB}``,
    data handled since the previous ALIVE (older DASTARDs lack ``HWactualMB``).
``STATUS``
    ``ServerStatus``: ``{"Running", "SourceName", "Nchannels", "Nsamples",
    "Npresamp", "SamplePeriod" (ns, a Go Duration), "ChanGroups":
    [{"Firstchan", "Nchan"}], "ChannelsWithProjectors": [...]}``.
``TRIGGERRATE``
    ``TriggerRateMessage`` (``group_trigger.go``): ``{"HiTime": RFC 3339
    time with ns, "Duration": ns, "CountsSeen": [one int per channel index]}``:
    the primary triggers each channel made with trigger frame index in
    ``[lo, hi]``, where ``hi`` is the frame at ``HiTime`` and the windows
    are consecutive, each ``Duration`` long (1 s), ending on whole seconds of
    DASTARD's clock.
``CHANNELNAMES``
    a JSON list of names, indexed by channel index.
``DATADROP``
    ``{"TotalObserved": n}``: how many times the data source lost frames
    (hardware side, before triggering) since the run started; sent at the
    start of a run and after each drop.
``NUMBERWRITTEN``
    ``{"NumberWritten": [per channel]}``: records written to DASTARD's own files.

Other tags (``TRIGGER``, ``WRITING``, ``NEWDASTARD``, ...) parse to ``None``;
the bridge ignores them. Every parse error is a :class:`DastardFormatError`.
The ``encode`` methods produce the same frames, for the simulator.
"""

from __future__ import annotations

import calendar
import enum
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from daq.dastard.errors import DastardFormatError


class StatusTag(enum.StrEnum):
    """The status tags the bridge understands (others exist and are ignored)."""

    ALIVE = "ALIVE"
    STATUS = "STATUS"
    TRIGGERRATE = "TRIGGERRATE"
    CHANNELNAMES = "CHANNELNAMES"
    DATADROP = "DATADROP"
    NUMBERWRITTEN = "NUMBERWRITTEN"


# ---- Go times ----------------------------------------------------------------------------------

_GO_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def parse_go_time(text: str) -> int:
    """ns since 1970 UTC of a Go ``time.Time`` as JSON (RFC 3339 with up to 9 fraction digits).

    Raises:
        DastardFormatError: not such a time.
    """
    match = _GO_TIME.match(text)
    if match is None:
        raise DastardFormatError("time", f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    zone = match.group(8)
    offset_s = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset_s = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError) as exc:
        raise DastardFormatError("time", f"{text!r}: {exc}") from None
    return (seconds - offset_s) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def format_go_time(ns: int, utc_offset_s: int | None = None) -> str:
    """``ns`` as Go marshals a ``time.Time``: RFC 3339, trailing fraction zeros dropped.

    Args:
        ns: ns since 1970 UTC.
        utc_offset_s: the zone to write it in; ``None`` is this machine's
            local zone (as DASTARD, which uses ``time.Now()``).
    """
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    if utc_offset_s is None:
        utc_offset_s = time.localtime(seconds).tm_gmtoff
    wall = time.gmtime(seconds + utc_offset_s)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", wall)
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    if utc_offset_s == 0:
        return text + "Z"
    sign = "-" if utc_offset_s < 0 else "+"
    hours, minutes = divmod(abs(utc_offset_s) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


# ---- bodies ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alive:
    """DASTARD's heartbeat.

    Attributes:
        running: a data source is running.
        time_s: seconds of data handled since the previous ALIVE.
        data_mb: MB processed in that time.
        hw_actual_mb: MB the hardware delivered (less than ``data_mb`` when
            dropped data were replaced by filler).
    """

    running: bool
    time_s: float = 0.0
    data_mb: float = 0.0
    hw_actual_mb: float = 0.0

    def encode(self) -> tuple[bytes, bytes]:
        """The two status frames."""
        return _frames(StatusTag.ALIVE, {"Running": self.running, "Time": self.time_s,
                                         "DataMB": self.data_mb,
                                         "HWactualMB": self.hw_actual_mb})


@dataclass(frozen=True, slots=True)
class ChanGroup:
    """One group of consecutively numbered channels."""

    first_chan: int
    nchan: int


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What DASTARD runs: the source, its channels and its record length."""

    running: bool
    source_name: str
    nchannels: int
    nsamples: int
    npresamp: int
    sample_period_ns: int
    chan_groups: tuple[ChanGroup, ...] = ()
    channels_with_projectors: tuple[int, ...] = ()

    def encode(self) -> tuple[bytes, bytes]:
        """The two status frames."""
        return _frames(StatusTag.STATUS, {
            "Running": self.running, "SourceName": self.source_name,
            "Nchannels": self.nchannels, "Nsamples": self.nsamples, "Npresamp": self.npresamp,
            "SamplePeriod": self.sample_period_ns,
            "ChanGroups": [{"Firstchan": g.first_chan, "Nchan": g.nchan}
                           for g in self.chan_groups],
            "ChannelsWithProjectors": list(self.channels_with_projectors)})


@dataclass(frozen=True, slots=True)
class TriggerRate:
    """One trigger-count window of every channel.

    Attributes:
        hi_time_ns: the end of the window (DASTARD's ``HiTime``), ns since 1970.
        duration_ns: its length.
        counts: primary triggers per channel index in the window.
    """

    hi_time_ns: int
    duration_ns: int
    counts: tuple[int, ...]

    @property
    def lo_time_ns(self) -> int:
        """The start of the window."""
        return self.hi_time_ns - self.duration_ns

    def encode(self, utc_offset_s: int | None = None) -> tuple[bytes, bytes]:
        """The two status frames (the time in the local zone, as DASTARD)."""
        return _frames(StatusTag.TRIGGERRATE, {
            "HiTime": format_go_time(self.hi_time_ns, utc_offset_s),
            "Duration": self.duration_ns, "CountsSeen": list(self.counts)})


@dataclass(frozen=True, slots=True)
class ChannelNames:
    """The channel names, indexed by channel index."""

    names: tuple[str, ...]

    def encode(self) -> tuple[bytes, bytes]:
        """The two status frames."""
        return _frames(StatusTag.CHANNELNAMES, list(self.names))


@dataclass(frozen=True, slots=True)
class DataDrop:
    """How many data drops the source has seen this run."""

    total_observed: int

    def encode(self) -> tuple[bytes, bytes]:
        """The two status frames."""
        return _frames(StatusTag.DATADROP, {"TotalObserved": self.total_observed})


@dataclass(frozen=True, slots=True)
class NumberWritten:
    """Records written to DASTARD's own files, per channel index."""

    counts: tuple[int, ...]

    def encode(self) -> tuple[bytes, bytes]:
        """The two status frames."""
        return _frames(StatusTag.NUMBERWRITTEN, {"NumberWritten": list(self.counts)})


StatusUpdate: TypeAlias = Alive | ServerStatus | TriggerRate | ChannelNames | DataDrop | NumberWritten


def _frames(tag: StatusTag, body: Any) -> tuple[bytes, bytes]:
    return tag.value.encode("ascii"), json.dumps(body, separators=(",", ":")).encode("utf-8")


# ---- parsing -----------------------------------------------------------------------------------


def parse_status(tag: bytes, body: bytes | memoryview) -> StatusUpdate | None:
    """The typed body of one status message; ``None`` for a tag the bridge does not use.

    Raises:
        DastardFormatError: the body does not match its tag's format.
    """
    try:
        known = StatusTag(bytes(tag).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    try:
        data = json.loads(bytes(body))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DastardFormatError(known.value, f"body is not JSON ({exc})") from None
    try:
        return _PARSERS[known](data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DastardFormatError(known.value, f"{type(exc).__name__}: {exc}") from None


def _obj(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    return value


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {value!r}")
    return float(value)


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be true or false, got {value!r}")
    return value


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if value is None:  # Go marshals an empty (nil) slice as null
        return ()
    if not isinstance(value, list):
        raise TypeError(f"{what} must be a list, got {type(value).__name__}")
    return tuple(_int(v, what) for v in value)


def _parse_alive(data: Any) -> Alive:
    d = _obj(data)
    return Alive(running=_bool(d["Running"], "Running"), time_s=_num(d.get("Time", 0), "Time"),
                 data_mb=_num(d.get("DataMB", 0), "DataMB"),
                 hw_actual_mb=_num(d.get("HWactualMB", d.get("DataMB", 0)), "HWactualMB"))


def _parse_status(data: Any) -> ServerStatus:
    d = _obj(data)
    groups = d.get("ChanGroups") or []
    if not isinstance(groups, list):
        raise TypeError("ChanGroups must be a list")
    return ServerStatus(
        running=_bool(d["Running"], "Running"), source_name=str(d.get("SourceName", "")),
        nchannels=_int(d.get("Nchannels", 0), "Nchannels"),
        nsamples=_int(d.get("Nsamples", 0), "Nsamples"),
        npresamp=_int(d.get("Npresamp", 0), "Npresamp"),
        sample_period_ns=_int(d.get("SamplePeriod", 0), "SamplePeriod"),
        chan_groups=tuple(ChanGroup(_int(_obj(g)["Firstchan"], "Firstchan"),
                                    _int(_obj(g)["Nchan"], "Nchan")) for g in groups),
        channels_with_projectors=_ints(d.get("ChannelsWithProjectors"), "ChannelsWithProjectors"))


def _parse_trigger_rate(data: Any) -> TriggerRate:
    d = _obj(data)
    hi_time = d["HiTime"]
    if not isinstance(hi_time, str):
        raise TypeError(f"HiTime must be a time string, got {hi_time!r}")
    duration = _int(d["Duration"], "Duration")
    if duration <= 0:
        raise ValueError(f"Duration must be > 0 ns, got {duration}")
    counts = _ints(d["CountsSeen"], "CountsSeen")
    if any(c < 0 for c in counts):
        raise ValueError("CountsSeen must not be negative")
    return TriggerRate(hi_time_ns=parse_go_time(hi_time), duration_ns=duration, counts=counts)


def _parse_names(data: Any) -> ChannelNames:
    if data is None:
        return ChannelNames(())
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        raise TypeError("CHANNELNAMES must be a list of strings")
    return ChannelNames(tuple(data))


def _parse_drop(data: Any) -> DataDrop:
    return DataDrop(_int(_obj(data)["TotalObserved"], "TotalObserved"))


def _parse_written(data: Any) -> NumberWritten:
    return NumberWritten(_ints(_obj(data)["NumberWritten"], "NumberWritten"))


_PARSERS: dict[StatusTag, Callable[[Any], StatusUpdate]] = {
    StatusTag.ALIVE: _parse_alive,
    StatusTag.STATUS: _parse_status,
    StatusTag.TRIGGERRATE: _parse_trigger_rate,
    StatusTag.CHANNELNAMES: _parse_names,
    StatusTag.DATADROP: _parse_drop,
    StatusTag.NUMBERWRITTEN: _parse_written,
}
