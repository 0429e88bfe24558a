"""One campaign's shared state in Redis: every coordination step is one atomic Lua script.

Several processes (on several machines) serving the same campaign share its items, the
namespace's live-call counter (the account's concurrent-call limit, over every campaign of
the namespace) and its pace (``calls_per_second``). Each step (claim an item with its slot,
its pace and its durable ``placing`` in one round trip; record a placement; apply a terminal
event; schedule a redial...) is one script run by Redis atomically, never a read-modify-write
from Python, so two processes can never both place an item or free a slot twice.

Key layout (all keys carry the hash tag ``{ns}``, so every script's keys share one cluster
slot; ``cd`` is :func:`campaign_digest` of the campaign's name)::

    {ns}:live             live-call slots in use, over all campaigns of the namespace
    {ns}:pace             next free create time of the shared pace (server ms)
    {ns}:call:<call_id>   "<cd>:<index>": which item placed a call (TTL: retention)
    {ns}:early:<call_id>  "<status>\\n<reason>": a terminal event ahead of its create reply
    {ns}:early-decision:<call_id>  a handler's plan (JSON) ahead of the create reply
    {ns}:suppressed       set: numbers never to call, for every campaign (bounded by the user);
                          a claim fails a due item calling one (whoever added it, and when)
    {ns}:caller_ids       hash: pooled caller ID -> its live calls, over all campaigns
    {ns}:c:<cd>:meta      hash: name, digest, nonce, retention, total, unfinished, attempts,
                          and the count of items in each state
    {ns}:c:<cd>:req       hash: index -> request wire JSON
    {ns}:c:<cd>:items     hash: index -> record JSON (state, attempt, call_ids, reason, next_at,
                          and a handler's plan for the call going on)
    {ns}:c:<cd>:ready     zset: pending/waiting items -> due time (server ms)
    {ns}:c:<cd>:leases    zset: placing/live items -> lease expiry (server ms)
    {ns}:c:<cd>:owner     hash: placing/live items -> id of the process holding them

Every "now" is the Redis server's clock; callers pass delays, never their own times. A
finished campaign's keys expire ``retention`` seconds after its last outcome.

:meth:`RedisCampaignState.ended` applies an event to whichever campaign of the namespace
placed the call, so its script reaches keys it could not declare (it learns the campaign
from the call key). On a cluster that is sound only because the hash tag puts every key of
the namespace in one slot: keep the tag in any new key.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import AudianError, ValidationError
from .._json import dumps
from .._models import CallStatus, FailureReason, as_status, is_terminal
from . import _redis_scripts as lua
from ._machine import ItemState
from ._policy import RetryPolicy
from ._redis_decisions import (
    Decisions,
    _decisions_json,
    _id,
    _ms,
    _normal_reason,
    _positive,
    campaign_digest,
    redial_decisions,
    requests_digest,
)
from ._redis_reads import BATCH, CampaignReads
from ._redis_records import (
    CampaignCounts,
    Change,
    Claimed,
    NoCallerId,
    NoSlot,
    NothingDue,
    OpenedCampaign,
    TakenItem,
    counts_of,
    pairs,
    record_of,
)

__all__ = [
    "CampaignCounts",
    "Change",
    "Claimed",
    "Decided",
    "Decisions",
    "NoCallerId",
    "NoSlot",
    "NothingDue",
    "OpenedCampaign",
    "RedisCampaignState",
    "TakenItem",
    "campaign_digest",
    "redial_decisions",
    "requests_digest",
]

EARLY_TTL = 3_600.0
"""Seconds a terminal event (or a handler's decision) waits for the create reply of its
call."""
_NO_CAP = 1 << 30
"""The attempts cap of a decision table given without its policy (none)."""

Decided = tuple[bool | None, Change | None]
"""What a handler's decision did: whether it holds (None: kept for a call not recorded
yet), and the change of an item it changed now."""
CHUNK_ITEMS = 1_000
CHUNK_BYTES = 1 << 20
"""An open sends at most this many requests (or bytes of them) per script call: a script
blocks the server while it runs, so a 100,000-item campaign is written in many short steps."""

# --- the campaign state -------------------------------------------------------------------


class RedisCampaignState(CampaignReads):
    """The shared state of campaign ``campaign`` under ``namespace``, one script per step.

    ``retention`` is how long a finished campaign, and the mapping of each placed call to
    its item, stay in Redis. Several instances (in one process or many) may work on the same
    campaign at once; each process identifies itself with a ``process_id`` of its choosing
    (unique per process), which owns the items it claims until its lease runs out.
    """

    def _change(self, reply: Sequence[Any], campaign: str | None = None) -> Change | None:
        if reply[0] != "changed":
            return None
        index, delay = int(reply[1]), int(reply[3])
        return Change(
            index=index,
            state=ItemState(str(reply[2])),
            delay=None if delay < 0 else delay / 1000,
            record=record_of(index, str(reply[4])),
            campaign=campaign or self.digest,
        )

    # --- creating ------------------------------------------------------------------------

    async def open(
        self,
        requests: Sequence[str] | None,
        *,
        digest: str | None = None,
        nonce_candidate: str | None = None,
    ) -> OpenedCampaign:
        """Create the campaign, or join it as it exists; return its nonce and counts.

        ``requests`` are the request wire JSON strings (item ``i`` is ``requests[i]``), or
        None for a service campaign fed by :meth:`add`. ``digest`` defaults to
        :func:`requests_digest`. An existing campaign opened with another request list (or
        a list campaign opened as a service one, and the reverse) is an
        :class:`~audian_async.AudianError` raised before anything changed.

        The first step creates the campaign's meta (nonce: ``nonce_candidate``, random by
        default; the first opener's wins); the requests follow in chunks, each one script
        that writes only the items not there yet. So two processes opening at once (or one
        resuming an open that crashed half-way) just both write the missing items, and
        nothing is counted twice; items are claimable as soon as they are written.
        """
        if requests is None:
            wanted = ""
        else:
            wanted = digest if digest is not None else requests_digest(requests)
            if not wanted:
                raise ValidationError("digest", "must be a non-empty string")
        nonce = nonce_candidate or secrets.token_hex(6)
        total = 0 if requests is None else len(requests)
        reply = await self._script(
            lua.OPEN_BEGIN, [], self.campaign, wanted, nonce, total, _ms(self.retention)
        )
        if reply[0] == "mismatch":
            raise self._mismatch(str(reply[1]), wanted)
        created, stored = reply[0] == "created", int(reply[1])
        meta = pairs(reply[2])
        if requests is not None and stored < total:
            await self._write_requests(requests, wanted)
            return OpenedCampaign(meta["nonce"], created, await self.counts())
        return OpenedCampaign(meta["nonce"], created, counts_of(meta))

    def _mismatch(self, stored: str, wanted: str) -> AudianError:
        where = f"campaign {self.campaign!r} in Redis namespace {self.namespace!r}"
        if not stored:
            what = "is a service campaign (fed by add()), not a request list"
        elif not wanted:
            what = "has a request list; it cannot be opened as a service campaign"
        else:
            what = "already exists with a different request list"
        return AudianError(
            f"{where} {what}: run it with the same requests, or choose another campaign name"
        )

    async def _write_requests(self, requests: Sequence[str], digest: str) -> None:
        start, size = 0, 0
        chunk: list[str] = []
        for index, wire in enumerate(requests):
            if chunk and (len(chunk) >= CHUNK_ITEMS or size + len(wire) > CHUNK_BYTES):
                await self._write_chunk(start, chunk, digest)
                start, size, chunk = index, 0, []
            chunk.append(wire)
            size += len(wire)
        if chunk:
            await self._write_chunk(start, chunk, digest)

    async def _write_chunk(self, start: int, chunk: Sequence[str], digest: str) -> None:
        reply = await self._script(lua.OPEN_CHUNK, [], digest, start, *chunk)
        if reply[0] == "mismatch":
            # The campaign expired (and maybe was recreated) between two chunks.
            raise AudianError(
                f"campaign {self.campaign!r} changed in Redis while it was being opened; "
                "open it again"
            )

    async def reserve(self) -> int:
        """The next free index of the campaign, reserved for this caller's :meth:`add`
        (never handed out twice, whichever process asks)."""
        reply = await self._script(lua.RESERVE, [])
        if reply[0] == "missing":
            raise self._missing()
        return int(reply[1])

    async def add(self, index: int, request: str) -> bool:
        """Add item ``index`` (``pending``, due now) to a service campaign; returns False
        when it already exists with the same request (a repeated add changes nothing).

        An existing item with another request, or a campaign that is not there (never
        opened, or expired after it finished), is an :class:`~audian_async.AudianError`. A
        finished campaign that gets a new item loses its expiry again.
        """
        reply = await self._script(lua.ADD, [], int(index), request)
        if reply[0] == "missing":
            raise self._missing()
        if reply[0] == "conflict":
            raise AudianError(
                f"item {index} of campaign {self.campaign!r} already exists with another request"
            )
        return bool(reply[0] == "added")

    def _missing(self) -> AudianError:
        return AudianError(
            f"campaign {self.campaign!r} is not in Redis namespace {self.namespace!r} "
            "(not opened, or expired): open it first"
        )

    # --- placing -------------------------------------------------------------------------

    async def claim(
        self,
        process_id: str,
        limit: int,
        lease: float,
        pace_interval: float = 0.0,
        caller_ids: Sequence[str | int] = (),
    ) -> Claimed | NoSlot | NoCallerId | NothingDue:
        """Claim the next due item for ``process_id``, in one round trip.

        Atomically: checks that fewer than ``limit`` live-call slots of the namespace are in
        use (:class:`NoSlot` otherwise), takes the first due item (:class:`NothingDue` with
        the time until the next one otherwise), takes a slot, books the namespace's pace
        (``pace_interval`` seconds between creates; the wait is returned), and moves the item
        to ``placing`` with a new attempt, leased for ``lease`` seconds after that wait.

        ``caller_ids`` is a pool's :meth:`~._caller_ids.CallerIdPool.claim_arguments`: an
        item whose request has no ``from_`` then also takes the pool's caller ID for its
        callee (recorded as its ``caller_id``), counted on the namespace's live calls per
        caller ID, or stays due (:class:`NoCallerId`) while every one is at the cap.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValidationError("limit", f"must be a positive integer, got {limit!r}")
        lease = _positive(lease, "lease")
        pace = _ms(pace_interval)
        reply = await self._script(
            lua.CLAIM,
            [self._tag + "pace"],
            _id(process_id, "process_id"),
            limit,
            _ms(lease),
            pace,
            *(caller_ids or (0,)),
        )
        status = reply[0]
        if status == "no_slot":
            return NoSlot()
        if status == "no_caller_id":
            return NoCallerId()
        if status == "empty":
            return NothingDue(None)
        if status == "not_due":
            return NothingDue(int(reply[1]) / 1000)
        index = int(reply[1])
        return Claimed(
            index=index,
            attempt=int(reply[2]),
            record=record_of(index, str(reply[3])),
            request=str(reply[4]),
            pace_wait=int(reply[5]) / 1000,
        )

    def _decisions(
        self, decisions: RetryPolicy | Decisions, reasons: Iterable[str] | None = None
    ) -> str:
        if isinstance(decisions, RetryPolicy):
            decisions = redial_decisions(decisions, reasons)
        return _decisions_json(decisions)

    async def placed(
        self,
        process_id: str,
        index: int,
        attempt: int,
        call_id: str,
        decisions: RetryPolicy | Decisions,
        *,
        retention: float | None = None,
    ) -> Change | None:
        """The API accepted attempt ``attempt`` of item ``index`` as ``call_id``: ``live``.

        Maps the call to the item (for ``retention`` seconds, default the state's) so that a
        webhook received by any process finds it, and hands the live item to
        ``process_id``. A call id some other item or attempt already placed fails the item
        ``duplicate_call_id`` and frees its slot. A terminal event that arrived before this
        reply is applied now, which is why the redial ``decisions`` (or the policy, whose
        table is then built for every reason it redials) are needed here too; so is a
        handler's decision on the call that came before it (see :meth:`finish`), a redial
        within the policy's ``max_attempts``.

        Returns None when nothing changed: the same placement recorded before (another
        process replayed the same key), or an item no longer placing that attempt.
        """
        ttl = self.retention if retention is None else _positive(retention, "retention")
        call_id = _id(call_id, "call_id")
        keys = [self._tag + "call:" + call_id, self._tag + "early:" + call_id]
        keys.append(self._tag + "early-decision:" + call_id)
        args: list[str | int] = [process_id, int(index), int(attempt), call_id, _ms(ttl), ""]
        cap = decisions.max_attempts if isinstance(decisions, RetryPolicy) else _NO_CAP
        args += [self.digest, cap]
        reply = await self._script(lua.PLACED, keys, *args)
        if reply[0] == "decide":
            # A terminal event came first: only now are the redial decisions needed.
            args[5] = self._decisions(decisions)
            reply = await self._script(lua.PLACED, keys, *args)
        return self._change(reply)

    async def ended(
        self,
        call_id: str,
        status: CallStatus | str | None,
        reason: FailureReason | str | None,
        decisions: RetryPolicy | Decisions,
    ) -> Change | None:
        """A terminal status of ``call_id`` arrived (webhook or poll): apply it.

        Only a terminal status for the item's current call while it is ``live`` moves it:
        ``completed``, or for ``failed`` a redial (``waiting``, due after the delay
        ``decisions`` give for its reason and attempts) or ``failed``. Its slot is freed in
        the same step. The item may belong to another campaign of the namespace (its
        :attr:`Change.campaign` says which): a webhook received by any process finishes the
        item wherever it was placed.

        A call not recorded yet is kept for :meth:`placed` (for an hour); that, a duplicate,
        stale or non-terminal event return None. A non-terminal status costs no round trip.
        """
        call_id = _id(call_id, "call_id")
        known = as_status(status)
        if not is_terminal(known):
            return None
        why = "" if known is CallStatus.COMPLETED else _normal_reason(reason)
        # The campaign is the call key's, maybe not this one: only namespace keys are passed.
        reply = await self._run(
            lua.ENDED,
            [self._keys[0], self._tag + "call:" + call_id, self._tag + "early:" + call_id],
            [
                self._tag,
                known.value,
                why,
                self._decisions(decisions, [why] if why else []),
                _ms(EARLY_TTL),
                call_id,
            ],
        )
        return self._change(reply, str(reply[5]) if len(reply) > 5 else None)

    async def scheduled(self, index: int, call_id: str) -> bool:
        """The live item's call ``call_id`` waits for its scheduled time: its slot is freed
        and the item marked, so that its end frees none. False when nothing changed (already
        marked, or not the item's live call)."""
        reply = await self._script(lua.SCHEDULED, [], int(index), call_id)
        return str(reply[0]) == "ok"

    async def due(self, index: int, call_id: str) -> bool:
        """The scheduled call ``call_id`` starts: it takes a slot again, even over the
        limit. False when nothing changed (not marked, or not the item's live call)."""
        reply = await self._script(lua.DUE, [], int(index), call_id)
        return str(reply[0]) == "ok"

    async def refused(self, process_id: str, index: int, reason: str) -> Change | None:
        """The API refused the create for good (or its fate stayed unknown past its
        deadline): the ``placing`` item ``failed`` with ``reason``, its slot freed.

        None when the item is not placing or ``process_id`` no longer holds it (its lease
        was taken over: the new holder decides).
        """
        return self._change(await self._script(lua.REFUSED, [], process_id, int(index), reason))

    async def lost(self, index: int, call_id: str) -> Change | None:
        """The API does not know the live call ``call_id``: the item ``failed`` with reason
        ``lost``, never redialed, its slot freed. None unless it is the item's current call
        and the item is ``live``."""
        return self._change(await self._script(lua.LOST, [], int(index), call_id))

    async def unplaced(self, process_id: str, index: int, due_in: float = 0.0) -> Change | None:
        """Put the ``placing`` item back: ``pending`` (or ``waiting``, for a redial), due in
        ``due_in`` seconds, its slot freed, its attempt (and so its idempotency key) kept.

        For a create refused for a reason not the item's, and to hold an item until its
        calling window opens without holding a slot. None when the item is not placing or
        ``process_id`` no longer holds it.
        """
        if isinstance(due_in, bool) or not isinstance(due_in, int | float) or due_in < 0:
            raise ValidationError("due_in", f"must be a number >= 0, got {due_in!r}")
        reply = await self._script(lua.UNPLACED, [], process_id, int(index), _ms(due_in))
        return self._change(reply)

    # --- the application's decisions ----------------------------------------------------

    async def finish(self, call_id: str) -> Decided:
        """End the item of this campaign that placed ``call_id`` (a handler's
        :meth:`~audian_async.dialer.Dialer.finish`): a waiting item fails (or completes)
        now with its last call's outcome, its redial cancelled; one whose call is going on
        (or being created) ends with that call, whichever process gets its end.

        Returns whether the item was (or will be) ended by this, and the change when it
        ended now. False: the call is another campaign's, or its item has its outcome
        already. None: the call is not recorded (yet): the decision is kept for an hour,
        for :meth:`placed` to apply if the call turns out to be this campaign's; ask again
        once it is recorded for the answer.
        """
        reply = await self._script(
            lua.DECIDE, self._decision_keys(call_id), self.digest, call_id, "finish", "", 0,
            _ms(EARLY_TTL),
        )  # fmt: skip
        return self._decided(reply, ("set", "changed"))

    def _decision_keys(self, call_id: str) -> list[str]:
        call_id = _id(call_id, "call_id")
        return [self._tag + "call:" + call_id, self._tag + "early-decision:" + call_id]

    def _decided(self, reply: Sequence[Any], yes: tuple[str, ...]) -> Decided:
        if reply[0] == "early":
            return None, None
        return reply[0] in yes, self._change(reply)

    async def redial(
        self,
        call_id: str,
        delays: Mapping[str, float],
        max_attempts: int,
        not_reopened: Iterable[str] = (),
    ) -> Decided:
        """One more attempt after ``call_id``, the item's latest call (a handler's
        :meth:`~audian_async.dialer.Dialer.redial`), within ``max_attempts``.

        ``delays`` gives the seconds from the call's end to the redial by the reason it
        ended for, its ``"*"`` entry for any other reason (and for a completed call). A
        call going on keeps the decision in its record, for whichever process gets its
        end; an item with its outcome already opens again, waiting (unless its reason is
        one of ``not_reopened``). Returns whether a redial after ``call_id`` is scheduled
        (already, or now), and the change of an item opened again; None for a call not
        recorded yet, as :meth:`finish` says.
        """
        if "*" not in delays:
            raise ValidationError("delays", "needs a '*' entry")
        plan = dumps({"after": {k: _ms(v) for k, v in delays.items()}}).decode()
        reply = await self._script(
            lua.DECIDE, self._decision_keys(call_id), self.digest, call_id, "redial", plan,
            int(max_attempts), _ms(EARLY_TTL), *not_reopened,
        )  # fmt: skip
        return self._decided(reply, ("yes", "changed"))

    # --- leases --------------------------------------------------------------------------

    async def renew(self, process_id: str, lease: float, indices: Iterable[int]) -> list[int]:
        """Extend the leases of ``process_id``'s items ``indices`` by ``lease`` seconds;
        return those it no longer holds (taken over, or finished): it must not place them.

        Both placing and live items are leased: a process keeps renewing the live calls it
        polls, or another process takes them over. One round trip per thousand items."""
        lease_ms = _ms(_positive(lease, "lease"))
        process_id = _id(process_id, "process_id")
        wanted = [int(i) for i in indices]
        lost: list[int] = []
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            reply = await self._script(lua.RENEW, [], process_id, lease_ms, *chunk)
            lost.extend(int(i) for i in reply[1])
        return lost

    async def take_over(
        self, process_id: str, lease: float, max_items: int = 100
    ) -> list[TakenItem]:
        """Take up to ``max_items`` items (``placing`` or ``live``) whose lease expired (their
        process died or stalled): they are held by ``process_id`` for ``lease`` seconds, and
        keep their slots (their calls may be live, their creates in flight)."""
        lease_ms = _ms(_positive(lease, "lease"))
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValidationError("max_items", f"must be a positive integer, got {max_items!r}")
        reply = await self._script(lua.TAKE_OVER, [], process_id, lease_ms, max_items)
        return [
            TakenItem(int(index), record_of(int(index), str(raw)), str(request))
            for index, raw, request in reply[1]
        ]
