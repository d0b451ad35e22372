"""Export one stream and time range from the archive to CSV or HDF5.

CSV (scalar streams), one row per stored sample or downsampled bucket::

    t_ns,time_utc,value,min,max,count,quality
    1732470000000000000,2024-11-24T17:40:00.000000000Z,0.0123,0.0123,0.0123,1,OK

(a downsampled bucket has its mean as ``value`` and its start as time). A
reading the instrument flagged keeps the value it gave, and ``quality``
names its flags (``OVERRANGE|SENSOR_ERROR``); never filter on ``value`` alone.

HDF5: a scalar stream becomes datasets ``t_ns``, ``value``, ``min``,
``max``, ``count``, ``quality`` (the flags as an integer) at the root; a waveform stream becomes ``records``
(N, L), ``t0``, ``seq``, ``epoch`` copied from the archive's files. Root
attributes: ``stream``, ``units``, ``t0_ns``, ``t1_ns`` and, for records,
``dt``, ``scale``, ``offset``, ``presamples``.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daq.logger.sink import Store
from drivers.readings import describe_quality

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now_ns: int) -> int:
    """A time as ns since the epoch: integer ns, ISO 8601 (UTC unless zoned), ``now``, ``-2h``.

    Raises:
        ValueError: with the accepted forms, when ``text`` is none of them.
    """
    text = text.strip()
    if text == "now":
        return now_ns
    if re.fullmatch(r"-?\d{12,}", text):
        return int(text)
    rel = _RELATIVE.match(text)
    if rel:
        return now_ns - int(float(rel.group(1)) * _UNITS_S[rel.group(2)] * 1e9)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time {text!r}: use ns since the epoch, ISO 8601 "
                         "(2024-11-24T17:40:00Z), 'now' or a relative '-2h' / '-30m' / '-7d'"
                         ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _iso(t_ns: int) -> str:
    seconds, ns = divmod(int(t_ns), 10**9)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def _units(store: Store, stream: str) -> str:
    for info in store.streams():
        if info["stream"] == stream:
            return str(info["units"])
    raise ValueError(f"stream {stream!r} is not in the archive")


def export_csv(store: Store, stream: str, t0: int, t1: int, out: Path) -> int:
    """Write a scalar stream's samples in [t0, t1] as CSV; return the rows written."""
    _units(store, stream)
    if not stream.startswith("data/"):
        raise ValueError(f"{stream}: CSV export is for scalar (data/...) streams; "
                         "use --format hdf5 for waveform records")
    cols = store.samples(stream, t0, t1)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["t_ns", "time_utc", "value", "min", "max", "count", "quality"])
        for t, v, lo, hi, n, q in zip(cols["t"].tolist(), cols["value"].tolist(),
                                      cols["min"].tolist(), cols["max"].tolist(),
                                      cols["count"].tolist(), cols["quality"].tolist(),
                                      strict=True):
            writer.writerow([t, _iso(t), repr(v), repr(lo), repr(hi), n, describe_quality(q)])
    return len(cols["t"])


def export_hdf5(store: Store, stream: str, t0: int, t1: int, out: Path,
                storage_dir: Path) -> int:
    """Write a stream's samples (or waveform records) in [t0, t1] to a new HDF5 file."""
    units = _units(store, stream)
    with h5py.File(out, "w") as f:
        f.attrs.update({"stream": stream, "units": units, "t0_ns": t0, "t1_ns": t1,
                        "created_by": "qupdaq export"})
        if not stream.startswith("wave/"):
            cols = store.samples(stream, t0, t1)
            for name, key in (("t_ns", "t"), ("value", "value"), ("min", "min"), ("max", "max"),
                              ("count", "count"), ("quality", "quality")):
                f.create_dataset(name, data=cols[key])
            return len(cols["t"])
        return _copy_records(store.records(stream, t0, t1), stream, f, storage_dir)


def _copy_records(index: list[dict[str, Any]], stream: str, f: h5py.File,
                  storage_dir: Path) -> int:
    rows: list[np.ndarray | None] = [None] * len(index)
    attrs: dict[str, Any] = {}
    by_path: dict[str, list[int]] = {}
    for k, entry in enumerate(index):
        by_path.setdefault(entry["path"], []).append(k)
    for path, ks in by_path.items():
        ks = sorted(ks, key=lambda k: index[k]["row"])  # h5py reads increasing row lists
        with h5py.File(storage_dir / path, "r", locking=False) as src:
            group = src[stream]
            block = group["records"][[index[k]["row"] for k in ks]]
            attrs = {k: group.attrs[k] for k in ("dt", "scale", "offset", "presamples")}
        for k, row in zip(ks, block, strict=True):
            rows[k] = row
    found = [r for r in rows if r is not None]
    if found and len({r.shape for r in found}) > 1:
        raise ValueError(f"{stream}: records of different lengths in this range; "
                         "export a narrower range")
    data = np.stack(found) if found else np.empty((0, 0), np.int16)
    f.create_dataset("records", data=data)
    for name in ("t0", "seq", "epoch"):
        f.create_dataset(name, data=np.array([e[name] for e in index], dtype=np.int64))
    f.attrs.update(attrs)
    return len(found)
