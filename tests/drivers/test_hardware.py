"""Opt-in tests against real hardware, run with ``--device-address=...``.

The address is a VISA resource (``TCPIP::192.168.1.20::7777::SOCKET`` for a
Lake Shore, ``TCPIP::192.168.1.30::8000::SOCKET`` for a MaxiGauge) or, for the
Bluefors reader, the path of the log directory (the site's time zone is taken
from the ``TZ`` environment variable, default UTC). The instrument is identified
first and only the matching tests run. The tests only read, or write back
exactly what they read: no heater is switched and no setpoint moved.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from drivers.bluefors import BlueforsLogReader
from drivers.lakeshore import LakeShore336, LakeShore372
from drivers.lakeshore.ls372_codes import ReadingStatus
from drivers.pfeiffer import TPG366

pytestmark = pytest.mark.hardware


def _identify(address: str) -> str:
    """'ls372', 'ls336', 'tpg366', 'bluefors' or '' for what answers at ``address``."""
    if Path(address).is_dir():
        return "bluefors"
    try:
        lakeshore = LakeShore336(address, timeout=1000)
        try:
            idn = ",".join(lakeshore.identity)
        finally:
            lakeshore.adapter.close()
        if "MODEL372" in idn:
            return "ls372"
        if "MODEL336" in idn or "MODEL350" in idn:
            return "ls336"
    except Exception:  # noqa: BLE001 - not a Lake Shore; try the next protocol
        pass
    tpg = TPG366(address, timeout=1000)
    try:
        tpg.stop_stream()
        return "tpg366" if tpg.identity else ""
    except Exception:  # noqa: BLE001 - nothing we know answers here
        return ""
    finally:
        tpg.adapter.close()


@pytest.fixture(scope="module")
def kind(request: pytest.FixtureRequest) -> str:
    address = request.config.getoption("--device-address")
    return _identify(str(address))


def _need(kind: str, wanted: str) -> None:
    if kind != wanted:
        pytest.skip(f"the device at --device-address is not a {wanted} ({kind or 'unknown'})")


@pytest.fixture
def ls372(kind: str, device_address: str) -> Any:
    _need(kind, "ls372")
    ls = LakeShore372(device_address)
    yield ls
    ls.adapter.close()


@pytest.fixture
def ls336(kind: str, device_address: str) -> Any:
    _need(kind, "ls336")
    lc = LakeShore336(device_address)
    yield lc
    lc.adapter.close()


@pytest.fixture
def tpg(kind: str, device_address: str) -> Any:
    _need(kind, "tpg366")
    gauge = TPG366(device_address)
    gauge.stop_stream()
    yield gauge
    gauge.adapter.close()


def test_ls372_reads_every_input_and_output(ls372: LakeShore372) -> None:
    assert ls372.identity[1] == "MODEL372"
    for ch in ["A", *range(1, 17)]:
        chan = ls372.inputs[ch]
        settings = chan.scan_settings
        assert 1 <= settings.dwell <= 200 and 3 <= settings.pause <= 200
        setup = chan.input_type
        assert setup.excitation > 0 and setup.resistance_range > 0
        assert isinstance(chan.status, ReadingStatus)
        if settings.enabled:
            assert chan.resistance >= 0 and chan.kelvin >= 0
    for out in (ls372.sample_heater, ls372.warmup_heater, ls372.still_heater):
        assert out.setup.mode is not None
        if hasattr(out, "heater_setup"):  # outputs 0 and 1
            assert out.heater_setup.resistance > 0
        assert out.pid.p >= 0
        assert out.ramp.rate >= 0
        assert out.heater_status.name in {"OK", "OPEN_LOAD", "SHORT"}
    assert ls372.sample_heater.heater_output >= 0
    assert 1 <= ls372.refresh_scan(settings=True).channel <= 16


def test_ls372_name_written_back_unchanged(ls372: LakeShore372) -> None:
    name = ls372.ch_1.name
    ls372.ch_1.name = name
    assert ls372.ch_1.name == name


def test_ls372_daemon_view(ls372: LakeShore372) -> None:
    names = {s.name for s in ls372.poll_specs()}
    assert {"sample_heater", "still"} <= names
    assert {c.name for c in ls372.control_specs()} >= {"setpoint", "heater_range"}


def test_ls336_reads_inputs_and_outputs(ls336: LakeShore336) -> None:
    for letter in "ABCD":
        chan = ls336.inputs[letter]
        chan.input_type  # noqa: B018 - parses the reply or raises
        assert 0 <= chan.curve <= 59
        assert chan.kelvin >= 0
    for out in (ls336.output_1, ls336.output_2):
        assert out.heater_range is not None
        assert 0 <= out.heater_output <= 100
        out.setup  # noqa: B018
        out.heater_setup  # noqa: B018
        out.pid  # noqa: B018
        out.ramp  # noqa: B018


def test_tpg366_reads_all_gauges(tpg: TPG366) -> None:
    readings = tpg.readings
    assert len(readings) == 6
    for n, reading in enumerate(readings, start=1):
        single = tpg.gauges[n].reading
        assert single.status == reading.status
        if reading.valid:
            assert reading.pressure > 0 or math.isfinite(reading.pressure)
    unit = tpg.unit
    tpg.unit = unit
    assert tpg.unit == unit
    assert len(tpg.sensor_states) == 6


def test_bluefors_reader_on_the_real_log_directory(
    kind: str, device_address: str, tmp_path: Path
) -> None:
    _need(kind, "bluefors")
    reader = BlueforsLogReader(
        device_address, timezone=os.environ.get("TZ", "UTC"), state_file=tmp_path / "state.json"
    )
    samples = reader.poll()
    assert samples, "the newest day folder holds no readable lines"
    assert all(s.timestamp_ns > 0 and math.isfinite(s.value) for s in samples)
    later = reader.poll()  # only lines appended in between, never a repeat
    first = {(s.stream, s.timestamp_ns) for s in samples}
    assert not first & {(s.stream, s.timestamp_ns) for s in later}
