"""One way to name a channel everywhere: ``fridge1/t4k``, the ``data/`` kind optional.

Topics on the wire are ``kind/source/channel`` (:mod:`daq.messages`); people
and configs mostly say ``source/channel`` and mean the scalar stream. Every
command and client that takes a stream or a topic prefix (``qupdaq
export``, ``qupdaq status --prefix``, :class:`daq.logger.HistoryClient`,
:meth:`daq.client.Lab.subscribe`) accepts both spellings through these
functions, so ``fridge1/t4k`` and ``data/fridge1/t4k`` name the same stream.
"""

from __future__ import annotations

from daq.messages import Kind

_KINDS = frozenset(k.value for k in Kind)


def stream_name(name: str) -> str:
    """The full stream name: ``fridge1/t4k`` -> ``data/fridge1/t4k``; a full name is kept.

    Raises:
        ValueError: neither ``source/channel`` nor ``kind/source/channel``.
    """
    parts = name.strip().strip("/").split("/")
    if len(parts) == 3 and parts[0] in _KINDS and all(parts):
        return "/".join(parts)
    if len(parts) == 2 and all(parts) and parts[0] not in _KINDS:
        return f"{Kind.DATA.value}/{parts[0]}/{parts[1]}"
    raise ValueError(f"{name!r} is not a stream: write source/channel (fridge1/t4k) or "
                     f"kind/source/channel (data/fridge1/t4k)")


def topic_prefix(prefix: str) -> str:
    """A subscription prefix: one that starts with a kind is kept, any other is under
    ``data/`` (``fridge1/`` -> ``data/fridge1/``); ``""`` stays everything."""
    if not prefix:
        return prefix
    first = prefix.split("/", 1)[0]
    if first in _KINDS or any(kind.startswith(prefix) for kind in _KINDS):
        return prefix
    return f"{Kind.DATA.value}/{prefix}"


def join_relative_times(argv: list[str], options: tuple[str, ...] = ("--from", "--to")
                        ) -> list[str]:
    """``--from -2h`` -> ``--from=-2h``: a relative time is a value, not an option."""
    out: list[str] = []
    it = iter(range(len(argv)))
    for i in it:
        token = argv[i]
        if token in options and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{token}={argv[i + 1]}")
            next(it, None)
        else:
            out.append(token)
    return out
