"""Measurement runs in the archive: one HDF5 file per run, and a row per run in the index.

A run process (:mod:`daq.runs`) sends its documents (:mod:`daq.runs.documents`)
on the reliable path like any publisher; this sink recognises them (source =
run id, ``meta["doc"]``) and writes each run into its own file::

    <storage>/runs/YYYY-MM-DD/<run id>.h5
    /                       attrs: format (qupdaq-run-1), run_id, procedure, recipe_name,
                            sample, operator, status, t_start_ns, t_stop_ns,
                            start (the start document, JSON), stop (JSON), result (JSON)
    /attachments/<name>     the recipe and lab config as written (text, in parts)
    /streams/<name>/        a point stream: i, t (int64 ns) and one float64 dataset per
                            field (attr units); group attrs kind="points"
    /streams/<name>/        a record stream: records (N, L) raw samples, i, t0, quality,
                            origin_epoch, origin_seq, one float64 dataset per tag;
                            attrs kind="records", dt, scale, offset, presamples, units,
                            origin (the daemon stream the records were copied from)
    /pauses/                i, t_pause, t_resume (-1: never resumed), condition, reason, step
    /plots/<name>           the PNG's bytes (uint8); attrs title, content_type

Everything a reader needs is in the file: :func:`daq.runs.open_run` reopens
it and redoes the analysis. Plain h5py reads it too.

Idempotent by construction: every point, record and pause carries its index
in its stream, and a message whose index is already in the file is skipped.
So a batch that failed after the file was written (and is resent), or rows
a crash left in a file beyond what the store committed, never appear twice.
Attributes (start, stop, result) and plots are simply overwritten.

The index row (:class:`~daq.logger.sink.RunIndexRow`: procedure, recipe,
sample, operator, status, start and stop, the file, points per stream,
pauses, the result's numbers) goes into ``batch.run_index`` and is written
by the SQL store in the batch's own transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daq.logger.sink import Batch, RunIndexRow, Sink, Store
from daq.messages import Message
from daq.runs.documents import FILE_FORMAT, DocType, parse

log = logging.getLogger(__name__)

#: Files kept open at most (runs that are still going; older ones are reopened on demand).
MAX_OPEN = 16
_STR = h5py.string_dtype()
_SUMMARY_KEYS = 40


@dataclass
class _RunFile:
    """One run's open file and what its index row says."""

    run_id: str
    rel: str
    handle: h5py.File
    procedure: str = ""
    recipe: str = ""
    sample: str = ""
    operator: str = ""
    status: str = "running"
    t_start: int = 0
    t_stop: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    def row(self) -> RunIndexRow:
        points = {}
        streams = self.handle.get("streams")
        if streams is not None:
            for name, group in streams.items():
                points[name] = int(group["i"].shape[0])
        pauses = self.handle.get("pauses")
        return RunIndexRow(
            run=self.run_id, procedure=self.procedure, recipe=self.recipe, sample=self.sample,
            operator=self.operator, status=self.status, t_start=self.t_start,
            t_stop=self.t_stop, path=self.rel,
            points_json=json.dumps(points, sort_keys=True),
            pauses=int(pauses["i"].shape[0]) if pauses is not None else 0,
            summary_json=json.dumps(self.summary, sort_keys=True))


class RunSink(Sink):
    """Writes run documents into one HDF5 file per run (see the module docstring).

    Args:
        directory: the logger's storage directory (files go under ``runs/``).
        store: the SQL store (to find a run's file again after a restart).
    """

    def __init__(self, directory: str | Path, store: Store) -> None:
        self.directory = Path(directory)
        self.store = store
        self._open: dict[str, _RunFile] = {}

    # ---- the cycle ------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> None:
        """Write the batch's run documents; add an index row per run touched."""
        touched: dict[str, _RunFile] = {}
        for msg in batch.messages:
            parsed = parse(msg)
            if parsed is None or parsed.doc is DocType.PROGRESS:
                continue
            run = self._file(parsed.run_id, msg, parsed.doc)
            self._write(run, parsed.doc, msg)
            touched[run.run_id] = run
        for run in touched.values():
            batch.run_index.append(run.row())
            if run.status != "running":
                self._close(run.run_id)  # the run is over: its file is complete

    def commit(self) -> None:
        """Flush every open run file."""
        for run in self._open.values():
            run.handle.flush()

    def abort(self) -> None:
        """Close every file: a resent batch reopens them (and skips what they already hold)."""
        for run_id in list(self._open):
            try:
                self._close(run_id)
            except Exception as exc:  # the failed write may have left it unclosable
                log.warning("closing the file of run %s after a failed write: %s", run_id, exc)
                self._open.pop(run_id, None)

    def close(self) -> None:
        """Close every open run file."""
        self.abort()

    # ---- files ----------------------------------------------------------------------------

    def _file(self, run_id: str, msg: Message, doc: DocType) -> _RunFile:
        run = self._open.get(run_id)
        if run is not None:
            return run
        entry = self.store.run_entry(run_id)
        if entry is not None:
            rel = str(entry["path"])
        else:
            t_start = msg.t
            if doc is DocType.START:
                start = msg.meta.get("start") or {}
                t_start = int(start.get("t_start_ns", msg.t))
            day = dt.datetime.fromtimestamp(t_start / 1e9, dt.UTC).strftime("%Y-%m-%d")
            rel = str(Path("runs") / day / f"{_safe(run_id)}.h5")
        path = self.directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        exists = path.exists()
        handle = h5py.File(path, "a", locking=False)
        run = _RunFile(run_id, rel, handle)
        if exists:
            attrs = handle.attrs
            run.procedure = str(attrs.get("procedure", ""))
            run.recipe = str(attrs.get("recipe_name", ""))
            run.sample = str(attrs.get("sample", ""))
            run.operator = str(attrs.get("operator", ""))
            run.status = str(attrs.get("status", "running"))
            run.t_start = int(attrs.get("t_start_ns", msg.t))
            stop = int(attrs.get("t_stop_ns", -1))
            run.t_stop = None if stop < 0 else stop
            if "result" in attrs:
                run.summary = _summary(json.loads(str(attrs["result"])))
        else:
            handle.attrs.update({"format": FILE_FORMAT, "created_by": "qupdaq logger",
                                 "run_id": run_id, "status": "running",
                                 "t_start_ns": msg.t, "t_stop_ns": -1})
            run.t_start = msg.t
        if len(self._open) >= MAX_OPEN:
            self._close(next(iter(self._open)))
        self._open[run_id] = run
        return run

    def _close(self, run_id: str) -> None:
        run = self._open.pop(run_id, None)
        if run is not None:
            run.handle.close()

    # ---- documents ------------------------------------------------------------------------

    def _write(self, run: _RunFile, doc: DocType, msg: Message) -> None:
        meta = msg.meta
        h = run.handle
        if doc is DocType.START:
            start = meta.get("start") or {}
            run.procedure = str(start.get("procedure", ""))
            run.recipe = str(start.get("recipe_name", ""))
            run.sample = str(start.get("sample", ""))
            run.operator = str(start.get("operator", ""))
            run.t_start = int(start.get("t_start_ns", msg.t))
            h.attrs.update({"procedure": run.procedure, "recipe_name": run.recipe,
                            "sample": run.sample, "operator": run.operator,
                            "t_start_ns": run.t_start,
                            "start": json.dumps(start, sort_keys=True)})
        elif doc is DocType.ATTACH:
            group = h.require_group("attachments")
            name = _safe(str(meta.get("name", "text")))
            parts = int(meta.get("parts", 1))
            if name not in group:
                group.create_dataset(name, shape=(parts,), dtype=_STR)
            ds = group[name]
            part = int(meta.get("part", 0))
            if 0 <= part < ds.shape[0]:
                ds[part] = str(meta.get("text", ""))
        elif doc is DocType.POINT:
            self._point(h, meta)
        elif doc is DocType.RECORD:
            self._record(h, msg)
        elif doc is DocType.PAUSE:
            self._pause(h, meta)
        elif doc is DocType.RESUME:
            pauses = h.get("pauses")
            i = int(meta.get("i", -1))
            if pauses is not None and 0 <= i < pauses["t_resume"].shape[0]:
                pauses["t_resume"][i] = int(meta.get("t", msg.t))
        elif doc is DocType.RESULT:
            result = meta.get("result") or {}
            h.attrs["result"] = json.dumps(result, sort_keys=True)
            run.summary = _summary(result)
        elif doc is DocType.PLOT:
            group = h.require_group("plots")
            name = _safe(str(meta.get("name", msg.channel)))
            if name in group:
                del group[name]
            assert msg.data is not None
            ds = group.create_dataset(name, data=np.asarray(msg.data, dtype=np.uint8))
            ds.attrs.update({"title": str(meta.get("title", "")),
                             "content_type": str(meta.get("content_type", "image/png"))})
        elif doc is DocType.STOP:
            stop = meta.get("stop") or {}
            run.status = str(stop.get("status", "completed"))
            run.t_stop = int(stop.get("t_stop_ns", msg.t))
            h.attrs.update({"status": run.status, "t_stop_ns": run.t_stop,
                            "stop": json.dumps(stop, sort_keys=True)})

    @staticmethod
    def _point(h: h5py.File, meta: dict[str, Any]) -> None:
        stream = _safe(str(meta["stream"]))
        group = h.require_group("streams").require_group(stream)
        values = meta.get("values") or {}
        units = meta.get("units") or {}
        if "i" not in group:
            group.attrs["kind"] = "points"
            _column(group, "i", np.int64)
            _column(group, "t", np.int64)
        rows = int(group["i"].shape[0])
        i = int(meta["i"])
        if i < rows:
            return  # already written (a resent batch)
        for name in values:
            key = _safe(str(name))
            if key not in group:
                _column(group, key, np.float64, fill_to=rows)
                group[key].attrs["units"] = str(units.get(name, ""))
        for key in group:
            ds = group[key]
            ds.resize(rows + 1, axis=0)
        group["i"][rows] = i
        group["t"][rows] = int(meta.get("t", 0))
        wanted = {_safe(str(k)): v for k, v in values.items()}
        for key in group:
            if key in ("i", "t"):
                continue
            value = wanted.get(key)
            group[key][rows] = np.nan if value is None else float(value)

    @staticmethod
    def _record(h: h5py.File, msg: Message) -> None:
        meta = msg.meta
        assert msg.data is not None
        stream = _safe(str(meta["stream"]))
        group = h.require_group("streams").require_group(stream)
        data = np.asarray(msg.data)
        layout = {"dt": float(meta["dt"]), "scale": float(meta["scale"]),
                  "offset": float(meta["offset"]), "presamples": int(meta.get("presamples", 0)),
                  "units": msg.units}
        if "records" not in group:
            origin = meta.get("origin") or {}
            group.attrs.update({"kind": "records", **layout,
                                "origin": str(origin.get("stream", ""))})
            group.create_dataset("records", shape=(0, data.size), maxshape=(None, data.size),
                                 dtype=data.dtype, chunks=(max(1, min(256, (1 << 20)
                                                                      // max(1, data.nbytes))),
                                                           data.size))
            for name in ("i", "t0", "quality", "origin_epoch", "origin_seq"):
                _column(group, name, np.int64)
        elif (group["records"].shape[1] != data.size or group["records"].dtype != data.dtype
              or any(group.attrs[k] != v for k, v in layout.items())):
            raise ValueError(f"run {meta['run']}: record {meta.get('i')} of stream {stream} "
                             f"does not match the stream's layout (length, dtype, dt, scale, "
                             f"offset, presamples, units)")
        rows = int(group["i"].shape[0])
        i = int(meta["i"])
        if i < rows:
            return
        tags = meta.get("tags") or {}
        tag_units = meta.get("tag_units") or {}
        for name in tags:
            key = "tag_" + _safe(str(name))
            if key not in group:
                _column(group, key, np.float64, fill_to=rows)
                group[key].attrs["units"] = str(tag_units.get(name, ""))
        origin = meta.get("origin") or {}
        group["records"].resize(rows + 1, axis=0)
        group["records"][rows] = data
        columns = {"i": i, "t0": int(meta.get("t0", msg.t)), "quality": msg.quality,
                   "origin_epoch": int(origin.get("epoch", 0)),
                   "origin_seq": int(origin.get("seq", -1))}
        wanted = {"tag_" + _safe(str(k)): v for k, v in tags.items()}
        for key in group:
            if key == "records":
                continue
            ds = group[key]
            ds.resize(rows + 1, axis=0)
            if key in columns:
                ds[rows] = columns[key]
            else:
                value = wanted.get(key)
                ds[rows] = np.nan if value is None else float(value)

    @staticmethod
    def _pause(h: h5py.File, meta: dict[str, Any]) -> None:
        group = h.require_group("pauses")
        if "i" not in group:
            for name in ("i", "t_pause", "t_resume"):
                _column(group, name, np.int64)
            for name in ("condition", "reason", "step"):
                _column(group, name, _STR)
        rows = int(group["i"].shape[0])
        i = int(meta.get("i", rows))
        if i < rows:
            return
        for key in group:
            group[key].resize(rows + 1, axis=0)
        group["i"][rows] = i
        group["t_pause"][rows] = int(meta.get("t", 0))
        group["t_resume"][rows] = -1
        for name in ("condition", "reason", "step"):
            group[name][rows] = str(meta.get(name, ""))[:2000]


def _column(group: h5py.Group, name: str, dtype: Any, fill_to: int = 0) -> None:
    ds = group.create_dataset(name, shape=(fill_to,), maxshape=(None,), dtype=dtype,
                              chunks=(1024,))
    if fill_to and np.dtype(dtype).kind == "f":
        ds[:] = np.nan


def _summary(result: Any) -> dict[str, Any]:
    """The result's top-level numbers and short texts (for the index row)."""
    if not isinstance(result, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, bool | int | float) or value is None or (
                isinstance(value, str) and len(value) < 200):
            out[str(key)] = value
        if len(out) >= _SUMMARY_KEYS:
            break
    return out


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100] or "_"
