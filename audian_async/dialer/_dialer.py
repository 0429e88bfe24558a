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
import heapq
import logging
import math
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
    NotFoundError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from .._json import loads
from .._models import Call, CallRequest, CallStatus
from .._retry import backoff_delay
from .._validation import validate_call_request
from ._flow import Pacer, Slots
from ._machine import CallOutcome, Campaign, CampaignReport, Item, ItemState, Step, Transition
from ._policy import RetryPolicy
from ._store import CampaignStore, SQLiteStore

__all__ = ["DEFAULT_DB_PATH", "DialHandle", "Dialer", "DialerStats"]

logger = logging.getLogger("audian_async.dialer")

DEFAULT_DB_PATH = "audian-dialer.sqlite3"
_REDIAL, _POLL = 0, 1
_TERMINAL = frozenset({CallStatus.COMPLETED.value, CallStatus.FAILED.value})
_EVENTS = ("call.completed", "call.failed")
# Terminal events queued by other threads; over this the sender waits for the loop instead.
MAX_INBOX = 65_536


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
    """The outcome-to-be of one submitted call: ``outcome = await handle``."""

    __slots__ = ("_dialer", "index")

    def __init__(self, dialer: Dialer, index: int) -> None:
        self._dialer = dialer
        self.index = index

    def __repr__(self) -> str:
        return f"DialHandle(index={self.index})"

    async def wait(self) -> CallOutcome:
        """Wait until the item is completed or failed for good; return its outcome."""
        return await self._dialer._wait_item(self.index)

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
    polled with ``client.calls.get`` every ``poll_interval`` seconds. By default
    ``poll_after`` is the call's ``timeout`` + ``max_duration`` (API defaults 30 and 3600)
    + ``grace``. ``time_scale`` multiplies that and every redial delay: against a sandbox
    running at ``speed=50``, pass ``time_scale=1/50``.

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
        router: Any = None,
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
        max_create_failures: int = 8,
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
        ):
            if value is not None:
                _positive(value, name, allow_zero=name in ("grace", "flush_interval"))
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError("retry", "must be a RetryPolicy")
        if campaign is not None:
            _check_campaign(campaign)
        if max_create_failures < 1:
            raise ValidationError("max_create_failures", "must be >= 1")
        if max_pending < 1:
            raise ValidationError("max_pending", "must be >= 1")
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
        self.max_create_failures = max_create_failures
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
        if self._session is not None:
            raise RuntimeError("this Dialer is already running")
        session = _Session(self)
        await session.start()
        self._session = session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.stop(exc_type, exc, tb)

    def _require(self) -> _Session:
        if self._session is None:
            raise RuntimeError("use 'async with dialer:' (or dialer.run()) first")
        return self._session

    # --- public operations -------------------------------------------------------------------

    async def submit(self, request: CallRequest) -> DialHandle:
        """Queue one call (validated now); returns a handle to await its outcome.

        Waits while ``max_pending`` items are unfinished, so a producer cannot outrun the
        dialer without bound.
        """
        session = self._require()
        checked = validate_call_request(request, self.client.default_region)
        await session.wait_for_room()
        index = session.next_index
        session.add(index, checked)
        return DialHandle(self, index)

    async def join(self) -> None:
        """Wait until every item of the campaign has its outcome."""
        await self._require().join()

    def stats(self) -> DialerStats:
        """Progress counters of the running campaign."""
        return self._require().stats()

    async def run(
        self, requests: Iterable[CallRequest], *, campaign: str | None = None
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
            self.campaign = campaign
        async with self:
            session = self._require()
            for i, request in enumerate(checked):
                session.attach(i, request)
            await session.join()
            return session.report(range(len(checked)))

    async def _wait_item(self, index: int) -> CallOutcome:
        return await self._require().wait_item(index)


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

    def __init__(self, dialer: Dialer) -> None:
        self.d = dialer
        policy = dialer.retry
        if dialer.time_scale != 1.0:
            policy = policy.scaled(dialer.time_scale)
        self.machine = Campaign(dialer.campaign, policy)
        self.slots = Slots(dialer.max_active_calls)
        self.pacer = Pacer(dialer.calls_per_second) if dialer.calls_per_second else None
        self.ready: deque[Item] = deque()
        self.ready_wake = anyio.Event()
        self.timers: list[tuple[float, int, int, Item, str]] = []
        self.timer_seq = 0
        self.timer_wake = anyio.Event()
        self.dirty: dict[int, Item] = {}
        self.waiters: dict[int, anyio.Event] = {}
        self.idle = anyio.Event()
        self.room = anyio.Event()
        self.next_index = 0
        # Restored items whose stored request no longer passes validation: placed through
        # calls.create, which refuses them as before. Every other request was validated on
        # its way in (run, submit, restore), so it is placed without validating it again.
        self.unchecked: set[int] = set()
        self.rate_limited = 0
        self.polls = 0
        self.poll_limiter = anyio.CapacityLimiter(32)
        self.parked: list[_Parked] = []
        self.tg: TaskGroup | None = None
        self.token: Any = None
        self.thread = 0
        self.handlers: list[Any] = []
        self.open = False
        # Events from other threads: (call_id, status, reason), and the wake-up socket pair.
        self.inbox: deque[tuple[str, str, str | None]] = deque()
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
            records = await d.store.load(d.campaign)
            region = d.client.default_region
            for record in records:
                if record.request is None:
                    continue
                request = parse_call_request(loads(record.request))
                try:
                    request = validate_call_request(request, region)
                except ValidationError:
                    self.unchecked.add(record.index)
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
                d.campaign,
                len(self.machine.items),
                self.machine.unfinished,
            )

    def _resume(self) -> None:
        now_wall, now = time.time(), anyio.current_time()
        for item in self.machine.items.values():
            state = item.state
            if state is ItemState.LIVE:
                # Its terminal webhook may have gone to the process that died: poll it now.
                self.slots.occupy()
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
        if router is None:
            return
        add = getattr(router, "add", None)
        if add is not None:
            # Quick and non-blocking (it hops to our loop), so it must not go to a thread.
            self.handlers.append(add(self._on_event, *_EVENTS, in_thread=False))
        else:  # any router with the documented decorator
            for event_type in _EVENTS:
                router.on(event_type)(self._on_event)
            self.handlers.append(None)

    def _unregister(self) -> None:
        router = self.d.router
        for subscription in self.handlers:
            if subscription is not None:
                subscription.cancel()
            else:
                off = getattr(router, "off", None)
                if off is not None:
                    off(self._on_event)
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
        assert self.tg is not None
        self.tg.cancel_scope.cancel()
        try:
            await self.tg.__aexit__(exc_type, exc, tb)
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

    def add(self, index: int, request: CallRequest) -> Item:
        item = self.machine.add(index, request)
        self.next_index = max(self.next_index, index + 1)
        self.idle = anyio.Event() if self.idle.is_set() else self.idle
        self._mark(item)
        self._make_ready(item)
        return item

    def attach(self, index: int, request: CallRequest) -> None:
        """Add item ``index`` of a run, or check that the resumed campaign holds it."""
        existing = self.machine.items.get(index)
        if existing is None:
            self.add(index, request)
            return
        if existing.request.to != request.to or existing.request.from_ != request.from_:
            raise AudianError(
                f"campaign {self.d.campaign!r} item {index} was {existing.request.to}, not "
                f"{request.to}: resume a campaign with the same requests, or use a new name"
            )

    async def wait_for_room(self) -> None:
        while self.machine.unfinished >= self.d.max_pending:
            if self.room.is_set():
                self.room = anyio.Event()
            await self.room.wait()

    async def join(self) -> None:
        while self.machine.unfinished:
            if self.idle.is_set():
                self.idle = anyio.Event()
            await self.idle.wait()

    async def wait_item(self, index: int) -> CallOutcome:
        item = self.machine.items[index]
        while not item.state.is_final:
            if not self.open:
                raise RuntimeError("the dialer stopped before this call had its outcome")
            event = self.waiters.get(index)
            if event is None:
                event = self.waiters[index] = anyio.Event()
            await event.wait()
        return item.outcome()

    def report(self, indices: Iterable[int]) -> CampaignReport:
        return CampaignReport.build(
            self.d.campaign,
            self.machine.outcomes(indices),
            rate_limited=self.rate_limited,
            polls=self.polls,
        )

    def stats(self) -> DialerStats:
        counts = self.machine.counts
        return DialerStats(
            campaign=self.d.campaign,
            total=len(self.machine.items),
            pending=counts[ItemState.PENDING],
            placing=counts[ItemState.PLACING],
            live=counts[ItemState.LIVE],
            waiting=counts[ItemState.WAITING],
            completed=counts[ItemState.COMPLETED],
            failed=counts[ItemState.FAILED],
            attempts=sum(len(i.call_ids) for i in self.machine.items.values()),
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
        self.timer_seq += 1
        heapq.heappush(self.timers, (at, self.timer_seq, kind, item, call_id))
        if self.timers[0][1] == self.timer_seq:
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
        if not self.room.is_set():
            self.room.set()
        if self.machine.unfinished == 0:
            self.idle.set()

    # --- events in -------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """Router handler for call.completed / call.failed; may run on another thread."""
        if not self.open:
            return
        call_id = getattr(event, "call_id", None)
        if not call_id:
            return
        status = "completed" if event.type == "call.completed" else "failed"
        reason = getattr(event, "reason", None)
        reason_text = None if reason is None else str(reason)
        if threading.get_ident() == self.thread:
            self._terminal(call_id, status, reason_text)
            return
        if len(self.inbox) >= MAX_INBOX:  # the loop lags far behind: wait for it instead
            # If the dialer stopped meanwhile the store still says "live", so it is polled.
            with contextlib.suppress(RuntimeError, anyio.RunFinishedError):
                anyio.from_thread.run_sync(
                    self._terminal, call_id, status, reason_text, token=self.token
                )
            return
        self.inbox.append((call_id, status, reason_text))
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

    def _terminal(self, call_id: str, status: str, reason: str | None) -> None:
        if self.open:
            self._after(self.machine.terminal(call_id, status, reason, time.time()))

    # --- loops -----------------------------------------------------------------------------

    async def _placer(self) -> None:
        assert self.tg is not None
        parked = self.parked
        while True:
            while not self.ready:
                self.ready_wake = anyio.Event()
                await self.ready_wake.wait()
            item = self.ready.popleft()
            await self.slots.acquire()
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
            while timers and timers[0][0] <= now:
                _, _, kind, item, call_id = heapq.heappop(timers)
                if kind == _REDIAL:
                    if item.state is ItemState.WAITING:
                        self._make_ready(item)
                elif item.state is ItemState.LIVE and item.call_ids[-1] == call_id:
                    self.tg.start_soon(self._poll, item, call_id)
            self.timer_wake = anyio.Event()
            with anyio.move_on_after(timers[0][0] - now if timers else math.inf):
                await self.timer_wake.wait()

    async def _flusher(self) -> None:
        while True:
            await anyio.sleep(self.d.flush_interval)
            await self._flush()

    async def _flush(self) -> None:
        if not self.dirty:
            return
        items = list(self.dirty.values())
        self.dirty.clear()
        records = [self.machine.record(item) for item in items]
        for item in items:
            item.stored = True
        with anyio.CancelScope(shield=True):
            await self.d.store.save(self.d.campaign, records)

    # --- I/O per item ----------------------------------------------------------------------

    def _poll_after(self, request: CallRequest) -> float:
        d = self.d
        if d.poll_after is not None:
            return d.poll_after
        seconds = (request.timeout or 30) + (request.max_duration or 3600) + d.grace
        return seconds * d.time_scale

    def _poll_interval(self) -> float:
        d = self.d
        if d.poll_interval is not None:
            return d.poll_interval
        return max(d.grace, 1.0) * d.time_scale

    async def _place(self, item: Item) -> None:
        """Place the item's next attempt (its slot is already held) and start tracking it."""
        request, key = self.machine.start_attempt(item)
        self._mark(item)
        calls = self.d.client.calls
        # The request passed validate_call_request with the client's region when it came in
        # (the campaign's tags added since keep it valid): do not pay for it again.
        create = calls.create if item.index in self.unchecked else calls._create_checked
        waits = failures = 0
        while True:
            if self.pacer is not None:
                await self.pacer.wait()
            try:
                call = await create(request, idempotency_key=key)
            except RateLimitedError as exc:
                # Not an attempt: the API did not place it. Wait as told, then try again.
                self.rate_limited += 1
                delay = exc.retry_after
                if delay is None:
                    delay = backoff_delay(min(waits, 8), base=0.25, cap=10.0)
                waits += 1
                await anyio.sleep(delay)
                continue
            except (APIConnectionError, ServerError) as exc:
                # The call may have been placed: repeat the SAME attempt with the SAME key.
                failures += 1
                if failures >= self.d.max_create_failures:
                    logger.warning("item %d: giving up on create: %s", item.index, exc)
                    self._after(self.machine.rejected(item, "create_error"))
                    return
                await anyio.sleep(backoff_delay(failures - 1, base=0.25, cap=10.0))
                continue
            except APIStatusError as exc:
                reason = exc.error or f"http_{exc.status_code}"
                self._after(self.machine.rejected(item, reason))
                return
            except ValidationError:
                self._after(self.machine.rejected(item, "invalid_request"))
                return
            break
        self._placed(item, call)

    def _placed(self, item: Item, call: Call) -> None:
        transition = self.machine.placed(item, call.call_id, time.time())
        self._mark(item)
        status = None if call.status is None else str(call.status)
        if transition is None and status in _TERMINAL and item.state is ItemState.LIVE:
            reason = None if call.reason is None else str(call.reason)
            transition = self.machine.terminal(call.call_id, status, reason, time.time())
        if transition is not None:
            self._after(transition)
        elif item.state is ItemState.LIVE:
            at = anyio.current_time() + self._poll_after(item.request)
            self._schedule(at, _POLL, item, call.call_id)

    async def _poll(self, item: Item, call_id: str) -> None:
        async with self.poll_limiter:
            if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
                return
            self.polls += 1
            try:
                call = await self.d.client.calls.get(call_id)
            except NotFoundError:
                call = None
            except AudianError as exc:
                logger.info("polling %s failed (%s); trying again later", call_id, exc)
                call = None
            if call is not None:
                status = None if call.status is None else str(call.status)
                if status in _TERMINAL:
                    reason = None if call.reason is None else str(call.reason)
                    self._terminal(call_id, status, reason)
                    return
            if item.state is ItemState.LIVE and item.call_ids[-1] == call_id:
                self._schedule(anyio.current_time() + self._poll_interval(), _POLL, item, call_id)
