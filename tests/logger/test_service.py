"""The logger service in-process over real sockets: daemons, hostile peers, history, export."""

from __future__ import annotations

import csv
import pickle
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daq import messages, reliable
from daq.errors import ConfigError
from daq.logger.cli import export_main
from daq.logger.config import LoggerConfig, load_logger_config, logger_config_from_mapping
from daq.logger.history import HistoryClient, HistoryError
from daq.logger.service import LoggerEndpoints, LoggerService
from daq.logger.sink import Batch
from daq.logger.sqlite_store import DB_NAME, SqliteStore
from daq.reliable import ReliableSender
from tests.logger.conftest import Stamper, write_config

T0 = 1_700_000_000_000_000_000
S = 10**9


@pytest.fixture
def config(tmp_path: Path) -> LoggerConfig:
    return logger_config_from_mapping({"directory": str(tmp_path / "store"),
                                       "endpoint": "tcp://127.0.0.1:0",
                                       "history_endpoint": "tcp://127.0.0.1:0",
                                       "max_message_bytes": 1 << 20})


@pytest.fixture
def service(config: LoggerConfig) -> Iterator[tuple[LoggerService, LoggerEndpoints]]:
    svc = LoggerService(config)
    endpoints = svc.start()
    yield svc, endpoints
    svc.stop()


def _wait(predicate: Any, timeout_s: float = 10.0, poll: Any = None) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        if poll is not None:
            poll()
        else:
            time.sleep(0.01)
    return bool(predicate())


def _db_rows(config: LoggerConfig, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.storage_dir / DB_NAME) as conn:
        return conn.execute(sql).fetchall()


def test_several_daemons_at_once_everything_lands_once(
        service: tuple[LoggerService, LoggerEndpoints], config: LoggerConfig) -> None:
    svc, ep = service
    senders = [ReliableSender(ep.endpoint, pub=f"d{i}", epoch=time.time_ns() + i,
                              resend_after_s=0.5) for i in range(3)]
    stamps = [Stamper(s.pub, s.epoch) for s in senders]
    try:
        for k in range(300):
            for s, stamp in zip(senders, stamps, strict=True):
                s.send(stamp(messages.scalar(s.pub, "temp", float(k), t=T0 + k)))
                if k % 30 == 0:
                    s.send(stamp(messages.waveform(s.pub, "pulse", np.full(512, k, np.int16),
                                                   dt=1e-6, t0=T0 + k)))
            for s in senders:
                s.poll(0)
        def resend() -> None:  # everything not acknowledged yet, again and again
            time.sleep(0.05)
            for s in senders:
                s.resend_all()  # (replies are not taken in: nothing counts as acknowledged)

        # Resends of everything must not duplicate anything in the store.
        assert _wait(lambda: svc.stats.stored_messages == 3 * 310, poll=resend)
        resend()
        for s in senders:
            assert s.flush(20), f"{s.pub}: {s.unacked} never acknowledged"
    finally:
        for s in senders:
            s.close()
    counts = dict(_db_rows(config, "SELECT c.stream, COUNT(*) FROM samples s JOIN channels c "
                                   "ON c.id = s.channel_id GROUP BY c.stream"))
    assert counts == {f"data/d{i}/temp": 300 for i in range(3)}
    records = dict(_db_rows(config, "SELECT c.stream, COUNT(DISTINCT r.seq) FROM records r "
                                    "JOIN channels c ON c.id = r.channel_id GROUP BY c.stream"))
    assert records == {f"wave/d{i}/pulse": 10 for i in range(3)}
    assert svc.stats.duplicates > 0 and svc.stats.malformed == 0


HOSTILE = [
    [b"\x80\x04\x95" + pickle.dumps({"evil": "object"})],  # a pickle
    [reliable.PROTOCOL],
    [b"QDR9", reliable.MSG, b"data/a/b", b"{}"],  # wrong protocol
    [reliable.PROTOCOL, b"FLY", b"{}"],
    [reliable.PROTOCOL, reliable.HELLO, b"{not json"],
    [reliable.PROTOCOL, reliable.HB, b'{"pub": "x", "epoch": 1, "streams": {"a": "b"}}'],
    [reliable.PROTOCOL, reliable.ACK, b'{"epoch": 1, "streams": {}}'],  # wrong direction
    [reliable.PROTOCOL, reliable.HELLO, b'{"epoch": 1}'],  # no publisher name
    [reliable.PROTOCOL, reliable.MSG, b"data/a/b",
     b'{"v":1,"seq":0,"epoch":1,"pub":"x","t":0,"units":"","q":0,"meta":{},'
     b'"dtype":"<f8","shape":[1000000000000]}', b"\x00" * 8],  # huge claimed size
    [reliable.PROTOCOL, reliable.MSG, b"data/a/b",
     b'{"v":1,"seq":0,"epoch":1,"pub":"x","t":0,"units":"","q":0,"meta":{},'
     b'"dtype":"|O","shape":[1]}', b"\x00" * 8],  # object dtype
    [reliable.PROTOCOL, reliable.MSG, b"x" * 300, b"{}"],
    [reliable.PROTOCOL, reliable.MSG, b"data/a/b", b"[" * 100_000],
    [reliable.PROTOCOL, reliable.MSG, b"data/a/b",
     b'{"v":1,"seq":18446744073709551616,"epoch":1,"pub":"x","t":0,"units":"","q":0,'
     b'"meta":{},"dtype":"<f8","shape":[1]}', b"\x00" * 8],  # seq = 2**64
    [reliable.PROTOCOL, reliable.HB,
     b'{"pub":"x","epoch":1,"instance":"i","streams":{"data/a/b":18446744073709551616}}'],
    [reliable.PROTOCOL, reliable.GAP, b'{"pub":"x","epoch":1,"instance":"i","stream":"data/a/b",'
                                      b'"first":5,"last":4,"reason":"spool overflow"}'],
    [reliable.PROTOCOL, reliable.HELLO, b'{"pub":"x","epoch":-1,"instance":"i"}'],
]


def _assert_valid_message_lands(ep: LoggerEndpoints, tag: str) -> None:
    stamp = Stamper(f"ok-{tag}")
    sender = ReliableSender(ep.endpoint, pub=stamp.pub, epoch=stamp.epoch, resend_after_s=0.3)
    try:
        sender.send(stamp(messages.scalar("fine", "x", 1.0)))
        assert sender.flush(10), "a valid message was not acknowledged after hostile frames"
    finally:
        sender.close()


def test_hostile_frames_are_counted_and_dropped_and_the_logger_keeps_serving(
        service: tuple[LoggerService, LoggerEndpoints]) -> None:
    svc, ep = service
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(ep.endpoint)
    for frames in HOSTILE:
        sock.send_multipart(frames)
    replies = []
    while sock.poll(2000):  # refused controls are answered with ERROR
        replies.append(reliable.parse(sock.recv_multipart()))
        if len(replies) >= 2:
            break
    big = zmq.Context.instance().socket(zmq.DEALER)  # beyond max_message_bytes: cut off
    big.setsockopt(zmq.LINGER, 0)
    big.connect(ep.endpoint)
    big.send_multipart([reliable.PROTOCOL, reliable.MSG, b"data/a/b", b"\x00" * (2 << 20)])
    _assert_valid_message_lands(ep, "static")
    assert svc.stats.malformed >= len(HOSTILE) - 2
    assert all(isinstance(r, reliable.Control) and r.verb == reliable.ERROR for r in replies)
    sock.close()
    big.close()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.one_of(
    st.binary(max_size=200),
    st.sampled_from([reliable.PROTOCOL, reliable.MSG, reliable.HELLO, reliable.HB, b"{}",
                     b"data/a/b", b'{"v":1}']),
    st.builds(lambda d: __import__("json").dumps(d).encode(),
              st.dictionaries(st.sampled_from(["v", "seq", "epoch", "pub", "t", "units", "q",
                                               "meta", "dtype", "shape", "streams"]),
                              st.one_of(st.integers(), st.text(max_size=5), st.none(),
                                        st.lists(st.integers(), max_size=3)), max_size=10)),
), min_size=1, max_size=6))
def test_hypothesis_frames_over_a_real_socket_never_stop_the_logger(
        service: tuple[LoggerService, LoggerEndpoints], frames: list[bytes]) -> None:
    svc, ep = service
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(ep.endpoint)
    before = svc.stats.received
    sock.send_multipart(frames)
    assert _wait(lambda: svc.stats.received > before, 10), "the logger stopped receiving"
    sock.close()


def test_after_hypothesis_a_valid_message_still_lands(
        service: tuple[LoggerService, LoggerEndpoints]) -> None:
    # Run the hypothesis frames above against this service again, then a valid message.
    svc, ep = service
    rng = np.random.default_rng(7)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(ep.endpoint)
    for _ in range(200):
        n = int(rng.integers(1, 6))
        sock.send_multipart([rng.bytes(int(rng.integers(0, 64))) for _ in range(n)])
    assert _wait(lambda: svc.stats.received >= 200)
    _assert_valid_message_lands(ep, "random")
    assert svc.stats.malformed >= 199
    sock.close()


def test_a_week_of_1hz_data_is_answered_decimated_well_within_a_second(
        service: tuple[LoggerService, LoggerEndpoints], config: LoggerConfig) -> None:
    _svc, ep = service
    n = 7 * 86400
    times = T0 + np.arange(n, dtype=np.int64) * S
    values = 0.010 + 1e-4 * np.sin(np.arange(n) / 3600.0)
    values[400_000] = 5.0  # a one-sample spike (a heater glitch)
    values[123_456] = -1.0
    store = SqliteStore(config.storage_dir / DB_NAME)
    stamp = Stamper()
    store.write_batch(Batch(messages=[stamp(messages.scalar_batch(
        "fridge1", "mxc", times[i:i + 50_000], values[i:i + 50_000], units="K"))
        for i in range(0, n, 50_000)]))
    store.commit()
    store.close()
    with HistoryClient(ep.history) as client:
        client.query("data/fridge1/mxc", T0, T0 + S, 10)  # warm up the connection
        start = time.perf_counter()
        header, (t, v) = client.query_info("data/fridge1/mxc", T0, int(times[-1]), 2000)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"a week of 1 Hz data took {elapsed:.2f} s"
    assert header["raw_count"] == n and header["decimated"] and len(t) <= 2000
    assert t.dtype == np.int64 and v.dtype == np.float64
    assert 5.0 in v and -1.0 in v and v.max() == 5.0 and v.min() == -1.0
    assert abs(int(t[np.argmax(v)]) - int(times[400_000])) <= (times[-1] - T0) // 1000


def test_history_client_api_and_refusals(service: tuple[LoggerService, LoggerEndpoints],
                                         config: LoggerConfig) -> None:
    svc, ep = service
    stamp = Stamper("d1")
    sender = ReliableSender(ep.endpoint, pub="d1", epoch=stamp.epoch, resend_after_s=0.5)
    sender.send(stamp(messages.scalar_batch("f", "t", [T0, T0 + S, T0 + 2 * S], [1, 2, 3],
                                            units="K")))
    sender.send(stamp(messages.event(messages.Kind.RUN, "runs", "iv", run="R1", state="start")))
    sender.send(stamp(messages.waveform("tes", "p", np.arange(16, dtype=np.int16), dt=1e-6,
                                        t0=T0)))
    sender.send(stamp(messages.event(messages.Kind.ALARM, "f", "hot", level="warn")))
    assert sender.flush(10)
    sender.close()
    with HistoryClient(ep.history, timeout_s=5) as client:
        t, v = client.query("data/f/t", T0, T0 + 10 * S, 100)
        assert t.tolist() == [T0, T0 + S, T0 + 2 * S] and v.tolist() == [1.0, 2.0, 3.0]
        assert {s["stream"] for s in client.streams()} == {"data/f/t", "run/runs/iv",
                                                           "wave/tes/p", "alarm/f/hot"}
        assert [r["run"] for r in client.runs()] == ["R1"]
        assert client.run("R1")["files"]
        assert client.events(kind="alarm")[0]["meta"] == {"level": "warn"}
        assert [r["seq"] for r in client.records("wave/tes/p", T0, T0 + S)] == [0]
        assert client.gaps() == []
        assert client.status()["stored_messages"] == 4
        for op, fields in (("fly", {}), ("query", {"stream": 5}),
                           ("query", {"stream": "data/f/t", "max_points": 1}),
                           ("run", {"run": "nope"})):
            with pytest.raises(HistoryError):
                client.request(op, **fields)
        assert client.query("data/none/x", T0, T0 + S)[0].size == 0
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(ep.history)
    raw.send_multipart([b"", b"\x80not json"])
    assert raw.poll(5000) and b'"ok": false' in raw.recv_multipart()[1]
    raw.close()
    assert svc.stats.malformed == 0


def test_export_to_csv_and_hdf5(service: tuple[LoggerService, LoggerEndpoints],
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _svc, ep = service
    cfg_path = write_config(tmp_path / "lab.yaml", directory=str(tmp_path / "store"))
    stamp = Stamper("d1")
    sender = ReliableSender(ep.endpoint, pub="d1", epoch=stamp.epoch)
    sender.send(stamp(messages.scalar_batch("f", "t", [T0, T0 + S, T0 + 2 * S], [1.5, 2, 3],
                                            units="K")))
    sender.send(stamp(messages.waveform("tes", "p", np.arange(8, dtype=np.int16), dt=1e-6,
                                        t0=T0, scale=2.0)))
    assert sender.flush(10)
    sender.close()
    out = tmp_path / "t.csv"
    assert export_main([str(cfg_path), "data/f/t", "--from", str(T0), "--to",
                        "2023-11-14T22:13:21Z", "-o", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["t_ns", "time_utc", "value", "min", "max", "count", "quality"]
    assert [(int(r[0]), float(r[2])) for r in rows[1:]] == [(T0, 1.5), (T0 + S, 2.0)]
    assert rows[1][1] == "2023-11-14T22:13:20.000000000Z"
    h5 = tmp_path / "p.h5"
    assert export_main([str(cfg_path), "wave/tes/p", "--from", str(T0), "--to", "now",
                        "-o", str(h5)]) == 0
    with h5py.File(h5, "r") as f:
        assert f["records"][0].tolist() == list(range(8)) and f.attrs["scale"] == 2.0
    assert export_main([str(cfg_path), "data/none/x", "-o", str(out)]) == 2
    assert export_main([str(cfg_path), "data/f/t", "--from", "yesterday-ish",
                        "-o", str(out)]) == 2
    assert "not in the archive" in capsys.readouterr().err


def test_config_section_is_read_from_a_whole_lab_file_and_checked(tmp_path: Path) -> None:
    path = write_config(tmp_path / "lab.yaml", directory="rel", batch_size=10,
                        retention=[{"match": "data/*", "older_than_s": 60, "bucket_s": 10}])
    cfg = load_logger_config(path)
    assert cfg.storage_dir == tmp_path / "rel" and cfg.batch_size == 10
    assert cfg.retention[0].matches("data/f/x") and not cfg.retention[0].matches("wave/f/x")
    assert LoggerConfig().sinks == ("sqlite", "hdf5") and LoggerConfig().store == "sqlite"
    for bad, where in (({"batchsize": 1}, "logger.batchsize"),
                       ({"sinks": ["hdf5"]}, "logger"),
                       ({"sinks": ["sqlite", "postgresql"], "postgresql_dsn": "x"}, "logger"),
                       ({"sinks": ["postgresql"]}, "logger"),
                       ({"endpoint": "127.0.0.1:7120"}, "logger"),
                       ({"retention": [{"match": "x", "older_than_s": 0, "bucket_s": 1}]},
                        "logger.retention[0]")):
        with pytest.raises(ConfigError) as err:
            load_logger_config(write_config(tmp_path / "bad.yaml", **bad))
        assert where in str(err.value)


def test_end_to_end_through_the_service_on_either_store(logger_config: LoggerConfig) -> None:
    svc = LoggerService(logger_config)
    ep = svc.start()
    try:
        stamp = Stamper("d1")
        sender = ReliableSender(ep.endpoint, pub="d1", epoch=stamp.epoch, resend_after_s=0.5)
        for k in range(20):
            sender.send(stamp(messages.scalar_batch("f", "t", T0 + np.arange(50) * S + k * 50 * S,
                                                    np.arange(50) + k * 50.0)))
        sender.send(stamp(messages.waveform("tes", "p", np.arange(64, dtype=np.int16), dt=1e-6,
                                            t0=T0)))
        assert sender.flush(20)
        sender.close()
        with HistoryClient(ep.history) as client:
            header, (t, v) = client.query_info("data/f/t", T0, T0 + 1000 * S, 100)
            assert header["raw_count"] == 1000 and len(t) <= 100
            assert v.min() == 0.0 and v.max() == 999.0
            assert [r["seq"] for r in client.records("wave/tes/p", T0, T0 + S)] == [0]
    finally:
        svc.stop()
