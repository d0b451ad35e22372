"""Pressures around a dilution refrigerator, from the fridge's state.

Six gauges as on a typical dry fridge's gas handling system, in mbar:

====  ==============  ==========================================================
P1    ``ovc``         outer vacuum can: ~3e-7 cold, rising steeply as the 4 K plate warms
P2    ``still``       still pumping line: grows with the circulation rate
P3    ``condensing``  condensing (return) line: a few hundred mbar while circulating
P4    ``backing``     turbo backing line
P5    ``tank``        mixture storage tank: high when the mixture is out of the fridge
P6    ``service``     service manifold, pumped
====  ==============  ==========================================================

Interface: :class:`FridgePressures` ``(fridge, *, seed=0, noise=0.01)`` with
``pressures_mbar() -> list[float]`` (six values, gauge 1 first, after the
fridge caught up with its clock); :data:`GAUGE_NAMES`.
"""

from __future__ import annotations

import math

import numpy as np

from simulators.physics.fridge import DilutionFridge

GAUGE_NAMES: tuple[str, ...] = ("ovc", "still", "condensing", "backing", "tank", "service")


class FridgePressures:
    """Pressure model tied to a :class:`~simulators.physics.fridge.DilutionFridge`.

    Args:
        fridge: the refrigerator whose state sets the pressures.
        seed: noise seed.
        noise: relative RMS noise of each reading.
    """

    def __init__(self, fridge: DilutionFridge, *, seed: int = 0, noise: float = 0.01) -> None:
        self.fridge = fridge
        self.noise = noise
        self._rng = np.random.default_rng(seed)

    def clean_mbar(self) -> list[float]:
        """The six pressures without noise, mbar."""
        with self.fridge.lock:
            temps = self.fridge.temperatures
            ndot_mmol = self.fridge.circulation_mol_s * 1e3
        t4 = temps["4k"]
        # cryopumping by the 4 K plate holds the OVC down; it lets go as the plate warms
        ovc = min(2e-7 * (1.0 + (t4 / 4.0) ** 3), 1e-2)
        still_line = 2e-3 + 2.0 * ndot_mmol
        condensing = 20.0 + 2000.0 * ndot_mmol
        backing = 0.3 + 30.0 * ndot_mmol
        warm = 1.0 / (1.0 + math.exp(-(temps["still"] - 2.0) / 0.3))
        tank = 60.0 + 700.0 * warm
        service = 1.5e-2
        return [ovc, still_line, condensing, backing, tank, service]

    def pressures_mbar(self) -> list[float]:
        """The six gauge pressures with reading noise, mbar."""
        clean = self.clean_mbar()
        factors = 1.0 + self.noise * self._rng.standard_normal(len(clean))
        return [p * max(float(f), 0.5) for p, f in zip(clean, factors, strict=True)]
