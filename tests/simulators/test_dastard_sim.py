"""The DASTARD simulator: trigger statistics, physics of the stamped records, DASTARD's counting."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from daq.bench.dastard import free_base_port
from daq.dastard.errors import DastardRpcError
from daq.dastard.rpc import RpcClient
from daq.dastard.status import ChannelNames, ServerStatus, TriggerRate, parse_status
from daq.dastard.wire import SUMMARY_HEADER_DTYPE, Port
from simulators.dastard.bank import PulseBank
from simulators.dastard.config import SimConfig, load_sim_config
from simulators.dastard.records import projection_basis, summaries
from simulators.dastard.server import DastardSim
from simulators.dastard.triggers import TriggerSchedule

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


# ---- triggers -------------------------------------------------------------------------------


def test_triggers_come_at_the_configured_rate_with_a_hold_off() -> None:
    rng = np.random.default_rng(3)
    period, rate, holdoff = 2e-6, 200.0, 1000
    schedule = TriggerSchedule(64, rate, holdoff, period, rng)
    frames_per_s = round(1 / period)
    chans, frames = [], []
    for step in range(1, 21):  # 20 s in steps of 1 s
        c, f = schedule.take(step * frames_per_s)
        assert np.all(np.diff(f) >= 0)  # in frame order across channels
        chans.append(c)
        frames.append(f)
    channel, frame = np.concatenate(chans), np.concatenate(frames)
    per_channel = np.bincount(channel, minlength=64) / 20.0
    assert abs(per_channel.mean() - rate) < 0.02 * rate
    for c in range(64):
        gaps = np.diff(frame[channel == c])
        assert gaps.min() >= holdoff
    # beyond the hold-off the waits are exponential: coefficient of variation 1
    excess = np.concatenate([np.diff(frame[channel == c]) - holdoff for c in range(64)])
    assert 0.95 < excess.std() / excess.mean() < 1.05


def test_a_data_drop_leaves_no_trigger_in_the_lost_frames() -> None:
    schedule = TriggerSchedule(16, 1000.0, 10, 1e-6, np.random.default_rng(1))
    schedule.take(100_000)
    schedule.skip(100_000, 400_000)
    _, frames = schedule.take(1_000_000)
    assert frames.size > 0 and not np.any((frames >= 100_000) & (frames < 400_000))


def test_no_rate_means_no_triggers() -> None:
    schedule = TriggerSchedule(4, 0.0, 10, 1e-6, np.random.default_rng(1))
    channels, frames = schedule.take(10**9)
    assert channels.size == frames.size == 0


# ---- physics of the bank --------------------------------------------------------------------


@pytest.fixture(scope="module")
def bank() -> PulseBank:
    cfg = SimConfig(channels=8, samples=1000, presamples=250, energies_ev=(20.0, 40.0, 60.0))
    return PulseBank.build(cfg, np.random.default_rng(5))


def test_pulses_rise_at_the_trigger_sample_and_grow_with_energy(bank: PulseBank) -> None:
    pulses = bank.pulses.astype(float)
    assert np.all(pulses[:, :250] == 0)  # nothing before the photon
    peaks = pulses.max(axis=1)
    assert np.all(np.diff(peaks) > 0)  # more energy, bigger pulse
    assert np.all(pulses.argmax(axis=1) - 250 < 10)  # a fast rise (tau_+ ~ 7 us = 3.5 samples)
    # a TES saturates: 3x the energy gives less than 3x the pulse
    assert peaks[2] / peaks[0] < 3.0
    # and it decays back to the baseline within the record (tau_- ~ 29 us)
    assert np.all(np.abs(pulses[:, -100:]) < 2)


def test_noise_has_the_model_level_and_no_offset(bank: PulseBank) -> None:
    noise = bank.noise.astype(float)
    assert abs(noise.mean()) < 1.0
    # white TES + SQUID noise ~8 pA/rtHz, times 4e5 V/A, over 250 kHz, in 1e-4 V counts: ~15;
    # the 1/f SQUID noise adds more at long times
    assert 5 < noise.std() < 100


def test_stamped_records_are_noise_pulse_and_baseline(bank: PulseBank) -> None:
    rng = np.random.default_rng(2)
    channels = np.array([0, 3, 3, 7])
    rows = bank.stamp(channels, rng)
    assert rows.dtype == np.int16 and rows.shape == (4, 1000) and rows.flags.c_contiguous
    pre = rows[:, :250].mean(axis=1)
    assert np.allclose(pre, bank.baselines[channels], atol=60)
    assert np.all(rows[:, 250:].max(axis=1) - pre > 0.8 * bank.pulses.max(axis=1).min())
    faint = bank.stamp(channels, rng, crosstalk=0.01)
    assert np.all(faint[:, 250:].max(axis=1) - faint[:, :250].mean(axis=1) < 800)


def test_summaries_are_dastards_formulas() -> None:
    rng = np.random.default_rng(9)
    rows = rng.integers(-500, 500, (5, 40)).astype(np.int16)
    rows[:, 12:20] += 3000
    basis = projection_basis(rows[:2].astype(np.int16), 3, rng)
    head, coefs = summaries(rows, np.arange(5), np.arange(5) * 7, np.arange(5) * 11,
                            presamples=10, basis=basis)
    h = np.frombuffer(head, SUMMARY_HEADER_DTYPE)
    for i, row in enumerate(rows.astype(float)):  # process_data.go, AnalyzeData, by hand
        ptm = row[:10].mean()
        post = row[10:]
        assert h["pretrig_mean"][i] == np.float32(ptm)
        assert h["peak"][i] == np.float32(max(ptm, post.max()) - ptm)
        assert h["pulse_average"][i] == pytest.approx(post.mean() - ptm, rel=1e-6)
        assert h["pulse_rms"][i] == pytest.approx(np.sqrt(np.mean((post - ptm) ** 2)), rel=1e-5)
        model = basis @ (basis.T @ row)
        assert np.allclose(coefs[i], basis.T @ row)
        assert h["residual_std"][i] == pytest.approx(np.std(row - model), rel=1e-5)
    assert list(h["trigger_frame"]) == [0, 7, 14, 21, 28]
    assert np.allclose(basis.T @ basis, np.eye(3))


# ---- the server -----------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[DastardSim]:
    server = DastardSim(SimConfig(base_port=free_base_port(), channels=3, rate_hz=80.0,
                                  samples=300, presamples=60, log_sent=True, seed=4,
                                  alive_period_s=0.5))
    server.start()
    yield server
    server.stop()


def status_messages(base: int, wanted: int, timeout_s: float = 15.0) -> list[object]:
    """Status updates until ``wanted`` distinct TRIGGERRATE windows have come (blocking)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    sock.connect(f"tcp://127.0.0.1:{Port.STATUS.of(base)}")
    rpc = RpcClient("127.0.0.1", base)
    got: list[object] = []
    try:
        # The first message proves the subscription reached the publisher (a PUB drops
        # everything sent before); only then is asking for the full status meaningful.
        tag, body = sock.recv_multipart()
        got.append(parse_status(tag, body))
        rpc.call("SourceControl.SendAllStatus", "dummy")
        # Distinct windows: the full status repeats the newest window already sent.
        while len({u.hi_time_ns for u in got if isinstance(u, TriggerRate)}) < wanted:
            tag, body = sock.recv_multipart()
            got.append(parse_status(tag, body))
    finally:
        rpc.close()
        sock.close()
    return got


@pytest.mark.slow
def test_trigger_rate_counts_each_channels_triggers_in_dastards_windows(sim: DastardSim) -> None:
    updates = status_messages(sim.cfg.base_port, wanted=3)
    assert ChannelNames(("chan1", "chan2", "chan3")) in updates
    assert any(isinstance(u, ServerStatus) and u.running and u.nsamples == 300 for u in updates)
    with RpcClient("127.0.0.1", sim.cfg.base_port) as rpc:
        windows = rpc.call("SimControl.Windows")
        sent = rpc.call("SimControl.Sent")
    assert len(windows) >= 3
    t0 = sim.run_started_ns
    assert t0 is not None
    dt_ns = sim.cfg.sample_period_s * NS
    previous_hi = None
    for window in windows:
        assert window["HiTime"] % NS == 0 and window["Duration"] == NS  # on whole seconds
        hi = round((window["HiTime"] - t0) / dt_ns)
        counts = [0, 0, 0]
        for channel, frame, *_ in sent:
            if (previous_hi is None or frame > previous_hi) and frame <= hi:
                counts[channel] += 1
        assert counts == window["CountsSeen"]
        previous_hi = hi
    # every record's time is on the sample clock
    for _channel, frame, t_ns, *_ in sent[:50]:
        assert t_ns == t0 + round(frame * dt_ns)


def test_control_answers_like_dastard(sim: DastardSim) -> None:
    with RpcClient("127.0.0.1", sim.cfg.base_port) as rpc:
        assert rpc.call("SourceControl.SendAllStatus", "dummy") is False
        with pytest.raises(DastardRpcError, match="already have active source"):
            rpc.call("SourceControl.Start", "SIMPULSESOURCE")
        assert rpc.call("SourceControl.Stop", "dummy") is True
        with pytest.raises(DastardRpcError, match="No source is active"):
            rpc.call("SourceControl.Stop", "dummy")
        assert rpc.call("SourceControl.Start", "SIMPULSESOURCE") is True
        with pytest.raises(DastardRpcError, match="can't find method"):
            rpc.call("SourceControl.Nonsense", 1)
        with pytest.raises(DastardRpcError, match="Channel must be"):
            rpc.call("SimControl.Withhold", {"Channel": 9, "Count": 1})
        counts = rpc.call("SimControl.Counts")
        assert set(counts) >= {"triggered", "sent", "withheld", "secondary", "summaries"}


def test_the_simulator_reads_yaml_and_refuses_bad_settings(tmp_path: Path) -> None:
    good = tmp_path / "sim.yaml"
    good.write_text("dastard_sim:\n  channels: 16\n  rate_hz: 50\n  energies_ev: [30, 60]\n")
    cfg = load_sim_config(good, samples=2000)
    assert (cfg.channels, cfg.rate_hz, cfg.samples, cfg.energies_ev) == (16, 50.0, 2000,
                                                                         (30.0, 60.0))
    assert cfg.channel_names[-1] == "chan16"
    bad = tmp_path / "bad.yaml"
    bad.write_text("dastard_sim:\n  chanels: 16\n")
    result = subprocess.run([sys.executable, "-m", "simulators.dastard", str(bad)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "chanels" in result.stderr
    result = subprocess.run([sys.executable, "-m", "simulators.dastard", "--presamples", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "presamples" in result.stderr


def test_a_port_in_use_is_a_clean_failure() -> None:
    base = free_base_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", Port.PRIMARY.of(base)))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "simulators.dastard", "--base-port",
                                 str(base)], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert "Address already in use" in result.stderr and "Traceback" not in result.stderr


def test_status_bodies_are_json_as_dastard_sends_them(sim: DastardSim) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"ALIVE")
    sock.setsockopt(zmq.RCVTIMEO, 10_000)
    sock.connect(f"tcp://127.0.0.1:{Port.STATUS.of(sim.cfg.base_port)}")
    try:
        tag, body = sock.recv_multipart()
    finally:
        sock.close()
    assert tag == b"ALIVE"
    assert set(json.loads(body)) == {"Running", "Time", "DataMB", "HWactualMB"}


def test_a_free_base_port_is_outside_the_kernels_ephemeral_range() -> None:
    """DASTARD's consecutive ports cannot be picked by the kernel: drawn outside the range
    it hands to outgoing connections and to listeners on port 0, none is taken between
    the probe and the simulator's bind."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(20):
        base = free_base_port(5)
        assert base + 4 < low or base > high
        with contextlib.ExitStack() as stack:  # all five are free now
            for offset in range(5):
                sock = stack.enter_context(socket.socket())
                sock.bind(("127.0.0.1", base + offset))
