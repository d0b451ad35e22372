"""What one write cycle answers: ACKs of what is durable, ERRORs of what is not.

The writer notes, per sender connection, which stream sessions it touched,
which sessions a HELLO or CLOSE asked about, and what it refused and why;
:meth:`Replies.build` turns that into frames once the cycle has committed
(an ACK before the commit would be a lie).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from daq import reliable
from daq.logger.ledger import Ledger
from daq.reliable import ErrorCode, Refused

Reply = tuple[bytes, list[bytes]]


@dataclass
class Replies:
    """Replies of one cycle, collected while it runs."""

    touched: dict[bytes, set[tuple[int, str]]] = field(default_factory=lambda: defaultdict(set))
    sessions: list[tuple[bytes, int]] = field(default_factory=list)
    closed: list[tuple[bytes, int, list[str]]] = field(default_factory=list)
    acks: dict[bytes, dict[int, dict[str, int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict)))
    errors: dict[tuple[bytes, ErrorCode], list[str]] = field(
        default_factory=lambda: defaultdict(list))
    refused: dict[bytes, list[Refused]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[bytes, list[str]] = field(default_factory=lambda: defaultdict(list))

    def touch(self, peer: bytes, epoch: int, stream: str) -> None:
        """Acknowledge this stream session to ``peer`` after the commit."""
        self.touched[peer].add((epoch, stream))

    def session(self, peer: bytes, epoch: int) -> None:
        """Answer ``peer`` with everything held of session ``epoch`` (HELLO)."""
        self.sessions.append((peer, epoch))

    def close(self, peer: bytes, epoch: int, streams: list[str]) -> None:
        """Answer a CLOSE: the session's acks, marked closed."""
        self.closed.append((peer, epoch, streams))

    def ack(self, peer: bytes, epoch: int, stream: str, seq: int) -> None:
        """Acknowledge ``seq`` as given, whatever the ledger holds (a closed session)."""
        self.acks[peer][epoch][stream] = seq

    def error(self, peer: bytes, code: ErrorCode, why: str) -> None:
        """An ERROR for ``peer`` (one per code; the first reason is told, the rest counted)."""
        self.errors[(peer, code)].append(why)

    def refuse(self, peer: bytes, stream: str, epoch: int, seq: int, why: str) -> None:
        """A message that can never be stored: the sender parks it (seq < 0: nothing to park)."""
        self.refusals[peer].append(f"refused: {stream} epoch {epoch} seq {seq}: {why}")
        if seq < 0:
            return
        items = self.refused[peer]
        last = items[-1] if items else None
        if last is not None and (last.stream, last.epoch, last.last + 1, last.why) == (
                stream, epoch, seq, why):
            items[-1] = Refused(stream, epoch, last.first, seq, why)
        else:
            items.append(Refused(stream, epoch, seq, seq, why))

    def build(self, ledger: Ledger) -> list[Reply]:
        """The frames to send (call after the cycle committed and was applied)."""
        out: list[Reply] = []
        for peer, keys in self.touched.items():
            by_epoch: dict[int, list[str]] = defaultdict(list)
            for epoch, stream in keys:
                by_epoch[epoch].append(stream)
            for epoch, streams in by_epoch.items():
                acked = ledger.acked(epoch, streams)
                acked.update(self.acks.get(peer, {}).pop(epoch, {}))
                if acked:  # data acks say that this logger takes MSGS batches
                    out.append((peer, reliable.ack_frames(epoch, acked, batch=True)))
        for peer, per_epoch in self.acks.items():
            for epoch, acked in per_epoch.items():
                if acked:
                    out.append((peer, reliable.ack_frames(epoch, acked, batch=True)))
        for peer, epoch in self.sessions:
            out.append((peer, reliable.ack_frames(epoch, ledger.acked(epoch))))
        for peer, epoch, streams in self.closed:
            out.append((peer, reliable.ack_frames(epoch, ledger.acked(epoch, streams),
                                                  closed=True)))
        for (peer, code), problems in self.errors.items():
            out.append((peer, reliable.error_frames(_summary(problems), code)))
        for peer, texts in self.refusals.items():
            out.append((peer, reliable.error_frames(_summary(texts), ErrorCode.REFUSED,
                                                    self.refused.get(peer, []))))
        return out


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
