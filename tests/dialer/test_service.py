"""Service mode (submit/handles), flow control and the store: no event is lost or doubled."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise

import anyio
import httpx
import pytest

from audian_async import AsyncAudian, CallingWindow, ValidationError
from audian_async.dialer import Dialer, MemoryStore
from audian_async.dialer._flow import Slots
from audian_async.dialer._machine import Item

from ..loopback import until
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
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg, dialer:
                handle = await dialer.submit(req(PLAIN[2]))
                tg.start_soon(wait, dialer.join)
                tg.start_soon(wait, handle.wait)
                tg.start_soon(wait, lambda: dialer.submit(req(PLAIN[3])))  # waits for room
                # All three are parked on the session's events (not wait_all_tasks_blocked:
                # the in-loop sandbox's timers can keep some task ready for seconds)...
                session = dialer._require()

                def parked() -> bool:
                    events = [session.idle, session.room, session.waiters.get(handle.index)]
                    return all(e is not None and e.statistics().tasks_waiting for e in events)

                await until(parked)
                assert errors == []
    assert len(errors) == 3  # ...and all are woken by the stop, none hangs


async def test_max_pending_holds_submit_back() -> None:
    async with (
        sandbox_with_receiver(webhooks=False) as (sb, _),
        Dialer(sb.client, None, store=MemoryStore(), poll_after=100.0, max_pending=2) as dialer,
    ):
        await dialer.submit(req(PLAIN[4]))
        await dialer.submit(req(PLAIN[5]))
        submitted: list[int] = []

        async def third() -> None:
            submitted.append((await dialer.submit(req(PLAIN[6]))).index)

        async with anyio.create_task_group() as tg:
            tg.start_soon(third)
            session = dialer._require()
            await until(lambda: session.room.statistics().tasks_waiting == 1)  # parked
            assert submitted == []  # the two live items never finish: no room for a third
            tg.cancel_scope.cancel()
        assert submitted == []
        assert dialer.stats().total == 2  # the cancelled submit left nothing behind


async def test_slots_survive_cancelled_waiters() -> None:
    slots = Slots(1)
    got: list[bool] = []

    async def take() -> None:
        await slots.acquire()
        got.append(True)

    # A waiter cancelled before its turn leaves the queue.
    await slots.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    slots.release()
    assert (slots.in_use, got) == (0, [])
    await slots.acquire()  # the slot is free, not promised to the departed waiter
    # A waiter cancelled in the same step as the slot is handed to it (before it runs)
    # gives the slot back.
    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
        slots.release()
    assert (slots.in_use, got) == (0, [])
    # A waiter handed the slot before the cancellation returns holding it: the cancellation
    # reaches it only at its next checkpoint, after it took the slot.
    await slots.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        slots.release()
        tg.cancel_scope.cancel()
    assert (slots.in_use, got) == (1, [True])
    slots.release()
    assert slots.in_use == 0


def _virtual_trio() -> object:
    """The trio backend on a clock that jumps to the next deadline whenever every task waits."""
    from trio.testing import MockClock

    return pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-mockclock")


# Virtual time is trio's (asyncio has no mock clock): the pacer books its passes on the
# event loop's clock, so this run sees them exactly, whatever the machine's load. The rate a
# real clock measures is the benchmark's (benchmarks/dialer_campaign.py, "pacing").
@pytest.mark.parametrize("anyio_backend", [_virtual_trio()])
async def test_calls_per_second_spaces_creates_exactly() -> None:
    rate, latency = 40.0, 0.1  # each reply takes four intervals: creates overlap
    sent: list[float] = []

    async def api(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append(anyio.current_time())
            call_id = f"call_{len(sent)}"
            await anyio.sleep(latency)
            return httpx.Response(201, json={"call_id": call_id, "status": "initiated"})
        call_id = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"call_id": call_id, "status": "completed"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(api)) as http,
        AsyncAudian("k", base_url="http://api.test/v2", http_client=http) as client,
    ):
        dialer = Dialer(client, None, store=MemoryStore(), calls_per_second=rate)
        report = await dialer.run([req(n) for n in PLAIN])
    assert report.completed == len(PLAIN)
    assert len(sent) == len(PLAIN)
    # Never faster than asked, and never slower: one create every 1/rate seconds, exactly.
    gaps = [b - a for a, b in pairwise(sent)]
    assert gaps == pytest.approx([1 / rate] * (len(PLAIN) - 1), rel=1e-9)


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


def _utc_window(opens: datetime) -> CallingWindow:
    """A window (in UTC, for every number) open for an hour from ``opens``."""
    return CallingWindow(
        start=opens.time(), end=(opens + timedelta(hours=1)).time(), timezone="UTC"
    )


async def test_items_due_outside_their_window_wait_unplaced_and_without_a_slot() -> None:
    opens = (datetime.now(UTC) + timedelta(hours=12)).replace(microsecond=0)
    store = MemoryStore()
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(
            sb.client, router, store=store, window=_utc_window(opens), max_active_calls=1
        ) as dialer,
    ):
        for n in PLAIN[:3]:
            await dialer.submit(req(n))
        await until(lambda: dialer.stats().window_waiting == 3)
        stats = dialer.stats()
        assert (stats.window_waiting, stats.attempts, stats.placing) == (3, 0, 0)
        assert stats.window_opens == opens
        assert sb.calls == {}
    # Nothing was placed: the next run finds them pending, with their first attempt ahead.
    assert [r.state for r in store.campaigns[dialer.campaign].values()] == ["pending"] * 3


async def test_items_are_placed_once_their_window_opens_and_only_inside_it() -> None:
    window = _utc_window((datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0))
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=MemoryStore(), window=window) as dialer,
    ):
        handles = [await dialer.submit(req(n)) for n in PLAIN[:3]]
        with anyio.fail_after(30):
            outcomes = [await handle for handle in handles]
        assert [o.status for o in outcomes] == ["completed"] * 3
        assert dialer.stats().window_waiting == 0
        for call in sb.calls.values():  # the API saw each create inside the window
            assert call.call.created_at is not None
            assert window.is_open(call.to, call.call.created_at)


async def test_a_number_without_a_zone_is_refused_before_dialing() -> None:
    window = CallingWindow(start=time(9), end=time(17))
    async with sandbox_with_receiver(webhooks=False) as (sb, router):
        dialer = Dialer(sb.client, router, store=MemoryStore(), window=window)
        with pytest.raises(ValidationError, match=r"requests\[1\]\.to: .*no known time zone"):
            await dialer.run([req(PLAIN[0]), req("+80012345678")])
        assert sb.calls == {}
