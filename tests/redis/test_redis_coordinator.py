"""RedisCoordinator's leases against a real redis-server, on asyncio and trio.

A process that stalls (a blocked loop, a long GC pause) misses its lease renewals. Whether it
still holds an item is then Redis's answer, not its own stale clock's: giving the item up
on a stale clock alone leaves it to nobody, since the process goes on renewing its lease.
The stalls below block the loop on purpose (``time.sleep``): they are the fault under test.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from audian_async import RetryPolicy, validate_call_request
from audian_async.dialer import RedisStore
from audian_async.dialer._machine import Item, ItemState
from audian_async.dialer._redis_coordinator import RedisCoordinator
from audian_async.dialer._redis_state import RedisCampaignState

from ..dialer.support import req

pytestmark = pytest.mark.anyio

LEASE = 1.0


def coordinator(redis_url: str, ns: str) -> RedisCoordinator:
    return RedisCoordinator(
        "leases",
        RetryPolicy(max_attempts=2),
        RedisStore(redis_url, namespace=ns, lease=LEASE),
        max_active_calls=5,
        calls_per_second=None,
        create_deadline=10.0,
    )


@pytest.fixture
async def claimed(redis_url: str, ns: str) -> AsyncIterator[tuple[RedisCoordinator, Item]]:
    first = coordinator(redis_url, ns)
    await first.open(None, [validate_call_request(req("+14155550100"))])
    try:
        item = await first.claim()
        assert item is not None
        yield first, item
    finally:
        await first.close()


@pytest.fixture
async def service(redis_url: str, ns: str) -> AsyncIterator[RedisCoordinator]:
    """An open service campaign (its items come by ``add()``)."""
    opened = coordinator(redis_url, ns)
    await opened.open(None)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_stalled_process_that_kept_its_lease_still_places_the_item(
    claimed: tuple[RedisCoordinator, Item],
) -> None:
    first, item = claimed
    time.sleep(LEASE * 0.8)  # noqa: ASYNC251 - a stalled loop: its renewals are missed
    assert await first.holds(item) is True  # but nobody took it: renewed, still its own


async def test_a_stalled_process_whose_lease_was_taken_does_not_place_the_item(
    claimed: tuple[RedisCoordinator, Item], redis_url: str, ns: str
) -> None:
    first, item = claimed
    time.sleep(LEASE * 1.2)  # noqa: ASYNC251 - the lease expires during the stall
    second = coordinator(redis_url, ns)
    taken = await second.open(None, [validate_call_request(req("+14155550100"))])
    try:
        assert [i.index for i in taken] == [item.index]
        assert await first.holds(item) is False
        assert await second.holds(taken[0]) is True
    finally:
        await second.close()


async def test_a_renewal_that_crossed_a_new_claim_of_the_item_does_not_give_it_up(
    claimed: tuple[RedisCoordinator, Item], redis_url: str, ns: str
) -> None:
    # The item's call ends in another process (the webhook went there) and its redial is due
    # at once; this process still counts the item as held, renews, and claims it again
    # while the renewal's answer ("not yours any more") is on its way.
    first, item = claimed
    await first.begin(item)
    await first.placed(item, "call-1", time.time())
    elsewhere = RedisCampaignState(first.connection, "leases", namespace=ns)
    now = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0, jitter=False)
    ended = await elsewhere.ended("call-1", "failed", "busy", now)
    assert ended is not None
    assert ended.state is ItemState.WAITING
    renew = first.state.renew
    claimed_again: list[Item | None] = []

    async def renewal_overtaken(*args: Any) -> list[int]:
        lost = await renew(*args)
        assert lost == [item.index]  # true when Redis answered: the end released it
        claimed_again.append(await first.claim())  # ... and its answer came in later
        return lost

    first.state.renew = renewal_overtaken  # type: ignore[method-assign]
    await first._renew()
    again = claimed_again[0]
    assert again is not None
    assert (again.index, again.state) == (item.index, ItemState.PLACING)
    first.state.renew = renew  # type: ignore[method-assign]
    assert await first.holds(again) is True
    await first._renew()  # the next renewal keeps the fresh claim's lease
    assert await first.holds(again) is True


async def test_a_handler_deciding_before_another_process_recorded_the_call_waits_for_it(
    claimed: tuple[RedisCoordinator, Item], redis_url: str, ns: str
) -> None:
    # The call's webhook reached this process before the placing process recorded the
    # create's reply: the finish is kept in Redis, and answered once the call is recorded.
    placer, item = claimed
    await placer.begin(item)
    decider = coordinator(redis_url, ns)
    await decider.open(None, [validate_call_request(req("+14155550100"))])
    try:
        answers: list[tuple[bool, Any]] = []

        async def finish() -> None:
            answers.append(await decider.finish("call-early"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish)
            key = f"{{{ns}}}:early-decision:call-early"
            with anyio.fail_after(10):
                while not await placer.connection.call("EXISTS", key):  # noqa: ASYNC110
                    await anyio.sleep(0.005)  # Redis's state, polled
            assert answers == []  # still waiting for the call to be recorded
            await placer.placed(item, "call-early", time.time())
        assert answers == [(True, None)]
        now = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0, jitter=False)
        ended = await decider.state.ended("call-early", "failed", "busy", now)
        assert ended is not None
        assert ended.state is ItemState.FAILED  # the kept finish, not the policy's redial
        # A call no process is creating: not this campaign's, answered at once.
        assert await decider.finish("call-unknown") == (False, None)
    finally:
        await decider.close()


async def test_a_claim_that_returns_before_the_add_places_the_item_submitted(
    service: RedisCoordinator,
) -> None:
    # A submitted item is claimable once Redis has it, so under load this process's own
    # claim can get its reply before the add does. Both must be the one item: a second copy
    # would be what the placer follows (a scheduled call kept its slot, a live call went
    # unpolled) while every update from Redis went to the other.
    add = service.state.add
    claims: list[Item | None] = []

    async def add_then_claim(index: int, wire: str) -> bool:
        added = await add(index, wire)
        claims.append(await service.claim())  # before add() has returned
        return added

    service.state.add = add_then_claim  # type: ignore[method-assign]
    item = await service.add(validate_call_request(req("+14155550100")))
    assert len(claims) == 1
    assert claims[0] is item
    assert service.item(item.index) is item
    assert item.state is ItemState.PLACING
    await service.begin(item)
    await service.placed(item, "call-claimed-first", time.time())
    assert (item.state, item.call_ids) == (ItemState.LIVE, ["call-claimed-first"])
    assert service.item_for("call-claimed-first") is item


async def test_an_add_that_fails_leaves_no_item_behind(service: RedisCoordinator) -> None:
    async def refused(index: int, wire: str) -> bool:
        raise RuntimeError("refused")

    service.state.add = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="refused"):
        await service.add(validate_call_request(req("+14155550100")))
    assert service.items == {}


async def test_a_submit_cancelled_while_its_add_is_on_the_way_returns_the_item(
    service: RedisCoordinator,
) -> None:
    # Once the add is sent, Redis may have the item and would have it placed: cancelled
    # while it waits for the reply, the add must finish and return the item (the one a
    # claim then finds), never raise for an item that will be dialed.
    add = service.state.add
    sending = anyio.Event()

    async def add_in_flight(index: int, wire: str) -> bool:
        sending.set()
        return await add(index, wire)  # the test cancels while this waits for Redis

    service.state.add = add_in_flight  # type: ignore[method-assign]
    added: list[Item] = []

    async def submit() -> None:
        added.append(await service.add(validate_call_request(req("+14155550100"))))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(submit)
            await sending.wait()
            tg.cancel_scope.cancel()
    assert len(added) == 1
    assert await service.claim() is added[0]
