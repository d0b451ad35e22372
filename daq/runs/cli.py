"""``qupdaq run RECIPE.yaml``: check a recipe against the lab, then run it.

::

    qupdaq run configs/recipes/iv.yaml                 # the lab config the recipe names
    qupdaq run iv.yaml --config lab.yaml --daemon fridge1
    qupdaq run iv.yaml --check                         # check only: nothing moves

Nothing moves before the recipe has passed every check (types, unknown or
misspelt keys, targets and streams the daemon has, values within the limits
and ranges); every problem is printed with the file, the key path and the
reason, and the exit status is 2. A run prints its id at the start, a
progress bar with ETA while it runs, and its outcome, numbers and file at
the end. Ctrl-C stops it safely (the recipe's safe state; stored as
aborted).

Exit status: 0 completed, 1 failed (or the lab could not be reached), 2 the
recipe or config is wrong, 130 aborted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from daq.client import Lab
from daq.config import DEFAULT_CONFIG, load_config
from daq.errors import ConfigError, QupdaqError
from daq.logger.history import HistoryClient
from daq.runs.documents import RunStatus
from daq.runs.engine import RunEngine
from daq.runs.procedures import procedure_for
from daq.runs.recipe import check_recipe, lab_config_path, load_recipe

log = logging.getLogger(__name__)

EXIT_ABORTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qupdaq run",
                                description="Check a measurement recipe against the lab and "
                                            "run it (see daq.runs.recipe for every key).")
    p.add_argument("recipe", type=Path, help="the recipe (YAML)")
    p.add_argument("--config", type=Path, help="the lab config (default: the recipe's 'lab', "
                   f"else {DEFAULT_CONFIG.name})")
    p.add_argument("--daemon", metavar="NAME", help="which daemon of a facility config")
    p.add_argument("--check", action="store_true",
                   help="check the recipe against the lab and stop (nothing moves)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--state-dir", type=Path, help="where the run's spool lives")
    return p


def run_main(argv: Sequence[str]) -> int:
    """The ``qupdaq run`` command."""
    args = _parser().parse_args(list(argv))
    try:
        recipe = load_recipe(args.recipe)
        config_path = args.config or lab_config_path(recipe) or DEFAULT_CONFIG
        whole = load_config(config_path)
        config = whole.for_daemon(args.daemon) if whole.daemons else whole
    except ConfigError as exc:
        print(f"qupdaq run: {exc}", file=sys.stderr)
        return 2
    try:
        with Lab(config, client=f"run:{recipe.name}") as lab:
            uses = procedure_for(recipe.procedure).uses(recipe)
            check_recipe(recipe, config, lab.list(), uses)
            targets = sorted({u.name for u in uses if u.kind != "stream"})
            print(f"recipe {recipe.path}: {recipe.procedure.value} on "
                  f"{recipe.sample or recipe.detector.name}; leases {', '.join(targets)}",
                  flush=True)
            if args.check:
                print("recipe checked: nothing moved", flush=True)
                return 0
            engine = RunEngine(config, lab=lab, state_dir=args.state_dir,
                               progress_bar=not args.no_progress)
            outcome = engine.run(recipe)
    except ConfigError as exc:
        print(f"qupdaq run: {exc}\nnothing moved.", file=sys.stderr)
        return 2
    except QupdaqError as exc:
        print(f"qupdaq run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the run took over Ctrl-C: nothing had moved
        print("qupdaq run: interrupted before the run started; nothing moved.",
              file=sys.stderr)
        return EXIT_ABORTED
    print(f"run {outcome.run_id} {outcome.status.value}"
          + (f": {outcome.reason}" if outcome.reason else ""), flush=True)
    print(f"points: {json.dumps(outcome.points)}; pauses: {len(outcome.pauses)}", flush=True)
    if outcome.result:
        print(f"result: {json.dumps(outcome.result, sort_keys=True)}", flush=True)
    _print_file(config, outcome.run_id, outcome.archived)
    if outcome.status is RunStatus.COMPLETED:
        return 0
    return EXIT_ABORTED if outcome.status is RunStatus.ABORTED else 1


def _print_file(config: object, run_id: str, archived: bool) -> None:
    from daq.config import LabConfig

    assert isinstance(config, LabConfig)
    if not archived:
        print("not yet acknowledged by the logger: the run's documents wait in its spool "
              "and go with the next run", flush=True)
        return
    if config.logger is None:
        return
    try:
        with HistoryClient(config.logger.history_endpoint, timeout_s=5.0,
                           curve=config.keys_for("logger")) as history:
            _, path = history.run_entry(run_id)
        print(f"file: {path}", flush=True)
    except QupdaqError as exc:
        log.warning("the run's file could not be looked up: %s", exc)
