"""Scheduled calls (``scheduled_for`` ahead) in the dialer, against the sandbox: the API
counts them as no live call until they start, so they hold no live-call slot until then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audian_async.dialer import CampaignStore, Dialer, MemoryStore, RedisStore
from audian_async.sandbox import Sandbox

from ..loopback import until
from .support import FAST, SPEED, req, sandbox_with_receiver

Store = CampaignStore | RedisStore

pytestmark = pytest.mark.anyio

NOW_NUMBERS = ["+14155551001", "+14155551002", "+14155551003", "+14155551004"]
REMINDERS = ["+14155551101", "+14155551102"]


def statuses(sb: Sandbox, numbers: list[str]) -> list[str]:
    return sorted(str(c.status) for c in sb.calls.values() if c.to in numbers)


async def reminders_do_not_block_the_calls_due_now(make_store: Callable[[], Store]) -> None:
    """Two reminders a week ahead and a limit of two: the calls due now still go, and a
    restart finds the reminders live, still holding no slot. (Run on every store.)"""
    # A week ahead: at the sandbox's and the dialer's speed (100x) that is 100 minutes of
    # real time. An hour was 36 s, which a run on a loaded machine can use up, and then the
    # reminders start, as they should, and are no longer scheduled.
    later = datetime.now(UTC) + timedelta(days=7)
    async with sandbox_with_receiver() as (sb, router):
        options: dict[str, Any] = {"retry": FAST, "max_active_calls": 2, "campaign": "remind"}
        store = make_store()
        async with Dialer(sb.client, router, store=store, time_scale=1 / SPEED, **options) as d:
            for number in REMINDERS:
                await d.submit(req(number, scheduled_for=later))
            handles = [await d.submit(req(number)) for number in NOW_NUMBERS]
            outcomes = [await handle for handle in handles]
            assert [o.status for o in outcomes] == ["completed"] * len(NOW_NUMBERS)
            await until(lambda: (d.stats().live, d.stats().scheduled) == (2, 2))
            assert statuses(sb, REMINDERS) == ["scheduled", "scheduled"]
            d.stop()

        store = make_store()
        async with Dialer(sb.client, router, store=store, time_scale=1 / SPEED, **options) as d:
            more = [await d.submit(req(n)) for n in ("+14155551005", "+14155551006")]
            assert [(await h).status for h in more] == ["completed", "completed"]
            await until(lambda: d.stats().scheduled == 2)
            d.stop()
        assert statuses(sb, REMINDERS) == ["scheduled", "scheduled"]


async def test_reminders_for_later_do_not_block_the_calls_due_now() -> None:
    store = MemoryStore()
    await reminders_do_not_block_the_calls_due_now(lambda: store)


async def test_a_scheduled_call_counts_once_it_starts_and_its_outcome_arrives() -> None:
    # 100 s ahead on the sandbox's clock: a second of real time at its speed.
    soon = datetime.now(UTC) + timedelta(seconds=100)
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            max_active_calls=1,
            time_scale=1 / SPEED,
        )
        requests = [req(REMINDERS[0], scheduled_for=soon), *(req(n) for n in NOW_NUMBERS)]
        report = await dialer.run(requests, campaign="soon")
        assert [o.status for o in report.outcomes] == ["completed"] * len(requests)
        assert [o.attempts for o in report.outcomes] == [1] * len(requests)
        assert statuses(sb, REMINDERS[:1]) == ["completed"]
