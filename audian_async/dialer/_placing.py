"""Placing calls: a pool of placer tasks, each taking a slot, an item and its create.

The create loop decides by each error's :class:`~audian_async.Disposition` alone:

* ``NOT_ACTED`` (429, 503, a request that never left): wait (Retry-After, else backoff) and
  send it again; not an attempt, not a failure.
* ``MAYBE_ACTED`` (read timeout, broken connection, 408, 500, 502, 504): the call may exist;
  keep the slot and send the same attempt with the same idempotency key, up to the
  dialer's ``create_deadline``; then hold the slot until that call must have ended and fail
  the item as ``create_unknown``.
* ``ACCOUNT`` (401, 403): no create can succeed; the campaign stops, the item stays for a
  later run.
* ``REFUSED``: the item fails with the API's error code as its reason.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

import anyio

from .._errors import (
    APIConnectionError,
    APIStatusError,
    AudianError,
    Disposition,
    PayloadTooLargeError,
    RateLimitedError,
    ValidationError,
)
from .._models import Call, CallRequest, CallStatus, is_terminal
from .._retry import backoff_delay, parse_retry_after
from .._validation import CheckedCallRequest
from ._host import Host
from ._in_flight import CreatesInFlight
from ._machine import Item, ItemState

__all__ = ["Placer"]

logger = logging.getLogger("audian_async.dialer")

UNREACHABLE_LOG_EVERY = 30.0
"""Seconds between warnings while no create can reach the API."""
_CREATE_BACKOFF_BASE, _CREATE_BACKOFF_CAP = 0.25, 10.0
"""Backoff of a create that failed without placing a call for sure (seconds, not scaled)."""


def _create_backoff(retry: int) -> float:
    """The wait before resending a create that failed without placing a call for sure."""
    return backoff_delay(min(retry, 8), base=_CREATE_BACKOFF_BASE, cap=_CREATE_BACKOFF_CAP)


def _refusal_reason(exc: AudianError) -> str:
    """The item's failure reason when the API refused its create for good."""
    if isinstance(exc, PayloadTooLargeError):
        # This request's body (tags, custom fields...) is too large, not the account's
        # fault: the item fails, the campaign goes on.
        return "payload_too_large"
    if isinstance(exc, APIStatusError):
        return exc.error or f"http_{exc.status_code}"
    return "http_0"


class _Parked:
    """A placer task waiting for its next item."""

    __slots__ = ("event", "item")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None
        self.item: Item | None = None


class _Unclear:
    """A create whose fate stayed unknown past its deadline (last sent at ``last_sent``)."""

    __slots__ = ("last_sent",)

    def __init__(self, last_sent: float) -> None:
        self.last_sent = last_sent


class Placer:
    """Hands ready items to placer tasks, each holding one live-call slot."""

    def __init__(self, session: Host) -> None:
        self.session = session
        self.coordinator = session.coordinator
        self.rate_limited = 0
        """Creates the API answered with 429 (waited out, not attempts)."""
        # Since when no create reached the API (connection refused, DNS...), and when that
        # was last logged; None while the API answers.
        self._unreachable_since: float | None = None
        self._unreachable_logged = -math.inf
        self._parked: list[_Parked] = []
        self.in_flight = CreatesInFlight()
        """Creates sent whose call is not recorded yet."""

    async def run(self) -> None:
        """Take a slot, then a ready item, and give it to a parked task or a new one."""
        session, coordinator = self.session, self.coordinator
        tg = session.task_group
        parked = self._parked
        while True:
            await coordinator.wait_ready()
            if session.fatal is not None:
                await anyio.sleep_forever()  # the campaign stopped: place nothing more
            await session.wait_unpaused()
            await coordinator.take_slot()
            usable = session.fatal is None and not session.paused
            item = await coordinator.claim() if usable else None
            if item is None:
                await coordinator.free_slot()
                continue
            if parked:
                worker = parked.pop()
                worker.item = item
                assert worker.event is not None
                worker.event.set()
            else:
                tg.start_soon(self.place_loop, item)

    async def place_loop(self, item: Item) -> None:
        """Place ``item``, then park and place the next item handed over, and so on.

        Waking a parked task costs a fraction of spawning one per call; the pool only grows
        to the most creates ever in flight at once (at most ``max_active_calls``).
        """
        worker = _Parked()
        while True:
            await self.place(item)
            del item  # parked, this task must not keep its last (finished) item alive
            worker.event = event = anyio.Event()
            self._parked.append(worker)
            await event.wait()
            assert worker.item is not None
            item, worker.item = worker.item, None

    async def place(self, item: Item) -> None:
        """Place the item's next attempt (its slot is already held) and start tracking it.

        Never turns a create that may have placed a call into a final outcome while that call
        could be live: see the module docstring for the rules.
        """
        coordinator = self.coordinator
        new_attempt = coordinator.fresh(item)
        # A create already sent (a placing item replayed) is never held back: it may have
        # placed the call. A new attempt is checked against the controls first.
        if new_attempt and not await self._cleared(item):
            return
        await coordinator.assign_caller_id(item)  # a no-op unless the pool picks one
        request, key = await coordinator.begin(item)
        if new_attempt:
            # The store must say "placing, attempt n" before the create may act: a process
            # killed after sending it then resumes the item holding its slot, and replays
            # the same key, instead of handing the slot to another item while the call is
            # live.
            await coordinator.durable()
        sent = await self._create(item, request, key, new_attempt=new_attempt)
        if isinstance(sent, _Unclear):
            await self._give_up(item, key, sent.last_sent)
        elif sent is not None:
            call, ticket = sent
            try:
                # A restored "placing" item replays a create sent by a process that died:
                # its reply is the call as first created, and the call may have ended since,
                # its webhook gone to that process. Poll it soon rather than after the whole
                # call span.
                await self._placed(item, call, poll_soon=not new_attempt)
            finally:
                self.in_flight.answered(ticket)

    async def _create(
        self,
        item: Item,
        request: CallRequest | CheckedCallRequest,
        key: str,
        *,
        new_attempt: bool,
    ) -> tuple[Call, int] | _Unclear | None:
        """Send the item's create until the API answers it: the call (with the ticket of
        its send, for :meth:`CreatesInFlight.answered` once the call is recorded), an
        unclear create given up at its deadline, or None when the item was settled (or
        left) here."""
        session, coordinator = self.session, self.coordinator
        metrics = session.metrics
        waits = unclear = 0
        deadline = last_sent = 0.0
        while True:
            if session.fatal is not None and not unclear:
                # The campaign stopped while this create waited: nothing was placed.
                await coordinator.unplaced(item)
                return None
            if unclear and anyio.current_time() >= deadline:
                return _Unclear(last_sent)
            if not await coordinator.holds(item):
                # Its lease went to another process (this one stalled or lost the shared
                # state): that process replays the same key; this one sends nothing more.
                logger.warning("item %d: lease lost; leaving it to its new holder", item.index)
                return None
            await coordinator.pace(item)
            if new_attempt and session.paused and not unclear:
                # Paused while this create waited its turn: nothing was sent that may have
                # acted, so the item waits for resume() (or the next run) like the others.
                await coordinator.unplaced(item)
                coordinator.make_ready(item)
                return None
            sent_at = anyio.current_time()
            try:
                sent = await self._send(request, key)
                self._unreachable_since = None
                if metrics is not None:
                    metrics.created(anyio.current_time() - sent_at)
            except ValidationError:
                session.settle(await coordinator.refused(item, "invalid_request"))
                return None
            except AudianError as exc:
                if metrics is not None:
                    metrics.created(anyio.current_time() - sent_at, exc)
                disposition = exc.disposition
                if isinstance(exc, APIConnectionError) and disposition is Disposition.NOT_ACTED:
                    if self._unreachable(exc):
                        # As with a bad key: keep the item for a later run, stop the campaign.
                        if not unclear:
                            await coordinator.unplaced(item)
                        session.abort(exc)
                        return None
                else:
                    self._unreachable_since = None  # the API answered
                if disposition is Disposition.NOT_ACTED:
                    # Not an attempt: the API did not act. Wait as told, then try again.
                    await anyio.sleep(self._wait_for(exc, waits))
                    waits += 1
                    continue
                if disposition is Disposition.MAYBE_ACTED:
                    # The call may have been placed: keep the slot, and repeat the SAME
                    # attempt with the SAME key (the API answers a replay with that call).
                    if not unclear:
                        deadline = sent_at + session.create_deadline
                    unclear += 1
                    last_sent = sent_at
                    logger.info("item %d: create unclear (%s); sending it again", item.index, exc)
                    await anyio.sleep(_create_backoff(unclear - 1))
                    continue
                if disposition is Disposition.ACCOUNT:
                    # No create can succeed: leave the item for a later run, stop the campaign.
                    # After an unclear create the call may be live: the item stays "placing"
                    # with its slot held, so the next run counts it and replays the key.
                    if not unclear:
                        await coordinator.unplaced(item)
                    session.abort(exc)
                    return None
                if unclear:
                    # A refusal of the replay says nothing of the first send, which may have
                    # placed the call: hold the slot until it must have ended.
                    logger.warning(
                        "item %d: create refused (%s) after an unclear send", item.index, exc
                    )
                    return _Unclear(last_sent)
                session.settle(await coordinator.refused(item, _refusal_reason(exc)))
                return None
            return sent

    async def _send(self, request: CallRequest | CheckedCallRequest, key: str) -> tuple[Call, int]:
        """Send one create; its ticket stays open until the caller recorded the call (a
        webhook that overtakes the reply may ask for the call meanwhile)."""
        ticket = self.in_flight.sent()
        try:
            return await self.session.client.calls.create(request, idempotency_key=key), ticket
        except BaseException:
            self.in_flight.answered(ticket)
            raise

    async def _cleared(self, item: Item) -> bool:
        """Whether a new attempt of ``item`` may be created now; if not, its slot is given
        back and the item is suppressed, held for its window, or left ready for resume."""
        session, coordinator = self.session, self.coordinator
        if item.request.to in session.suppression:
            await coordinator.free_slot()
            session.settle(await coordinator.suppress(item))
            return False
        if session.paused:
            await coordinator.give_back(item)
            return False
        window = session.options.window
        if window is not None:
            # No create outside the callee's calling hours (a live call is never cut off).
            now = datetime.now(UTC)
            opens = window.next_open(item.request.to, now)
            if opens > now:
                await coordinator.free_slot()
                await session.hold_for_window(item, opens)
                return False
        return True

    def _wait_for(self, exc: AudianError, waits: int) -> float:
        """How long to wait out a create the API provably did not act on."""
        delay = None
        if isinstance(exc, RateLimitedError):
            delay = exc.retry_after
        elif isinstance(exc, APIStatusError):
            delay = parse_retry_after(exc.headers.get("retry-after"))
        wait = _create_backoff(waits) if delay is None else delay
        if isinstance(exc, RateLimitedError):
            self.rate_limited += 1
            self.session.timeline.rate_limited(wait)
            if self.session.metrics is not None:
                self.session.metrics.rate_limited()
        return wait

    async def _placed(self, item: Item, call: Call, *, poll_soon: bool) -> None:
        session, coordinator = self.session, self.coordinator
        now = time.time()  # wall clock, as the state machine records it
        before = len(item.call_ids)
        transition = await coordinator.placed(item, call.call_id, now)
        if len(item.call_ids) > before:  # accepted as this item's attempt (not a replay)
            session.timeline.created(redial=before > 0)
        if item.state is ItemState.FAILED and item.reason == "duplicate_call_id":
            logger.error(
                "item %d: the API returned call %s, already tracked for another attempt or "
                "item; failing the item (is the campaign's idempotency key reused?)",
                item.index,
                call.call_id,
            )
        elif session.metrics is not None:
            session.metrics.placed()
        if transition is None and is_terminal(call.status) and item.state is ItemState.LIVE:
            # The create's reply already says the call ended.
            transition = await coordinator.ended(call.call_id, call.status, call.reason, now)
        if transition is not None:
            session.settle(transition)
        elif item.state is ItemState.LIVE:
            session.poller.track(item, call.call_id, poll_soon=poll_soon)
            if call.status == CallStatus.SCHEDULED:
                await session.until_start(item)

    def _unreachable(self, exc: APIConnectionError) -> bool:
        """A create could not reach the API: log it (rate-limited); True once nothing has
        reached it for ``create_deadline`` seconds."""
        now = anyio.current_time()
        if self._unreachable_since is None:
            self._unreachable_since = now
        if now - self._unreachable_logged >= UNREACHABLE_LOG_EVERY:
            self._unreachable_logged = now
            logger.warning(
                "campaign %s: cannot reach the API for %.0fs (%s); retrying",
                self.coordinator.name,
                now - self._unreachable_since,
                exc,
            )
        return now - self._unreachable_since >= self.session.create_deadline

    async def _give_up(self, item: Item, key: str, last_sent: float) -> None:
        """The create's fate stayed unknown past the deadline: send nothing more, hold the
        slot until any call it may have placed has ended, then fail the item."""
        hold = last_sent + self.session.poller.call_span(item.request) - anyio.current_time()
        logger.warning(
            "item %d: no answer to create %s within the deadline; holding its slot %.0fs, "
            "then failing it as create_unknown",
            item.index,
            key,
            max(hold, 0.0),
        )
        await anyio.sleep(max(hold, 0.0))
        self.session.settle(await self.coordinator.refused(item, "create_unknown"))
