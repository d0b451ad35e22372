"""Who may speak for a publisher name: identities, owners, connections, takeovers.

A daemon's identity is its connection's CURVE public key when the reliable
endpoint runs CURVE (the ZAP ``User-Id`` of its frames), else the instance
id it claims in HELLO and HB (:func:`identity_of`). Each publisher name has
one owner identity at a time, kept in the store (``publishers``), so a
restarted logger still knows it:

* the owner may always speak (a new epoch is the owner restarting);
* another identity is refused while the owner is live: heard from within
  ``takeover_after_s`` (a restarted logger counts every known owner as
  heard at its own start, so nobody can grab a name in the moment the
  logger comes back);
* after that silence another identity takes the name over (a replaced PC);
* an owner whose instance id lives only as long as its process
  (``ephemeral`` in HELLO: a sender without a spool on disk) releases the
  name when it closes its current session (a clean stop), since its next
  run cannot prove to be the same; a daemon with a persistent id never
  releases it (its restart is recognised, a stranger waits out the silence).

A connection (ROUTER routing id) is bound to (pub, identity) by an
accepted HELLO or HB; MSG frames carry no identity and are accepted only
on a bound connection, for its own publisher.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from daq.logger.sink import PublisherRecord

#: Connections remembered (the oldest bound is forgotten first; it binds again with HB).
MAX_PEERS = 10_000
#: Refusals kept for the status.
KEEP_REFUSALS = 50
#: The session a released name is stored with (its ephemeral owner stopped cleanly).
RELEASED = -1


def identity_of(key: str | None, instance: str | None) -> str | None:
    """The identity a frame set proves: its connection's CURVE key if it has one, else the
    instance id it claims (None when it has neither)."""
    if key:
        return f"key:{key}"
    if instance:
        return f"instance:{instance}"
    return None


def short(identity: str) -> str:
    """An identity shortened for logs and status (the kind and 8 characters)."""
    kind, _, value = identity.partition(":")
    return f"{kind}:{value[:8]}" if value else identity


class Verdict(enum.Enum):
    """The answer to a claim on a name."""

    OWNER = "owner"  # the claimant owns the name (or the name is empty)
    NEW = "new"  # nobody owned the name: now the claimant does
    TAKEOVER = "takeover"  # the owner was silent long enough: now the claimant owns it
    RELEASED = "released"  # an ephemeral owner had stopped cleanly: now the claimant owns it
    REFUSED = "refused"  # another live identity owns the name


@dataclass
class Owner:
    """The identity that owns a name, its current session and the ones it resumes."""

    pub: str
    identity: str
    epoch: int
    last_seen: float
    resume: set[int] = field(default_factory=set)
    ephemeral: bool = False  # its id does not outlive its process
    released: bool = False  # ephemeral, and it closed its last session (a clean stop)


@dataclass(frozen=True)
class Refusal:
    """A claim the logger refused (kept, bounded, for the status)."""

    t_ns: int
    pub: str
    claimant: str
    owner: str
    verb: str

    def as_dict(self) -> dict[str, Any]:
        return {"t_ns": self.t_ns, "pub": self.pub, "claimant": self.claimant,
                "owner": self.owner, "verb": self.verb}


class Sessions:
    """Owners of names and bindings of connections (see the module docstring).

    Args:
        records: the owners kept in the store.
        takeover_after_s: an owner's silence after which another identity may take over.
        clock: monotonic clock (tests pass their own).
    """

    def __init__(self, records: Iterable[PublisherRecord], takeover_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.takeover_after_s = takeover_after_s
        self.clock = clock
        now = clock()
        self.owners: dict[str, Owner] = {
            r.pub: Owner(r.pub, r.identity, r.epoch, now, released=r.epoch == RELEASED)
            for r in records}
        self.dirty: set[str] = set()
        self.peers: OrderedDict[bytes, tuple[str, str]] = OrderedDict()
        self.refusals: deque[Refusal] = deque(maxlen=KEEP_REFUSALS)
        self.refused_total = 0

    # ---- claims ---------------------------------------------------------------------------

    def claim(self, pub: str, identity: str, verb: str) -> Verdict:
        """Someone speaking as ``identity`` claims ``pub`` (HELLO, HB, GAP, CLOSE)."""
        if not pub:
            return Verdict.OWNER
        now = self.clock()
        owner = self.owners.get(pub)
        if owner is None:
            self.owners[pub] = Owner(pub, identity, -1, now)
            self.dirty.add(pub)
            return Verdict.NEW
        if owner.identity == identity:
            owner.last_seen = now
            if owner.released:
                owner.released = False
                self.dirty.add(pub)
            return Verdict.OWNER
        if owner.released or now - owner.last_seen >= self.takeover_after_s:
            self.owners[pub] = Owner(pub, identity, -1, now)
            self.dirty.add(pub)
            for peer in [p for p, (name, _) in self.peers.items() if name == pub]:
                del self.peers[peer]  # the old owner's connections speak for nobody now
            return Verdict.RELEASED if owner.released else Verdict.TAKEOVER
        self.refused_total += 1
        self.refusals.append(Refusal(time.time_ns(), pub, short(identity),
                                     short(owner.identity), verb))
        return Verdict.REFUSED

    def begin(self, pub: str, epoch: int, resume: Iterable[int],
              ephemeral: bool = False) -> None:
        """An accepted HELLO: ``epoch`` is the owner's session, ``resume`` its older ones."""
        owner = self.owners.get(pub)
        if owner is None:
            return
        owner.resume = set(resume) - {epoch}
        owner.ephemeral = ephemeral
        if owner.epoch != epoch:
            owner.epoch = epoch
            self.dirty.add(pub)

    def closed(self, pub: str, epoch: int) -> None:
        """A session of ``pub`` was closed (CLOSE): it is no longer held; an ephemeral
        owner's last one closed releases the name."""
        owner = self.owners.get(pub)
        if owner is not None:
            owner.resume.discard(epoch)
            if owner.ephemeral and epoch == owner.epoch and not owner.resume \
                    and not owner.released:
                owner.released = True
                self.dirty.add(pub)

    def held(self, pub: str, epoch: int) -> bool:
        """True when a live owner still holds session ``epoch`` (its current or a resumed one)."""
        owner = self.owners.get(pub)
        if owner is None or owner.released \
                or self.clock() - owner.last_seen >= self.takeover_after_s:
            return False
        return epoch == owner.epoch or epoch in owner.resume

    # ---- connections ----------------------------------------------------------------------

    def bind(self, peer: bytes, pub: str, identity: str) -> None:
        """Remember that connection ``peer`` speaks for ``pub`` as ``identity``."""
        self.peers[peer] = (pub, identity)
        self.peers.move_to_end(peer)
        while len(self.peers) > MAX_PEERS:
            self.peers.popitem(last=False)

    def speaks_for(self, peer: bytes, pub: str) -> bool | None:
        """May ``peer`` send messages of ``pub``? None: it has not said who it is."""
        bound = self.peers.get(peer)
        if bound is None:
            return None
        name, identity = bound
        if name != pub:
            return False
        owner = self.owners.get(pub)
        if owner is not None:
            if owner.identity != identity:
                return False
            owner.last_seen = self.clock()
        return True

    # ---- persistence and status -----------------------------------------------------------

    def changed(self) -> list[PublisherRecord]:
        """Owners changed since :meth:`saved` (to write with the next batch)."""
        return [PublisherRecord(o.pub, o.identity, RELEASED if o.released else o.epoch)
                for pub in sorted(self.dirty) if (o := self.owners.get(pub)) is not None]

    def saved(self, records: Iterable[PublisherRecord]) -> None:
        """These owner rows are committed."""
        for record in records:
            owner = self.owners.get(record.pub)
            epoch = RELEASED if owner is not None and owner.released else \
                (owner.epoch if owner is not None else None)
            if owner is not None and (owner.identity, epoch) == (record.identity, record.epoch):
                self.dirty.discard(record.pub)

    def snapshot(self) -> dict[str, Any]:
        """Owners (with how long ago each was heard) and recent refusals, JSON-able."""
        now = self.clock()
        return {
            "owners": {o.pub: {"identity": short(o.identity), "epoch": o.epoch,
                               "silent_s": round(now - o.last_seen, 1),
                               "resuming": sorted(o.resume), "released": o.released}
                       for o in self.owners.values()},
            "refused_total": self.refused_total,
            "refusals": [r.as_dict() for r in self.refusals],
        }
