"""The characterisation procedures: each a measurement and an analysis, told in run documents.

Every procedure module provides:

* ``uses(recipe) -> list[TargetUse]``: every target it drives and stream it
  reads, with the recipe key that decides it and the values it will set (the
  checks before the run, and the lease);
* ``measure(run, params)``: the measurement, in repeatable steps
  (:meth:`daq.runs.engine.Run.step`), emitting its streams;
* ``analyze(data, params, detector) -> Analysis``: the numbers and figures
  from the streams alone -- the same function the engine calls at the end of
  the run and :func:`daq.runs.reanalyze` calls on the stored file.

==================  ===============  ==========================================
procedure           module           streams
==================  ===============  ==========================================
iv                  :mod:`.iv`       ``iv`` (bias_v, v_out_v, v_out_std_v, ...)
impedance           :mod:`.impedance` ``iv``, ``didv.<state>`` records
transition          :mod:`.transition` ``rt`` (t, temperature_k, lockin_x_v, ...)
vphi                :mod:`.vphi`     ``vphi`` (flux_a, v_out_v, ...)
noise               :mod:`.noise`    (``iv``), ``noise`` records
pulses              :mod:`.pulses`   (``iv``), ``pulses`` and ``noise`` records
temperature_series  :mod:`.series`   ``bath``, ``t<k>.iv``, ``t<k>.noise``, ...
==================  ===============  ==========================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from matplotlib.figure import Figure

from daq.runs.data import RunData
from daq.runs.documents import JsonObject
from daq.runs.params import Detector
from daq.runs.recipe import ProcedureName, Recipe, TargetUse


@dataclass
class Analysis:
    """What a procedure's analysis gives.

    Attributes:
        result: the numbers (JSON), stored with the run and compared on re-analysis.
        figures: (name, title, figure) for each PNG.
        values: the analysis' own result objects by name (e.g. ``iv``: an IVResult).
    """

    result: JsonObject = field(default_factory=dict)
    figures: list[tuple[str, str, Figure]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Procedure:
    """One procedure's three functions (see the module docstring)."""

    name: ProcedureName
    uses: Callable[[Recipe], list[TargetUse]]
    measure: Callable[[Any, Any], None]
    analyze: Callable[[RunData, Any, Detector], Analysis]

    def targets(self, recipe: Recipe) -> set[str]:
        """The targets to lease: everything it sets or calls."""
        return {u.name for u in self.uses(recipe) if u.kind != "stream"}


#: Procedure -> its module under daq.runs.procedures.
MODULES = {ProcedureName.IV: "iv", ProcedureName.IMPEDANCE: "impedance",
           ProcedureName.TRANSITION: "transition", ProcedureName.VPHI: "vphi",
           ProcedureName.NOISE: "noise", ProcedureName.PULSES: "pulses",
           ProcedureName.TEMPERATURE_SERIES: "series"}


def _module(name: ProcedureName) -> ModuleType:
    # Imported when needed: a procedure's module imports the engine, which imports this.
    return importlib.import_module(f"daq.runs.procedures.{MODULES[name]}")


def procedure_for(name: ProcedureName) -> Procedure:
    """The procedure a recipe names."""
    module = _module(name)
    return Procedure(name, module.uses, module.measure, module.analyze)
