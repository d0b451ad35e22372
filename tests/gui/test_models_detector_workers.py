"""The TES view's model, and the dashboard's I/O threads against real sockets (no Qt)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from daq import messages
from daq.bus import Broker, Publisher
from daq.config import LabConfig, load_config
from daq.dashboard_config import DetectorView
from daq.messages import Message, Quality
from gui.models.control import Command
from gui.models.detector import DetectorModel
from gui.models.format import Reading, Tone
from gui.models.workers import BusFeed, ControlWorker, Liveness
from tests.procs import free_port

AMPS_PER_VOLT = -2.5e-6
DT = 1e-6


def _record(volts: np.ndarray, presamples: int, quality: int = 0) -> Message:
    scale = 1e-4
    msg = messages.waveform("tes1", "squid_out", np.round(volts / scale).astype(np.int16),
                            dt=DT, scale=scale, presamples=presamples, quality=quality)
    msg.t_recv = msg.t
    return msg


def test_records_are_drawn_in_microseconds_and_the_noise_is_in_amperes_per_root_hertz() -> None:
    model = DetectorModel("tes1", DetectorView(record="tes1/squid_out",
                                               amps_per_volt=AMPS_PER_VOLT), psd_every_s=0)
    rng = np.random.default_rng(0)
    sigma_v = 0.01
    for k in range(20):
        volts = rng.normal(0.0, sigma_v, 2048)
        volts[512:] += 0.5 * np.exp(-np.arange(1536) / 200.0)  # a pulse after the trigger
        assert model.apply(_record(volts, 512), now=float(k) * 0.1)
    rec = model.record
    assert rec is not None and rec.t_us[512] == 0.0 and rec.t_us[513] == pytest.approx(1.0)
    assert rec.amps[600] == pytest.approx(rec.volts[600] * AMPS_PER_VOLT)
    spectrum = model.spectrum(now=10.0)
    assert spectrum is not None and spectrum.pretrigger and spectrum.n_records == 20
    # white noise of sigma_v volts: 2 sigma^2 / fs A^2/Hz after the readout's conversion
    expected = np.sqrt(2 * sigma_v**2 * DT) * abs(AMPS_PER_VOLT)
    assert spectrum.white_a_per_rthz == pytest.approx(expected, rel=0.2)
    assert model.trigger_rate(now=2.0) == pytest.approx(10.0, rel=0.1)
    assert len(model.overlay) == 12


def test_a_clipped_record_is_shown_but_never_averaged() -> None:
    model = DetectorModel("tes1", DetectorView(record="tes1/squid_out"), psd_every_s=0)
    model.apply(_record(np.zeros(256), 0, int(Quality.CLIPPED)))
    assert model.flagged == 1 and model.spectrum() is None and model.record is not None


def test_the_lock_state_comes_from_the_configured_stream() -> None:
    locked = DetectorModel("t", DetectorView(record="t/r", lock="t/locked"))
    assert locked.lock_state(Reading(1.0)) == ("LOCKED", Tone.GOOD)
    assert locked.lock_state(Reading(0.0))[1] is Tone.ALARM
    assert locked.lock_state(Reading(1.0, quality=int(Quality.INVALID)))[1] is Tone.BAD
    # PFL-102 electronics cannot be read back: without a lock stream the records tell
    from_records = DetectorModel("tes1", DetectorView(record="tes1/squid_out"), psd_every_s=0)
    assert from_records.lock_state(None) == ("no records", Tone.NONE)
    from_records.apply(_record(np.zeros(256), 0, 0))
    assert from_records.lock_state(None) == ("output in range", Tone.GOOD)
    from_records.apply(_record(np.zeros(256), 1, int(Quality.CLIPPED)))
    assert from_records.lock_state(None)[1] is Tone.ALARM


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[tuple[Broker, LabConfig]]:
    broker = Broker()
    ends = broker.start()
    ports = {k: int(getattr(ends, k).rsplit(":", 1)[1]) for k in ("publish", "subscribe",
                                                                    "snapshot")}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump({"bus": {
        "host": "127.0.0.1", "publish_port": ports["publish"],
        "subscribe_port": ports["subscribe"], "snapshot_port": ports["snapshot"],
        "heartbeat_s": 0.2}}))
    yield broker, load_config(path)
    broker.stop()


def _drain(feed: BusFeed, until: object, timeout_s: float = 10.0) -> list[Message | Liveness]:
    seen: list[Message | Liveness] = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            item = feed.out.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(item)
        if until(item):  # type: ignore[operator]
            return seen
    raise AssertionError(f"not seen within {timeout_s} s; got {seen[-5:]}")


def test_the_bus_feed_gives_the_snapshot_then_live_data_and_says_when_a_publisher_dies(
        bus: tuple[Broker, LabConfig]) -> None:
    broker, config = bus
    pub = Publisher(config.bus.publish_url, name="daemon-x", heartbeat_s=0.2)
    assert pub.wait_for_subscriber("data/", timeout_s=10)
    pub.publish(messages.scalar("fridge1", "mxc", 0.013, units="K"))
    feed = BusFeed(config, liveness_every_s=0.1).start()
    try:
        _drain(feed, lambda m: isinstance(m, Message) and m.channel == "mxc")  # the snapshot
        pub.publish(messages.scalar("fridge1", "mxc", 0.014, units="K"))
        _drain(feed, lambda m: isinstance(m, Message) and m.value == 0.014)
        _drain(feed, lambda m: isinstance(m, Liveness) and m.connected
               and "daemon-x" in m.known and not m.stale)
        pub.close()  # the daemon dies: no more heartbeats
        died = time.monotonic()
        _drain(feed, lambda m: isinstance(m, Liveness) and "daemon-x" in m.stale)
        assert time.monotonic() - died < 2.0
    finally:
        feed.stop()


def test_a_control_to_a_daemon_that_is_not_there_fails_within_its_timeout(
        bus: tuple[Broker, LabConfig], tmp_path: Path) -> None:
    _, config = bus
    path = tmp_path / "dead.yaml"
    path.write_text(yaml.safe_dump({
        "bus": {"host": "127.0.0.1"},
        "daemon": {"control": {"bind": f"tcp://127.0.0.1:{free_port()}"}},
        "instruments": {"x": {"driver": "a:B", "resource": "X", "source": "f1"}}}))
    worker = ControlWorker(load_config(path), timeout_s=0.5).start()
    try:
        command = Command(None, "set", {"target": "f1/x", "value": 1})
        start = time.monotonic()
        worker.submit(command)
        answer = worker.out.get(timeout=5)
        assert answer.command is command and not answer.ok and not answer.refused
        assert "no reply from the daemon" in answer.error
        assert time.monotonic() - start < 3.0
    finally:
        worker.stop()
