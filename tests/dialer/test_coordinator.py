"""The coordination contract: every Coordinator implementation must pass these steps.

Parametrized over the implementations (today the in-process one); each test drives the
steps directly, with no API and no router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from audian_async import CallStatus, FailureReason, validate_call_request
from audian_async.dialer import MemoryStore, RetryPolicy
from audian_async.dialer._coordinator import Coordinator, LocalCoordinator
from audian_async.dialer._machine import Item, ItemState, Step

from .support import req

pytestmark = pytest.mark.anyio

POLICY = RetryPolicy(max_attempts=2, base_delay=1.0, jitter=False)
NOW = 1_000.0


def local(store: MemoryStore, limit: int) -> LocalCoordinator:
    return LocalCoordinator(
        "contract",
        POLICY,
        store,
        max_active_calls=limit,
        calls_per_second=None,
        flush_interval=0.01,
    )


IMPLEMENTATIONS: dict[str, Callable[[MemoryStore, int], Coordinator]] = {"local": local}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make(request: pytest.FixtureRequest) -> Callable[[MemoryStore, int], Coordinator]:
    return IMPLEMENTATIONS[request.param]


@asynccontextmanager
async def opened(
    make: Callable[[MemoryStore, int], Coordinator], store: MemoryStore, limit: int = 2
) -> AsyncIterator[Coordinator]:
    coordinator = make(store, limit)
    await coordinator.open(None)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(coordinator.run)
            yield coordinator
            tg.cancel_scope.cancel()
    finally:
        await coordinator.close()


async def placing(coordinator: Coordinator, to: str) -> Item:
    """Item 0, calling ``to``, with a slot taken and its first attempt begun."""
    item = await coordinator.add(validate_call_request(req(to)))
    await coordinator.take_slot()
    await coordinator.begin(item)
    return item


@asynccontextmanager
async def waiting_for_a_slot(coordinator: Coordinator) -> AsyncIterator[anyio.Event]:
    """A task that takes a slot, started and blocked; the event is set once it has one."""
    taken = anyio.Event()

    async def take() -> None:
        await coordinator.take_slot()
        taken.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        yield taken


async def test_slots_never_exceed_the_limit_and_a_terminal_event_frees_one_once(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    async with opened(make, MemoryStore(), limit=1) as coordinator:
        item = await placing(coordinator, "+14155550100")
        assert await coordinator.placed(item, "call_a", NOW) is None
        async with waiting_for_a_slot(coordinator) as taken:
            assert not taken.is_set()  # the one slot is held by the live call
            done = await coordinator.ended("call_a", CallStatus.COMPLETED, None, NOW)
            assert done is not None
            assert done.step is Step.DONE
            await taken.wait()
        # The same event again changes nothing and frees nothing.
        assert await coordinator.ended("call_a", CallStatus.COMPLETED, None, NOW) is None
        assert coordinator.peak_live == 1
        assert coordinator.counts()[ItemState.COMPLETED] == 1


async def test_a_failure_schedules_a_redial_then_the_item_fails_for_good(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    async with opened(make, MemoryStore()) as coordinator:
        item = await coordinator.add(validate_call_request(req("+14155550101")))
        for attempt, call_id in enumerate(("call_1", "call_2"), start=1):
            await coordinator.take_slot()
            _, key = await coordinator.begin(item)
            assert key.endswith(f"0-{attempt}")
            await coordinator.placed(item, call_id, NOW)
            step = await coordinator.ended(call_id, CallStatus.FAILED, FailureReason.BUSY, NOW)
            assert step is not None
            if attempt == 1:
                assert (step.step, step.delay, item.state) == (Step.REDIAL, 1.0, ItemState.WAITING)
        assert item.state is ItemState.FAILED
        assert item.reason is FailureReason.BUSY
        assert coordinator.unfinished == 0
        assert coordinator.attempts == 2


async def test_unplaced_frees_the_slot_and_keeps_the_item_for_a_later_run(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    store = MemoryStore()
    async with opened(make, store, limit=1) as coordinator:
        item = await placing(coordinator, "+14155550100")
        await coordinator.durable()
        assert store.campaigns["contract"][0].state == "placing"  # stored before its create
        assert await coordinator.unplaced(item) is True
        assert await coordinator.unplaced(item) is False  # once only
        with anyio.fail_after(5):
            await coordinator.take_slot()  # the slot came back
    assert store.campaigns["contract"][0].state == "pending"


async def test_reopening_restores_live_calls_holding_their_slots(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    store = MemoryStore()
    async with opened(make, store, limit=1) as coordinator:
        item = await placing(coordinator, "+14155550100")
        await coordinator.placed(item, "call_live", NOW)
    async with opened(make, store, limit=1) as again:
        restored = again.item(0)
        assert restored is not None
        assert (restored.state, restored.call_ids) == (ItemState.LIVE, ["call_live"])
        assert again.item_for("call_live") is restored
        async with waiting_for_a_slot(again) as taken:
            assert not taken.is_set()  # held by the restored live call
            assert await again.ended("call_live", CallStatus.COMPLETED, None, NOW) is not None
            await taken.wait()


async def test_a_scheduled_call_holds_no_slot_until_it_starts(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    async with opened(make, MemoryStore(), limit=1) as coordinator:
        item = await placing(coordinator, "+14155550100")
        await coordinator.placed(item, "call_later", NOW)
        async with waiting_for_a_slot(coordinator) as taken:
            assert not taken.is_set()
            await coordinator.scheduled(item)  # the API counts it as no live call
            await taken.wait()
        await coordinator.scheduled(item)  # once only: nothing more is freed
        assert coordinator.scheduled_calls == 1
        await coordinator.due(item)  # it starts: counted, even over the limit
        await coordinator.due(item)
        assert coordinator.scheduled_calls == 0
        assert coordinator.peak_live == 2
        # Two slots in use (the waiter's and the call's): its end frees exactly one.
        assert await coordinator.ended("call_later", CallStatus.COMPLETED, None, NOW)
        async with waiting_for_a_slot(coordinator) as again:
            assert not again.is_set()
            await coordinator.free_slot()
            await again.wait()


async def test_a_scheduled_call_that_ends_before_its_time_frees_no_slot(
    make: Callable[[MemoryStore, int], Coordinator],
) -> None:
    async with opened(make, MemoryStore(), limit=1) as coordinator:
        item = await placing(coordinator, "+14155550101")
        await coordinator.placed(item, "call_later", NOW)
        await coordinator.scheduled(item)
        await coordinator.take_slot()  # another call takes the freed slot
        done = await coordinator.ended("call_later", CallStatus.FAILED, FailureReason.BUSY, NOW)
        assert done is not None
        assert coordinator.scheduled_calls == 0
        await coordinator.due(item)  # too late: a no-op
        async with waiting_for_a_slot(coordinator) as taken:
            assert not taken.is_set()  # the other call still holds the only slot
            await coordinator.free_slot()
            await taken.wait()
