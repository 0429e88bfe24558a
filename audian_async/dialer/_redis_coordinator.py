""":class:`~._coordinator.Coordinator` over Redis: several processes serve one campaign.

Every step is one script of :class:`~._redis_state.RedisCampaignState` (claim + slot + pace
+ durable ``placing`` in one round trip; placed; ended), so the hot path costs three round
trips per attempt. This process keeps :class:`~._machine.Item` objects only as a cache of
the items it works on (claimed, placed, or finished by a webhook it received), updated from
each script's reply; the truth is in Redis.

Background work (:meth:`RedisCoordinator.run`): the campaign's counts are re-read a few
times a second (an item another process finished must end this process's ``run()`` too),
the leases of the items this process holds are renewed, and items whose holder died are
taken over. A step that finds Redis unreachable is tried again (every step is safe to
repeat) until the dialer's ``create_deadline``, then the error stops the campaign: no create
is ever sent without its claim, so nothing is placed without a slot meanwhile.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import TypeVar

import anyio

from .._convert import request_to_wire
from .._json import dumps
from .._models import CallRequest, CallStatus, FailureReason, as_reason
from .._validation import CheckedCallRequest
from ._caller_ids import CallerIdPool
from ._coordinator import restored_request
from ._machine import (
    NOT_REOPENED,
    SUPPRESSED,
    CallOutcome,
    DialMachine,
    Item,
    ItemRecord,
    ItemState,
    Step,
    Transition,
    new_item,
)
from ._policy import RetryPolicy
from ._redis_connection import RedisConnection, patiently
from ._redis_leases import HeldItems
from ._redis_state import (
    CampaignCounts,
    Change,
    Claimed,
    Decided,
    NoCallerId,
    NoSlot,
    RedisCampaignState,
)
from ._redis_store import RedisStore

__all__ = ["RedisCoordinator"]

logger = logging.getLogger("audian_async.dialer")

T = TypeVar("T")

COUNTS_EVERY = 0.1
"""Seconds between reads of the campaign's counts (another process may finish its items)."""
SLOT_POLL = 0.02
"""Seconds before asking again when the namespace's live-call limit is reached."""
IDLE_POLL = 0.2
"""Most seconds between claims while nothing is due (items may come from other processes)."""
DECISION_POLL = 0.01
"""Seconds between looks for a call a handler decided on before its create reply came."""
_UNKNOWN = CallRequest(from_=None, to="")
"""The request of an item this process never held (finished here by a webhook)."""


class RedisCoordinator:
    """The campaign ``name`` in ``store``'s Redis, shared with every process running it."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        store: RedisStore,
        *,
        max_active_calls: int,
        calls_per_second: float | None,
        create_deadline: float,
        caller_ids: CallerIdPool | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.store = store
        self.limit = max_active_calls
        self.pace_interval = 1.0 / calls_per_second if calls_per_second else 0.0
        self.create_deadline = create_deadline
        self.lease = store.lease
        self.caller_ids = caller_ids
        self._pool_arguments = () if caller_ids is None else tuple(caller_ids.claim_arguments())
        self.process_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.connection = RedisConnection(store.url, timeout=store.timeout)
        self.state = RedisCampaignState(
            self.connection, name, namespace=store.namespace, retention=store.retention
        )
        self.machine = DialMachine(name, policy)  # tags and keys only; the rules are Lua
        self.items: dict[int, Item] = {}
        self._by_call_id: dict[str, Item] = {}
        self._requests: Sequence[CheckedCallRequest] | None = None
        self._region: str | None = None
        self._counts = CampaignCounts(0, 0, 0, dict.fromkeys(ItemState, 0))
        self._held = HeldItems()  # placing or live items this process holds
        self._unbegun: set[int] = set()  # claimed, no create sent yet
        self._pace_waits: dict[int, float] = {}
        self._wake = anyio.Event()
        self._check_at = 0.0
        self._peak = 0
        self._changed: Callable[[], None] = lambda: None
        self._taken: Callable[[list[Item]], None] = lambda items: None
        self._stack = AsyncExitStack()

    # --- lifecycle -----------------------------------------------------------------------

    async def open(
        self, region: str | None, requests: Sequence[CheckedCallRequest] | None = None
    ) -> list[Item]:
        """Connect, create or join the campaign (a different request list is an
        :class:`~audian_async.AudianError`, before anything is dialed), and take over the
        items of processes that died; return those."""
        self._region = region
        await self._stack.enter_async_context(self.connection)
        try:
            self._requests = requests
            wires = None
            if requests is not None:
                wires = [dumps(request_to_wire(r.request)).decode() for r in requests]
            opened = await self.state.open(wires)
            self.machine = DialMachine(self.name, self.policy, opened.nonce)
            self._counts = opened.counts
            self._held.renewed_at = anyio.current_time()
            return await self._take_over()
        except BaseException:
            await self._stack.aclose()
            raise

    async def close(self) -> None:
        """Disconnect; the items this process holds return to the others after their lease.

        Not shielded: the client's own task group must exit in the scope it was entered in.
        """
        await self._stack.aclose()

    def bind(self, changed: Callable[[], None], taken: Callable[[list[Item]], None]) -> None:
        """The session's hooks: counts changed elsewhere; items taken over."""
        self._changed, self._taken = changed, taken

    async def run(self) -> None:
        """Re-read the counts; renew leases and take dead processes' items over."""
        maintenance = self.lease / 3
        next_maintenance = anyio.current_time() + maintenance
        while True:
            await anyio.sleep(COUNTS_EVERY)
            await self._refresh()
            if anyio.current_time() >= next_maintenance:
                next_maintenance = anyio.current_time() + maintenance
                await self._renew()
                taken = await self._take_over()
                if taken:
                    self._taken(taken)

    async def flush(self) -> None:
        """Nothing is written behind: every step is stored when it returns."""

    async def _refresh(self) -> None:
        counts, live = await self._retrying(self.state.status)
        self._peak = max(self._peak, live)
        if counts != self._counts:
            self._counts = counts
            self._changed()
        self._wake.set()  # a slot may have been freed elsewhere

    async def _renew(self) -> None:
        started, mark = anyio.current_time(), self._held.mark()
        held = list(self._held.indices)
        lost = await self._retrying(self.state.renew, self.process_id, self.lease, held)
        self._held.renewed_at = started
        for index in self._held.lost(mark, lost):
            item = self.items.get(index)
            # An item that finished meanwhile is not held any more either: only a create
            # this process may still send is news (holds() now stops it).
            if item is not None and item.state is ItemState.PLACING:
                logger.warning("item %d: lease lost to another process", index)

    async def _take_over(self) -> list[Item]:
        taken = await self._retrying(self.state.take_over, self.process_id, self.lease, 1000)
        items = []
        for found in taken:
            item = self._local(found.record, found.request)
            self._held.taken_over(item.index)
            items.append(item)
        if items:
            logger.info(
                "campaign %s: took over %d items of a stopped process", self.name, len(items)
            )
        return items

    async def _retrying(
        self, step: Callable[..., Awaitable[T]], *args: object, shielded: bool = False
    ) -> T:
        """Run ``step``, waiting for an unreachable Redis up to ``create_deadline``."""
        deadline, name = self.create_deadline, self.name
        return await patiently(step, *args, deadline=deadline, campaign=name, shielded=shielded)

    # --- items ---------------------------------------------------------------------------

    def _local(self, record: ItemRecord, wire: str | None) -> Item:
        """This process's copy of an item, made or updated from its record."""
        item = self.items.get(record.index)
        if item is None:
            request = self._request(record.index, wire)
            if request is None:
                item = Item(record.index, _UNKNOWN)
            else:
                item = self.items[record.index] = new_item(record.index, request)
        item.state = ItemState(record.state)
        item.attempt = record.attempt
        item.call_ids = list(record.call_ids)
        item.reason = as_reason(record.reason)
        item.next_at = record.next_at
        item.caller_id = record.caller_id
        for call_id in item.call_ids:
            self._by_call_id[call_id] = item
        return item

    def _request(self, index: int, wire: str | None) -> CallRequest | CheckedCallRequest | None:
        if self._requests is not None and index < len(self._requests):
            return self._requests[index]
        pooled = self.caller_ids is not None
        return None if wire is None else restored_request(wire, self._region, pooled=pooled)

    async def add(self, request: CheckedCallRequest) -> Item:
        """A new item of a service campaign, at an index reserved in Redis (processes
        submitting to one campaign never share one), stored (and claimable) at once."""
        wire = dumps(request_to_wire(request.request)).decode()
        index = await self._retrying(self.state.reserve)
        # Held here before Redis has it: this process's own claim may return before the add
        # does, and must find this item, not make a copy. Each attempt is shielded: once
        # sent, Redis may have the item (and place it), so submit() must return it too.
        item = self.items[index] = new_item(index, request)
        try:
            await self._retrying(self.state.add, index, wire, shielded=True)
        except BaseException:
            if self.items.get(index) is item and item.state is ItemState.PENDING:
                del self.items[index]
            raise
        self._wake.set()
        return item

    async def discard(self, item: Item) -> None:
        """Forget it here (a stored item is placed by whichever process claims it)."""
        self.items.pop(item.index, None)

    def make_ready(self, item: Item) -> None:
        """Claims find due items in Redis: just look again now."""
        self._check_at = 0.0
        self._wake.set()

    async def wait_ready(self) -> None:
        """Wait until a claim may find something: woken here, or the next check is due."""
        wait = self._check_at - anyio.current_time()
        if not self._wake.is_set() and wait > 0:
            with anyio.move_on_after(wait):
                await self._wake.wait()
        self._wake = anyio.Event()

    async def claim(self) -> Item | None:
        """Claim the next due item with its slot and pace (one round trip)."""
        now = anyio.current_time()
        result = await self._retrying(
            self.state.claim,
            self.process_id,
            self.limit,
            self.lease,
            self.pace_interval,
            self._pool_arguments,
        )
        if isinstance(result, Claimed):
            item = self._local(result.record, result.request)
            self._held.claimed(item.index)
            self._unbegun.add(item.index)
            self._pace_waits[item.index] = result.pace_wait
            self._check_at = now  # there may be more
            return item
        if isinstance(result, NoSlot | NoCallerId):
            self._check_at = now + SLOT_POLL
        else:
            due = IDLE_POLL if result.due_in is None else min(result.due_in, IDLE_POLL)
            self._check_at = now + due
        return None

    def forget(self, item: Item) -> None:
        """Drop a finished item from this process's memory."""
        if self.items.get(item.index) is item:
            del self.items[item.index]
        for call_id in item.call_ids:
            if self._by_call_id.get(call_id) is item:
                del self._by_call_id[call_id]

    # --- slots and pace ------------------------------------------------------------------

    async def take_slot(self) -> None:
        """The claim takes the slot with the item."""

    async def free_slot(self) -> None:
        """A claim that found nothing took no slot; one that did is given back by the step
        that follows (suppress, hold or give_back)."""

    async def pace(self, item: Item) -> None:
        """Wait out the pace booked by the claim (once per attempt)."""
        wait = self._pace_waits.pop(item.index, 0.0)
        if wait > 0:
            await anyio.sleep(wait)

    async def assign_caller_id(self, item: Item) -> None:
        """The claim took the item's caller ID with its slot (counted per caller ID over the
        namespace), and recorded it: nothing is left to choose."""

    async def holds(self, item: Item) -> bool:
        """Whether the item's lease is this process's, renewed recently enough.

        A renewal overdue (this process stalled) does not mean the lease is lost: it is
        renewed now, and the answer is what Redis says. Giving the item up on a stale clock
        alone would leave it to nobody, since this process goes on renewing its lease.
        """
        if item.index not in self._held:
            return False
        if anyio.current_time() - self._held.renewed_at >= self.lease * 2 / 3:
            await self._renew()
        return item.index in self._held

    def fresh(self, item: Item) -> bool:
        """The claim moved the item to ``placing``: fresh while no create was sent."""
        return item.index in self._unbegun

    async def give_back(self, item: Item) -> None:
        """Put a claimed item back, due now, its slot freed."""
        await self._unclaim(item, 0.0)

    async def _unclaim(self, item: Item, due_in: float) -> None:
        self._unbegun.discard(item.index)
        self._pace_waits.pop(item.index, None)
        change = await self._retrying(self.state.unplaced, self.process_id, item.index, due_in)
        self._held.let_go(item.index)
        if change is not None:
            self._local(change.record, None)
        self._wake.set()

    # --- attempts ------------------------------------------------------------------------

    async def begin(self, item: Item) -> tuple[CallRequest | CheckedCallRequest, str]:
        """The claim started the attempt in Redis: its tagged request and key."""
        self._unbegun.discard(item.index)
        return self.machine.tagged(item), self.machine.key(item)

    async def durable(self) -> None:
        """The claim stored ``placing`` before it returned."""

    async def placed(self, item: Item, call_id: str, now: float) -> Transition | None:
        """Record the placement (and any terminal event that overtook its reply)."""
        change = await self._retrying(
            self.state.placed, self.process_id, item.index, item.attempt, call_id, self.policy
        )
        if change is None:
            # Recorded already (a process that took the item over replayed the same key),
            # or no longer this process's: its holder follows the call.
            self._held.let_go(item.index)
            return None
        return self._transition(change)

    async def ended(
        self,
        call_id: str,
        status: CallStatus | str | None,
        reason: FailureReason | str | None,
        now: float,
    ) -> Transition | None:
        """Apply a terminal status, wherever the call was placed (a handler's plan for the
        call, kept in Redis, comes before the policy)."""
        change = await self._retrying(self.state.ended, call_id, status, reason, self.policy)
        if change is None or change.campaign != self.state.digest:
            return None
        return self._transition(change)

    async def scheduled(self, item: Item) -> None:
        """Free the namespace slot of a live item whose call is not due yet."""
        if item.state is ItemState.LIVE and item.call_ids:
            await self._retrying(self.state.scheduled, item.index, item.call_ids[-1])
            self._wake.set()  # the slot is free

    async def due(self, item: Item) -> None:
        """Take a namespace slot for a scheduled call that starts now."""
        if item.state is ItemState.LIVE and item.call_ids:
            await self._retrying(self.state.due, item.index, item.call_ids[-1])

    async def refused(self, item: Item, reason: str) -> Transition | None:
        """Fail the placing item for ``reason``, its slot freed."""
        self._unbegun.discard(item.index)
        change = await self._retrying(self.state.refused, self.process_id, item.index, reason)
        return None if change is None else self._transition(change)

    async def lost(self, item: Item, call_id: str) -> Transition | None:
        """Fail the live item as lost, its slot freed."""
        change = await self._retrying(self.state.lost, item.index, call_id)
        return None if change is None else self._transition(change)

    async def unplaced(self, item: Item) -> bool:
        """Put the placing item back for later, its slot freed."""
        change = await self._retrying(self.state.unplaced, self.process_id, item.index, 0.0)
        self._held.let_go(item.index)
        if change is None:
            return False
        self._local(change.record, None)
        self._wake.set()
        return True

    def _transition(self, change: Change) -> Transition | None:
        item = self._local(change.record, None)
        if change.state is ItemState.LIVE:
            return None
        self._wake.set()  # the slot is free
        if change.state is ItemState.WAITING:
            self._held.let_go(item.index)
            delay = change.delay or 0.0
            self._check_at = min(self._check_at, anyio.current_time() + delay)
            return Transition(item, Step.REDIAL, delay)
        if change.state.is_final:
            self._held.let_go(item.index)
            return Transition(item, Step.DONE)
        return None

    # --- the application's decisions ------------------------------------------------------

    async def plan_redial(
        self, call_id: str, after: float | None, now: float
    ) -> tuple[bool, Transition | None]:
        """One more attempt after ``call_id``, decided in Redis: whichever process gets the
        call's end applies it, and a finished item opens again."""
        item = await self.locate(call_id)
        redial = 1 if item is None else item.call_ids.index(call_id) + 1
        if after is None:
            # The policy's backoff for the reason the call will have ended for.
            policy = self.policy
            delays = {reason: policy.delay(reason, redial) for reason in policy.reason_delays}
            delays["*"] = policy.delay(None, redial)
        else:
            delays = {"*": after}
        args = (delays, self.policy.max_attempts, NOT_REOPENED)
        return await self._decide(self.state.redial, call_id, args)

    async def _decide(
        self,
        step: Callable[..., Awaitable[Decided]],
        call_id: str,
        args: tuple[object, ...] = (),
        *,
        kept_is_done: bool = False,
    ) -> tuple[bool, Transition | None]:
        """Run a decision ``step`` on ``call_id``; for a call not recorded yet (its webhook
        overtook the create reply, maybe another process's), the step kept the decision
        for that reply: ask again once the call is recorded, while creates are in flight.
        ``kept_is_done``: a decision the reply applied holds, whatever the second answer."""
        decided, change = await self._retrying(step, call_id, *args)
        if decided is None:
            if not await self._recorded_soon(call_id):
                return False, None
            decided, change = await self._retrying(step, call_id, *args)
            decided = bool(decided) or kept_is_done
        return bool(decided), None if change is None else self._transition(change)

    async def _recorded_soon(self, call_id: str) -> bool:
        """Whether ``call_id`` gets recorded for this campaign while its creates in flight
        are answered (polled: the reply may come to any process), within the deadline."""
        deadline = anyio.current_time() + self.create_deadline
        while anyio.current_time() < deadline:
            if await self._located(call_id) is not None:
                return True
            counts, _ = await self._retrying(self.state.status)
            if not counts.states[ItemState.PLACING]:
                return await self._located(call_id) is not None
            await anyio.sleep(DECISION_POLL)
        return False

    async def _located(self, call_id: str) -> Item | None:
        """The item of ``call_id``, read from Redis when this process never held it (a
        receiver's handler deciding on a call another process placed); None when the call
        is unknown or another campaign's. One round trip, only for such decisions."""
        record = await self._retrying(self.state.record_for_call, call_id)
        return None if record is None else self._local(record, None)

    async def finish(self, call_id: str) -> tuple[bool, Transition | None]:
        """End the item of ``call_id``, decided in Redis: now if it waits for a redial, else
        with its call, whichever process gets that call's end."""
        # A finish kept for the reply was applied by it, even if the call has ended since.
        return await self._decide(self.state.finish, call_id, kept_is_done=True)

    async def suppress(self, item: Item) -> Transition | None:
        """Fail a claimed item whose number is suppressed (its slot freed)."""
        if item.index not in self._unbegun:
            return None
        return await self.refused(item, SUPPRESSED)

    async def hold(self, item: Item, until: float) -> None:
        """Put a claimed item back until ``until`` (its window opens), its slot freed."""
        if item.index in self._unbegun:
            await self._unclaim(item, max(0.0, until - time.time()))
        item.next_at = until

    async def suppressed(self) -> Iterable[str]:
        """The namespace's suppressed numbers."""
        return await self._retrying(self.state.suppressed)

    async def add_suppressed(self, number: str) -> None:
        """Suppress ``number`` for every process of the namespace."""
        await self._retrying(self.state.add_suppressed, number)

    def items_to(self, number: str) -> list[Item]:
        """Unfinished items in this process's memory calling ``number``."""
        items = self.items.values()
        return [i for i in items if i.request.to == number and not i.state.is_final]

    # --- what is known -------------------------------------------------------------------

    def item(self, index: int) -> Item | None:
        """Item ``index`` if held in memory."""
        return self.items.get(index)

    def item_for(self, call_id: str) -> Item | None:
        """The item that placed ``call_id``, if held in memory."""
        return self._by_call_id.get(call_id)

    async def locate(self, call_id: str) -> Item | None:
        """The item that placed ``call_id``, from memory or else from Redis."""
        return self._by_call_id.get(call_id) or await self._located(call_id)

    @property
    def unfinished(self) -> int:
        """Items without an outcome, over every process (as last read)."""
        return self._counts.unfinished

    def counts(self) -> dict[ItemState, int]:
        """Items per state, over every process (as last read)."""
        return dict(self._counts.states)

    @property
    def total(self) -> int:
        """Items in the campaign."""
        return self._counts.total

    @property
    def attempts(self) -> int:
        """Calls the API accepted, over every process."""
        return self._counts.attempts

    @property
    def held(self) -> int:
        """Items held in this process's memory."""
        return len(self.items)

    @property
    def scheduled_calls(self) -> int:
        """Live items waiting for their scheduled time, over every process (as last read)."""
        return self._counts.scheduled

    @property
    def peak_live(self) -> int:
        """The most live-call slots of the namespace seen taken at once."""
        return self._peak

    async def _records(self, indices: list[int], with_requests: bool) -> list[ItemRecord]:
        return await self.state.records(indices, with_requests=with_requests)

    async def outcomes(self, indices: Iterable[int]) -> list[CallOutcome]:
        """Outcomes of ``indices``, read from Redis (whichever process placed them)."""
        wanted = list(indices)
        need_requests = self._requests is None
        records = await self._retrying(self._records, wanted, need_requests)
        by_index = {r.index: r for r in records}
        outcomes = []
        for index in wanted:
            record = by_index[index]
            request = self._request(index, record.request)
            outcomes.append(record.outcome("" if request is None else _plain(request).to))
        return outcomes


def _plain(request: CallRequest | CheckedCallRequest) -> CallRequest:
    return request.request if isinstance(request, CheckedCallRequest) else request
