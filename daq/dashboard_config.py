"""The ``dashboard:`` section: which fridges, channels and groups the control room sees.

The dashboard draws what this section names, nothing hard-coded::

    dashboard:
      title: Cryo lab
      fridges:
        fridge1:                         # one column of the facility overview
          daemon: fridge1                # its daemon in a facility file (controls); optional
          stages:                        # the schematic, warmest first: label -> stream
            50K: fridge1/t50k
            4K: fridge1/t4k
            Still: fridge1/still
            Cold plate: fridge1/cold_plate
            MXC: fridge1/mxc_control
          pressures: {OVC: fridge1/p_ovc, Still: fridge1/p_still}
          flow: fridge1/flow             # optional: the 3He circulation (mmol/s)
          heaters: {Sample: fridge1/sample_heater, Still: fridge1/still_heater}
          instruments: [fridge1/ls372, fridge1/ls336, fridge1/tpg366]  # status streams
      detectors:
        tes1:
          daemon: fridge1
          record: tes1/squid_out         # the digitizer's wave stream
          bias: tes1/bias_voltage
          amps_per_volt: -2.5e-6         # readout: TES current per volt at the SQUID output,
                                         # 1 / (-(M_in / M_f) R_f) of the flux-locked loop
          trigger_level_v: 0.1
          lock: tes1/squid_locked        # optional: a lock-state stream
      charts:                            # strip charts offered at start
        - {title: Mixing chambers, streams: [fridge1/mxc_control], log_y: true}

Streams are ``source/channel`` (the ``data/`` kind is implied); instrument
status streams are ``source/instrument``. Loaded with the rest of the lab
config (:mod:`daq.config`); every name is checked to have the right shape
at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daq.messages import check_name


def _check_stream(stream: str, what: str) -> str:
    parts = stream.split("/")
    if len(parts) != 2:
        raise ValueError(f"{what} {stream!r} must be source/channel (e.g. fridge1/mxc)")
    for part in parts:
        check_name(part, what)
    return stream


@dataclass(frozen=True)
class FridgeView:
    """One refrigerator of the overview."""

    stages: dict[str, str] = field(default_factory=dict)
    pressures: dict[str, str] = field(default_factory=dict)
    flow: str | None = None
    heaters: dict[str, str] = field(default_factory=dict)
    instruments: list[str] = field(default_factory=list)
    daemon: str | None = None

    def __post_init__(self) -> None:
        for group in (self.stages, self.pressures, self.heaters):
            for label, stream in group.items():
                _check_stream(stream, f"{label!r}")
        for stream in self.instruments:
            _check_stream(stream, "instrument status")
        if self.flow is not None:
            _check_stream(self.flow, "flow")

    @property
    def streams(self) -> list[str]:
        """Every data stream this fridge shows."""
        return [*self.stages.values(), *self.pressures.values(), *self.heaters.values(),
                *([self.flow] if self.flow else [])]


@dataclass(frozen=True)
class DetectorView:
    """One detector of the TES/SQUID view."""

    record: str
    bias: str | None = None
    amps_per_volt: float = 1.0
    trigger_level_v: float = 0.0
    lock: str | None = None
    daemon: str | None = None

    def __post_init__(self) -> None:
        for stream in (self.record, self.bias, self.lock):
            if stream is not None:
                _check_stream(stream, "detector stream")
        if not self.amps_per_volt or self.amps_per_volt != self.amps_per_volt:
            raise ValueError(f"amps_per_volt must be a non-zero number, got {self.amps_per_volt}")


@dataclass(frozen=True)
class ChartView:
    """A strip chart offered at start."""

    title: str
    streams: list[str]
    log_y: bool = False

    def __post_init__(self) -> None:
        for stream in self.streams:
            _check_stream(stream, "chart stream")


@dataclass(frozen=True)
class DashboardConfig:
    """The ``dashboard:`` section (see the module docstring)."""

    title: str = "qupdaq"
    fridges: dict[str, FridgeView] = field(default_factory=dict)
    detectors: dict[str, DetectorView] = field(default_factory=dict)
    charts: list[ChartView] = field(default_factory=list)
