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

Restarts: with ``state_file`` set, the cursors (file path relative to the
root, byte offset) are written to that JSON file atomically on
:meth:`commit` and read back on the first poll, so a restarted reader
continues after the last committed line: no duplicates, nothing skipped.
:meth:`poll` commits by default (at-most-once hand-over); a caller that
stores the samples first can use :meth:`read_new` and call :meth:`commit`
afterwards (at-least-once: a crash in between re-reads, never loses).

Interface: ``BlueforsLogReader(root, timezone=..., state_file=None,
backfill=True, refresh_s=5.0)``, :meth:`poll`, :meth:`read_new`,
:meth:`commit`, :meth:`latest`, :attr:`streams`, :meth:`close`, and the
daemon's view: :meth:`poll_specs` (one per stream seen, named like the
stream, ``fresh`` true when a newer line has been read; a ``fresh`` check
polls the directory at most every ``refresh_s``), no controls, no actions.
The constructor does no I/O. Plain Python: no VISA.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.bluefors.parsing import FOLDER_RE, Sample, parse_file_name, parse_line
from drivers.common import ActionSpec, ControlSpec, PollSpec
from drivers.readings import Quality, Reading

log = logging.getLogger(__name__)

STATE_VERSION = 1
QUANTITIES = {
    "K": "temperature",
    "Ohm": "resistance",
    "W": "power",
    "mbar": "pressure",
    "mmol/s": "flow",
}


@dataclass
class Cursor:
    """Where the reader is in one kind's log.

    Attributes:
        file: path of the file, relative to the log root (``"24-12-03/CH6 T 24-12-03.log"``).
        offset: bytes consumed (always just after a complete line).
    """

    file: str
    offset: int


def _file_date(relpath: str) -> str:
    parsed = parse_file_name(Path(relpath).name)
    return parsed[1] if parsed else ""


class BlueforsLogReader:
    """Reads new samples from a Bluefors log directory.

    Args:
        root: the log root holding the ``YY-MM-DD`` folders.
        timezone: the site's time zone (IANA name or ``ZoneInfo``); the logs
            carry local wall-clock time without zone.
        state_file: JSON file for the cursors, to resume after a restart
            without duplicates; None keeps them in memory only.
        backfill: for a kind seen for the first time, read its newest file
            from the start (True) or only what is appended from now on (False).
        refresh_s: a ``fresh`` check rescans the directory at most this often.
        folders_back: how many of the newest day folders to scan for kinds
            not followed yet.
        clock: monotonic time source (seconds).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        timezone: str | ZoneInfo,
        state_file: str | os.PathLike[str] | None = None,
        backfill: bool = True,
        refresh_s: float = 5.0,
        folders_back: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.state_file = Path(state_file) if state_file is not None else None
        self.backfill = backfill
        self.refresh_s = refresh_s
        self.folders_back = folders_back
        self.clock = clock
        self._cursors: dict[str, Cursor] = {}
        self._loaded = False
        self._dirty = False
        self._latest: dict[str, Sample] = {}
        self._last_read: dict[str, int] = {}
        self._polled_at: float | None = None

    # ---- state -----------------------------------------------------------------------------

    def _load_state(self) -> None:
        self._loaded = True
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            cursors = data["cursors"] if data.get("version") == STATE_VERSION else {}
            self._cursors = {
                kind: Cursor(str(c["file"]), int(c["offset"])) for kind, c in cursors.items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged state file must not stop the housekeeping; start as if new.
            log.warning("ignoring unreadable state file %s: %s", self.state_file, exc)
            self._cursors = {}

    def commit(self) -> None:
        """Persist the cursors (atomically) so that a restart resumes after them."""
        if self.state_file is None or not self._dirty:
            return
        data = {
            "version": STATE_VERSION,
            "root": str(self.root),
            "cursors": {k: {"file": c.file, "offset": c.offset} for k, c in self._cursors.items()},
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
        """A copy of the per-kind cursors (file and offset)."""
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

    def _read_lines(self, kind: str, cursor: Cursor) -> list[Sample]:
        path = self.root / cursor.file
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < cursor.offset:
                    log.warning("%s shrank; reading it again from the start", path)
                    cursor.offset = 0
                fh.seek(cursor.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a last line without its end is not complete yet
        if end == 0:
            return []
        cursor.offset += end
        self._dirty = True
        samples: list[Sample] = []
        for raw in data[:end].decode("utf-8", errors="replace").split("\n"):
            if raw.strip():
                samples.extend(parse_line(kind, raw, self.zone))
        return samples

    def read_new(self) -> list[Sample]:
        """Read every complete line appended since the cursors, without committing.

        Returns:
            The new samples, in file order per kind.
        """
        if not self._loaded:
            self._load_state()
        samples: list[Sample] = []
        for kind, paths in sorted(self._files_by_kind().items()):
            cursor = self._cursors.get(kind)
            if cursor is None:
                newest = paths[-1]
                start = 0 if self.backfill else self._complete_length(self.root / newest)
                cursor = self._cursors[kind] = Cursor(newest, start)
                self._dirty = True
            samples.extend(self._read_lines(kind, cursor))
            current = (_file_date(cursor.file), cursor.file)
            for path in paths:
                if (_file_date(path), path) > current:
                    cursor.file, cursor.offset = path, 0
                    self._dirty = True
                    samples.extend(self._read_lines(kind, cursor))
        for sample in samples:
            old = self._latest.get(sample.stream)
            if old is None or sample.timestamp_ns >= old.timestamp_ns:
                self._latest[sample.stream] = sample
        self._polled_at = self.clock()
        return samples

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
        """Commit the cursors; the reader holds no open files."""
        self.commit()

    # ---- daemon view -------------------------------------------------------------------------

    def _fresh(self, stream: str) -> bool:
        now = self.clock()
        if self._polled_at is None or now - self._polled_at >= self.refresh_s:
            self.poll()
        sample = self._latest.get(stream)
        return sample is not None and sample.timestamp_ns > self._last_read.get(stream, -1)

    def _read(self, stream: str) -> Reading:
        sample = self._latest.get(stream)
        if sample is None:
            return Reading(float("nan"), Quality.INVALID, note=f"no line of {stream} yet")
        self._last_read[stream] = sample.timestamp_ns
        return Reading.of(sample.value, t_ns=sample.timestamp_ns)

    def poll_specs(self) -> list[PollSpec]:
        """One poll spec per stream seen; polls the directory once to find them.

        Returns:
            Poll specs named like the streams (``"CH6 T"``, ``"maxigauge CH1"``, ...).
        """
        self.poll()
        return [
            PollSpec(
                stream,
                self._latest[stream].unit,
                partial(self._read, stream),
                self.refresh_s,
                QUANTITIES.get(self._latest[stream].unit, "state"),
                fresh=partial(self._fresh, stream),
            )
            for stream in self.streams
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
