"""A run's measured data in memory: point streams and record streams, as analysis reads them.

The engine builds a :class:`RunData` from exactly what it sends (so the live
analysis and a re-analysis from the run's file start from the same numbers);
:func:`daq.runs.runfile.open_run` builds one from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PointStream:
    """One point stream: a column per field, in point order.

    Attributes:
        fields: field name -> values (float64; NaN where a point lacked it).
        units: field name -> unit.
        t_ns: each point's time, ns since the epoch.
    """

    fields: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    t_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.t_ns.size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]


@dataclass
class RecordStream:
    """One record stream: raw samples with their scaling, and per-record tags.

    Attributes:
        raw: (N, L) raw samples.
        scale: volts per raw count.
        offset: volts at raw 0.
        dt_s: sample interval, s.
        presamples: samples before the trigger.
        units: the samples' unit.
        tags: tag name -> one value per record (float64).
        tag_units: tag name -> unit.
        t0_ns: time of each record's first sample.
    """

    raw: np.ndarray
    scale: float
    offset: float
    dt_s: float
    presamples: int
    units: str = "V"
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    tag_units: dict[str, str] = field(default_factory=dict)
    t0_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def volts(self, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """The records (or ``rows`` of them) in volts, float64."""
        raw = self.raw if rows is None else self.raw[rows]
        return raw.astype(np.float64) * self.scale + self.offset

    def where(self, tag: str, value: float) -> np.ndarray:
        """Indices of the records whose ``tag`` equals ``value``."""
        return np.nonzero(self.tags[tag] == value)[0]


@dataclass
class RunData:
    """Every stream of a run.

    Attributes:
        points: point streams by name.
        records: record streams by name.
    """

    points: dict[str, PointStream] = field(default_factory=dict)
    records: dict[str, RecordStream] = field(default_factory=dict)

    def add_point(self, stream: str, t_ns: int, values: dict[str, float | None],
                  units: dict[str, str]) -> None:
        """Append one point (a field new to the stream is NaN for the earlier points)."""
        ps = self.points.setdefault(stream, PointStream())
        n = len(ps)
        for name in values:
            if name not in ps.fields:
                ps.fields[name] = np.full(n, np.nan)
                ps.units[name] = units.get(name, "")
        for name, column in ps.fields.items():
            value = values.get(name)
            ps.fields[name] = np.append(column, np.nan if value is None else float(value))
        ps.t_ns = np.append(ps.t_ns, np.int64(t_ns))

    def add_record(self, stream: str, raw: np.ndarray, *, scale: float, offset: float,
                   dt_s: float, presamples: int, units: str, t0_ns: int,
                   tags: dict[str, float | None], tag_units: dict[str, str]) -> None:
        """Append one record (its layout must match the stream's)."""
        rs = self.records.get(stream)
        row = np.asarray(raw)[np.newaxis, :]
        if rs is None:
            rs = RecordStream(np.array(row), scale, offset, dt_s, presamples, units)
            self.records[stream] = rs
            n = 0
        else:
            if (rs.raw.shape[1] != row.shape[1] or rs.scale != scale or rs.offset != offset
                    or rs.dt_s != dt_s or rs.presamples != presamples):
                raise ValueError(f"record stream {stream}: a record of another layout")
            n = len(rs)
            rs.raw = np.concatenate([rs.raw, row])
        for name in tags:
            if name not in rs.tags:
                rs.tags[name] = np.full(n, np.nan)
                rs.tag_units[name] = tag_units.get(name, "")
        for name, column in rs.tags.items():
            value = tags.get(name)
            rs.tags[name] = np.append(column, np.nan if value is None else float(value))
        rs.t0_ns = np.append(rs.t0_ns, np.int64(t0_ns))

    def counts(self) -> dict[str, int]:
        """Points (or records) per stream."""
        out = {name: len(s) for name, s in self.points.items()}
        out.update({name: len(s) for name, s in self.records.items()})
        return out
