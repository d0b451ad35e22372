"""The Bluefors-style log directory written from the simulated fridge."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.physics.fridge import DilutionFridge
from simulators.servers.bluefors_writer import BlueforsLogWriter

STAMP = r"\d{2}-\d{2}-\d{2},\d{2}:\d{2}:\d{2}"
VALUE_LINE = re.compile(rf"^{STAMP},-?\d\.\d{{6}}e[+-]\d{{2}}\r\n$")


@pytest.fixture
def fridge() -> DilutionFridge:
    return DilutionFridge()


@pytest.fixture
def writer(tmp_path: Path, fridge: DilutionFridge) -> BlueforsLogWriter:
    return BlueforsLogWriter(tmp_path, fridge, timezone="Europe/Helsinki")


WHEN = datetime(2024, 12, 3, 8, 12, 10, tzinfo=UTC)  # 10:12:10 in Helsinki


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_day_folder_and_file_names(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    written = writer.write_sample(WHEN)
    day = tmp_path / "24-12-03"
    names = sorted(p.name for p in day.iterdir())
    assert {p.name for p in written} == set(names)
    for expected in (
        "CH1 T 24-12-03.log",
        "CH2 R 24-12-03.log",
        "CH5 P 24-12-03.log",
        "CH6 T 24-12-03.log",
        "CH9 T 24-12-03.log",
        "maxigauge 24-12-03.log",
        "Flowmeter 24-12-03.log",
        "Channels 24-12-03.log",
        "Status_24-12-03.log",
        "Heaters 24-12-03.log",
    ):
        assert expected in names


def test_temperature_resistance_power_lines(
    writer: BlueforsLogWriter, tmp_path: Path, fridge: DilutionFridge
) -> None:
    writer.write_sample(WHEN)
    day = tmp_path / "24-12-03"
    (t_line,) = lines(day / "CH6 T 24-12-03.log")
    assert VALUE_LINE.match(t_line.decode())
    assert t_line.startswith(b"03-12-24,10:12:10,")  # day first, local time
    assert float(t_line.split(b",")[2]) == pytest.approx(fridge.temperature("mxc"))
    r = float(lines(day / "CH6 R 24-12-03.log")[0].split(b",")[2])
    assert 50e3 < r < 100e3
    p = float(lines(day / "CH6 P 24-12-03.log")[0].split(b",")[2])
    assert 0 < p < 1e-12
    flow = float(lines(day / "Flowmeter 24-12-03.log")[0].split(b",")[2])
    assert flow == pytest.approx(fridge.circulation_mol_s * 1e3)


def test_maxigauge_line(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    writer.disabled_gauges = {4}
    writer.underrange_gauges = {5}
    writer.write_sample(WHEN)
    (line,) = lines(tmp_path / "24-12-03" / "maxigauge 24-12-03.log")
    text = line.decode()
    assert text.endswith(",\r\n")  # the trailing comma
    fields = text.rstrip("\r\n").split(",")
    assert fields[:2] == ["03-12-24", "10:12:10"]
    groups = [fields[2 + 6 * k : 8 + 6 * k] for k in range(6)]
    assert fields[-1] == ""
    assert [g[0] for g in groups] == [f"CH{n}" for n in range(1, 7)]
    assert groups[0][1] == " " * 8  # blank name, padded
    assert groups[5][1] == "P6"
    assert re.match(r"^\d\.\d{2}e[+-]\d{2}$", groups[0][3])
    assert re.match(r"^ \d\.\d{2}E[+-]\d$", groups[5][3])  # the older style, leading space
    assert groups[3][2:5] == ["0", "0.00e+00", "4"]  # disabled
    assert groups[4][3:5] == ["-6.00e+00", "1"]  # below its range
    assert all(g[5] == "1" for g in groups)


def test_channels_status_heaters_are_key_value_lines(
    writer: BlueforsLogWriter, tmp_path: Path
) -> None:
    writer.write_sample(WHEN)
    day = tmp_path / "24-12-03"
    channels = lines(day / "Channels 24-12-03.log")[0].decode().rstrip("\r\n").split(",")
    assert channels[2] == "0"
    pairs = dict(zip(channels[3::2], channels[4::2], strict=True))
    assert pairs["v1"] == "1" and pairs["pulsetube"] == "1" and pairs["ext"] == "1"
    assert pairs["hs-mc"] == "0"
    status = lines(day / "Status_24-12-03.log")[0].decode().rstrip("\r\n").split(",")
    values = dict(zip(status[2::2], status[3::2], strict=True))
    assert values["ctrl_pres_ok"] == "1.000000e+00"
    assert values["cpawarn"] == "-0.000000e+00"
    assert all(re.match(r"^-?\d\.\d{6}e[+-]\d{2}$", v) for v in values.values())
    heaters = lines(day / "Heaters 24-12-03.log")[0].decode().rstrip("\r\n").split(",")
    assert dict(zip(heaters[2::2], heaters[3::2], strict=True))["a1_r_htr"] == "1.200000e+02"


def test_every_line_ends_with_crlf(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    for k in range(3):
        writer.write_sample(WHEN + timedelta(seconds=10 * k))
    for path in (tmp_path / "24-12-03").iterdir():
        data = path.read_bytes()
        assert data.count(b"\r\n") == 3 == data.count(b"\n")


def test_local_midnight_starts_a_new_day_folder(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    before = datetime(2024, 12, 3, 21, 59, 50, tzinfo=UTC)  # 23:59:50 in Helsinki
    writer.write_sample(before)
    writer.write_sample(before + timedelta(seconds=20))
    old = lines(tmp_path / "24-12-03" / "CH6 T 24-12-03.log")
    new = lines(tmp_path / "24-12-04" / "CH6 T 24-12-04.log")
    assert [line[:17] for line in old] == [b"03-12-24,23:59:50"]
    assert [line[:17] for line in new] == [b"04-12-24,00:00:10"]


def test_naive_times_are_taken_as_local(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    writer.write_sample(datetime(2025, 1, 2, 3, 4, 5))
    (line,) = lines(tmp_path / "25-01-02" / "CH1 T 25-01-02.log")
    assert line.startswith(b"02-01-25,03:04:05,")


def test_held_back_bytes_leave_a_partial_last_line(
    writer: BlueforsLogWriter, tmp_path: Path
) -> None:
    path = tmp_path / "24-12-03" / "CH6 T 24-12-03.log"
    writer.write_sample(WHEN)
    writer.write_sample(WHEN + timedelta(seconds=10), hold_back=6)
    data = path.read_bytes()
    assert data.count(b"\r\n") == 1 and not data.endswith(b"\n")
    writer.flush_pending()
    data = path.read_bytes()
    assert data.count(b"\r\n") == 2 and data.endswith(b"\r\n")
    assert all(VALUE_LINE.match(line.decode()) for line in lines(path))


def test_a_file_can_appear_late(writer: BlueforsLogWriter, tmp_path: Path) -> None:
    others = [k for k in writer.kinds if k != "maxigauge"]
    writer.write_sample(WHEN, kinds=others)
    late = tmp_path / "24-12-03" / "maxigauge 24-12-03.log"
    assert not late.exists()
    writer.write_sample(WHEN + timedelta(seconds=10))
    assert len(lines(late)) == 1
    assert len(lines(tmp_path / "24-12-03" / "CH6 T 24-12-03.log")) == 2
    with pytest.raises(KeyError, match="known"):
        writer.write_sample(WHEN, kinds=["CH7 T"])


def test_log_follows_the_fridge(
    writer: BlueforsLogWriter, fridge: DilutionFridge, tmp_path: Path
) -> None:
    writer.write_sample(WHEN)
    fridge.set_heater("mxc", 50e-6)
    fridge.advance(1800)
    writer.write_sample(WHEN + timedelta(minutes=30))
    first, second = (
        float(x.split(b",")[2]) for x in lines(tmp_path / "24-12-03" / "CH6 T 24-12-03.log")
    )
    assert second > 3 * first
    heaters = lines(tmp_path / "24-12-03" / "Heaters 24-12-03.log")[-1].decode()
    assert "htr,5.000000e-05" in heaters


@pytest.mark.parametrize(
    ("status", "value"),
    [(1, b"-6.00e+00"), (2, b"1.00e+03"), (3, b"0.00e+00"), (4, b"0.00e+00"),
     (5, b"0.00e+00"), (6, b"0.00e+00")],
)
def test_maxigauge_gauges_can_be_written_in_every_status(
    tmp_path: Path, fridge: DilutionFridge, status: int, value: bytes
) -> None:
    writer = BlueforsLogWriter(tmp_path, fridge, gauge_statuses={3: status})
    writer.write_sample(WHEN)
    (line,) = lines(tmp_path / "24-12-03" / "maxigauge 24-12-03.log")
    groups = line.rstrip(b",\r\n").split(b",")[2:]
    assert groups[12:18] == [b"CH3", b" " * 8, b"1", value, str(status).encode(), b"1"]
    assert groups[6:8] == [b"CH2", b" " * 8] and groups[10] == b"0"  # the others as before
    writer.gauge_statuses.clear()
    writer.write_sample(WHEN + timedelta(seconds=10))
    assert lines(tmp_path / "24-12-03" / "maxigauge 24-12-03.log")[1].split(b",")[18] == b"0"


def test_a_forced_status_must_be_a_maxigauge_status(tmp_path: Path, fridge: DilutionFridge) -> None:
    with pytest.raises(ValueError, match="statuses 1-6"):
        BlueforsLogWriter(tmp_path, fridge, gauge_statuses={3: 7})
