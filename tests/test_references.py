"""The repository carries its own documentation: every note a module, a config or the README
points a reader to exists in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["daq", "drivers", "gui", "simulators", "configs", "tests", "docs"]
# A document named like a file: something.md, or a path under docs/.
REFERENCE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def _files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SCANNED:
        base = ROOT / folder
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.suffix in (".py", ".md", ".yaml")
                      and "__pycache__" not in p.parts and p != Path(__file__)]
    return files


def test_every_referenced_document_is_in_the_repository() -> None:
    missing = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for ref in REFERENCE.findall(line):
                candidates = [ROOT / ref, ROOT / "docs" / Path(ref).name, path.parent / ref]
                if not any(c.is_file() for c in candidates):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {ref}")
    assert not missing, "documents referred to but not in the repository:\n" + "\n".join(missing)


def test_the_checker_finds_a_missing_document(tmp_path: Path) -> None:
    assert REFERENCE.findall("see ../shared/DESIGN.md and docs/nowhere.md") == [
        "../shared/DESIGN.md", "docs/nowhere.md"]
