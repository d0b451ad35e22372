"""Scripted measurement runs: recipes, procedures, the run engine and stored runs.

A *run* drives the lab through the daemon (:class:`daq.client.Lab`) under a
lease on the targets it drives, tells what it does in documents on the bus
and on the reliable path (start, streams, pauses, result, plots, stop:
:mod:`daq.runs.documents`), and is stored by the logger as one HDF5 file
plus a row of the run index (:mod:`daq.logger.run_sink`). From the file alone
the run reopens and its analysis is redone with the same numbers
(:func:`open_run`, :func:`reanalyze`).

::

    qupdaq run configs/recipes/iv.yaml            # a recipe (reference: daq.runs.recipe)

    from daq.config import load_config
    from daq.runs import RunEngine, load_recipe, open_run, reanalyze

    outcome = RunEngine(load_config("configs/sim_lab.yaml")).run(load_recipe("iv.yaml"))
    outcome.status, outcome.result["r_n_ohm"], outcome.pauses

Modules:

* :mod:`~daq.runs.recipe` -- the recipe format (every key explained), loading
  and the checks before anything moves;
* :mod:`~daq.runs.params` -- the typed sections of a recipe;
* :mod:`~daq.runs.engine` -- the run engine: lease, documents, repeatable steps,
  suspend and resume, progress, the safe state on Ctrl-C;
* :mod:`~daq.runs.conditions` -- the suspenders and the thread that watches them;
* :mod:`~daq.runs.procedures` -- I-V, complex impedance, R(T), V-Phi, noise,
  pulses and the temperature series, each a measurement and an analysis
  (daq.analysis) with figures (daq.analysis.plots);
* :mod:`~daq.runs.documents`, :mod:`~daq.runs.data` -- what a run says, and its data;
* :mod:`~daq.runs.outbound` -- the run's own Publisher and ReliableSender (a spool on disk);
* :mod:`~daq.runs.runfile` -- a stored run reopened;
* :mod:`~daq.runs.progress`, :mod:`~daq.runs.cli` -- the terminal and ``qupdaq run``.

Imported lazily: ``import daq.runs`` costs nothing until a name is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunEngine", "RunOutcome", "load_recipe", "open_run", "reanalyze"]


def __getattr__(name: str) -> Any:
    # The logger imports daq.runs.documents; the engine imports matplotlib and the client:
    # only what is asked for is loaded.
    if name in ("RunEngine", "RunOutcome"):
        from daq.runs import engine

        return getattr(engine, name)
    if name == "load_recipe":
        from daq.runs.recipe import load_recipe

        return load_recipe
    if name in ("open_run", "reanalyze"):
        from daq.runs import runfile

        return getattr(runfile, name)
    raise AttributeError(f"module 'daq.runs' has no attribute {name!r}")
