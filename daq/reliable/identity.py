"""A daemon's persistent instance id: who it is on the reliable path, beyond its name.

A name is configuration and two daemons may share one by mistake; the
instance id is 128 random bits created once and kept in the daemon's state
directory (``instance.id`` beside the spool), so the same daemon restarting
is recognised and anyone else claiming its name is not. Without CURVE the
id is a bearer token: it keeps accidents and casual forgery out, not an
attacker who can read the daemon's traffic or its disk.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_NAME = "instance.id"
_HEX = frozenset("0123456789abcdef")


def new_instance_id() -> str:
    """A fresh random instance id (32 hex digits)."""
    return secrets.token_hex(16)


def load_instance_id(directory: Path) -> str:
    """The instance id kept in ``directory``, created (atomically) on first use.

    Raises:
        OSError: the directory cannot be created or the file cannot be written.
        ValueError: the file exists but does not hold an instance id (never
            silently replaced: a new id would make the logger treat this daemon as
            a stranger to its own name).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(new_instance_id() + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        # link() fails if another process created the file meanwhile: then its id wins.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) != 32 or not set(text) <= _HEX:
        raise ValueError(f"{path} does not hold an instance id (32 hex digits); move it away "
                         "only if this daemon really is a new instance")
    return text
