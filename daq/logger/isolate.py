"""When the store fails on a batch: is it the store, or something in the batch?

A store that cannot write (disk full, read-only, server gone) fails every
batch alike: nothing is refused, everything stays spooled at the senders.
Anything else (a value the database cannot take, a record the HDF5 layer
chokes on, a bug reached by one odd message) is specific to some items,
and one sender's bad message must not stop every other sender's archive.
The writer then writes the batch again in parts (:func:`split`): per
connection, then per stream session, then halves, until the failing items
stand alone; everything else is stored. Items that fail alone while
others are stored are poisoned: refused, so their sender parks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from daq.messages import Message

#: Write attempts one isolation may make (each commits: bounded time per batch).
MAX_ATTEMPTS = 64
_STORE_ERROR_NAMES = frozenset({"OperationalError", "InterfaceError", "InternalError"})

T = TypeVar("T")


def is_store_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot write at all (never the data's fault).

    OSError covers files (HDF5, SQLite I/O: full, read-only, too large);
    ``OperationalError``/``InterfaceError``/``InternalError`` are the DB-API
    classes of a database or server in trouble (sqlite3 and psycopg alike).
    """
    if isinstance(exc, OSError):
        return True
    return any(cls.__name__ in _STORE_ERROR_NAMES for cls in type(exc).__mro__)


def split(unit: Sequence[tuple[bytes, T]]) -> list[list[tuple[bytes, T]]]:
    """The parts to write separately: per connection, else per stream session (controls
    first, in their order), else two halves; a single item is not split."""
    peers: dict[bytes, list[tuple[bytes, T]]] = {}
    for peer_item in unit:
        peers.setdefault(peer_item[0], []).append(peer_item)
    if len(peers) > 1:
        return list(peers.values())
    controls: list[tuple[bytes, T]] = []
    streams: dict[tuple[str, int], list[tuple[bytes, T]]] = {}
    for peer_item in unit:
        item = peer_item[1]
        if isinstance(item, Message):
            streams.setdefault((item.stream, item.epoch), []).append(peer_item)
        else:
            controls.append(peer_item)
    parts = ([controls] if controls else []) + list(streams.values())
    if len(parts) > 1:
        return parts
    if len(unit) > 1:
        mid = len(unit) // 2
        return [list(unit[:mid]), list(unit[mid:])]
    return [list(unit)]
