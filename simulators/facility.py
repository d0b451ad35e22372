"""A simulated facility: several refrigerators, each a whole simulated lab of its own.

:class:`SimFacility` builds one :class:`~simulators.lab.SimLab` per entry of
``simulation.fridges`` (each with its own fridge physics, thermometry,
pressures, log directory and ports; the one with a detector also serves the
TES readout) and runs them side by side in one process, sharing the time
scale. ``qupdaq sim`` serves a facility when the config has ``fridges``.

Interface: ``SimFacility(config)``; ``start()``, ``stop()``, context manager;
``labs`` (fridge name -> SimLab); ``describe()`` with instrument names
``<fridge>.<instrument>``.
"""

from __future__ import annotations

from simulators.config import SimulationConfig
from simulators.lab import SimLab


class SimFacility:
    """Every fridge of a facility config, each a :class:`SimLab`.

    Args:
        config: a simulation config with ``fridges``.
    """

    def __init__(self, config: SimulationConfig) -> None:
        if not config.fridges:
            raise ValueError("a facility needs simulation.fridges")
        self.config = config
        self.labs = {name: SimLab(config.lab(name)) for name in config.fridges}

    def start(self) -> SimFacility:
        """Start every fridge's servers; on a failure, stop the ones started."""
        started: list[SimLab] = []
        try:
            for lab in self.labs.values():
                lab.start()
                started.append(lab)
        except OSError:
            for lab in started:
                lab.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every fridge."""
        for lab in self.labs.values():
            lab.stop()

    def __enter__(self) -> SimFacility:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> list[tuple[str, str, str]]:
        """``(fridge.instrument, model, VISA resource)`` of every server of every fridge."""
        return [(f"{fridge}.{name}", model, resource)
                for fridge, lab in self.labs.items()
                for name, model, resource in lab.describe()]
