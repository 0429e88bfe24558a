"""Fault injection: errors that did not act, replies that never arrive, latency."""

from __future__ import annotations

import httpx
import pytest

import audian_async as au
from audian_async.sandbox import Faults, Sandbox

from .conftest import OWNED

pytestmark = pytest.mark.anyio


async def test_injected_503_does_not_act_and_the_client_retries() -> None:
    async with Sandbox(speed=200, faults=Faults(error_rate={"POST /v2/calls": 1.0})) as sb:
        client = sb.client.with_options(max_retries=1)
        with pytest.raises(au.ServerError) as failed:
            await client.calls.create(from_=OWNED, to="+14155552672")
        assert failed.value.status_code == 503
        assert sb.post_count == 2  # retried once: a 503 proves nothing was placed
        assert not sb.calls
        sb.faults.error_rate["POST /v2/calls"] = 0.0  # runtime change
        call = await client.calls.create(from_=OWNED, to="+14155552672")
        assert list(sb.calls) == [call.call_id]


async def test_a_lost_reply_acts_once_and_the_same_key_returns_that_call() -> None:
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0})
    async with Sandbox(speed=200, faults=faults, client_options={"timeout": 0.5}) as sb:
        with pytest.raises(au.APITimeoutError):
            await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="once")
        assert sb.post_count == 1  # a read timeout on a POST is never retried by the SDK
        assert len(sb.calls) == 1
        (placed,) = sb.calls
        sb.faults.no_reply_rate.clear()
        again = await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="once")
        assert again.call_id == placed
        assert len(sb.calls) == 1


async def test_error_rate_on_gets_and_latency() -> None:
    faults = Faults(error_rate={"GET /v2/calls/{id}": 0.5}, latency=0.01, seed=3)
    async with Sandbox(speed=200, faults=faults) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155552672")
        url = f"{sb.base_url}/calls/{call.call_id}"
        async with httpx.AsyncClient(headers={"X-Auth-Token": sb.api_key}) as http:
            statuses = {(await http.get(url)).status_code for _ in range(20)}
        assert statuses == {200, 503}
        assert sb.stats["injected_errors"] > 0


@pytest.mark.parametrize(
    ("status", "error", "retry_after"),
    [
        (500, "internal_error", None),
        (502, "bad_gateway", None),
        (503, "service_unavailable", "1"),
        (504, "gateway_timeout", None),
        (429, "rate_limited", "1"),
    ],
)
async def test_injected_errors_follow_their_status(
    status: int, error: str, retry_after: str | None
) -> None:
    faults = Faults(error_rate={"*": 1.0}, error_status=status)
    async with Sandbox(speed=200, faults=faults) as sb:
        async with httpx.AsyncClient(headers={"X-Auth-Token": sb.api_key}) as http:
            response = await http.get(f"{sb.base_url}/calls/call_x")
        assert response.status_code == status
        assert response.json() == {"error": error, "message": "Injected fault", "code": status}
        assert response.headers.get("retry-after") == retry_after
