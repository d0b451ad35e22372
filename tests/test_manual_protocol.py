"""The manual-transcription files load, and their harness refuses inconsistent entries."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.manual_protocol as mp


def test_every_manual_file_loads_and_its_examples_match_their_patterns() -> None:
    files = sorted(mp.MANUAL_DIR.glob("*.yaml"))
    for path in files:
        manual = mp.load_manual(path.stem)
        assert manual.exchanges, path


def test_a_reply_that_contradicts_its_pattern_is_refused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.yaml").write_text(
        "instrument: X\nexchanges:\n  - {name: q, send: 'A?', reply: '12', pattern: '\\d'}\n")
    monkeypatch.setattr(mp, "MANUAL_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not match"):
        mp.load_manual("bad")
