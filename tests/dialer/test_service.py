"""Service mode (submit/handles), flow control and the store: no event is lost or doubled."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from audian_async import AsyncAudian, ValidationError
from audian_async.dialer import Dialer, MemoryStore
from audian_async.dialer._flow import Slots
from audian_async.dialer._machine import Item

from .support import ANSWERS, BUSY_THEN_ANSWER, FAST, calls_per_number, req, sandbox_with_receiver

pytestmark = pytest.mark.anyio

PLAIN = [f"+1415555{2900 + i}" for i in range(12)]


async def test_a_submitted_item_is_stored_before_its_first_create() -> None:
    store = MemoryStore()
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=store, campaign="svc") as dialer,
    ):
        handle = await dialer.submit(req(ANSWERS))
        record = store.campaigns["svc"][handle.index]
        assert record.request is not None
        assert record.state == "pending"
        assert (await handle).status == "completed"
        # Finished items leave memory in a service (the store keeps them), counters stay.
        stats = dialer.stats()
        assert stats.held == 0
        assert (stats.total, stats.completed, stats.attempts) == (1, 1, 1)
    assert store.campaigns["svc"][0].state == "completed"


async def test_a_campaign_name_reused_with_a_fresh_store_dials_again() -> None:
    async with sandbox_with_receiver() as (sb, router):
        for _ in range(2):
            dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())
            report = await dialer.run([req(PLAIN[0])], campaign="reused")
            assert report.outcomes[0].status == "completed"
        per_number = calls_per_number(sb)
    assert per_number == {PLAIN[0]: 2}  # not the first campaign's call handed back


async def test_run_with_a_campaign_name_leaves_the_dialer_name_alone() -> None:
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), campaign="base")
        await dialer.run([req(PLAIN[1])], campaign="other")
    assert dialer.campaign == "base"


async def test_join_and_submit_raise_when_the_dialer_stops() -> None:
    errors: list[BaseException] = []

    async def wait(fn: object) -> None:
        try:
            await fn()  # type: ignore[operator]
        except RuntimeError as exc:
            errors.append(exc)

    async with sandbox_with_receiver(webhooks=False) as (sb, _):
        # No router and a far first poll: the calls stay live for the whole test.
        dialer = Dialer(sb.client, None, store=MemoryStore(), poll_after=100.0, max_pending=1)
        async with anyio.create_task_group() as tg, dialer:
            handle = await dialer.submit(req(PLAIN[2]))
            tg.start_soon(wait, dialer.join)
            tg.start_soon(wait, handle.wait)
            tg.start_soon(wait, lambda: dialer.submit(req(PLAIN[3])))  # waits for room
            await anyio.sleep(0.1)
            assert errors == []
    assert len(errors) == 3  # all woken by the stop, none hangs


async def test_max_pending_holds_submit_back() -> None:
    async with (
        sandbox_with_receiver(webhooks=False) as (sb, _),
        Dialer(sb.client, None, store=MemoryStore(), poll_after=100.0, max_pending=2) as dialer,
    ):
        await dialer.submit(req(PLAIN[4]))
        await dialer.submit(req(PLAIN[5]))
        with anyio.move_on_after(0.2) as scope:
            await dialer.submit(req(PLAIN[6]))
        assert scope.cancelled_caught
        assert dialer.stats().total == 2  # the cancelled submit left nothing behind


async def test_slots_survive_cancelled_waiters() -> None:
    slots = Slots(1)
    await slots.acquire()
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope:
            tg.start_soon(slots.acquire)
            await anyio.sleep(0.01)
            scope.cancel()
        tg.cancel_scope.cancel()  # the waiter gives up before getting the slot
    slots.release()
    assert slots.in_use == 0
    # A waiter cancelled right after the slot was handed to it either returns holding it
    # (the cancellation came too late) or gives it back: the slot is never lost.
    got: list[bool] = []

    async def take() -> None:
        await slots.acquire()
        got.append(True)

    await slots.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await anyio.sleep(0.01)
        slots.release()  # hands the slot over...
        tg.cancel_scope.cancel()  # ...to a task cancelled before it runs
    assert slots.in_use == len(got)
    if got:
        slots.release()
    await slots.acquire()
    assert slots.in_use == 1


async def test_calls_per_second_holds_the_pace() -> None:
    sent: list[float] = []

    async def on_request(request: httpx.Request) -> None:
        if request.method == "POST":
            sent.append(time.monotonic())

    rate = 40.0
    async with (
        sandbox_with_receiver() as (sb, router),
        httpx.AsyncClient(event_hooks={"request": [on_request]}) as http,
        AsyncAudian(sb.api_key, base_url=sb.base_url, http_client=http) as client,
    ):
        dialer = Dialer(client, router, retry=FAST, store=MemoryStore(), calls_per_second=rate)
        report = await dialer.run([req(n) for n in PLAIN])
    assert report.completed == len(PLAIN)
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    # Never faster than asked (small slack for clock granularity); not far slower either.
    assert rate * 0.5 < achieved <= rate * 1.05


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_pending": "10"}, "max_pending"),
        ({"max_pending": 0}, "max_pending"),
        ({"create_deadline": -1}, "create_deadline"),
        ({"max_active_calls": 0}, "max_active_calls"),
    ],
)
async def test_nonsense_options_are_validation_errors(
    kwargs: dict[str, object], field: str
) -> None:
    async with AsyncAudian("k", base_url="http://127.0.0.1:9/v2") as client:
        with pytest.raises(ValidationError) as info:
            Dialer(client, None, store=MemoryStore(), **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


async def test_busy_then_answer_in_service_mode() -> None:
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=MemoryStore()) as dialer,
    ):
        outcome = await (await dialer.submit(req(BUSY_THEN_ANSWER)))
    assert (outcome.status, outcome.attempts) == ("completed", 2)


async def test_poll_timers_do_not_keep_finished_items_in_memory() -> None:
    # Each placed call schedules a poll about an hour ahead; a terminal webhook finishes the
    # item long before. The timer must not keep the forgotten item (and its request) alive.
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=MemoryStore(), campaign="svc") as dialer,
    ):
        handles = [await dialer.submit(req(n)) for n in PLAIN[:4]]
        with anyio.fail_after(20):
            for handle in handles:
                assert (await handle).status == "completed"
        assert dialer.stats().held == 0
        session = dialer._session
        assert session is not None
        assert len(session.alarms)  # the hour-long poll alarms are still there...
        held = [part for _, _, alarm in session.alarms._heap._heap for part in alarm]
        assert not any(isinstance(part, Item) for part in held)  # ...holding no item
