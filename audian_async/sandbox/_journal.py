"""What the dashboard shows of the sandbox's recent past: bounded, and cheap to record.

The API's hot path only appends to ring buffers (``collections.deque`` with a ``maxlen``) and
bumps a counter; everything the dashboard needs beyond that (JSON, filtering, fan-out to
live streams) is computed when the dashboard asks, off the hot path. Readers follow each
ring with a cursor, the ring's running total: the entries after cursor ``n`` are the last
``total - n`` of the ring (fewer when the ring overflowed meanwhile).
"""

from __future__ import annotations

import time
from collections import deque

import anyio

__all__ = ["MAX_CALL_CHANGES", "MAX_REQUESTS", "Journal", "RequestRecord"]

MAX_REQUESTS = 2_000
"""API requests kept in the request journal (oldest forgotten first)."""
MAX_CALL_CHANGES = 10_000
"""Call changes kept for live streams; a stream further behind gets a fresh snapshot."""


class RequestRecord:
    """One API request as the journal keeps it (filled in while it is handled)."""

    __slots__ = (
        "at",
        "error",
        "fault",
        "idempotency_key",
        "latency",
        "method",
        "path",
        "replay",
        "status",
    )

    def __init__(self, method: str, path: str) -> None:
        self.at = time.time()
        self.method = method
        self.path = path
        self.status: int | None = None  # None: the client left before any reply
        self.latency = 0.0  # seconds from arrival to the reply (or to the client leaving)
        self.idempotency_key: str | None = None
        self.replay = False  # answered from the idempotency store without acting
        self.error: str | None = None  # the error code of an error reply
        self.fault: str | None = None  # "error" or "no_reply" when a fault knob hit it


class Journal:
    """The request ring, the call-change ring and a wake-up for live streams.

    Streams wait with :meth:`wait_change`; every record calls :meth:`poke`, which costs an
    increment and a test while no stream listens.
    """

    def __init__(
        self, *, max_requests: int = MAX_REQUESTS, max_call_changes: int = MAX_CALL_CHANGES
    ) -> None:
        self.requests: deque[RequestRecord] = deque(maxlen=max_requests)
        self.requests_total = 0
        self.call_changes: deque[str] = deque(maxlen=max_call_changes)
        self.call_changes_total = 0
        self.version = 0
        """Bumped by every change: a stream that saw this version has seen everything."""
        self.closed = False
        """Set when the sandbox stops: live streams end so the server can drain."""
        self._wake: anyio.Event | None = None

    def add_request(self, record: RequestRecord) -> None:
        """Keep ``record`` (the oldest goes once the ring is full)."""
        self.requests.append(record)
        self.requests_total += 1
        self.poke()

    def call_changed(self, call_id: str) -> None:
        """Note that ``call_id`` was created or changed status."""
        self.call_changes.append(call_id)
        self.call_changes_total += 1
        self.poke()

    def poke(self) -> None:
        """Wake the live streams (something they show changed)."""
        self.version += 1
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def close(self) -> None:
        """End every live stream (and refuse new ones)."""
        self.closed = True
        self.poke()

    async def wait_change(self, seen: int) -> int:
        """Wait until the version differs from ``seen``; return the new one."""
        while self.version == seen:
            wake = self._wake
            if wake is None:
                wake = self._wake = anyio.Event()
            await wake.wait()
        return self.version
