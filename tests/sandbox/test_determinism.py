"""A seeded sandbox makes the same decisions for the same calls, whatever the timing."""

from __future__ import annotations

import random
from typing import Any

import anyio
import httpx
import pytest

from audian_async.sandbox import Faults, Sandbox

from .conftest import OWNED, Receiver

pytestmark = pytest.mark.anyio

# Every outcome, twice, some recorded: calls with two to five events and a recording or not.
NUMBERS = [f"+1415555010{i}" for i in range(8)] * 2 + ["+14155552672"] * 4


async def _scenario(seed: int, receiver: Receiver) -> dict[str, Any]:
    """Place calls one request at a time over HTTP; return every decision the sandbox made."""
    faults = Faults(
        error_rate={"POST /v2/calls": 0.2, "GET /v2/calls/{id}": 0.3},
        error_status=500,
        no_reply_rate={"POST /v2/calls": 0.15},
        no_reply_hold=0.0,  # the lost reply becomes a 504 at once: no client timeout involved
    )
    async with (
        Sandbox(
            speed=200,
            seed=seed,
            faults=faults,
            webhook_urls=[receiver.url],
            drop_rate=0.3,
            duplicate_rate=0.3,
        ) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers={"X-Auth-Token": sb.api_key}) as http,
    ):
        replies = []
        for index, number in enumerate(NUMBERS):
            body: dict[str, Any] = {"from": OWNED, "to": number, "timeout": 5}
            if index % 3 == 0:
                body["recording"] = {"enabled": True}
            reply = await http.post("/calls", json=body)
            replies.append((number, reply.status_code, reply.json().get("call_id")))
        batch = await http.post("/calls/batch", json={"calls": [{"from": OWNED, "to": NUMBERS[0]}]})
        gets = [(await http.get(f"/calls/{cid}")).status_code for _, _, cid in replies if cid]
        await sb.wait_idle()
        calls = sb.calls
        deliveries = sb.deliveries
    return {
        "replies": replies,
        "batch": batch.json(),
        "gets": gets,
        "calls": {
            cid: (
                c.call.call_uuid,
                c.to,
                [(e.id, e.type) for e in c.events],
                c.recordings,
                c.actions,
            )
            for cid, c in calls.items()
        },
        # Deliveries are recorded as workers finish: compare them as a sorted multiset.
        "deliveries": sorted(
            (d.webhook_id, d.event, d.call_id, d.attempt, d.dropped, d.duplicate, d.status_code)
            for d in deliveries
        ),
    }


async def test_the_same_seed_makes_the_same_decisions_for_the_same_calls(
    receiver: Receiver,
) -> None:
    first = await _scenario(2024, receiver)
    second = await _scenario(2024, receiver)
    assert first["replies"] == second["replies"]
    assert first["batch"] == second["batch"]
    assert first["gets"] == second["gets"]
    assert first["calls"] == second["calls"]
    assert first["deliveries"] == second["deliveries"]

    # The scenario exercised every knob, so the equality above says something.
    statuses = [status for _, status, _ in first["replies"]]
    assert {201, 500, 504} <= set(statuses)
    assert {200, 500} <= set(first["gets"])
    deliveries = first["deliveries"]
    assert any(dropped for *_, dropped, _, _ in deliveries)
    assert any(duplicate for *_, duplicate, _ in deliveries)
    assert any(not dropped and not duplicate for *_, dropped, duplicate, _ in deliveries)
    assert any(recordings for _, _, _, recordings, _ in first["calls"].values())


async def test_another_seed_makes_other_ids() -> None:
    ids = []
    for seed in (1, 2):
        async with Sandbox(speed=200, seed=seed) as sb:
            call = await sb.client.calls.create(from_=OWNED, to="+14155550101")
            done = await sb.wait_for_status(call.call_id)
            ids.append((call.call_id, done.call.call_uuid, done.events[0].id))
    assert ids[0] != ids[1]
    assert all(a != b for a, b in zip(*ids, strict=True))


async def _concurrent(seed: int, order: list[int]) -> dict[int, tuple[int, str | None, Any]]:
    """Send distinct creates all at once, in ``order``; return each one's reply and call."""
    faults = Faults(error_rate={"POST /v2/calls": 0.25}, error_status=503)
    results: dict[int, tuple[int, str | None, Any]] = {}
    async with (
        Sandbox(speed=200, seed=seed, faults=faults) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers={"X-Auth-Token": sb.api_key}) as http,
    ):

        async def create(index: int) -> None:
            body = {"from": OWNED, "to": NUMBERS[index % 8], "tags": {"n": str(index)}}
            reply = await http.post("/calls", json=body)
            call_id = reply.json().get("call_id")
            results[index] = (reply.status_code, call_id, None)

        async with anyio.create_task_group() as tg:
            for index in order:
                tg.start_soon(create, index)
        await sb.wait_idle()
        calls = sb.calls
    return {
        index: (status, call_id, None if call_id is None else calls[call_id].call.call_uuid)
        for index, (status, call_id, _) in results.items()
    }


async def test_concurrent_requests_get_the_same_decisions_in_any_arrival_order() -> None:
    indices = list(range(24))
    forward = await _concurrent(7, indices)
    backward = await _concurrent(7, indices[::-1])
    shuffled = indices[:]
    random.Random(3).shuffle(shuffled)
    assert forward == backward == await _concurrent(7, shuffled)
    assert {status for status, _, _ in forward.values()} == {201, 503}  # the knob was hit
