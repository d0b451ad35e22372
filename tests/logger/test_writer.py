"""The write cycle and its ledger, without sockets, on both SQL stores (and HDF5 for records)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import h5py
import numpy as np
import pytest

from daq import messages
from daq.logger.config import LoggerConfig
from daq.logger.writer import LoggerStats, Writer
from daq.messages import Message
from tests.logger.conftest import Stamper
from tests.logger.cycles import (
    acks,
    beat,
    fake_clock,
    hello,
    peer_of,
    reopen,
    run,
    scalars,
    values,
)


def test_acks_the_highest_contiguous_seq_and_stores_a_resend_once(writer: Writer) -> None:
    stamp = Stamper("d1")
    msgs = scalars(stamp, 10)
    assert acks(run(writer, *msgs[:4], msgs[6])) == {"data/fridge1/mxc": 3}
    assert acks(run(writer, *msgs)) == {"data/fridge1/mxc": 9}  # resend of all ten
    assert values(writer, "data/fridge1/mxc") == [float(i) for i in range(10)]
    assert writer.stats.duplicates == 5 and writer.stats.stored_messages == 10


def test_dedupe_state_survives_a_restart_out_of_order_seqs_included(writer: Writer) -> None:
    stamp = Stamper("d1")
    msgs = scalars(stamp, 8)
    run(writer, *msgs[:3], msgs[5], msgs[7])  # 0..2 contiguous, 5 and 7 beyond a hole
    writer = reopen(writer)
    try:
        assert acks(run(writer, hello("d1", stamp.epoch))) == {"data/fridge1/mxc": 2}
        assert acks(run(writer, *msgs)) == {"data/fridge1/mxc": 7}
        assert values(writer, "data/fridge1/mxc") == [float(i) for i in range(8)]
        assert writer.stats.duplicates == 5
    finally:
        writer.close()


def test_hello_is_answered_with_what_the_store_holds_for_that_epoch(writer: Writer) -> None:
    a, b = Stamper("d1", epoch=10), Stamper("d2", epoch=20)
    run(writer, *scalars(a, 3), *scalars(b, 5, "still"))
    assert run(writer, hello("d1", 10)) == [{"verb": "ACK", "epoch": 10,
                                            "streams": {"data/fridge1/mxc": 2}}]
    assert run(writer, hello("d3", 30)) == [{"verb": "ACK", "epoch": 30, "streams": {}}]


def test_a_new_session_of_the_same_publisher_records_the_old_tail_as_a_gap(
        writer: Writer) -> None:
    old = Stamper("d1", epoch=100)
    msgs = scalars(old, 81)  # seqs 0..80 arrive
    run(writer, hello("d1", 100), *msgs, beat("d1", 100, {"data/fridge1/mxc": 120}))
    assert writer.store is not None and writer.store.gaps() == []
    run(writer, hello("d1", 200))  # the daemon restarted: its old session is over
    assert writer.store.gaps() == [{"stream": "data/fridge1/mxc", "epoch": 100, "first": 81,
                                    "last": 120, "reason": "superseded"}]
    assert len(values(writer, "data/fridge1/mxc")) == 81  # nothing invented
    late = old(messages.scalar("fridge1", "mxc", 1.0))  # the old session is closed
    replies = run(writer, late)
    assert "superseded" in replies[0]["why"] and len(values(writer, "data/fridge1/mxc")) == 81


def test_unnamed_publishers_never_supersede_each_other(writer: Writer) -> None:
    a, b = Stamper("", epoch=1), Stamper("", epoch=2)
    run(writer, *scalars(a, 3), *scalars(b, 3, "still"), *scalars(a, 6)[3:])
    assert values(writer, "data/fridge1/mxc") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert writer.store is not None and writer.store.gaps() == []


def test_superseding_works_from_the_store_after_a_logger_restart(writer: Writer) -> None:
    old = Stamper("d1", epoch=100)
    msgs = scalars(old, 10)
    run(writer, *msgs[:4], msgs[6], beat("d1", 100, {"data/fridge1/mxc": 9}))
    writer = reopen(writer)
    try:
        run(writer, hello("d1", 200))
        assert writer.store is not None
        assert [(g["first"], g["last"]) for g in writer.store.gaps()] == [(4, 5), (7, 9)]
    finally:
        writer.close()


def test_an_unfilled_hole_becomes_a_gap_after_the_grace_period_once_no_live_sender_holds_it(
        writer: Writer) -> None:
    clock = fake_clock(writer)
    stamp = Stamper("d1")
    msgs = scalars(stamp, 6)
    run(writer, *msgs[:2], msgs[4], msgs[5])
    run(writer, tick=True)
    clock.now += writer.config.gap_grace_s + 1
    run(writer, tick=True)
    assert writer.store is not None
    assert writer.store.gaps() == []  # a live sender resends or reports every seq itself
    clock.now += writer.config.takeover_after_s  # the sender has gone silent
    run(writer, tick=True)  # starts the hole's timer
    clock.now += writer.config.gap_grace_s - 1
    run(writer, tick=True)
    assert writer.store.gaps() == []
    clock.now += 2
    run(writer, tick=True)
    assert writer.store.gaps() == [{"stream": "data/fridge1/mxc", "epoch": stamp.epoch,
                                    "first": 2, "last": 3, "reason": "grace"}]
    assert acks(run(writer, msgs[5])) == {"data/fridge1/mxc": 5}


def test_a_silent_sender_s_announced_tail_becomes_a_gap_after_the_grace_period(
        writer: Writer) -> None:
    clock = fake_clock(writer)
    stamp = Stamper("d1")
    run(writer, *scalars(stamp, 81), beat("d1", stamp.epoch, {"data/fridge1/mxc": 120}))
    clock.now += writer.config.takeover_after_s
    run(writer, tick=True)
    clock.now += writer.config.gap_grace_s + 1
    run(writer, tick=True)
    assert writer.store is not None
    assert [(g["first"], g["last"], g["reason"]) for g in writer.store.gaps()] == [
        (81, 120, "grace")]


def test_invalid_messages_are_refused_with_an_error_and_not_stored(writer: Writer) -> None:
    stamp = Stamper("d1")
    unstamped = messages.scalar("f", "a", 1.0)  # seq -1
    unstamped.pub = stamp.pub
    bad_wave = stamp(messages.waveform("tes1", "sq", np.zeros(8, np.int16), dt=1e-6))
    bad_wave.meta["dt"] = "fast"
    wrong_payload = stamp(messages.scalar("f", "b", 1.0))
    wrong_payload.data = np.zeros(3, np.float64)
    ok = stamp(messages.scalar("f", "c", 2.0))
    replies = run(writer, unstamped, bad_wave, wrong_payload, ok)
    errors = [r["why"] for r in replies if r["verb"] == "ERROR"]
    assert len(errors) == 1 and "refused" in errors[0] and "(and 2 more)" in errors[0]
    assert acks(replies) == {"data/f/c": 0}
    assert writer.stats.rejected == 3
    assert writer.store is not None
    assert [s["stream"] for s in writer.store.streams()] == ["data/f/c"]


def test_waveform_records_land_in_hdf5_with_the_documented_layout(writer: Writer) -> None:
    stamp = Stamper("d1")
    rng = np.random.default_rng(0)
    records = rng.integers(-2000, 2000, (5, 256)).astype(np.int16)
    msgs = [stamp(messages.waveform("tes1", "squid_out", r, dt=2e-6, t0=10_000 + i,
                                    scale=1e-4, offset=0.5, presamples=32))
            for i, r in enumerate(records)]
    assert acks(run(writer, *msgs, *msgs[:2])) == {"wave/tes1/squid_out": 4}
    assert writer.store is not None
    index = writer.store.records("wave/tes1/squid_out", 0, 2**62)
    assert [e["seq"] for e in index] == [0, 1, 2, 3, 4] and len({e["path"] for e in index}) == 1
    writer.close()
    with h5py.File(writer.config.storage_dir / index[0]["path"], "r") as f:
        g = f["wave/tes1/squid_out"]
        assert g["records"].shape == (5, 256) and g["records"].dtype == np.int16
        assert np.array_equal(g["records"][:], records)
        assert g["seq"][:].tolist() == [0, 1, 2, 3, 4]
        assert g["t0"][:].tolist() == [10_000 + i for i in range(5)]
        assert g["epoch"][:].tolist() == [stamp.epoch] * 5
        assert dict(g.attrs) | {} == {"stream": "wave/tes1/squid_out", "units": "V", "dt": 2e-6,
                                      "scale": 1e-4, "offset": 0.5, "presamples": 32}
        volts = g["records"][1] * g.attrs["scale"] + g.attrs["offset"]
        assert np.allclose(volts, msgs[1].volts())


def test_files_rotate_per_run_and_the_run_lists_them(writer: Writer) -> None:
    stamp = Stamper("d1")

    def wave() -> Message:
        return stamp(messages.waveform("tes1", "sq", np.zeros(64, np.int16), dt=1e-6))

    start = stamp(messages.event(messages.Kind.RUN, "runs", "iv", run="R1", state="start"))
    stop = stamp(messages.event(messages.Kind.RUN, "runs", "iv", run="R1", state="stop"))
    run(writer, wave(), start, wave(), wave())
    run(writer, stop, wave())
    assert writer.store is not None
    paths = [e["path"] for e in writer.store.records("wave/tes1/sq", 0, 2**62)]
    assert len(set(paths)) == 3 and paths[1] == paths[2] and "-run-R1" in paths[1]
    info = writer.store.run("R1")
    assert info is not None and info["files"] == [paths[1]]


def test_a_crash_between_hdf5_flush_and_sql_commit_leaves_no_duplicate_record(
        writer: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = Stamper("d1")
    msgs = [stamp(messages.waveform("tes1", "sq", np.full(32, i, np.int16), dt=1e-6))
            for i in range(4)]
    run(writer, *msgs[:2])
    assert writer.store is not None

    def boom() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.store, "commit", boom)
    replies = run(writer, *msgs[2:])
    assert replies[0]["verb"] == "ERROR" and "No space left" in replies[0]["why"]
    monkeypatch.undo()
    assert acks(run(writer, *msgs)) == {"wave/tes1/sq": 3}
    index = writer.store.records("wave/tes1/sq", 0, 2**62)
    writer.close()
    paths = {e["path"] for e in index}
    seqs: list[int] = []
    for path in paths:
        with h5py.File(writer.config.storage_dir / path, "r") as f:
            seqs += f["wave/tes1/sq/seq"][:].tolist()
    assert sorted(seqs) == [0, 1, 2, 3]  # the failed cycle's rows were cut back


def test_error_reply_is_json_with_where_and_why(writer: Writer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(batch: Any) -> None:
        raise OSError(30, "Read-only file system")

    assert writer.store is not None
    stamp = Stamper()
    run(writer, beat(stamp.pub, stamp.epoch, {}))  # the connection says who it is
    monkeypatch.setattr(writer.store, "write_batch", boom)
    replies = writer.process([(peer_of(stamp.pub), stamp(messages.scalar("f", "a", 1.0)))])
    body = json.loads(replies[0][1][2])
    assert "write failed" in body["why"] and "Read-only file system" in body["why"]
    assert writer.stats.write_errors == 1 and not writer.stats.store_ok


def test_files_rotate_by_size_and_every_file_is_indexed(logger_config: LoggerConfig) -> None:
    config = dataclasses.replace(logger_config, hdf5_rotate="size", hdf5_max_mb=0.05)
    w = Writer(config, LoggerStats())
    w.open()
    try:
        stamp = Stamper("d1")
        for _ in range(6):  # 6 batches of 2 x 16 KiB: a new file once one passes 50 kB
            run(w, *(stamp(messages.waveform("tes1", "sq", np.zeros(8192, np.int16), dt=1e-6))
                     for _ in range(2)))
        assert w.store is not None
        index = w.store.records("wave/tes1/sq", 0, 2**62)
        paths = list(dict.fromkeys(e["path"] for e in sorted(index, key=lambda e: e["seq"])))
        assert len(index) == 12 and len(paths) >= 3
        assert w.store.open_files(config.logger_name) == [(w.store.file_for(paths[-1]),
                                                           paths[-1])]  # only the newest
    finally:
        w.close()
    assert w.config.storage_dir.joinpath(paths[0]).stat().st_size >= 50_000
