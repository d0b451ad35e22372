"""Exclusive control: a measurement run holds a lease on the targets it drives.

While a run sweeps the TES bias, a second client setting the same bias would
ruin the measurement without anyone noticing. A run therefore asks the
daemon for a :class:`Lease` on its targets; until the lease is released or
expires, ``set`` and ``call`` on those targets by anyone else are refused
with the holder's name (reads still work). A run renews its lease while it
runs; a run that crashed stops renewing, and its lease expires after
``ttl_s``. The daemon's own safety actions (interlocks) ignore leases.

Plain logic, no I/O: :class:`LeaseTable` is used by the control server.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from daq.errors import NotPermitted

MIN_TTL_S = 1.0
MAX_TTL_S = 3600.0


@dataclass(frozen=True)
class Lease:
    """Who holds which targets until when.

    Attributes:
        token: the secret the holder presents with its requests.
        holder: who holds it, shown to everyone refused (``run 'iv-tes1-0042'``).
        targets: the targets held.
        ttl_s: lifetime after each renewal.
        expires: monotonic time at which it lapses unless renewed.
    """

    token: str
    holder: str
    targets: frozenset[str]
    ttl_s: float
    expires: float

    def describe(self, now: float) -> dict[str, object]:
        """The lease as JSON-able data (without its token)."""
        return {"holder": self.holder, "targets": sorted(self.targets), "ttl_s": self.ttl_s,
                "expires_in_s": round(max(0.0, self.expires - now), 3)}


class LeaseTable:
    """The daemon's leases (thread-safe).

    Args:
        clock: monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for token in [t for t, lease in self._leases.items() if lease.expires <= now]:
            del self._leases[token]

    def grant(self, holder: str, targets: Iterable[str], ttl_s: float) -> Lease:
        """A new lease on ``targets`` for ``holder``.

        Raises:
            NotPermitted: a target is already held by someone else, or the
                request is malformed (no targets, a ttl outside 1 s to 1 h).
        """
        wanted = frozenset(targets)
        if not wanted:
            raise NotPermitted("a lease needs at least one target")
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise NotPermitted(f"lease ttl_s {ttl_s!r} is outside {MIN_TTL_S:g} to "
                               f"{MAX_TTL_S:g} s")
        if not holder.strip():
            raise NotPermitted("a lease needs a holder name (who is running what)")
        with self._lock:
            now = self.clock()
            self._expire(now)
            for lease in self._leases.values():
                taken = wanted & lease.targets
                if taken:
                    raise NotPermitted(f"{', '.join(sorted(taken))} already held by "
                                       f"{lease.holder} (for another "
                                       f"{lease.expires - now:.0f} s unless renewed)")
            lease = Lease(secrets.token_hex(16), holder.strip()[:200], wanted, float(ttl_s),
                          now + ttl_s)
            self._leases[lease.token] = lease
            return lease

    def renew(self, token: str) -> Lease:
        """Extend a lease by its ttl.

        Raises:
            NotPermitted: no such lease (expired, released, or never granted).
        """
        with self._lock:
            now = self.clock()
            self._expire(now)
            lease = self._leases.get(token)
            if lease is None:
                raise NotPermitted("no such lease: it expired or was released")
            lease = replace(lease, expires=now + lease.ttl_s)
            self._leases[token] = lease
            return lease

    def release(self, token: str) -> Lease | None:
        """End a lease; returns it (None when it had already lapsed)."""
        with self._lock:
            return self._leases.pop(token, None)

    def check(self, target: str, token: str | None) -> None:
        """Raise :class:`NotPermitted` when ``target`` is held by a lease ``token`` is not."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            for lease in self._leases.values():
                if target in lease.targets and lease.token != token:
                    raise NotPermitted(f"{target} is held by {lease.holder}; reads work, "
                                       f"changes wait until it ends (lease expires in "
                                       f"{lease.expires - now:.0f} s unless renewed)")

    def active(self) -> list[dict[str, object]]:
        """Every live lease, without tokens (for ``list`` and status)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            return [lease.describe(now) for lease in self._leases.values()]
