"""A soak of the whole simulated lab at ten times its normal poll rates, with the logger
stopped for half of it: memory, threads and file descriptors of every process stay flat, the
daemon's memory stays within a stated bound through the outage, and afterwards the archive
holds every sample exactly once.

Ten minutes by default (a five-minute logger outage in the middle); the duration is
``QUPDAQ_SOAK_S`` seconds (1800 for the documented half-hour run).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from daq.config import load_config
from daq.logger.history import HistoryClient
from tests.archive_check import read_archive
from tests.procs import Service, qupdaq, sim_lab_config

SOAK_S = float(os.environ.get("QUPDAQ_SOAK_S", "600"))
SAMPLE_S = min(60.0, SOAK_S / 10)
RATE_FACTOR = 10.0
#: The daemon's resident memory may grow at most this much while the logger is away.
OUTAGE_RSS_BOUND_MB = 80.0
#: Growth allowed between the first sample after warm-up and the last (a leak shows more).
FLAT_RSS_MB = 40.0
FLAT_THREADS = 3
FLAT_FDS = 10


@dataclass(frozen=True)
class Sample:
    t: float
    rss_mb: float
    threads: int
    fds: int


def _sample(pid: int, t: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":", 1)[1].split() for line in status}
    return Sample(t, int(fields["VmRSS"][0]) / 1024, int(fields["Threads"][0]),
                  len(os.listdir(f"/proc/{pid}/fd")))


def _faster(data: dict) -> None:  # type: ignore[type-arg]
    for inst in data["instruments"].values():
        for poll in inst.get("poll") or []:
            poll["period_s"] = max(0.05, poll.get("period_s", 1.0) / RATE_FACTOR)
    data["daemon"]["status_period_s"] = 0.5


def _flat(name: str, samples: list[Sample]) -> None:
    if len(samples) < 3:
        return
    settled = samples[1:]  # the first sample is warm-up (imports, caches, pools filling)
    rss_growth = settled[-1].rss_mb - settled[0].rss_mb
    threads = [s.threads for s in settled]
    fds = [s.fds for s in settled]
    assert rss_growth <= FLAT_RSS_MB, f"{name}: RSS grew {rss_growth:.1f} MB: {settled}"
    assert max(threads) - min(threads) <= FLAT_THREADS, f"{name}: threads {threads}"
    assert max(fds) - min(fds) <= FLAT_FDS, f"{name}: file descriptors {fds}"


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 300)
def test_soak_at_ten_times_the_poll_rates_with_a_logger_outage(tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path, time_scale=1.0)
    _faster(data)
    import yaml

    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.logger is not None
    outage = (0.2 * SOAK_S, 0.7 * SOAK_S)
    procs: dict[str, Service] = {}
    for name, ready in (("broker", "broker ready"), ("sim", "sim ready"),
                        ("logger", "logger ready"), ("daemon", "daemon ready")):
        procs[name] = qupdaq(name, str(path))
        procs[name].wait_line(ready)
    lives: dict[str, list[list[Sample]]] = {name: [[]] for name in procs}
    start = time.monotonic()
    logger_down = False
    next_sample = start
    daemon_before_outage = 0.0
    daemon_peak_in_outage = 0.0
    try:
        while (now := time.monotonic()) - start < SOAK_S:
            elapsed = now - start
            if not logger_down and outage[0] <= elapsed < outage[1]:
                daemon_before_outage = _sample(procs["daemon"].proc.pid, elapsed).rss_mb
                assert procs["logger"].stop() == 0
                logger_down = True
            elif logger_down and elapsed >= outage[1]:
                procs["logger"] = qupdaq("logger", str(path))
                procs["logger"].wait_line("logger ready")
                lives["logger"].append([])
                logger_down = False
            if now >= next_sample:
                next_sample += SAMPLE_S
                for name, service in procs.items():
                    if name == "logger" and logger_down:
                        continue
                    assert service.proc.poll() is None, f"{name} died: {service.lines[-20:]}"
                    sample = _sample(service.proc.pid, elapsed)
                    lives[name][-1].append(sample)
                    if name == "daemon" and logger_down:
                        daemon_peak_in_outage = max(daemon_peak_in_outage, sample.rss_mb)
            time.sleep(0.5)
        daemon_peak_in_outage = max(daemon_peak_in_outage,
                                    _sample(procs["daemon"].proc.pid, SOAK_S).rss_mb)
        assert procs["daemon"].stop(timeout_s=60) == 0  # flushes and closes its session
        with HistoryClient(config.logger.history_endpoint, timeout_s=10) as history:
            duplicates = int(history.status()["duplicates"])
    finally:
        for service in reversed(list(procs.values())):
            service.stop()
    for name, runs in lives.items():
        for samples in runs:
            print(name, [(round(s.t), round(s.rss_mb, 1), s.threads, s.fds) for s in samples])
            _flat(name, samples)
    growth = daemon_peak_in_outage - daemon_before_outage
    sessions = read_archive(tmp_path / "data" / "qupdaq.sqlite")
    ours = [s for s in sessions.values() if s.stream.split("/")[0] in ("data", "wave")]
    stored = sum(len(s.stored) for s in ours)
    outage_messages = stored * (outage[1] - outage[0]) / SOAK_S
    print(f"soak {SOAK_S:.0f} s: daemon RSS {daemon_before_outage:.1f} MB before the outage, "
          f"peak {daemon_peak_in_outage:.1f} MB in it (bound +{OUTAGE_RSS_BOUND_MB:.0f} MB); "
          f"{stored} messages archived, ~{outage_messages:.0f} during the outage, "
          f"{duplicates} duplicates at the logger")
    assert growth <= OUTAGE_RSS_BOUND_MB
    for session in ours:
        assert session.unaccounted() == set(), (session.stream, sorted(session.unaccounted())[:5])
        assert session.gaps == [], (session.stream, session.gaps)
    assert duplicates <= 3 * outage_messages
