"""Fixtures of the logger tests: a throwaway PostgreSQL cluster, stores, logger processes.

The PostgreSQL cluster is started once per session with initdb/pg_ctl on a
random port in a temporary directory; each test gets its own schema. initdb
refuses to run as root, so as root the cluster runs as the ``postgres``
system user (created when missing). The PostgreSQL tests are skipped only
when no initdb binary is found (``apt-get install postgresql``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from daq.logger.config import LoggerConfig, logger_config_from_mapping
from daq.logger.sink import Store
from daq.logger.stats import LoggerStats
from daq.logger.writer import Writer
from daq.messages import Message

ROOT = Path(__file__).resolve().parents[2]


# ---- stamping, as the daemon's outbound stage does ------------------------------------------


class Stamper:
    """Stamps messages with per-stream seq, one epoch and a publisher name (like Publisher)."""

    def __init__(self, pub: str = "testd", epoch: int | None = None) -> None:
        self.pub = pub
        self.epoch = time.time_ns() if epoch is None else epoch
        self.seqs: dict[str, int] = {}

    def __call__(self, msg: Message) -> Message:
        seq = self.seqs.get(msg.stream, -1) + 1
        self.seqs[msg.stream] = seq
        msg.seq, msg.epoch, msg.pub = seq, self.epoch, self.pub
        return msg


# ---- PostgreSQL ---------------------------------------------------------------------------------


def _initdb() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else shutil.which("initdb")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_cluster_user() -> tuple[list[str], int | None, int | None]:
    """Command prefix and uid/gid to run PostgreSQL binaries (never as root)."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        user = pwd.getpwnam("postgres")
    runuser = shutil.which("runuser")
    prefix = [runuser, "-u", "postgres", "--"] if runuser else []
    return prefix, user.pw_uid, user.pw_gid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running throwaway PostgreSQL cluster; yields a DSN (without database options)."""
    initdb = _initdb()
    if initdb is None:
        pytest.skip("no PostgreSQL initdb binary found (install it: apt-get install -y "
                    "postgresql)")
    bindir = Path(initdb).parent
    prefix, uid, gid = _as_cluster_user()
    base = Path(tempfile.mkdtemp(prefix="qupdaq-pg-"))
    if uid is not None:
        os.chown(base, uid, gid or 0)
    data = base / "data"

    def run(*cmd: str) -> None:
        if uid is not None and not prefix:
            cmd = ("su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd))
        subprocess.run([*prefix, *cmd], check=True, cwd=base, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "qupdaq", "-E", "UTF8",
        "--no-sync")
    port = 0
    for _attempt in range(5):
        port = _free_port()
        try:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                "-t", "60", "-o",
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off", "start")
            break
        except subprocess.CalledProcessError:
            continue
    else:
        pytest.fail(f"PostgreSQL did not start; see {base / 'log'}")
    try:
        yield f"host=127.0.0.1 port={port} user=qupdaq dbname=postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_dsn(postgres_server: str) -> str:
    """A DSN whose tables live in a fresh schema of their own (one per test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    return f"{postgres_server} options='-c search_path={schema}'"


# ---- stores ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Runs a test once per SQL store."""
    return str(request.param)


@pytest.fixture
def logger_config(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
                  ) -> LoggerConfig:
    """A logger config for the parametrised store, storage in ``tmp_path``."""
    section: dict[str, Any] = {"directory": str(tmp_path / "store"),
                               "endpoint": "tcp://127.0.0.1:0",
                               "history_endpoint": "tcp://127.0.0.1:0"}
    if store_kind == "postgresql":
        section["sinks"] = ["postgresql", "hdf5"]
        section["postgresql_dsn"] = request.getfixturevalue("postgres_dsn")
    return logger_config_from_mapping(section)


@pytest.fixture
def open_store(logger_config: LoggerConfig) -> Iterator[Callable[..., Store]]:
    """Opens the parametrised store (again: the same database); closes them all at the end."""
    from daq.logger.writer import open_store as _open

    opened: list[Store] = []

    def factory(readonly: bool = False) -> Store:
        store = _open(logger_config, readonly=readonly)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        with contextlib.suppress(Exception):  # a test may have closed it already
            store.close()


@pytest.fixture
def writer(logger_config: LoggerConfig) -> Iterator[Writer]:
    """A writer on the parametrised store, open; closed at the end."""
    w = Writer(logger_config, LoggerStats())
    w.open()
    yield w
    w.close()


# ---- logger processes ---------------------------------------------------------------------------


def write_config(path: Path, **logger: Any) -> Path:
    """A lab config file with other sections the logger must ignore, and a logger section."""
    section = {"endpoint": "tcp://127.0.0.1:0", "history_endpoint": "tcp://127.0.0.1:0",
               **logger}
    path.write_text(yaml.safe_dump({"lab": {"name": "test-lab"},
                                    "bus": {"host": "127.0.0.1", "publish_port": _free_port()},
                                    "simulation": {"anything": [1, 2]},
                                    "logger": section}))
    return path


def read_line(proc: subprocess.Popen[str], expect: str, timeout_s: float = 30.0) -> str:
    """Read stdout until a line starts with ``expect`` (a handshake, not a sleep)."""
    assert proc.stdout is not None
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"process ended (rc={proc.poll()}) before printing {expect!r}")
        if line.startswith(expect):
            return line.strip()
    raise AssertionError(f"no {expect!r} line within {timeout_s} s")


class LoggerProcess:
    """``python -m daq.logger CONFIG`` as a child; restarts on the same ports after a kill."""

    def __init__(self, config: Path, *, preexec: Callable[[], None] | None = None,
                 log: Path | None = None) -> None:
        self.config = config
        self.preexec = preexec
        self.log = log
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.history = ""
        self.ready: dict[str, str] = {}

    def start(self) -> LoggerProcess:
        args = [sys.executable, "-m", "daq.logger", str(self.config)]
        if self.endpoint:
            args += ["--endpoint", self.endpoint, "--history-endpoint", self.history]
        stderr = self.log.open("a") if self.log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=self.preexec)
        if self.log is not None:
            stderr.close()  # type: ignore[union-attr]
        line = read_line(self.proc, "logger ready")
        self.ready = dict(part.split("=", 1) for part in line.split()[2:])
        self.endpoint, self.history = self.ready["endpoint"], self.ready["history"]
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


@pytest.fixture
def logger_process() -> Iterator[Callable[..., LoggerProcess]]:
    """Starts logger processes; stops (or kills) them all at the end."""
    started: list[LoggerProcess] = []

    def factory(config: Path, **kwargs: Any) -> LoggerProcess:
        proc = LoggerProcess(config, **kwargs)
        started.append(proc)
        return proc.start()

    yield factory
    for proc in started:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
