"""Exchanges transcribed from instrument manuals, run against both a driver and its simulator.

A driver and a simulator written by the same hands can share a mistake and
still agree with each other. Each ``tests/manual/<instrument>.yaml`` holds
the manual's own examples, so both sides are checked against the vendor's
text instead:

.. code-block:: yaml

    instrument: Lake Shore 372
    manual: "Model 372 user's manual, section 6.12 (command descriptions)"
    terminator: "\\r\\n"          # what ends a command on the wire
    exchanges:
      - name: reading_status     # the test id; the driver test maps it to a driver call
        send: "RDGST? 6"         # the command exactly as the manual writes it
        reply: "000"             # the manual's example reply (the driver must parse it)
        pattern: "\\\\d{3}"       # what any valid reply looks like (the simulator must match)
        page: "6-24"             # where in the manual
      - name: heater_setup
        send: "HTRSET 0,120,0,0,2"   # a command without reply: no reply / pattern

A driver test replays ``(send, reply)`` through PyMeasure's
``expected_protocol`` with the driver call named by ``name``; a simulator
test sends ``send`` over a raw socket and checks the answer against
``pattern`` (values differ, the format may not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANUAL_DIR = Path(__file__).parent / "manual"


@dataclass(frozen=True)
class ManualExchange:
    """One command (and its reply, for queries) as the manual gives it."""

    name: str
    send: str
    reply: str | None = None
    pattern: str | None = None
    page: str = ""

    @property
    def is_query(self) -> bool:
        return self.reply is not None

    def matches(self, answer: str) -> bool:
        """Whether a simulator's ``answer`` (without terminator) has the manual's format."""
        if self.pattern is None:
            raise ValueError(f"{self.name}: a query needs a pattern")
        return re.fullmatch(self.pattern, answer) is not None


@dataclass(frozen=True)
class Manual:
    """The transcribed exchanges of one instrument."""

    instrument: str
    manual: str
    terminator: str
    exchanges: tuple[ManualExchange, ...]

    def __getitem__(self, name: str) -> ManualExchange:
        for exchange in self.exchanges:
            if exchange.name == name:
                return exchange
        raise KeyError(f"{self.instrument}: no exchange named {name!r}")

    def names(self) -> list[str]:
        return [e.name for e in self.exchanges]


def load_manual(name: str) -> Manual:
    """Load ``tests/manual/<name>.yaml`` (validated: every query has a reply and a pattern)."""
    path = MANUAL_DIR / f"{name}.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    exchanges = []
    seen: set[str] = set()
    for item in data["exchanges"]:
        exchange = ManualExchange(
            name=item["name"], send=item["send"], reply=item.get("reply"),
            pattern=item.get("pattern"), page=str(item.get("page", "")),
        )
        if exchange.name in seen:
            raise ValueError(f"{path}: exchange {exchange.name!r} appears twice")
        if exchange.is_query and exchange.pattern is None:
            raise ValueError(f"{path}: query {exchange.name!r} needs a pattern")
        if exchange.is_query and not exchange.matches(exchange.reply or ""):
            raise ValueError(f"{path}: {exchange.name!r}: the manual's own reply "
                             f"{exchange.reply!r} does not match its pattern")
        seen.add(exchange.name)
        exchanges.append(exchange)
    return Manual(data["instrument"], data.get("manual", ""), data.get("terminator", "\r\n"),
                  tuple(exchanges))
