"""Precomputed pulses and noise, in digitiser counts, from the TES and SQUID physics.

At 256 channels x 100 triggers/s nothing may be integrated per record, so
the physics runs once, at start-up:

* the device is design A at 30 nH (:data:`simulators.physics.tes.SET_A_30NH`)
  biased to 0.2 R_n, as in :class:`simulators.physics.readout.TESReadout`;
* one pulse per photon energy by time-domain integration of both
  electrothermal equations (:func:`~simulators.physics.tes.simulate_pulse`),
  the photon arriving at the trigger sample;
* one long current-noise trace with the model PSD (Johnson, phonon, SQUID
  white and 1/f; :func:`~simulators.physics.tes.noise_trace`);
* both pass the flux-locked loop as its locked transimpedance
  ``-(M_in / M_f) R_f`` (a current drop gives a positive pulse) and are
  quantised with the configured volts per count.

A record is then noise from a random offset of the long trace plus one of
the pulses plus the channel's baseline: two vectorised numpy operations per
batch of records (:meth:`PulseBank.stamp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from simulators.dastard.config import SimConfig
from simulators.physics.squid import FluxLockedLoop
from simulators.physics.tes import (
    EV,
    SET_A_30NH,
    TES,
    bias_for_resistance,
    noise_psd,
    noise_trace,
    simulate_pulse,
    small_signal,
)

#: Samples of precomputed noise (records take random windows of it).
NOISE_SAMPLES = 1 << 20
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class PulseBank:
    """Pulse shapes and noise in counts (int16), ready to be stamped into records.

    Attributes:
        pulses: one record-long pulse per energy, the photon at the trigger sample.
        noise: a long noise trace (zero mean).
        baselines: one DC level per channel.
        energies_ev: the energy of each pulse.
        volts_per_amp: the loop's transimpedance used.
    """

    pulses: np.ndarray
    noise: np.ndarray
    baselines: np.ndarray
    energies_ev: tuple[float, ...]
    volts_per_amp: float

    @classmethod
    def build(cls, cfg: SimConfig, rng: np.random.Generator) -> PulseBank:
        """Run the physics once for ``cfg``."""
        tes = TES(SET_A_30NH)
        tes.set_bias(bias_for_resistance(SET_A_30NH, 0.2), from_normal=True)
        params, op = tes.params, tes.state
        gain = FluxLockedLoop().gain  # V per A of TES current, locked
        counts_per_amp = gain / cfg.volts_per_count
        dt, n, pre = cfg.sample_period_s, cfg.samples, cfg.presamples
        ss = small_signal(params, op)
        # Integrate while the pulse is alive (10 fall times), not the whole record.
        live = min(n, pre + max(8, math.ceil(10.0 * ss.tau_minus / dt)))
        pulses = np.zeros((len(cfg.energies_ev), n), dtype=np.float64)
        for k, energy in enumerate(cfg.energies_ev):
            current = simulate_pulse(params, op, energy * EV, dt, live, n_pre=pre) - op.i
            pulses[k, :live] = current * counts_per_amp
        freqs_needed = NOISE_SAMPLES

        def psd(f: np.ndarray) -> np.ndarray:
            out = np.zeros_like(f)
            positive = f > 0
            out[positive] = noise_psd(params, op, f[positive]).total
            return out

        noise = noise_trace(psd, freqs_needed, dt, rng) * counts_per_amp
        baselines = rng.normal(0.0, 200.0, cfg.channels)
        # Keep every stamped sample inside int16: the pulses are clipped as a digitiser would.
        headroom = _INT16.max - (np.abs(noise).max() + np.abs(baselines).max() + 1)
        np.clip(pulses, -headroom, headroom, out=pulses)
        return cls(pulses=np.rint(pulses).astype(np.int16),
                   noise=np.rint(noise).astype(np.int16),
                   baselines=np.rint(baselines).astype(np.int16),
                   energies_ev=tuple(cfg.energies_ev), volts_per_amp=gain)

    def stamp(self, channels: np.ndarray, rng: np.random.Generator,
              crosstalk: float = 1.0) -> np.ndarray:
        """Records for triggers on ``channels``: noise + a random line's pulse + baseline.

        Args:
            channels: the channel index of each record.
            rng: the random generator (noise offsets, photon lines).
            crosstalk: the fraction of the pulse (1 for a primary record).

        Returns:
            int16 array (len(channels), samples), C-contiguous.
        """
        n = self.pulses.shape[1]
        m = len(channels)
        windows = sliding_window_view(self.noise, n)
        rows = windows[rng.integers(0, len(windows), m)]  # a copy: one row per record
        lines = rng.integers(0, len(self.pulses), m)
        if crosstalk == 1.0:
            rows += self.pulses[lines]
        else:
            rows += np.rint(self.pulses[lines] * crosstalk).astype(np.int16)
        rows += self.baselines[channels][:, None]
        return rows
