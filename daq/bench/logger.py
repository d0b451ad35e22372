"""``qupdaq bench logger``: the archive path end to end, against baselines measured in the same run.

Ours: a daemon-side :class:`daq.reliable.ReliableSender` with its spool on
disk (messages stamped as the daemon's outbound stage does; MSGS batches once
the logger says it takes them) -> a ``qupdaq logger`` process
(SQLite + HDF5, the default config, ``synchronous=FULL``) -> acknowledged.
The clock runs from the first send to the last acknowledgement, so every
figure counts only data that is durable. Afterwards the store is read back
and the loss (sent - stored) is printed; it must be zero.

Cases:

* scalar samples, one sample per message (the slowest way a daemon can send);
* scalar samples, 100 samples per message (a poll batch: the same wire format);
* waveform records of 8192 int16 samples (16 KiB).

Baselines, same rows / records, same machine, same run:

* raw ``sqlite3`` ``executemany`` into a plain (t, value) table, WAL,
  synchronous=FULL, one commit per 5000 rows (no network, no index, no dedupe);
* raw ``h5py`` batched appends (64 records per resize+write, flush per batch);
* QCoDeS ``Measurement`` / ``DataSaver.add_result``, one call per row, and
  with arrays of 100 rows per call (only when qcodes is installed:
  ``pip install 'qup-daq[bench]'``).

Goals: scalar path >= 10x QCoDeS add_result rows/s; record path >= 100 MB/s and
>= 0.5x raw h5py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import yaml

from daq import messages
from daq.messages import Message
from daq.reliable import ReliableSender

RECORD_SAMPLES = 8192
T0 = 1_700_000_000_000_000_000


class _Stamper:
    """Stamps messages like the daemon's outbound stage (per-stream seq, epoch, publisher)."""

    def __init__(self, pub: str) -> None:
        self.pub = pub
        self.epoch = time.time_ns()
        self.seqs: dict[str, int] = {}

    def __call__(self, msg: Message) -> Message:
        seq = self.seqs.get(msg.stream, -1) + 1
        self.seqs[msg.stream] = seq
        msg.seq, msg.epoch, msg.pub = seq, self.epoch, self.pub
        return msg


class _Logger:
    """A ``python -m daq.logger`` child process on free ports in a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        config = directory / "bench.yaml"
        config.write_text(yaml.safe_dump({"logger": {
            "endpoint": "tcp://127.0.0.1:0", "history_endpoint": "tcp://127.0.0.1:0",
            "directory": str(directory / "store")}}))
        self.proc = subprocess.Popen([sys.executable, "-m", "daq.logger", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self.proc.stdout is not None
        line = ""
        while not line.startswith("logger ready"):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the logger process ended before it was ready")
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        self.endpoint = fields["endpoint"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    @property
    def db(self) -> Path:
        return self.directory / "store" / "qupdaq.sqlite"


def _send_all(endpoint: str, msgs: list[Message], pub: str, epoch: int) -> float:
    """Send stamped messages, wait for every ack; return the seconds from first send to last ack."""
    # The daemon's spool: on disk (payloads in its segment files), as in a lab.
    sender = ReliableSender(endpoint, pub=pub, epoch=epoch, resend_after_s=30.0,
                            spool_path=Path(tempfile.mkdtemp(prefix="qupdaq-spool-"))
                            / "spool.sqlite")
    try:
        # Before the clock starts: connected (the HELLO round trip), and the logger has said
        # that it takes batches (in its first data ACK, here of a status message).
        warmup = messages.status("bench", "warmup", "connected")
        warmup.seq, warmup.epoch, warmup.pub = 0, epoch, pub
        sender.send(warmup)
        if not sender.flush(10):
            raise RuntimeError("logger did not answer")
        start = time.perf_counter()
        for i, msg in enumerate(msgs):
            sender.send(msg)
            if i % 500 == 499:
                sender.poll(0)
        if not sender.flush(600):
            raise RuntimeError(f"{sender.unacked} messages never acknowledged")
        return time.perf_counter() - start
    finally:
        sender.close()


def _ours_scalar(rows: int, per_msg: int, workdir: Path) -> tuple[float, int]:
    stamp = _Stamper("bench")
    times = T0 + np.arange(rows, dtype=np.int64) * 1000
    values = np.arange(rows, dtype=np.float64) * 1e-3
    if per_msg == 1:
        msgs = [stamp(messages.scalar("bench", "x", float(v), t=int(t), units="K"))
                for t, v in zip(times.tolist(), values.tolist(), strict=True)]
    else:
        msgs = [stamp(messages.scalar_batch("bench", "x", times[i:i + per_msg],
                                            values[i:i + per_msg], units="K"))
                for i in range(0, rows, per_msg)]
    logger = _Logger(workdir)
    try:
        seconds = _send_all(logger.endpoint, msgs, stamp.pub, stamp.epoch)
    finally:
        logger.stop()
    with sqlite3.connect(logger.db) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    return seconds, rows - int(stored)


def _ours_records(count: int, record: np.ndarray, workdir: Path) -> tuple[float, int]:
    stamp = _Stamper("bench")
    msgs = [stamp(messages.waveform("bench", "pulse", record, dt=1e-6, t0=T0 + i, scale=1e-4))
            for i in range(count)]
    logger = _Logger(workdir)
    try:
        seconds = _send_all(logger.endpoint, msgs, stamp.pub, stamp.epoch)
    finally:
        logger.stop()
    stored = 0
    for path in (workdir / "store").rglob("*.h5"):
        with h5py.File(path, "r") as f:
            if "wave/bench/pulse" in f:
                stored += len(set(f["wave/bench/pulse/seq"][:].tolist()))
    return seconds, count - stored


def _raw_sqlite(rows: int, workdir: Path) -> float:
    conn = sqlite3.connect(workdir / "raw.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE samples (t INTEGER, value REAL)")
    times = (T0 + np.arange(rows, dtype=np.int64) * 1000).tolist()
    values = (np.arange(rows, dtype=np.float64) * 1e-3).tolist()
    start = time.perf_counter()
    for i in range(0, rows, 5000):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO samples VALUES (?, ?)",
                         zip(times[i:i + 5000], values[i:i + 5000], strict=True))
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


def _raw_h5py(count: int, record: np.ndarray, workdir: Path) -> float:
    start = time.perf_counter()
    with h5py.File(workdir / "raw.h5", "w") as f:
        ds = f.create_dataset("records", shape=(0, RECORD_SAMPLES),
                              maxshape=(None, RECORD_SAMPLES), dtype=np.int16,
                              chunks=(64, RECORD_SAMPLES))
        block = np.broadcast_to(record, (64, RECORD_SAMPLES))
        n = 0
        while n < count:
            k = min(64, count - n)
            ds.resize(n + k, axis=0)
            ds[n:n + k] = block[:k]
            n += k
            f.flush()
    return time.perf_counter() - start


def _qcodes(rows: int, per_call: int, workdir: Path) -> float | None:
    try:
        from qcodes.dataset import (  # type: ignore[import-not-found,unused-ignore]
            Measurement,
            initialise_or_create_database_at,
            load_or_create_experiment,
        )
        from qcodes.parameters import (  # type: ignore[import-not-found,unused-ignore]
            ManualParameter,
        )
    except ImportError:
        return None
    initialise_or_create_database_at(str(workdir / f"qcodes-{per_call}.db"))
    exp = load_or_create_experiment("bench", sample_name="logger")
    t_param = ManualParameter("t", unit="ns")
    v_param = ManualParameter("value", unit="K")
    meas = Measurement(exp=exp)
    meas.register_parameter(t_param)
    meas.register_parameter(v_param, setpoints=(t_param,))
    times = T0 + np.arange(rows, dtype=np.int64) * 1000
    values = np.arange(rows, dtype=np.float64) * 1e-3
    with meas.run() as saver:
        start = time.perf_counter()
        if per_call == 1:
            for t, v in zip(times.tolist(), values.tolist(), strict=True):
                saver.add_result((t_param, t), (v_param, v))
        else:
            for i in range(0, rows, per_call):
                saver.add_result((t_param, times[i:i + per_call]),
                                 (v_param, values[i:i + per_call]))
        saver.flush_data_to_database(block=True)
        return time.perf_counter() - start


def _fmt(label: str, impl: str, n: int, seconds: float, nbytes: int, ratio: str = "",
         loss: str = "") -> str:
    rate = n / seconds if seconds > 0 else float("nan")
    mbps = nbytes / seconds / 1e6 if seconds > 0 else float("nan")
    return (f"{label:<26}{impl:<30}{n:>10}{seconds:>9.2f}{rate:>12.0f}{mbps:>9.1f}"
            f"{ratio:>10}{loss:>6}")


def main(scale: float = 1.0) -> int:
    """Run every case and baseline, print the table and the goals; 0 when loss is zero."""
    n_single = max(1000, int(50_000 * scale))
    n_rows = max(10_000, int(1_000_000 * scale))
    n_records = max(200, int(4000 * scale))
    n_qcodes = max(2000, int(30_000 * scale))
    record = np.random.default_rng(1).integers(-2000, 2000, RECORD_SAMPLES).astype(np.int16)
    rec_bytes = record.nbytes
    print("qupdaq bench logger: ReliableSender -> logger process (SQLite WAL FULL + HDF5) -> "
          "ack; this machine, same run")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f} at the start; rates count only acknowledged (durable) data")
    header = (f"{'case':<26}{'impl':<30}{'n':>10}{'s':>9}{'rows/s':>12}{'MB/s':>9}"
              f"{'ratio':>10}{'loss':>6}")
    print(header)
    print("-" * len(header))
    lost = 0
    with tempfile.TemporaryDirectory(prefix="qupdaq-bench-") as tmp:
        work = Path(tmp)

        def sub(name: str) -> Path:
            path = work / name
            path.mkdir()
            return path

        q_single = _qcodes(n_qcodes, 1, sub("q1"))
        q_array = _qcodes(n_qcodes * 10, 100, sub("q100"))
        raw_sql = _raw_sqlite(n_rows, sub("rawsql"))
        ours_single, loss1 = _ours_scalar(n_single, 1, sub("s1"))
        ours_batch, loss2 = _ours_scalar(n_rows, 100, sub("s100"))
        raw_h5 = _raw_h5py(n_records, record, sub("rawh5"))
        ours_rec, loss3 = _ours_records(n_records, record, sub("rec"))
        lost = loss1 + loss2 + loss3

        def ratio(ours_rate: float, base: float | None, base_n: int) -> str:
            return f"{ours_rate / (base_n / base):>9.1f}x" if base else "n/a"

        rate_single, rate_batch = n_single / ours_single, n_rows / ours_batch
        label = "scalar rows"
        if q_single is not None:
            print(_fmt(label, "QCoDeS add_result per row", n_qcodes, q_single, n_qcodes * 16))
        if q_array is not None:
            print(_fmt(label, "QCoDeS add_result 100/call", n_qcodes * 10, q_array,
                       n_qcodes * 160))
        print(_fmt(label, "raw sqlite3 executemany", n_rows, raw_sql, n_rows * 16))
        print(_fmt(label, "qupdaq, 1 sample/message", n_single, ours_single, n_single * 16,
                   ratio(rate_single, q_single, n_qcodes), str(loss1)))
        print(_fmt(label, "qupdaq, 100 samples/message", n_rows, ours_batch, n_rows * 16,
                   ratio(rate_batch, q_single, n_qcodes), str(loss2)))
        print(_fmt("8192 x int16 records", "raw h5py batched appends", n_records, raw_h5,
                   n_records * rec_bytes))
        print(_fmt("8192 x int16 records", "qupdaq", n_records, ours_rec,
                   n_records * rec_bytes, f"{raw_h5 / ours_rec:>9.2f}x", str(loss3)))
        print("ratio: scalar rows/s over QCoDeS add_result per row; records: over raw h5py.")
        print(f"ours vs raw sqlite3 (100/message): {rate_batch / (n_rows / raw_sql):.2f}x; "
              f"1/message: {rate_single / (n_rows / raw_sql):.2f}x")
        if q_array is not None:
            print(f"ours (100/message) vs QCoDeS with arrays of 100: "
                  f"{rate_batch / (n_qcodes * 10 / q_array):.2f}x")
        if q_single is None:
            print("QCoDeS baseline skipped: qcodes is not installed "
                  "(pip install 'qup-daq[bench]' or pip install qcodes)")
        else:
            goal = rate_batch / (n_qcodes / q_single)
            print(f"goal scalar >= 10x QCoDeS add_result: {goal:.1f}x "
                  f"{'met' if goal >= 10 else 'NOT met'}")
        mbps = n_records * rec_bytes / ours_rec / 1e6
        print(f"goal records >= 100 MB/s sustained: {mbps:.0f} MB/s "
              f"{'met' if mbps >= 100 else 'NOT met'}")
        print(f"goal records >= 0.5x raw h5py: {raw_h5 / ours_rec:.2f}x "
              f"{'met' if raw_h5 / ours_rec >= 0.5 else 'NOT met'}")
        print(f"loss (sent - stored, must be 0): {lost}")
    return 0 if lost == 0 else 1
