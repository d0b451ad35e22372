"""The PFL-102 shadow: what was last sent to each card, kept in a file across restarts.

The PFL-102 cannot be read back, and a digital-control write replaces the
whole word. A driver that forgot, after a restart, that the loop was locked
would send its default word with the next field change and unlock a SQUID
in the middle of a measurement. :class:`ShadowStore` therefore keeps, per
card address, the control word and the five 12-bit DAC codes last sent, and
writes them to a JSON file after every frame (atomically: a temporary file
in the same directory, flushed to disk, then renamed over the old one), so a
restarted driver sends the state the card already has.

Nothing is read or written before the first use: the constructor only
stores the path. Without a state file (or when the file does not exist
yet), every card starts from :data:`~drivers.star.pfl102_frames.SAFE_CONTROL`
and DAC codes 0, the state a controlling program establishes before it
tunes a SQUID. A file that cannot be understood is never silently replaced:
:class:`ShadowStateError` stops every write until someone looks at it.

File format (version 1)::

    {"version": 1, "device": "PFL-102",
     "cards": {"1": {"control_word": 1032,
                     "codes": {"squid_flux": 0, "array_flux": 0, "squid_bias": 51,
                               "array_bias": 0, "output_offset": 2068}}}}

Interface: ``ShadowStore(path, addresses)``, :meth:`ShadowStore.card`
(a :class:`CardShadow`), :meth:`ShadowStore.record` (after a frame was
sent), :meth:`ShadowStore.save`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.errors import InstrumentError
from drivers.star.pfl102_frames import CONTROL_MAX, DAC_MAX, SAFE_CONTROL, Parameter, Register

__all__ = ["STATE_VERSION", "CardShadow", "ShadowStateError", "ShadowStore"]

STATE_VERSION = 1


class ShadowStateError(InstrumentError):
    """The state file exists but cannot be used; nothing is sent until it is fixed or removed."""


def _default_codes() -> dict[Parameter, int]:
    return {select: 0 for select in Parameter}


@dataclass
class CardShadow:
    """What one card was last sent.

    Attributes:
        control_word: the digital control word.
        codes: the 12-bit DAC code of each parameter.
    """

    control_word: int = SAFE_CONTROL
    codes: dict[Parameter, int] = field(default_factory=_default_codes)

    def as_json(self) -> dict[str, Any]:
        """The card as stored in the file."""
        return {
            "control_word": self.control_word,
            "codes": {select.name.lower(): code for select, code in self.codes.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> CardShadow:
        """Parse one card's entry; ``ValueError`` / ``KeyError`` / ``TypeError`` if malformed."""
        word = data["control_word"]
        if not isinstance(word, int) or not 0 <= word <= CONTROL_MAX:
            raise ValueError(f"control word {word!r} is not 0 to {CONTROL_MAX:#06x}")
        codes = _default_codes()
        for name, code in data["codes"].items():
            if not isinstance(code, int) or not 0 <= code <= DAC_MAX:
                raise ValueError(f"DAC code {name} = {code!r} is not 0 to {DAC_MAX}")
            codes[Parameter[name.upper()]] = code
        return cls(word, codes)


class ShadowStore:
    """The shadow of every card behind one PCI-100, optionally persisted.

    Args:
        path: JSON state file, or None to keep the shadow in memory only.
        addresses: the configured card addresses.
    """

    def __init__(self, path: str | os.PathLike[str] | None, addresses: Iterable[int]) -> None:
        self.path = Path(path) if path is not None else None
        self.addresses = tuple(addresses)
        self._cards: dict[int, CardShadow] = {}
        # Cards in the file that this configuration does not use are written back untouched.
        self._others: dict[str, Any] = {}
        self._loaded = False

    def card(self, address: int) -> CardShadow:
        """The shadow of the card at ``address`` (the file is read on first use).

        Raises:
            ShadowStateError: the state file is unreadable or malformed.
        """
        self._load()
        return self._cards.setdefault(address, CardShadow())

    def record(self, address: int, register: Register, data: int) -> None:
        """Take a frame that was just sent into the shadow and persist it.

        Args:
            address: the card the frame went to.
            register: digital control or parameter.
            data: the 16-bit data word of the frame.
        """
        card = self.card(address)
        if register is Register.DIGITAL_CONTROL:
            card.control_word = data
        else:
            card.codes[Parameter(data & 0xF)] = data >> 4
        self.save()

    def save(self) -> None:
        """Write the shadow to the state file atomically (nothing without a path)."""
        if self.path is None:
            return
        self._load()
        cards = dict(self._others)
        cards.update({str(a): c.as_json() for a, c in sorted(self._cards.items())})
        document = {"version": STATE_VERSION, "device": "PFL-102", "cards": cards}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        # The rename is atomic: a crash leaves either the old or the new state, never half.
        os.replace(tmp, self.path)

    def _load(self) -> None:
        if self._loaded:
            return
        cards: dict[int, CardShadow] = {}
        others: dict[str, Any] = {}
        if self.path is not None and self.path.exists():
            try:
                document = json.loads(self.path.read_text(encoding="utf-8"))
                if document.get("version") != STATE_VERSION:
                    raise ValueError(f"version {document.get('version')!r}, "
                                     f"expected {STATE_VERSION}")
                for key, entry in document["cards"].items():
                    address = int(key)
                    if address in self.addresses:
                        cards[address] = CardShadow.from_json(entry)
                    else:
                        others[key] = entry
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                # Guessing would risk unlocking a locked SQUID: refuse until a person decides.
                raise ShadowStateError(
                    f"state file {self.path} cannot be used ({type(exc).__name__}: {exc}); "
                    "repair it, or delete it to start from the safe tune state",
                    instrument="PFL-102", command="load shadow",
                ) from None
        self._cards, self._others, self._loaded = cards, others, True
