"""Creates sent whose reply is not recorded yet, for decisions on calls not known yet.

A webhook can overtake the reply to the create that placed its call: the sandbox (and the
real API) may send ``call.failed`` for a busy line before the create's reply reaches the
dialer. A handler of that webhook asking the dialer to :meth:`~.Dialer.finish` or
:meth:`~.Dialer.redial` the call must not be told "unknown call" for a call the dialer is
about to learn of. So a decision on a call id the dialer does not know waits until every
create sent before it asked has its reply recorded (or the call id is known), and only then
says the call is not the campaign's. That wait is bounded by the creates' own deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

__all__ = ["CreatesInFlight"]


class CreatesInFlight:
    """Numbers each create as it is sent and forgets it once its reply is recorded."""

    __slots__ = ("_changed", "_open", "_sent")

    def __init__(self) -> None:
        self._sent = 0
        self._open: set[int] = set()
        self._changed: anyio.Event | None = None  # made only while someone waits

    def __len__(self) -> int:
        return len(self._open)

    def sent(self) -> int:
        """A create is about to be sent: its ticket, for :meth:`answered`."""
        self._sent += 1
        self._open.add(self._sent)
        return self._sent

    def answered(self, ticket: int) -> None:
        """The create of ``ticket`` has its outcome recorded (or was given up). Idempotent."""
        self._open.discard(ticket)
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def wait_unless(self, known: Callable[[], bool]) -> None:
        """Return once ``known()`` holds or every create sent so far has been answered
        (creates sent later do not prolong the wait)."""
        last = self._sent
        while not known() and self._open and min(self._open) <= last:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
