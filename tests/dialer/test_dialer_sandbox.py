"""The dialer against the sandbox over real HTTP, with webhooks delivered to a WebhookApp."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import anyio
import httpx
import pytest

from audian_async import CallRequest, ValidationError
from audian_async.dialer import Dialer, MemoryStore, RetryPolicy
from audian_async.sandbox import TALK_SECONDS_TAG
from audian_async.webhooks import CallCompleted

from ..loopback import until
from .support import (
    ANSWERS,
    BUSY,
    BUSY_THEN_ANSWER,
    DECLINED,
    FAST,
    INVALID,
    NETWORK_ERROR,
    NO_ANSWER,
    SPEED,
    calls_per_number,
    hooked_client,
    is_create,
    req,
    sandbox_with_receiver,
)

pytestmark = pytest.mark.anyio


async def test_each_outcome_gets_the_right_number_of_attempts() -> None:
    numbers = [ANSWERS, BUSY, NO_ANSWER, DECLINED, INVALID, NETWORK_ERROR, BUSY_THEN_ANSWER]
    async with sandbox_with_receiver() as (sb, router):
        seen: list[str] = []

        @router.on("call.completed")
        async def user_handler(event: CallCompleted) -> None:
            seen.append(event.call_id or "")

        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=10)
        requests = [req(n, tags={"team": "a"}) for n in numbers]
        report = await dialer.run(requests, campaign="outcomes")
        per_number = calls_per_number(sb)
        snapshots = list(sb.calls.values())

    got = {o.to: (o.status, o.reason, o.attempts) for o in report.outcomes}
    assert got == {
        ANSWERS: ("completed", None, 1),
        BUSY: ("failed", "busy", 3),
        NO_ANSWER: ("failed", "no_answer", 3),
        DECLINED: ("failed", "declined", 1),
        INVALID: ("failed", "invalid_number", 1),
        NETWORK_ERROR: ("failed", "network_error", 3),
        BUSY_THEN_ANSWER: ("completed", None, 2),
    }
    assert [o.to for o in report.outcomes] == numbers  # aligned with the input
    assert (report.completed, report.failed, report.attempts) == (2, 5, 14)
    assert per_number == {o.to: o.attempts for o in report.outcomes}
    for outcome in report.outcomes:
        assert len(set(outcome.call_ids)) == outcome.attempts
    # Campaign metadata is visible server-side, beside the user's own tags: each number's
    # calls carry attempts 1, 2, ... in turn.
    attempts: dict[str, list[int]] = {}
    for snap in snapshots:
        tags = snap.call.tags or {}
        assert tags["team"] == "a"
        assert tags["audian_campaign"] == "outcomes"
        attempts.setdefault(str(snap.to), []).append(int(tags["audian_attempt"]))
    assert {to: sorted(seen) for to, seen in attempts.items()} == {
        o.to: list(range(1, o.attempts + 1)) for o in report.outcomes
    }
    # The user's handler kept working beside the dialer's.
    assert len(seen) == 2
    assert len(router.subscriptions()) == 1  # the dialer unregistered its own


async def test_never_more_live_calls_than_allowed() -> None:
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=4)
        requests = [req(ANSWERS) for _ in range(30)] + [req(BUSY)] * 5
        report = await dialer.run(requests, keep_duplicates=True)  # load: repeats on purpose
        peak = sb.peak_live_calls
    assert report.completed == 30
    assert peak <= 4
    assert peak >= 2  # the limit was actually exercised


async def test_429s_above_the_sandbox_limit_are_absorbed() -> None:
    async with sandbox_with_receiver(max_concurrent=3) as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=20)
        report = await dialer.run([req(ANSWERS) for _ in range(24)], keep_duplicates=True)
        peak = sb.peak_live_calls
        limited = sb.stats.get("rate_limited", 0)
    assert (report.completed, report.failed, report.attempts) == (24, 0, 24)
    assert peak <= 3
    assert limited > 0
    assert report.rate_limited > 0


async def test_lost_webhooks_are_recovered_by_polling() -> None:
    async with sandbox_with_receiver(drop_rate=1.0) as (sb, router):
        dialer = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            poll_after=0.1,
            poll_interval=0.05,
        )
        report = await dialer.run([req(ANSWERS), req(BUSY_THEN_ANSWER), req(DECLINED)])
        per_number = calls_per_number(sb)
    assert [(o.status, o.attempts) for o in report.outcomes] == [
        ("completed", 1),
        ("completed", 2),
        ("failed", 1),
    ]
    assert report.polls >= 4
    assert per_number == {ANSWERS: 1, BUSY_THEN_ANSWER: 2, DECLINED: 1}


async def test_duplicated_webhooks_cause_no_extra_redial() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.02, max_delay=0.05)
    async with sandbox_with_receiver(duplicate_rate=1.0) as (sb, router):
        dialer = Dialer(sb.client, router, retry=policy, store=MemoryStore())
        requests = [req(BUSY), req(BUSY_THEN_ANSWER), req(ANSWERS), req(NO_ANSWER)]
        report = await dialer.run(requests)
        await sb.wait_idle()
        per_number = calls_per_number(sb)
        duplicates = len(sb.deliveries)
    assert per_number == {BUSY: 2, BUSY_THEN_ANSWER: 2, ANSWERS: 1, NO_ANSWER: 2}
    assert report.attempts == 7
    assert (report.completed, report.failed) == (2, 2)
    assert duplicates > 0


async def test_service_mode_submit_and_await_handles() -> None:
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=MemoryStore(), campaign="svc") as dialer,
    ):
        first = await dialer.submit(req(ANSWERS))
        second = await dialer.submit(req(BUSY_THEN_ANSWER))
        outcome = await first
        assert outcome.status == "completed"
        assert (await second.wait()).attempts == 2
        assert dialer.stats().completed == 2


async def test_restart_with_the_same_store_finishes_without_redialing() -> None:
    store = MemoryStore()
    numbers = [ANSWERS] * 6 + [BUSY, BUSY_THEN_ANSWER, DECLINED]
    # The first three calls talk for half a second: still live when the first run stops.
    long_talk = {TALK_SECONDS_TAG: 0.5 * SPEED}
    requests = [req(n, tags=long_talk if i < 3 else None) for i, n in enumerate(numbers)]
    created = 0
    three_created = anyio.Event()

    async def count(response: httpx.Response) -> None:
        nonlocal created
        if is_create(response.request) and response.is_success:
            created += 1
            if created == 3:
                three_created.set()

    async with (
        sandbox_with_receiver() as (sb, router),
        hooked_client(sb.base_url, sb.api_key, on_response=count) as client,
    ):
        first = Dialer(client, router, retry=FAST, store=store, max_active_calls=3)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: first.run(requests, campaign="again", keep_duplicates=True))
                await three_created.wait()
                # The replies are in; the dialer has taken them once it counts three live
                # calls (no event says so: its public counters do).
                await until(lambda: first.stats().live == 3)
                tg.cancel_scope.cancel()  # stopped with three calls live
        states = {i: r.state for i, r in store.campaigns["again"].items()}
        assert states == {i: "live" if i < 3 else "pending" for i in range(len(numbers))}
        second = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=3)
        report = await second.run(requests, campaign="again", keep_duplicates=True)
        per_number = calls_per_number(sb)
    assert report.completed == 7
    assert per_number == {ANSWERS: 6, BUSY: 3, BUSY_THEN_ANSWER: 2, DECLINED: 1}
    assert report.attempts == sum(per_number.values())


async def test_a_request_that_cannot_be_encoded_stops_the_run_before_any_dial() -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    async with sandbox_with_receiver() as (sb, router):
        good = req(ANSWERS)
        bad = CallRequest(good.from_, BUSY, scheduled_for=late)
        dialer = Dialer(sb.client, router, store=MemoryStore())
        with pytest.raises(ValidationError) as info:
            await dialer.run([good, bad, good], campaign="bad-time")
        assert info.value.field == "requests[1].scheduled_for"
        assert sb.calls == {}
