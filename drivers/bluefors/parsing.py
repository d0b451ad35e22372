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

A maxigauge gauge with enabled 0 yields no sample (its number is not a
pressure); an enabled gauge's sample carries the gauge status (0 = ok) in
``Sample.status``. Key/value kinds keep every key, known or not; a value
that is not a number is skipped, the rest of the line is kept. Other kinds
are parsed as one value, or as key/value pairs when there are several
fields.

Interface: :class:`Sample`, :func:`parse_file_name`, :func:`parse_timestamp`,
:func:`parse_line`, :func:`unit_for`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

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
    """

    timestamp_ns: int
    stream: str
    value: float
    unit: str
    status: int | None = None


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


def _pairs(kind: str, fields: list[str], ts: int, unit: str) -> list[Sample]:
    samples = []
    for key, raw in zip(fields[0::2], fields[1::2], strict=False):
        value = _number(raw)
        if key.strip() and value is not None:
            samples.append(Sample(ts, f"{kind} {key.strip()}", value, unit))
    return samples


def _maxigauge(fields: list[str], ts: int) -> list[Sample]:
    samples = []
    for k in range(0, len(fields) - 5, 6):
        channel, _name, enabled, pressure, status, _x = fields[k : k + 6]
        value, state = _number(pressure), _number(status)
        if _number(enabled) != 1 or value is None:
            continue  # a disabled gauge's number is not a pressure
        samples.append(
            Sample(
                ts,
                f"maxigauge {channel.strip()}",
                value,
                "mbar",
                None if state is None else int(state),
            )
        )
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
    value = _number(rest[0]) if rest else None
    return [] if value is None else [Sample(ts, kind, value, unit)]
