"""The whole simulated lab: one fridge, one detector, every instrument on its TCP port.

:class:`SimLab` builds, from a :class:`~simulators.config.SimulationConfig`:

* one :class:`~simulators.clock.SimClock` (the config's time scale) shared
  by every model;
* the :class:`~simulators.physics.fridge.DilutionFridge` and its pressures;
* the TES (parameter set A or B) with its bath on the mixing chamber,
  re-settled whenever the mixing chamber temperature moves, read out by a
  SQUID flux-locked loop;
* the servers: ``ls372`` (thermometry on every stage, sample heater into
  the mixing chamber, still heater), ``ls336`` (50 K / 4 K plates),
  ``tpg366`` (pressures), ``sim900`` (SIM928 biasing the TES in port 1,
  SIM921 on the mixing chamber in port 2), ``pfl102`` (the TES's SQUID
  loop), ``scope`` (the SQUID output on channel 1), ``sr830`` (the TES
  resistance at zero bias, for R(T)), ``keithley2400`` (a 10 kOhm bias
  load), ``awg33500`` (a function generator summed into the TES bias through
  ``awg_coupling_ohm``, for dI/dV; its second output goes to the scope's
  channel 2, a trigger source in phase with the modulation);
* optionally a Bluefors-style log directory written while it runs.

Interface: ``SimLab(config=None)``; ``start()``, ``stop()``, context
manager; ``servers`` (name -> :class:`~simulators.servers.base.InstrumentServer`),
``describe() -> list[(name, model, VISA resource)]``,
``wait_for_log_samples(count, timeout)``; the models as
attributes (``clock``, ``fridge``, ``pressures``, ``tes``, ``readout``,
``sim928``, ``sim921``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.clock import SimClock
from simulators.config import InstrumentConfig, SimulationConfig
from simulators.physics.fridge import DilutionFridge
from simulators.physics.gauges import FridgePressures
from simulators.physics.readout import TESReadout
from simulators.physics.tes import (
    SET_A,
    SET_A_30NH,
    SET_B,
    TES,
    bias_for_resistance,
    resistance,
)
from simulators.physics.tes_bias_line import (
    BiasLine,
    GeneratorOutput,
    GeneratorTrace,
    ModulatedReadout,
)
from simulators.servers.awg33500 import AWG33500Server
from simulators.servers.base import InstrumentServer
from simulators.servers.bluefors_writer import BlueforsLogWriter
from simulators.servers.keithley2400 import Keithley2400Server
from simulators.servers.lakeshore336 import LakeShore336Server
from simulators.servers.lakeshore372 import LakeShore372Server
from simulators.servers.pfl102 import PFL102Server
from simulators.servers.pfl102 import frame as pfl102_frame
from simulators.servers.scope import ScopeServer
from simulators.servers.sim900 import SIM921, SIM928, SIM900Server
from simulators.servers.sr830 import SR830Server
from simulators.servers.tpg366 import TPG366Server

log = logging.getLogger(__name__)

BATH_FOLLOW_K = 2e-4  # re-settle the TES when the bath moved this much
KEITHLEY_LOAD_OHM = 10e3


class SimLab:
    """Every simulated instrument of one lab, wired to one fridge and one detector.

    Args:
        config: what to serve; the defaults serve everything on free ports.
    """

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        cfg = self.config
        self.clock = SimClock(cfg.time_scale)
        self.fridge = DilutionFridge(clock=self.clock, start=cfg.fridge.start)
        self.pressures = FridgePressures(self.fridge, seed=cfg.seed)
        params = {"A": SET_A, "A30": SET_A_30NH, "B": SET_B}[cfg.detector]
        self.tes = TES(params, bath_temperature=self.fridge.mxc_temperature)
        bath = self.fridge.mxc_temperature()
        i_bias = bias_for_resistance(params, 0.2, t_bath=bath)
        self.tes.set_bias(i_bias, from_normal=True)
        self._bath_seen = bath
        self.readout = TESReadout(self.tes, rate=cfg.photon_rate, seed=cfg.seed)
        self.readout.bath_check_s = 0.05  # each ask steps the fridge: not per scope segment
        # The bias node: the SIM928's DC current plus the generator through its coupling
        # resistor; the TES answers a modulation with its true small-signal response.
        self.bias_line = BiasLine(self.tes, r_couple=cfg.awg_coupling_ohm, lock=self.fridge.lock)
        # The scope's channel 1 (SQUID output) and channel 2 (the generator's second output,
        # a trigger) are sampled together, so a trigger on channel 2 fixes the drive's phase.
        self.modulated = ModulatedReadout(self.readout, self.bias_line)
        self.generator_ch2 = GeneratorTrace(self.modulated)
        self.sim928 = SIM928(on_bias_change=self.bias_line.set_source_current)
        self.sim928.voltage = round(i_bias * self.sim928.r_bias, 3)  # biased as left last night
        self.sim928.output_on = True
        self.sim921 = SIM921(temperature=self.fridge.mxc_temperature, seed=cfg.seed)
        self.servers: dict[str, InstrumentServer] = {}
        for name, item in cfg.instruments.items():
            if item.enabled:
                server = self._build(name, item)
                self._apply_faults(name, server, item)
                self.servers[name] = server
        self.fridge.add_controller(self._follow_bath, period_s=5.0)
        self._log_writer: BlueforsLogWriter | None = None
        self._log_stop = threading.Event()
        self._log_thread: threading.Thread | None = None
        self._log_written = threading.Condition()
        self.log_samples = 0
        self._started = False

    # ---- building -----------------------------------------------------------------------------

    def _build(self, name: str, item: InstrumentConfig) -> InstrumentServer:
        host, port, seed = self.config.host, item.port, self.config.seed
        builders: dict[str, Any] = {
            "ls372": lambda: LakeShore372Server(self.fridge, host, port, name=name, seed=seed),
            "ls336": lambda: LakeShore336Server(self.fridge, host, port, name=name, seed=seed + 1),
            "tpg366": lambda: TPG366Server(
                self.pressures, host, port, name=name, streaming=item.streaming
            ),
            "sim900": lambda: SIM900Server(
                {1: self.sim928, 2: self.sim921}, host=host, port=port, name=name
            ),
            "pfl102": lambda: self._locked(
                PFL102Server({1: self.readout.fll}, host=host, port=port, name=name)
            ),
            "scope": lambda: ScopeServer(  # the lab's clock: photons follow its time scale
                {1: self.modulated, 2: self.generator_ch2}, seed=seed,
                clock=self.clock.now, host=host, port=port, name=name,
            ),
            "awg33500": lambda: AWG33500Server(
                on_output=self._generator_output, host=host, port=port, name=name
            ),
            "sr830": lambda: SR830Server(
                self._tes_resistance_at_zero_bias, seed=seed, host=host, port=port, name=name
            ),
            "keithley2400": lambda: Keithley2400Server(
                KEITHLEY_LOAD_OHM, seed=seed, host=host, port=port, name=name
            ),
        }
        return builders[name]()

    def _apply_faults(self, name: str, server: InstrumentServer, item: InstrumentConfig) -> None:
        faults = item.faults
        server.faults.drop, server.faults.hang = faults.drop, faults.hang
        server.faults.garbage, server.faults.delay_s = faults.garbage, faults.delay_s
        for channel in item.overrange:
            if isinstance(server, LakeShore372Server | LakeShore336Server):
                server.set_overrange(channel, True)
            elif isinstance(server, TPG366Server):
                server.set_overrange(int(channel), True)
        for channel in item.open_sensor:
            if isinstance(server, LakeShore372Server | LakeShore336Server):
                server.set_open_sensor(channel, True)
            elif isinstance(server, TPG366Server):
                server.set_gauge_fault(int(channel), 3)
            elif name == "sim900":
                self.sim921.sensor_open = True

    # ---- wiring -------------------------------------------------------------------------------

    def _follow_bath(self, t: float) -> None:
        """Fridge controller: re-settle the TES when the mixing chamber has moved."""
        bath = self.fridge.mxc_temperature()
        if abs(bath - self._bath_seen) > BATH_FOLLOW_K:
            self._bath_seen = bath
            self.tes.refresh()

    def _generator_output(self, channel: int, output: GeneratorOutput) -> None:
        """Output 1 drives the TES bias line, output 2 the scope's channel 2."""
        if channel == 1:
            self.bias_line.set_generator(output)
        elif channel == 2:
            self.generator_ch2.output = output

    def _tes_resistance_at_zero_bias(self) -> float:
        """What the lock-in sees: R(T_bath) of the unbiased TES plus the shunt in series."""
        p = self.tes.params
        return float(resistance(p, self.fridge.mxc_temperature(), 0.0)) + p.r_sh + p.r_par

    # ---- running ------------------------------------------------------------------------------

    @staticmethod
    def _locked(server: PFL102Server) -> PFL102Server:
        """The SQUID as left locked last night, so the scope shows pulses from the start.

        The documented recipe (module docstring of the PFL-102 server): SQUID bias
        ~25 uA, output offset at the SQUID's mean voltage, then LOCK with an
        integrator reset released, which relocks at the present flux (0 V out).
        """
        for opcode, data in ((0x60, (51 << 4) | 2), (0x60, (2068 << 4) | 4),
                             (0x50, 0x0409), (0x50, 0x0408)):
            server.handle(pfl102_frame(1, opcode, data).rstrip(";"))
        return server

    def start(self) -> SimLab:
        """Start every server (and the log writer); returns the lab."""
        started: list[InstrumentServer] = []
        try:
            for server in self.servers.values():
                server.start()
                started.append(server)
        except OSError:
            for server in started:
                server.stop()
            raise
        self._started = True
        log_cfg = self.config.bluefors_log
        if log_cfg.directory:
            self._log_writer = BlueforsLogWriter(
                log_cfg.directory, self.fridge, self.pressures, timezone=log_cfg.timezone
            )
            self._log_stop.clear()
            epoch = datetime.now(UTC) - timedelta(seconds=self.clock.now())
            self._log_thread = threading.Thread(
                target=self._write_logs,
                args=(epoch, log_cfg.period_s),
                name="bluefors-log",
                daemon=True,
            )
            self._log_thread.start()
        for name, model, resource in self.describe():
            log.info("serving %s (%s) at %s", name, model, resource)
        return self

    def _write_logs(self, epoch: datetime, period_s: float) -> None:
        assert self._log_writer is not None
        while True:
            try:
                self._log_writer.write_sample(epoch + timedelta(seconds=self.clock.now()))
            except OSError:
                log.exception("writing the Bluefors-style log failed")
            else:
                with self._log_written:
                    self.log_samples += 1
                    self._log_written.notify_all()
            if self._log_stop.wait(period_s):
                return

    def wait_for_log_samples(self, count: int, timeout: float) -> bool:
        """Wait until the log writer has written ``count`` samples; False on timeout."""
        with self._log_written:
            return self._log_written.wait_for(lambda: self.log_samples >= count, timeout)

    def stop(self) -> None:
        """Stop the log writer and every server."""
        self._log_stop.set()
        if self._log_thread is not None:
            self._log_thread.join(timeout=5)
            self._log_thread = None
        for server in self.servers.values():
            server.stop()
        self._started = False

    def __enter__(self) -> SimLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> list[tuple[str, str, str]]:
        """``(name, model, VISA resource)`` of every server.

        Before :meth:`start`, the resource shows the configured port (0 when
        the system is to choose one).
        """
        rows = []
        for name, server in self.servers.items():
            if self._started:
                resource = server.resource
            else:
                port = getattr(self.config.instruments, name).port
                resource = f"TCPIP::{self.config.host}::{port}::SOCKET"
            rows.append((name, server.model, resource))
        return rows
