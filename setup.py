"""Build hook: the shipped configs travel inside the ``daq`` package of the wheel.

``configs/`` stays a top-level folder of YAML in the source tree; building
copies its files to ``daq/configs/`` in the wheel, so a plain (non-editable)
``pip install`` has the embedded default (``daq.config.DEFAULT_CONFIG``)
and ``qupdaq init`` has its starter. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    """``build_py`` that also copies ``configs/**/*.yaml`` into ``daq/configs``."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "configs"
        target = Path(self.build_lib) / "daq" / "configs"
        for path in source.rglob("*.yaml"):
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


setup(cmdclass={"build_py": BuildWithConfigs})
