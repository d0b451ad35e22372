"""TES records at rate into the archive: the simulated lab's scope in segmented memory.

Real processes (broker, logger, daemon) and the simulated lab in this process,
so that its scope's own count of the segments it made and handed over can be
compared with what the archive holds.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from simulators.config import load_simulation_config
from simulators.lab import SimLab
from tests.procs import qupdaq, sim_lab_config

PHOTON_RATE = 400.0  # per second: with 0.5 ms dead time per segment, ~330 triggers/s


def test_segmented_records_reach_the_archive_at_rate_each_once_with_its_trigger_time(
        tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path)
    data["simulation"]["photon_rate"] = PHOTON_RATE
    scope = data["instruments"]["scope"]
    scope["options"] = {"timeout": 10000, "segments": 200, "segment_points": 8192,
                        "segment_timeout_s": 3.0}
    scope["setup"] = {"trigger_level": 0.3}
    scope["poll"] = [{"spec": "segments", "channel": "squid_out", "period_s": 0.01},
                     {"spec": "trigger_rate", "channel": "squid_out_trigger_rate",
                      "period_s": 1.0}]
    path.write_text(yaml.safe_dump(data))
    lab = SimLab(load_simulation_config(path)).start()
    engine = lab.servers["scope"].engine  # type: ignore[attr-defined]
    broker = qupdaq("broker", str(path))
    logger = qupdaq("logger", str(path))
    daemon = None
    try:
        broker.wait_line("broker ready")
        logger.wait_line("logger ready")
        daemon = qupdaq("daemon", str(path))
        daemon.wait_line("daemon ready")
        db = Path(data["logger"]["directory"]) / "qupdaq.sqlite"
        end = time.monotonic() + 120
        while _count(db) < 3000:
            assert time.monotonic() < end, "records did not reach the archive"
            time.sleep(0.5)
        assert daemon.stop(timeout_s=60) == 0  # clean: its spool drains into the archive
        daemon = None
        handed_over = engine.segments_transferred
        live_rate = (engine.segments_acquired - 1) / engine.live_s
    finally:
        if daemon is not None:
            daemon.stop()
        logger.stop(timeout_s=60)
        broker.stop()
        lab.stop()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT r.epoch, r.seq, r.t0, r.file_id, r.row FROM records r JOIN channels c"
            " ON c.id = r.channel_id WHERE c.stream = 'wave/tes1/squid_out'"
            " ORDER BY r.epoch, r.seq").fetchall()
        gaps = conn.execute("SELECT COUNT(*) FROM gaps g JOIN channels c ON c.id = g.channel_id"
                            " WHERE c.stream = 'wave/tes1/squid_out'").fetchone()[0]
        rates = [v for (v,) in conn.execute(
            "SELECT s.value FROM samples s JOIN channels c ON c.id = s.channel_id"
            " WHERE c.stream = 'data/tes1/squid_out_trigger_rate'")]
        files = dict(conn.execute("SELECT id, path FROM files").fetchall())
    # None lost, none twice: every segment the scope handed over is archived, once, and
    # the seqs of the one session run from 0 without a hole.
    assert len(rows) == handed_over and gaps == 0
    assert {epoch for epoch, *_ in rows} == {rows[0][0]}
    assert [seq for _, seq, *_ in rows] == list(range(len(rows)))
    # Each record its own trigger time (first sample: t0), all distinct and in order.
    t0 = np.array([t for _, _, t, _, _ in rows], dtype=np.int64)
    assert np.all(np.diff(t0) > 0)
    # At rate: triggers of >= 200 records per second of acquisition made it to the archive.
    rate = (len(rows) - 1) / ((t0[-1] - t0[0]) / 1e9)
    print(f"\nsegmented scope: {len(rows)} records of 8192 samples archived at {rate:.0f}/s, "
          f"{handed_over} handed over by the simulator, {gaps} gaps; trigger-rate stream "
          f"{float(np.mean(rates)):.1f}/s against the simulator's {live_rate:.1f}/s")
    assert rate >= 200
    # The HDF5 files hold exactly these rows (each indexed row exists, nothing beyond).
    stored = 0
    base = Path(data["logger"]["directory"])
    for rel in files.values():
        with h5py.File(base / rel, "r") as f:
            if "wave/tes1/squid_out" in f:
                group = f["wave/tes1/squid_out"]
                assert group["records"].shape[1] == 8192
                stored += group["records"].shape[0]
                seqs = group["seq"][:]
                assert len(set(seqs.tolist())) == len(seqs)
    assert stored == len(rows)
    # The trigger-rate stream: the detector's rate, dead time corrected.
    assert len(rates) >= 5
    assert float(np.mean(rates)) == pytest.approx(live_rate, rel=0.05)
    assert float(np.mean(rates)) == pytest.approx(PHOTON_RATE, rel=0.05)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        try:
            return int(c.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
