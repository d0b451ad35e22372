"""Tests of the Bluefors log reader on log folders written by hand in the vendor's formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.bluefors import BlueforsLogReader, Sample
from drivers.bluefors.logreader import spec_name
from drivers.bluefors.parsing import parse_file_name, parse_line, parse_timestamp
from drivers.readings import Quality

ZONE = ZoneInfo("Europe/Helsinki")  # UTC+2 in winter, UTC+3 in summer

MAXIGAUGE = (
    "03-12-24,00:12:10,"
    "CH1,        ,1,1.83e-06,0,1,"
    "CH2,       ,1,-6.00E+0,1,1,"
    "CH3,        ,0,2.66e-02,4,1,"
    "CH4,      P4,1, 5.10E+2,0,1,"
    "CH5,        ,1,1.00e+03,0,1,"
    "CH6,P6,1, 3.85E+0,0,1,"
)
CHANNELS = (
    "03-12-24,00:20:10,0,v1,1,v2,0,v3,1,turbo1,1,scroll1,1,pulsetube,1,hs-still,0,hs-mc,0,ext,1"
)
STATUS = (
    "03-12-24,00:20:10,ctrl_pres_ok,1.000000e+00,cpatempwi,1.859667e+01,"
    "cpahp,3.231992e+02,tc400setspdatt,-0.000000e+00,pcu_new_key,4.200000e+00"
)
HEATERS = "03-12-24,00:20:10,a1_u,0.000000e+00,a1_r_lead,3.000000e+01,htr,2.500000e-03"


def ns(text: str, zone: ZoneInfo = ZONE) -> int:
    """'2024-12-03 00:12:10' local time as ns since the epoch."""
    local = datetime.fromisoformat(text).replace(tzinfo=zone)
    return int(local.timestamp()) * 1_000_000_000


def write(root: Path, folder: str, name: str, lines: list[str], *, end: str = "\r\n") -> Path:
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write("".join(line + end for line in lines).encode("ascii"))
    return path


def append_raw(path: Path, text: str) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode("ascii"))


def by_stream(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.stream, []).append(s)
    return out


# ---- parsing ---------------------------------------------------------------------------------


def test_file_names() -> None:
    assert parse_file_name("CH6 T 24-12-03.log") == ("CH6 T", "24-12-03")
    assert parse_file_name("Status_24-12-03.log") == ("Status", "24-12-03")
    assert parse_file_name("maxigauge 24-12-03.log") == ("maxigauge", "24-12-03")
    assert parse_file_name("notes.txt") is None
    assert parse_file_name("CH6 T 24-12-03.log.bak") is None


def test_timestamps_are_day_first_local_time() -> None:
    assert parse_timestamp("03-12-24", "00:12:10", ZONE) == ns("2024-12-03 00:12:10")
    utc = datetime(2024, 12, 2, 22, 12, 10, tzinfo=UTC)  # Helsinki is UTC+2 in December
    assert parse_timestamp("03-12-24", "00:12:10", ZONE) == int(utc.timestamp()) * 10**9
    summer = datetime(2024, 7, 1, 9, 0, 0, tzinfo=UTC)  # UTC+3 in July
    assert parse_timestamp("01-07-24", "12:00:00", ZONE) == int(summer.timestamp()) * 10**9


def test_thermometer_line() -> None:
    samples = parse_line("CH6 T", "03-12-24,00:12:10,7.252130e-01\r\n", ZONE)
    assert samples == [Sample(ns("2024-12-03 00:12:10"), "CH6 T", 0.725213, "K")]
    assert parse_line("CH6 R", "03-12-24,00:12:10,1.5e+04", ZONE)[0].unit == "Ohm"
    assert parse_line("CH6 P", "03-12-24,00:12:10,1.5e-12", ZONE)[0].unit == "W"
    assert parse_line("Flowmeter", "03-12-24,00:12:10,0.512", ZONE)[0].unit == "mmol/s"


def test_maxigauge_line_flags_disabled_gauges_and_statuses() -> None:
    samples = {s.stream: s for s in parse_line("maxigauge", MAXIGAUGE + "\r\n", ZONE)}
    assert set(samples) == {f"maxigauge CH{n}" for n in range(1, 7)}  # none dropped
    assert samples["maxigauge CH1"].value == 1.83e-6 and samples["maxigauge CH1"].status == 0
    assert samples["maxigauge CH1"].quality == Quality.OK
    under = samples["maxigauge CH2"]
    assert under.value == -6.0 and under.status == 1  # the logged number is kept
    assert under.quality == Quality.UNDERRANGE and under.note == "status 1: underrange"
    off = samples["maxigauge CH3"]  # enabled 0: its number is not a pressure
    assert off.quality == Quality.SENSOR_OFF and off.value == 2.66e-2
    assert off.note == "disabled (enabled 0); status 4: sensor off"
    assert not off.reading().ok
    assert samples["maxigauge CH4"].value == 510.0  # leading space
    assert samples["maxigauge CH6"].value == 3.85 and samples["maxigauge CH6"].unit == "mbar"


@pytest.mark.parametrize(
    ("status", "flag"),
    [(0, Quality.OK), (1, Quality.UNDERRANGE), (2, Quality.OVERRANGE),
     (3, Quality.SENSOR_ERROR), (4, Quality.SENSOR_OFF), (5, Quality.SENSOR_OFF),
     (6, Quality.SENSOR_ERROR), (9, Quality.INVALID)],
)
def test_maxigauge_statuses_map_as_for_the_tpg366(status: int, flag: Quality) -> None:
    line = f"03-12-24,00:12:10,CH1,        ,1,1.00e-03,{status},1,"
    (sample,) = parse_line("maxigauge", line, ZONE)
    assert sample.quality == flag and sample.value == 1e-3
    reading = sample.reading()
    assert reading.t_ns == ns("2024-12-03 00:12:10") and reading.quality == flag


def test_channels_line_skips_the_extra_field() -> None:
    samples = {s.stream: s.value for s in parse_line("Channels", CHANNELS, ZONE)}
    assert samples["Channels v1"] == 1 and samples["Channels v2"] == 0
    assert samples["Channels pulsetube"] == 1 and samples["Channels ext"] == 1
    assert len(samples) == 9


def test_status_and_heaters_keep_unknown_keys() -> None:
    status = {s.stream: s.value for s in parse_line("Status", STATUS, ZONE)}
    assert status["Status cpatempwi"] == pytest.approx(18.59667)
    assert status["Status tc400setspdatt"] == 0.0
    assert status["Status pcu_new_key"] == 4.2
    heaters = {s.stream: s.value for s in parse_line("Heaters", HEATERS, ZONE)}
    assert heaters == {"Heaters a1_u": 0.0, "Heaters a1_r_lead": 30.0, "Heaters htr": 2.5e-3}


def test_bad_values_are_flagged_invalid_not_dropped() -> None:
    status = parse_line("Status", "03-12-24,00:20:10,a,1.0,b,oops,c,2.0", ZONE)
    assert [s.stream for s in status] == ["Status a", "Status b", "Status c"]
    bad = status[1]
    assert bad.quality == Quality.INVALID and bad.value != bad.value  # NaN
    assert bad.note == "'oops' is not a number"
    assert status[0].quality == status[2].quality == Quality.OK
    (nan,) = parse_line("CH6 T", "03-12-24,00:20:10,nan", ZONE)
    assert nan.quality == Quality.INVALID
    assert parse_line("CH6 T", "garbage", ZONE) == []  # no time: cannot be placed
    assert parse_line("CH6 T", "32-13-24,00:00:00,1.0", ZONE) == []


# ---- following the directory -------------------------------------------------------------------


def test_reads_all_kinds_of_the_newest_day(tmp_path: Path) -> None:
    write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,00:12:10,7.252130e-01"])
    write(tmp_path, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    write(tmp_path, "24-12-03", "Channels 24-12-03.log", [CHANNELS])
    write(tmp_path, "24-12-03", "Status_24-12-03.log", [STATUS])
    write(tmp_path, "24-12-03", "Heaters 24-12-03.log", [HEATERS])
    write(tmp_path, "24-12-03", "Flowmeter 24-12-03.log", ["03-12-24,00:12:10,0.512"])
    reader = BlueforsLogReader(tmp_path, timezone="Europe/Helsinki")
    streams = by_stream(reader.poll())
    assert streams["CH6 T"][0].value == 0.725213
    assert streams["maxigauge CH3"][0].quality == Quality.SENSOR_OFF
    assert streams["Channels turbo1"][0].value == 1
    assert streams["Status cpahp"][0].value == pytest.approx(323.1992)
    assert streams["Heaters htr"][0].value == 2.5e-3
    assert streams["Flowmeter"][0].unit == "mmol/s"
    assert reader.poll() == []  # nothing new


def test_appended_lines_and_partial_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,00:00:10,1.0"])
    reader = BlueforsLogReader(tmp_path, timezone=ZONE)
    assert [s.value for s in reader.poll()] == [1.0]
    append_raw(path, "03-12-24,00:00:20,2.0\r\n03-12-24,00:00:3")
    assert [s.value for s in reader.poll()] == [2.0]  # the unfinished line waits
    append_raw(path, "0,3.0\r")
    assert reader.poll() == []  # CR without LF: still not complete
    append_raw(path, "\n")
    got = reader.poll()
    assert [s.value for s in got] == [3.0]
    assert got[0].timestamp_ns == ns("2024-12-03 00:00:30")


def test_follows_the_date_change_without_losing_the_last_lines(tmp_path: Path) -> None:
    day1 = write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,23:59:40,1.0"])
    reader = BlueforsLogReader(tmp_path, timezone=ZONE)
    assert len(reader.poll()) == 1
    append_raw(day1, "03-12-24,23:59:50,2.0\r\n")  # written just before midnight
    write(tmp_path, "24-12-04", "CH6 T 24-12-04.log", ["04-12-24,00:00:00,3.0"])
    got = reader.poll()
    assert [s.value for s in got] == [2.0, 3.0]
    assert reader.cursors["CH6 T"].file == "24-12-04/CH6 T 24-12-04.log"
    write(tmp_path, "24-12-04", "CH6 T 24-12-04.log", ["04-12-24,00:00:10,4.0"])
    assert [s.value for s in reader.poll()] == [4.0]


def test_files_that_appear_late_are_picked_up(tmp_path: Path) -> None:
    write(tmp_path, "24-12-03", "CH1 T 24-12-03.log", ["03-12-24,10:00:00,45.0"])
    reader = BlueforsLogReader(tmp_path, timezone=ZONE)
    assert [s.stream for s in reader.poll()] == ["CH1 T"]
    write(tmp_path, "24-12-03", "CH2 T 24-12-03.log", ["03-12-24,10:00:00,3.1"])
    assert [s.stream for s in reader.poll()] == ["CH2 T"]
    assert reader.streams == ["CH1 T", "CH2 T"]


def test_no_log_root_yet_is_not_an_error(tmp_path: Path) -> None:
    reader = BlueforsLogReader(tmp_path / "later", timezone=ZONE)
    assert reader.poll() == []
    write(tmp_path / "later", "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,0.01"])
    assert len(reader.poll()) == 1


def test_backfill_false_starts_at_the_end(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "24-12-03",
        "CH6 T 24-12-03.log",
        ["03-12-24,10:00:00,1.0", "03-12-24,10:00:10,2.0"],
    )
    reader = BlueforsLogReader(tmp_path, timezone=ZONE, backfill=False)
    assert reader.poll() == []
    append_raw(path, "03-12-24,10:00:20,3.0\r\n")
    assert [s.value for s in reader.poll()] == [3.0]


def test_resumes_after_a_restart_without_duplicates(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state.json"
    path = write(logs, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,1.0"])
    write(logs, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    first = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    assert len(first.poll()) == 7
    saved = json.loads(state.read_text())
    assert saved["cursors"]["CH6 T"] == {"file": "24-12-03/CH6 T 24-12-03.log", "offset": 23}
    append_raw(path, "03-12-24,10:00:10,2.0\r\n")
    write(logs, "24-12-04", "CH6 T 24-12-04.log", ["04-12-24,00:00:00,3.0"])
    second = BlueforsLogReader(logs, timezone=ZONE, state_file=state)  # the restart
    assert [(s.stream, s.value) for s in second.poll()] == [("CH6 T", 2.0), ("CH6 T", 3.0)]
    third = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    assert third.poll() == []


def test_read_new_without_commit_rereads_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,1.0"])
    reader = BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state)
    assert len(reader.read_new()) == 1  # not committed: a crash now loses nothing
    again = BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state)
    assert len(again.read_new()) == 1
    again.commit()
    assert BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state).read_new() == []


def test_a_damaged_state_file_starts_afresh(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,1.0"])
    reader = BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state)
    assert len(reader.poll()) == 1
    assert json.loads(state.read_text())["version"] == 2


def test_a_version_1_state_file_is_resumed(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    path = write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,1.0"])
    state.write_text(json.dumps({"version": 1, "cursors": {
        "CH6 T": {"file": "24-12-03/CH6 T 24-12-03.log", "offset": 23}}}))
    append_raw(path, "03-12-24,10:00:10,2.0\r\n")
    reader = BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state)
    assert [s.value for s in reader.poll()] == [2.0]


def test_days_missed_while_down_are_read_in_order(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    write(tmp_path, "24-12-01", "CH6 T 24-12-01.log", ["01-12-24,10:00:00,1.0"])
    assert len(BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state).poll()) == 1
    for day, value in (("02", 2.0), ("03", 3.0), ("04", 4.0)):
        write(tmp_path, f"24-12-{day}", f"CH6 T 24-12-{day}.log", [f"{day}-12-24,10:00:00,{value}"])
    got = BlueforsLogReader(tmp_path, timezone=ZONE, state_file=state).poll()
    assert [s.value for s in got] == [2.0, 3.0, 4.0]
    assert [s.timestamp_ns for s in got] == sorted(s.timestamp_ns for s in got)


def test_a_rewritten_shorter_file_is_read_again(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "24-12-03",
        "CH6 T 24-12-03.log",
        ["03-12-24,10:00:00,1.0", "03-12-24,10:00:10,2.0"],
    )
    reader = BlueforsLogReader(tmp_path, timezone=ZONE)
    assert len(reader.poll()) == 2
    path.write_bytes(b"03-12-24,11:00:00,9.0\r\n")
    assert [s.value for s in reader.poll()] == [9.0]


def test_unix_line_endings_work_too(tmp_path: Path) -> None:
    write(
        tmp_path,
        "24-12-03",
        "CH6 T 24-12-03.log",
        ["03-12-24,10:00:00,1.0", "03-12-24,10:00:10,2.0"],
        end="\n",
    )
    assert [s.value for s in BlueforsLogReader(tmp_path, timezone=ZONE).poll()] == [1.0, 2.0]


# ---- the daemon's view -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_poll_specs_publish_every_new_line_as_a_batch_when_fresh(tmp_path: Path) -> None:
    path = write(tmp_path, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,0.010"])
    write(tmp_path, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    clock = FakeClock()
    reader = BlueforsLogReader(tmp_path, timezone=ZONE, refresh_s=5.0, clock=clock)
    specs = {s.name: s for s in reader.poll_specs()}
    assert specs["CH6_T"].unit == "K" and specs["CH6_T"].quantity == "temperature"
    assert specs["maxigauge_CH1"].quantity == "pressure"
    fresh = specs["CH6_T"].fresh
    assert fresh is not None and fresh()
    assert [(r.value, r.t_ns) for r in specs["CH6_T"].sample("bluefors")] == [
        (0.010, ns("2024-12-03 10:00:00"))]
    assert not fresh()
    append_raw(path, "03-12-24,10:00:10,0.011\r\n03-12-24,10:00:20,0.012\r\n")
    assert not fresh()  # the directory is rescanned at most every refresh_s
    clock.t = 5.0
    assert fresh()
    batch = specs["CH6_T"].sample("bluefors")  # every line, each with its own time
    assert [(r.value, r.t_ns) for r in batch] == [
        (0.011, ns("2024-12-03 10:00:10")), (0.012, ns("2024-12-03 10:00:20"))]
    assert specs["CH6_T"].read() == []  # nothing new
    off = specs["maxigauge_CH3"].sample("bluefors")[0]
    assert off.quality == Quality.SENSOR_OFF and "disabled" in off.note
    assert reader.latest("CH6 T") == Sample(ns("2024-12-03 10:00:20"), "CH6 T", 0.012, "K")
    assert reader.control_specs() == [] and reader.action_specs() == []


def test_spec_names_are_valid_channel_names() -> None:
    assert spec_name("CH6 T") == "CH6_T"
    assert spec_name("maxigauge CH1") == "maxigauge_CH1"
    assert spec_name("Channels hs-still") == "Channels_hs-still"
    assert spec_name("Status a b/c") == "Status_a_b_c"


def test_the_daemon_hands_the_reader_a_state_file() -> None:
    assert BlueforsLogReader.KEEPS_STATE is True


def _daemon_read(reader: BlueforsLogReader, names: list[str]) -> dict[str, list[tuple[float, int]]]:
    specs = {s.name: s for s in reader.poll_specs()}
    out = {}
    for name in names:
        fresh = specs[name].fresh
        assert fresh is not None
        out[name] = ([(r.value, r.t_ns or 0) for r in specs[name].sample("bluefors")]
                     if fresh() else [])
    return out


def test_restart_backfills_every_line_exactly_once(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state.json"
    t_path = write(logs, "24-12-03", "CH6 T 24-12-03.log", ["03-12-24,10:00:00,1.0"])
    g_path = write(logs, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    first = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    got = _daemon_read(first, ["CH6_T", "maxigauge_CH1"])
    assert [v for v, _ in got["CH6_T"]] == [1.0] and len(got["maxigauge_CH1"]) == 1
    # The daemon is down while the fridge keeps logging, across midnight.
    append_raw(t_path, "03-12-24,23:59:50,2.0\r\n")
    append_raw(g_path, MAXIGAUGE.replace("00:12:10", "23:00:00") + "\r\n")
    write(logs, "24-12-04", "CH6 T 24-12-04.log",
          ["04-12-24,00:00:00,3.0", "04-12-24,00:00:10,4.0"])
    second = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    got = _daemon_read(second, ["CH6_T", "maxigauge_CH1"])
    assert got["CH6_T"] == [(2.0, ns("2024-12-03 23:59:50")), (3.0, ns("2024-12-04 00:00:00")),
                            (4.0, ns("2024-12-04 00:00:10"))]
    assert [t for _, t in got["maxigauge_CH1"]] == [ns("2024-12-03 23:00:00")]
    third = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    assert _daemon_read(third, ["CH6_T", "maxigauge_CH1"]) == {"CH6_T": [], "maxigauge_CH1": []}


def test_lines_read_but_not_yet_handed_over_survive_a_restart(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state.json"
    write(logs, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    first = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    specs = {s.name: s for s in first.poll_specs()}  # the scan buffers all six gauges
    assert len(specs["maxigauge_CH1"].sample("bluefors")) == 1  # only CH1 handed over ...
    # ... then the daemon stops before it asked for CH2.
    second = BlueforsLogReader(logs, timezone=ZONE, state_file=state)
    got = _daemon_read(second, ["maxigauge_CH1", "maxigauge_CH2"])
    assert got["maxigauge_CH1"] == []  # not twice
    assert got["maxigauge_CH2"] == [(-6.0, ns("2024-12-03 00:12:10"))]  # not lost


def test_streams_the_daemon_never_asks_for_do_not_hold_back_the_restart_point(
    tmp_path: Path,
) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state.json"
    path = write(logs, "24-12-03", "maxigauge 24-12-03.log", [MAXIGAUGE])
    clock = FakeClock()
    reader = BlueforsLogReader(logs, timezone=ZONE, state_file=state, refresh_s=1.0,
                               follow_grace_s=10.0, clock=clock)
    assert _daemon_read(reader, ["maxigauge_CH1"])["maxigauge_CH1"]
    clock.t = 11.0  # the grace is over: CH2..CH6 are not polled by this daemon
    spec = {s.name: s for s in reader.poll_specs()}["maxigauge_CH1"]
    assert spec.fresh is not None and not spec.fresh()
    saved = json.loads(state.read_text())
    assert saved["cursors"]["maxigauge"]["offset"] == path.stat().st_size
    append_raw(path, MAXIGAUGE.replace("00:12:10", "00:12:20") + "\r\n")
    clock.t = 12.0
    assert spec.fresh() and len(spec.sample("bluefors")) == 1


# ---- against the simulator's log writer -----------------------------------------------------


def test_reads_what_the_simulated_fridge_logs(tmp_path: Path) -> None:
    fridge_mod = pytest.importorskip("simulators.physics.fridge")
    writer_mod = pytest.importorskip("simulators.servers.bluefors_writer")
    fridge = fridge_mod.DilutionFridge()
    writer = writer_mod.BlueforsLogWriter(
        tmp_path,
        fridge,
        timezone="Europe/Helsinki",
        disabled_gauges=(3,),
        underrange_gauges=(2,),
    )
    state = tmp_path / "state.json"
    reader = BlueforsLogReader(tmp_path, timezone="Europe/Helsinki", state_file=state)
    t0 = datetime(2024, 12, 3, 21, 59, 0, tzinfo=UTC)  # 23:59 in Helsinki
    writer.write_sample(t0)
    first = by_stream(reader.poll())
    assert 0.003 < first["CH6 T"][0].value < 0.1
    assert first["CH6 T"][0].timestamp_ns == int(t0.timestamp()) * 10**9
    assert first["CH1 R"][0].unit == "Ohm"
    assert first["maxigauge CH3"][0].quality == Quality.SENSOR_OFF  # disabled
    assert first["maxigauge CH2"][0].value < 0 and first["maxigauge CH2"][0].status == 1
    assert first["maxigauge CH2"][0].quality == Quality.UNDERRANGE
    assert first["maxigauge CH6"][0].value > 0
    assert {"Channels v1", "Status cpatempwi", "Flowmeter"} <= set(first)
    assert any(name.startswith("Heaters ") for name in first)

    # partial line, then the date change (local midnight), then a kind that appears late
    t1 = datetime(2024, 12, 3, 21, 59, 30, tzinfo=UTC)
    writer.write_sample(t1, hold_back=5)
    assert reader.poll() == []
    t2 = datetime(2024, 12, 3, 22, 0, 30, tzinfo=UTC)  # 00:00:30 on the 4th
    writer.write_sample(t2, kinds=[k for k in writer.kinds if k != "Heaters"])
    got = by_stream(reader.poll())
    assert [s.timestamp_ns for s in got["CH6 T"]] == [
        int(t1.timestamp()) * 10**9,
        int(t2.timestamp()) * 10**9,
    ]
    assert reader.cursors["CH6 T"].file == "24-12-04/CH6 T 24-12-04.log"
    assert reader.cursors["Heaters"].file == "24-12-03/Heaters 24-12-03.log"
    t3 = datetime(2024, 12, 3, 22, 1, 0, tzinfo=UTC)
    writer.write_sample(t3)
    assert reader.cursors["Heaters"].file.startswith("24-12-03/")
    again = by_stream(reader.poll())
    assert reader.cursors["Heaters"].file == "24-12-04/Heaters 24-12-04.log"
    assert len(again["CH6 T"]) == 1
    # a restarted reader has nothing to repeat
    assert BlueforsLogReader(tmp_path, timezone="Europe/Helsinki", state_file=state).poll() == []


def test_every_gauge_status_the_simulator_logs_arrives_flagged(tmp_path: Path) -> None:
    fridge_mod = pytest.importorskip("simulators.physics.fridge")
    writer_mod = pytest.importorskip("simulators.servers.bluefors_writer")
    writer = writer_mod.BlueforsLogWriter(
        tmp_path, fridge_mod.DilutionFridge(), gauge_statuses={n: n for n in range(1, 7)})
    writer.write_sample(datetime(2024, 12, 3, 8, 0, 0, tzinfo=UTC))
    reader = BlueforsLogReader(tmp_path, timezone="UTC")
    specs = {s.name: s for s in reader.poll_specs()}
    flags = {n: specs[f"maxigauge_CH{n}"].sample("bluefors")[0].quality for n in range(1, 7)}
    assert flags == {1: Quality.UNDERRANGE, 2: Quality.OVERRANGE, 3: Quality.SENSOR_ERROR,
                     4: Quality.SENSOR_OFF, 5: Quality.SENSOR_OFF, 6: Quality.SENSOR_ERROR}
