"""The record path: MSGS batches, payloads in spool segment files, records written without copies."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from daq import messages, reliable
from daq.errors import MessageDecodeError
from daq.logger.config import logger_config_from_mapping
from daq.logger.hdf5_sink import contiguous_rows
from daq.logger.service import LoggerEndpoints, LoggerService
from daq.reliable import ReliableSender, Spool
from daq.reliable.spool import Entry
from tests.logger.conftest import Stamper
from tests.procs import free_port

T0 = 1_700_000_000_000_000_000


def _record(stamp: Stamper, channel: str, i: int, n: int = 256) -> messages.Message:
    data = (np.arange(n, dtype=np.int16) + i).astype(np.int16)
    return stamp(messages.waveform("tes", channel, data, dt=1e-6, t0=T0 + i, scale=1e-4))


def test_a_batch_frame_set_decodes_to_its_messages_with_payloads_as_views() -> None:
    stamp = Stamper("d")
    msgs = [_record(stamp, "a", 0), stamp(messages.scalar("f", "x", 1.0)), _record(stamp, "a", 1)]
    items = []
    for m in msgs:
        frames = messages.encode(m)
        items.append((m.topic, bytes(frames[1]), frames[2] if len(frames) == 3 else None))
    frames = reliable.batch_frames(items)
    assert frames[:2] == [reliable.PROTOCOL, reliable.MSGS]
    got = reliable.parse(frames)
    assert isinstance(got, list) and [m.stream for m in got] == [m.stream for m in msgs]
    assert [m.seq for m in got] == [m.seq for m in msgs]
    assert got[0].data is not None and got[2].data is not None
    np.testing.assert_array_equal(got[2].data, msgs[2].data)  # type: ignore[arg-type]
    block = contiguous_rows([got[0].data, got[2].data])
    assert block is None  # a scalar's payload lies between them
    frames = reliable.batch_frames([items[0], items[2]])
    pair = reliable.parse(frames)
    assert isinstance(pair, list)
    block = contiguous_rows([m.data for m in pair])  # type: ignore[misc]
    assert block is not None and block.shape == (2, 256)
    assert np.shares_memory(block, pair[0].data)  # the frame itself, no copy
    np.testing.assert_array_equal(block[1], msgs[2].data)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", [b"\x00" * 5, np.zeros(1, reliable.protocol.BATCH_INDEX)
                                   .tobytes()])
def test_a_batch_whose_index_does_not_fit_is_refused(index: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        reliable.parse([reliable.PROTOCOL, reliable.MSGS, index, b"data/a/b", b""])


def test_payloads_live_in_segment_files_freed_once_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    payloads = [bytes([i]) * 1000 for i in range(10)]
    try:
        spool.begin_session(1, "d")
        spool.write([Entry(0, 1, "wave/a/b", i, T0, b"h", payloads[i]) for i in range(10)])
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM messages WHERE payload IS NULL"
                                " AND plen = 1000").fetchone()[0] == 10
        segments = list((tmp_path / "spool.sqlite.payloads").glob("*.seg"))
        assert len(segments) == 1 and segments[0].stat().st_size == 10_000
    finally:
        spool.close()
    again = Spool(path)  # a restart: resent from the segment file
    try:
        assert [e.payload for e in again.read(0, 100, 1 << 20)] == payloads
        again.write([Entry(0, 1, "wave/a/b", 10, T0, b"h", b"new")])  # a new segment
        again.write([], acked={(1, "wave/a/b"): 9})
        left = sorted(f.name for f in (tmp_path / "spool.sqlite.payloads").glob("*.seg"))
        assert left == ["00000002.seg"]  # the first is freed with its last message
        assert [e.payload for e in again.read(0, 100, 1 << 20)] == [b"new"]
        notices = again.park(1, "wave/a/b", 10, 10, "odd")
        assert notices and again.parked_rows()[0]["seq"] == 10
    finally:
        again.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[LoggerService, LoggerEndpoints]]:
    config = logger_config_from_mapping({
        "endpoint": f"tcp://127.0.0.1:{free_port()}",
        "history_endpoint": f"tcp://127.0.0.1:{free_port()}",
        "directory": str(tmp_path / "store"), "max_batch_delay_s": 0.02})
    svc = LoggerService(config)
    endpoints = svc.start()
    try:
        yield svc, endpoints
    finally:
        svc.stop()


def test_records_go_in_batches_and_land_in_hdf5_each_once(
        service: tuple[LoggerService, LoggerEndpoints], tmp_path: Path) -> None:
    svc, ep = service
    stamp = Stamper("rec")
    sender = ReliableSender(ep.endpoint, pub=stamp.pub, epoch=stamp.epoch,
                            spool_path=tmp_path / "state" / "spool.sqlite")
    try:
        assert sender.flush(10)
        sender.send(_record(stamp, "c0", 0))  # the logger's first ACK says it takes MSGS
        assert sender.flush(10) and sender.batches
        for i in range(1, 600):
            sender.send(_record(stamp, f"c{i % 3}", i))
            if i % 100 == 0:
                sender.poll(0)
        assert sender.flush(30)
        assert sender.spool.count == 0
    finally:
        sender.close()
    end = time.monotonic() + 10
    while svc.stats.stored_records < 600 and time.monotonic() < end:
        time.sleep(0.05)
    svc.stop()
    assert svc.stats.stored_records == 600 and svc.stats.duplicates == 0
    rows = {}
    for path in (tmp_path / "store").rglob("*.h5"):
        with h5py.File(path, "r") as f:
            for c in range(3):
                group = f.get(f"wave/tes/c{c}")
                if group is not None:
                    rows[c] = (group["seq"][:].tolist(), group["records"][:])
    for c in range(3):
        seqs, records = rows[c]
        assert seqs == list(range(200))
        firsts = records[:, 0].tolist()
        assert firsts == [i for i in range(600) if i % 3 == c]  # each its own samples
