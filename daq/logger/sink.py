"""The one small interface every storage sink implements, and the batch it is handed.

A write cycle of the logger is::

    for sink in sinks:            # record sinks (HDF5) first, the SQL store last
        sink.write_batch(batch)
    for sink in sinks:
        sink.commit()             # durable on return: only now is anything acknowledged

and on any exception ``abort()`` on every sink, after which nothing of the
batch is stored (the SQL store rolls back, the HDF5 sink drops what its
files hold beyond the committed index). The SQL store commits last because
it is the commit log: a waveform record counts as stored only once its row
in the SQL ``records`` index is committed.

:class:`Store` adds what the service and the history endpoint ask of the SQL
store (progress for deduplication, the file index, queries); the SQLite and
PostgreSQL stores share one implementation (:mod:`daq.logger.sqlstore`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daq.bus.gaps import Gap
from daq.messages import Message


@dataclass
class Progress:
    """How far one stream of one publisher session is accounted for in the store.

    Attributes:
        stream: ``kind/source/channel``.
        epoch: publisher session.
        pub: publisher name.
        contig: every seq up to this one is stored or recorded as a gap (-1: none yet).
        announced: the newest seq the publisher's heartbeats announced (-1: none).
        closed: the session was superseded, closed by its sender or given up; its gaps
            are recorded.
    """

    stream: str
    epoch: int
    pub: str
    contig: int = -1
    announced: int = -1
    closed: bool = False


@dataclass(frozen=True)
class PublisherRecord:
    """Who owns a publisher name (the logger's ``publishers`` table).

    Attributes:
        pub: publisher name.
        identity: ``key:<CURVE public key>`` or ``instance:<instance id>``.
        epoch: the owner's current session (-1: the owner stopped cleanly and released
            the name).
    """

    pub: str
    identity: str
    epoch: int


@dataclass(frozen=True)
class RecordLocation:
    """Where a waveform record went: file (id in the ``files`` index) and row in its dataset."""

    file_id: int
    row: int


@dataclass(frozen=True)
class RunIndexRow:
    """One measurement run in the ``run_index`` table (written by the run sink).

    Attributes:
        run: the run id.
        procedure: what it measured (``iv``, ``impedance``, ...).
        recipe: the recipe's name.
        sample: what was measured.
        operator: who ran it.
        status: running, completed, aborted or failed.
        t_start: start, ns since the epoch.
        t_stop: stop (None while running).
        path: its HDF5 file, relative to the storage directory.
        points_json: points per stream, JSON ``{stream: n}``.
        pauses: how often it was suspended.
        summary_json: the result's top-level numbers, JSON.
    """

    run: str
    procedure: str
    recipe: str
    sample: str
    operator: str
    status: str
    t_start: int
    t_stop: int | None
    path: str
    points_json: str
    pauses: int
    summary_json: str


@dataclass
class Batch:
    """What one write cycle stores.

    Attributes:
        messages: accepted messages (``data``, ``wave``, ``status``, ``alarm``,
            ``audit``, ``run``) in arrival order, each new to the store.
        locations: for each ``wave`` message (by index in ``messages``), where the
            record sink put it; filled by the record sink before the store writes.
        gaps: ranges that will never arrive, with the reason (``superseded``, ``grace``,
            ``lost before spooling`` or a sender's own, see :mod:`daq.logger.ledger`).
        progress: the new progress rows of every stream this batch touched.
        publishers: owners of publisher names that changed (identity, session).
        run_index: measurement runs this batch changed; filled by the run sink.
    """

    messages: list[Message] = field(default_factory=list)
    locations: dict[int, RecordLocation] = field(default_factory=dict)
    gaps: list[tuple[Gap, str]] = field(default_factory=list)
    progress: list[Progress] = field(default_factory=list)
    publishers: list[PublisherRecord] = field(default_factory=list)
    run_index: list[RunIndexRow] = field(default_factory=list)


@dataclass(frozen=True)
class Series:
    """Plot-ready history of one scalar stream.

    Attributes:
        times: sample times, ns since the epoch (int64), ascending.
        values: values (float64), same length.
        raw_count: how many stored samples (and downsampled buckets) the range holds.
        decimated: True when min/max decimation reduced the points.
    """

    times: np.ndarray
    values: np.ndarray
    raw_count: int
    decimated: bool


class Sink(abc.ABC):
    """A storage sink: takes batches, makes them durable, closes."""

    @abc.abstractmethod
    def write_batch(self, batch: Batch) -> None:
        """Write what this sink stores of ``batch`` (not yet durable)."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make everything written since the last commit durable (fsync/flush)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Forget everything written since the last commit (after a failed cycle)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Commit nothing further; release files and connections."""


class Store(Sink):
    """The SQL store (SQLite or PostgreSQL): samples, events, gaps, progress and the index."""

    # ---- the file index (the HDF5 sink's catalogue) -----------------------------------------

    @abc.abstractmethod
    def register_file(self, path: str, origin: str, opened_ns: int, run: str | None) -> int:
        """Enter a new record file in the index (committed at once); return its id."""

    @abc.abstractmethod
    def close_file(self, file_id: int, closed_ns: int) -> None:
        """Mark a record file closed (committed at once)."""

    @abc.abstractmethod
    def file_for(self, path: str) -> int | None:
        """The id of an indexed record file, by its relative path."""

    @abc.abstractmethod
    def open_files(self, origin: str) -> list[tuple[int, str]]:
        """(id, path) of the files ``origin`` left open (a crash, or a failed write)."""

    @abc.abstractmethod
    def committed_rows(self, file_id: int) -> dict[str, int]:
        """Per stream, how many record rows of this file the committed index holds."""

    # ---- progress and deduplication ---------------------------------------------------------

    @abc.abstractmethod
    def load_progress(self, stream: str, epoch: int) -> Progress | None:
        """The stored progress row of one stream and session, if any."""

    @abc.abstractmethod
    def stored_seqs_above(self, stream: str, epoch: int, seq: int) -> set[int]:
        """Seqs of this stream and session stored beyond ``seq`` (arrived out of order)."""

    @abc.abstractmethod
    def gap_spans_above(self, stream: str, epoch: int, seq: int) -> list[tuple[int, int]]:
        """Recorded gaps of this stream and session that end beyond ``seq`` (first, last)."""

    @abc.abstractmethod
    def open_sessions(self, pub: str) -> list[Progress]:
        """Progress rows of ``pub``'s sessions not yet closed."""

    @abc.abstractmethod
    def load_publishers(self) -> list[PublisherRecord]:
        """Every publisher name's owner."""

    @abc.abstractmethod
    def epoch_progress(self, epoch: int) -> dict[str, int]:
        """``{stream: contig}`` of every stream stored for session ``epoch``."""

    @abc.abstractmethod
    def current_run(self) -> str | None:
        """The run started and not yet stopped, if any."""

    # ---- queries ----------------------------------------------------------------------------

    @abc.abstractmethod
    def series(self, stream: str, t0: int, t1: int, max_points: int) -> Series:
        """Scalar history in [t0, t1] ns, min/max decimated to at most ``max_points``; a
        flagged reading is NaN (a gap), never a number on a plot."""

    @abc.abstractmethod
    def samples(self, stream: str, t0: int, t1: int) -> dict[str, np.ndarray]:
        """Every stored sample and downsampled bucket in [t0, t1] (export).

        Returns arrays ``t``, ``value``, ``min``, ``max``, ``count``, ``quality``
        sorted by time; a raw sample has min = max = value, count 1 and its
        flags (a flagged reading keeps the value the instrument gave), a
        downsampled bucket its mean as value and quality 0.
        """

    @abc.abstractmethod
    def streams(self) -> list[dict[str, Any]]:
        """Every stream the store knows, with kind and units."""

    @abc.abstractmethod
    def events(self, *, stream: str | None = None, kind: str | None = None,
               t0: int | None = None, t1: int | None = None,
               limit: int = 1000, prefix: str | None = None,
               latest: bool = False) -> list[dict[str, Any]]:
        """Status, alarm, audit and run events, oldest first (``prefix``: streams under it;
        ``latest``: only each stream's newest)."""

    @abc.abstractmethod
    def gaps(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Recorded gaps: stream, epoch, first, last, reason."""

    @abc.abstractmethod
    def runs(self) -> list[dict[str, Any]]:
        """Every run: id, stream, start and stop times, metadata."""

    @abc.abstractmethod
    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run with its events, record files and the streams sampled during it."""

    @abc.abstractmethod
    def records(self, stream: str, t0: int, t1: int) -> list[dict[str, Any]]:
        """Index entries of the waveform records of ``stream`` in [t0, t1]."""

    @abc.abstractmethod
    def run_index(self, *, procedure: str | None = None, sample: str | None = None,
                  status: str | None = None, t0: int | None = None, t1: int | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        """Measurement runs (``run_index`` rows) started in [t0, t1], oldest first."""

    @abc.abstractmethod
    def run_entry(self, run: str) -> dict[str, Any] | None:
        """One measurement run's ``run_index`` row (None: unknown run)."""

    @abc.abstractmethod
    def downsample(self, stream: str, before_ns: int, bucket_ns: int) -> int:
        """Replace samples older than ``before_ns`` by min/mean/max buckets; return rows removed."""
