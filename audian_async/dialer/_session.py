"""One running span of a dialer (``async with dialer:`` or one ``run()``): the coordinator,
the background tasks, the router subscription, and the waiters on outcomes.

The session owns its resources the structured way: :meth:`DialSession.__aenter__` enters
the coordinator, the event inbox and one task group through an ``AsyncExitStack``, and
:meth:`DialSession.__aexit__` leaves them in reverse. Its tasks:

* the placer (:mod:`._placing`) takes a live-call slot and a ready item, and places it;
* the alarms (:mod:`._alarms`) make redials ready and start polls (:mod:`._polling`);
* the coordinator writes changed items to the store in batches (:mod:`._writer`);
* the inbox (:mod:`._inbox`) brings terminal events received on other threads.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from .._client import AsyncAudian
from .._errors import AudianError
from .._models import CallStatus, FailureReason
from .._telemetry import DialerMetrics, dialer_metrics
from .._validation import CheckedCallRequest
from ..webhooks import CallCompleted, CallFailed, Subscription
from ._alarms import Alarm, Alarms
from ._coordinator import Coordinator, LocalCoordinator
from ._inbox import EventInbox
from ._machine import CallOutcome, CampaignReport, Item, ItemState, Step, Transition
from ._placing import Placer
from ._polling import Poller
from ._redis_coordinator import RedisCoordinator
from ._redis_store import RedisStore
from ._settings import DialerSettings
from ._timeline import TimelineRecorder

__all__ = ["DialSession", "DialerStats"]

logger = logging.getLogger("audian_async.dialer")

T = TypeVar("T")
_EVENTS = ("call.completed", "call.failed")
_HELD_STATES = (ItemState.PENDING, ItemState.WAITING)


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
    held: int = 0
    """Items this process holds in memory (finished ones leave it in service mode)."""
    window_waiting: int = 0
    """Items due but held until their calling window opens."""
    window_opens: datetime | None = None
    """When the first of those windows opens (UTC), or None."""
    paused: bool = False
    """True while :meth:`Dialer.pause` holds new creates."""
    scheduled: int = 0
    """Live calls waiting for their ``scheduled_for`` (counted in ``live``, holding no
    live-call slot until they start)."""

    @property
    def done(self) -> int:
        """Items with an outcome."""
        return self.completed + self.failed


class DialSession:
    """The campaign ``name`` run with ``options``; ``keep_finished`` for :meth:`Dialer.run`
    (which reports every outcome), not for a service (which forgets finished items)."""

    def __init__(
        self,
        options: DialerSettings,
        name: str,
        *,
        keep_finished: bool,
        requests: Sequence[CheckedCallRequest] | None = None,
    ) -> None:
        self.options = options
        self.name = name
        self.keep_finished = keep_finished
        self.requests = requests
        self.client: AsyncAudian = options.client
        self.create_deadline = options.create_deadline
        self.coordinator: Coordinator
        if isinstance(options.store, RedisStore):
            self.coordinator = RedisCoordinator(
                name,
                options.policy,
                options.store,
                max_active_calls=options.max_active_calls,
                calls_per_second=options.calls_per_second,
                create_deadline=options.create_deadline,
                caller_ids=options.caller_ids,
            )
        else:
            self.coordinator = LocalCoordinator(
                name,
                options.policy,
                options.store,
                max_active_calls=options.max_active_calls,
                calls_per_second=options.calls_per_second,
                flush_interval=options.flush_interval,
                caller_ids=None if options.caller_ids is None else options.caller_ids.fresh(),
            )
        self.fatal: AudianError | None = None
        """Set when the account cannot place calls (401, 403, an unreachable API)."""
        self.metrics: DialerMetrics | None = dialer_metrics(
            options.meter_provider, name, self._live_calls
        )
        """Where this session's measurements go; None (decided now) when nobody listens."""
        self.timeline = TimelineRecorder()
        """This session's events over time (this process's own, over Redis)."""
        self.open = False
        self.alarms = Alarms(self._ring)
        self.placer = Placer(self)
        self.poller = Poller(self)
        self.waiters: dict[int, anyio.Event] = {}
        # Items held for their calling window: index -> when it opens (UTC).
        self.held_for_window: dict[int, datetime] = {}
        self.suppression = options.suppress.copy()
        """Numbers never to call: the dialer's, the store's, and those added meanwhile."""
        self.paused = False
        self.stopped = False
        self._unpaused = anyio.Event()
        self._unpaused.set()
        self.idle = anyio.Event()
        self.room = anyio.Event()
        self._subscriptions: list[Subscription] = []
        self._stack = contextlib.AsyncExitStack()
        self._tg: TaskGroup | None = None
        self._inbox: EventInbox | None = None

    @property
    def task_group(self) -> TaskGroup:
        """The session's task group (only while it runs)."""
        assert self._tg is not None
        return self._tg

    # --- start / stop ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = self._stack
        coordinator = self.coordinator
        items = await coordinator.open(self.client.default_region, self.requests)
        coordinator.bind(self._changed, self._resume)
        stack.push_async_callback(coordinator.close)
        try:
            self.suppression.update(await coordinator.suppressed())
            inbox = self._inbox = EventInbox(self.apply_terminal)
            stack.callback(inbox.close)
            tg = self._tg = await stack.enter_async_context(anyio.create_task_group())
        except BaseException:
            await stack.aclose()
            raise
        self.open = True
        if self.metrics is not None:
            self.metrics.open()
            stack.callback(self.metrics.close)
        tg.start_soon(self.placer.run)
        tg.start_soon(self.alarms.run)
        tg.start_soon(coordinator.run)
        tg.start_soon(inbox.run)
        tg.start_soon(self._sample_timeline)
        self._resume(items)
        router = self.options.router
        if router is not None:
            # Last: the application's handlers of the webhook may redial() or finish() the
            # call before the dialer settles it.
            self._subscriptions.append(router.add(self._on_event, *_EVENTS, last=True))
        if items:
            logger.info(
                "campaign %s resumed: %d items, %d unfinished",
                self.name,
                coordinator.total,
                coordinator.unfinished,
            )
        return self

    def _resume(self, items: Iterable[Item]) -> None:
        coordinator = self.coordinator
        now_wall, now = time.time(), anyio.current_time()
        for item in items:
            state = item.state
            if state.is_final:
                if not self.keep_finished:
                    coordinator.forget(item)
            elif state is ItemState.LIVE:
                self.poller.resume(item)
                if self.poller.until_due(item.request) > 0:
                    self.task_group.start_soon(self.until_start, item)
            elif state is ItemState.PLACING:
                # The create may or may not have been acted on; repeat it with the same key.
                self.task_group.start_soon(self.placer.place_loop, item)
            elif state is ItemState.WAITING:
                at = now + max(0.0, (item.next_at or now_wall) - now_wall)
                self.alarms.set(at, Alarm.REDIAL, item.index)
            elif state is ItemState.PENDING:
                coordinator.make_ready(item)
        if coordinator.unfinished == 0:
            self.idle.set()

    def _live_calls(self) -> int:
        return self.coordinator.counts()[ItemState.LIVE]

    def _changed(self) -> None:
        """Counts changed (here, or seen by the coordinator in another process): wake a
        submit waiting for room, and join() once nothing is unfinished."""
        if self.coordinator.unfinished == 0:
            self.idle.set()
        self.room.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()
        if self._inbox is not None:
            with anyio.CancelScope(shield=True):
                await self._inbox.drain()  # events already received still count
        self.open = False
        self._wake_all()  # join(), wait_for_room() and handles raise instead of hanging
        self.task_group.cancel_scope.cancel()
        try:
            # The body's own exception propagates from the caller unwrapped (passing it in
            # would wrap it in an ExceptionGroup); a crashed child task still raises here.
            await self._stack.aclose()
        finally:
            for event in self.waiters.values():
                event.set()

    # --- items ---------------------------------------------------------------------------

    async def add(self, request: CheckedCallRequest, *, ready: bool = True) -> Item:
        """A new item; placed once ready."""
        item = await self.coordinator.add(request)
        if self.idle.is_set():
            self.idle = anyio.Event()
        if ready:
            self.coordinator.make_ready(item)
        return item

    async def discard(self, item: Item) -> None:
        """Drop an item added but never stored nor placed (its submit failed)."""
        await self.coordinator.discard(item)
        self._changed()

    def ready_item(self, item: Item) -> None:
        """Let the placer have an item added with ``ready=False``."""
        if item.state is ItemState.PENDING:
            self.coordinator.make_ready(item)

    async def flush(self) -> None:
        """Write every changed item to the store now."""
        await self.coordinator.flush()

    # --- waiting -------------------------------------------------------------------------

    def _wake_all(self) -> None:
        self.idle.set()
        self.room.set()
        for event in self.waiters.values():
            event.set()

    def _check_running(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if not self.open or self.stopped:
            raise RuntimeError("the dialer stopped")

    def abort(self, exc: AudianError) -> None:
        """The account cannot place calls: stop placing, and make every waiter raise."""
        if self.fatal is None:
            logger.error("campaign %s stopped: %s", self.name, exc)
            self.fatal = exc
        self._wake_all()

    async def wait_for_room(self) -> None:
        """Wait while ``max_pending`` items are unfinished."""
        self._check_running()
        while self.coordinator.unfinished >= self.options.max_pending:
            if self.room.is_set():
                self.room = anyio.Event()
            await self.room.wait()
            self._check_running()

    async def join(self) -> None:
        """Wait until every item has its outcome, or :meth:`stop` was called."""
        while not self.stopped:
            self._check_running()
            if not self.coordinator.unfinished:
                return
            if self.idle.is_set():
                self.idle = anyio.Event()
            await self.idle.wait()

    async def wait_item(self, item: Item) -> CallOutcome:
        """Wait for ``item``'s outcome."""
        while not item.state.is_final:
            self._check_running()
            event = self.waiters.get(item.index)
            if event is None:
                event = self.waiters[item.index] = anyio.Event()
            await event.wait()
        return item.outcome()

    async def report(self, indices: Iterable[int]) -> CampaignReport:
        """The report over ``indices``."""
        outcomes = await self.coordinator.outcomes(indices)
        self._sample_gauges()
        return CampaignReport.build(
            self.name,
            outcomes,
            rate_limited=self.placer.rate_limited,
            polls=self.poller.polls,
            timeline=self.timeline.snapshot(),
        )

    def _sample_gauges(self) -> None:
        counts = self.coordinator.counts()
        self.timeline.sample(counts[ItemState.LIVE], counts[ItemState.WAITING])

    async def _sample_timeline(self) -> None:
        """Sample the gauges about once per bucket of the timeline: the counts move by
        events this process may not see (over Redis), so they are read, not tracked."""
        while True:
            self._sample_gauges()
            await anyio.sleep(self.timeline.step)

    def stats(self) -> DialerStats:
        """A snapshot of the counters."""
        coordinator = self.coordinator
        counts = coordinator.counts()
        return DialerStats(
            campaign=self.name,
            total=coordinator.total,
            pending=counts[ItemState.PENDING],
            placing=counts[ItemState.PLACING],
            live=counts[ItemState.LIVE],
            waiting=counts[ItemState.WAITING],
            completed=counts[ItemState.COMPLETED],
            failed=counts[ItemState.FAILED],
            attempts=coordinator.attempts,
            rate_limited=self.placer.rate_limited,
            polls=self.poller.polls,
            peak_live=coordinator.peak_live,
            scheduled=coordinator.scheduled_calls,
            held=coordinator.held,
            window_waiting=len(self.held_for_window),
            window_opens=min(self.held_for_window.values(), default=None),
            paused=self.paused,
        )

    async def until_start(self, item: Item) -> None:
        """The live ``item``'s call is scheduled for later: it holds no slot until then.

        The API counts a scheduled call as no live call, so holding a slot for it would
        keep every other call of the campaign waiting (reminders made a day ahead).
        """
        wait = self.poller.until_due(item.request)
        if wait > 0:
            await self.coordinator.scheduled(item)
            self.alarms.set(anyio.current_time() + wait, Alarm.DUE, item.index)

    async def hold_for_window(self, item: Item, opens: datetime) -> None:
        """Keep ``item`` (pending or waiting) until its calling window opens at ``opens``."""
        await self.coordinator.hold(item, opens.timestamp())
        self.held_for_window[item.index] = opens
        wait = max(0.0, (opens - datetime.now(UTC)).total_seconds())
        self.alarms.set(anyio.current_time() + wait, Alarm.WINDOW, item.index)

    # --- the application's controls ------------------------------------------------------

    async def on_loop(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Await ``fn(*args)`` on the session's loop, from whichever thread calls (webhook
        handlers of a receiver served on another thread call the controls)."""
        if self._inbox is None:
            raise RuntimeError("the dialer is not running")
        return await self._inbox.call(fn, *args)

    def on_loop_sync(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the session's loop, from whichever thread calls."""
        if self._inbox is None:
            raise RuntimeError("the dialer is not running")
        self._inbox.call_sync(fn)

    async def redial(self, call_id: str, after: float | None) -> bool:
        """One more attempt for the item that placed ``call_id`` (see :meth:`Dialer.redial`)."""
        if not self.open or self.stopped:
            return False
        if after is not None:
            after *= self.options.time_scale
        await self._until_known(call_id)
        scheduled, transition = await self.coordinator.plan_redial(call_id, after, time.time())
        if transition is not None:  # a finished item reopened: unfinished again
            if self.idle.is_set():
                self.idle = anyio.Event()
            self.settle(transition)
        return scheduled

    async def finish(self, call_id: str) -> bool:
        """End the item that placed ``call_id`` now, or when its call ends."""
        if not self.open:
            return False
        await self._until_known(call_id)
        finished, transition = await self.coordinator.finish(call_id)
        if transition is not None:
            self.held_for_window.pop(transition.item.index, None)
            self.settle(transition)
        return finished

    async def _until_known(self, call_id: str) -> None:
        """Wait, if ``call_id`` is not known here, for the creates in flight to have their
        replies recorded: its webhook may have overtaken the reply that names it."""
        item_for = self.coordinator.item_for
        if item_for(call_id) is None:
            await self.placer.in_flight.wait_unless(lambda: item_for(call_id) is not None)

    async def suppress(self, number: str) -> int:
        """Never call ``number`` (E.164) again; end its waiting items now. Returns how many
        items ended."""
        self.suppression.add(number)
        await self.coordinator.add_suppressed(number)
        ended = 0
        for item in self.coordinator.items_to(number):
            transition = await self.coordinator.suppress(item)
            if transition is not None:
                self.held_for_window.pop(item.index, None)
                self.settle(transition)
                ended += 1
        return ended

    def pause(self) -> None:
        """No new create from now on; live calls go on and are tracked."""
        if not self.paused:
            self.paused = True
            self._unpaused = anyio.Event()
            logger.info("campaign %s paused", self.name)

    def resume(self) -> None:
        """Place calls again after :meth:`pause`."""
        if self.paused and not self.stopped:
            self.paused = False
            self._unpaused.set()
            logger.info("campaign %s resumed", self.name)

    def stop(self) -> None:
        """Place nothing more and let :meth:`join` return: unfinished items stay for the next
        run of the campaign."""
        self.pause()
        if not self.stopped:
            self.stopped = True
            logger.info(
                "campaign %s stopped: %d unfinished", self.name, self.coordinator.unfinished
            )
            self._wake_all()

    async def wait_unpaused(self) -> None:
        """Return once the campaign is not paused."""
        while self.paused:
            await self._unpaused.wait()

    # --- transitions ---------------------------------------------------------------------

    def settle(self, transition: Transition | None) -> None:
        """Act on an item's call having ended: schedule its redial, or finish it."""
        if transition is None:
            return
        item = transition.item
        metrics = self.metrics
        if transition.step is Step.REDIAL:
            if metrics is not None:
                metrics.redialed()
            self.timeline.redial_scheduled()
            self.alarms.set(anyio.current_time() + transition.delay, Alarm.REDIAL, item.index)
            return
        completed = item.state is ItemState.COMPLETED
        if metrics is not None:
            metrics.finished(completed, item.reason)
        self.timeline.finished(completed=completed)
        event = self.waiters.pop(item.index, None)
        if event is not None:
            event.set()
        if not self.keep_finished:
            self.coordinator.forget(item)  # handles keep their item; the store has it
        self._changed()

    async def apply_terminal(
        self, call_id: str, status: CallStatus, reason: FailureReason | str | None
    ) -> None:
        """A terminal status of ``call_id`` arrived (webhook or poll)."""
        if self.open:
            now = time.time()
            self.settle(await self.coordinator.ended(call_id, status, reason, now))

    async def _on_event(self, event: CallCompleted | CallFailed) -> None:
        """Router handler for call.completed / call.failed; may run on another thread."""
        call_id = event.call_id
        if not self.open or not call_id or self._inbox is None:
            return
        status = CallStatus.COMPLETED
        reason: FailureReason | str | None = None
        if isinstance(event, CallFailed):
            status, reason = CallStatus.FAILED, event.reason
        if self._inbox.on_loop():
            await self.apply_terminal(call_id, status, reason)
        else:
            self._inbox.put(call_id, status, reason)

    async def _ring(self, kind: Alarm, key: int | str) -> None:
        coordinator = self.coordinator
        if kind is Alarm.DUE:
            assert isinstance(key, int)
            item = coordinator.item(key)
            if item is not None and item.state is ItemState.LIVE:
                self.task_group.start_soon(coordinator.due, item)
            return
        if kind is Alarm.REDIAL or kind is Alarm.WINDOW:
            assert isinstance(key, int)
            if kind is Alarm.WINDOW:
                self.held_for_window.pop(key, None)
            item = coordinator.item(key)
            ready = (ItemState.WAITING,) if kind is Alarm.REDIAL else _HELD_STATES
            if item is not None and item.state in ready:
                coordinator.make_ready(item)
            return
        assert isinstance(key, str)
        # Gone (finished and forgotten) or moved on: nothing to poll.
        item = coordinator.item_for(key)
        if item is not None and item.state is ItemState.LIVE and item.call_ids[-1] == key:
            self.task_group.start_soon(self.poller.poll, item, key)
