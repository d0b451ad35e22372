"""The DASTARD simulator's settings: the array, its pulses and the ports it serves.

From a YAML file (the mapping itself, or under a ``dastard_sim:`` key) or
from the command line (:mod:`simulators.dastard.__main__`)::

    dastard_sim:
      bind: 127.0.0.1          # address of all five ports
      base_port: 5500          # control +0, status +1, primary +2, secondary +3, summaries +4
      channels: 4              # TES channels (names chan1 ... chanN)
      rate_hz: 10.0            # primary triggers per second per channel (Poisson)
      samples: 1000            # samples per record
      presamples: 250          # samples before the trigger
      sample_period_s: 2.0e-6
      volts_per_count: 1.0e-4  # the digitiser's scale (sent as volts per arb)
      signed: true             # int16 samples (false: uint16 with the baseline at 32768)
      energies_ev: [40.0, 50.0, 60.0]   # photon lines; one pulse shape each
      secondary: false         # publish a cross-talk record on the next channel per trigger
      summaries: false         # publish pulse summaries on base+4
      summary_coefficients: 0  # projection coefficients per summary (0: no projectors)
      hwm: 10000               # send high-water mark of the record and summary sockets
                               # (DASTARD itself uses 10; status keeps 1000)
      alive_period_s: 2.0      # ALIVE period (DASTARD: 2 s)
      tick_s: 0.05             # how often records are made (DASTARD's data blocks are ~50 ms)
      start: true              # run the source at once (false: wait for SourceControl.Start)
      log_sent: false          # keep every sent header (tests; SimControl.Sent)
      seed: null
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daq.config_schema import from_mapping, read_yaml
from daq.dastard.wire import DEFAULT_BASE_PORT


@dataclass(frozen=True)
class SimConfig:
    """Everything the DASTARD simulator needs (see the module docstring for the YAML)."""

    bind: str = "127.0.0.1"
    base_port: int = DEFAULT_BASE_PORT
    channels: int = 4
    rate_hz: float = 10.0
    samples: int = 1000
    presamples: int = 250
    sample_period_s: float = 2e-6
    volts_per_count: float = 1e-4
    signed: bool = True
    energies_ev: tuple[float, ...] = (40.0, 50.0, 60.0)
    secondary: bool = False
    summaries: bool = False
    summary_coefficients: int = 0
    hwm: int = 10_000
    alive_period_s: float = 2.0
    tick_s: float = 0.05
    start: bool = True
    log_sent: bool = False
    seed: int | None = None
    source_name: str = "SimPulses"

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= 65536:
            raise ValueError(f"channels must be 1-65536 (a u16 index), got {self.channels}")
        if not 1 <= self.presamples < self.samples:
            raise ValueError(f"presamples must be in [1, samples), got {self.presamples} of "
                             f"{self.samples}")
        for name in ("sample_period_s", "volts_per_count", "alive_period_s", "tick_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.rate_hz < 0:
            raise ValueError(f"rate_hz must be >= 0, got {self.rate_hz}")
        if not self.energies_ev or any(e <= 0 for e in self.energies_ev):
            raise ValueError("energies_ev needs at least one positive energy")
        if not 0 <= self.summary_coefficients <= self.samples:
            raise ValueError("summary_coefficients must be in [0, samples]")
        if not 0 <= self.base_port <= 65535 - 4:
            raise ValueError(f"base_port must leave room for 5 ports, got {self.base_port}")

    @property
    def channel_names(self) -> tuple[str, ...]:
        """DASTARD's names for a simulated source: chan1 ... chanN."""
        return tuple(f"chan{i + 1}" for i in range(self.channels))

    @property
    def bytes_per_second(self) -> float:
        """Primary sample bytes per second at the configured rate."""
        return self.channels * self.rate_hz * self.samples * 2


def load_sim_config(path: str | Path, **overrides: Any) -> SimConfig:
    """A :class:`SimConfig` from a YAML file (top level or ``dastard_sim:``), then ``overrides``.

    Raises:
        daq.errors.ConfigError: the file or a key is wrong (named in the message).
    """
    data = read_yaml(Path(path)) or {}
    if isinstance(data, dict) and "dastard_sim" in data:
        data = data["dastard_sim"]
    if isinstance(data, dict):
        data = {**data, **overrides}
    return from_mapping(SimConfig, data, file=str(path), path="dastard_sim")
