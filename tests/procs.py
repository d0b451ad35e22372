"""Real processes for the end-to-end tests: start, handshake on a ready line, stop.

No sleeps to wait for readiness: every service prints one ``<name> ready``
line when it is up, and :func:`wait_line` reads stdout until it appears.
A reader thread keeps every line (so pipes never fill) for later asserts.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """A child process running ``python -m daq.cli ...`` (or any module) with captured output."""

    def __init__(self, *args: str, name: str = "", env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.args = list(args)
        self.name = name or args[0]
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **env} if env else None,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_line(self, prefix: str, timeout_s: float = 60.0) -> str:
        """Return the first new line starting with ``prefix``; fail if the process ends first."""
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"{self.name} ended before printing {prefix!r}:\n"
                                     + "\n".join(self.lines[-30:]))
            if line.startswith(prefix):
                return line
        raise AssertionError(f"{self.name}: no {prefix!r} line within {timeout_s} s:\n"
                             + "\n".join(self.lines[-30:]))

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.proc.kill()
        self.proc.wait()

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        """Wait for an exit already asked for (one signal, as systemd sends it); SIGKILL after
        ``timeout_s``. A second SIGTERM could land during the interpreter's shutdown, when
        Python's handlers are gone, and read as a crash."""
        try:
            return int(self.proc.wait(timeout=timeout_s))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return int(self.proc.returncode)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def bus_section(**extra: Any) -> dict[str, Any]:
    """A config's ``bus`` section on free ports, heartbeats every 0.5 s (``extra`` adds keys)."""
    return {"publish_port": free_port(), "subscribe_port": free_port(),
            "snapshot_port": free_port(), "heartbeat_s": 0.5, **extra}


def logger_section(tmp_path: Path, name: str, **extra: Any) -> dict[str, Any]:
    """A config's ``logger`` section on free ports, archiving under ``tmp_path/data``."""
    return {"name": name, "endpoint": f"tcp://127.0.0.1:{free_port()}",
            "history_endpoint": f"tcp://127.0.0.1:{free_port()}",
            "directory": str(tmp_path / "data"), **extra}


def qupdaq(*args: str, name: str = "", env: dict[str, str] | None = None) -> Service:
    """``qupdaq ARGS`` as a child process (``env`` adds to the environment)."""
    return Service("-m", "daq.cli", *args, name=name or args[0], env=env)


def sim_lab_config(tmp_path: Path, *, time_scale: float = 1.0,
                   victim: str | None = None, victim_faults: dict[str, Any] | None = None,
                   **sections: Any) -> tuple[Path, Path | None, dict[str, Any]]:
    """The embedded sim_lab.yaml on free ports, written to ``tmp_path``.

    With ``victim``, that one simulated instrument is served by a second
    config (returned second) so a test can kill, hang or garble it alone;
    ``victim_faults`` are its connection faults from the start. Extra
    keyword arguments replace whole top-level sections.
    """
    data = yaml.safe_load((ROOT / "configs" / "sim_lab.yaml").read_text())
    bus = data["bus"]
    for key in ("publish_port", "subscribe_port", "snapshot_port"):
        bus[key] = free_port()
    bus["heartbeat_s"] = 0.5
    data["daemon"]["control"]["bind"] = f"tcp://127.0.0.1:{free_port()}"
    data["daemon"]["state_dir"] = str(tmp_path / "state")  # each test its own restart state
    if data.get("alarms") is not None:  # the alarm service: its own port and state
        data["alarms"]["bind"] = data["daemon"]["alarms_url"] = \
            f"tcp://127.0.0.1:{free_port()}"
        data["alarms"]["state_dir"] = str(tmp_path / "state")
    logger = data["logger"]
    logger["endpoint"] = data["daemon"]["logger_url"] = f"tcp://127.0.0.1:{free_port()}"
    logger["history_endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    logger["directory"] = str(tmp_path / "data")
    sim = data["simulation"]
    sim["time_scale"] = time_scale
    sim["bluefors_log"]["directory"] = str(tmp_path / "bluefors")
    ports = {}
    for name, item in sim["instruments"].items():
        ports[name] = item["port"] = free_port()
    for name, inst in data["instruments"].items():
        port = ports[name]
        inst["resource"] = f"TCPIP::127.0.0.1::{port}::SOCKET"
        if name == "ls372":
            inst.setdefault("options", {})["time_scale"] = time_scale
    data.update(sections)
    victim_path = None
    if victim is not None:
        victim_data = {"simulation": {**sim, "instruments": {
            name: {**item, "enabled": name == victim,
                   **({"faults": victim_faults} if name == victim and victim_faults else {})}
            for name, item in sim["instruments"].items()}}}
        sim["instruments"][victim]["enabled"] = False
        victim_path = tmp_path / "victim.yaml"
        victim_path.write_text(yaml.safe_dump(victim_data))
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, victim_path, data
