"""The state a dialer session coordinates on, behind one protocol of atomic steps.

Claiming an item, taking and freeing a live-call slot, pacing, recording a placement,
applying a terminal event, scheduling a redial: each is one step of :class:`Coordinator`,
atomic on its own, never a load-modify-save of the whole campaign. The session (I/O: the
API, the router, the clock) only ever changes state through these steps, so a second
implementation over shared storage lets several processes serve one campaign.

:class:`LocalCoordinator` is the reference implementation: the pure
:class:`~._machine.DialMachine` in this process, live-call :class:`~._flow.Slots`, a
:class:`~._flow.Pacer`, and a :class:`~._writer.BatchedWriter` into the campaign's store.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import anyio

from .._convert import parse_call_request
from .._errors import AudianError, ValidationError
from .._json import loads
from .._models import CallRequest, CallStatus, FailureReason
from .._validation import CheckedCallRequest, validate_call_request
from ._caller_ids import CallerIdPool
from ._flow import Pacer, Slots
from ._machine import CallOutcome, DialMachine, Item, ItemState, Transition
from ._policy import RetryPolicy
from ._store import CampaignStore, SuppressionStore
from ._writer import BatchedWriter

__all__ = ["Coordinator", "LocalCoordinator", "restored_request"]


def restored_request(
    wire: str, region: str | None, *, pooled: bool
) -> CallRequest | CheckedCallRequest:
    """A stored request (wire JSON), checked again; one that no longer passes validation is
    returned unchecked: its create is refused by the client as before, and the item fails
    as ``invalid_request``."""
    request = parse_call_request(loads(wire), require_from=False)
    try:
        return validate_call_request(request, region, pooled_caller_id=pooled)
    except ValidationError:
        return request


class Coordinator(Protocol):
    """Atomic steps on a campaign's shared state (see the module docstring).

    A step that ends an item's call (:meth:`placed` with an early terminal event,
    :meth:`ended`, :meth:`refused`, :meth:`lost`) frees its live-call slot in the same
    step, and returns the :class:`~._machine.Transition` the session acts on; ``None`` means
    nothing changed (a duplicate, stale or foreign event).
    """

    name: str
    """The campaign's name."""

    async def open(
        self, region: str | None, requests: Sequence[CheckedCallRequest] | None = None
    ) -> list[Item]:
        """Load the campaign (restored requests checked against ``region``); return the
        items this process is to resume, live and placing ones holding their slots.

        With ``requests`` (a run), the campaign holds exactly those items: new ones are
        added ``pending``, and a campaign stored with other requests is an
        :class:`~audian_async.AudianError` raised before anything is dialed.
        """

    def bind(self, changed: Callable[[], None], taken: Callable[[list[Item]], None]) -> None:
        """Let the coordinator tell the session that counts changed elsewhere (``changed``)
        and hand it items taken over from a process that died (``taken``)."""

    async def holds(self, item: Item) -> bool:
        """Whether this process still holds ``item`` (may send its create)."""

    def fresh(self, item: Item) -> bool:
        """Whether the claimed ``item`` is to start a new attempt (no create of it sent
        yet), rather than a create to repeat (restored, or taken over, ``placing``)."""

    async def give_back(self, item: Item) -> None:
        """A claimed item not placed (the campaign paused): ready again, its slot freed."""

    async def close(self) -> None:
        """Save every change, then release the store."""

    async def run(self) -> None:
        """The implementation's background work (e.g. batched writes), run in a task for as
        long as the coordinator is open; :meth:`durable` relies on it."""

    async def flush(self) -> None:
        """Write every change now."""

    # --- items ---------------------------------------------------------------------------

    async def add(self, request: CheckedCallRequest) -> Item:
        """A new item at the campaign's next free index, ``pending`` (not ready until
        :meth:`make_ready`). Processes sharing the campaign never get the same index."""

    async def discard(self, item: Item) -> None:
        """Drop an item added but never stored nor placed."""

    def make_ready(self, item: Item) -> None:
        """Offer ``item`` (pending, or waiting with its redial due) to :meth:`claim`."""

    async def wait_ready(self) -> None:
        """Wait until an item may be ready to claim."""

    async def claim(self) -> Item | None:
        """The next ready item, or None when there is none."""

    def forget(self, item: Item) -> None:
        """Drop a finished item from this process's memory (the store keeps it)."""

    # --- slots and pace ------------------------------------------------------------------

    async def take_slot(self) -> None:
        """Wait for a live-call slot and take it."""

    async def free_slot(self) -> None:
        """Give back a slot taken for nothing (no create was sent)."""

    async def pace(self, item: Item) -> None:
        """Wait for the turn of ``item``'s create under ``calls_per_second``."""

    async def assign_caller_id(self, item: Item) -> None:
        """Give a new attempt of an item without its own ``from_`` a caller ID from the
        pool (waiting while each is at its cap); the live call holds it until it ends."""

    # --- attempts ------------------------------------------------------------------------

    async def begin(self, item: Item) -> tuple[CallRequest | CheckedCallRequest, str]:
        """Start (or repeat) the item's attempt: ``placing``; return its request and key."""

    async def durable(self) -> None:
        """Wait until every step so far is stored."""

    async def placed(self, item: Item, call_id: str, now: float) -> Transition | None:
        """The API accepted the attempt as ``call_id``: ``live``."""

    async def ended(
        self,
        call_id: str,
        status: CallStatus | str | None,
        reason: FailureReason | str | None,
        now: float,
    ) -> Transition | None:
        """A terminal status of ``call_id`` arrived (webhook or poll)."""

    async def scheduled(self, item: Item) -> None:
        """The live ``item``'s call waits for its ``scheduled_for``: the API counts it as no
        live call, so its slot is freed until :meth:`due`. Idempotent."""

    async def due(self, item: Item) -> None:
        """The scheduled call of the live ``item`` starts: it takes a slot again, at once
        (even over the limit: the API starts it whatever this dialer holds). Idempotent; a
        no-op for an item not waiting for its time."""

    async def refused(self, item: Item, reason: str) -> Transition | None:
        """The create was refused for good (or its fate stayed unknown): ``failed``."""

    async def lost(self, item: Item, call_id: str) -> Transition | None:
        """The API does not know the live call: ``failed``, reason ``lost``."""

    async def unplaced(self, item: Item) -> bool:
        """The create was refused for a reason not the item's: back to waiting for a later
        run, its slot freed. Returns whether the item moved."""

    # --- the application's decisions ------------------------------------------------------

    async def plan_redial(
        self, call_id: str, after: float | None, now: float
    ) -> tuple[bool, Transition | None]:
        """One more attempt after ``call_id`` (see :meth:`DialMachine.plan_redial`)."""

    async def finish(self, call_id: str) -> tuple[bool, Transition | None]:
        """End the item of ``call_id`` now, or when its call ends: whether it was (or
        will be) ended by this, and the transition when it ended now."""

    async def suppress(self, item: Item) -> Transition | None:
        """Fail a pending or waiting item whose number is suppressed."""

    async def hold(self, item: Item, until: float) -> None:
        """Keep a pending or waiting item, without a slot, until wall time ``until``."""

    async def suppressed(self) -> Iterable[str]:
        """The numbers the store keeps suppressed, for every campaign."""

    async def add_suppressed(self, number: str) -> None:
        """Keep ``number`` suppressed in the store, for every campaign and later runs."""

    def items_to(self, number: str) -> list[Item]:
        """Unfinished items held in memory that call ``number``."""

    # --- what is known -------------------------------------------------------------------

    def item(self, index: int) -> Item | None:
        """Item ``index`` if held in memory."""

    def item_for(self, call_id: str) -> Item | None:
        """The item that placed ``call_id``, if held in memory."""

    async def locate(self, call_id: str) -> Item | None:
        """The item of this campaign that placed ``call_id``: held in memory, else read
        from shared state (another process placed it); None when the call is unknown."""

    @property
    def unfinished(self) -> int:
        """Items without an outcome."""

    def counts(self) -> dict[ItemState, int]:
        """Items per state, over the whole campaign."""

    @property
    def total(self) -> int:
        """Items in the campaign."""

    @property
    def attempts(self) -> int:
        """Calls the API accepted, over the whole campaign."""

    @property
    def held(self) -> int:
        """Items held in this process's memory."""

    @property
    def scheduled_calls(self) -> int:
        """Live items whose call waits for its scheduled time (holding no slot)."""

    @property
    def peak_live(self) -> int:
        """The most live-call slots taken at once."""

    async def outcomes(self, indices: Iterable[int]) -> list[CallOutcome]:
        """Outcomes of the items ``indices``, in that order."""


class LocalCoordinator:
    """:class:`Coordinator` for one process: state in memory, written behind to a store."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        store: CampaignStore,
        *,
        max_active_calls: int,
        calls_per_second: float | None,
        flush_interval: float,
        caller_ids: CallerIdPool | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.store = store
        self.machine = DialMachine(name, policy)
        self.slots = Slots(max_active_calls)
        self.pacer = Pacer(calls_per_second) if calls_per_second else None
        self.flush_interval = flush_interval
        self.writer = BatchedWriter(store, self.machine, flush_interval)
        self.caller_ids = caller_ids
        self._ready: deque[Item] = deque()
        self._ready_event = anyio.Event()
        # Live items whose call waits for its scheduled time: they hold no slot.
        self._not_due: set[int] = set()
        self._next_index = 0

    async def open(
        self, region: str | None, requests: Sequence[CheckedCallRequest] | None = None
    ) -> list[Item]:
        """Open the store, load the campaign and take the slots of its live calls; with
        ``requests``, check the stored items against them and add the new ones."""
        await self.store.open()
        try:
            nonce = await self.store.nonce(self.name, secrets.token_hex(6))
            self.machine = DialMachine(self.name, self.policy, nonce)
            self.writer = BatchedWriter(self.store, self.machine, self.flush_interval)
            top = -1
            for record in await self.store.load(self.name):
                top = max(top, record.index)
                if record.request is None:
                    continue
                pooled = self.caller_ids is not None
                request = restored_request(record.request, region, pooled=pooled)
                item = self.machine.restore(record, request)
                if item.state in (ItemState.LIVE, ItemState.PLACING):
                    self.slots.occupy()
                    if self.caller_ids is not None and self._pooled(item):
                        assert item.caller_id is not None
                        self.caller_ids.occupy(item.caller_id)
            for index, checked in enumerate(requests or ()):
                self._attach(index, checked)
            self._next_index = max(top + 1, len(requests or ()))
        except BaseException:
            await self.store.aclose()
            raise
        return list(self.machine.items.values())

    def _attach(self, index: int, checked: CheckedCallRequest) -> None:
        existing = self.machine.items.get(index)
        if existing is None:
            self.writer.mark(self.machine.add(index, checked))
            return
        given = checked.request
        if existing.request.to != given.to or existing.request.from_ != given.from_:
            raise AudianError(
                f"campaign {self.name!r} item {index} was {existing.request.to}, not "
                f"{given.to}: resume a campaign with the same requests, or use a new name"
            )

    def bind(self, changed: Callable[[], None], taken: Callable[[list[Item]], None]) -> None:
        """Nothing changes behind this process's back."""

    async def holds(self, item: Item) -> bool:
        """One process: it holds every item."""
        return True

    def fresh(self, item: Item) -> bool:
        """A claimed item starts its attempt at :meth:`begin`: it is not placing yet."""
        return item.state is not ItemState.PLACING

    async def give_back(self, item: Item) -> None:
        """Free the slot and queue the item again."""
        self.slots.release()
        self.make_ready(item)

    async def close(self) -> None:
        """Flush what changed, then close the store (even when cancelled)."""
        with anyio.CancelScope(shield=True):
            try:
                await self.writer.flush()
            finally:
                await self.store.aclose()

    async def run(self) -> None:
        """The background work: batched store writes (until cancelled)."""
        await self.writer.run()

    async def flush(self) -> None:
        """Write every change now."""
        await self.writer.flush()

    # --- items ---------------------------------------------------------------------------

    async def add(self, request: CheckedCallRequest) -> Item:
        """A new ``pending`` item, marked for the next write."""
        item = self.machine.add(self._next_index, request)
        self._next_index += 1
        self.writer.mark(item)
        return item

    async def discard(self, item: Item) -> None:
        """Drop an item never stored nor placed."""
        self.writer.unmark(item)
        self.machine.discard(item)

    def make_ready(self, item: Item) -> None:
        """Queue ``item`` for :meth:`claim`."""
        self._ready.append(item)
        self._ready_event.set()

    async def wait_ready(self) -> None:
        """Wait until the ready queue has an item."""
        while not self._ready:
            self._ready_event = anyio.Event()
            await self._ready_event.wait()

    async def claim(self) -> Item | None:
        """Pop the next ready item."""
        return self._ready.popleft() if self._ready else None

    def forget(self, item: Item) -> None:
        """Drop a finished item from memory."""
        self.machine.forget(item)

    # --- slots and pace ------------------------------------------------------------------

    async def take_slot(self) -> None:
        """Wait for a free slot."""
        await self.slots.acquire()

    async def free_slot(self) -> None:
        """Give a slot back."""
        self.slots.release()

    async def pace(self, item: Item) -> None:
        """Wait for the pacer, if any."""
        if self.pacer is not None:
            await self.pacer.wait()

    async def assign_caller_id(self, item: Item) -> None:
        """Take a caller ID from the pool for the item's next attempt, if it needs one."""
        pool = self.caller_ids
        if pool is not None and item.request.from_ is None and item.caller_id is None:
            item.caller_id = await pool.acquire(item.request.to)

    @staticmethod
    def _pooled(item: Item) -> bool:
        return item.request.from_ is None and item.caller_id is not None

    def _release_caller_id(self, item: Item) -> None:
        # The attempt's call ended (or was never placed): its caller ID carries one less.
        if self.caller_ids is not None and self._pooled(item):
            assert item.caller_id is not None
            self.caller_ids.release(item.caller_id)
            item.caller_id = None

    # --- attempts ------------------------------------------------------------------------

    async def begin(self, item: Item) -> tuple[CallRequest | CheckedCallRequest, str]:
        """Start or repeat the attempt; a new attempt is marked for the next write."""
        new_attempt = item.state is not ItemState.PLACING
        request, key = self.machine.start_attempt(item)
        if new_attempt:
            self.writer.mark(item)
        return request, key

    async def durable(self) -> None:
        """Wait for the next batch to be saved."""
        await self.writer.durable()

    async def placed(self, item: Item, call_id: str, now: float) -> Transition | None:
        """Record the placement (and any terminal event that overtook its reply)."""
        transition = self.machine.placed(item, call_id, now)
        self.writer.mark(item)
        return self._ending(transition)

    async def ended(
        self,
        call_id: str,
        status: CallStatus | str | None,
        reason: FailureReason | str | None,
        now: float,
    ) -> Transition | None:
        """Apply a terminal status."""
        return self._ending(self.machine.terminal(call_id, status, reason, now))

    async def scheduled(self, item: Item) -> None:
        """Free the slot of a live item whose call is not due yet."""
        if item.state is ItemState.LIVE and item.index not in self._not_due:
            self._not_due.add(item.index)
            self.slots.release()
            if self.caller_ids is not None and self._pooled(item):
                assert item.caller_id is not None
                self.caller_ids.release(item.caller_id)  # the call keeps it for when it starts

    async def due(self, item: Item) -> None:
        """Take the slot of a scheduled call that starts now."""
        if item.index in self._not_due:
            self._not_due.discard(item.index)
            self.slots.occupy()
            if self.caller_ids is not None and self._pooled(item):
                assert item.caller_id is not None
                self.caller_ids.occupy(item.caller_id)

    async def refused(self, item: Item, reason: str) -> Transition | None:
        """Fail the placing item for ``reason``."""
        return self._ending(self.machine.rejected(item, reason))

    async def lost(self, item: Item, call_id: str) -> Transition | None:
        """Fail the live item as lost."""
        return self._ending(self.machine.lost(item, call_id))

    async def unplaced(self, item: Item) -> bool:
        """Put the placing item back for a later run; free its slot."""
        if not self.machine.unplaced(item):
            return False
        self._release_caller_id(item)
        self.writer.mark(item)
        self.slots.release()
        return True

    # --- the application's decisions ------------------------------------------------------

    async def plan_redial(
        self, call_id: str, after: float | None, now: float
    ) -> tuple[bool, Transition | None]:
        """Schedule one more attempt after ``call_id`` (no slot is involved)."""
        scheduled, transition = self.machine.plan_redial(call_id, after, now)
        return scheduled, self._marked(transition)

    async def finish(self, call_id: str) -> tuple[bool, Transition | None]:
        """End the item of ``call_id`` (a waiting item holds no slot)."""
        item = self.machine.item_for(call_id)
        if item is None or item.state.is_final:
            return False, None
        return True, self._marked(self.machine.finish(call_id))

    async def suppress(self, item: Item) -> Transition | None:
        """Fail a suppressed pending or waiting item (it holds no slot)."""
        return self._marked(self.machine.suppress(item))

    async def hold(self, item: Item, until: float) -> None:
        """Record when the held item is due (its slot was freed by the caller)."""
        if self.machine.hold(item, until):
            self.writer.mark(item)

    async def suppressed(self) -> Iterable[str]:
        """The store's suppressed numbers (none for a store that keeps no such list)."""
        if isinstance(self.store, SuppressionStore):
            return await self.store.suppressed()
        return ()

    async def add_suppressed(self, number: str) -> None:
        """Add ``number`` to the store's list (if it keeps one)."""
        if isinstance(self.store, SuppressionStore):
            await self.store.add_suppressed([number])

    def items_to(self, number: str) -> list[Item]:
        """Unfinished items in memory calling ``number`` (a scan: suppressing is rare)."""
        items = self.machine.items.values()
        return [i for i in items if i.request.to == number and not i.state.is_final]

    def _marked(self, transition: Transition | None) -> Transition | None:
        if transition is not None:
            self.writer.mark(transition.item)
        return transition

    def _ending(self, transition: Transition | None) -> Transition | None:
        # The item's call ended (or never was): its slot is free, its state to be written.
        if transition is not None:
            item = transition.item
            if item.index in self._not_due:
                # It ended before its time: it held no slot and no caller ID.
                self._not_due.discard(item.index)
                item.caller_id = None
            else:
                self.slots.release()
                self._release_caller_id(item)
        return self._marked(transition)

    # --- what is known -------------------------------------------------------------------

    def item(self, index: int) -> Item | None:
        """Item ``index`` if held in memory."""
        return self.machine.items.get(index)

    def item_for(self, call_id: str) -> Item | None:
        """The item that placed ``call_id``, if held in memory."""
        return self.machine.item_for(call_id)

    async def locate(self, call_id: str) -> Item | None:
        """The item that placed ``call_id`` (every item of the campaign is in memory)."""
        return self.machine.item_for(call_id)

    @property
    def unfinished(self) -> int:
        """Items without an outcome."""
        return self.machine.unfinished

    def counts(self) -> dict[ItemState, int]:
        """Items per state."""
        return dict(self.machine.counts)

    @property
    def total(self) -> int:
        """Items in the campaign."""
        return self.machine.total

    @property
    def attempts(self) -> int:
        """Calls the API accepted."""
        return self.machine.attempts

    @property
    def held(self) -> int:
        """Items held in memory."""
        return len(self.machine.items)

    @property
    def scheduled_calls(self) -> int:
        """Live items whose call waits for its scheduled time."""
        return len(self._not_due)

    @property
    def peak_live(self) -> int:
        """The most slots taken at once."""
        return self.slots.peak

    async def outcomes(self, indices: Iterable[int]) -> list[CallOutcome]:
        """Outcomes of ``indices``, in order."""
        return self.machine.outcomes(indices)
