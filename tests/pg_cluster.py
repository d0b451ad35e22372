"""A throwaway PostgreSQL cluster that may run inside a network namespace.

Like the cluster of ``tests/logger/conftest.py`` (initdb and pg_ctl in a
temporary directory, trust authentication, the ``postgres`` system user when
running as root, since initdb refuses root), but started with a command
prefix such as ``ip netns exec SERVER``: the database then lives on that
host and listens on its loopback. Its Unix socket directory is a plain
directory, reachable from every namespace of the machine: the test reads
the archive through it (:attr:`PostgresCluster.socket_dsn`) while the logger
on the server uses TCP (:attr:`PostgresCluster.tcp_dsn`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def initdb_binary() -> str | None:
    """The newest installed initdb, or None (``apt-get install -y postgresql``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else shutil.which("initdb")


class PostgresCluster:
    """A private cluster: :meth:`start`, the DSNs, :meth:`stop` (which also removes it).

    Args:
        prefix: command prefix to start the server with (``[]``: this namespace).
        port: the TCP port (a fresh namespace has every port free) and the socket's name.
    """

    def __init__(self, prefix: list[str] | None = None, port: int = 5432) -> None:
        initdb = initdb_binary()
        if initdb is None:
            raise FileNotFoundError("no PostgreSQL initdb binary (apt-get install -y postgresql)")
        self.bindir = Path(initdb).parent
        self.prefix = list(prefix or [])
        self.port = port
        self.base = Path(tempfile.mkdtemp(prefix="qupdaq-pg-"))
        self.data = self.base / "data"
        self._as_user: list[str] = []
        self._started = False

    @property
    def tcp_dsn(self) -> str:
        """The DSN on the cluster's own host (its loopback)."""
        return f"host=127.0.0.1 port={self.port} user=qupdaq dbname=postgres"

    @property
    def socket_dsn(self) -> str:
        """The DSN through the Unix socket (from any namespace of this machine)."""
        return f"host={self.base} port={self.port} user=qupdaq dbname=postgres"

    def _run(self, *cmd: str, prefix: list[str] | None = None) -> None:
        subprocess.run([*(prefix or []), *self._as_user, *cmd], check=True, cwd=self.base,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> PostgresCluster:
        """initdb, then pg_ctl start (waiting until it accepts connections).

        Raises:
            subprocess.CalledProcessError: initdb or pg_ctl failed (stderr attached).
        """
        if os.geteuid() == 0:
            self._as_user = _cluster_user()
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "qupdaq", "-E", "UTF8", "--no-sync")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.base / "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c full_page_writes=off", "start", prefix=self.prefix)
        self._started = True
        return self

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            return "\n".join((self.base / "log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server at once and remove its directory."""
        if self._started:
            subprocess.run([*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                            "-m", "immediate", "stop"], cwd=self.base, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._started = False
        shutil.rmtree(self.base, ignore_errors=True)


def _cluster_user() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user (created when missing)."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", "postgres", "--"]
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
