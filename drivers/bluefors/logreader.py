"""Follows a Bluefors log directory and turns new lines into typed samples.

The vendor software appends lines to ``<root>/YY-MM-DD/<kind> YY-MM-DD.log``
(formats in :mod:`drivers.bluefors.parsing`). :class:`BlueforsLogReader`
keeps one cursor per kind -- the file it is reading and the byte offset just
after the last complete line it consumed -- and on every :meth:`poll`:

* reads what was appended to each kind's file since the cursor; a last line
  without its CR LF is left for the next poll;
* when a newer file of the kind exists (the date changed, or the reader was
  down for days), reads the rest of the current file, then every newer file
  in date order, and moves the cursor to the newest;
* picks up kinds whose files appear late (first seen: read from the start of
  the newest file, or from its end with ``backfill=False``);
* starts a file again from the beginning if it became shorter than the cursor.

Restarts: with ``state_file`` set, what the reader has handed over is written
to that JSON file atomically and read back on the first poll, so a restarted
reader continues after it: every line exactly once, nothing skipped. The
file holds, per kind, the point to read again from, and per stream, the end
of the last line whose sample was handed over; a re-read line is handed over
only to the streams that have not had it. :meth:`poll` hands over as it
reads (and commits); a caller that stores the samples first can use
:meth:`read_new` and call :meth:`commit` afterwards.

The daemon's view hands over per stream: a directory scan (at most every
``refresh_s``) buffers each stream's new samples; ``fresh`` says a stream has
some; ``read`` returns ALL of them, each with its own time from the log line
and the log's verdict as quality flags (a batch), and commits. A stream the
daemon never asks for within ``follow_grace_s`` of the first scan is not
buffered (the daemon polls only the streams its config names) and does not
hold back the restart point of its kind.

Interface: ``BlueforsLogReader(root, timezone=..., state_file=None,
backfill=True, refresh_s=5.0, follow_grace_s=60.0)``, :meth:`poll`,
:meth:`read_new`, :meth:`commit`, :meth:`latest`, :attr:`streams`,
:attr:`cursors`, :meth:`close`, and the daemon's view: :meth:`poll_specs`
(one per stream, named like the stream with spaces as underscores, e.g.
``CH6_T``, ``maxigauge_CH1``, so the names are valid channel names), no
controls, no actions. ``KEEPS_STATE``: the daemon passes ``state_file``.
The constructor does no I/O. Plain Python: no VISA.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.bluefors.parsing import FOLDER_RE, Sample, parse_file_name, parse_line
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.readings import Reading

log = logging.getLogger(__name__)

STATE_VERSION = 2
QUANTITIES = {
    "K": "temperature",
    "Ohm": "resistance",
    "W": "power",
    "mbar": "pressure",
    "mmol/s": "flow",
}
#: Bytes read from the end of a kind's newest file to learn its stream names.
TAIL_BYTES = 65536
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-.:@+]+")


@dataclass
class Cursor:
    """Where the reader is in one kind's log.

    Attributes:
        file: path of the file, relative to the log root (``"24-12-03/CH6 T 24-12-03.log"``).
        offset: bytes consumed (always just after a complete line).
    """

    file: str
    offset: int


@dataclass(frozen=True, order=True)
class Position:
    """A byte position in one kind's log, ordered across its daily files.

    Attributes:
        date: the file's date, ``YY-MM-DD`` (orders the files).
        file: the file, relative to the log root.
        offset: bytes from the start of the file.
    """

    date: str
    file: str
    offset: int

    @classmethod
    def at(cls, file: str, offset: int) -> Position:
        """The position ``offset`` in ``file``."""
        return cls(_file_date(file), file, offset)


#: A sample with the positions where its line starts and ends.
Line = tuple[Sample, Position, Position]


def _file_date(relpath: str) -> str:
    parsed = parse_file_name(Path(relpath).name)
    return parsed[1] if parsed else ""


def spec_name(stream: str) -> str:
    """The poll spec (and default channel) name of a stream: ``"CH6 T"`` -> ``"CH6_T"``.

    Args:
        stream: the stream name as in :class:`~drivers.bluefors.parsing.Sample`.

    Returns:
        The name with every run of characters a channel name cannot hold as ``_``.
    """
    return _UNSAFE.sub("_", stream.strip())


class BlueforsLogReader:
    """Reads new samples from a Bluefors log directory.

    Args:
        root: the log root holding the ``YY-MM-DD`` folders.
        timezone: the site's time zone (IANA name or ``ZoneInfo``); the logs
            carry local wall-clock time without zone.
        state_file: JSON file for what was handed over, to resume after a
            restart without duplicates; None keeps it in memory only.
        backfill: for a kind seen for the first time, read its newest file
            from the start (True) or only what is appended from now on (False).
        refresh_s: a ``fresh`` check rescans the directory at most this often.
        folders_back: how many of the newest day folders to scan for kinds
            not followed yet.
        follow_grace_s: a stream not asked for within this long after the
            first scan is not buffered for the daemon.
        clock: monotonic time source (seconds).
    """

    #: The daemon passes ``state_file=<state dir>/<instrument>.json``.
    KEEPS_STATE = True

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        timezone: str | ZoneInfo,
        state_file: str | os.PathLike[str] | None = None,
        backfill: bool = True,
        refresh_s: float = 5.0,
        folders_back: int = 2,
        follow_grace_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.state_file = Path(state_file) if state_file is not None else None
        self.backfill = backfill
        self.refresh_s = refresh_s
        self.folders_back = folders_back
        self.follow_grace_s = follow_grace_s
        self.clock = clock
        self.skipped_lines = 0  # complete lines without a readable date and time
        self._cursors: dict[str, Cursor] = {}
        self._delivered: dict[str, Position] = {}  # stream -> end of its last handed-over line
        self._loaded = False
        self._dirty = False
        self._latest: dict[str, Sample] = {}
        self._units: dict[str, str] = {}
        self._kind_of: dict[str, str] = {}
        self._pending: dict[str, deque[Line]] = {}
        self._asked: set[str] = set()
        self._first_scan: float | None = None
        self._polled_at: float | None = None

    def identify(self) -> str:
        """The daemon's connect check: the log directory exists and can be listed.

        Raises:
            OSError: it does not (a missing mount, a wrong path).
        """
        entries = sum(1 for _ in self.root.iterdir())  # raises for a missing directory
        return f"Bluefors log directory {self.root} ({entries} entries)"

    # ---- state -----------------------------------------------------------------------------

    def _load_state(self) -> None:
        self._loaded = True
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            version = data.get("version")
            cursors = data["cursors"] if version in (1, STATE_VERSION) else {}
            delivered = data.get("delivered", {}) if version == STATE_VERSION else {}
            self._cursors = {
                kind: Cursor(str(c["file"]), int(c["offset"])) for kind, c in cursors.items()
            }
            self._delivered = {
                stream: Position.at(str(p["file"]), int(p["offset"]))
                for stream, p in delivered.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged state file must not stop the housekeeping; start as if new.
            log.warning("ignoring unreadable state file %s: %s", self.state_file, exc)
            self._cursors, self._delivered = {}, {}

    def _restart_points(self) -> dict[str, Cursor]:
        """Per kind, where a restart reads again: before the first line still buffered."""
        points = {kind: Position.at(c.file, c.offset) for kind, c in self._cursors.items()}
        for stream, lines in self._pending.items():
            kind = self._kind_of[stream]
            if lines and kind in points and lines[0][1] < points[kind]:
                points[kind] = lines[0][1]
        return {kind: Cursor(p.file, p.offset) for kind, p in points.items()}

    def commit(self) -> None:
        """Persist (atomically) what was handed over, so that a restart resumes after it."""
        if self.state_file is None or not self._dirty:
            return
        data = {
            "version": STATE_VERSION,
            "root": str(self.root),
            "cursors": {k: {"file": c.file, "offset": c.offset}
                        for k, c in self._restart_points().items()},
            "delivered": {s: {"file": p.file, "offset": p.offset}
                          for s, p in self._delivered.items()},
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_file)
        self._dirty = False

    @property
    def cursors(self) -> dict[str, Cursor]:
        """A copy of the per-kind read cursors (file and offset)."""
        return {k: Cursor(c.file, c.offset) for k, c in self._cursors.items()}

    # ---- directory ---------------------------------------------------------------------------

    def _folders(self) -> list[str]:
        try:
            names = [e.name for e in os.scandir(self.root) if e.is_dir()]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if FOLDER_RE.match(n))

    def _files_by_kind(self) -> dict[str, list[str]]:
        folders = self._folders()
        oldest_needed = min((_file_date(c.file) for c in self._cursors.values()), default="")
        recent = set(folders[-self.folders_back :]) if self.folders_back > 0 else set()
        files: dict[str, list[str]] = {}
        for folder in folders:
            if folder not in recent and (not oldest_needed or folder < oldest_needed):
                continue
            try:
                entries = list(os.scandir(self.root / folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                parsed = parse_file_name(entry.name)
                if parsed is None or not entry.is_file():
                    continue
                files.setdefault(parsed[0], []).append(f"{folder}/{entry.name}")
        for paths in files.values():
            paths.sort(key=lambda p: (_file_date(p), p))
        return files

    # ---- reading -----------------------------------------------------------------------------

    def _read_lines(self, kind: str, cursor: Cursor) -> list[Line]:
        path = self.root / cursor.file
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < cursor.offset:
                    log.warning("%s shrank; reading it again from the start", path)
                    cursor.offset = 0
                    # what was handed over from the old content says nothing about the new
                    self._delivered = {s: p for s, p in self._delivered.items()
                                       if p.file != cursor.file}
                fh.seek(cursor.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a last line without its end is not complete yet
        if end == 0:
            return []
        base, start = cursor.offset, 0
        lines: list[Line] = []
        while start < end:
            stop = data.index(b"\n", start) + 1
            text = data[start:stop].decode("utf-8", errors="replace")
            if text.strip():
                samples = parse_line(kind, text, self.zone)
                if not samples:
                    self.skipped_lines += 1
                    log.warning("%s: no date and time in line %r", path, text.strip()[:80])
                first = Position.at(cursor.file, base + start)
                last = Position.at(cursor.file, base + stop)
                lines.extend((sample, first, last) for sample in samples)
            start = stop
        cursor.offset += end
        self._dirty = True
        return lines

    def _scan(self) -> list[Line]:
        """Every complete line appended since the cursors, minus what was handed over."""
        if not self._loaded:
            self._load_state()
        lines: list[Line] = []
        for kind, paths in sorted(self._files_by_kind().items()):
            cursor = self._cursors.get(kind)
            if cursor is None:
                newest = paths[-1]
                start = 0 if self.backfill else self._complete_length(self.root / newest)
                cursor = self._cursors[kind] = Cursor(newest, start)
                self._dirty = True
            got = self._read_lines(kind, cursor)
            current = (_file_date(cursor.file), cursor.file)
            for path in paths:
                if (_file_date(path), path) > current:
                    cursor.file, cursor.offset = path, 0
                    self._dirty = True
                    got.extend(self._read_lines(kind, cursor))
            for sample, _, _ in got:
                self._kind_of[sample.stream] = kind
            lines.extend(got)
        fresh = []
        for line in lines:
            sample, _, end = line
            self._units[sample.stream] = sample.unit
            done = self._delivered.get(sample.stream)
            if done is not None and end <= done:
                continue  # handed over before a restart
            fresh.append(line)
            old = self._latest.get(sample.stream)
            if old is None or sample.timestamp_ns >= old.timestamp_ns:
                self._latest[sample.stream] = sample
        self._polled_at = self.clock()
        return fresh

    def read_new(self) -> list[Sample]:
        """Read every complete line appended since the cursors, without committing.

        Returns:
            The new samples, in file order per kind.
        """
        return [sample for sample, _, _ in self._scan()]

    @staticmethod
    def _complete_length(path: Path) -> int:
        data = path.read_bytes()
        return data.rfind(b"\n") + 1

    def poll(self) -> list[Sample]:
        """Read every new complete line and commit the cursors.

        Returns:
            The new samples.
        """
        samples = self.read_new()
        self.commit()
        return samples

    def latest(self, stream: str) -> Sample | None:
        """The newest sample read so far of ``stream``.

        Args:
            stream: e.g. ``"CH6 T"``.

        Returns:
            The sample, or None if none was read.
        """
        return self._latest.get(stream)

    @property
    def streams(self) -> list[str]:
        """Names of all streams seen so far, sorted."""
        return sorted(self._latest)

    def close(self) -> None:
        """Commit; the reader holds no open files."""
        self.commit()

    # ---- daemon view -------------------------------------------------------------------------

    def _follows(self, stream: str) -> bool:
        if stream in self._asked:
            return True
        return self._first_scan is None or self.clock() - self._first_scan < self.follow_grace_s

    def _refresh(self) -> None:
        """Scan the directory and buffer each followed stream's new samples."""
        lines = self._scan()
        if self._first_scan is None:
            self._first_scan = self.clock()
        for line in lines:
            stream = line[0].stream
            if self._follows(stream):
                self._pending.setdefault(stream, deque()).append(line)
        for stream in [s for s in self._pending if not self._follows(s)]:
            del self._pending[stream]  # never asked for: the daemon does not poll it
            self._dirty = True
        self.commit()

    def _discover(self) -> None:
        """Learn the streams of kinds with nothing new, from their newest file's last line."""
        for kind, paths in self._files_by_kind().items():
            path = self.root / paths[-1]
            try:
                with open(path, "rb") as fh:
                    fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL_BYTES))
                    tail = fh.read()
            except FileNotFoundError:
                continue
            complete = tail[: tail.rfind(b"\n") + 1].decode("utf-8", errors="replace")
            for text in reversed(complete.splitlines()):
                samples = parse_line(kind, text, self.zone)
                for sample in samples:
                    self._units.setdefault(sample.stream, sample.unit)
                    self._kind_of.setdefault(sample.stream, kind)
                if samples:
                    break

    def _fresh(self, stream: str) -> bool:
        self._asked.add(stream)
        now = self.clock()
        if self._polled_at is None or now - self._polled_at >= self.refresh_s:
            self._refresh()
        return bool(self._pending.get(stream))

    def _read(self, stream: str) -> list[Reading]:
        self._asked.add(stream)
        lines = self._pending.pop(stream, deque())
        if not lines:
            return []
        self._delivered[stream] = lines[-1][2]
        self._dirty = True
        self.commit()  # handed over: a restart must not hand these over again
        return [sample.reading() for sample, _, _ in lines]

    def poll_specs(self) -> list[PollSpec]:
        """One poll spec per stream; scans the directory (buffering what is new) to find them.

        Returns:
            Poll specs named like the streams with spaces as underscores
            (``"CH6_T"``, ``"maxigauge_CH1"``, ``"Status_cpatempwi"``); each
            ``read`` returns every buffered sample of its stream (a batch).
        """
        self._refresh()
        self._discover()
        return [
            PollSpec(
                spec_name(stream),
                unit,
                partial(self._read, stream),
                self.refresh_s,
                QUANTITIES.get(unit, "state"),
                fresh=partial(self._fresh, stream),
            )
            for stream, unit in sorted(self._units.items())
        ]

    def control_specs(self) -> list[ControlSpec]:
        """The log reader controls nothing.

        Returns:
            An empty list.
        """
        return []

    def action_specs(self) -> list[ActionSpec]:
        """The log reader has no actions.

        Returns:
            An empty list.
        """
        return []
