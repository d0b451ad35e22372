"""``qupdaq init DIR``: a commented starter config for a real lab.

Writes ``DIR/lab.yaml`` from the shipped template (``lab_template.yaml``
beside the other shipped configs): one fridge with the usual instruments, a
TLIMIT backstop, a setpoint limit, and the interlocks written out but left
for the lab to enable, every key explained. The file loads and validates as
written; what remains is the lab's own addresses, limits and interlocks.
"""

from __future__ import annotations

from pathlib import Path

from daq.config import configs_dir
from daq.errors import ConfigError
from daq.paths import slug

TEMPLATE = "lab_template.yaml"


def write_starter(directory: Path, name: str, *, overwrite: bool = False) -> Path:
    """Write ``directory/lab.yaml`` for a lab called ``name``; return its path.

    Raises:
        ConfigError: the file exists and ``overwrite`` is false.
    """
    target = directory / "lab.yaml"
    if target.exists() and not overwrite:
        raise ConfigError("exists already (use --force to overwrite)", file=str(target))
    text = (configs_dir() / TEMPLATE).read_text(encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace("LAB_NAME", slug(name)), encoding="utf-8")
    return target
