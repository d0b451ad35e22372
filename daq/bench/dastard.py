"""The DASTARD bridge at full rate, into the archive (and, alone, into a counting sink).

``qupdaq bench dastard`` (:func:`run_archive`, the default): the whole path
as it runs in a lab, every part its own process: the DASTARD simulator
(``python -m simulators.dastard``), a broker, a logger writing SQLite + HDF5,
and a daemon running the bridge from a ``dastard:`` section of its config,
which stamps every record and sends it on the live bus and, spooled, on the
acknowledged path to the logger. After a warm-up (the archive has records
and the bridge has settled a trigger-count window) it measures for
``seconds``: records/s and MB/s of samples that became durable in the
archive (the logger's record index, counted at the start and the end), the
CPU of every process (``/proc/<pid>/stat``, % of one core) and the loss, two
ways: by seq at the logger (each record stream's seqs stored from 0 without
a hole, no gap recorded) and by the simulator's own trigger counts (the
bridge's loss counter against DASTARD's TRIGGERRATE: its last status event in
the archive). Then the daemon is stopped cleanly (its spool drains) and every
record the bridge emitted must be in the archive. Lost must be 0.

``--sink`` (:func:`run`): the bridge alone in this process into a counting
sink, as before.

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
[--rate 100] [--samples 1000] [--sink]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


def _listen_range(count: int) -> tuple[int, int]:
    """Ports a listener may take without meeting the kernel's outgoing ones: below the
    ephemeral range (``ip_local_port_range``), or above it when there is no room below."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if low - count > 10_000:
        return 10_000, low - count
    return high + 1, 65535 - count


def free_base_port(count: int = 5, attempts: int = 200) -> int:
    """A base port whose ``count`` consecutive ports were all free a moment ago.

    DASTARD's ports are consecutive from a base, so the kernel cannot pick them: the
    base is drawn outside the ephemeral range, where no outgoing connection (nor a
    listener bound to port 0) can take one of them between this probe and the bind.
    """
    first, last = _listen_range(count)
    pick = random.Random()
    for _ in range(attempts):
        base = pick.randint(first, last)
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
    raise RuntimeError(f"no {count} consecutive free ports found in {first}-{last + count}")


def start_simulator(base_port: int, *extra: str) -> subprocess.Popen[str]:
    """``python -m simulators.dastard`` on ``base_port``; returns once it printed its ready line."""
    return start_process(["-m", "simulators.dastard", "--base-port", str(base_port), *extra],
                         READY_PREFIX, "the DASTARD simulator")


def start_process(args: list[str], ready: str, what: str) -> subprocess.Popen[str]:
    """``python ARGS`` as a child; returns once it printed a line starting with ``ready``.

    Its output is read (and dropped) by a thread from then on, so its pipe never fills.
    """
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
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
        if line.startswith(ready):
            tail: deque[str] = deque(seen[-40:], maxlen=40)
            TAILS[proc.pid] = tail
            threading.Thread(target=_drain, args=(lines, tail), daemon=True).start()
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{what} did not start:\n" + "\n".join(seen[-20:]))


#: The last lines each started process printed (by pid), for the report when one dies.
TAILS: dict[int, deque[str]] = {}


def _drain(lines: queue.Queue[str | None], tail: deque[str]) -> None:
    while (line := lines.get()) is not None:
        tail.append(line)


def check_alive(procs: dict[str, subprocess.Popen[str]]) -> None:
    """Raise, with its last lines, if any of ``procs`` has ended."""
    for name, proc in procs.items():
        if proc.poll() is not None:
            lines = "\n".join(TAILS.get(proc.pid, ()))
            raise RuntimeError(f"{name} ended with status {proc.returncode}:\n{lines}")


def stop_process(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


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


@dataclass(frozen=True)
class ArchiveBenchResult:
    """What one run into the archive measured (see the module docstring).

    Attributes:
        seconds: the measured interval.
        channels, rate, samples: the simulated array.
        records: records that became durable in the archive in the interval.
        records_per_s, mb_per_s: their rate, and of their samples (1 MB = 1e6 B).
        cpu: % of one core of each process (simulator, broker, daemon, logger).
        load: the machine's 1-minute load average at the start.
        streams: record streams in the archive.
        seq_holes: records missing by seq at the logger (holes below each stream's newest).
        gaps: gaps the logger recorded for record streams.
        bridge_lost: records the simulator counted that the bridge never got.
        bridge_counted: records the simulator counted (the bridge's last status).
        emitted: records the bridge emitted (its last status).
        archived: records in the archive at the end.
        drain_s: how long the daemon took, after the simulator stopped, to bring the
            rest of its spool into the archive (0 when it kept up).
    """

    seconds: float
    channels: int
    rate: float
    samples: int
    records: int
    records_per_s: float
    mb_per_s: float
    cpu: dict[str, float]
    load: float
    streams: int
    seq_holes: int
    gaps: int
    bridge_lost: int
    bridge_counted: int
    emitted: int
    archived: int
    drain_s: float = 0.0

    @property
    def lost(self) -> int:
        """Records lost anywhere: by seq at the logger, at the bridge, or never archived."""
        return self.seq_holes + self.gaps + self.bridge_lost + max(0, self.emitted
                                                                   - self.archived)

    @property
    def ok(self) -> bool:
        """No record was lost."""
        return self.lost == 0

    def report(self) -> str:
        """A few lines for a terminal."""
        made = self.channels * self.rate
        cpu = ", ".join(f"{name} {value:.0f} %" for name, value in self.cpu.items())
        return "\n".join([
            f"DASTARD -> daemon (bridge, spool) -> logger (SQLite + HDF5): {self.channels} "
            f"channels x {self.rate:g} triggers/s x {self.samples} samples, "
            f"{self.seconds:.1f} s measured (load {self.load:.2f} at the start)",
            f"  records/s     {self.records_per_s:10.0f}   durable in the archive (the array "
            f"makes {made:.0f}: {self.records_per_s / made:.3f}x)",
            f"  MB/s          {self.mb_per_s:10.2f}   (samples; the array makes "
            f"{made * self.samples * 2 / 1e6:.2f})",
            f"  CPU           {cpu}   (% of one core; {os.cpu_count()} cores)",
            f"  lost by seq   {self.seq_holes + self.gaps:10d}   ({self.streams} record streams, "
            f"{self.gaps} gaps recorded)",
            f"  lost upstream {self.bridge_lost:10d}   of {self.bridge_counted} the simulator "
            f"counted",
            f"  not archived  {max(0, self.emitted - self.archived):10d}   of {self.emitted} "
            f"the bridge emitted ({self.archived} archived; the spool drained in "
            f"{self.drain_s:.0f} s after the simulator stopped)",
            f"  verdict       {'OK' if self.ok else 'RECORDS LOST'}",
        ])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _archived(db: Path) -> int:
    """Records in the archive's index now (a reader beside the writer: WAL)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        try:
            return int(c.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0


def _last_status(db: Path) -> dict[str, object]:
    """The bridge's newest status in the archive (meta), or {}."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        row = c.execute(
            "SELECT e.meta FROM events e JOIN channels c ON c.id = e.channel_id"
            " WHERE c.stream = 'status/bench/dastard' ORDER BY e.t DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else {}


def _drain_spool(db: Path, timeout_s: float, procs: dict[str, subprocess.Popen[str]]) -> float:
    """Wait until the archive holds the bridge's report that the source went quiet."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if _last_status(db).get("state") in ("stale", "disconnected"):
            break
        check_alive(procs)
        time.sleep(1.0)
    return time.monotonic() - start


def run_archive(seconds: float = 60.0, channels: int = 256, rate: float = 100.0,
                samples: int = 1000, *, warmup_s: float = 15.0,
                drain_timeout_s: float = 900.0) -> ArchiveBenchResult:
    """Measure the path from the simulator into the archive (see the module docstring)."""
    base = free_base_port()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="qupdaq-bench-dastard-") as tmp:
        work = Path(tmp)
        logger_url = f"tcp://127.0.0.1:{_free_port()}"
        config = work / "lab.yaml"
        config.write_text(yaml.safe_dump({
            "bus": {"publish_port": _free_port(), "subscribe_port": _free_port(),
                    "snapshot_port": _free_port(), "heartbeat_s": 1.0},
            "logger": {"endpoint": logger_url,
                       "history_endpoint": f"tcp://127.0.0.1:{_free_port()}",
                       "directory": str(work / "store")},
            "daemon": {"name": "daemon-bench", "state_dir": str(work / "state"),
                       "logger_url": logger_url,
                       "control": {"bind": f"tcp://127.0.0.1:{_free_port()}"}},
            "dastard": {"host": "127.0.0.1", "base_port": base, "source": "bench"}}))
        db = work / "store" / "qupdaq.sqlite"
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            procs["simulator"] = start_simulator(
                base, "--channels", str(channels), "--rate", str(rate), "--samples",
                str(samples), "--presamples", str(samples // 4))
            procs["broker"] = start_process(["-m", "daq.cli", "broker", str(config)],
                                            "broker ready", "the broker")
            procs["logger"] = start_process(["-m", "daq.cli", "logger", str(config)],
                                            "logger ready", "the logger")
            procs["daemon"] = start_process(["-m", "daq.cli", "daemon", str(config)],
                                            "daemon ready", "the daemon")
            end = time.monotonic() + max(warmup_s, 5.0) + 60.0
            while _archived(db) == 0:  # the path is up end to end
                if time.monotonic() > end:
                    raise RuntimeError("no record reached the archive")
                time.sleep(0.5)
            time.sleep(warmup_s)  # the bridge settles its first trigger-count windows
            cpu0 = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
            t0, n0 = time.monotonic(), _archived(db)
            time.sleep(seconds)  # the measurement itself
            n1, t1 = _archived(db), time.monotonic()
            check_alive(procs)
            cpu1 = {name: cpu_seconds(proc.pid) for name, proc in procs.items()}
            elapsed = t1 - t0
            # The end: the simulator stops; the bridge settles its last trigger-count windows
            # and reports the source stale; the daemon drains its spool into the archive until
            # that report is there (everything the bridge emitted before it is, too).
            stop_process(procs.pop("simulator"))
            drain_s = _drain_spool(db, timeout_s=drain_timeout_s, procs=procs)
            stop_process(procs.pop("daemon"), timeout_s=120)
            stop_process(procs.pop("logger"), timeout_s=120)
        finally:
            for proc in procs.values():
                stop_process(proc)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            per_stream = conn.execute(
                "SELECT r.channel_id, r.epoch, COUNT(*), MAX(r.seq) FROM records r"
                " GROUP BY r.channel_id, r.epoch").fetchall()
            gaps = int(conn.execute(
                "SELECT COUNT(*) FROM gaps g JOIN channels c ON c.id = g.channel_id"
                " WHERE c.kind = 'wave'").fetchone()[0])
            archived = sum(int(n) for _, _, n, _ in per_stream)
            holes = sum(int(last) + 1 - int(n) for _, _, n, last in per_stream)
        status: dict[str, Any] = _last_status(db)
    records = n1 - n0
    return ArchiveBenchResult(
        seconds=elapsed, channels=channels, rate=rate, samples=samples, records=records,
        records_per_s=records / elapsed, mb_per_s=records * samples * 2 / elapsed / 1e6,
        cpu={name: 100.0 * (cpu1[name] - cpu0[name]) / elapsed for name in cpu0},
        load=load, streams=len(per_stream), seq_holes=holes, gaps=gaps, drain_s=drain_s,
        bridge_lost=int(status.get("lost", -1)),
        bridge_counted=int(status.get("received", 0)) + int(status.get("lost", 0)),
        emitted=int(status.get("records", 0)), archived=archived)


def main(argv: list[str] | None = None) -> int:
    """``python -m daq.bench.dastard``: print the figures; exit 1 if records were lost."""
    parser = argparse.ArgumentParser(prog="python -m daq.bench.dastard",
                                     description="The DASTARD bridge against the simulator.")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds of archiving before the measurement starts")
    parser.add_argument("--sink", action="store_true",
                        help="the bridge alone in this process into a counting sink")
    parser.add_argument("--sim-hwm", type=int, default=None,
                        help="the simulator's send high-water mark (DASTARD uses 10)")
    args = parser.parse_args(argv)
    if args.sink:
        result = run(args.seconds, args.channels, args.rate, args.samples, sim_hwm=args.sim_hwm)
        print(result.report(), flush=True)
        return 0 if result.ok else 1
    archive = run_archive(args.seconds, args.channels, args.rate, args.samples,
                          warmup_s=args.warmup)
    print(archive.report(), flush=True)
    return 0 if archive.ok else 1


if __name__ == "__main__":
    sys.exit(main())
