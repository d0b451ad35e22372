"""The DASTARD bridge at full rate: the simulator as a separate process, the bridge into a sink.

:func:`run` starts ``python -m simulators.dastard`` (256 channels x 100
triggers/s x 1000 int16 samples by default, 51.2 MB/s of samples), runs a
:class:`~daq.dastard.DastardBridge` in this process into a counting sink,
waits until the bridge counts losses (its first settled TRIGGERRATE window),
then measures for ``seconds``: records/s and MB/s of samples that reached
the sink, the CPU of each process from ``/proc/<pid>/stat`` (user + system,
in % of one core) and the records lost, by the bridge's own count against
DASTARD's (here the simulator's) trigger counts, over the windows that
ended within the measurement. Lost must be 0.

Run it with ``python -m daq.bench.dastard [--seconds 60] [--channels 256]
[--rate 100] [--samples 1000]``.
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from daq.dastard import DastardBridge, DastardConfig
from daq.messages import Kind, Message

ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "dastard-sim ready"


@dataclass(frozen=True)
class DastardBenchResult:
    """What one benchmark run measured.

    Attributes:
        seconds: the measured interval.
        channels, rate, samples: the simulated array.
        records: records that reached the sink in the interval.
        records_per_s: their rate (the array makes ``channels * rate``).
        mb_per_s: sample bytes per second that reached the sink (1 MB = 1e6 B).
        sim_cpu_percent: the simulator process, % of one core.
        bridge_cpu_percent: this process (bridge and sink), % of one core.
        lost: records DASTARD counted but the bridge never got, in the
            windows that ended within the interval.
        counted: records DASTARD counted in those windows.
        windows: those windows.
        late: records counted lost and then received late in those windows.
    """

    seconds: float
    channels: int
    rate: float
    samples: int
    records: int
    records_per_s: float
    mb_per_s: float
    sim_cpu_percent: float
    bridge_cpu_percent: float
    lost: int
    counted: int
    windows: int
    late: int

    @property
    def ok(self) -> bool:
        """No record was lost."""
        return self.lost == 0

    def report(self) -> str:
        """A few lines for a terminal."""
        return "\n".join([
            f"DASTARD bridge: {self.channels} channels x {self.rate:g} triggers/s x "
            f"{self.samples} samples, {self.seconds:.1f} s measured",
            f"  records/s     {self.records_per_s:10.0f}   (the array makes "
            f"{self.channels * self.rate:.0f})",
            f"  MB/s          {self.mb_per_s:10.2f}   (samples)",
            f"  CPU simulator {self.sim_cpu_percent:9.1f} %   (of one core)",
            f"  CPU bridge    {self.bridge_cpu_percent:9.1f} %   (of one core; bridge + sink)",
            f"  lost          {self.lost:10d}   of {self.counted} counted in {self.windows} "
            f"windows ({self.late} late)",
            f"  verdict       {'OK' if self.ok else 'RECORDS LOST'}",
        ])


class CountingSink:
    """Counts what the bridge emits (thread-safe); the logger will take its place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records = 0
        self.sample_bytes = 0
        self.other = 0

    def __call__(self, msg: Message) -> None:
        if msg.kind is Kind.WAVE and msg.data is not None:
            nbytes = msg.data.nbytes
            with self._lock:
                self.records += 1
                self.sample_bytes += nbytes
        else:
            with self._lock:
                self.other += 1

    def snapshot(self) -> tuple[int, int]:
        """(records, sample bytes) so far."""
        with self._lock:
            return self.records, self.sample_bytes


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after it are plain numbers.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def free_base_port(count: int = 5, attempts: int = 200) -> int:
    """A base port whose ``count`` consecutive ports were all free a moment ago."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def start_simulator(base_port: int, *extra: str) -> subprocess.Popen[str]:
    """``python -m simulators.dastard`` on ``base_port``; returns once it printed its ready line."""
    proc = subprocess.Popen([sys.executable, "-m", "simulators.dastard", "--base-port",
                             str(base_port), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    end = time.monotonic() + 60.0
    while (left := end - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(READY_PREFIX):
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError("the DASTARD simulator did not start:\n" + "\n".join(seen[-20:]))


def run(seconds: float = 60.0, channels: int = 256, rate: float = 100.0,
        samples: int = 1000, *, sim_hwm: int | None = None) -> DastardBenchResult:
    """Measure the bridge against the simulator for ``seconds`` (see the module docstring).

    Args:
        seconds: the measured interval.
        channels, rate, samples: the simulated array.
        sim_hwm: the simulator's send high-water mark (default: its own, 10 000;
            DASTARD's is 10).
    """
    base = free_base_port()
    extra = ["--hwm", str(sim_hwm)] if sim_hwm is not None else []
    sim = start_simulator(base, "--channels", str(channels), "--rate", str(rate),
                          "--samples", str(samples), "--presamples", str(samples // 4), *extra)
    sink = CountingSink()
    bridge = DastardBridge(DastardConfig(base_port=base, source="bench"), sink)
    try:
        bridge.start()
        if not bridge.wait_ready(30.0):
            raise RuntimeError("the bridge got no channel names from the simulator")
        # Measure once losses are being counted (the first counted window is settled).
        if not bridge.wait_settled(time.time_ns(), 30.0):
            raise RuntimeError("the bridge settled no trigger-count window")
        before = bridge.losses.totals()
        t0 = time.monotonic()
        sim0, own0 = cpu_seconds(sim.pid), cpu_seconds(os.getpid())
        records0, bytes0 = sink.snapshot()
        time.sleep(seconds)  # the measurement itself
        records1, bytes1 = sink.snapshot()
        sim1, own1 = cpu_seconds(sim.pid), cpu_seconds(os.getpid())
        elapsed = time.monotonic() - t0
        end_wall = time.time_ns()
        # Windows ending up to the end of the interval settle a little later.
        bridge.wait_settled(end_wall - 1_000_000_000, 30.0)
        after = bridge.losses.totals()
    finally:
        bridge.stop()
        sim.terminate()
        try:
            sim.wait(15)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    records = records1 - records0
    return DastardBenchResult(
        seconds=elapsed, channels=channels, rate=rate, samples=samples, records=records,
        records_per_s=records / elapsed, mb_per_s=(bytes1 - bytes0) / elapsed / 1e6,
        sim_cpu_percent=100.0 * (sim1 - sim0) / elapsed,
        bridge_cpu_percent=100.0 * (own1 - own0) / elapsed,
        lost=after.total_lost - before.total_lost,
        counted=sum(after.expected) - sum(before.expected),
        windows=after.windows - before.windows, late=sum(after.late) - sum(before.late))


def main(argv: list[str] | None = None) -> int:
    """``python -m daq.bench.dastard``: print the figures; exit 1 if records were lost."""
    parser = argparse.ArgumentParser(prog="python -m daq.bench.dastard",
                                     description="The DASTARD bridge against the simulator.")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sim-hwm", type=int, default=None,
                        help="the simulator's send high-water mark (DASTARD uses 10)")
    args = parser.parse_args(argv)
    result = run(args.seconds, args.channels, args.rate, args.samples, sim_hwm=args.sim_hwm)
    print(result.report(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
