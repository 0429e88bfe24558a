"""What the store says before each create, and a store that fails a write."""

from __future__ import annotations

import anyio
import pytest

from audian_async import Call, CallRequest
from audian_async.dialer import Dialer, MemoryStore
from audian_async.dialer._machine import TAG_ATTEMPT, TAG_ITEM

from .support import ANSWERS, BUSY, BUSY_THEN_ANSWER, FAST, req, sandbox_with_receiver

pytestmark = pytest.mark.anyio


async def test_each_attempt_is_stored_as_placing_before_its_create_is_sent() -> None:
    # A process killed right after a create was acted on must resume that item holding its
    # slot (state "placing", same attempt, same key): the store says so before the create.
    store = MemoryStore()
    seen: list[tuple[int, int, str, int]] = []
    async with sandbox_with_receiver() as (sb, router):
        calls = sb.client.calls
        real = calls._create_checked

        async def create(request: CallRequest, *, idempotency_key: str | None = None) -> Call:
            tags = request.tags or {}
            index, attempt = int(tags[TAG_ITEM]), int(tags[TAG_ATTEMPT])
            record = store.campaigns["durable"][index]
            seen.append((index, attempt, record.state, record.attempt))
            return await real(request, idempotency_key=idempotency_key)

        calls._create_checked = create  # type: ignore[method-assign]
        numbers = [ANSWERS, BUSY, BUSY_THEN_ANSWER]
        dialer = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=2)
        with anyio.fail_after(20):
            report = await dialer.run([req(n) for n in numbers], campaign="durable")
    assert report.attempts == 1 + 3 + 2
    assert len(seen) == report.attempts
    assert all((state, stored) == ("placing", attempt) for _, attempt, state, stored in seen)
