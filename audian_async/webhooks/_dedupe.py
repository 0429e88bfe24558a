"""Remember deliveries already handled, so a redelivery does not run handlers twice."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["DedupeStore", "InMemoryDedupeStore"]


@runtime_checkable
class DedupeStore(Protocol):
    """Where :class:`~audian_async.webhooks.WebhookApp` remembers handled delivery ids.

    Plug a shared store (Redis, a database table) in to dedupe across several processes;
    both methods are awaited on the request's event loop. ``remember`` is called only once
    every handler of a delivery succeeded, so a failed delivery is retried in full.
    """

    async def seen(self, key: str) -> bool:
        """True when ``key`` was remembered (and has not expired)."""
        ...

    async def remember(self, key: str) -> None:
        """Record that the delivery ``key`` was handled."""
        ...


class InMemoryDedupeStore:
    """A bounded, in-process :class:`DedupeStore`: least recently remembered keys go first.

    Keeps at most ``max_entries`` ids, each for ``ttl`` seconds (a day by default, longer
    than typical redelivery schedules run). Memory stays bounded whatever senders do; a
    redelivery older than both bounds runs its handlers again, so handlers should still be
    idempotent where it matters.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl: float = 86_400.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._oldest = math.inf  # when the first entry expires (a lower bound)

    def __repr__(self) -> str:
        return (
            f"InMemoryDedupeStore(max_entries={self.max_entries}, ttl={self.ttl}, "
            f"size={len(self._expiry)})"
        )

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        # Every key gets the same ttl and moves to the end when remembered, so the oldest
        # expiry is always first.
        expiry = self._expiry
        while expiry:
            first = next(iter(expiry.values()))
            if first > now:
                self._oldest = first
                return
            expiry.popitem(last=False)
        self._oldest = math.inf

    async def seen(self, key: str) -> bool:
        """True when ``key`` was remembered less than ``ttl`` seconds ago."""
        return self.seen_now(key)

    async def remember(self, key: str) -> None:
        """Remember ``key`` for ``ttl`` seconds, evicting the oldest beyond ``max_entries``."""
        self.remember_now(key)

    # Synchronous twins: WebhookApp calls these directly on the default store (no
    # coroutine to create and await per delivery).
    def seen_now(self, key: str) -> bool:
        """:meth:`seen`, without awaiting."""
        expires = self._expiry.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._expiry[key]
            return False
        return True

    def remember_now(self, key: str) -> None:
        """:meth:`remember`, without awaiting."""
        now = self._clock()
        expiry = self._expiry
        if not expiry:
            self._oldest = now + self.ttl
        expiry.pop(key, None)  # to the end, with the latest expiry
        expiry[key] = now + self.ttl
        # Only once the oldest entry may have expired is there anything to purge. (Left
        # early by an eviction or a removal, the mark only costs one pass that finds none.)
        if now >= self._oldest:
            self._purge(now)
        while len(expiry) > self.max_entries:
            expiry.popitem(last=False)
