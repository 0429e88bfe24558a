"""Flow control for the dialer: live-call slots and a call pacer (anyio)."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Pacer", "Slots"]


class Slots:
    """A counting semaphore whose count may be forced over the limit.

    Calls still live after a restart occupy slots that were never acquired through
    :meth:`acquire`; :meth:`occupy` records them so new calls wait until they end.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._waiters: deque[anyio.Event] = deque()

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        if self.in_use < self.limit and not self._waiters:
            self._take()
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot was handed over while we were cancelled
            else:
                self._waiters.remove(event)
            raise

    def _take(self) -> None:
        self.in_use += 1
        if self.in_use > self.peak:
            self.peak = self.in_use

    def occupy(self) -> None:
        """Take a slot without waiting, even over the limit."""
        self._take()

    def release(self) -> None:
        """Free a slot, handing it to the longest waiter while under the limit."""
        self.in_use -= 1
        while self._waiters and self.in_use < self.limit:
            self._take()
            self._waiters.popleft().set()


class Pacer:
    """Lets callers through at most ``rate`` times per second, evenly spaced.

    A fixed-interval schedule (a token bucket of depth one) holds the long-run pace exactly:
    each pass is booked at ``max(now, previous + 1/rate)``, so sleeping late does not drift.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        now = anyio.current_time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await anyio.sleep(slot - now)
