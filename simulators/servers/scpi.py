"""SCPI command parsing shared by the simulated SCPI instruments (scope, Keithley 2400).

What a real SCPI parser accepts, a simulator must accept too:

* program messages with several commands separated by ``;`` (outside quotes);
  a command without a leading ``:`` continues in the subsystem of the one
  before (``:SENS:FUNC 'CURR';CURR:NPLC 1`` -> ``:SENS:CURR:NPLC``), common
  commands (``*IDN?``) do not change the subsystem;
* each header node in its short or long form, case-insensitive
  (``:WAV:SOUR``, ``:waveform:source``), optional nodes (``[:LEVel]``) and
  numeric suffixes (``CHANnel<n>``, default 1).

Interface: :class:`ScpiCommand` (one pattern with its set and query
handlers), :class:`ScpiParser` (dispatches a program message and returns the
replies), :class:`ScpiError` (raised by handlers for an illegal parameter),
:func:`parse_bool` and :func:`parse_choice` for parameters. Unknown headers
and bad parameters go onto an error queue (``-113,"Undefined header"``,
``-224,"Illegal parameter value"``) and produce no reply, as on real units.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Reply = str | bytes


class ScpiError(ValueError):
    """A parameter a handler refuses; becomes an entry on the error queue.

    Args:
        code: SCPI error number (negative for standard errors).
        message: the error text.
    """

    def __init__(self, code: int = -224, message: str = "Illegal parameter value") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool


def _compile(pattern: str) -> tuple[_Node, ...]:
    nodes: list[_Node] = []
    for raw in re.findall(r"\[:?[^\]]+\]|:?[^:\[]+", pattern):
        optional = raw.startswith("[")
        text = raw.strip("[]").lstrip(":")
        suffix = text.endswith("<n>")
        text = text.removesuffix("<n>")
        short = "".join(ch for ch in text if ch.isupper() or ch.isdigit() or ch == "*")
        nodes.append(_Node(short.upper(), text.upper(), optional, suffix))
    return tuple(nodes)


def _match(nodes: Sequence[_Node], tokens: Sequence[str], suffixes: list[int]) -> bool:
    if not nodes:
        return not tokens
    node = nodes[0]
    if node.optional and _match(nodes[1:], tokens, suffixes):
        return True
    if not tokens:
        return False
    token = tokens[0].upper()
    number = 1
    if node.suffix:
        m = re.fullmatch(r"([A-Z*]+)(\d*)", token)
        if not m:
            return False
        token, digits = m.groups()
        number = int(digits) if digits else 1
    elif not re.fullmatch(r"[A-Z*]+\d*", token):
        return False
    if token not in (node.short, node.long):
        return False
    if node.suffix:
        suffixes.append(number)
    if _match(nodes[1:], tokens[1:], suffixes):
        return True
    if node.suffix:
        suffixes.pop()
    return False


@dataclass
class ScpiCommand:
    """One command pattern with its handlers.

    Attributes:
        pattern: e.g. ``":WAVeform:SOURce"``, ``":CHANnel<n>:SCALe"``,
            ``":SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]"``, ``"*IDN"``.
        set: called with (suffixes, argument text) for the command form.
        query: called with (suffixes, argument text) for the ``?`` form; returns the reply.
    """

    pattern: str
    set: Callable[[list[int], str], None] | None = None
    query: Callable[[list[int], str], Reply] | None = None
    nodes: tuple[_Node, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = _compile(self.pattern)


def split_message(message: str) -> list[str]:
    """Split a program message at ``;`` outside single or double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for ch in message:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


class ScpiParser:
    """Dispatches SCPI program messages to a table of :class:`ScpiCommand`.

    Args:
        commands: the instrument's command table.
        error_format: how ``:SYSTem:ERRor?`` renders (code, message).
    """

    def __init__(
        self,
        commands: Sequence[ScpiCommand],
        *,
        error_format: str = '{code:+d},"{message}"',
    ) -> None:
        self.commands = list(commands)
        self.errors: list[tuple[int, str]] = []
        self.error_format = error_format
        self.commands.append(ScpiCommand(":SYSTem:ERRor[:NEXT]", query=self._next_error))

    def push_error(self, code: int, message: str) -> None:
        """Queue an error for ``:SYSTem:ERRor?``."""
        if len(self.errors) < 30:
            self.errors.append((code, message))

    def _next_error(self, _s: list[int], _a: str) -> str:
        code, message = self.errors.pop(0) if self.errors else (0, "No error")
        return self.error_format.format(code=code, message=message)

    def execute(self, message: str) -> Reply | None:
        """Run every command of a program message; the joined query replies, or None."""
        replies: list[Reply] = []
        path: list[str] = []
        for unit in split_message(message):
            header, _, argument = unit.partition(" ")
            header = header.strip()
            argument = argument.strip()
            is_query = header.endswith("?")
            header = header.rstrip("?")
            if header.startswith("*"):
                tokens = [header]
            else:
                rooted = header.startswith(":")
                tokens = [t for t in header.split(":") if t]
                if not rooted:
                    tokens = path + tokens
                path = tokens[:-1]
            reply = self._dispatch(tokens, argument, is_query, unit)
            if reply is not None:
                replies.append(reply)
        if not replies:
            return None
        if len(replies) == 1:
            return replies[0]
        if any(isinstance(r, bytes) for r in replies):
            return b";".join(r if isinstance(r, bytes) else r.encode("ascii") for r in replies)
        return ";".join(str(r) for r in replies)

    def _dispatch(
        self, tokens: list[str], argument: str, is_query: bool, unit: str
    ) -> Reply | None:
        for command in self.commands:
            suffixes: list[int] = []
            if not _match(command.nodes, tokens, suffixes):
                continue
            handler = command.query if is_query else command.set
            if handler is None:
                continue
            try:
                return handler(suffixes, argument)
            except (ScpiError, ValueError) as exc:
                code = exc.code if isinstance(exc, ScpiError) else -224
                text = exc.message if isinstance(exc, ScpiError) else "Illegal parameter value"
                self.push_error(code, text)
                return None
        self.push_error(-113, "Undefined header")
        return None


def parse_bool(text: str) -> bool:
    """SCPI boolean: ``ON``/``OFF``/``1``/``0``."""
    t = text.strip().upper()
    if t in ("1", "ON"):
        return True
    if t in ("0", "OFF"):
        return False
    raise ScpiError()


def parse_choice(text: str, choices: Sequence[str]) -> str:
    """Match a character parameter against long forms like ``LSBFirst``; return the long form.

    Accepts the short form (the upper-case letters) or the long form, any case;
    quotes are removed.
    """
    t = text.strip().strip("'\"").upper()
    for choice in choices:
        short = "".join(ch for ch in choice if ch.isupper() or ch.isdigit())
        if t in (short, choice.upper()):
            return choice
    raise ScpiError()
