"""What the store says before each create, and a store that fails a write."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import anyio
import httpx
import pytest

from audian_async import AsyncAudian
from audian_async.dialer import Dialer, MemoryStore
from audian_async.dialer._machine import TAG_ATTEMPT, TAG_ITEM, ItemRecord

from ..tap import Tap
from .support import ANSWERS, BUSY, BUSY_THEN_ANSWER, FAST, req, sandbox_with_receiver

pytestmark = pytest.mark.anyio


async def test_each_attempt_is_stored_as_placing_before_its_create_is_sent() -> None:
    # A process killed right after a create was acted on must resume that item holding its
    # slot (state "placing", same attempt, same key): the store says so before the create.
    store = MemoryStore()
    seen: list[tuple[int, int, str, int]] = []

    def look(request: httpx.Request) -> None:
        if request.method == "POST":
            tags = json.loads(request.content)["tags"]
            index, attempt = int(tags[TAG_ITEM]), int(tags[TAG_ATTEMPT])
            record = store.campaigns["durable"][index]
            seen.append((index, attempt, record.state, record.attempt))

    async with (
        sandbox_with_receiver() as (sb, router),
        httpx.AsyncClient(transport=Tap(look)) as tap,
    ):
        client = AsyncAudian(sb.api_key, base_url=sb.base_url, http_client=tap)
        numbers = [ANSWERS, BUSY, BUSY_THEN_ANSWER]
        dialer = Dialer(client, router, retry=FAST, store=store, max_active_calls=2)
        with anyio.fail_after(20):
            report = await dialer.run([req(n) for n in numbers], campaign="durable")
    assert report.attempts == 1 + 3 + 2
    assert len(seen) == report.attempts
    assert all((state, stored) == ("placing", attempt) for _, attempt, state, stored in seen)


class FlakyStore(MemoryStore):
    """A store that fails every write holding a record ``refuse`` matches."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: Callable[[ItemRecord], bool] | None = None

    async def save(self, campaign: str, records: Sequence[ItemRecord]) -> None:
        if self.refuse is not None and any(self.refuse(r) for r in records):
            raise OSError("disk I/O error")
        await super().save(campaign, records)


async def test_a_submit_whose_store_write_fails_leaves_nothing_behind() -> None:
    store = FlakyStore()
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(sb.client, router, retry=FAST, store=store, campaign="svc") as dialer,
    ):
        first = await dialer.submit(req(ANSWERS))
        store.refuse = lambda r: "+14155552801" in (r.request or "")
        with pytest.raises(OSError, match="disk I/O"):
            await dialer.submit(req("+14155552801"))
        assert (await first).status == "completed"
        with anyio.fail_after(10):
            await dialer.join()  # the refused item is not waited for
        assert dialer.stats().total == 1
        store.refuse = None
        later = await dialer.submit(req("+14155552802"))
        assert (await later).status == "completed"
    rows = store.campaigns["svc"]
    assert {i: (r.state, r.request is not None) for i, r in rows.items()} == {
        0: ("completed", True),
        later.index: ("completed", True),
    }


async def test_a_batch_the_store_refused_is_written_again() -> None:
    # A failed write must not mark its items saved: the next flush carries them again,
    # requests included, and a create waiting for its "placing" record is not let through.
    store = FlakyStore()
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=2)
        numbers = [f"+1415555{2810 + i}" for i in range(4)]
        store.refuse = lambda r: r.state == "placing"

        async def heal() -> None:
            await anyio.sleep(0.3)
            assert len(sb.calls) == 0  # nothing was placed while the batch was unsaved
            store.refuse = None

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(heal)
                report = await dialer.run([req(n) for n in numbers], campaign="flaky")
    assert report.completed == len(numbers)
    assert {r.state for r in store.campaigns["flaky"].values()} == {"completed"}
