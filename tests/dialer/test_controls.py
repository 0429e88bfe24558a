"""Campaign controls against the sandbox: handler-driven redials, finish, suppression,
pause/resume/stop (asyncio and trio)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest

from audian_async import CallingWindow, CallRequest, ValidationError
from audian_async.dialer import Dialer, MemoryStore, RetryPolicy
from audian_async.webhooks import CallCompleted, CallFailed

from ..loopback import until
from .support import (
    BUSY,
    FAST,
    FROM,
    Forgetful,
    calls_per_number,
    hooked_client,
    is_create,
    req,
    sandbox_with_receiver,
)

pytestmark = pytest.mark.anyio

PLAIN = [f"+1415555{3100 + i}" for i in range(8)]
# Redials an hour away (at the sandbox's speed): an item stays "waiting" for the test.
SLOW_REDIAL = RetryPolicy(max_attempts=3, base_delay=3600.0, max_delay=3600.0, jitter=False)


def _attempt(event: CallCompleted | CallFailed) -> str:
    tags: dict[str, Any] = event.data.get("tags") or {}
    return str(tags.get("audian_attempt"))


async def test_a_handler_redial_gives_one_more_attempt_even_when_the_webhook_is_duplicated() -> (
    None
):
    numbers = PLAIN[:4]
    # Every webhook is delivered twice and the receiver forgets deliveries, so the
    # application's handler runs twice for each call.
    async with sandbox_with_receiver(duplicate_rate=1.0, dedupe_store=Forgetful()) as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())
        answers: list[tuple[str, bool]] = []

        @router.on("call.completed")
        async def voicemail(event: CallCompleted) -> None:
            if _attempt(event) == "1":  # e.g. a 3-second call: try again later
                answers.append((event.call_id, await dialer.redial(event.call_id, after=0)))

        with anyio.fail_after(60):
            report = await dialer.run([req(n) for n in numbers])
            # Wait for every duplicate to have been handled too.
            await until(lambda: len(answers) == 2 * len(numbers), timeout=30)
    assert [(o.status, o.attempts) for o in report.outcomes] == [("completed", 2)] * 4
    assert calls_per_number(sb) == dict.fromkeys(numbers, 2)
    first_calls = {o.call_ids[0] for o in report.outcomes}
    assert {call_id for call_id, _ in answers} == first_calls
    # The first run of each handler scheduled the redial (before the dialer settled the
    # call: the dialer's own handler runs last).
    firsts = {}
    for call_id, scheduled in answers:
        firsts.setdefault(call_id, scheduled)
    assert all(firsts.values())


async def test_a_handler_redial_respects_max_attempts_and_can_overrule_the_policy() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=policy, store=MemoryStore())
        answers: list[bool] = []

        @router.on("call.completed")
        async def always(event: CallCompleted) -> None:
            answers.append(await dialer.redial(event.call_id))

        with anyio.fail_after(60):
            report = await dialer.run([req(PLAIN[0])])
    assert report.outcomes[0].attempts == 2  # a completed call redialed, then capped
    assert answers == [True, False]
    assert calls_per_number(sb) == {PLAIN[0]: 2}


async def test_finish_from_a_handler_ends_the_item_without_the_policy_redial() -> None:
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())

        @router.on("call.failed")
        async def opted_out(event: CallFailed) -> None:
            assert await dialer.finish(event.call_id)

        with anyio.fail_after(60):
            report = await dialer.run([req(BUSY)])
    outcome = report.outcomes[0]
    assert (outcome.status, outcome.reason, outcome.attempts) == ("failed", "busy", 1)
    assert calls_per_number(sb) == {BUSY: 1}  # busy is redialed by FAST, but not now


async def test_a_handler_decides_on_a_call_whose_webhook_overtook_the_create_reply() -> None:
    # The create's reply is held until the call's webhook is being handled: the handler asks
    # about a call id the dialer has not heard of yet, and must not be told "unknown".
    handled = threading.Event()

    async def hold_create_reply(response: httpx.Response) -> None:
        if is_create(response.request):
            await anyio.to_thread.run_sync(handled.wait)

    answers: dict[str, list[bool]] = {"finish": [], "redial": []}
    async with (
        sandbox_with_receiver() as (sb, router),
        hooked_client(sb.base_url, sb.api_key, on_response=hold_create_reply) as client,
    ):
        dialer = Dialer(client, router, retry=FAST, store=MemoryStore())

        @router.on("call.failed")
        async def opted_out(event: CallFailed) -> None:
            handled.set()
            answers["finish"].append(await dialer.finish(event.call_id))

        @router.on("call.completed")
        async def again(event: CallCompleted) -> None:
            handled.set()
            if _attempt(event) == "1":
                answers["redial"].append(await dialer.redial(event.call_id, after=0))

        for number, expected in ((BUSY, ("failed", "busy", 1)), (PLAIN[0], ("completed", None, 2))):
            handled.clear()
            with anyio.fail_after(60):
                report = await dialer.run([req(number)], campaign=f"overtaken-{number}")
            outcome = report.outcomes[0]
            assert (outcome.status, outcome.reason, outcome.attempts) == expected
    assert answers == {"finish": [True], "redial": [True]}
    assert calls_per_number(sb) == {BUSY: 1, PLAIN[0]: 2}


async def test_finish_cancels_a_scheduled_redial() -> None:
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=SLOW_REDIAL, store=MemoryStore()) as dialer,
    ):
        handle = await dialer.submit(req(BUSY))
        await until(lambda: dialer.stats().waiting == 1, timeout=30)
        [call_id] = sb.calls
        assert await dialer.finish(call_id)
        assert not await dialer.finish(call_id)  # idempotent: finished already
        with anyio.fail_after(5):
            outcome = await handle
        assert (outcome.status, outcome.reason, outcome.attempts) == ("failed", "busy", 1)
        assert not await dialer.finish("call_unknown")
        assert not await dialer.redial(call_id)  # finished: no more attempts
    assert calls_per_number(sb) == {BUSY: 1}


async def test_suppressed_numbers_never_reach_the_sandbox(tmp_path: Path) -> None:
    listed = tmp_path / "do-not-call.csv"
    listed.write_text(f"number\n# opted out in March\n{PLAIN[2]},2026-03-01\n\n")
    async with sandbox_with_receiver() as (sb, router):
        numbers = PLAIN[:4]
        for suppress in ({PLAIN[0], "+1 (415) 555-3101"}, listed):
            dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), suppress=suppress)
            with anyio.fail_after(60):
                report = await dialer.run([req(n) for n in numbers])
            suppressed = {o.to for o in report.outcomes if o.reason == "suppressed"}
            assert all(o.attempts == 0 for o in report.outcomes if o.to in suppressed)
            assert report.completed == len(numbers) - len(suppressed)
        assert suppressed == {PLAIN[2]}
        # A number is dialed only by the campaign that does not suppress it.
        assert calls_per_number(sb) == {PLAIN[0]: 1, PLAIN[1]: 1, PLAIN[2]: 1, PLAIN[3]: 2}


async def test_suppress_at_runtime_cancels_the_redial_and_holds_for_later_runs() -> None:
    store = MemoryStore()
    async with sandbox_with_receiver() as (sb, router):
        async with Dialer(sb.client, router, retry=SLOW_REDIAL, store=store) as dialer:
            handle = await dialer.submit(req(BUSY))
            await until(lambda: dialer.stats().waiting == 1, timeout=30)
            assert await dialer.suppress("+1 415 555 0101") == 1  # compared in E.164
            with anyio.fail_after(5):
                outcome = await handle
            assert (outcome.status, outcome.reason, outcome.attempts) == (
                "failed",
                "suppressed",
                1,
            )
            with pytest.raises(ValidationError):
                await dialer.suppress("12")
        assert BUSY in store.suppressed_numbers
        # The store keeps the list: a later campaign does not call the number either.
        report = await Dialer(sb.client, router, retry=FAST, store=store).run([req(BUSY)])
        assert (report.outcomes[0].reason, report.outcomes[0].attempts) == ("suppressed", 0)
    assert calls_per_number(sb) == {BUSY: 1}


async def test_pause_holds_creates_while_live_calls_finish_and_resume_goes_on() -> None:
    numbers = PLAIN[:4]
    creates: list[str] = []
    first_placed = anyio.Event()
    dialer: Dialer | None = None

    async def on_request(request: httpx.Request) -> None:
        if is_create(request):
            creates.append(request.headers["idempotency-key"])

    async def on_response(response: httpx.Response) -> None:
        if is_create(response.request) and not first_placed.is_set():
            assert dialer is not None
            dialer.pause()  # as soon as the first call is placed
            first_placed.set()

    async with (
        sandbox_with_receiver() as (sb, router),
        hooked_client(
            sb.base_url, sb.api_key, on_request=on_request, on_response=on_response
        ) as client,
        Dialer(client, router, retry=FAST, store=MemoryStore(), max_active_calls=1) as d,
    ):
        dialer = d
        handles = [await d.submit(req(n)) for n in numbers]
        with anyio.fail_after(30):
            first = await handles[0]  # the live call is still tracked to its end
        assert first.status == "completed"
        assert d.paused
        session = d._require()  # the placer parks on its _unpaused while paused
        await until(lambda: session._unpaused.statistics().tasks_waiting >= 1)
        stats = d.stats()
        assert (stats.attempts, stats.pending, stats.placing) == (1, 3, 0)
        assert len(creates) == 1
        d.resume()
        with anyio.fail_after(30):
            outcomes = [await h for h in handles]
    assert [o.status for o in outcomes] == ["completed"] * 4
    assert calls_per_number(sb) == dict.fromkeys(numbers, 1)


async def test_stop_reports_pending_items_and_a_rerun_finishes_them_without_redialing() -> None:
    numbers = PLAIN[:5]
    store = MemoryStore()
    placed = 0
    dialer: Dialer | None = None

    async def on_response(response: httpx.Response) -> None:
        nonlocal placed
        if is_create(response.request) and response.is_success:
            placed += 1
            if placed == 2:
                assert dialer is not None
                dialer.stop()  # the second call is live: it is left for the next run

    async with sandbox_with_receiver() as (sb, router):
        async with hooked_client(sb.base_url, sb.api_key, on_response=on_response) as client:
            dialer = Dialer(client, router, retry=FAST, store=store, max_active_calls=1)
            with anyio.fail_after(30):
                report = await dialer.run([req(n) for n in numbers], campaign="stopped")
        assert report.pending >= 3
        assert report.completed + report.pending == 5
        assert report.outcomes[0].status == "completed"
        assert [o.status for o in report.outcomes[2:]] == ["pending"] * 3
        assert report.outcomes[1].status in ("completed", "pending")
        with pytest.raises(RuntimeError):
            dialer.stop()  # not running any more
        again = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=1)
        with anyio.fail_after(30):
            final = await again.run([req(n) for n in numbers], campaign="stopped")
    assert [o.status for o in final.outcomes] == ["completed"] * 5
    assert calls_per_number(sb) == dict.fromkeys(numbers, 1)  # no number dialed twice


async def test_numbers_outside_their_own_window_wait_and_are_reported_with_its_opening() -> None:
    los_angeles, tokyo = ["+14155553180", "+14155553181"], "+81312345678"
    # A window open for the next hour in Los Angeles, hence closed in Tokyo (16-17 hours
    # ahead), computed from the current time: each number is judged in its own zone.
    now_la = datetime.now(ZoneInfo("America/Los_Angeles"))
    start = (now_la - timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    end = (now_la + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    window = CallingWindow(start=start, end=end, days="mon-sun")
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), window=window)

        async def stop_once_only_tokyo_is_left() -> None:
            await until(lambda: dialer.stats().window_waiting == 1, timeout=30)
            await until(lambda: dialer.stats().completed == 2, timeout=30)
            dialer.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_once_only_tokyo_is_left)
            with anyio.fail_after(60):
                report = await dialer.run([req(los_angeles[0]), req(tokyo), req(los_angeles[1])])
    assert [o.status for o in report.outcomes] == ["completed", "pending", "completed"]
    waiting = report.outcomes[1]
    assert waiting.attempts == 0
    assert waiting.next_at is not None
    opens_in_tokyo = waiting.next_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert opens_in_tokyo.time() == start
    assert timedelta(0) < waiting.next_at - datetime.now(UTC) <= timedelta(days=1)
    assert tokyo not in {str(c.to) for c in sb.calls.values()}  # never dialed


POOL = ["+14155552671", "+12125550170", "+13125550170"]  # San Francisco, New York, Chicago


async def test_a_caller_id_pool_gives_each_callee_a_caller_id_of_its_own_area() -> None:
    callees = [f"+1{area}555{3200 + i:04d}" for area in ("415", "212", "312") for i in range(4)]
    requests = [CallRequest(from_=None, to=to) for to in callees]
    async with sandbox_with_receiver(caller_ids=POOL) as (sb, router):
        dialer = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            caller_ids=POOL,
            max_active_per_caller_id=1,
            max_active_calls=1,  # one at a time: the local caller ID is always free
        )
        with anyio.fail_after(60):
            report = await dialer.run(requests)
        calls = list(sb.calls.values())
        peaks = sb.peak_live_calls_by_caller_id
    assert [o.status for o in report.outcomes] == ["completed"] * len(callees)
    assert len(calls) == len(callees)
    assert all(call.call.from_ in POOL for call in calls)
    assert max(peaks.values()) == 1  # the cap, read from the API's own records
    assert all(str(call.call.from_)[:5] == str(call.to)[:5] for call in calls)  # same area


async def test_a_full_pool_waits_and_requests_with_their_own_caller_id_are_untouched() -> None:
    pool = POOL[1:]  # New York and Chicago: neither is local to the 415 callees
    callees = [f"+1415555{3240 + i:04d}" for i in range(6)]
    requests = [CallRequest(from_=None, to=to) for to in callees]
    requests.append(req(PLAIN[0]))  # its own caller ID: the pool does not count it
    async with sandbox_with_receiver(caller_ids=pool) as (sb, router):
        dialer = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            caller_ids=pool,
            max_active_per_caller_id=1,
            max_active_calls=5,  # more than the pool can carry: the pool's cap holds
        )
        with anyio.fail_after(60):
            report = await dialer.run(requests)
        peaks = sb.peak_live_calls_by_caller_id
        froms = Counter(str(c.call.from_) for c in sb.calls.values())
    assert report.completed == len(requests)
    assert (peaks[pool[0]], peaks[pool[1]]) == (1, 1)
    assert froms[FROM] == 1
    assert froms[pool[0]] + froms[pool[1]] == 6
    assert min(froms[pool[0]], froms[pool[1]]) >= 1  # the least busy, in turn


def test_caller_ids_are_validated_up_front() -> None:
    with pytest.raises(ValidationError, match=r"caller_ids\[1\]"):
        Dialer(_NoClient(), None, store=MemoryStore(), caller_ids=[POOL[0], "555"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_active_per_caller_id"):
        Dialer(_NoClient(), None, store=MemoryStore(), max_active_per_caller_id=2)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_active_per_caller_id"):
        Dialer(_NoClient(), None, store=MemoryStore(), caller_ids=POOL, max_active_per_caller_id=0)  # type: ignore[arg-type]


class _NoClient:
    """Enough of a client to build a Dialer: the options are checked at construction."""

    default_region = None


async def test_a_request_without_a_caller_id_needs_a_pool() -> None:
    async with sandbox_with_receiver(webhooks=False) as (sb, router):
        dialer = Dialer(sb.client, router, store=MemoryStore())
        with pytest.raises(ValidationError, match=r"requests\[0\]\.from"):
            await dialer.run([CallRequest(from_=None, to=PLAIN[0])])
        assert sb.calls == {}
