"""One heap of timers, pure and clock-free: the dialer's and the sandbox's schedulers share it.

A timer is ``(due, value)``: the caller decides what ``value`` is (a callback for the
sandbox, a small record for the dialer) and what "now" is. Timers due at the same instant
come out in the order they were pushed, so a run is reproducible whatever the values are.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["TimerHeap"]

T = TypeVar("T")


class TimerHeap(Generic[T]):
    """Timers ordered by due time, then by the order they were pushed."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()

    def push(self, due: float, value: T) -> bool:
        """Add a timer; return True when it is now the earliest one (wake the runner)."""
        earliest = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._seq), value))
        return earliest

    def pop_due(self, now: float) -> Iterator[tuple[float, T]]:
        """Take out every timer due at or before ``now``, earliest first.

        Lazy: a timer pushed while iterating is taken too when it is already due.
        """
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, value = heapq.heappop(heap)
            yield due, value

    @property
    def next_due(self) -> float | None:
        """When the earliest timer is due, or None when there is none."""
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
