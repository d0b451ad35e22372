"""The DASTARD bridge against the DASTARD simulator, as a real process on real sockets.

Each test starts ``python -m simulators.dastard`` on five consecutive free
ports and a :class:`~daq.dastard.DastardBridge` in this process emitting into
a sink. Nothing sleeps to wait: the simulator prints a ready line, the
bridge sets events (``wait_ready``, ``wait_settled``), the sink notifies.
The simulator's ``SimControl`` methods tell what it really sent.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from daq.bench.dastard import free_base_port
from daq.dastard import DastardBridge, DastardConfig
from daq.dastard.losses import LossTotals
from daq.dastard.rpc import RpcClient
from daq.messages import InstrumentState, Kind, Message
from tests.procs import Service

NS = 1_000_000_000


class Sink:
    """The daemon's outbound stage stand-in: keeps every message; can be slow on purpose."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.messages: list[Message] = []
        self.delay_s = 0.0

    def __call__(self, msg: Message) -> None:
        if self.delay_s and msg.kind is Kind.WAVE:
            time.sleep(self.delay_s)  # a sink that cannot keep up
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout_s: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.messages), timeout_s)

    def of(self, kind: Kind) -> list[Message]:
        with self.cond:
            return [m for m in self.messages if m.kind is kind]


class Sim:
    """The simulator process and a control connection to it."""

    def __init__(self, *args: str) -> None:
        self.base = free_base_port()
        self.proc = Service("-m", "simulators.dastard", "--base-port", str(self.base),
                            "--seed", "7", *args, name="dastard-sim")
        self.proc.wait_line("dastard-sim ready")
        self.rpc = RpcClient("127.0.0.1", self.base, timeout_s=10.0)

    def call(self, method: str, param: object = None) -> object:
        return self.rpc.call(method, param)

    def counts(self) -> dict[str, list[int]]:
        result = self.call("SimControl.Counts")
        assert isinstance(result, dict)
        return result

    def sent(self) -> list[list]:
        result = self.call("SimControl.Sent")
        assert isinstance(result, list)
        return result

    def stop(self) -> None:
        self.rpc.close()
        assert self.proc.stop() == 0, "\n".join(self.proc.lines[-20:])


@pytest.fixture
def sims() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def start(*args: str) -> Sim:
        sim = Sim(*args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def bridges() -> Iterator[Callable[..., DastardBridge]]:
    started: list[DastardBridge] = []

    def start(sink: Sink, **settings: object) -> DastardBridge:
        bridge = DastardBridge(DastardConfig(**settings), sink)  # type: ignore[arg-type]
        bridge.start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


def in_counted_range(totals: LossTotals, channel: int, frame: int) -> bool:
    return totals.counted_from[channel] < frame <= totals.counted_to[channel]


def wait_counting(bridge: DastardBridge, seconds_ahead: float = 0.0) -> None:
    """Until a counted window ending ``seconds_ahead`` from now (or later) is settled."""
    target = time.time_ns() + round(seconds_ahead * NS)
    assert bridge.wait_settled(target, 30.0), bridge.stats()


# ---- records --------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_record_arrives_intact_field_by_field(sims, bridges) -> None:
    sim = sims("--channels", "4", "--rate", "40", "--samples", "600", "--presamples", "150",
               "--sample-period", "4e-6", "--volts-per-count", "3e-5", "--log-sent")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base, source="tes1")
    assert bridge.wait_ready(20.0)
    wait_counting(bridge, 3.0)
    totals = bridge.losses.totals()
    sent = sim.sent()
    names = bridge.stats().channel_names
    assert names == ("chan1", "chan2", "chan3", "chan4")

    waves = {(m.meta["index"], m.meta["frame"]): m for m in sink.of(Kind.WAVE)}
    compared = Counter()
    for channel, frame, t_ns, pre, n, period, vpa, code, crc, withheld in sent:
        if not in_counted_range(totals, channel, frame):
            continue
        assert not withheld
        msg = waves.pop((channel, frame))  # every record the simulator sent arrived
        assert msg.stream == f"wave/tes1/{names[channel]}"
        assert msg.t == t_ns  # the trigger time is the message time
        assert msg.meta["presamples"] == pre == 150
        assert msg.meta["dt"] == 4e-6 and np.float32(msg.meta["dt"]) == np.float32(period)
        assert msg.meta["scale"] == 3e-5 and np.float32(msg.meta["scale"]) == np.float32(vpa)
        assert msg.meta["offset"] == 0.0
        assert msg.meta["t0"] == t_ns - round(pre * 4e-6 * 1e9)
        assert msg.units == "V"
        assert code == 2 and msg.data is not None and msg.data.dtype == np.dtype("<i2")
        assert msg.data.shape == (n,) == (600,)
        assert zlib.crc32(msg.data) == crc  # the samples, bit for bit
        # the samples are a view on the received frame, not a copy
        assert not msg.data.flags.owndata and not msg.data.flags.writeable
        compared[channel] += 1
    assert all(compared[c] >= 20 for c in range(4)), compared
    # nothing arrived in the counted range that the simulator did not send
    assert not [key for key in waves if in_counted_range(totals, *key)]
    assert totals.lost == (0, 0, 0, 0)
    assert totals.expected == tuple(compared[c] for c in range(4))
    # the record is physical: a positive pulse after the trigger sample
    example = next(m for m in sink.of(Kind.WAVE))
    volts = example.volts()
    assert volts[150:].max() - np.median(volts[:150]) > 0.5


@pytest.mark.slow
def test_withheld_records_are_reported_exactly_per_channel(sims, bridges) -> None:
    sim = sims("--channels", "4", "--rate", "40", "--samples", "500", "--presamples", "100")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge)
    sim.call("SimControl.Withhold", {"Channel": 1, "Count": 3})
    sim.call("SimControl.Withhold", {"Channel": 2, "Count": 5})
    wait_counting(bridge, 3.0)
    withheld = sim.counts()["withheld"]
    assert withheld == [0, 3, 5, 0]  # the simulator's own count of what it did not send
    totals = bridge.losses.totals()
    assert list(totals.lost) == withheld
    lost_streams = {m.channel: m.value for m in sink.of(Kind.DATA) if m.channel.endswith("_lost")}
    assert lost_streams["chan2_lost"] == 3 and lost_streams["chan3_lost"] == 5
    assert lost_streams["array_lost"] == 8
    status = [m for m in sink.of(Kind.STATUS) if m.meta.get("lost")]
    assert sink.wait_for(lambda ms: any(m.kind is Kind.STATUS and m.meta.get("lost") == 8
                                        for m in ms), 10.0), status
    final = next(m for m in reversed(sink.of(Kind.STATUS)) if m.meta.get("lost") == 8)
    assert final.meta["lost_by_channel"] == {"chan2": 3, "chan3": 5}


@pytest.mark.slow
def test_a_bridge_that_falls_behind_counts_every_lost_record(sims, bridges) -> None:
    # Big records and tiny high-water marks on both ends: a slow sink loses records quickly.
    sim = sims("--channels", "4", "--rate", "50", "--samples", "20000", "--presamples", "2000",
               "--hwm", "1", "--log-sent")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base, rcv_hwm=1)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge)
    sink.delay_s = 0.05  # 20 records/s against 200 made
    assert sink.wait_for(lambda ms: sum(m.kind is Kind.WAVE for m in ms) > 150, 60.0)
    sink.delay_s = 0.0
    wait_counting(bridge, 3.0)
    totals = bridge.losses.totals()
    sent = sim.sent()
    arrived = Counter((m.meta["index"]) for m in sink.of(Kind.WAVE)
                      if in_counted_range(totals, m.meta["index"], m.meta["frame"]))
    made = Counter(row[0] for row in sent if in_counted_range(totals, row[0], row[1]))
    truth = [made[c] - arrived[c] for c in range(4)]
    assert sum(truth) > 50, (truth, totals)  # the bridge did fall behind
    assert list(totals.lost) == truth  # and says exactly how far, per channel
    assert list(totals.expected) == [made[c] for c in range(4)]
    assert list(totals.received) == [arrived[c] for c in range(4)]


@pytest.mark.slow
def test_a_new_run_restarts_the_frame_count_without_false_losses(sims, bridges) -> None:
    sim = sims("--channels", "3", "--rate", "40", "--samples", "400", "--presamples", "100")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge)
    windows_before = bridge.losses.totals().windows
    assert sim.call("SourceControl.Stop", "dummy") is True
    assert sim.call("SourceControl.Start", "SIMPULSESOURCE") is True  # frames restart at 0
    wait_counting(bridge, 3.0)
    totals = bridge.losses.totals()
    assert totals.windows > windows_before
    assert totals.lost == (0, 0, 0) and totals.late == (0, 0, 0)
    frames = [m.meta["frame"] for m in sink.of(Kind.WAVE) if m.channel == "chan1"]
    assert any(b < a for a, b in zip(frames, frames[1:], strict=False))  # the restart


# ---- status ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_alive_silence_marks_the_source_stale_and_recovers(sims, bridges) -> None:
    sim = sims("--channels", "2", "--rate", "5", "--alive-period", "0.2")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base, stale_after_s=1.0)

    def state_is(state: InstrumentState) -> Callable[[list[Message]], bool]:
        return lambda ms: any(m.kind is Kind.STATUS and m.meta["state"] == state.value
                              for m in ms[mark:])

    mark = 0
    assert sink.wait_for(state_is(InstrumentState.CONNECTED), 20.0)
    assert bridge.alive
    mark = len(sink.messages)
    paused_at = time.monotonic()
    sim.call("SimControl.PauseAlive", True)
    assert sink.wait_for(state_is(InstrumentState.STALE), 10.0)
    assert time.monotonic() - paused_at >= 1.0
    assert not bridge.alive and bridge.state is InstrumentState.STALE
    stale = next(m for m in sink.of(Kind.STATUS) if m.meta["state"] == "stale")
    assert stale.stream == "status/tes_array/dastard" and "ALIVE" in stale.meta["message"]
    mark = len(sink.messages)
    sim.call("SimControl.PauseAlive", False)
    assert sink.wait_for(state_is(InstrumentState.CONNECTED), 10.0)
    assert bridge.alive


@pytest.mark.slow
def test_a_bridge_started_before_dastard_connects_when_it_comes(bridges) -> None:
    base = free_base_port()
    sink = Sink()
    bridge = bridges(sink, base_port=base)
    assert bridge.state is InstrumentState.DISCONNECTED and not bridge.alive
    assert not bridge.wait_ready(0.5)
    proc = Service("-m", "simulators.dastard", "--base-port", str(base), "--channels", "3",
                   "--rate", "20", name="dastard-sim")
    try:
        proc.wait_line("dastard-sim ready")
        assert bridge.wait_ready(20.0)
        assert sink.wait_for(lambda ms: sum(m.kind is Kind.WAVE for m in ms) >= 10, 20.0)
        assert bridge.stats().channel_names == ("chan1", "chan2", "chan3")
    finally:
        assert proc.stop() == 0


@pytest.mark.slow
def test_trigger_rates_and_data_drops_are_streams_and_a_drop_is_no_loss(sims, bridges) -> None:
    sim = sims("--channels", "3", "--rate", "60", "--samples", "400", "--presamples", "100")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge)
    sim.call("SimControl.DropFrames", 250_000)  # half a second of samples never arrives
    wait_counting(bridge, 3.0)
    stats = bridge.stats()
    assert stats.data_drops == 1 == sim.counts()["data_drops"]
    assert stats.losses.lost == (0, 0, 0)
    drops = [m for m in sink.of(Kind.DATA) if m.channel == "data_drops"]
    assert [m.value for m in drops][-1] == 1
    rates = [m for m in sink.of(Kind.DATA) if m.channel == "chan1_trigger_rate"]
    assert rates and all(m.units == "Hz" for m in rates)
    windows = sim.call("SimControl.Windows")
    assert isinstance(windows, list)
    by_time = {w["HiTime"]: w["CountsSeen"][0] for w in windows}
    for m in rates:  # each rate is DASTARD's count in its window over the window's second
        assert m.value == by_time[m.t]
    assert 20 < np.median([m.value for m in rates]) < 120


# ---- summaries and secondaries -----------------------------------------------------------------


@pytest.mark.slow
def test_summaries_only_mode_takes_no_records(sims, bridges) -> None:
    sim = sims("--channels", "3", "--rate", "40", "--samples", "500", "--presamples", "125",
               "--summaries", "--log-sent")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base, summaries_only=True, summary_batch_s=0.2)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge, 3.0)
    totals = bridge.losses.totals()
    assert sink.of(Kind.WAVE) == []
    assert totals.lost == (0, 0, 0) and totals.windows >= 2
    made = Counter(row[0] for row in sim.sent() if in_counted_range(totals, row[0], row[1]))
    assert list(totals.expected) == [made[c] for c in range(3)]
    data = sink.of(Kind.DATA)
    streams = {m.channel for m in data}
    for quantity in ("pretrig_mean", "peak", "pulse_rms", "pulse_average", "residual_std",
                     "trigger_rate", "lost"):
        assert f"chan1_{quantity}" in streams
    peaks = np.concatenate([m.data["value"] for m in data if m.channel.endswith("_peak")])
    # the three photon lines of the simulated TES, ~8100 to ~12000 counts above baseline
    assert np.percentile(peaks, 5) > 6000 and np.percentile(peaks, 95) < 14000
    assert all(m.units == "counts" for m in data if m.channel.endswith("_peak"))


@pytest.mark.slow
def test_secondary_records_and_summaries_alongside_primaries(sims, bridges) -> None:
    sim = sims("--channels", "3", "--rate", "30", "--samples", "400", "--presamples", "100",
               "--secondary", "--summaries", "--summary-coefficients", "3", "--unsigned")
    sink = Sink()
    bridge = bridges(sink, base_port=sim.base, secondary=True, summaries=True)
    assert bridge.wait_ready(20.0)
    wait_counting(bridge, 2.0)
    waves = sink.of(Kind.WAVE)
    secondary = [m for m in waves if m.channel.endswith("_secondary")]
    primary = [m for m in waves if not m.channel.endswith("_secondary")]
    assert secondary and primary
    assert all(m.data is not None and m.data.dtype == np.dtype("<u2") for m in waves)
    # a cross-talk record on the next channel at the primary's frame
    frames = {(m.meta["index"], m.meta["frame"]) for m in primary}
    assert all(((m.meta["index"] - 1) % 3, m.meta["frame"]) in frames for m in secondary[:20])
    assert bridge.losses.totals().lost == (0, 0, 0)  # counted on primaries only
    streams = {m.channel for m in sink.of(Kind.DATA)}
    assert {"chan1_coef0", "chan1_coef1", "chan1_coef2"} <= streams
    assert bridge.stats().secondary == len(secondary)


def test_the_daemon_runs_the_bridge_and_its_records_reach_the_bus(
        sims: Callable[..., Sim], tmp_path: object) -> None:
    """The config's dastard section: the daemon (a real process) bridges the array."""
    from pathlib import Path

    import yaml

    from daq.bus import Subscriber
    from tests.procs import bus_section, free_port, qupdaq

    sim = sims("--channels", "4", "--rate", "20", "--samples", "500")
    base = Path(str(tmp_path))
    bus = bus_section()
    config = base / "lab.yaml"
    config.write_text(yaml.safe_dump({
        "bus": bus,
        "daemon": {"name": "daemon-array", "state_dir": str(base / "state"),
                   "control": {"bind": f"tcp://127.0.0.1:{free_port()}"}},
        "dastard": {"host": "127.0.0.1", "base_port": sim.base, "source": "tes_array",
                    "stale_after_s": 3.0}}))
    broker = qupdaq("broker", str(config))
    broker.wait_line("broker ready")
    daemon = qupdaq("daemon", str(config))
    try:
        daemon.wait_line("daemon ready")
        sub = Subscriber(f"tcp://127.0.0.1:{bus['subscribe_port']}", ["wave/tes_array/",
                                                                      "status/tes_array/"])
        try:
            records: list[Message] = []
            status: list[Message] = []
            end = time.monotonic() + 30
            while time.monotonic() < end and (len(records) < 20 or not any(
                    m.meta["state"] == "connected" for m in status)):
                msg = sub.recv(1.0)
                if msg is not None:
                    (records if msg.kind is Kind.WAVE else status).append(msg)
            # DASTARD goes away (a restart, a crash): the source is stale, the daemon goes on
            # (a bridge waiting for DASTARD is not a dead part to restart until it gives up)
            sim.stop()
            went_quiet = time.monotonic()
            quiet: list[str] = []
            while time.monotonic() - went_quiet < 20:
                msg = sub.recv(1.0)
                if msg is not None and msg.kind is Kind.STATUS:
                    quiet.append(msg.meta["state"])
            assert daemon.proc.poll() is None, daemon.lines[-10:]
            assert "stale" in quiet or "disconnected" in quiet, quiet
        finally:
            sub.close()
    finally:
        assert daemon.stop() == 0
        broker.stop()
    assert len(records) >= 20 and status
    assert {m.pub for m in records} == {"daemon-array"}  # stamped by the daemon's outbound
    assert all(m.data is not None and m.data.shape == (500,) for m in records)
    assert any(m.meta["state"] == "connected" for m in status)
