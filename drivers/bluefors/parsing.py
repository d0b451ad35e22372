"""Parsing of Bluefors log files: file names, time stamps and the line formats of each kind.

The vendor's control software writes one folder per day, ``YY-MM-DD/``
(year first), holding ``<kind> YY-MM-DD.log`` files (``Status_YY-MM-DD.log``
with an underscore). Inside, each line starts with ``DD-MM-YY,HH:MM:SS``
(day first), local wall-clock time without zone. Kinds and streams:

==================  ==========================================  ==========
kind                stream names                                unit
==================  ==========================================  ==========
``CHn T``           ``CHn T``                                   K
``CHn R``           ``CHn R``                                   Ohm
``CHn P``           ``CHn P``                                   W
``Flowmeter``       ``Flowmeter``                               mmol/s
``maxigauge``       ``maxigauge CH1`` … ``maxigauge CH6``       mbar
``Channels``        ``Channels <key>`` (``v1``, ``turbo1``, …)  (0 / 1)
``Status``          ``Status <key>`` (``cpatempwi``, …)         (as logged)
``Heaters``         ``Heaters <key>``                           (as logged)
==================  ==========================================  ==========

Every value on a line becomes a sample with the line's time, and none is
dropped for being bad: the log's own verdict becomes quality flags.

* maxigauge: the gauge status (the MaxiGauge's own, recorded by the vendor's
  software) maps to flags as for the TPG 366 (:func:`drivers.pfeiffer.codes.status_quality`:
  1 ``UNDERRANGE``, 2 ``OVERRANGE``, 3 and 6 ``SENSOR_ERROR``, 4 and 5
  ``SENSOR_OFF``), kept in ``Sample.status`` too; a gauge with enabled 0 is
  ``SENSOR_OFF`` whatever its status (its number is not a pressure). The
  number is kept as logged.
* a value that is not a number is NaN flagged ``INVALID``, with the text in
  the note; the rest of the line is kept.

Key/value kinds keep every key, known or not. Other kinds are parsed as one
value, or as key/value pairs when there are several fields. A line whose
date and time cannot be read yields nothing (it cannot be placed in time).

Interface: :class:`Sample` (``reading()`` for the daemon), :func:`parse_file_name`,
:func:`parse_timestamp`, :func:`parse_line`, :func:`unit_for`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from drivers.pfeiffer.codes import status_quality
from drivers.readings import Quality, Reading

FOLDER_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)$")
FILE_RE = re.compile(r"^(?P<kind>.+?)[ _](?P<date>\d\d-\d\d-\d\d)\.log$")
THERMO_RE = re.compile(r"^CH\d+ [TRP]$")
UNITS = {"T": "K", "R": "Ohm", "P": "W"}
KEY_VALUE_KINDS = ("Channels", "Status", "Heaters")


@dataclass(frozen=True)
class Sample:
    """One logged value.

    Attributes:
        timestamp_ns: time of the line, ns since the epoch (UTC).
        stream: stream name, e.g. ``"CH6 T"``, ``"maxigauge CH1"``, ``"Channels v1"``.
        value: the number.
        unit: its unit (``""`` when the log does not say).
        status: the gauge status for maxigauge samples (0 ok), else None.
        quality: the log's verdict as flags (``OK`` for a plain value).
        note: the verdict in words, when not OK.
    """

    timestamp_ns: int
    stream: str
    value: float
    unit: str
    status: int | None = None
    quality: Quality = Quality.OK
    note: str = ""

    def reading(self) -> Reading:
        """The sample as the daemon publishes it: value, flags, the line's own time.

        Returns:
            The reading.
        """
        return Reading(self.value, self.quality, self.timestamp_ns, self.note)


def parse_file_name(name: str) -> tuple[str, str] | None:
    """Split a log file name into its kind and date.

    Args:
        name: e.g. ``"CH6 T 24-12-03.log"`` or ``"Status_24-12-03.log"``.

    Returns:
        ``(kind, "YY-MM-DD")``, or None for anything that is not a log file.
    """
    match = FILE_RE.match(name)
    if match is None:
        return None
    return match.group("kind"), match.group("date")


def unit_for(kind: str) -> str:
    """The unit of a kind's values.

    Args:
        kind: e.g. ``"CH6 T"``, ``"maxigauge"``.

    Returns:
        The unit text (``""`` when not known).
    """
    if THERMO_RE.match(kind):
        return UNITS[kind[-1]]
    return {"maxigauge": "mbar", "Flowmeter": "mmol/s"}.get(kind, "")


def parse_timestamp(date: str, clock: str, zone: ZoneInfo) -> int:
    """Convert ``DD-MM-YY`` and ``HH:MM:SS`` local wall-clock time to ns since the epoch.

    In the hour repeated when daylight saving ends, the first occurrence is
    taken (the log does not say which).

    Args:
        date: day first, e.g. ``"03-12-24"``.
        clock: e.g. ``"00:12:10"``.
        zone: the site's time zone.

    Returns:
        Nanoseconds since the epoch, UTC.

    Raises:
        ValueError: not a valid date or time.
    """
    day, month, year = (int(p) for p in date.split("-"))
    hour, minute, second = (int(p) for p in clock.split(":"))
    local = datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    return int(local.timestamp()) * 1_000_000_000


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _value(ts: int, stream: str, raw: str, unit: str) -> Sample:
    """One logged number; a field that is not one is NaN flagged INVALID."""
    value = _number(raw)
    if value is None:
        return Sample(ts, stream, math.nan, unit, quality=Quality.INVALID,
                      note=f"{raw.strip()!r} is not a number")
    return Sample(ts, stream, value, unit)


def _pairs(kind: str, fields: list[str], ts: int, unit: str) -> list[Sample]:
    return [_value(ts, f"{kind} {key.strip()}", raw, unit)
            for key, raw in zip(fields[0::2], fields[1::2], strict=False) if key.strip()]


def _gauge(ts: int, channel: str, enabled: str, pressure: str, status: str) -> Sample:
    """One maxigauge group: the logged number with the gauge's verdict as flags."""
    sample = _value(ts, f"maxigauge {channel.strip()}", pressure, "mbar")
    flags, notes = sample.quality, [sample.note] if sample.note else []
    code = _number(status)
    if code is None or not code.is_integer():
        flags |= Quality.INVALID
        notes.append(f"status {status.strip()!r} is not a gauge status")
    else:
        status_flags, status_note = status_quality(int(code))
        flags |= status_flags
        if status_note:
            notes.append(status_note)
    if _number(enabled) != 1:
        flags |= Quality.SENSOR_OFF  # a disabled gauge's number is not a pressure
        notes.insert(0, f"disabled (enabled {enabled.strip()})")
    return Sample(ts, sample.stream, sample.value, "mbar",
                  None if code is None or not code.is_integer() else int(code),
                  Quality(flags), "; ".join(notes))


def _maxigauge(fields: list[str], ts: int) -> list[Sample]:
    samples = []
    for k in range(0, len(fields) - 5, 6):
        channel, _name, enabled, pressure, status, _x = fields[k : k + 6]
        if channel.strip():
            samples.append(_gauge(ts, channel, enabled, pressure, status))
    return samples


def parse_line(kind: str, line: str, zone: ZoneInfo) -> list[Sample]:
    """Parse one complete line of a log file of ``kind``.

    Args:
        kind: the file's kind (from :func:`parse_file_name`).
        line: the line, with or without its CR LF.
        zone: the site's time zone.

    Returns:
        The samples on the line; empty for blank or unparsable lines.
    """
    fields = line.rstrip("\r\n").split(",")
    if len(fields) < 3:
        return []
    try:
        ts = parse_timestamp(fields[0].strip(), fields[1].strip(), zone)
    except ValueError:
        return []
    rest = fields[2:]
    if rest and rest[-1].strip() == "":
        rest = rest[:-1]  # the trailing comma of maxigauge lines
    unit = unit_for(kind)
    if kind == "maxigauge":
        return _maxigauge(rest, ts)
    if kind in KEY_VALUE_KINDS or len(rest) > 1:
        if len(rest) % 2:
            rest = rest[1:]  # Channels lines carry one extra field before the pairs
        return _pairs(kind, rest, ts, unit)
    return [_value(ts, kind, rest[0], unit)] if rest else []
