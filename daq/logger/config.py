"""The ``logger:`` section of the lab config (loaded with :func:`daq.config_schema.from_mapping`).

::

    logger:
      name: ""                          # this logger's name in the file index (default: host name)
      endpoint: tcp://127.0.0.1:7120    # reliable path (ROUTER); port 0 picks a free port
      history_endpoint: tcp://127.0.0.1:7121   # history queries (ROUTER, JSON requests)
      directory: data                   # storage directory, relative to the config file;
                                        # default: the lab's data directory (daq.paths)
      sinks: [sqlite, hdf5]             # exactly one of sqlite/postgresql, plus hdf5 for records
      postgresql_dsn: ""                # libpq DSN, required with the postgresql sink
      sqlite_synchronous: FULL          # FULL: an acknowledged batch survives a power cut
      batch_size: 5000                  # messages per write batch at most
      batch_bytes: 67108864             # payload bytes per write batch at most
      max_batch_delay_s: 0.05           # the oldest unwritten message waits at most this long
      max_message_bytes: 67108864       # larger frames are refused by ZeroMQ (hostile peers)
      gap_grace_s: 60.0                 # a hole unfilled for this long is recorded as a gap
                                        # (only in sessions no live daemon holds)
      takeover_after_s: 120.0           # another instance may take a daemon's name over only
                                        # after the owner was silent this long (a replaced PC)
      status_period_s: 5.0              # status/<name>/logger on the live bus (the lab
                                        # config's bus section); 0: never
      hdf5_rotate: hour                 # hour: a new file every UTC hour; size: only by size
      hdf5_max_mb: 1024.0               # a new file once the current one is this big
      retention:                        # optional downsampling of old housekeeping data
        - {match: "data/fridge1/*", older_than_s: 2592000, bucket_s: 60}
      retention_interval_s: 3600.0      # how often the retention rules run
      curve: {...}                      # CURVE keys of both endpoints (daq.security); the
                                        # allow-list maps each daemon key to the daemon name
                                        # it archives as, or "reader" (history only);
                                        # required unless both endpoints are loopback

Every other section of the file (lab, bus, simulation, daemon, ...) is
ignored by the logger.
"""

from __future__ import annotations

import fnmatch
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from daq.config_schema import anchor, from_mapping, read_yaml
from daq.paths import data_root_of
from daq.security import CurveServerConfig, require_curve_off_loopback

SinkName = Literal["sqlite", "postgresql", "hdf5"]


@dataclass(frozen=True)
class RetentionRule:
    """Downsample the scalar samples of matching streams once they are old.

    Samples older than ``older_than_s`` are replaced by one row per
    ``bucket_s`` bucket holding the count, minimum, mean and maximum.

    Attributes:
        match: shell-style pattern on the stream name (``data/fridge1/*``).
        older_than_s: age (s) after which samples are downsampled.
        bucket_s: width (s) of one downsampled bucket.
    """

    match: str
    older_than_s: float
    bucket_s: float

    def __post_init__(self) -> None:
        if self.older_than_s <= 0:
            raise ValueError(f"older_than_s must be > 0 s, got {self.older_than_s}")
        if self.bucket_s <= 0:
            raise ValueError(f"bucket_s must be > 0 s, got {self.bucket_s}")

    def matches(self, stream: str) -> bool:
        """True when ``stream`` falls under this rule."""
        return fnmatch.fnmatchcase(stream, self.match)


@dataclass(frozen=True)
class LoggerConfig:
    """Where the logger listens, where and how it stores. See the module docstring."""

    name: str = ""
    endpoint: str = "tcp://127.0.0.1:7120"
    history_endpoint: str = "tcp://127.0.0.1:7121"
    directory: str | None = None
    sinks: tuple[SinkName, ...] = ("sqlite", "hdf5")
    postgresql_dsn: str = ""
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    batch_size: int = 5000
    batch_bytes: int = 64 * 1024 * 1024
    max_batch_delay_s: float = 0.05
    max_message_bytes: int = 64 * 1024 * 1024
    gap_grace_s: float = 60.0
    takeover_after_s: float = 120.0
    status_period_s: float = 5.0
    hdf5_rotate: Literal["hour", "size"] = "hour"
    hdf5_max_mb: float = 1024.0
    retention: tuple[RetentionRule, ...] = ()
    retention_interval_s: float = 3600.0
    curve: CurveServerConfig | None = None
    # The config file's directory (relative ``directory`` is taken from it); not a YAML key.
    base_dir: str = field(default="", init=False, compare=False)
    # The lab's data directory (daq.paths): the storage directory when none is named.
    data_root: str = field(default="", init=False, compare=False)

    def __post_init__(self) -> None:
        stores = [s for s in self.sinks if s in ("sqlite", "postgresql")]
        if len(stores) != 1:
            raise ValueError("sinks must name exactly one of 'sqlite' and 'postgresql' "
                             f"(the index of everything), got {list(self.sinks)}")
        if len(set(self.sinks)) != len(self.sinks):
            raise ValueError(f"sinks lists a sink twice: {list(self.sinks)}")
        if "postgresql" in self.sinks and not self.postgresql_dsn:
            raise ValueError("the postgresql sink needs postgresql_dsn "
                             "(e.g. 'host=db.lab port=5432 dbname=qupdaq user=logger')")
        for key in ("endpoint", "history_endpoint"):
            url = getattr(self, key)
            if not url.startswith(("tcp://", "ipc://", "inproc://")):
                raise ValueError(f"{key} {url!r} must be a ZeroMQ endpoint like "
                                 "tcp://127.0.0.1:7120")
            require_curve_off_loopback(url, self.curve, key)
        for key in ("batch_size", "batch_bytes", "max_message_bytes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("max_batch_delay_s", "gap_grace_s", "hdf5_max_mb", "retention_interval_s",
                    "takeover_after_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.status_period_s < 0:
            raise ValueError(f"status_period_s must be >= 0, got {self.status_period_s}")

    @property
    def store(self) -> Literal["sqlite", "postgresql"]:
        """The SQL store in use."""
        return "postgresql" if "postgresql" in self.sinks else "sqlite"

    @property
    def hdf5(self) -> bool:
        """Whether waveform records are stored (in HDF5)."""
        return "hdf5" in self.sinks

    @property
    def logger_name(self) -> str:
        """This logger's name in the file index."""
        return self.name or socket.gethostname().split(".")[0]

    @property
    def storage_dir(self) -> Path:
        """The storage directory: ``directory`` (relative to the config file) or the lab's
        data directory."""
        if self.directory is None:
            return Path(self.data_root) if self.data_root else Path("data").resolve()
        path = Path(self.directory).expanduser()
        if not path.is_absolute() and self.base_dir:
            path = Path(self.base_dir) / path
        return path


def logger_config_from_mapping(section: Any, *, file: str = "", base_dir: str = "",
                               data_root: str = "") -> LoggerConfig:
    """Build a :class:`LoggerConfig` from the ``logger:`` mapping (None means all defaults)."""
    config = from_mapping(LoggerConfig, section or {}, file=file, path="logger")
    anchor(config, base_dir, data_root)  # relative paths (storage, key files) are the file's
    return config


def load_logger_config(path: str | Path) -> LoggerConfig:
    """Read the ``logger:`` section of a lab config file; other sections are ignored."""
    path = Path(path)
    data = read_yaml(path)
    base_dir = str(path.resolve().parent)
    return logger_config_from_mapping(data.get("logger"), file=str(path), base_dir=base_dir,
                                      data_root=str(data_root_of(data, base_dir)))
