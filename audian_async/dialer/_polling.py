"""Polling: asking the API about live calls whose terminal webhook is late or lost.

With a router, a call is first polled once it must have ended (ring timeout + max duration
+ grace) and then every ``grace`` seconds; without one (polling only) soon after its ring
timeout and then every 5 seconds. A call the API answers 404 for five polls in a row, or
that cannot be polled until it must have ended, fails with reason ``lost`` (not redialed:
it may have rung).
"""

from __future__ import annotations

import logging
import time

import anyio

from .._errors import AudianError, NotFoundError
from .._models import Call, CallRequest, CallStatus, is_terminal
from ._alarms import Alarm
from ._host import Host
from ._machine import Item, ItemState

__all__ = ["LOST_AFTER_MISSES", "POLL_ONLY_INTERVAL", "Poller"]

logger = logging.getLogger("audian_async.dialer")

LOST_AFTER_MISSES = 5
"""Consecutive 404s from polling a call after which the API is taken to have lost it."""
POLL_ONLY_INTERVAL = 5.0
"""Polling-only mode (no router): seconds between polls of a live call, before time_scale."""
MAX_POLLS_IN_FLIGHT = 32


class Poller:
    """Schedules and makes the polls of one session's live calls."""

    def __init__(self, session: Host) -> None:
        self.session = session
        self.polls = 0
        """Status polls made."""
        self._limiter = anyio.CapacityLimiter(MAX_POLLS_IN_FLIGHT)
        options = session.options
        self._time_scale = options.time_scale
        self._grace = options.grace
        self._webhooks = options.router is not None
        self._poll_after = options.poll_after
        self._poll_interval = options.poll_interval

    def first_poll_after(self, request: CallRequest) -> float:
        """Seconds from placing a call of ``request`` to its first poll."""
        if self._poll_after is not None:
            return self._poll_after
        if not self._webhooks:
            # No webhooks will come: ask soon after the ring timeout, when most calls have
            # either failed or been answered.
            return request.ring_timeout * self._time_scale
        seconds = request.ring_timeout + request.duration_limit + self._grace
        return seconds * self._time_scale

    def interval(self) -> float:
        """Seconds between polls of a call that is still live."""
        if self._poll_interval is not None:
            return self._poll_interval
        if not self._webhooks:
            return POLL_ONLY_INTERVAL * self._time_scale
        return max(self._grace, 1.0) * self._time_scale

    def until_due(self, request: CallRequest) -> float:
        """Seconds from now until a call of ``request`` starts: 0 unless it is scheduled
        for later. The API (and the sandbox, at its speed) counts the wait on its clock."""
        when = request.scheduled_for
        if when is None:
            return 0.0
        return max(0.0, when.timestamp() - time.time()) * self._time_scale

    def call_span(self, request: CallRequest) -> float:
        """Seconds from now by which a call of ``request`` placed now must have ended."""
        seconds = request.ring_timeout + request.duration_limit + self._grace
        return seconds * self._time_scale + self.until_due(request)

    def track(self, item: Item, call_id: str, *, poll_soon: bool = False) -> None:
        """Start watching the live call ``call_id`` of ``item``."""
        now = anyio.current_time()
        item.misses = 0
        item.ends_by = now + self.call_span(item.request)
        wait = self.first_poll_after(item.request)
        if poll_soon:
            wait = min(wait, self.interval())
        # A scheduled call is not asked about before it could have started.
        self.session.alarms.set(now + self.until_due(item.request) + wait, Alarm.POLL, call_id)

    def resume(self, item: Item) -> None:
        """Watch a live call restored from the store: poll it now (its terminal webhook
        may have gone to the process that died)."""
        now = anyio.current_time()
        item.ends_by = now + self.call_span(item.request)
        self.session.alarms.set(now, Alarm.POLL, item.call_ids[-1])

    async def poll(self, item: Item, call_id: str) -> None:
        """Ask the API about ``call_id``; apply a terminal status, or poll again later."""
        session = self.session
        async with self._limiter:
            if item.state is not ItemState.LIVE or item.call_ids[-1] != call_id:
                return
            self.polls += 1
            try:
                call: Call | None = await session.client.calls.get(call_id)
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
                    await session.apply_terminal(call_id, call.status, call.reason)
                    return
                if call.status == CallStatus.SCHEDULED:
                    # Still waiting for its time: nothing to ask before it may have ended.
                    wait = self.until_due(item.request) + self.first_poll_after(item.request)
                    session.alarms.set(anyio.current_time() + wait, Alarm.POLL, call_id)
                    return
            elif item.misses >= LOST_AFTER_MISSES or anyio.current_time() >= item.ends_by:
                # The API does not know the call, or could not tell us about it until it must
                # have ended: the slot is free either way. Not redialed (it may have rung).
                logger.warning("call %s of item %d is lost; failing the item", call_id, item.index)
                session.settle(await session.coordinator.lost(item, call_id))
                return
            session.alarms.set(anyio.current_time() + self.interval(), Alarm.POLL, call_id)
