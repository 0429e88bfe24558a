"""Batched writes of changed items to a :class:`~audian_async.dialer.CampaignStore`.

Items are marked as they change and saved together ``interval`` seconds after the first
change of a batch (group commit): a thousand transitions a second cost a few store writes,
not a thousand, and an idle campaign costs no wake-ups at all. A caller
that must know its change is stored before it acts (an attempt before its create) waits for
the next batch with :meth:`BatchedWriter.durable`, which costs latency, not writes.
"""

from __future__ import annotations

import logging

import anyio

from ._machine import DialMachine, Item
from ._store import CampaignStore

__all__ = ["BatchedWriter"]

logger = logging.getLogger("audian_async.dialer")


class BatchedWriter:
    """Saves the items of ``machine`` marked changed, one batch at a time."""

    def __init__(self, store: CampaignStore, machine: DialMachine, interval: float) -> None:
        self.store = store
        self.machine = machine
        self.interval = interval
        self._dirty: dict[int, Item] = {}
        # Set by the first mark into an empty dirty set: the writer sleeps on it while there
        # is nothing to write, instead of waking every interval to find nothing.
        self._marked = anyio.Event()
        # Snapshots of the dirty set taken so far, the latest one saved, and the event set
        # (then replaced) each time a snapshot is saved. One flush at a time.
        self._taken = 0
        self._saved = 0
        self._saved_event = anyio.Event()
        self._lock = anyio.Lock()

    def mark(self, item: Item) -> None:
        """Save ``item`` with the next batch."""
        dirty = self._dirty
        if not dirty:
            self._marked.set()
        dirty[item.index] = item

    def unmark(self, item: Item) -> None:
        """Forget a change never saved (an item discarded before it was stored)."""
        if self._dirty.get(item.index) is item:
            del self._dirty[item.index]

    async def run(self) -> None:
        """Flush ``interval`` seconds after each first change (until cancelled); a failed
        write is logged and its items written again with the next batch."""
        failures = 0
        while True:
            if not self._dirty:
                self._marked = anyio.Event()
                await self._marked.wait()
            await anyio.sleep(self.interval)
            try:
                await self.flush()
            except Exception as exc:  # kept dirty: the next flush writes it again
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning(
                        "campaign %s: store write failed %d time(s) in a row (%s); retrying",
                        self.machine.name,
                        failures,
                        exc,
                    )
            else:
                failures = 0

    async def flush(self) -> None:
        """Write every marked item now."""
        async with self._lock:
            if not self._dirty:
                return
            items = list(self._dirty.values())
            self._dirty.clear()
            self._taken += 1
            taken = self._taken
            records = [self.machine.record(item) for item in items]
            stored = [item.stored for item in items]
            for item in items:
                item.stored = True
            try:
                with anyio.CancelScope(shield=True):
                    await self.store.save(self.machine.name, records)
            except BaseException:
                # Nothing of this batch is known to be saved: write it again next time, with
                # the requests the store may still lack.
                for item, was_stored in zip(items, stored, strict=True):
                    item.stored = was_stored
                    self._dirty.setdefault(item.index, item)
                raise
            # Flushes run one at a time, so every snapshot up to ``taken`` is now saved.
            self._saved = taken
            saved, self._saved_event = self._saved_event, anyio.Event()
            saved.set()

    async def durable(self) -> None:
        """Wait until every item marked so far is in the store."""
        # Items marked now go into the next snapshot; a failed one puts them back in the
        # dirty set, so the snapshot after it carries them.
        needed = self._taken + 1
        while self._saved < needed:
            await self._saved_event.wait()
