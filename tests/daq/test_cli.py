"""The `qupdaq` command line, run as a user runs it (real processes)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daq import messages
from daq.bus import Publisher
from daq.status_table import format_status_table
from tests.procs import qupdaq

ROOT = Path(__file__).resolve().parents[2]
QUPDAQ = [sys.executable, "-m", "daq.cli"]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QUPDAQ, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(
    "command",
    ["broker", "daemon", "logger", "export", "dashboard", "sim", "run", "up", "bench", "status",
     "alarms", "init", "units"],
)
def test_every_subcommand_has_help(command: str) -> None:
    result = _run(command, "--help")
    assert result.returncode == 0
    assert f"qupdaq {command}" in result.stdout


def test_a_bad_config_is_reported_with_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("bus:\n  subscribe_prot: 1\n")
    result = _run("status", str(bad))
    assert result.returncode == 2
    assert f"{bad}:bus.subscribe_prot: unknown key" in result.stderr


def test_status_prints_the_latest_value_of_every_stream(tmp_path: Path) -> None:
    broker = qupdaq("broker", "--publish-port", "0", "--subscribe-port", "0",
                    "--snapshot-port", "0")
    try:
        line = broker.wait_line("broker ready")
        urls = dict(part.split("=", 1) for part in line.split()[2:])
        with Publisher(urls["publish"], name="tester") as pub:
            # The broker's cache subscribes to data/: wait for that, not for a fixed time.
            assert pub.wait_for_subscriber("data/fridge1/mxc")
            assert pub.wait_for_subscriber("status/fridge1/ls372")  # each kind subscribes alone
            pub.publish(messages.scalar("fridge1", "mxc", 0.5, units="K"))
            pub.publish(messages.scalar("fridge1", "mxc", 0.0102, units="K"))
            pub.publish(messages.scalar("fridge1", "still_pressure", 2.1e-3, units="mbar"))
            pub.publish(messages.status("fridge1", "ls372", "connected"))
            end_marker = pub.publish(messages.scalar("fridge1", "zz_last", 1.0))
            assert end_marker.seq == 0
            result = None
            for _ in range(50):  # the cache fills asynchronously; poll the real command
                result = _run("status", "--subscribe-url", urls["subscribe"],
                              "--snapshot-url", urls["snapshot"])
                if "zz_last" in result.stdout:
                    break
        assert result is not None and result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["STREAM", "VALUE", "QUALITY", "AGE", "PUBLISHER", "SEQ"]
        mxc = next(line for line in lines if line.startswith("data/fridge1/mxc"))
        assert "0.0102 K" in mxc and "tester" in mxc and mxc.split()[-1] == "1"
        assert any("still_pressure" in line and "0.0021 mbar" in line for line in lines)
        assert any(line.startswith("status/fridge1/ls372") and "connected" in line
                   for line in lines)
    finally:
        broker.proc.send_signal(signal.SIGINT)
        broker.proc.wait(timeout=10)
    assert broker.proc.returncode == 0


def test_status_table_formats_quality_flags_and_ages() -> None:
    msg = messages.scalar("f", "mxc", 0.01, units="K", t=0, quality=messages.Quality.STALE
                          | messages.Quality.OVERRANGE)
    table = format_status_table([msg], now_ns=90 * 10**9)
    row = table.splitlines()[1]
    assert "STALE|OVERRANGE" in row and "1.5 min" in row
    assert "no streams yet" in format_status_table([])


def test_daemon_refuses_a_remote_control_endpoint_without_curve_keys(tmp_path: Path) -> None:
    config = tmp_path / "remote.yaml"
    config.write_text("daemon:\n  control: {bind: 'tcp://0.0.0.0:7110'}\n")
    result = _run("daemon", str(config))
    assert result.returncode == 2
    assert "daemon.control: control endpoint tcp://0.0.0.0:7110 is not loopback" in result.stderr
    assert "needs CURVE keys" in result.stderr


def test_daemon_reports_a_misspelt_driver_as_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("instruments:\n  ls372:\n    driver: lakeshore.ls372:LakeShore373\n"
                      "    resource: TCPIP::127.0.0.1::7777::SOCKET\n    source: fridge1\n")
    result = _run("daemon", str(config))
    assert result.returncode == 2
    assert "instruments.ls372.driver: drivers.lakeshore.ls372 has no class 'LakeShore373'" \
        in result.stderr
