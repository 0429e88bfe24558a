"""AsyncAudian against a real Sandbox over HTTP on loopback, on asyncio and trio.

The client's integration suite: every call goes through the SDK's public API (or, for the one
error the client's own validation would stop first, its already-validated path) to the
emulator, which enforces the reference's rules on its side.
"""

from __future__ import annotations

import httpx
import pytest

import audian_async as au
from audian_async.sandbox import TALK_SECONDS_TAG, Faults, Sandbox

from ..tap import Tap, with_body

OWNED, TO = "+14155552671", "+14155552672"
pytestmark = pytest.mark.anyio


async def test_create_with_fields_and_with_a_request() -> None:
    async with Sandbox(speed=100) as sb:
        by_fields = await sb.client.calls.create(from_=OWNED, to=TO, timeout=45)
        request = au.CallRequest(from_=OWNED, to="+14155552673", tags={"campaign": "spring"})
        by_request = await sb.client.calls.create(request)
        assert by_fields.status == by_request.status == "initiated"
        assert by_fields.timeout == 45
        assert by_request.tags == {"campaign": "spring"}
        assert set(sb.calls) == {by_fields.call_id, by_request.call_id}
        assert sb.calls[by_request.call_id].to == "+14155552673"


async def test_batch_with_one_bad_item() -> None:
    async with Sandbox(speed=100) as sb:
        requests = [
            au.CallRequest(from_=OWNED, to="+14155552673"),
            au.CallRequest(from_="+14155559999", to="+14155552674"),  # not our caller ID
            au.CallRequest(from_=OWNED, to="+14155552675"),
        ]
        batch = await sb.client.calls.create_batch(requests)
        assert (batch.total, batch.queued, batch.failed) == (3, 2, 1)
        assert [item.ok for item in batch.calls] == [True, False, True]
        assert batch.calls[1].error == "unauthorized_caller_id"
        assert batch.calls[1].code == 403
        assert {item.call_id for item in batch.calls if item.ok} == set(sb.calls)


async def test_get_follows_the_live_call_until_it_ends() -> None:
    async with Sandbox(speed=20) as sb:
        # Two real seconds on the line: a GET sent once the sandbox has it answered sees it so.
        call = await sb.client.calls.create(from_=OWNED, to=TO, tags={TALK_SECONDS_TAG: 40})
        assert call.status == "initiated"
        await sb.wait_for_status(call.call_id, "answered")
        live = await sb.client.calls.get(call.call_id)
        assert live.status == "answered"
        assert live.answered_at is not None
        assert live.ended_at is None
        await sb.wait_for_status(call.call_id, "completed")
        current = await sb.client.calls.get(call.call_id)
        assert current.status == "completed"
        assert current.answered_at == live.answered_at
        assert current.ended_at is not None
        assert current.initiated_at is not None
        assert current.initiated_at <= current.answered_at <= current.ended_at
        assert current.duration is not None
        assert current.duration >= 40


async def test_each_typed_error() -> None:
    async with Sandbox(speed=100, api_key="sk_right", max_concurrent=1) as sb:
        client = sb.client.with_options(max_retries=0)

        # The client validates numbers as the sandbox does: reach the sandbox's own check
        # by rewriting a valid request on the wire.
        def spoil(request: httpx.Request) -> httpx.Request:
            return with_body(request, request.content.replace(TO.encode(), b"+1415"))

        tapped = httpx.AsyncClient(transport=Tap(spoil))
        async with (
            tapped,
            au.AsyncAudian(
                sb.api_key, base_url=sb.base_url, http_client=tapped, max_retries=0
            ) as raw,
        ):
            with pytest.raises(au.InvalidNumberError) as invalid:
                await raw.calls.create(from_=OWNED, to=TO)
        assert invalid.value.status_code == 400
        assert invalid.value.error == "invalid_number"

        async with au.AsyncAudian("sk_wrong", base_url=sb.base_url, max_retries=0) as wrong:
            with pytest.raises(au.AuthenticationError) as unauthenticated:
                await wrong.calls.create(from_=OWNED, to=TO)
        assert unauthenticated.value.status_code == 401

        with pytest.raises(au.UnauthorizedCallerIdError) as denied:
            await client.calls.create(from_="+14155559999", to=TO)
        assert denied.value.status_code == 403

        with pytest.raises(au.NotFoundError):
            await client.calls.get("call_missing")

        long = {"sandbox_talk_seconds": 300}  # three real seconds on the line
        await client.calls.create(from_=OWNED, to=TO, tags=long)
        with pytest.raises(au.RateLimitedError) as limited:
            await client.calls.create(from_=OWNED, to="+14155552673")
        assert limited.value.status_code == 429
        assert limited.value.retry_after == 1.0
        assert "Maximum: 1" in limited.value.message
        assert len(sb.calls) == 1


async def test_idempotency_key_returns_the_same_call() -> None:
    async with Sandbox(speed=100) as sb:
        first = await sb.client.calls.create(from_=OWNED, to=TO, idempotency_key="order-42")
        again = await sb.client.calls.create(from_=OWNED, to=TO, idempotency_key="order-42")
        assert again.call_id == first.call_id
        assert again.call_uuid == first.call_uuid
        stats = sb.stats
        assert stats["calls_created"] == 1
        assert stats["idempotent_replays"] == 1
        assert list(sb.calls) == [first.call_id]


async def test_a_lost_reply_times_out_and_the_same_key_recovers_the_call() -> None:
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0})
    async with Sandbox(speed=100, faults=faults, client_options={"timeout": 0.5}) as sb:
        with pytest.raises(au.APITimeoutError):
            await sb.client.calls.create(from_=OWNED, to=TO, idempotency_key="lost-1")
        assert sb.post_count == 1  # the SDK never retries a POST that may have acted
        (placed,) = sb.calls
        sb.faults.no_reply_rate.clear()
        again = await sb.client.calls.create(from_=OWNED, to=TO, idempotency_key="lost-1")
        assert again.call_id == placed
        assert len(sb.calls) == 1


async def test_an_injected_503_is_retried_transparently() -> None:
    # With seed 3 this create's first sending gets the 503 and its second (the retry, the
    # same request a second time) does not.
    faults = Faults(error_rate={"POST /v2/calls": 0.5}, seed=3)
    async with Sandbox(speed=100, faults=faults) as sb:
        call = await sb.client.calls.create(from_=OWNED, to=TO)
        assert call.status == "initiated"
        assert sb.post_count == 2
        assert sb.stats["injected_errors"] == 1
        assert list(sb.calls) == [call.call_id]
