"""The dialer's clock: redials and polls that fall due, on the shared timer heap.

An alarm holds an item's index or a call's id, never the item, so an alarm due in an hour
does not keep a finished (forgotten) item in memory; the session looks the item up when the
alarm rings.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable

import anyio

from .._timers import TimerHeap

__all__ = ["Alarm", "Alarms"]


class Alarm(enum.Enum):
    """What is due."""

    REDIAL = "redial"
    """An item's redial (``key`` is its index)."""
    POLL = "poll"
    """A poll of a live call whose terminal webhook is late (``key`` is the call id)."""
    WINDOW = "window"
    """An item's calling window opens (``key`` is its index)."""
    DUE = "due"
    """An item's scheduled call starts (``key`` is its index)."""


Ring = Callable[[Alarm, int | str], Awaitable[None]]


class Alarms:
    """Rings ``ring(kind, key)`` at each alarm's due time (anyio's clock)."""

    def __init__(self, ring: Ring) -> None:
        self._ring = ring
        self._heap: TimerHeap[tuple[Alarm, int | str]] = TimerHeap()
        self._wake = anyio.Event()

    def set(self, at: float, kind: Alarm, key: int | str) -> None:
        """Ring at ``at`` (``anyio.current_time()`` seconds)."""
        if self._heap.push(at, (kind, key)):
            self._wake.set()

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        """Ring alarms as they fall due (until cancelled)."""
        heap = self._heap
        while True:
            now = anyio.current_time()
            for _, (kind, key) in heap.pop_due(now):
                await self._ring(kind, key)
            self._wake = anyio.Event()
            due = heap.next_due
            with anyio.move_on_after(math.inf if due is None else due - now):
                await self._wake.wait()
