"""The sandbox's clock: callbacks on one heap of timers, run by one task.

Time moves through this heap, not one task per call, so thousands of live calls cost a heap
entry each.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from .._timers import TimerHeap

__all__ = ["Scheduler"]

logger = logging.getLogger("audian_async.sandbox")


class Scheduler:
    """Callbacks on the shared :class:`~audian_async._timers.TimerHeap`, run by one task
    (see ``run_due``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._timers: TimerHeap[Callable[[], None]] = TimerHeap()
        self._current: float | None = None
        self.on_earlier: Callable[[], None] = lambda: None
        """Called when a new timer is due before every other one (wakes the runner)."""

    def call_at(self, due: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at monotonic time ``due``."""
        if self._timers.push(due, callback):
            self.on_earlier()

    def now(self) -> float:
        """Inside a timer callback, the time it was due; else the clock.

        Timers late by a few milliseconds (a busy loop) then shift nothing: a call's
        timestamps follow its planned timeline exactly, whatever the load.
        """
        return self._current if self._current is not None else self.clock()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[float]:
        """Make :meth:`now` one instant for the duration of a step (e.g. creating a call)."""
        outer = self._current
        if outer is None:
            self._current = self.clock()
        try:
            yield self.now()
        finally:
            self._current = outer

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` ``delay`` real seconds after :meth:`now`."""
        self.call_at(self.now() + delay, callback)

    def run_due(self) -> float | None:
        """Run every timer that is due; return when the next one is, or None."""
        try:
            for due, callback in self._timers.pop_due(self.clock()):
                self._current = due
                try:
                    callback()
                except Exception:
                    # One call's bug must not stop the clock of every other call.
                    logger.exception("sandbox timer %r failed", callback)
        finally:
            self._current = None
        return self._timers.next_due

    def __len__(self) -> int:
        return len(self._timers)
