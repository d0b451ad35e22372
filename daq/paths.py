"""Where a lab's data live: one data directory per lab, outside the installed package.

Everything a lab writes (the archive, the daemon's restart state and
spool, the alarm service's and runs' state) goes under one directory:

* ``lab.data_dir`` in the config, relative to the config file's directory; or
* ``$QUPDAQ_DATA_DIR/<lab name>`` when that environment variable is set; or
* the user's data directory: ``$XDG_DATA_HOME/qupdaq/<lab name>`` (by default
  ``~/.local/share/qupdaq/<lab name>``).

It is created on first use. Sections that name their own directory
(``logger.directory``, ``daemon.state_dir``) keep it; relative ones are
relative to the config file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ENV = "QUPDAQ_DATA_DIR"


def user_data_dir() -> Path:
    """The user's data directory for qupdaq (``$XDG_DATA_HOME/qupdaq``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "qupdaq"


def slug(name: str) -> str:
    """A lab name as a directory name (letters, digits, ``-``, ``_``, ``.``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "lab"


def data_root(data_dir: str | None, lab_name: str, base_dir: str) -> Path:
    """The lab's data directory (see the module docstring)."""
    if data_dir:
        path = Path(data_dir).expanduser()
        return path if path.is_absolute() or not base_dir else Path(base_dir) / path
    env = os.environ.get(ENV)
    root = Path(env).expanduser() if env else user_data_dir()
    return root / slug(lab_name)


def data_root_of(mapping: Any, base_dir: str) -> Path:
    """The data directory a raw config mapping names (for loaders that read one section)."""
    lab = mapping.get("lab") if isinstance(mapping, dict) else None
    lab = lab if isinstance(lab, dict) else {}
    return data_root(lab.get("data_dir"), str(lab.get("name", "qupdaq-lab")), base_dir)
