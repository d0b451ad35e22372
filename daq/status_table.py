"""Plain-text table of the latest value of every stream (``qupdaq status``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from daq.messages import Kind, Message, Quality


def _age(t_ns: int, now_ns: int) -> str:
    seconds = max(0.0, (now_ns - t_ns) / 1e9)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _value_text(msg: Message) -> str:
    if msg.kind is Kind.DATA and msg.data is not None and len(msg.data):
        return f"{msg.value:.6g} {msg.units}".strip()
    if msg.kind is Kind.STATUS:
        state = str(msg.meta.get("state", "?"))
        text = str(msg.meta.get("message", ""))
        return f"{state}: {text}" if text else state
    fields = ", ".join(f"{k}={v}" for k, v in list(msg.meta.items())[:3])
    return fields or "-"


def _quality_text(quality: int) -> str:
    if not quality:
        return "ok"
    return "|".join(flag.name or "?" for flag in Quality(quality) if flag)


def format_status_table(
    latest: Sequence[Message], publishers: Mapping[str, Any] | None = None,
    now_ns: int | None = None,
) -> str:
    """One row per stream: stream, value with unit, quality, age, publisher, seq."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    rows = [("STREAM", "VALUE", "QUALITY", "AGE", "PUBLISHER", "SEQ")]
    for msg in sorted(latest, key=lambda m: m.stream):
        rows.append((msg.stream, _value_text(msg), _quality_text(msg.quality),
                     _age(msg.sample_time, now_ns), msg.pub, str(msg.seq)))
    if len(rows) == 1:
        return "no streams yet (is anything publishing to the broker?)"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    if publishers:
        lines.append("")
        lines.append("publishers: " + ", ".join(sorted(publishers)))
    return "\n".join(lines)
