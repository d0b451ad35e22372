"""The SQL store, one suite for SQLite and PostgreSQL (a real server; see conftest)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from daq import messages
from daq.bus.gaps import Gap
from daq.logger.config import RetentionRule
from daq.logger.decimate import bucket_width
from daq.logger.sink import Batch, Progress, PublisherRecord, RecordLocation, Store
from daq.logger.writer import run_retention
from daq.messages import Kind
from drivers.readings import Quality
from tests.logger.conftest import Stamper

T0 = 1_700_000_000_000_000_000
S = 10**9

OpenStore = Callable[..., Store]


def _store_batch(store: Store, batch: Batch) -> None:
    store.write_batch(batch)
    store.commit()


def _count(store: Store, stream: str) -> int:
    return len(store.samples(stream, 0, 2**62)["t"])


def test_samples_round_trip_exactly_and_a_resent_message_is_stored_once(
        open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    times = T0 + np.arange(50, dtype=np.int64) * S
    msgs = [stamp(messages.scalar_batch("fridge1", "mxc", times[i:i + 10],
                                        np.arange(i, i + 10) * 0.5, units="K"))
            for i in range(0, 50, 10)]
    _store_batch(store, Batch(messages=msgs))
    _store_batch(store, Batch(messages=msgs[:2]))  # a resend: unique keys refuse it
    got = store.samples("data/fridge1/mxc", T0, T0 + 100 * S)
    assert got["t"].tolist() == times.tolist()
    assert got["value"].tolist() == (np.arange(50) * 0.5).tolist()
    series = store.series("data/fridge1/mxc", T0, T0 + 100 * S, 1000)
    assert not series.decimated and series.raw_count == 50
    assert series.times.tolist() == times.tolist()
    assert store.streams() == [{"stream": "data/fridge1/mxc", "kind": "data", "units": "K"}]


def test_an_aborted_batch_leaves_nothing_and_the_next_one_lands(open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    store.write_batch(Batch(messages=[stamp(messages.scalar("f", "a", 1.0, t=T0))]))
    store.abort()
    assert store.streams() == []
    _store_batch(store, Batch(messages=[stamp(messages.scalar("f", "a", 2.0, t=T0 + 1))]))
    assert store.samples("data/f/a", 0, 2**62)["value"].tolist() == [2.0]


def test_nan_and_infinite_values_are_kept(open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    values = [1.0, math.nan, math.inf, -2.0]
    _store_batch(store, Batch(messages=[stamp(messages.scalar_batch(
        "f", "a", [T0, T0 + 1, T0 + 2, T0 + 3], values))]))
    got = store.samples("data/f/a", 0, 2**62)["value"]
    assert got[0] == 1.0 and math.isnan(got[1]) and got[2] == math.inf and got[3] == -2.0
    series = store.series("data/f/a", T0, T0 + 3, 2)  # decimated: NaN left out of min/max
    assert series.decimated and series.values.tolist() == [-2.0, math.inf]


def test_events_runs_gaps_and_progress(open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper(pub="d1", epoch=5)
    batch = Batch(messages=[
        stamp(messages.status("fridge1", "ls372", "connected", "ok")),
        stamp(messages.event(Kind.ALARM, "fridge1", "mxc_high", level="warning", value=0.2)),
        stamp(messages.event(Kind.AUDIT, "daemon", "control", who="alice", op="set")),
        stamp(messages.event(Kind.RUN, "runs", "iv", run="R7", state="start", who="alice")),
    ])
    batch.gaps = [(Gap("data/f/a", 5, 81, 120), "superseded")]
    batch.progress = [Progress("data/f/a", 5, "d1", 120, 120, True),
                      Progress("data/f/b", 5, "d1", 9, 12, False)]
    batch.publishers = [PublisherRecord("d1", "instance:abc", 5)]
    _store_batch(store, batch)
    stop = stamp(messages.event(Kind.RUN, "runs", "iv", run="R7", state="stop"))
    _store_batch(store, Batch(messages=[stop]))
    kinds = [e["kind"] for e in store.events()]
    assert kinds == ["status", "alarm", "audit", "run", "run"]
    assert store.events(kind="alarm")[0]["meta"] == {"level": "warning", "value": 0.2}
    runs = store.runs()
    assert [(r["run"], r["t_stop"] is not None) for r in runs] == [("R7", True)]
    run = store.run("R7")
    assert run is not None and store.run("nope") is None
    assert [e["meta"].get("state") for e in run["events"]] == ["start", "stop"]
    assert store.gaps() == [{"stream": "data/f/a", "epoch": 5, "first": 81, "last": 120,
                             "reason": "superseded"}]
    assert store.load_progress("data/f/b", 5) == Progress("data/f/b", 5, "d1", 9, 12, False)
    assert store.epoch_progress(5) == {"data/f/a": 120, "data/f/b": 9}
    assert store.load_publishers() == [PublisherRecord("d1", "instance:abc", 5)]
    assert [p.stream for p in store.open_sessions("d1")] == ["data/f/b"]
    assert store.open_sessions("d2") == [] and store.current_run() is None
    assert store.gap_spans_above("data/f/a", 5, 100) == [(81, 120)]
    assert store.gap_spans_above("data/f/a", 5, 120) == []


def test_stored_seqs_beyond_the_contiguous_end_are_found(open_store: OpenStore) -> None:
    store = open_store()
    msgs = []
    for seq in (0, 1, 4, 6):
        m = messages.scalar("f", "a", float(seq), t=T0 + seq)
        m.seq, m.epoch, m.pub = seq, 9, "d"
        msgs.append(m)
    _store_batch(store, Batch(messages=msgs, progress=[Progress("data/f/a", 9, "d", 1)]))
    assert store.stored_seqs_above("data/f/a", 9, 1) == {4, 6}
    assert store.stored_seqs_above("data/f/a", 8, -1) == set()


def test_file_index_and_committed_record_rows(open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    fid = store.register_file("hdf5/x.h5", "lg", T0, None)
    assert store.file_for("hdf5/x.h5") == fid and store.open_files("lg") == [(fid, "hdf5/x.h5")]
    waves = [stamp(messages.waveform("tes1", "sq", np.zeros(16, np.int16), dt=1e-6, t0=T0 + i))
             for i in range(3)]
    batch = Batch(messages=waves, locations={i: RecordLocation(fid, i) for i in range(3)})
    _store_batch(store, batch)
    store.write_batch(Batch(messages=[stamp(messages.waveform(
        "tes1", "sq", np.zeros(16, np.int16), dt=1e-6))], locations={0: RecordLocation(fid, 3)}))
    store.abort()  # never committed: not counted
    assert store.committed_rows(fid) == {"wave/tes1/sq": 3}
    assert [r["seq"] for r in store.records("wave/tes1/sq", T0, T0 + 10)] == [0, 1, 2]
    store.close_file(fid, T0 + 5)
    assert store.open_files("lg") == []


def test_decimation_keeps_every_bucket_extreme_and_a_one_sample_spike(
        open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    n = 20_000
    rng = np.random.default_rng(3)
    times = T0 + np.arange(n, dtype=np.int64) * S
    values = rng.normal(0.0, 1.0, n)
    values[12_345] = 1e6  # a one-sample spike
    values[777] = -5e5
    _store_batch(store, Batch(messages=[stamp(messages.scalar_batch("f", "a", times[i:i + 5000],
                                                                    values[i:i + 5000]))
                                        for i in range(0, n, 5000)]))
    t1 = int(times[-1])
    series = store.series("data/f/a", T0, t1, 200)
    assert series.decimated and series.raw_count == n and len(series.times) <= 200
    assert 1e6 in series.values and -5e5 in series.values
    assert series.times[np.argmax(series.values)] - times[12_345] < bucket_width(T0, t1, 200)
    # Every bucket's min and max, computed here independently, is in the answer.
    width = bucket_width(T0, t1, 200)
    bucket = (times - T0) // width
    for b in np.unique(bucket):
        sel = values[bucket == b]
        assert sel.min() in series.values and sel.max() in series.values
    assert np.all(np.diff(series.times) >= 0)


def test_retention_downsamples_old_samples_to_min_mean_max(open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    n = 600  # ten minutes at 1 Hz
    times = T0 + np.arange(n, dtype=np.int64) * S
    values = np.sin(np.arange(n) / 20.0)
    _store_batch(store, Batch(messages=[stamp(messages.scalar_batch("fridge1", "still", times,
                                                                    values))]))
    _store_batch(store, Batch(messages=[stamp(messages.scalar_batch("other", "x", times,
                                                                    values))]))
    now = int(times[-1]) + 1
    rules = [RetentionRule(match="data/fridge1/*", older_than_s=300, bucket_s=60)]
    done = run_retention(store, rules, now)
    cutoff = ((now - 300 * S) // (60 * S)) * (60 * S)
    old = times < cutoff
    assert done == {"data/fridge1/still": int(old.sum())}
    assert _count(store, "data/other/x") == n  # not matched: untouched
    got = store.samples("data/fridge1/still", 0, 2**62)
    rolled = got["count"] > 1
    starts = (times[old] // (60 * S)) * (60 * S)
    assert got["t"][rolled].tolist() == sorted(set(starts.tolist()))
    for t, vmin, vmean, vmax, count in zip(got["t"][rolled], got["min"][rolled],
                                           got["value"][rolled], got["max"][rolled],
                                           got["count"][rolled], strict=True):
        sel = values[old & (starts.min() <= times)][starts == t]
        assert (count, vmin, vmax) == (len(sel), sel.min(), sel.max())
        assert vmean == pytest.approx(sel.mean())
    assert got["t"][~rolled].tolist() == times[~old].tolist()
    series = store.series("data/fridge1/still", T0, now, 100_000)
    assert values[old].max() in series.values and values[old].min() in series.values
    assert run_retention(store, rules, now) == {}  # idempotent


def test_a_flagged_reading_is_a_gap_on_plots_and_named_in_the_export(
        open_store: OpenStore) -> None:
    store = open_store()
    stamp = Stamper()
    good = T0 + np.arange(10, dtype=np.int64) * S
    bad = T0 + np.arange(10, 20, dtype=np.int64) * S
    flags = int(Quality.OVERRANGE | Quality.SENSOR_ERROR)
    _store_batch(store, Batch(messages=[
        stamp(messages.scalar_batch("fridge1", "mxc", good, np.full(10, 0.013), units="K")),
        # an open thermometer: the 372 answers 0 and flags it
        stamp(messages.scalar_batch("fridge1", "mxc", bad, np.zeros(10), units="K",
                                    quality=flags))]))
    raw = store.series("data/fridge1/mxc", T0, T0 + 100 * S, 1000)
    assert not raw.decimated
    assert np.isnan(raw.values[10:]).all() and (raw.values[:10] == 0.013).all()
    decimated = store.series("data/fridge1/mxc", T0, T0 + 20 * S, 4)
    assert decimated.decimated
    assert np.nanmin(decimated.values) == 0.013  # the flagged zeros are no minimum
    assert np.isnan(decimated.values).any()      # and their buckets are gaps
    cols = store.samples("data/fridge1/mxc", T0, T0 + 100 * S)
    assert cols["value"][10:].tolist() == [0.0] * 10  # the value the instrument gave ...
    assert cols["quality"].tolist() == [0] * 10 + [flags] * 10  # ... with its flags
