"""The handler deadline of :class:`~audian_async.webhooks.WebhookApp`, at almost no cost.

A cancel scope with a deadline per delivery (``anyio.move_on_after``) costs about 10 us on
asyncio, more than verifying and parsing the delivery together: a scope object, the task's
scope bookkeeping and a timer handle, every time. But every delivery of one app gets the same
timeout, so their deadlines fall in the order they start. On asyncio one timer per app and
loop therefore watches only the oldest delivery in flight, and cancels, natively, each one
past its deadline; a delivery itself only notes its task and deadline in an ordered dict.
A native cancellation would go through anyio's shielded scopes (a handler's cleanup, a sync
handler's worker thread), so a task inside one is cancelled only once it has left it, as
anyio's own cancellation does; that reads anyio's per-task scope state, and where an anyio
release no longer has it, every delivery gets ``anyio.move_on_after`` again. On trio (anyio's
other backend) trio's own cancel scope is the cheapest way, so it is used directly.

This module and the transports are the only places that know which event loop they run on.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

__all__ = ["Deadline", "DeadlineExceeded"]

A = TypeVar("A")
T = TypeVar("T")

# How soon a task found in a shielded scope at its deadline is looked at again.
_SHIELD_RECHECK = 0.01


def _anyio_task_states() -> Mapping[Any, Any] | None:
    try:
        from anyio._backends._asyncio import CancelScope, _task_states
    except ImportError:
        return None
    slots = getattr(CancelScope, "__slots__", ())
    if "_shield" not in slots or "_parent_scope" not in slots:
        return None
    return _task_states


_TASK_STATES = _anyio_task_states()


def _shielded(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is inside a shielded anyio cancel scope right now."""
    assert _TASK_STATES is not None
    state = _TASK_STATES.get(task)
    scope = None if state is None else state.cancel_scope
    while scope is not None:
        if scope._shield:
            return True
        scope = scope._parent_scope
    return False


class DeadlineExceeded(Exception):
    """The work did not finish within the deadline and was cancelled."""


class _LoopWatch:
    """The deliveries in flight on one asyncio loop, oldest first, and the one timer."""

    __slots__ = ("expired", "loop", "overdue", "running", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.running: dict[object, tuple[asyncio.Task[Any], float]] = {}
        self.overdue: dict[object, asyncio.Task[Any]] = {}  # past the deadline, but shielded
        self.expired: set[object] = set()  # cancelled by us
        self.timer: asyncio.TimerHandle | None = None

    def arm(self, when: float) -> None:
        if self.timer is None:
            self.timer = self.loop.call_at(when, self.expire)

    def expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        running, overdue = self.running, self.overdue
        # Oldest first: the first one still within its deadline has the earliest deadline
        # left, and the timer waits for that one.
        while running:
            token, (task, deadline) = next(iter(running.items()))
            if deadline > now:
                break
            del running[token]
            overdue[token] = task
        for token, task in list(overdue.items()):
            if not _shielded(task):
                del overdue[token]
                self.expired.add(token)
                task.cancel()
        if overdue:
            self.arm(now + _SHIELD_RECHECK)
        elif running:
            self.arm(next(iter(running.values()))[1])


class Deadline:
    """Runs work with ``timeout`` seconds each; past it the work is cancelled and
    :class:`DeadlineExceeded` is raised in its place."""

    __slots__ = ("_watch", "_watches", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # The loop of the last delivery (nearly always the only one), then any others an
        # app was used on (tests run one app on several loops, one after the other).
        self._watch: _LoopWatch | None = None
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatch] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, work: Callable[[A], Awaitable[T]], arg: A) -> T:
        """Await ``work(arg)`` within the deadline."""
        loop = asyncio._get_running_loop()
        if loop is None:  # trio
            return await self._run_on_trio(work, arg)
        if _TASK_STATES is None:  # an anyio release whose scope state we cannot read
            with anyio.move_on_after(self.timeout) as scope:
                result = await work(arg)
                if not scope.cancel_called:  # else it swallowed the cancellation
                    return result
            raise DeadlineExceeded
        task = asyncio.current_task(loop)  # given the loop: no second lookup of it
        assert task is not None
        watch = self._watch
        if watch is None or watch.loop is not loop:
            watch = self._watch = self._watches.setdefault(loop, _LoopWatch(loop))
        deadline = loop.time() + self.timeout
        token = object()
        watch.running[token] = (task, deadline)
        if watch.timer is None:
            watch.arm(deadline)
        try:
            result = await work(arg)
        except asyncio.CancelledError:
            if token in watch.expired:
                watch.expired.discard(token)
                # Ours alone: a cancellation of the whole request (server shutdown) that
                # came at the same time still ends it.
                if task.uncancel() == 0:
                    raise DeadlineExceeded from None
            raise
        finally:
            watch.running.pop(token, None)
            if watch.overdue:
                watch.overdue.pop(token, None)
        # The work swallowed our cancellation, then returned.
        if watch.expired and token in watch.expired:
            watch.expired.discard(token)
            task.uncancel()
            raise DeadlineExceeded
        return result

    async def _run_on_trio(self, work: Callable[[A], Awaitable[T]], arg: A) -> T:
        import trio  # only ever reached when running on trio

        with trio.move_on_after(self.timeout) as scope:
            result = await work(arg)
            if not scope.cancel_called:  # else it swallowed the cancellation
                return result
        raise DeadlineExceeded
