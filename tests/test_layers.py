"""The layers point down: gui -> daq -> drivers; simulators only from tests and `qupdaq sim`.

Walks every import statement (also those inside functions) of the runtime
packages and fails on an arrow that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("daq", "drivers", "gui", "simulators")

#: For each package, the top-level modules it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "drivers": {"zmq", "PySide6", "pyqtgraph", "daq", "gui", "simulators"},
    "daq": {"PySide6", "pyqtgraph", "gui", "simulators"},
    "gui": {"drivers", "simulators"},
    "simulators": {"PySide6", "pyqtgraph", "gui", "drivers"},
}
#: The sanctioned exceptions: (importing module, imported module).
ALLOWED = {
    ("daq.cli", "simulators.cli"),  # the `qupdaq sim` entry point (docs/architecture.md)
    # The `qupdaq dashboard` and `qupdaq bench gui` entry points, imported inside their
    # commands only: nothing else in daq ever loads Qt.
    ("daq.cli", "gui.app"),
    ("daq.cli", "gui.bench"),
    # The simulators raise the project's own errors; drivers.errors is the hierarchy's root.
    ("simulators.*", "drivers.errors"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # Each name is a submodule or an attribute of the module: judge the full name.
            found.extend((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)
    return found


def _allowed(importer: str, imported: str) -> bool:
    for src, dst in ALLOWED:
        src_ok = importer == src or (src.endswith(".*") and importer.startswith(src[:-1]))
        if src_ok and (imported == dst or imported.startswith(dst + ".")):
            return True
    return False


def _violations() -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = _module_name(path)
            for imported, line in _imports(path):
                top = imported.split(".")[0]
                if top not in FORBIDDEN[package] or _allowed(importer, imported):
                    continue
                problems.append(f"{path.relative_to(ROOT)}:{line}: {package} -> {imported}")
    return problems


def test_no_import_points_the_wrong_way() -> None:
    problems = _violations()
    assert problems == [], "imports that point the wrong way:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("drivers", "import zmq\n", "drivers -> zmq"),
        ("daq", "from PySide6 import QtCore\n", "daq -> PySide6"),
        ("gui", "def f():\n    from drivers.lakeshore import ls372\n", "gui -> drivers"),
        ("daq", "import simulators.lab\n", "daq -> simulators"),
    ],
)
def test_the_checker_catches_a_wrong_arrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, source: str, expected: str
) -> None:
    fake_root = tmp_path
    for name in PACKAGES:
        (fake_root / name).mkdir()
    (fake_root / package / "bad.py").write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    assert any(expected in problem for problem in _violations())


def test_nothing_at_runtime_imports_simulators_except_the_sim_entry_point() -> None:
    users = []
    for package in ("daq", "drivers", "gui"):
        for path in (ROOT / package).rglob("*.py"):
            for imported, _ in _imports(path):
                if imported.split(".")[0] == "simulators":
                    users.append((_module_name(path), imported))
    assert set(users) <= {("daq.cli", "simulators.cli")}
