"""Measurement runs end to end: simulated lab, broker, logger and daemon as real processes.

Each procedure runs through the daemon (the run in this process, or ``qupdaq
run`` for Ctrl-C) and must recover the simulator's true parameters; the run
is stored by the logger (one HDF5 file, an index row) and its analysis is
redone from the file alone. The truths come from the simulator's physics
(tests may import simulators/; daq/ never does) at the operating point the
run used and the bath temperature the 372 reads.

The tests share one lab (module fixture) and run in file order: the TES's
state carries over (an I-V leaves it superconducting, which the next
procedure's overbias must handle), and R(T), which warms the bath, comes last.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from daq.bus import Subscriber
from daq.client import Lab
from daq.config import LabConfig, load_config
from daq.errors import ControlError
from daq.logger.history import HistoryClient
from daq.runs.documents import RunStatus
from daq.runs.engine import RunEngine, RunOutcome
from daq.runs.procedures.common import bias_for_fraction
from daq.runs.procedures.iv import analyze_stream
from daq.runs.recipe import recipe_from_mapping
from daq.runs.runfile import open_run, reanalyze
from simulators.physics.squid import PHI0
from simulators.physics.tes import SET_A_30NH, noise_psd, operating_point, small_signal
from tests.procs import Service, qupdaq, sim_lab_config

pytestmark = pytest.mark.slow

TIME_SCALE = 50.0
PARAMS = SET_A_30NH  # the simulated lab's detector (simulation.detector: A30)
R_BIAS = 10e3
FLUX_LINE_A_PER_PHI0 = 20e-6  # the PFL-102 simulator's flux line: Phi0 / 20 uA
#: A shorter I-V than the example recipe's: the superconducting branch down to 1.5 V.
IV_SWEEP = [{"start": 10.0, "stop": 3.2, "step": 0.1}, {"start": 3.2, "stop": 1.5, "step": 0.02}]
#: The I-V whose R_par is judged goes well into the superconducting branch: the latch is
#: near 1.9 V, and a few points below it may not make a branch (R_par then reads 0).
IV_SWEEP_TO_SC = [{"start": 10.0, "stop": 3.2, "step": 0.1},
                  {"start": 3.2, "stop": 0.6, "step": 0.02}]
THERMAL = {"band_k": 0.001, "hold_s": 2.0, "timeout_s": 600.0}


@dataclass
class RunningLab:
    """The processes and what the tests need of them."""

    path: Path
    config: LabConfig
    data: dict[str, Any]
    services: list[Service] = field(default_factory=list)
    victim: Service | None = None
    victim_path: Path | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    def start(self, service: Service, ready: str) -> Service:
        self.services.append(service)
        service.wait_line(ready)
        return service

    def lab(self, name: str = "runs-test") -> Lab:
        return Lab(self.config, client=name, timeout_s=15.0)

    def engine(self) -> RunEngine:
        return RunEngine(self.config, progress_bar=False, handle_signals=False, flush_s=30.0)

    def run(self, recipe: dict[str, Any]) -> RunOutcome:
        return self.engine().run(recipe_from_mapping(recipe, file="test-recipe"))

    def latest(self, stream: str) -> float:
        bus = self.config.bus
        with Subscriber(bus.subscribe_url, [f"data/{stream}"],
                        snapshot_url=bus.snapshot_url) as sub:
            for msg in sub.snapshot(f"data/{stream}", timeout_s=5.0):
                if msg.stream == f"data/{stream}":
                    return msg.value
            msg = sub.recv(10.0)
            assert msg is not None, f"no value of {stream}"
            return msg.value

    def history(self) -> HistoryClient:
        assert self.config.logger is not None
        return HistoryClient(self.config.logger.history_endpoint, timeout_s=10.0)

    def bias_at_the_simulator(self) -> float:
        """``VOLT?`` of the SIM928 in port 1, over a connection of our own (the simulated
        mainframe gives each connection its own port queues)."""
        port = int(self.data["simulation"]["instruments"]["sim900"]["port"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b'SNDT 1,"VOLT?"\nGETN? 1,128\n')
            data = b""
            while not data.endswith(b"\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, "the simulator closed the connection"
                data += chunk
        return float(data[5 : 5 + int(data[2:5])])


def _report(what: str, got: float, truth: float) -> None:
    """One line for the record: what the run found beside the simulator's truth."""
    print(f"\n  {what}: {got:.6g} (simulator {truth:.6g}, {100 * (got / truth - 1):+.2f} %)")


def _fast_polls(data: dict[str, Any]) -> None:
    """Records and thermometry often enough for runs at this time scale."""
    for name, channels, period in (("scope", {"squid_out"}, 0.03),
                                   ("sim900", {"bath_temperature"}, 0.1),
                                   ("sr830", {"lockin_x"}, 0.1),
                                   ("ls372", {"mxc_control"}, 0.1),
                                   ("ls336", {"t4k"}, 0.2)):
        for poll in data["instruments"][name]["poll"]:
            if poll["channel"] in channels:
                poll["period_s"] = period


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    tmp = tmp_path_factory.mktemp("runs")
    path, victim_path, data = sim_lab_config(tmp, time_scale=TIME_SCALE, victim="ls336")
    _fast_polls(data)
    path.write_text(yaml.safe_dump(data))
    running = RunningLab(path, load_config(path), data, victim_path=victim_path)
    try:
        running.start(qupdaq("broker", str(path)), "broker ready")
        running.start(qupdaq("sim", str(path)), "sim ready")
        assert victim_path is not None
        running.victim = running.start(qupdaq("sim", str(victim_path), name="victim"),
                                       "sim ready")
        running.start(qupdaq("logger", str(path)), "logger ready")
        running.start(qupdaq("daemon", str(path)), "daemon ready")
        yield running
    finally:
        for service in reversed(running.services):
            service.stop()


def _iv_recipe(name: str = "iv-e2e", **extra: Any) -> dict[str, Any]:
    return {"name": name, "procedure": "iv", "sample": "sim A30",
            "iv": {"bias_v": IV_SWEEP, "thermal_overbias": THERMAL, **extra}}


def _truth_op(bias_v: float, t_bath: float) -> Any:
    return operating_point(PARAMS, bias_v / R_BIAS, t_bath)


# ---- I-V (with the lease and the storage) ------------------------------------------------------


@pytest.fixture(scope="module")
def iv_run(lab: RunningLab) -> dict[str, Any]:
    """An I-V, run in a thread while another client tries to take the bias."""
    out: dict[str, Any] = {}

    def work() -> None:
        out["outcome"] = lab.run(_iv_recipe(bias_v=IV_SWEEP_TO_SC))

    bus = lab.config.bus
    with Subscriber(bus.subscribe_url, ["run/"]) as sub:
        thread = threading.Thread(target=work)
        thread.start()
        start = None
        while start is None:
            msg = sub.recv(30.0)
            assert msg is not None, "the run never started"
            if msg.channel == "start":
                start = msg
        with lab.lab("someone-else") as other:
            try:
                other.set("tes1/bias_voltage", 1.0)
            except ControlError as exc:
                out["refusal"] = str(exc)
            out["read_while_leased"] = other.get("tes1/bias_voltage")
        out["run_id"] = start.source
        out["t_bath"] = lab.latest("fridge1/mxc_control")
        thread.join(600)
    return out


def test_iv_recovers_rn_and_psat_through_the_daemon(iv_run: dict[str, Any]) -> None:
    outcome: RunOutcome = iv_run["outcome"]
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    result = outcome.result
    t_bath = iv_run["t_bath"]
    assert result["r_n_ohm"] == pytest.approx(PARAMS.r_n, rel=0.02, abs=0)
    truth_psat = _truth_op(R_BIAS * _bias_for(PARAMS, 0.9, t_bath), t_bath).p
    _report("I-V R_n (ohm)", result["r_n_ohm"], PARAMS.r_n)
    _report("I-V P_sat at 90 % R_n (W)", result["p_sat_w"], truth_psat)
    _report("I-V R_par (ohm)", result["r_par_ohm"], PARAMS.r_par)
    assert result["p_sat_w"] == pytest.approx(truth_psat, rel=0.03, abs=0)
    assert result["r_par_ohm"] == pytest.approx(PARAMS.r_par, abs=0.03e-3)  # a short SC branch
    assert 1.7 < result["latch_bias_v"] < 2.2  # the latch: about 1.9 V at this bath


def _bias_for(params: Any, fraction: float, t_bath: float) -> float:
    from simulators.physics.tes import bias_for_resistance

    return bias_for_resistance(params, fraction, t_bath=t_bath)


def test_a_set_from_another_client_during_a_run_is_refused_with_the_runs_name(
        iv_run: dict[str, Any]) -> None:
    refusal = iv_run.get("refusal", "")
    assert f"tes1/bias_voltage is held by run '{iv_run['run_id']}'" in refusal
    assert "reads work" in refusal
    assert isinstance(iv_run["read_while_leased"], float)


def test_the_run_is_stored_and_its_analysis_redone_from_the_file_alone(
        lab: RunningLab, iv_run: dict[str, Any]) -> None:
    outcome: RunOutcome = iv_run["outcome"]
    assert outcome.archived
    with lab.history() as history:
        rows = history.run_index(procedure="iv")
        assert outcome.run_id in [row["run"] for row in rows]
        row, path = history.run_entry(outcome.run_id)
    assert row["status"] == "completed" and row["points"] == outcome.points
    assert row["summary"]["r_n_ohm"] == outcome.result["r_n_ohm"]
    stored = open_run(path)
    assert stored.start.procedure == "iv" and stored.start.sample == "sim A30"
    settings = {s["target"]: s for s in stored.start.settings}
    assert "tes1/bias_voltage" in settings and "value" in settings["tes1/bias_voltage"]
    assert "tes1/bias_voltage" in stored.start.targets
    assert stored.attachments["lab.yaml"].startswith("lab:") or "instruments:" in \
        stored.attachments["lab.yaml"]
    assert stored.stop is not None and stored.stop.status is RunStatus.COMPLETED
    assert stored.stop.safe_state and "tes1/bias_voltage = 0 V" in stored.stop.safe_state
    assert stored.plots["iv"].startswith(b"\x89PNG")
    assert stored.result == outcome.result
    again = reanalyze(stored)
    assert again.result == stored.result  # the same numbers, from the file alone


# ---- V-Phi ---------------------------------------------------------------------------------


def test_vphi_period_is_phi0_in_the_feedback_coil_and_the_loop_locks(lab: RunningLab) -> None:
    outcome = lab.run({"name": "vphi-e2e", "procedure": "vphi",
                       "safe_state": {"bias_v": None, "modulation_off": False},
                       "vphi": {"flux_start_a": 0.0, "flux_stop_a": 1e-4, "points": 151}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    _report("V-Phi period (A)", outcome.result["period_a"], FLUX_LINE_A_PER_PHI0)
    assert outcome.result["period_a"] == pytest.approx(FLUX_LINE_A_PER_PHI0, rel=0.01, abs=0)
    assert outcome.result["mutual_inductance_h"] == pytest.approx(PHI0 / 20e-6, rel=0.01, abs=0)
    assert not outcome.result["locked_clipped"]
    assert abs(outcome.result["locked_output_v"]) < 0.1  # relocked at the lock point


# ---- noise and pulses at 30 % of R_n --------------------------------------------------------


def _op_bias(iv_run: dict[str, Any], fraction: float) -> float:
    outcome: RunOutcome = iv_run["outcome"]
    recipe = recipe_from_mapping(_iv_recipe(), file="test-recipe")
    iv = analyze_stream(outcome.data.points["iv"], recipe.params(), recipe.detector)
    return bias_for_fraction(iv, fraction, R_BIAS)


def test_noise_at_1khz_matches_the_simulators_model(lab: RunningLab,
                                                    iv_run: dict[str, Any]) -> None:
    bias = _op_bias(iv_run, 0.3)
    outcome = lab.run({"name": "noise-e2e", "procedure": "noise",
                       "safe_state": {"bias_v": None},  # stay on the transition
                       "noise": {"operating_point": {"bias_v": bias},
                                 "iv": {"bias_v": IV_SWEEP, "thermal_overbias": THERMAL},
                                 "records": 30, "segment_samples": 4096,
                                 "record": {"points": 16384, "sample_interval_s": 1e-6}}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    op = _truth_op(bias, lab.latest("fridge1/mxc_control"))
    model = float(np.sqrt(noise_psd(PARAMS, op, np.array([1e3])).total[0]))
    _report("noise at 1 kHz (A/rtHz)", outcome.result["noise_a_per_rthz"], model)
    assert outcome.result["noise_a_per_rthz"] == pytest.approx(model, rel=0.2, abs=0)
    assert outcome.result["vetoed"] >= 1  # photons arrive: some records held a pulse


def test_pulse_fall_time_matches_the_simulator(lab: RunningLab, iv_run: dict[str, Any]) -> None:
    bias = _op_bias(iv_run, 0.3)
    outcome = lab.run({"name": "pulses-e2e", "procedure": "pulses",
                       "safe_state": {"bias_v": None},
                       "pulses": {"operating_point": {"bias_v": bias},
                                  "iv": {"bias_v": IV_SWEEP, "thermal_overbias": THERMAL},
                                  "records": 60, "noise_records": 20}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    ss = small_signal(PARAMS, _truth_op(bias, lab.latest("fridge1/mxc_control")))
    _report("pulse fall time (s)", outcome.result["fall_s"], ss.tau_minus)
    assert outcome.result["fall_s"] == pytest.approx(ss.tau_minus, rel=0.10, abs=0)
    assert 0 < outcome.result["resolution_fwhm_predicted_ev"] < 5.0


# ---- complex impedance -----------------------------------------------------------------------


def test_impedance_gives_loop_gain_and_tau(lab: RunningLab) -> None:
    outcome = lab.run({"name": "didv-e2e", "procedure": "impedance",
                       "impedance": {"operating_points": [{"r_fraction": 0.5},
                                                          {"r_fraction": 0.3}],
                                     "iv": {"bias_v": IV_SWEEP, "thermal_overbias": THERMAL},
                                     "records": 20}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    t_bath = lab.latest("fridge1/mxc_control")
    points = outcome.result["operating_points"]
    assert len(points) == 2
    for point in points:
        ss = small_signal(PARAMS, _truth_op(point["bias_v"], t_bath))
        _report(f"dI/dV {point['name']} loop gain", point["loop_gain"], ss.loop_gain)
        _report(f"dI/dV {point['name']} tau (s)", point["tau_s"], ss.tau)
        assert point["loop_gain"] == pytest.approx(ss.loop_gain, rel=0.10, abs=0), point["name"]
        assert point["tau_s"] == pytest.approx(ss.tau, rel=0.10, abs=0), point["name"]
        assert point["beta"] == pytest.approx(ss.beta, rel=0.25, abs=0), point["name"]


# ---- suspend and resume --------------------------------------------------------------------


def test_a_run_suspends_on_a_stale_instrument_resumes_and_completes(lab: RunningLab) -> None:
    """The 4 K thermometer's controller dies mid-run and comes back."""
    recipe = {"name": "vphi-suspend", "procedure": "vphi",
              "safe_state": {"bias_v": None, "modulation_off": False},
              "suspend": {"settle_s": 2.0, "conditions": [
                  {"name": "t4k_stale", "kind": "stale", "stream": "fridge1/t4k",
                   "after_s": 2.0}]},
              "vphi": {"flux_start_a": 0.0, "flux_stop_a": 1e-4, "points": 121,
                       "lock": False}}
    out: dict[str, Any] = {}
    bus = lab.config.bus
    with Subscriber(bus.subscribe_url, ["run/"]) as sub:
        thread = threading.Thread(target=lambda: out.update(outcome=lab.run(recipe)))
        thread.start()
        done = 0
        while done < 20:  # some steps in, then the fault
            msg = sub.recv(60.0)
            assert msg is not None, "no progress"
            if msg.channel == "progress":
                done = int(msg.meta["done"])
        assert lab.victim is not None and lab.victim_path is not None
        lab.victim.kill()
        paused = None
        while paused is None:
            msg = sub.recv(60.0)
            assert msg is not None, "the run never paused"
            if msg.channel == "pause":
                paused = msg
        lab.victim = lab.start(qupdaq("sim", str(lab.victim_path), name="victim"), "sim ready")
        thread.join(600)
    outcome: RunOutcome = out["outcome"]
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    assert paused.meta["condition"] == "t4k_stale"
    assert outcome.pauses and outcome.pauses[0].t_resume_ns is not None
    assert outcome.points["vphi"] == 121  # the interrupted step was done again, not twice
    assert outcome.result["period_a"] == pytest.approx(FLUX_LINE_A_PER_PHI0, rel=0.01, abs=0)
    with lab.history() as history:
        _, path = history.run_entry(outcome.run_id)
    stored = open_run(path)
    assert stored.pauses[0].condition == "t4k_stale" and stored.stop is not None
    assert stored.stop.pauses == len(outcome.pauses)


# ---- qupdaq run: mistakes, Ctrl-C ----------------------------------------------------------


def _recipe_file(lab: RunningLab, tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump({**data, "lab": str(lab.path)}))
    return path


def test_a_recipe_with_mistakes_is_rejected_before_anything_moves(lab: RunningLab,
                                                                   tmp_path: Path) -> None:
    before = lab.bias_at_the_simulator()
    bad = _recipe_file(lab, tmp_path, {
        "name": "bad", "procedure": "iv",
        "detector": {"wiring": {"squid_out": "tes1/squid_outt"}},
        "iv": {"bias_v": [{"start": 15.0, "stop": 3.0, "step": 0.1},
                          {"start": 3.0, "stop": 0.0, "step": 0.02}]}})
    proc = qupdaq("run", str(bad), "--no-progress", name="run-bad")
    assert proc.proc.wait(60) == 2
    text = "\n".join(proc.lines)
    assert f"{bad}: 2 problems" in text
    assert "iv.bias_v: 15 V is outside the limits of tes1/bias_voltage (-12 to 12 V)" in text
    assert "detector.wiring.squid_out: unknown stream 'tes1/squid_outt'" in text
    assert "nothing moved" in text
    assert lab.bias_at_the_simulator() == before


def test_ctrl_c_stops_safely_with_the_bias_at_zero_and_stores_the_run_as_aborted(
        lab: RunningLab, tmp_path: Path) -> None:
    path = _recipe_file(lab, tmp_path, _iv_recipe("iv-ctrl-c"))
    bus = lab.config.bus
    with Subscriber(bus.subscribe_url, ["run/"]) as sub:
        proc = qupdaq("run", str(path), "--no-progress", name="run-ctrl-c")
        done, run_id = 0, ""
        while done < 15:
            msg = sub.recv(60.0)
            assert msg is not None, "\n".join(proc.lines[-20:])
            if msg.channel == "progress":
                done, run_id = int(msg.meta["done"]), msg.source
        assert lab.bias_at_the_simulator() > 1.0  # sweeping, somewhere on the way down
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(120) == 130, "\n".join(proc.lines[-20:])
    assert lab.bias_at_the_simulator() == 0.0
    assert any(line.startswith(f"run {run_id} aborted") for line in proc.lines)
    with lab.history() as history:
        row, stored_path = history.run_entry(run_id)
    assert row["status"] == "aborted" and 0 < row["points"]["iv"] < 150
    stopped = open_run(stored_path).stop
    assert stopped is not None and "SIGINT" in stopped.reason


# ---- R(T), last: it warms the bath ----------------------------------------------------------


def test_transition_temperature_from_a_ramp_up_and_down(lab: RunningLab) -> None:
    outcome = lab.run({"name": "rt-e2e", "procedure": "transition",
                       "safe_state": {"bias_v": 0.0, "mxc_setpoint_k": 0.0, "heater_off": True},
                       "transition": {"start_k": 0.047, "stop_k": 0.053,
                                      "rate_k_per_min": 0.002, "sweeps": 2,
                                      "stable": {"band_k": 0.001, "hold_s": 0.0,
                                                 "timeout_s": 900.0}}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    _report("T_c (K)", outcome.result["t_c_k"], PARAMS.t_c)
    assert outcome.result["t_c_k"] == pytest.approx(PARAMS.t_c, abs=1e-3)
    directions = {s["direction"] for s in outcome.result["sweeps"]}
    assert directions == {"warming", "cooling"}
    assert outcome.result["width_k"] < 3e-3


# ---- nesting: an I-V at each bath temperature, each once the bath is stable ------------------


def test_a_temperature_series_waits_for_each_bath_and_runs_an_iv_at_each(
        lab: RunningLab) -> None:
    band = 0.0005
    outcome = lab.run({"name": "series-e2e", "procedure": "temperature_series",
                       "safe_state": {"bias_v": 0.0, "mxc_setpoint_k": 0.0, "heater_off": True},
                       "temperature_series": {
                           "bath_k": [0.030, 0.040], "steps": ["iv"],
                           "stable": {"band_k": band, "hold_s": 2.0, "timeout_s": 900.0},
                           "ramp_k_per_min": 0.01,
                           "iv": {"bias_v": IV_SWEEP, "thermal_overbias": THERMAL}}})
    assert outcome.status is RunStatus.COMPLETED, outcome.reason
    rows = outcome.result["temperatures"]
    assert [row["target_k"] for row in rows] == [0.030, 0.040]

    def truth(t_bath: float) -> float:
        return float(_truth_op(R_BIAS * _bias_for(PARAMS, 0.9, t_bath), t_bath).p)

    p_sat = []
    for row in rows:
        assert abs(row["mxc_k"] - row["target_k"]) <= band  # measured once stable, not before
        # P_sat falls steeply with the bath (at 40 mK, 3.5 % per 0.5 mK): the truth is the
        # model's over the stability band around the reading, then the I-V's 3 %.
        low, high = truth(row["mxc_k"] + band), truth(row["mxc_k"] - band)
        got = row["iv"]["p_sat_w"]
        _report(f"series P_sat at {row['target_k'] * 1e3:.0f} mK (W)", got, truth(row["mxc_k"]))
        assert 0.97 * low <= got <= 1.03 * high, (got, low, high)
        p_sat.append(got)
    assert p_sat[1] < p_sat[0]  # a warmer bath takes less power to hold the TES at T_c
