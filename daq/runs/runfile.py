"""A stored run, reopened from its HDF5 file alone, and its analysis redone.

::

    from daq.runs import open_run, reanalyze

    run = open_run("data/runs/2025-01-31/20250131T101500-iv-tes1-3f2a.h5")
    run.start.procedure, run.start.sample, run.stop.status, run.result["r_n_ohm"]
    run.data.points["iv"]["v_out_v"]          # the streams, as measured
    run.plots["iv"]                          # PNG bytes
    again = reanalyze(run)                   # the procedure's own analysis on the file's data
    again.result == run.result               # the same numbers

The parameters and the detector come from the start document (stored as the
recipe wrote them), the data from the streams, so nothing outside the file
is needed; the file's layout is documented in :mod:`daq.logger.run_sink`.

Interface: :func:`open_run` -> :class:`RunFile`, :func:`reanalyze` ->
:class:`daq.runs.procedures.Analysis`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daq.config_schema import from_mapping
from daq.runs.data import PointStream, RecordStream, RunData
from daq.runs.documents import FILE_FORMAT, JsonObject, Pause, StartDocument, StopDocument
from daq.runs.params import Detector
from daq.runs.recipe import ProcedureName, Recipe


@dataclass
class RunFile:
    """Everything a run file holds.

    Attributes:
        path: the file.
        start: the start document.
        stop: the stop document (None: the run had not stopped when the file was read).
        result: the stored analysis' numbers.
        data: the streams.
        pauses: the suspensions.
        plots: PNG bytes by name.
        attachments: texts by name (``recipe.yaml``, ``lab.yaml``).
    """

    path: Path
    start: StartDocument
    stop: StopDocument | None
    result: JsonObject
    data: RunData
    pauses: list[Pause] = field(default_factory=list)
    plots: dict[str, bytes] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)

    @property
    def procedure(self) -> ProcedureName:
        """The procedure that made it."""
        return ProcedureName(self.start.procedure)

    def params(self) -> Any:
        """The procedure's parameters, as the run used them."""
        section = ProcedureName(self.start.procedure).value
        recipe = from_mapping(Recipe, {"name": self.start.recipe_name or "run",
                                       "procedure": section, section: self.start.parameters,
                                       "detector": self.start.detector},
                              file=str(self.path), path="start.parameters")
        return recipe.params()

    def detector(self) -> Detector:
        """The readout circuit, as the run used it."""
        return from_mapping(Detector, self.start.detector, file=str(self.path),
                            path="start.detector")


def open_run(path: str | Path) -> RunFile:
    """Read a run file (see :mod:`daq.logger.run_sink` for its layout).

    Raises:
        ValueError: not a run file.
    """
    path = Path(path)
    with h5py.File(path, "r", locking=False) as f:
        if str(f.attrs.get("format", "")) != FILE_FORMAT:
            raise ValueError(f"{path} is not a run file (format {f.attrs.get('format')!r})")
        if "start" not in f.attrs:
            raise ValueError(f"{path} holds no start document")
        start = StartDocument.from_json(json.loads(str(f.attrs["start"])))
        stop = (StopDocument.from_json(json.loads(str(f.attrs["stop"])))
                if "stop" in f.attrs else None)
        result = json.loads(str(f.attrs["result"])) if "result" in f.attrs else {}
        data = RunData()
        for name, group in (f["streams"].items() if "streams" in f else []):
            if group.attrs.get("kind") == "records":
                data.records[name] = _records(group)
            else:
                data.points[name] = _points(group)
        pauses = []
        if "pauses" in f:
            g = f["pauses"]
            for k in range(g["i"].shape[0]):
                resume = int(g["t_resume"][k])
                pauses.append(Pause(int(g["t_pause"][k]), None if resume < 0 else resume,
                                    _text(g["condition"][k]), _text(g["reason"][k]),
                                    _text(g["step"][k])))
        plots = {name: bytes(np.asarray(ds[()], dtype=np.uint8).tobytes())
                 for name, ds in (f["plots"].items() if "plots" in f else [])}
        attachments = {name: "".join(_text(part) for part in ds[()])
                       for name, ds in (f["attachments"].items() if "attachments" in f else [])}
    return RunFile(path, start, stop, result, data, pauses, plots, attachments)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _points(group: h5py.Group) -> PointStream:
    fields = {name: np.asarray(group[name][()], dtype=np.float64)
              for name in group if name not in ("i", "t")}
    units = {name: str(group[name].attrs.get("units", "")) for name in fields}
    return PointStream(fields, units, np.asarray(group["t"][()], dtype=np.int64))


def _records(group: h5py.Group) -> RecordStream:
    attrs = group.attrs
    tags = {name[4:]: np.asarray(group[name][()], dtype=np.float64)
            for name in group if name.startswith("tag_")}
    tag_units = {name[4:]: str(group[name].attrs.get("units", ""))
                 for name in group if name.startswith("tag_")}
    return RecordStream(np.asarray(group["records"][()]), float(attrs["scale"]),
                        float(attrs["offset"]), float(attrs["dt"]), int(attrs["presamples"]),
                        str(attrs.get("units", "V")), tags, tag_units,
                        np.asarray(group["t0"][()], dtype=np.int64))


def reanalyze(run: RunFile) -> Any:
    """Redo the run's analysis from its file (the procedure's own ``analyze``).

    Returns:
        The :class:`daq.runs.procedures.Analysis`.
    """
    from daq.runs.procedures import procedure_for

    proc = procedure_for(run.procedure)
    return proc.analyze(run.data, run.params(), run.detector())
