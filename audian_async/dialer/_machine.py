"""The campaign state machine: pure and synchronous, no clocks, no I/O.

Every item (one requested call, with its redials) moves through::

    pending -> placing -> live -> completed
                  ^         |---> failed
                  |         '---> waiting --(redial due)--> placing
                  '--(create retried with the same idempotency key)

Only a terminal event for the item's *current* call while it is ``live`` moves it on, so a
duplicated, late or reordered webhook (or a poll racing a webhook) can never cause a second
redial or count an outcome twice. The I/O shell (:class:`~audian_async.dialer.Dialer`) feeds
events in and acts on the transitions that come out.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal

import attrs

from .._convert import request_to_wire
from .._json import dumps
from .._models import CallRequest, CallStatus, FailureReason, as_reason, as_status, is_terminal
from .._validation import CheckedCallRequest
from ._policy import RetryPolicy
from ._report import CallOutcome, CampaignReport

__all__ = [
    "NOT_REOPENED",
    "SUPPRESSED",
    "TAG_ATTEMPT",
    "TAG_CAMPAIGN",
    "TAG_ITEM",
    "CallOutcome",
    "CampaignReport",
    "DialMachine",
    "Item",
    "ItemRecord",
    "ItemState",
    "Plan",
    "Step",
    "Transition",
    "idempotency_key",
    "new_item",
    "outcome_of",
]

TAG_CAMPAIGN = "audian_campaign"
TAG_ITEM = "audian_item"
TAG_ATTEMPT = "audian_attempt"
MAX_EARLY_EVENTS = 4096
SUPPRESSED = "suppressed"
"""The reason of an item whose number is suppressed (never called again)."""
NOT_REOPENED = frozenset({SUPPRESSED, "lost", "create_unknown", "duplicate_call_id"})
"""Final reasons a handler's redial cannot undo: the number must not be called, or a call
may still be going on."""


class ItemState(enum.StrEnum):
    """Where an item of a campaign stands."""

    PENDING = "pending"
    PLACING = "placing"
    LIVE = "live"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """True once the item has its outcome."""
        return self in (ItemState.COMPLETED, ItemState.FAILED)


def idempotency_key(campaign: str, index: int, attempt: int, nonce: str = "") -> str:
    """The ``Idempotency-Key`` of attempt ``attempt`` of item ``index``: the same in every
    process, so an attempt sent again after a crash cannot place a second call.

    ``nonce`` is the campaign's random nonce, kept by the store with the campaign: a name
    reused with a fresh store (a new ``MemoryStore``, a deleted database) gets new keys, so
    the API does not answer the new campaign's creates with the old campaign's calls.
    """
    return f"{_key_prefix(campaign, nonce)}{index}-{attempt}"


def _key_prefix(campaign: str, nonce: str = "") -> str:
    digest = hashlib.blake2b(campaign.encode(), digest_size=12).hexdigest()
    return f"dial-{digest}-{nonce}-"


@attrs.define(slots=True, eq=False)
class Item:
    """One requested call and its redials (mutable; owned by :class:`DialMachine`)."""

    index: int
    request: CallRequest
    state: ItemState = ItemState.PENDING
    attempt: int = 0
    """Number of the latest attempt started (1-based); accepted attempts are ``call_ids``."""
    call_ids: list[str] = attrs.field(factory=list)
    reason: FailureReason | str | None = None
    next_at: float | None = None
    """Wall-clock time of the scheduled redial while ``waiting``, or of the calling
    window's opening while held for it."""
    stored: bool = False
    """Whether the store already holds the request (so updates need not resend it)."""
    checked: CheckedCallRequest | None = attrs.field(default=None, repr=False)
    """``request`` as validated, or None for a restored request that no longer passes
    validation (its create is then checked, and refused, by the client)."""
    misses: int = attrs.field(default=0, repr=False)
    """Consecutive polls of the live call the API answered 404 (kept by the I/O shell)."""
    ends_by: float = attrs.field(default=0.0, repr=False)
    """Monotonic time by which the live call must have ended (kept by the I/O shell)."""
    caller_id: str | None = None
    """The caller ID the dialer's pool gave the current attempt (requests without their
    own ``from_``): kept with the item so a replayed create sends the same body."""
    plan: Plan | None = attrs.field(default=None, repr=False)
    """What the application asked for the current call, applied when it ends."""

    def outcome(self) -> CallOutcome:
        """The item's outcome: ``pending`` (with when it is due next) until it is final."""
        return outcome_of(
            self.index, self.request.to, self.state, self.reason, self.call_ids, self.next_at
        )


def outcome_of(
    index: int,
    to: str,
    state: ItemState,
    reason: FailureReason | str | None,
    call_ids: Sequence[str],
    next_at: float | None,
) -> CallOutcome:
    """The outcome of an item in ``state``: ``pending`` (due at wall time ``next_at``, if
    set) until it is completed or failed."""
    status: Literal["completed", "failed", "pending"] = "pending"
    if state is ItemState.COMPLETED:
        status = "completed"
    elif state is ItemState.FAILED:
        status = "failed"
    due = None
    if status == "pending" and next_at is not None:
        due = datetime.fromtimestamp(next_at, UTC)
    return CallOutcome(
        index=index,
        to=to,
        status=status,
        reason=reason,
        attempts=len(call_ids),
        call_ids=tuple(call_ids),
        next_at=due,
    )


def new_item(index: int, request: CallRequest | CheckedCallRequest) -> Item:
    """A new item of ``request`` (keeping it as checked when it is)."""
    if isinstance(request, CheckedCallRequest):
        return Item(index, request.request, checked=request)
    return Item(index, request)


@attrs.frozen
class ItemRecord:
    """An item as a :class:`~audian_async.dialer.CampaignStore` keeps it.

    ``request`` is the wire JSON of the request (``request_to_wire``); it may be ``None`` in
    an update of an item the store already holds.
    """

    index: int
    state: str
    attempt: int
    call_ids: tuple[str, ...]
    reason: str | None
    next_at: float | None
    request: str | None = None
    caller_id: str | None = None
    """The pool's caller ID for the current attempt (requests without ``from_``)."""

    def outcome(self, to: str) -> CallOutcome:
        """The outcome this record tells, of an item calling ``to``."""
        state, reason = ItemState(self.state), as_reason(self.reason)
        return outcome_of(self.index, to, state, reason, self.call_ids, self.next_at)


@attrs.frozen
class Plan:
    """The application's decision on a call still going on (:meth:`DialMachine.plan_redial`,
    :meth:`DialMachine.finish`), applied by its terminal event instead of the policy's."""

    finish: bool = False
    """End the item with this call, whatever its outcome."""
    redial_after: float | None = None
    """With ``finish`` False: seconds to the redial, or None for the policy's backoff."""


class Step(enum.Enum):
    """What the shell must do after a terminal event."""

    DONE = "done"
    REDIAL = "redial"


@attrs.frozen
class Transition:
    """The live call of ``item`` ended: it is done, or a redial is due in ``delay`` seconds."""

    item: Item
    step: Step
    delay: float = 0.0


class DialMachine:
    """The state of every item of one campaign, and the rules that move it (pure).

    ``now`` arguments are wall-clock seconds supplied by the caller, which keeps this class
    free of clocks and trivially testable.
    """

    def __init__(self, name: str, policy: RetryPolicy, nonce: str = "") -> None:
        self.name = name
        self.policy = policy
        self.nonce = nonce
        self.items: dict[int, Item] = {}
        """Items held in memory (finished ones may have been forgotten, see :meth:`forget`)."""
        self.counts: dict[ItemState, int] = dict.fromkeys(ItemState, 0)
        """Items per state, forgotten ones included: kept as items move, never recounted."""
        self.total = 0
        """Items ever added or restored, forgotten ones included."""
        self.attempts = 0
        """Calls the API accepted, over every item (forgotten ones included)."""
        self._by_call_id: dict[str, Item] = {}
        self._key_prefix = _key_prefix(name, nonce)
        # Terminal events can overtake the create reply that tells us the call_id. Kept bounded:
        # an event dropped here is recovered by polling.
        self._early: OrderedDict[str, tuple[CallStatus, FailureReason | str | None]]
        self._early = OrderedDict()

    # --- bookkeeping -------------------------------------------------------------------

    def _set(self, item: Item, state: ItemState) -> None:
        self.counts[item.state] -= 1
        self.counts[state] += 1
        item.state = state

    def add(self, index: int, request: CallRequest | CheckedCallRequest) -> Item:
        """Register a new item (state ``pending``)."""
        if index in self.items:
            raise KeyError(f"item {index} already exists")
        item = new_item(index, request)
        self.items[index] = item
        self.counts[ItemState.PENDING] += 1
        self.total += 1
        return item

    def restore(self, record: ItemRecord, request: CallRequest | CheckedCallRequest) -> Item:
        """Rebuild an item from the store, as it was when last saved."""
        state = ItemState(record.state)
        item = new_item(record.index, request)
        item.state = state
        item.attempt = record.attempt
        item.call_ids = list(record.call_ids)
        item.reason = as_reason(record.reason)
        item.next_at = record.next_at
        item.caller_id = record.caller_id
        item.stored = True
        self.items[record.index] = item
        self.counts[state] += 1
        self.total += 1
        self.attempts += len(item.call_ids)
        for call_id in item.call_ids:
            self._by_call_id[call_id] = item
        return item

    def forget(self, item: Item) -> None:
        """Drop a finished item from memory (a long-running service keeps it in the store
        only); it still counts in :attr:`counts`, :attr:`total` and :attr:`attempts`."""
        if not item.state.is_final:
            raise ValueError(f"item {item.index} is {item.state}, not finished")
        if self.items.get(item.index) is item:
            del self.items[item.index]
        for call_id in item.call_ids:
            if self._by_call_id.get(call_id) is item:
                del self._by_call_id[call_id]

    def discard(self, item: Item) -> None:
        """Remove a ``pending`` item never placed (nor stored), as if never added."""
        if item.state is not ItemState.PENDING or item.call_ids:
            raise ValueError(f"item {item.index} is {item.state}, cannot discard it")
        if self.items.get(item.index) is item:
            del self.items[item.index]
            self.counts[ItemState.PENDING] -= 1
            self.total -= 1

    def record(self, item: Item) -> ItemRecord:
        """The store's view of ``item`` (with the request only if the store lacks it)."""
        wire = None if item.stored else dumps(request_to_wire(item.request)).decode()
        return ItemRecord(
            item.index,
            item.state.value,
            item.attempt,
            tuple(item.call_ids),
            None if item.reason is None else str(item.reason),
            item.next_at,
            wire,
            item.caller_id,
        )

    def item_for(self, call_id: str) -> Item | None:
        """The item that placed ``call_id``, if it belongs to this campaign."""
        return self._by_call_id.get(call_id)

    @property
    def unfinished(self) -> int:
        """Items without an outcome yet."""
        return self.total - self.counts[ItemState.COMPLETED] - self.counts[ItemState.FAILED]

    # --- transitions -------------------------------------------------------------------

    def start_attempt(self, item: Item) -> tuple[CallRequest | CheckedCallRequest, str]:
        """Move ``item`` to ``placing``; return the tagged request and its idempotency key.

        From ``pending``/``waiting`` this starts a new attempt; from ``placing`` (a create to
        repeat, e.g. after a restart) it repeats the same attempt with the same key.
        """
        if item.state in (ItemState.PENDING, ItemState.WAITING):
            item.attempt = len(item.call_ids) + 1
            item.next_at = None
            self._set(item, ItemState.PLACING)
        elif item.state is not ItemState.PLACING:
            raise ValueError(f"item {item.index} is {item.state}, cannot place a call")
        return self.tagged(item), self.key(item)

    def key(self, item: Item) -> str:
        """The idempotency key of the item's current attempt (:func:`idempotency_key`, with
        the campaign's digest computed once)."""
        return f"{self._key_prefix}{item.index}-{item.attempt}"

    def tagged(self, item: Item) -> CallRequest | CheckedCallRequest:
        """The item's request with the campaign/item/attempt tags added (still checked when
        the item's request was)."""
        tags = {TAG_CAMPAIGN: self.name, TAG_ITEM: str(item.index), TAG_ATTEMPT: str(item.attempt)}
        pooled = item.request.from_ is None and item.caller_id is not None
        checked = item.checked
        if checked is not None:
            if pooled:
                assert item.caller_id is not None
                checked = checked.with_caller_id(item.caller_id)
            return checked.with_tags(tags)
        request = attrs.evolve(item.request, tags={**(item.request.tags or {}), **tags})
        return attrs.evolve(request, from_=item.caller_id) if pooled else request

    def placed(self, item: Item, call_id: str, now: float) -> Transition | None:
        """The API accepted the current attempt as ``call_id``: the item is ``live``.

        Returns the transition of a terminal event that arrived before this reply, if any.
        """
        if item.state is not ItemState.PLACING:
            return None
        if call_id in self._by_call_id:
            # A call already tracked: an earlier attempt's (``call_ids`` only ever holds
            # accepted attempts before the current one, which has a key of its own) or
            # another item's. This attempt placed nothing of its own: the API mixed up keys
            # (or one was reused). Tracking it twice would free that call's slot twice.
            return self._give_up(item, "duplicate_call_id")
        item.call_ids.append(call_id)
        self._by_call_id[call_id] = item
        self.attempts += 1
        self._set(item, ItemState.LIVE)
        early = self._early.pop(call_id, None)
        if early is not None:
            return self.terminal(call_id, early[0], early[1], now)
        return None

    def _give_up(self, item: Item, reason: str) -> Transition:
        item.reason = reason
        self._set(item, ItemState.FAILED)
        return Transition(item, Step.DONE)

    def rejected(self, item: Item, reason: str) -> Transition | None:
        """The API refused the create for good (invalid number, caller ID...): ``failed``.

        Also how a create whose fate stayed unknown past its deadline ends
        (``"create_unknown"``): never redialed, since it may have placed a call.
        """
        if item.state is not ItemState.PLACING:
            return None
        return self._give_up(item, reason)

    def unplaced(self, item: Item) -> bool:
        """The create was refused for a reason that is not the item's (bad API key, account
        setup): back to ``pending`` (or ``waiting`` for a redial), so a later run places it
        with the same idempotency key. Returns whether the item moved."""
        if item.state is not ItemState.PLACING:
            return False
        self._set(item, ItemState.WAITING if item.call_ids else ItemState.PENDING)
        return True

    def lost(self, item: Item, call_id: str) -> Transition | None:
        """The API no longer knows ``call_id`` (or could not tell us about it until the call
        must have ended): ``failed`` with reason ``"lost"``, never redialed."""
        if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
            return None
        return self._give_up(item, "lost")

    def terminal(
        self,
        call_id: str,
        status: CallStatus | str | None,
        reason: FailureReason | str | None,
        now: float,
    ) -> Transition | None:
        """A call reached a terminal status (``completed``/``failed``); returns what follows,
        or ``None`` when the event changes nothing (not terminal, duplicate, stale, or not
        ours)."""
        status = as_status(status)
        if not is_terminal(status):
            return None
        item = self._by_call_id.get(call_id)
        if item is None:
            if call_id not in self._early:
                self._early[call_id] = (status, reason)
                if len(self._early) > MAX_EARLY_EVENTS:
                    self._early.popitem(last=False)
            return None
        if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
            return None
        plan, item.plan = item.plan, None
        completed = status is CallStatus.COMPLETED
        item.reason = None if completed else as_reason(reason) or "unknown"
        attempts = len(item.call_ids)
        if plan is not None and not plan.finish and attempts < self.policy.max_attempts:
            return self._schedule(item, plan.redial_after, now)
        if plan is None and not completed and self.policy.should_redial(item.reason, attempts):
            return self._schedule(item, None, now)
        self._set(item, ItemState.COMPLETED if completed else ItemState.FAILED)
        return Transition(item, Step.DONE)

    def _schedule(self, item: Item, after: float | None, now: float) -> Transition:
        """Move ``item`` to ``waiting`` for a redial in ``after`` seconds (None: the
        policy's backoff for its last reason)."""
        if after is None:
            after = self.policy.delay(item.reason, len(item.call_ids))
        item.next_at = now + after
        self._set(item, ItemState.WAITING)
        return Transition(item, Step.REDIAL, after)

    # --- the application's decisions -----------------------------------------------------

    def plan_redial(
        self, call_id: str, after: float | None, now: float
    ) -> tuple[bool, Transition | None]:
        """One more attempt for the item that placed ``call_id``, ``after`` seconds after
        that call ended (None: the policy's backoff), whatever the policy says of its
        outcome; ``max_attempts`` still caps it.

        Idempotent per call: only ``call_id`` being the item's latest call counts, and a
        redial already scheduled after it is kept, so a handler run twice for one webhook
        schedules one redial. Returns whether a redial after ``call_id`` is now scheduled,
        and the transition to act on when a finished item was reopened for it.
        """
        item = self._by_call_id.get(call_id)
        if item is None or item.call_ids[-1] != call_id:
            return False, None
        state = item.state
        if state in (ItemState.WAITING, ItemState.PLACING):
            return True, None  # already dialed again (or about to be)
        if len(item.call_ids) >= self.policy.max_attempts:
            return False, None
        if state is ItemState.LIVE:
            if item.plan is not None and item.plan.finish:
                return False, None
            item.plan = Plan(redial_after=after)
            return True, None
        if state.is_final and item.reason not in NOT_REOPENED:
            return True, self._schedule(item, after, now)
        return False, None

    def finish(self, call_id: str) -> Transition | None:
        """End the item that placed ``call_id`` now (the callee opted out): a scheduled
        redial is cancelled, a call going on ends the item when it ends. Idempotent; returns
        the transition when the item ended now."""
        item = self._by_call_id.get(call_id)
        if item is None or item.state.is_final:
            return None
        if item.state in (ItemState.LIVE, ItemState.PLACING):
            item.plan = Plan(finish=True)
            return None
        # Waiting for a redial: its last call's outcome is the item's.
        item.next_at = None
        self._set(item, ItemState.FAILED if item.reason is not None else ItemState.COMPLETED)
        return Transition(item, Step.DONE)

    def hold(self, item: Item, until: float) -> bool:
        """Keep a ``pending`` or ``waiting`` item until wall time ``until`` (its calling
        window opens then): recorded as when it is due next. Returns whether it is held."""
        if item.state not in (ItemState.PENDING, ItemState.WAITING):
            return False
        item.next_at = until
        return True

    def suppress(self, item: Item) -> Transition | None:
        """The item's number must not be called: a ``pending`` or ``waiting`` item fails
        now with reason ``suppressed`` (a call going on is left to end)."""
        if item.state not in (ItemState.PENDING, ItemState.WAITING):
            return None
        item.next_at = None
        return self._give_up(item, SUPPRESSED)

    def outcomes(self, indices: Iterable[int]) -> list[CallOutcome]:
        """Outcomes of ``indices`` in that order."""
        return [self.items[i].outcome() for i in indices]
