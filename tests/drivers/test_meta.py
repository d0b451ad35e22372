"""Meta-tests over every driver under drivers/: constructors send nothing, everything is documented.

Drivers are discovered by walking the ``drivers`` package, so a new driver
module is checked without being listed here:

* every PyMeasure ``Instrument`` subclass defined in a driver module is built
  with a recording adapter, which must see no I/O at all (channels included);
* every leaf instrument class offers the daemon's ``Describable`` methods;
* every module, public class, public method and property defined in a
  driver module has a docstring.

"Driver modules" are those in the maker packages (``drivers/<maker>/``) and
``drivers/validators.py``; ``drivers/common.py`` and ``drivers/errors.py``
are the shared infrastructure, covered by their own tests.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any

import pytest
from pymeasure.instruments import Instrument

import drivers
from drivers.bluefors import BlueforsLogReader
from drivers.common import Describable
from tests.drivers.conftest import RecordingAdapter

INFRASTRUCTURE = {"drivers.common", "drivers.errors"}


def _driver_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.walk_packages(drivers.__path__, prefix="drivers."):
        if info.name in INFRASTRUCTURE:
            continue
        modules.append(importlib.import_module(info.name))
    return sorted(modules, key=lambda m: m.__name__)


MODULES = _driver_modules()


def _own_classes(module: ModuleType) -> list[type]:
    return [
        obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
    ]


CLASSES = [cls for module in MODULES for cls in _own_classes(module)]
INSTRUMENTS = [cls for cls in CLASSES if issubclass(cls, Instrument)]


def _leaf(cls: type) -> bool:
    return not any(other is not cls and issubclass(other, cls) for other in INSTRUMENTS)


def _id(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def test_discovery_finds_the_drivers() -> None:
    names = {cls.__name__ for cls in INSTRUMENTS}
    assert {"LakeShore372", "LakeShore336", "TPG366"} <= names
    # every maker package contributes at least one module
    makers = {m.__name__.split(".")[1] for m in MODULES if m.__name__.count(".") >= 1}
    assert {"lakeshore", "pfeiffer", "bluefors"} <= makers


@pytest.mark.parametrize("cls", INSTRUMENTS, ids=_id)
def test_constructor_sends_nothing(cls: type) -> None:
    adapter = RecordingAdapter()
    instrument = cls(adapter)  # builds the channels too
    assert instrument.adapter is adapter
    assert adapter.io == [], f"{cls.__name__}() did I/O: {adapter.io}"


@pytest.mark.parametrize("cls", [c for c in INSTRUMENTS if _leaf(c)], ids=_id)
def test_leaf_instruments_describe_themselves_to_the_daemon(cls: type) -> None:
    instrument = cls(RecordingAdapter())
    assert isinstance(instrument, Describable)


def test_log_reader_constructor_touches_no_file(tmp_path: Any) -> None:
    state = tmp_path / "state" / "cursors.json"
    BlueforsLogReader(tmp_path / "missing", timezone="Europe/Helsinki", state_file=state)
    assert not state.parent.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_modules_have_docstrings(module: ModuleType) -> None:
    assert (module.__doc__ or "").strip(), f"{module.__name__} has no module docstring"


def _undocumented(cls: type) -> list[str]:
    missing = []
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            doc = attr.__doc__ or (attr.fget.__doc__ if attr.fget else None)
        elif isinstance(attr, (staticmethod, classmethod)):
            doc = attr.__func__.__doc__
        elif inspect.isfunction(attr):
            doc = attr.__doc__
        else:
            continue
        if not (doc or "").strip():
            missing.append(name)
    return missing


@pytest.mark.parametrize("cls", CLASSES, ids=_id)
def test_public_classes_methods_and_properties_have_docstrings(cls: type) -> None:
    assert (cls.__doc__ or "").strip(), f"class {cls.__name__} has no docstring"
    assert _undocumented(cls) == [], f"{cls.__name__}: undocumented {_undocumented(cls)}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_public_functions_have_docstrings(module: ModuleType) -> None:
    missing = [
        name
        for name, obj in vars(module).items()
        if inspect.isfunction(obj)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
        and not (obj.__doc__ or "").strip()
    ]
    assert missing == []


def test_the_meta_test_would_notice_a_missing_docstring() -> None:
    class Bare:
        """Documented class."""

        @property
        def value(self) -> int:
            return 1

        def act(self) -> None:
            pass

    assert _undocumented(Bare) == ["value", "act"]


def test_the_meta_test_would_notice_constructor_io() -> None:
    class Chatty(Instrument):
        """Talks in its constructor (what drivers must not do)."""

        def __init__(self, adapter: Any) -> None:
            super().__init__(adapter, "chatty", includeSCPI=False)
            self.write("*RST")

    adapter = RecordingAdapter()
    Chatty(adapter)
    assert adapter.io == [("write", "*RST")]
