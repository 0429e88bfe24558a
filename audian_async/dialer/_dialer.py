"""Dialer: the I/O shell that runs campaigns over the client, the webhook router and a store.

The rules live in :mod:`._machine` and :mod:`._policy`; this module only moves items between
the API, the router, the clock and the store:

* a *placer* takes ready items, waits for a live-call slot and the pacer, and places calls;
* a *scheduler* wakes items whose redial is due and polls calls whose terminal webhook is
  late or lost;
* a *flusher* writes changed items to the store in batches;
* the router hands terminal events in: directly when they are handled on the dialer's loop
  (the receiver served by ``serve_webhooks`` on asyncio), else through a bounded inbox that
  a drainer task empties, woken by one byte on a socket pair: the receiver's thread never
  waits for the dialer's loop.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
from anyio.abc import TaskGroup

from .._client import AsyncAudian
from .._convert import parse_call_request
from .._errors import (
    APIConnectionError,
    APIStatusError,
    AudianError,
    Disposition,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ValidationError,
)
from .._json import loads
from .._models import Call, CallRequest, CallStatus, FailureReason, is_terminal
from .._retry import backoff_delay, parse_retry_after
from .._timers import TimerHeap
from .._validation import CheckedCallRequest, validate_call_request
from ..webhooks import CallCompleted, CallFailed, EventRouter, Subscription
from ._flow import Pacer, Slots
from ._machine import CallOutcome, Campaign, CampaignReport, Item, ItemState, Step, Transition
from ._policy import RetryPolicy
from ._store import CampaignStore, SQLiteStore

__all__ = ["DEFAULT_DB_PATH", "DialHandle", "Dialer", "DialerStats"]

logger = logging.getLogger("audian_async.dialer")

DEFAULT_DB_PATH = "audian-dialer.sqlite3"
_REDIAL, _POLL = 0, 1
_EVENTS = ("call.completed", "call.failed")
# Terminal events queued by other threads; over this the sender waits for the loop instead.
MAX_INBOX = 65_536
# Consecutive 404s from polling a call after which the API is taken to have lost it.
LOST_AFTER_MISSES = 5
# Polling-only mode (no router): seconds between polls of a live call, before time_scale.
POLL_ONLY_INTERVAL = 5.0
# Seconds between warnings while no create can reach the API.
UNREACHABLE_LOG_EVERY = 30.0
# Backoff of a create that failed without a definite answer (seconds, not scaled).
_CREATE_BACKOFF_BASE, _CREATE_BACKOFF_CAP = 0.25, 10.0


@attrs.frozen
class DialerStats:
    """A snapshot of a running campaign, for progress displays."""

    campaign: str
    total: int
    pending: int
    placing: int
    live: int
    waiting: int
    completed: int
    failed: int
    attempts: int
    rate_limited: int
    polls: int
    peak_live: int

    @property
    def done(self) -> int:
        """Items with an outcome."""
        return self.completed + self.failed


class DialHandle:
    """The outcome-to-be of one submitted call: ``outcome = await handle``.

    The handle keeps its item: a long-running dialer forgets finished items (the store keeps
    them), so the outcome lives as long as the handle does.
    """

    __slots__ = ("_item", "_session")

    def __init__(self, session: _Session, item: Item) -> None:
        self._session = session
        self._item = item

    @property
    def index(self) -> int:
        """The item's index in the campaign."""
        return self._item.index

    def __repr__(self) -> str:
        return f"DialHandle(index={self.index})"

    async def wait(self) -> CallOutcome:
        """Wait until the item is completed or failed for good; return its outcome.

        Raises the dialer's error if it stopped for good first (e.g. the API refused the
        account's key), or :class:`RuntimeError` if it stopped before the outcome.
        """
        return await self._session.wait_item(self._item)

    def __await__(self) -> Generator[Any, None, CallOutcome]:
        return self.wait().__await__()


class Dialer:
    """Place many calls with redials, never over ``max_active_calls`` live calls.

    ``client`` places and polls calls; ``router`` (an ``EventRouter``, or ``None`` to rely on
    polling alone) delivers ``call.completed``/``call.failed`` webhooks, and the dialer's own
    handlers sit beside the application's. ``retry`` decides redials; ``store`` keeps the
    campaign across restarts (an embedded SQLite file, ``audian-dialer.sqlite3``, unless
    given). ``calls_per_second`` paces creates evenly.

    A call whose terminal webhook has not come ``poll_after`` seconds after it was placed is
    polled with ``client.calls.get`` every ``poll_interval`` seconds. With a router, by
    default ``poll_after`` is the call's ``timeout`` + ``max_duration`` (API defaults 30 and
    3600) + ``grace`` and ``poll_interval`` is ``grace``; without one (polling only) the first
    poll comes after the ring ``timeout`` and the next every 5 seconds. ``time_scale``
    multiplies these and every redial delay: against a sandbox running at ``speed=50``, pass
    ``time_scale=1/50``. A call the API answers 404 for five polls in a row, or that cannot
    be polled until it must have ended, fails with reason ``"lost"`` (not redialed).

    A create that fails without a definite answer (a timeout, a broken connection, 500, 502,
    504) may have placed the call: the item keeps its slot and the create is sent again with
    the same idempotency key (capped backoff) for up to ``create_deadline`` seconds. If the
    API never answers by then, the item keeps its slot until any call that create could have
    placed must have ended (``timeout`` + ``max_duration`` + ``grace``), then fails with
    reason ``"create_unknown"`` (not redialed). A create that provably did nothing (429, 503,
    connection refused) is waited out and sent again. A 401, or a 403 other than
    ``unauthorized_caller_id``, stops the campaign: :meth:`run` raises it and the items not
    placed stay pending in the store, for a later run. So does an API that no
    create could reach (connection refused, DNS failure; logged at WARNING meanwhile) for
    ``create_deadline`` seconds: :meth:`run` raises the :class:`APIConnectionError`.

    For a finite list::

        report = await Dialer(client, router, max_active_calls=50).run(requests, campaign="w1")

    In a service::

        async with Dialer(client, router, campaign="reminders") as dialer:
            handle = await dialer.submit(request)
            outcome = await handle

    Re-running a campaign name resumes it: finished items are not dialed again, live calls
    are polled rather than redialed, and scheduled redials keep their time.
    """

    def __init__(
        self,
        client: AsyncAudian,
        router: EventRouter | None = None,
        *,
        max_active_calls: int = 100,
        calls_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        store: CampaignStore | None = None,
        campaign: str | None = None,
        poll_after: float | None = None,
        poll_interval: float | None = None,
        grace: float = 60.0,
        time_scale: float = 1.0,
        flush_interval: float = 0.05,
        create_deadline: float = 600.0,
        max_pending: int = 100_000,
    ) -> None:
        if isinstance(max_active_calls, bool) or not isinstance(max_active_calls, int):
            raise ValidationError("max_active_calls", "must be an integer")
        if max_active_calls < 1:
            raise ValidationError("max_active_calls", f"must be >= 1, got {max_active_calls}")
        if calls_per_second is not None:
            _positive(calls_per_second, "calls_per_second")
        for name, value in (
            ("poll_after", poll_after),
            ("poll_interval", poll_interval),
            ("grace", grace),
            ("time_scale", time_scale),
            ("flush_interval", flush_interval),
            ("create_deadline", create_deadline),
        ):
            if value is not None:
                _positive(value, name, allow_zero=name in ("grace", "flush_interval"))
        if router is not None and not isinstance(router, EventRouter):
            raise ValidationError("router", f"must be an EventRouter or None, got {router!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry", "must be a RetryPolicy")
        if campaign is not None:
            _check_campaign(campaign)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int):
            raise ValidationError("max_pending", f"must be an integer, got {max_pending!r}")
        if max_pending < 1:
            raise ValidationError("max_pending", f"must be >= 1, got {max_pending}")
        self.client = client
        self.router = router
        self.max_active_calls = max_active_calls
        self.calls_per_second = calls_per_second
        self.retry = retry or RetryPolicy()
        self.store: CampaignStore = store if store is not None else SQLiteStore(DEFAULT_DB_PATH)
        self.campaign = campaign or f"campaign-{uuid.uuid4().hex[:12]}"
        self.poll_after = poll_after
        self.poll_interval = poll_interval
        self.grace = grace
        self.time_scale = time_scale
        self.flush_interval = flush_interval
        self.create_deadline = create_deadline
        self.max_pending = max_pending
        self._open = False
        self._session: _Session | None = None

    def __repr__(self) -> str:
        return (
            f"Dialer(campaign={self.campaign!r}, max_active_calls={self.max_active_calls}, "
            f"calls_per_second={self.calls_per_second!r}, store={self.store!r})"
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start(self.campaign, keep_finished=False)
        return self

    async def _start(self, campaign: str, *, keep_finished: bool) -> _Session:
        if self._session is not None:
            raise RuntimeError("this Dialer is already running")
        session = _Session(self, campaign, keep_finished=keep_finished)
        await session.start()
        self._session = session
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.stop(exc_type, exc, tb)
            if exc is None and session.fatal is not None:
                raise session.fatal

    def _require(self) -> _Session:
        if self._session is None:
            raise RuntimeError("use 'async with dialer:' (or dialer.run()) first")
        return self._session

    # --- public operations -------------------------------------------------------------------

    async def submit(self, request: CallRequest | CheckedCallRequest) -> DialHandle:
        """Queue one call (validated now, unless already checked); returns a handle to await
        its outcome.

        Waits while ``max_pending`` items are unfinished, so a producer cannot outrun the
        dialer without bound. The item is in the store before its first create, so after a
        crash the next session resumes it (with its index and idempotency keys): do not
        submit it again. Finished items are dropped from memory (the store keeps them); the
        handle keeps its own outcome.
        """
        session = self._require()
        checked = validate_call_request(request, self.client.default_region)
        await session.wait_for_room()
        item = session.add(session.next_index, checked, ready=False)
        try:
            await session.flush()
        except BaseException:
            # Not stored, so never placed: a later resume would not know it either.
            session.discard(item)
            raise
        session.ready_item(item)
        return DialHandle(session, item)

    async def join(self) -> None:
        """Wait until every item of the campaign has its outcome.

        Raises the dialer's error if it stopped for good (e.g. the API refused the account's
        key), or :class:`RuntimeError` if it stopped first.
        """
        await self._require().join()

    def stats(self) -> DialerStats:
        """Progress counters of the running campaign."""
        return self._require().stats()

    async def run(
        self,
        requests: Iterable[CallRequest | CheckedCallRequest],
        *,
        campaign: str | None = None,
    ) -> CampaignReport:
        """Place every request (with redials) and return the :class:`CampaignReport`.

        All requests are validated before anything is dialed (errors name
        ``requests[i].field``). With the name of an interrupted campaign, it resumes.
        """
        items = list(requests)
        checked = []
        for i, request in enumerate(items):
            try:
                checked.append(validate_call_request(request, self.client.default_region))
            except ValidationError as exc:
                raise exc.at(f"requests[{i}]") from None
        if campaign is not None:
            _check_campaign(campaign)
        session = await self._start(campaign or self.campaign, keep_finished=True)
        try:
            for i, request in enumerate(checked):
                session.attach(i, request)
            # Every item is in the store before the first create gets far.
            await session.flush()
            await session.join()
            report = session.report(range(len(checked)))
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await self.__aexit__(None, None, None)
        return report


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


def _positive(value: object, field: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(field, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        raise ValidationError(field, f"must be a positive finite number, got {value!r}")
    return float(value)


def _check_campaign(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValidationError("campaign", "must be a non-empty string of at most 200 characters")


class _Parked:
    """A placer task waiting for its next item."""

    __slots__ = ("event", "item")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None
        self.item: Item | None = None


class _Session:
    """One ``async with dialer:`` span: the machine, the task group and the timers."""

    def __init__(self, dialer: Dialer, campaign: str, *, keep_finished: bool) -> None:
        self.d = dialer
        self.name = campaign
        # run() reports every outcome; a service forgets finished items (the store has them).
        self.keep_finished = keep_finished
        self.policy = dialer.retry
        if dialer.time_scale != 1.0:
            self.policy = self.policy.scaled(dialer.time_scale)
        self.machine = Campaign(campaign, self.policy)
        # Set when the account cannot place calls (401, 403, an unreachable API): it stops.
        self.fatal: AudianError | None = None
        self.slots = Slots(dialer.max_active_calls)
        self.pacer = Pacer(dialer.calls_per_second) if dialer.calls_per_second else None
        self.ready: deque[Item] = deque()
        self.ready_wake = anyio.Event()
        # (kind, item index, call_id): no Item, so a timer due in an hour does not keep a
        # finished (forgotten) item in memory; the item is looked up when it is due.
        self.timers: TimerHeap[tuple[int, int, str]] = TimerHeap()
        self.timer_wake = anyio.Event()
        self.dirty: dict[int, Item] = {}
        # Group commit: snapshots of ``dirty`` taken so far, the latest one saved, and the
        # event set (then replaced) each time a snapshot is saved. One flush at a time.
        self.flush_seq = 0
        self.committed_seq = 0
        self.committed = anyio.Event()
        self.flush_lock = anyio.Lock()
        self.waiters: dict[int, anyio.Event] = {}
        self.idle = anyio.Event()
        self.room = anyio.Event()
        self.next_index = 0
        self.rate_limited = 0
        # Since when no create reached the API (connection refused, DNS...), and when that
        # was last logged; None while the API answers.
        self.unreachable_since: float | None = None
        self.unreachable_logged = -math.inf
        self.polls = 0
        self.poll_limiter = anyio.CapacityLimiter(32)
        self.parked: list[_Parked] = []
        self.tg: TaskGroup | None = None
        self.token: Any = None
        self.thread = 0
        self.handlers: list[Subscription] = []
        self.open = False
        # Events from other threads: (call_id, status, reason), and the wake-up socket pair.
        self.inbox: deque[tuple[str, CallStatus, FailureReason | str | None]] = deque()
        self.signalled = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    # --- start / stop ----------------------------------------------------------------------

    async def start(self) -> None:
        d = self.d
        self.token = anyio.lowlevel.current_token()
        self.thread = threading.get_ident()
        try:
            await d.store.open()
        except BaseException:
            self._close_wakeup()
            raise
        try:
            nonce = await d.store.nonce(self.name, secrets.token_hex(6))
            self.machine = Campaign(self.name, self.policy, nonce)
            records = await d.store.load(self.name)
            region = d.client.default_region
            for record in records:
                if record.request is None:
                    continue
                request: CallRequest | CheckedCallRequest
                request = parse_call_request(loads(record.request))
                # A stored request that no longer passes validation is placed unchecked:
                # the client refuses it as before, and the item fails as invalid_request.
                with contextlib.suppress(ValidationError):
                    request = validate_call_request(request, region)
                self.machine.restore(record, request)
                self.next_index = max(self.next_index, record.index + 1)
            self.tg = anyio.create_task_group()
            await self.tg.__aenter__()
        except BaseException:
            self._close_wakeup()
            await d.store.aclose()
            raise
        self.open = True
        self.tg.start_soon(self._placer)
        self.tg.start_soon(self._scheduler)
        self.tg.start_soon(self._flusher)
        self.tg.start_soon(self._drain_inbox)
        self._resume()
        self._register()
        if records:
            logger.info(
                "campaign %s resumed: %d items, %d unfinished",
                self.name,
                self.machine.total,
                self.machine.unfinished,
            )

    def _resume(self) -> None:
        now_wall, now = time.time(), anyio.current_time()
        for item in list(self.machine.items.values()):
            state = item.state
            if state.is_final:
                if not self.keep_finished:
                    self.machine.forget(item)
            elif state is ItemState.LIVE:
                # Its terminal webhook may have gone to the process that died: poll it now.
                self.slots.occupy()
                item.ends_by = now + self._call_span(item.request)
                self._schedule(now, _POLL, item, item.call_ids[-1])
            elif state is ItemState.PLACING:
                # The create may or may not have been acted on; repeat it with the same key.
                self.slots.occupy()
                assert self.tg is not None
                self.tg.start_soon(self._place_loop, item)
            elif state is ItemState.WAITING:
                at = now + max(0.0, (item.next_at or now_wall) - now_wall)
                self._schedule(at, _REDIAL, item, "")
            elif state is ItemState.PENDING:
                self._make_ready(item)
        if self.machine.unfinished == 0:
            self.idle.set()

    def _register(self) -> None:
        router = self.d.router
        if router is not None:
            # Quick and non-blocking (it hops to our loop), so it must not go to a thread.
            self.handlers.append(router.add(self._on_event, *_EVENTS, in_thread=False))

    def _unregister(self) -> None:
        for subscription in self.handlers:
            subscription.cancel()
        self.handlers.clear()

    async def stop(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._unregister()
        self._take_inbox()  # events already received still count
        self.open = False
        self._wake_all()  # join(), wait_for_room() and handles raise instead of hanging
        assert self.tg is not None
        self.tg.cancel_scope.cancel()
        try:
            # The body's own exception propagates from the caller unwrapped (passing it in
            # would wrap it in an ExceptionGroup); a crashed child task still raises here.
            await self.tg.__aexit__(None, None, None)
        finally:
            self._close_wakeup()
            with anyio.CancelScope(shield=True):
                try:
                    await self._flush()
                finally:
                    await self.d.store.aclose()
            for event in self.waiters.values():
                event.set()

    # --- items ---------------------------------------------------------------------------------

    def add(self, index: int, request: CheckedCallRequest, *, ready: bool = True) -> Item:
        item = self.machine.add(index, request)
        self.next_index = max(self.next_index, index + 1)
        self.idle = anyio.Event() if self.idle.is_set() else self.idle
        self._mark(item)
        if ready:
            self._make_ready(item)
        return item

    def discard(self, item: Item) -> None:
        """Drop an item added but never stored nor placed (its submit failed)."""
        if self.dirty.get(item.index) is item:
            del self.dirty[item.index]
        self.machine.discard(item)
        if self.machine.unfinished == 0:
            self.idle.set()
        if not self.room.is_set():
            self.room.set()

    def ready_item(self, item: Item) -> None:
        """Let the placer have an item added with ``ready=False``."""
        if item.state is ItemState.PENDING:
            self._make_ready(item)

    def _wake_all(self) -> None:
        self.idle.set()
        self.room.set()
        for event in self.waiters.values():
            event.set()

    def _check_running(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if not self.open:
            raise RuntimeError("the dialer stopped")

    def _abort(self, exc: AudianError) -> None:
        """The account cannot place calls: stop placing, and make every waiter raise."""
        if self.fatal is None:
            logger.error("campaign %s stopped: %s", self.name, exc)
            self.fatal = exc
        self._wake_all()

    def attach(self, index: int, request: CheckedCallRequest) -> None:
        """Add item ``index`` of a run, or check that the resumed campaign holds it."""
        existing = self.machine.items.get(index)
        if existing is None:
            self.add(index, request)
            return
        given = request.request
        if existing.request.to != given.to or existing.request.from_ != given.from_:
            raise AudianError(
                f"campaign {self.name!r} item {index} was {existing.request.to}, not "
                f"{given.to}: resume a campaign with the same requests, or use a new name"
            )

    async def wait_for_room(self) -> None:
        self._check_running()
        while self.machine.unfinished >= self.d.max_pending:
            if self.room.is_set():
                self.room = anyio.Event()
            await self.room.wait()
            self._check_running()

    async def join(self) -> None:
        self._check_running()
        while self.machine.unfinished:
            if self.idle.is_set():
                self.idle = anyio.Event()
            await self.idle.wait()
            self._check_running()

    async def wait_item(self, item: Item) -> CallOutcome:
        while not item.state.is_final:
            self._check_running()
            event = self.waiters.get(item.index)
            if event is None:
                event = self.waiters[item.index] = anyio.Event()
            await event.wait()
        return item.outcome()

    def report(self, indices: Iterable[int]) -> CampaignReport:
        return CampaignReport.build(
            self.name,
            self.machine.outcomes(indices),
            rate_limited=self.rate_limited,
            polls=self.polls,
        )

    def stats(self) -> DialerStats:
        counts = self.machine.counts
        return DialerStats(
            campaign=self.name,
            total=self.machine.total,
            pending=counts[ItemState.PENDING],
            placing=counts[ItemState.PLACING],
            live=counts[ItemState.LIVE],
            waiting=counts[ItemState.WAITING],
            completed=counts[ItemState.COMPLETED],
            failed=counts[ItemState.FAILED],
            attempts=self.machine.attempts,
            rate_limited=self.rate_limited,
            polls=self.polls,
            peak_live=self.slots.peak,
        )

    def _mark(self, item: Item) -> None:
        self.dirty[item.index] = item

    def _make_ready(self, item: Item) -> None:
        self.ready.append(item)
        self.ready_wake.set()

    def _schedule(self, at: float, kind: int, item: Item, call_id: str) -> None:
        if self.timers.push(at, (kind, item.index, call_id)):
            self.timer_wake.set()

    def _after(self, transition: Transition | None) -> None:
        """Act on a transition out of ``live``/``placing``: free the slot, then redial or
        finish."""
        if transition is None:
            return
        item = transition.item
        self.slots.release()
        self._mark(item)
        if transition.step is Step.REDIAL:
            self._schedule(anyio.current_time() + transition.delay, _REDIAL, item, "")
            return
        event = self.waiters.pop(item.index, None)
        if event is not None:
            event.set()
        if not self.keep_finished:
            self.machine.forget(item)  # handles keep their item; the store has it
        if not self.room.is_set():
            self.room.set()
        if self.machine.unfinished == 0:
            self.idle.set()

    # --- events in -------------------------------------------------------------------------

    def _on_event(self, event: CallCompleted | CallFailed) -> None:
        """Router handler for call.completed / call.failed; may run on another thread."""
        if not self.open:
            return
        call_id = event.call_id
        if not call_id:
            return
        status = CallStatus.COMPLETED
        reason: FailureReason | str | None = None
        if isinstance(event, CallFailed):
            status, reason = CallStatus.FAILED, event.reason
        if threading.get_ident() == self.thread:
            self._terminal(call_id, status, reason)
            return
        if len(self.inbox) >= MAX_INBOX:  # the loop lags far behind: wait for it instead
            # If the dialer stopped meanwhile the store still says "live", so it is polled.
            with contextlib.suppress(RuntimeError, anyio.RunFinishedError):
                anyio.from_thread.run_sync(
                    self._terminal, call_id, status, reason, token=self.token
                )
            return
        self.inbox.append((call_id, status, reason))
        if not self.signalled:
            self.signalled = True
            # A full buffer means a wake-up is pending anyway; a closed one, a stopped dialer.
            with contextlib.suppress(OSError):
                self.wake_w.send(b"\0")

    async def _drain_inbox(self) -> None:
        while True:
            await anyio.wait_readable(self.wake_r)
            with contextlib.suppress(BlockingIOError):
                self.wake_r.recv(512)
            # Reset before draining: an event queued from now on sends a new wake-up.
            self.signalled = False
            self._take_inbox()

    def _take_inbox(self) -> None:
        inbox = self.inbox
        while inbox:
            self._terminal(*inbox.popleft())

    def _close_wakeup(self) -> None:
        self.wake_w.close()
        self.wake_r.close()

    def _terminal(
        self, call_id: str, status: CallStatus | str | None, reason: FailureReason | str | None
    ) -> None:
        if self.open:
            self._after(self.machine.terminal(call_id, status, reason, time.time()))

    # --- loops -----------------------------------------------------------------------------

    async def _placer(self) -> None:
        assert self.tg is not None
        parked = self.parked
        while True:
            while not self.ready or self.fatal is not None:
                self.ready_wake = anyio.Event()
                await self.ready_wake.wait()
            await self.slots.acquire()
            if self.fatal is not None or not self.ready:
                self.slots.release()
                continue
            item = self.ready.popleft()
            if parked:
                worker = parked.pop()
                worker.item = item
                assert worker.event is not None
                worker.event.set()
            else:
                self.tg.start_soon(self._place_loop, item)

    async def _place_loop(self, item: Item) -> None:
        """Place ``item``, then park and place the next item handed over, and so on.

        Waking a parked task costs a fraction of spawning one per call; the pool only grows
        to the most creates ever in flight at once (at most ``max_active_calls``).
        """
        worker = _Parked()
        while True:
            await self._place(item)
            del item  # parked, this task must not keep its last (finished) item alive
            worker.event = event = anyio.Event()
            self.parked.append(worker)
            await event.wait()
            assert worker.item is not None
            item, worker.item = worker.item, None

    async def _scheduler(self) -> None:
        assert self.tg is not None
        timers = self.timers
        while True:
            now = anyio.current_time()
            for _, (kind, index, call_id) in timers.pop_due(now):
                if kind == _REDIAL:
                    item = self.machine.items.get(index)
                    if item is not None and item.state is ItemState.WAITING:
                        self._make_ready(item)
                    continue
                # Gone (finished and forgotten) or moved on: nothing to poll.
                item = self.machine.item_for(call_id)
                if item is None or item.state is not ItemState.LIVE:
                    continue
                if item.call_ids[-1] == call_id:
                    self.tg.start_soon(self._poll, item, call_id)
            self.timer_wake = anyio.Event()
            due = timers.next_due
            with anyio.move_on_after(math.inf if due is None else due - now):
                await self.timer_wake.wait()

    async def _flusher(self) -> None:
        failures = 0
        while True:
            await anyio.sleep(self.d.flush_interval)
            try:
                await self._flush()
            except Exception as exc:  # kept dirty: the next flush writes it again
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning(
                        "campaign %s: store write failed %d time(s) in a row (%s); retrying",
                        self.name,
                        failures,
                        exc,
                    )
            else:
                failures = 0

    async def _flush(self) -> None:
        async with self.flush_lock:
            if not self.dirty:
                return
            items = list(self.dirty.values())
            self.dirty.clear()
            self.flush_seq += 1
            seq = self.flush_seq
            records = [self.machine.record(item) for item in items]
            stored = [item.stored for item in items]
            for item in items:
                item.stored = True
            try:
                with anyio.CancelScope(shield=True):
                    await self.d.store.save(self.name, records)
            except BaseException:
                # Nothing of this batch is known to be saved: write it again next time, with
                # the requests the store may still lack.
                for item, was_stored in zip(items, stored, strict=True):
                    item.stored = was_stored
                    self.dirty.setdefault(item.index, item)
                raise
            # Flushes run one at a time, so every snapshot up to ``seq`` is now saved.
            self.committed_seq = seq
            committed, self.committed = self.committed, anyio.Event()
            committed.set()

    async def _durable(self) -> None:
        """Wait until every item marked so far is in the store: the next batched flush
        saves it (group commit), so this costs latency, not writes."""
        # Items marked now go into the next snapshot; a failed one puts them back in dirty,
        # so the snapshot after it carries them.
        needed = self.flush_seq + 1
        while self.committed_seq < needed:
            await self.committed.wait()

    async def flush(self) -> None:
        """Write every changed item to the store now."""
        await self._flush()

    # --- I/O per item ----------------------------------------------------------------------

    def _poll_after(self, request: CallRequest) -> float:
        d = self.d
        if d.poll_after is not None:
            return d.poll_after
        if d.router is None:
            # No webhooks will come: ask soon after the ring timeout, when most calls have
            # either failed or been answered.
            return request.ring_timeout * d.time_scale
        seconds = request.ring_timeout + request.duration_limit + d.grace
        return seconds * d.time_scale

    def _poll_interval(self) -> float:
        d = self.d
        if d.poll_interval is not None:
            return d.poll_interval
        if d.router is None:
            return POLL_ONLY_INTERVAL * d.time_scale
        return max(d.grace, 1.0) * d.time_scale

    def _call_span(self, request: CallRequest) -> float:
        """Seconds from now by which a call of ``request`` placed now must have ended."""
        d = self.d
        seconds = request.ring_timeout + request.duration_limit + d.grace
        if request.scheduled_for is not None:
            seconds += max(0.0, request.scheduled_for.timestamp() - time.time()) / d.time_scale
        return seconds * d.time_scale

    async def _place(self, item: Item) -> None:
        """Place the item's next attempt (its slot is already held) and start tracking it.

        Never turns a create that may have placed a call into a final outcome while that call
        could be live: see :class:`Dialer` for the rules.
        """
        new_attempt = item.state is not ItemState.PLACING
        request, key = self.machine.start_attempt(item)
        if new_attempt:
            # The store must say "placing, attempt n" before the create may act: a process
            # killed after sending it then resumes the item holding its slot, and replays
            # the same key, instead of handing the slot to another item while the call is
            # live.
            self._mark(item)
            await self._durable()
        create = self.d.client.calls.create
        waits = unclear = 0
        deadline = last_sent = 0.0
        while True:
            if self.fatal is not None and not unclear:
                # The campaign stopped while this create waited: nothing was placed.
                if self.machine.unplaced(item):
                    self._mark(item)
                    self.slots.release()
                return
            if unclear and anyio.current_time() >= deadline:
                await self._give_up_create(item, key, last_sent)
                return
            if self.pacer is not None:
                await self.pacer.wait()
            sent_at = anyio.current_time()
            try:
                call = await create(request, idempotency_key=key)
                self.unreachable_since = None
            except ValidationError:
                self._after(self.machine.rejected(item, "invalid_request"))
                return
            except AudianError as exc:
                disposition = exc.disposition
                if isinstance(exc, APIConnectionError) and disposition is Disposition.NOT_ACTED:
                    if self._unreachable(exc):
                        # As with a bad key: keep the item for a later run, stop the campaign.
                        if not unclear and self.machine.unplaced(item):
                            self._mark(item)
                            self.slots.release()
                        self._abort(exc)
                        return
                else:
                    self.unreachable_since = None  # the API answered
                if disposition is Disposition.NOT_ACTED:
                    # Not an attempt: the API did not act. Wait as told, then try again.
                    delay = None
                    if isinstance(exc, RateLimitedError):
                        self.rate_limited += 1
                        delay = exc.retry_after
                    elif isinstance(exc, APIStatusError):
                        delay = parse_retry_after(exc.headers.get("retry-after"))
                    if delay is None:
                        delay = _create_backoff(waits)
                    waits += 1
                    await anyio.sleep(delay)
                    continue
                if disposition is Disposition.MAYBE_ACTED:
                    # The call may have been placed: keep the slot, and repeat the SAME
                    # attempt with the SAME key (the API answers a replay with that call).
                    if not unclear:
                        deadline = sent_at + self.d.create_deadline
                    unclear += 1
                    last_sent = sent_at
                    logger.info("item %d: create unclear (%s); sending it again", item.index, exc)
                    await anyio.sleep(_create_backoff(unclear - 1))
                    continue
                if disposition is Disposition.ACCOUNT:
                    # No create can succeed: leave the item for a later run, stop the campaign.
                    # After an unclear create the call may be live: the item stays "placing"
                    # with its slot held, so the next run counts it and replays the key.
                    if not unclear and self.machine.unplaced(item):
                        self._mark(item)
                        self.slots.release()
                    self._abort(exc)
                    return
                if unclear:
                    # A refusal of the replay says nothing of the first send, which may have
                    # placed the call: hold the slot until it must have ended.
                    logger.warning(
                        "item %d: create refused (%s) after an unclear send", item.index, exc
                    )
                    await self._give_up_create(item, key, last_sent)
                    return
                self._after(self.machine.rejected(item, _refusal_reason(exc)))
                return
            break
        # A restored "placing" item replays a create sent by a process that died: its reply
        # is the call as first created, and the call may have ended since, its webhook
        # gone to that process. Poll it soon rather than after the whole call span.
        self._placed(item, call, poll_soon=not new_attempt)

    def _unreachable(self, exc: APIConnectionError) -> bool:
        """A create could not reach the API: log it (rate-limited); True once nothing has
        reached it for ``create_deadline`` seconds."""
        now = anyio.current_time()
        if self.unreachable_since is None:
            self.unreachable_since = now
        if now - self.unreachable_logged >= UNREACHABLE_LOG_EVERY:
            self.unreachable_logged = now
            logger.warning(
                "campaign %s: cannot reach the API for %.0fs (%s); retrying",
                self.name,
                now - self.unreachable_since,
                exc,
            )
        return now - self.unreachable_since >= self.d.create_deadline

    async def _give_up_create(self, item: Item, key: str, last_sent: float) -> None:
        """The create's fate stayed unknown past the deadline: send nothing more, hold the
        slot until any call it may have placed has ended, then fail the item."""
        hold = last_sent + self._call_span(item.request) - anyio.current_time()
        logger.warning(
            "item %d: no answer to create %s within the deadline; holding its slot %.0fs, "
            "then failing it as create_unknown",
            item.index,
            key,
            max(hold, 0.0),
        )
        await anyio.sleep(max(hold, 0.0))
        self._after(self.machine.rejected(item, "create_unknown"))

    def _placed(self, item: Item, call: Call, *, poll_soon: bool = False) -> None:
        transition = self.machine.placed(item, call.call_id, time.time())
        self._mark(item)
        if item.state is ItemState.FAILED and item.reason == "duplicate_call_id":
            logger.error(
                "item %d: the API returned call %s, already tracked for another attempt or "
                "item; failing the item (is the campaign's idempotency key reused?)",
                item.index,
                call.call_id,
            )
        if transition is None and is_terminal(call.status) and item.state is ItemState.LIVE:
            transition = self.machine.terminal(call.call_id, call.status, call.reason, time.time())
        if transition is not None:
            self._after(transition)
        elif item.state is ItemState.LIVE:
            now = anyio.current_time()
            item.misses = 0
            item.ends_by = now + self._call_span(item.request)
            wait = self._poll_after(item.request)
            if poll_soon:
                wait = min(wait, self._poll_interval())
            self._schedule(now + wait, _POLL, item, call.call_id)

    async def _poll(self, item: Item, call_id: str) -> None:
        async with self.poll_limiter:
            if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
                return
            self.polls += 1
            try:
                call: Call | None = await self.d.client.calls.get(call_id)
            except NotFoundError:
                call = None
                item.misses += 1
            except AudianError as exc:
                logger.info("polling %s failed (%s); trying again later", call_id, exc)
                call = None
            if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
                return  # a webhook won the race
            if call is not None:
                item.misses = 0
                if is_terminal(call.status):
                    self._terminal(call_id, call.status, call.reason)
                    return
            elif item.misses >= LOST_AFTER_MISSES or anyio.current_time() >= item.ends_by:
                # The API does not know the call, or could not tell us about it until it must
                # have ended: the slot is free either way. Not redialed (it may have rung).
                logger.warning("call %s of item %d is lost; failing the item", call_id, item.index)
                self._after(self.machine.lost(item, call_id))
                return
            self._schedule(anyio.current_time() + self._poll_interval(), _POLL, item, call_id)
