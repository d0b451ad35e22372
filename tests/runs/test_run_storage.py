"""A run's documents in the logger: one HDF5 file per run, an index row, reopened from the file.

The documents go through the logger's real write cycle (daq.logger.writer with the
run sink registered); no processes: the cycles are driven by hand.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from daq import messages
from daq.logger.config import logger_config_from_mapping
from daq.logger.writer import LoggerStats, Writer
from daq.runs import documents as docs
from daq.runs.documents import Pause, RunStatus, StartDocument, StopDocument
from daq.runs.runfile import open_run
from tests.logger.conftest import Stamper
from tests.logger.cycles import reopen, run


@pytest.fixture
def writer(tmp_path: Path):
    config = logger_config_from_mapping({"directory": str(tmp_path / "store"),
                                         "endpoint": "tcp://127.0.0.1:0",
                                         "history_endpoint": "tcp://127.0.0.1:0"})
    w = Writer(config, LoggerStats())
    w.open()
    yield w
    w.close()


def _start(run_id: str) -> StartDocument:
    return StartDocument(
        run_id=run_id, procedure="iv", recipe_name="iv-test", recipe_path="iv.yaml",
        operator="alice", sample="chip 3", description="a test",
        parameters={"bias_v": [{"start": 1.0, "stop": 0.0, "step": 0.1}]},
        detector={"name": "tes1"}, config_path="lab.yaml", daemon="daemon-sim",
        settings=[{"target": "tes1/bias_voltage", "value": 3.0, "unit": "V"}],
        targets=("tes1/bias_voltage",))


def _record(volts: np.ndarray) -> messages.Message:
    origin = messages.waveform("tes1", "squid_out", np.round(volts / 1e-3).astype(np.int16),
                               dt=1e-6, scale=1e-3, offset=0.0, presamples=10)
    origin.seq, origin.epoch = 7, 99
    return origin


def test_a_run_goes_into_its_own_file_with_an_index_row_and_reopens(writer: Writer) -> None:
    stamp = Stamper("runs-host-0")
    rid = docs.new_run_id("iv-test")
    first = [docs.start_message(_start(rid)),
             *docs.attach_messages(rid, "recipe.yaml", "name: iv-test\n" * 3000),
             docs.point_message(rid, "iv", 0, {"bias_v": 1.0, "v_out_v": 0.5}, {"bias_v": "V"}),
             docs.point_message(rid, "iv", 1, {"bias_v": 0.9, "v_out_v": 0.4}, {"bias_v": "V"}),
             docs.record_message(rid, "noise", 0, _record(np.linspace(0, 1, 64)),
                                 {"bias_v": 3.0}, {"bias_v": "V"})]
    run(writer, *(stamp(m) for m in first))
    assert writer.store is not None
    entry = writer.store.run_entry(rid)
    assert entry is not None and entry["status"] == "running"
    assert entry["points"] == {"iv": 2, "noise": 1} and entry["sample"] == "chip 3"
    pause = Pause(messages.now_ns(), None, "mxc_warm", "fridge1/mxc_control = 0.04", "0.900 V")
    resumed = Pause(pause.t_pause_ns, pause.t_pause_ns + 10**9, pause.condition, pause.reason,
                    pause.step)
    rest = [docs.pause_message(rid, 0, pause), docs.resume_message(rid, 0, resumed),
            docs.point_message(rid, "iv", 2, {"bias_v": 0.8, "v_out_v": float("nan")},
                               {"bias_v": "V"}),
            docs.record_message(rid, "noise", 1, _record(np.linspace(1, 0, 64)), {},
                                {}),
            docs.result_message(rid, {"r_n_ohm": 0.0133, "nested": {"a": [1, 2]}}),
            docs.plot_message(rid, "iv", "TES I-V", b"\x89PNG\r\n\x1a\nnot really"),
            docs.stop_message(rid, StopDocument(RunStatus.COMPLETED, "", messages.now_ns(),
                                                {"iv": 3, "noise": 2}, 1, 1.0))]
    run(writer, *(stamp(m) for m in rest))
    entry = writer.store.run_entry(rid)
    assert entry is not None
    assert entry["status"] == "completed" and entry["pauses"] == 1
    assert entry["points"] == {"iv": 3, "noise": 2}
    assert entry["summary"] == {"r_n_ohm": 0.0133}
    assert [r["run"] for r in writer.store.run_index(procedure="iv")] == [rid]
    assert writer.store.run_index(sample="elsewhere") == []

    path = Path(writer.config.storage_dir) / entry["path"]
    with h5py.File(path, "r") as f:  # plain h5py reads it
        assert f.attrs["status"] == "completed" and f.attrs["sample"] == "chip 3"
        assert list(f["streams/iv/bias_v"][:]) == [1.0, 0.9, 0.8]
        assert f["streams/iv/bias_v"].attrs["units"] == "V"
        assert f["streams/noise/records"].shape == (2, 64)
    stored = open_run(path)
    assert stored.start.run_id == rid and stored.start.targets == ("tes1/bias_voltage",)
    assert stored.start.settings[0]["value"] == 3.0
    assert stored.stop is not None and stored.stop.status is RunStatus.COMPLETED
    assert stored.result == {"r_n_ohm": 0.0133, "nested": {"a": [1, 2]}}
    assert np.isnan(stored.data.points["iv"]["v_out_v"][2])
    noise = stored.data.records["noise"]
    assert np.allclose(noise.volts()[0], np.round(np.linspace(0, 1, 64) / 1e-3) * 1e-3)
    assert noise.tags["bias_v"][0] == 3.0 and np.isnan(noise.tags["bias_v"][1])
    assert stored.pauses[0].condition == "mxc_warm" and stored.pauses[0].t_resume_ns
    assert stored.plots["iv"].startswith(b"\x89PNG")
    assert stored.attachments["recipe.yaml"] == "name: iv-test\n" * 3000


def test_documents_written_twice_are_stored_once(writer: Writer, tmp_path: Path) -> None:
    """A batch that reached the file but not the store is resent: nothing doubles."""
    stamp = Stamper("runs-host-0")
    rid = docs.new_run_id("again")
    batch = [stamp(docs.start_message(_start(rid)))]
    batch += [stamp(docs.point_message(rid, "iv", k, {"bias_v": float(k)}, {"bias_v": "V"}))
              for k in range(5)]
    run(writer, *batch)
    # The logger restarts (its ledger forgets nothing: a resend is a duplicate) ...
    writer2 = reopen(writer)
    try:
        run(writer2, *batch)
        # ... and a file that holds rows the store never acknowledged takes them once.
        entry = writer2.store.run_entry(rid) if writer2.store else None
        assert entry is not None
        path = Path(writer2.config.storage_dir) / entry["path"]
        with h5py.File(path, "r", locking=False) as f:  # the run goes on: read it live
            assert list(f["streams/iv/i"][:]) == [0, 1, 2, 3, 4]
        more = [stamp(docs.point_message(rid, "iv", k, {"bias_v": float(k)}, {"bias_v": "V"}))
                for k in (3, 4, 5)]  # indices 3 and 4 are in the file already
        run(writer2, *more)
        with h5py.File(path, "r", locking=False) as f:
            assert list(f["streams/iv/i"][:]) == [0, 1, 2, 3, 4, 5]
    finally:
        writer2.close()


def test_a_non_run_message_is_left_to_the_other_sinks(writer: Writer) -> None:
    stamp = Stamper("daemon")
    run(writer, stamp(messages.scalar("fridge1", "mxc", 0.012, units="K")),
        stamp(messages.event(messages.Kind.RUN, "elsewhere", "start", run="other",
                             state="start")))
    assert writer.store is not None and writer.store.run_index() == []
