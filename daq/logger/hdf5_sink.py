"""Waveform records in HDF5 files, readable with plain h5py by anyone.

Layout of one file (``<storage>/hdf5/YYYY-MM-DD/records-YYYYMMDDTHHMMSSZ-LOGGER[-run-ID].h5``)::

    /                                 attrs: created_by, logger, opened_ns, run (if any)
    /wave/<source>/<channel>/         one group per stream, e.g. /wave/tes1/squid_out
        records   (N, L) int16 ...    the raw samples, one row per record, chunked, resizable
        t0        (N,)  int64         time of each record's first sample, ns since the epoch (UTC)
        seq       (N,)  int64         the record's sequence number in its publisher session
        epoch     (N,)  int64         the publisher session
        quality   (N,)  int64         quality flags (0 = good)
        attrs: stream, units, dt (s between samples), scale, offset (volts = raw * scale +
               offset), presamples (samples before the trigger)

Reading one record in volts needs nothing of qupdaq::

    with h5py.File(path, "r") as f:
        g = f["wave/tes1/squid_out"]
        volts = g["records"][i] * g.attrs["scale"] + g.attrs["offset"]
        t = g.attrs["dt"] * (np.arange(g["records"].shape[1]) - g.attrs["presamples"])

Files are rotated every UTC hour (``hdf5_rotate: hour``) or only by size
(``hdf5_max_mb``), at the start and stop of a run (the run id is in the file
name), and when a stream's layout (record length, dtype, dt, scale, offset,
units) changes, so every group holds records of one layout.

Writing: the records of one stream in a batch are written with one
``resize`` and one write per dataset. They usually arrive as one contiguous
block of the reliable path's payload frame (the sender groups a batch by
stream), and are then written from that block as they are, without a copy
(:func:`contiguous_rows`). Chunks hold about :data:`CHUNK_BYTES` of records
(whole rows): every flush writes each chunk it touched whole, so a small chunk
keeps that cheap when many streams each add a few records per batch.

Consistency: the file is flushed (``H5Fflush``) after every batch, before
the SQL index commits, and only then acknowledged. Files use the default
(oldest) HDF5 format, without SWMR status flags, so a file open at a kill -9
still opens with plain h5py. It may then hold rows beyond what the index
committed (written, never acknowledged); when the logger starts again it
cuts every file it left open back to the committed rows, so a record is
never stored twice. The writer opens files without HDF5 file locking, so
analysts can read the current file while it grows (every flushed batch is
complete).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daq.logger.sink import Batch, RecordLocation, Sink, Store
from daq.messages import Kind, Message

log = logging.getLogger(__name__)

_ARRAYS = (("t0", "<i8"), ("seq", "<i8"), ("epoch", "<i8"), ("quality", "<i8"))
CHUNK_BYTES = 64 << 10
#: Rows per chunk of the per-record columns (t0, seq, epoch, quality).
COLUMN_CHUNK = 1024


def _buffer_owner(arr: np.ndarray) -> object | None:
    """The object whose buffer ``arr`` views (through views and memoryviews), if any."""
    base: object = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def contiguous_rows(arrays: list[np.ndarray]) -> np.ndarray | None:
    """``arrays`` as one 2-D read-only view when they lie back to back in one buffer.

    Records decoded from one reliable-path batch are views of its payload frame;
    consecutive records of a stream are adjacent there. None when they are not
    (the caller then stacks them, a copy).
    """
    first = arrays[0]
    owner = _buffer_owner(first)
    if owner is None or first.ndim != 1:
        return None
    row = first.nbytes
    start = first.ctypes.data
    for i, arr in enumerate(arrays):
        if (arr.ctypes.data != start + i * row or arr.dtype != first.dtype
                or arr.shape != first.shape or _buffer_owner(arr) is not owner):
            return None
    block = np.lib.stride_tricks.as_strided(first, shape=(len(arrays), first.size),
                                            strides=(row, first.itemsize), writeable=False)
    return block


@dataclass(frozen=True)
class _Layout:
    length: int
    dtype: str
    dt: float
    scale: float
    offset: float
    presamples: int
    units: str

    @classmethod
    def of(cls, msg: Message) -> _Layout:
        assert msg.data is not None
        return cls(int(msg.data.shape[-1]), msg.data.dtype.str, float(msg.meta.get("dt", 0.0)),
                   float(msg.meta.get("scale", 1.0)), float(msg.meta.get("offset", 0.0)),
                   int(msg.meta.get("presamples", 0)), msg.units)


class _OpenFile:
    """The file being written: its id in the index, h5py handle and per-stream row counts."""

    def __init__(self, file_id: int, rel: str, handle: h5py.File, key: tuple[Any, ...]) -> None:
        self.file_id = file_id
        self.rel = rel
        self.handle = handle
        self.key = key
        self.layouts: dict[str, _Layout] = {}
        self.rows: dict[str, int] = {}
        self.datasets: dict[str, tuple[h5py.Dataset, ...]] = {}


class Hdf5Sink(Sink):
    """Writes ``wave`` messages of each batch into the current HDF5 file (see module docstring).

    Args:
        directory: the logger's storage directory (files go under ``hdf5/``).
        store: the SQL store holding the file index (``files``, ``records``).
        origin: this logger's name in the file index.
        rotate: ``"hour"`` or ``"size"``.
        max_bytes: start a new file once the current one is this big.
    """

    def __init__(self, directory: str | Path, store: Store, *, origin: str,
                 rotate: str = "hour", max_bytes: int = 1 << 30) -> None:
        self.directory = Path(directory)
        self.store = store
        self.origin = origin
        self.rotate = rotate
        self.max_bytes = max_bytes
        self._file: _OpenFile | None = None
        self._run: str | None = None
        self._needs_recovery = False

    # ---- start-up ---------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Cut files left open by a crash or a failed write back to the committed rows.

        Returns the relative paths recovered. A file that cannot be opened is
        logged and marked closed (its committed records stay indexed).
        """
        self._run = self.store.current_run()
        done = []
        for file_id, rel in self.store.open_files(self.origin):
            path = self.directory / rel
            committed = self.store.committed_rows(file_id)
            try:
                if path.exists():
                    with h5py.File(path, "a", locking=False) as handle:
                        _truncate(handle, committed)
                done.append(rel)
            except OSError as exc:
                if committed:
                    log.error("record file %s cannot be recovered (%s); its committed "
                              "records stay indexed", path, exc)
                else:  # nothing in it was ever acknowledged: a husk of a failed write
                    log.warning("record file %s held no committed record and does not open "
                                "(%s): removed", path, exc)
                    path.unlink(missing_ok=True)
            self.store.close_file(file_id, time.time_ns())
        return done

    # ---- writing ----------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> None:
        """Append the batch's records (grouped by stream) to the current file."""
        pending: dict[str, list[tuple[int, Message]]] = {}
        layouts: dict[str, _Layout] = {}
        for i, msg in enumerate(batch.messages):
            if msg.kind is Kind.RUN:
                self._flush_pending(pending, layouts, batch)
                self._on_run(msg)
            elif msg.kind is Kind.WAVE:
                stream = msg.stream
                layout = _Layout.of(msg)
                known = self._file.layouts.get(stream) if self._file is not None else None
                if layouts.get(stream, layout) != layout or (known or layout) != layout:
                    self._flush_pending(pending, layouts, batch)
                    self._close_current()
                pending.setdefault(stream, []).append((i, msg))
                layouts[stream] = layout
        self._flush_pending(pending, layouts, batch)

    def _flush_pending(self, pending: dict[str, list[tuple[int, Message]]],
                       layouts: dict[str, _Layout], batch: Batch) -> None:
        if not pending:
            return
        self._ensure_file()
        f = self._file
        assert f is not None
        for stream, items in pending.items():
            f.layouts.setdefault(stream, layouts[stream])
            datasets = f.datasets.get(stream)
            if datasets is None:
                datasets = f.datasets[stream] = self._datasets(f, stream, items[0][1])
            n0 = f.rows.get(stream)
            if n0 is None:
                n0 = int(datasets[0].shape[0])
            n = len(items)
            arrays = [m.data for _, m in items]
            records = contiguous_rows(arrays)  # type: ignore[arg-type]
            if records is None:
                records = np.stack(arrays)  # type: ignore[arg-type]
            columns = np.empty((4, n), dtype=np.int64)
            columns[0] = [int(m.meta.get("t0", m.t)) for _, m in items]
            columns[1] = [m.seq for _, m in items]
            columns[2] = [m.epoch for _, m in items]
            columns[3] = [m.quality for _, m in items]
            # HDF5's own calls (extend, select, write): h5py's slicing costs more per call
            # than the write itself, for every stream of every batch.
            _append(datasets[0], n0, records)
            for k in range(4):
                _append(datasets[k + 1], n0, columns[k])
            f.rows[stream] = n0 + n
            for k, (i, _msg) in enumerate(items):
                batch.locations[i] = RecordLocation(f.file_id, n0 + k)
        pending.clear()
        layouts.clear()

    def _datasets(self, f: _OpenFile, stream: str, msg: Message) -> tuple[h5py.Dataset, ...]:
        """The stream's datasets (records, then the columns of _ARRAYS), made if new."""
        group = self._group(f, stream, msg)
        return (group["records"], *(group[name] for name, _ in _ARRAYS))

    def _group(self, f: _OpenFile, stream: str, msg: Message) -> h5py.Group:
        if stream in f.handle:
            return f.handle[stream]
        layout = _Layout.of(msg)
        group = f.handle.create_group(stream)
        assert msg.data is not None
        itemsize = msg.data.dtype.itemsize
        rows_per_chunk = max(1, min(4096, CHUNK_BYTES // max(1, layout.length * itemsize)))
        group.create_dataset("records", shape=(0, layout.length),
                             maxshape=(None, layout.length), dtype=msg.data.dtype,
                             chunks=(rows_per_chunk, layout.length))
        for name, dtype in _ARRAYS:
            group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                 chunks=(COLUMN_CHUNK,))
        group.attrs.update({"stream": stream, "units": layout.units, "dt": layout.dt,
                            "scale": layout.scale, "offset": layout.offset,
                            "presamples": layout.presamples})
        f.rows[stream] = 0
        return group

    def _on_run(self, msg: Message) -> None:
        run = msg.meta.get("run", msg.meta.get("run_id"))
        state = str(msg.meta.get("state", "")).lower()
        if run is None:
            return
        if state in ("start", "started"):
            self._run = str(run)
        elif state in ("stop", "stopped", "end", "aborted") and self._run == str(run):
            self._run = None
        else:
            return
        self._close_current()  # the next record opens a file for the new run state

    def _key(self) -> tuple[Any, ...]:
        now = dt.datetime.now(dt.UTC)
        hour = now.strftime("%Y%m%dT%H") if self.rotate == "hour" else ""
        return (hour, self._run)

    def _ensure_file(self) -> None:
        if self._needs_recovery:
            # Files a failed write left behind are cut back before anything new is written,
            # so a resent record can never sit in two files.
            self.recover()
            self._needs_recovery = False
        key = self._key()
        current = self._file
        if current is not None:
            if current.key == key and self._size(current) < self.max_bytes:
                return
            self._close_current()
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        name = (f"records-{stamp}-{_safe(self.origin)}"
                 + (f"-run-{_safe(self._run)}" if self._run else ""))
        rel_dir = Path("hdf5") / now.strftime("%Y-%m-%d")
        (self.directory / rel_dir).mkdir(parents=True, exist_ok=True)
        rel = str(rel_dir / f"{name}.h5")
        n = 1
        while (self.directory / rel).exists() or self.store.file_for(rel) is not None:
            n += 1
            rel = str(rel_dir / f"{name}-{n}.h5")
        file_id = self.store.register_file(rel, self.origin, time.time_ns(), self._run)
        try:
            handle = h5py.File(self.directory / rel, "w", locking=False)
            handle.attrs.update({"created_by": "qupdaq logger", "logger": self.origin,
                                 "opened_ns": time.time_ns(), "run": self._run or ""})
            handle.flush()
        except BaseException:
            # A file that could not even be created holds nothing: leave no husk behind.
            (self.directory / rel).unlink(missing_ok=True)
            raise
        self._file = _OpenFile(file_id, rel, handle, key)

    @staticmethod
    def _size(f: _OpenFile) -> int:
        try:
            return int(f.handle.id.get_filesize())
        except Exception:  # a handle in trouble: rotate
            return 1 << 62

    def _close_current(self) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        f.handle.close()
        self.store.close_file(f.file_id, time.time_ns())

    def commit(self) -> None:
        """Flush the current file to disk (H5Fflush)."""
        if self._file is not None:
            self._file.handle.flush()

    def abort(self) -> None:
        """Drop the open file; it is cut back to the committed rows on the next open."""
        f, self._file = self._file, None
        self._needs_recovery = True
        if f is None:
            return
        try:
            f.handle.close()
        except Exception as exc:  # the failed write may have left it unclosable
            log.warning("closing %s after a failed write: %s", f.rel, exc)

    def close(self) -> None:
        """Close the current file and mark it closed in the index."""
        self._close_current()


def _append(dataset: h5py.Dataset, n0: int, rows: np.ndarray) -> None:
    """Write ``rows`` at row ``n0`` of ``dataset``, extending it to ``n0 + len(rows)``."""
    n = rows.shape[0]
    shape = (n0 + n, *rows.shape[1:])
    dsid = dataset.id
    dsid.set_extent(shape)
    file_space = dsid.get_space()
    file_space.select_hyperslab((n0, *(0 for _ in rows.shape[1:])), rows.shape)
    memory_space = h5py.h5s.create_simple(rows.shape)
    if not rows.flags.c_contiguous:
        rows = np.ascontiguousarray(rows)
    dsid.write(memory_space, file_space, rows)


def _truncate(handle: h5py.File, committed: dict[str, int]) -> None:
    """Resize every stream group's datasets to its committed row count (0 when unknown)."""
    streams: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "records" in obj and "seq" in obj:
            streams.append(name)

    handle.visititems(visit)
    for stream in streams:
        rows = committed.get(stream, 0)
        group = handle[stream]
        for name in ("records", *(n for n, _ in _ARRAYS)):
            if group[name].shape[0] > rows:
                group[name].resize(rows, axis=0)


def _safe(text: str | None) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))[:80]
