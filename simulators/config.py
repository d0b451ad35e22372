"""The ``simulation:`` section of a lab config: what the simulated lab serves, and how.

Loaded with :func:`daq.config_schema.from_mapping`, so a typo is an error
that names the file and the key path, never a silent default. Example::

    simulation:
      host: 127.0.0.1
      time_scale: 1.0          # simulated seconds per wall second
      detector: A              # TES parameter set A, A30 (A at 30 nH) or B (physics notes)
      seed: 0
      fridge:
        start: base            # base | 4k (the start of a cool-down)
      bluefors_log:
        directory: ""          # empty: no vendor-style log directory
        period_s: 10.0
        timezone: Europe/Helsinki
      instruments:
        ls372: {port: 17372, overrange: ["6"], open_sensor: []}
        ls336: {port: 17336}
        tpg366: {port: 18000, streaming: true}
        sim900: {port: 17900}
        pfl102: {port: 17102}
        scope: {port: 15025}
        sr830: {port: 17830}
        keithley2400: {port: 17240, faults: {delay_s: 0.5}}
        awg33500: {port: 15026}  # sums a modulation into the TES bias (dI/dV)

Port 0 lets the system choose a free port (tests). ``overrange`` and
``open_sensor`` list the channels that start faulty: LS372 inputs ``A`` and
``1``-``16``, LS336 inputs ``A``-``D``, TPG 366 gauges ``1``-``6`` (over range
/ sensor error) and, for ``open_sensor`` only, SIM900 port ``2`` (the SIM921).

Interface: :class:`SimulationConfig` (and its parts :class:`InstrumentConfig`,
:class:`FaultsConfig`, :class:`FridgeConfig`, :class:`BlueforsLogConfig`,
:class:`InstrumentsConfig`), :data:`INSTRUMENT_NAMES`,
:func:`load_simulation_config` ``(path) -> SimulationConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daq.config_schema import from_mapping, read_yaml
from daq.errors import ConfigError

INSTRUMENT_NAMES: tuple[str, ...] = (
    "ls372",
    "ls336",
    "tpg366",
    "sim900",
    "pfl102",
    "scope",
    "sr830",
    "keithley2400",
    "awg33500",
)

_FAULT_CHANNELS: dict[str, tuple[set[str], set[str]]] = {
    # instrument -> (allowed in overrange, allowed in open_sensor)
    "ls372": ({"A", *map(str, range(1, 17))}, {"A", *map(str, range(1, 17))}),
    "ls336": ({"A", "B", "C", "D"}, {"A", "B", "C", "D"}),
    "tpg366": ({*map(str, range(1, 7))}, {*map(str, range(1, 7))}),
    "sim900": (set(), {"2"}),
}


@dataclass
class FaultsConfig:
    """Connection faults a server shows from the start.

    Attributes:
        drop: close the connection on every command.
        hang: never answer.
        garbage: answer garbage bytes.
        delay_s: answer this many seconds late.
    """

    drop: bool = False
    hang: bool = False
    garbage: bool = False
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.delay_s <= 60.0:
            raise ValueError(f"delay_s {self.delay_s!r} s is out of range; allowed: 0 to 60 s")


@dataclass
class InstrumentConfig:
    """One simulated instrument.

    Attributes:
        enabled: serve it at all.
        port: TCP port; 0 picks a free one.
        faults: connection faults from the start.
        overrange: channels (inputs, gauges) that start over range.
        open_sensor: channels whose sensor starts open.
        streaming: TPG 366 only: stream readings from power-up until ENQ.
    """

    enabled: bool = True
    port: int = 0
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    overrange: list[str] = field(default_factory=list)
    open_sensor: list[str] = field(default_factory=list)
    streaming: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port!r} is out of range; allowed: 0 to 65535")


@dataclass
class InstrumentsConfig:
    """Every instrument of the simulated lab, by name."""

    ls372: InstrumentConfig = field(default_factory=InstrumentConfig)
    ls336: InstrumentConfig = field(default_factory=InstrumentConfig)
    tpg366: InstrumentConfig = field(default_factory=InstrumentConfig)
    sim900: InstrumentConfig = field(default_factory=InstrumentConfig)
    pfl102: InstrumentConfig = field(default_factory=InstrumentConfig)
    scope: InstrumentConfig = field(default_factory=InstrumentConfig)
    sr830: InstrumentConfig = field(default_factory=InstrumentConfig)
    keithley2400: InstrumentConfig = field(default_factory=InstrumentConfig)
    awg33500: InstrumentConfig = field(default_factory=InstrumentConfig)

    def __post_init__(self) -> None:
        ports: dict[int, str] = {}
        for name in INSTRUMENT_NAMES:
            item: InstrumentConfig = getattr(self, name)
            allowed_over, allowed_open = _FAULT_CHANNELS.get(name, (set(), set()))
            for key, channels, allowed in (
                ("overrange", item.overrange, allowed_over),
                ("open_sensor", item.open_sensor, allowed_open),
            ):
                bad = [c for c in channels if str(c).upper() not in allowed]
                if bad:
                    choices = ", ".join(sorted(allowed, key=_channel_order)) or "none"
                    raise ValueError(
                        f"{name}.{key}: channel {bad[0]!r} is not allowed; allowed: {choices}"
                    )
            if item.streaming and name != "tpg366":
                raise ValueError(f"{name}.streaming: only the tpg366 streams")
            if item.enabled and item.port:
                if item.port in ports:
                    raise ValueError(
                        f"{name}.port {item.port} is already used by {ports[item.port]}"
                    )
                ports[item.port] = name

    def items(self) -> list[tuple[str, InstrumentConfig]]:
        """``(name, config)`` of every instrument, in the lab's order."""
        return [(name, getattr(self, name)) for name in INSTRUMENT_NAMES]


@dataclass
class FridgeConfig:
    """The refrigerator model.

    Attributes:
        start: ``base`` (cold) or ``4k`` (still, cold plate and mixing
            chamber at 4 K: a cool-down to watch).
    """

    start: Literal["base", "4k"] = "base"


@dataclass
class BlueforsLogConfig:
    """A vendor-style log directory written while the lab runs.

    Attributes:
        directory: where; empty turns it off.
        period_s: wall seconds between samples.
        timezone: the site's zone for the local times in the files.
    """

    directory: str = ""
    period_s: float = 10.0
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise ValueError(f"period_s {self.period_s!r} s is out of range; allowed: > 0 s")


#: The instruments that serve a detector; a fridge without one does not serve them.
DETECTOR_INSTRUMENTS = ("sim900", "pfl102", "scope", "sr830", "keithley2400", "awg33500")


@dataclass
class FridgeSimConfig:
    """One refrigerator of a simulated facility (``simulation.fridges.<name>``).

    Attributes:
        detector: the TES parameter set mounted on its mixing chamber, or
            ``none`` (no detector: its readout instruments are not served).
        fridge: the refrigerator model.
        bluefors_log: its vendor-style log directory.
        instruments: its servers (each fridge has its own ports).
    """

    detector: Literal["A", "A30", "B", "none"] = "none"
    fridge: FridgeConfig = field(default_factory=FridgeConfig)
    bluefors_log: BlueforsLogConfig = field(default_factory=BlueforsLogConfig)
    instruments: InstrumentsConfig = field(default_factory=InstrumentsConfig)


@dataclass
class SimulationConfig:
    """The ``simulation:`` section.

    Attributes:
        host: address every server binds.
        time_scale: simulated seconds per wall second (0 freezes time).
        detector: TES parameter set ``A`` or ``B`` (physics notes), or ``A30``: set A
            with the 30 nH input inductance of the worked check (overdamped pulses;
            the tabulated 67 nH makes set A ring).
        seed: noise seed of the whole lab.
        awg_coupling_ohm: the resistor through which the function generator's
            output is summed into the TES bias node.
        photon_rate: mean rate of photons on the detector, 1/s (each triggers the scope
            when its pulse crosses the trigger level).
        fridge: the refrigerator model.
        bluefors_log: the vendor-style log directory.
        instruments: the servers.
        fridges: a facility instead of one lab: one :class:`FridgeSimConfig` per
            refrigerator, each with its own physics and ports (then ``detector``,
            ``fridge``, ``bluefors_log`` and ``instruments`` above are not used).
    """

    host: str = "127.0.0.1"
    time_scale: float = 1.0
    detector: Literal["A", "A30", "B"] = "A"
    seed: int = 0
    awg_coupling_ohm: float = 100e3
    photon_rate: float = 20.0
    fridge: FridgeConfig = field(default_factory=FridgeConfig)
    bluefors_log: BlueforsLogConfig = field(default_factory=BlueforsLogConfig)
    instruments: InstrumentsConfig = field(default_factory=InstrumentsConfig)
    fridges: dict[str, FridgeSimConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ports: dict[int, str] = {}
        for fridge_name, fridge in self.fridges.items():
            for name, item in fridge.instruments.items():
                if item.enabled and item.port:
                    where = f"{fridge_name}.{name}"
                    if item.port in ports:
                        raise ValueError(f"fridges.{where}.port {item.port} is already used by "
                                         f"{ports[item.port]}")
                    ports[item.port] = where
        if not 0.0 <= self.photon_rate <= 1e5:
            raise ValueError(f"photon_rate {self.photon_rate!r} is out of range; allowed: 0 to "
                             "1e5 per second")
        if not self.awg_coupling_ohm > 0:
            raise ValueError(f"awg_coupling_ohm must be > 0 Ohm, got {self.awg_coupling_ohm!r}")
        if not 0.0 <= self.time_scale <= 1e6:
            raise ValueError(
                f"time_scale {self.time_scale!r} is out of range; allowed: 0 to 1e6 "
                "(simulated seconds per wall second)"
            )

    def lab(self, name: str) -> SimulationConfig:
        """The single-lab config of facility fridge ``name`` (its own seed; no detector:
        no readout instruments)."""
        fridge = self.fridges[name]
        index = list(self.fridges).index(name)
        instruments = fridge.instruments
        if fridge.detector == "none":
            instruments = InstrumentsConfig(**{
                key: dataclasses.replace(item, enabled=False) if key in DETECTOR_INSTRUMENTS
                else item for key, item in instruments.items()})
        return SimulationConfig(
            host=self.host, time_scale=self.time_scale,
            detector="A30" if fridge.detector == "none" else fridge.detector,
            seed=self.seed + 1000 * index, fridge=fridge.fridge,
            bluefors_log=fridge.bluefors_log, instruments=instruments)

    def with_ports(self, port: int) -> SimulationConfig:
        """A copy with every instrument on ``port`` (0: let the system choose, for tests)."""
        instruments = InstrumentsConfig(
            **{
                name: dataclasses.replace(item, port=port)
                for name, item in self.instruments.items()
            }
        )
        return dataclasses.replace(self, instruments=instruments)


def _channel_order(channel: str) -> tuple[int, str]:
    return (0, channel) if not channel.isdigit() else (1, f"{int(channel):03d}")


def simulation_from_mapping(data: Any, *, file: str = "") -> SimulationConfig:
    """Build the config from a whole lab config mapping (its ``simulation:`` key).

    Raises:
        ConfigError: not a mapping, no ``simulation:`` key, or a bad value.
    """
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top of the file", file=file)
    if "simulation" not in data:
        raise ConfigError("missing the 'simulation:' section", file=file, key_path="simulation")
    return from_mapping(SimulationConfig, data["simulation"], file=file, path="simulation")


def load_simulation_config(path: str | Path) -> SimulationConfig:
    """Read a lab config file and return its ``simulation:`` section.

    The other top-level keys belong to the daemon and are ignored here.

    Raises:
        ConfigError: unreadable file, bad YAML, or a schema mismatch.
    """
    name = str(path)
    data = read_yaml(path)
    return simulation_from_mapping(data, file=name)
