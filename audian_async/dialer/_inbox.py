"""Terminal events handed to the dialer's event loop from whichever thread received them.

A webhook receiver served on the dialer's own loop delivers directly. One on another thread
(uvicorn under a trio program, say) appends to a bounded queue and wakes the loop with one
byte on a socket pair, so the receiver's thread never waits for the dialer's loop; only a
queue that is full (the loop lags far behind) makes it wait.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from .._models import CallStatus, FailureReason

__all__ = ["MAX_INBOX", "EventInbox"]

MAX_INBOX = 65_536
"""Events queued by other threads; over this the sender waits for the loop instead."""

T = TypeVar("T")
Deliver = Callable[[str, CallStatus, FailureReason | str | None], Coroutine[Any, Any, None]]


class EventInbox:
    """Passes ``(call_id, status, reason)`` from other threads to ``deliver``, awaited on
    the loop that made the inbox.

    Make it inside that loop; run :meth:`run` in a task of it; :meth:`close` when done. On
    the loop itself (:meth:`on_loop`), await ``deliver`` directly instead.
    """

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()
        self._queue: deque[tuple[str, CallStatus, FailureReason | str | None]] = deque()
        self._signalled = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def on_loop(self) -> bool:
        """Whether the caller runs on the inbox's own loop thread."""
        return threading.get_ident() == self._thread

    async def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Await ``fn(*args)`` on the inbox's loop, from it or from any other thread's loop
        (whose own loop is not blocked meanwhile: the hop waits in a worker thread)."""
        if self.on_loop():
            return await fn(*args)
        token = self._token

        def hop() -> T:
            return anyio.from_thread.run(fn, *args, token=token)

        return await anyio.to_thread.run_sync(hop)

    def call_sync(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the inbox's loop (waiting for it from another thread)."""
        if self.on_loop():
            fn()
        else:
            anyio.from_thread.run_sync(fn, token=self._token)

    def put(self, call_id: str, status: CallStatus, reason: FailureReason | str | None) -> None:
        """Hand one event in from another thread (never blocks, unless the queue is full)."""
        if len(self._queue) >= MAX_INBOX:
            # If the dialer stopped meanwhile the store still says "live", so it is polled.
            with contextlib.suppress(RuntimeError, anyio.RunFinishedError):
                anyio.from_thread.run(self._deliver, call_id, status, reason, token=self._token)
            return
        self._queue.append((call_id, status, reason))
        if not self._signalled:
            self._signalled = True
            # A full buffer means a wake-up is pending anyway; a closed one, a stopped dialer.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    async def run(self) -> None:
        """Deliver queued events as they come (until cancelled)."""
        while True:
            await anyio.wait_readable(self._wake_r)
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(512)
            # Reset before draining: an event queued from now on sends a new wake-up.
            self._signalled = False
            await self.drain()

    async def drain(self) -> None:
        """Deliver every event queued so far."""
        queue = self._queue
        while queue:
            await self._deliver(*queue.popleft())

    def close(self) -> None:
        """Close the wake-up sockets (events put afterwards on other threads are dropped,
        and recovered by polling)."""
        self._wake_w.close()
        self._wake_r.close()
