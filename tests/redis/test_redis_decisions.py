"""The application's decisions (a handler's finish() and redial()) kept in Redis, so that
whichever process gets a call's end applies them: against a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from audian_async.dialer import RetryPolicy
from audian_async.dialer._machine import NOT_REOPENED, ItemState
from audian_async.dialer._redis_connection import RedisConnection
from audian_async.dialer._redis_state import NothingDue, RedisCampaignState

from .test_redis_state import LATER, NOW, claimed, live_item, opened

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisConnection]:
    async with RedisConnection(redis_url) as connection:
        yield connection


async def other_process(redis: RedisConnection, ns: str) -> RedisCampaignState:
    """The same campaign as another process sees it (its own object, same keys)."""
    return RedisCampaignState(redis, "camp", namespace=ns)


async def test_finish_ends_a_waiting_item_now_and_cancels_its_redial(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    await live_item(state, "c1")
    waiting = await state.ended("c1", "failed", "busy", LATER)
    assert waiting is not None
    assert waiting.state is ItemState.WAITING
    elsewhere = await other_process(redis, ns)
    finished, change = await elsewhere.finish("c1")
    assert finished
    assert change is not None
    assert (change.state, change.record.reason, change.record.next_at) == (
        ItemState.FAILED,
        "busy",
        None,
    )
    counts = await state.counts()
    assert (counts.unfinished, counts.states[ItemState.WAITING]) == (0, 0)
    assert counts.states[ItemState.FAILED] == 1
    assert await state.claim("p1", 10, lease=30.0) == NothingDue(None)  # no redial left
    assert await elsewhere.finish("c1") == (False, None)  # finished already


async def test_finish_of_a_call_going_on_is_applied_by_whichever_process_gets_its_end(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await live_item(state, "c1")
    elsewhere = await other_process(redis, ns)
    assert await elsewhere.finish("c1") == (True, None)  # kept for the call's end
    assert await elsewhere.redial("c1", {"*": 0.0}, 3) == (False, None)  # finish wins
    change = await state.ended("c1", "failed", "busy", NOW)  # NOW alone would redial busy
    assert change is not None
    assert (change.state, change.record.reason) == (ItemState.FAILED, "busy")
    assert await state.live() == 0
    # An item whose redial is being created ends with the call it is about to place.
    await live_item(state, "r1")
    await state.ended("r1", "failed", "busy", NOW)
    redial = await claimed(state)
    assert (redial.index, redial.attempt) == (1, 2)
    assert await elsewhere.finish("r1") == (True, None)
    await state.placed("p1", redial.index, redial.attempt, "r2", NOW)
    done = await state.ended("r2", "failed", "busy", NOW)
    assert done is not None
    assert (done.state, done.record.call_ids) == (ItemState.FAILED, ("r1", "r2"))


async def test_a_redial_of_a_call_going_on_is_applied_by_whichever_process_gets_its_end(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    await live_item(state, "c1")
    elsewhere = await other_process(redis, ns)
    assert await elsewhere.redial("c1", {"busy": 5.0, "*": 60.0}, 3) == (True, None)
    assert await elsewhere.redial("c1", {"*": 1.0}, 3) == (True, None)  # the last one counts
    assert await elsewhere.redial("other", {"*": 1.0}, 3) == (None, None)  # not recorded
    change = await state.ended("c1", "completed", None, NOW)  # the policy never redials it
    assert change is not None
    assert (change.state, change.delay, change.record.reason) == (ItemState.WAITING, 1.0, None)
    assert await state.live() == 0
    # Waiting (then being placed) already: a redial after c1 is scheduled.
    assert await elsewhere.redial("c1", {"*": 0.0}, 3) == (True, None)
    # The reason's own delay, else the default.
    other = await opened(redis, ns, 1, "by-reason")
    await live_item(other, "r1")
    await other.redial("r1", {"busy": 5.0, "*": 60.0}, 3)
    busy = await other.ended("r1", "failed", "busy", NOW)
    assert busy is not None
    assert (busy.state, busy.delay, busy.record.reason) == (ItemState.WAITING, 5.0, "busy")


async def test_a_redial_opens_a_finished_item_again(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 1, retention=600.0)
    await live_item(state, "c1")
    await state.ended("c1", "completed", None, NOW)
    meta = f"{{{ns}}}:c:{state.digest}:meta"
    assert await redis.call("PTTL", meta) > 0  # finished: its retention runs
    scheduled, change = await state.redial("c1", {"*": 0.0}, 3)
    assert scheduled
    assert change is not None
    assert (change.state, change.delay) == (ItemState.WAITING, 0.0)
    assert await redis.call("PTTL", meta) == -1  # unfinished again: kept
    counts = await state.counts()
    assert (counts.unfinished, counts.states[ItemState.COMPLETED]) == (1, 0)
    again = await claimed(state)
    assert (again.index, again.attempt) == (0, 2)
    assert await state.redial("c1", {"*": 0.0}, 3) == (True, None)  # being placed again


async def test_a_redial_is_refused_past_max_attempts_and_for_reasons_never_reopened(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await live_item(state, "c1")
    assert await state.redial("c1", {"*": 0.0}, 1) == (False, None)  # one attempt at most
    await live_item(state, "c2")
    await state.lost(1, "c2")
    assert await state.redial("c2", {"*": 0.0}, 3, NOT_REOPENED) == (False, None)
    assert await state.finish("c2") == (False, None)
    counts = await state.counts()
    assert counts.states[ItemState.FAILED] == 1


async def test_decisions_on_unknown_calls_or_another_campaigns_change_nothing(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    other = await opened(redis, ns, 1, "another")
    await live_item(other, "theirs")
    assert await state.finish("nope") == (None, None)  # kept in case its reply is to come
    assert await state.finish("theirs") == (False, None)
    assert await state.redial("theirs", {"*": 0.0}, 3) == (False, None)
    done = await other.ended("theirs", "failed", "busy", LATER)
    assert done is not None
    assert done.state is ItemState.WAITING  # no plan of this campaign reached it


async def test_a_decision_on_a_call_not_recorded_yet_is_applied_by_its_create_reply(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 3)
    elsewhere = await other_process(redis, ns)
    # A finish before the reply: kept, then applied when the call is recorded.
    first = await claimed(state)
    assert await elsewhere.finish("early-1") == (None, None)
    await state.placed("p1", first.index, first.attempt, "early-1", NOW)
    done = await state.ended("early-1", "failed", "busy", NOW)  # NOW alone would redial busy
    assert done is not None
    assert (done.state, done.record.reason) == (ItemState.FAILED, "busy")
    assert await redis.call("EXISTS", f"{{{ns}}}:early-decision:early-1") == 0
    # A redial before the reply (and before the call's end, which also comes early).
    second = await claimed(state)
    assert await elsewhere.redial("early-2", {"*": 7.0}, 3) == (None, None)
    assert await elsewhere.redial("early-2", {"*": 1.0}, 3) == (None, None)  # first one wins
    assert await state.ended("early-2", "completed", None, NOW) is None  # kept too
    again = await state.placed("p1", second.index, second.attempt, "early-2", NOW)
    assert again is not None
    assert (again.state, again.delay) == (ItemState.WAITING, 7.0)
    # A redial kept for a call past max attempts is not applied.
    third = await claimed(state)
    assert await elsewhere.redial("early-3", {"*": 0.0}, 1) == (None, None)
    one_attempt = RetryPolicy(max_attempts=1)
    await state.placed("p1", third.index, third.attempt, "early-3", one_attempt)
    final = await state.ended("early-3", "completed", None, NOW)
    assert final is not None
    assert final.state is ItemState.COMPLETED
