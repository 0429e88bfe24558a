"""RedisCampaignState against a real redis-server, on asyncio and trio.

No assertion rests on wall-clock timing: waits poll for the state they need under a
deadline, and durations are only checked against generous bounds.
"""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from audian_async import AudianError, RetryPolicy
from audian_async.dialer import _redis_scripts as lua
from audian_async.dialer._caller_ids import CallerIdPool
from audian_async.dialer._machine import ItemState
from audian_async.dialer._redis_connection import RedisConnection
from audian_async.dialer._redis_state import (
    Change,
    Claimed,
    NoCallerId,
    NoSlot,
    NothingDue,
    RedisCampaignState,
    campaign_digest,
    redial_decisions,
    requests_digest,
)

from ..loopback import free_port

pytestmark = pytest.mark.anyio

NOW = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter=False)
"""Redials due at once: a redial is claimable without sleeping."""
LATER = RetryPolicy(max_attempts=3, base_delay=60.0, max_delay=60.0, jitter=False)
DEADLINE = 10.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisConnection]:
    async with RedisConnection(redis_url) as connection:
        yield connection


def wires(n: int, tag: str = "") -> list[str]:
    return [f'{{"to":"+1415555{i:04d}","from":"+14155552671"{tag}}}' for i in range(n)]


async def opened(
    redis: RedisConnection, ns: str, n: int, name: str = "camp", **kw: Any
) -> RedisCampaignState:
    state = RedisCampaignState(redis, name, namespace=ns, **kw)
    await state.open(wires(n))
    return state


async def claimed(state: RedisCampaignState, pid: str = "p1", limit: int = 10) -> Claimed:
    claim = await state.claim(pid, limit, lease=30.0)
    assert isinstance(claim, Claimed), claim
    return claim


async def live_item(state: RedisCampaignState, call_id: str, pid: str = "p1") -> Claimed:
    claim = await claimed(state, pid)
    change = await state.placed(pid, claim.index, claim.attempt, call_id, NOW)
    assert change is not None
    assert change.state is ItemState.LIVE
    return claim


async def snapshot(redis: RedisConnection, ns: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in sorted(await redis.call("KEYS", f"{{{ns}}}:*")):
        found[key] = (await redis.call("TYPE", key), await redis.call("DUMP", key))
    return found


# --- opening -------------------------------------------------------------------------------


async def test_open_creates_the_campaign_and_a_reopen_joins_it(
    redis: RedisConnection, ns: str
) -> None:
    first = RedisCampaignState(redis, "winter-sale", namespace=ns)
    created = await first.open(wires(5), nonce_candidate="n1")
    assert created.created
    assert created.nonce == "n1"
    assert created.counts.total == 5
    assert created.counts.unfinished == 5
    assert created.counts.states[ItemState.PENDING] == 5
    second = RedisCampaignState(redis, "winter-sale", namespace=ns)
    joined = await second.open(wires(5), nonce_candidate="n2")
    assert not joined.created
    assert joined.nonce == "n1"  # the first opener's nonce
    assert joined.counts == created.counts
    assert second.round_trips == 1  # a complete campaign is not written again
    assert await second.request(3) == wires(5)[3]
    assert [r.state for r in await second.records()] == ["pending"] * 5


async def test_a_different_request_list_raises_before_anything_changes(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 3)
    claim = await claimed(state)
    before = await snapshot(redis, ns)
    for other in (wires(3, ',"x":1'), wires(4), None):
        with pytest.raises(AudianError, match="'camp'"):
            await RedisCampaignState(redis, "camp", namespace=ns).open(other)
    assert await snapshot(redis, ns) == before
    # And a service campaign does not take a request list either.
    service = RedisCampaignState(redis, "svc", namespace=ns)
    await service.open(None)
    with pytest.raises(AudianError, match="service campaign"):
        await RedisCampaignState(redis, "svc", namespace=ns).open(wires(1))
    assert claim.index == 0


async def test_a_big_campaign_opens_in_chunks_and_reads_back_in_order(
    redis: RedisConnection, ns: str
) -> None:
    requests = wires(10_000)
    state = RedisCampaignState(redis, "big", namespace=ns)
    result = await state.open(requests, digest=requests_digest(requests))
    assert result.counts.total == 10_000
    assert result.counts.states[ItemState.PENDING] == 10_000
    assert 10 <= state.round_trips <= 15  # begin, ~10 chunks, counts
    assert (await claimed(state)).index == 0  # numeric order, not "0", "1", "10", ...
    assert (await claimed(state)).index == 1
    records = await state.records(with_requests=True)
    assert [r.index for r in records] == list(range(10_000))
    assert records[9_999].request == requests[9_999]
    assert [r.index for r in await state.records([5, 9_999, 20_000])] == [5, 9_999]


async def test_concurrent_opens_write_each_item_once(redis_url: str, ns: str) -> None:
    requests = wires(3_500)
    results: list[Any] = []
    async with RedisConnection(redis_url) as one, RedisConnection(redis_url) as two:

        async def open_with(connection: RedisConnection, nonce: str) -> None:
            state = RedisCampaignState(connection, "race", namespace=ns)
            results.append(await state.open(requests, nonce_candidate=nonce))

        async with anyio.create_task_group() as tg:
            tg.start_soon(open_with, one, "a")
            tg.start_soon(open_with, two, "b")
        counts = await RedisCampaignState(one, "race", namespace=ns).counts()
    assert {r.nonce for r in results} in ({"a"}, {"b"})
    assert sorted(r.created for r in results) == [False, True]
    assert counts.total == 3_500
    assert counts.states[ItemState.PENDING] == 3_500


async def test_an_open_cut_short_is_completed_by_the_next_open(
    redis: RedisConnection, ns: str
) -> None:
    requests = wires(2_500)
    crashed = RedisCampaignState(redis, "resume", namespace=ns)
    # What a process that died after its first chunk leaves behind.
    digest = requests_digest(requests)
    await crashed._script(lua.OPEN_BEGIN, [], "resume", digest, "n1", 2_500, 60_000)
    await crashed._write_chunk(0, requests[:1_000], digest)
    assert isinstance(await crashed.claim("p1", 10, lease=30.0), Claimed)  # claimable already
    partial = await crashed.counts()
    assert (partial.total, partial.unfinished) == (2_500, 2_500)  # never looks finished
    resumed = await RedisCampaignState(redis, "resume", namespace=ns).open(requests)
    assert (resumed.nonce, resumed.created) == ("n1", False)
    assert resumed.counts.states[ItemState.PENDING] == 2_499
    assert resumed.counts.states[ItemState.PLACING] == 1


async def test_service_campaign_items_are_added_one_by_one(redis: RedisConnection, ns: str) -> None:
    state = RedisCampaignState(redis, "svc", namespace=ns)
    with pytest.raises(AudianError, match="open it first"):
        await state.add(0, wires(1)[0])
    await state.open(None)
    assert await state.add(0, wires(1)[0])
    assert not await state.add(0, wires(1)[0])  # the same add again changes nothing
    with pytest.raises(AudianError, match="another request"):
        await state.add(0, wires(2)[1])
    claim = await live_item(state, "c1")
    await state.ended("c1", "completed", None, NOW)
    meta = f"{{{ns}}}:c:{campaign_digest('svc')}:meta"
    assert await redis.call("PTTL", meta) > 0  # finished: retention runs
    assert await state.add(1, wires(2)[1])
    assert await redis.call("PTTL", meta) == -1  # unfinished again: kept
    counts = await state.counts()
    assert (counts.total, counts.unfinished) == (2, 1)
    assert claim.index == 0


async def test_processes_adding_to_one_campaign_never_share_an_index(
    redis: RedisConnection, ns: str
) -> None:
    first = RedisCampaignState(redis, "svc", namespace=ns)
    with pytest.raises(AudianError, match="open it first"):
        await first.reserve()
    await first.open(None)
    second = RedisCampaignState(redis, "svc", namespace=ns)
    await second.open(None)
    indices = [await state.reserve() for state in (first, second, first, second)]
    assert indices == [0, 1, 2, 3]
    assert await second.add(indices[1], wires(2)[1])
    assert await first.reserve() == 4  # an index reserved and left unused stays a gap
    assert (await first.counts()).total == 1
    listed = await opened(redis, ns, 3, name="run")
    assert await listed.reserve() == 3  # after a run's own items


# --- claiming ------------------------------------------------------------------------------


async def test_the_limit_holds_across_campaigns_and_processes(
    redis: RedisConnection, ns: str
) -> None:
    a = await opened(redis, ns, 5, "a")
    b = await opened(redis, ns, 5, "b")
    got = [
        await a.claim("p1", 3, lease=30.0),
        await b.claim("p2", 3, lease=30.0),
        await a.claim("p2", 3, lease=30.0),
    ]
    assert all(isinstance(c, Claimed) for c in got)
    assert isinstance(await b.claim("p1", 3, lease=30.0), NoSlot)
    assert isinstance(await a.claim("p2", 3, lease=30.0), NoSlot)
    assert await a.live() == 3
    first = got[0]
    assert isinstance(first, Claimed)
    assert await a.refused("p1", first.index, "invalid_request") is not None
    assert isinstance(await b.claim("p1", 3, lease=30.0), Claimed)
    assert await b.live() == 3


async def test_nothing_due_says_when_the_redial_is(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 1)
    await live_item(state, "c1")
    change = await state.ended("c1", "failed", "busy", LATER)
    assert change is not None
    assert change.state is ItemState.WAITING
    assert change.delay == 60.0
    assert change.record.next_at is not None
    nothing = await state.claim("p1", 10, lease=30.0)
    assert isinstance(nothing, NothingDue)
    assert nothing.due_in is not None
    assert 0 < nothing.due_in <= 60.0
    await state.refused("p1", 0, "x")  # not placing: nothing
    empty = RedisCampaignState(redis, "empty", namespace=ns)
    await empty.open(None)
    assert await empty.claim("p1", 10, lease=30.0) == NothingDue(None)


async def test_the_pace_wait_grows_by_the_interval(redis: RedisConnection, ns: str) -> None:
    a = await opened(redis, ns, 3, "a")
    b = await opened(redis, ns, 3, "b")
    waits = []
    for state in (a, b, a):  # the pace is the namespace's, shared by its campaigns
        claim = await state.claim("p1", 10, lease=30.0, pace_interval=100.0)
        assert isinstance(claim, Claimed)
        waits.append(claim.pace_wait)
    assert waits[0] == 0.0
    # Each claim books the next interval; only the time between the claims is taken off.
    assert 50.0 < waits[1] <= 100.0
    assert 150.0 < waits[2] <= 200.0
    assert waits[2] - waits[1] > 50.0


async def test_concurrent_claimers_never_exceed_the_limit(redis_url: str, ns: str) -> None:
    limit, items = 7, 120
    claims: list[int] = []
    holding = peak = 0
    async with RedisConnection(redis_url) as one, RedisConnection(redis_url) as two:
        states = [await opened(one, ns, items), RedisCampaignState(two, "camp", namespace=ns)]
        await states[1].open(wires(items))

        async def worker(n: int) -> None:
            nonlocal holding, peak
            state = states[n % 2]
            pid = f"p{n % 2}"
            rng = random.Random(n)
            while True:
                claim = await state.claim(pid, limit, lease=30.0)
                if isinstance(claim, NothingDue):
                    if await state.live() == 0 and claim.due_in is None:
                        return
                    await anyio.sleep(0.001)
                    continue
                if isinstance(claim, NoSlot):
                    await anyio.sleep(0.001)
                    continue
                # Counted after the claim and before the end: never more than Redis holds.
                holding += 1
                peak = max(peak, holding)
                claims.append(claim.index)
                call_id = f"call-{claim.index}"
                await state.placed(pid, claim.index, claim.attempt, call_id, NOW)
                await anyio.sleep(rng.random() / 1000)
                holding -= 1
                assert await state.ended(call_id, "completed", None, NOW) is not None

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for n in range(50):
                    tg.start_soon(worker, n)
        counts = await states[0].counts()
        assert await states[0].live() == 0
    assert sorted(claims) == list(range(items))  # each item claimed once
    assert 1 <= peak <= limit
    assert counts.states[ItemState.COMPLETED] == items
    assert counts.unfinished == 0


# --- calls ending --------------------------------------------------------------------------


async def test_placed_then_completed(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 2)
    claim = await live_item(state, "c1")
    assert await state.live() == 1
    change = await state.ended("c1", "completed", None, NOW)
    assert change is not None
    assert change == Change(0, ItemState.COMPLETED, None, change.record, state.digest)
    assert change.record.call_ids == ("c1",)
    assert change.record.attempt == claim.attempt == 1
    assert await state.live() == 0
    counts = await state.counts()
    assert (counts.attempts, counts.unfinished) == (1, 1)
    assert counts.states[ItemState.COMPLETED] == 1


async def test_a_scheduled_call_frees_its_slot_until_it_is_due(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await live_item(state, "c1")
    assert await state.live() == 1
    assert await state.scheduled(0, "c1") is True
    assert await state.scheduled(0, "c1") is False  # once only
    assert await state.scheduled(0, "other") is False  # not the item's call
    assert await state.live() == 0
    assert (await state.counts()).scheduled == 1
    assert await state.due(0, "c1") is True
    assert await state.due(0, "c1") is False
    assert await state.live() == 1
    assert (await state.counts()).scheduled == 0
    assert await state.ended("c1", "completed", None, NOW) is not None
    assert await state.live() == 0


async def test_a_scheduled_call_that_ends_before_its_time_frees_no_slot(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await live_item(state, "c1")
    await state.scheduled(0, "c1")
    await live_item(state, "c2")  # takes the slot it freed
    assert await state.live() == 1
    change = await state.ended("c1", "failed", "busy", NOW)  # a redial, before its time
    assert change is not None
    assert change.state is ItemState.WAITING
    assert await state.live() == 1  # still c2's
    assert (await state.counts()).scheduled == 0
    assert await state.due(0, "c1") is False


async def test_a_failed_call_is_redialed_as_the_next_attempt(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    await live_item(state, "c1")
    change = await state.ended("c1", "failed", "busy", NOW)
    assert change is not None
    assert (change.state, change.delay, change.record.reason) == (ItemState.WAITING, 0.0, "busy")
    assert await state.live() == 0
    again = await claimed(state)
    assert (again.index, again.attempt) == (0, 2)
    await state.placed("p1", 0, 2, "c2", NOW)
    done = await state.ended("c2", "failed", "declined", NOW)  # never redialed
    assert done is not None
    assert (done.state, done.record.reason) == (ItemState.FAILED, "declined")
    assert done.record.call_ids == ("c1", "c2")
    assert (await state.counts()).attempts == 2


async def test_the_last_attempt_fails_for_good(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 1)
    states = []
    for attempt in (1, 2, 3):
        claim = await claimed(state)
        assert claim.attempt == attempt
        await state.placed("p1", 0, attempt, f"c{attempt}", NOW)
        change = await state.ended(f"c{attempt}", "failed", "no_answer", NOW)
        assert change is not None
        states.append(change.state)
    assert states == [ItemState.WAITING, ItemState.WAITING, ItemState.FAILED]
    # A failure without a reason is "unknown", never redialed (as in the state machine).
    other = await opened(redis, ns, 1, "other")
    await live_item(other, "u1")
    unknown = await other.ended("u1", "failed", None, NOW)
    assert unknown is not None
    assert (unknown.state, unknown.record.reason) == (ItemState.FAILED, "unknown")


async def test_duplicate_stale_and_non_terminal_events_change_nothing(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await live_item(state, "c1")
    await live_item(state, "other")
    trips = state.round_trips
    assert await state.ended("c1", "ringing", None, NOW) is None
    assert await state.ended("c1", "some-future-status", None, NOW) is None
    assert state.round_trips == trips  # decided without asking Redis
    assert await state.ended("c1", "failed", "busy", NOW) is not None
    assert await state.ended("c1", "failed", "busy", NOW) is None  # duplicate
    assert await state.ended("c1", "completed", None, NOW) is None  # contradicting, late
    assert await state.live() == 1  # freed once
    await claimed(state)
    await state.placed("p1", 0, 2, "c1b", NOW)
    assert await state.ended("c1", "completed", None, NOW) is None  # stale: not the current call
    assert await state.live() == 2
    assert await state.lost(0, "c1") is None
    lost = await state.lost(0, "c1b")
    assert lost is not None
    assert (lost.state, lost.record.reason) == (ItemState.FAILED, "lost")
    assert await state.lost(0, "c1b") is None
    assert await state.live() == 1


async def test_an_early_event_is_applied_by_placed(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 2)
    first = await claimed(state)
    assert await state.ended("early-1", "failed", "busy", NOW) is None  # kept for placed
    trips = state.round_trips
    change = await state.placed("p1", first.index, first.attempt, "early-1", LATER)
    assert state.round_trips - trips == 2  # the decisions are sent only once needed
    assert change is not None
    assert (change.state, change.delay) == (ItemState.WAITING, 60.0)
    assert change.record.call_ids == ("early-1",)
    second = await claimed(state)
    assert await state.ended("early-2", "completed", None, NOW) is None
    assert await state.ended("early-2", "failed", "busy", NOW) is None  # the first one wins
    done = await state.placed("p1", second.index, second.attempt, "early-2", NOW)
    assert done is not None
    assert done.state is ItemState.COMPLETED
    assert await state.live() == 0
    assert await redis.call("EXISTS", f"{{{ns}}}:early:early-2") == 0


async def test_a_call_id_placed_twice_fails_the_second_item(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    first = await live_item(state, "same")
    assert await state.placed("p2", first.index, first.attempt, "same", NOW) is None  # replay
    second = await claimed(state)
    change = await state.placed("p1", second.index, second.attempt, "same", NOW)
    assert change is not None
    assert (change.state, change.record.reason) == (ItemState.FAILED, "duplicate_call_id")
    assert change.record.call_ids == ()
    assert await state.live() == 1  # the first call still holds its slot
    ended = await state.ended("same", "completed", None, NOW)
    assert ended is not None
    assert ended.index == first.index
    assert await state.live() == 0


async def test_an_event_for_another_campaign_finishes_that_campaign(
    redis: RedisConnection, ns: str
) -> None:
    mine = await opened(redis, ns, 1, "mine")
    theirs = await opened(redis, ns, 1, "theirs")
    await live_item(theirs, "theirs-1")
    change = await mine.ended("theirs-1", "completed", None, NOW)
    assert change is not None
    assert change.campaign == theirs.digest != mine.digest
    assert (await theirs.counts()).states[ItemState.COMPLETED] == 1


async def test_unplaced_puts_the_item_back_with_its_attempt(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    claim = await claimed(state)
    assert await state.unplaced("p2", 0) is None  # not the holder
    held = await state.unplaced("p1", 0, due_in=3_600.0)  # e.g. until its window opens
    assert held is not None
    assert (held.state, held.delay) == (ItemState.PENDING, 3_600.0)
    assert await state.live() == 0
    nothing = await state.claim("p1", 10, lease=30.0)
    assert isinstance(nothing, NothingDue)
    assert nothing.due_in is not None
    assert 3_000 < nothing.due_in <= 3_600
    # Due now: claimed again with the same attempt, so the same idempotency key.
    state2 = await opened(redis, ns, 1, "two")
    first = await claimed(state2)
    await state2.unplaced("p1", 0)
    assert (await claimed(state2)).attempt == first.attempt == claim.attempt


# --- leases --------------------------------------------------------------------------------


async def test_a_stalled_process_loses_its_items_to_another(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    placing = await state.claim("p1", 10, lease=0.05)
    live = await state.claim("p1", 10, lease=0.05)
    assert isinstance(placing, Claimed)
    assert isinstance(live, Claimed)
    await state.placed("p1", live.index, live.attempt, "c-live", NOW)
    assert await state.take_over("p2", 30.0) == []  # not expired yet (lease far from over)
    taken: dict[int, Any] = {}
    with anyio.fail_after(DEADLINE):
        while len(taken) < 2:
            for item in await state.take_over("p2", 30.0):
                taken[item.index] = item
            await anyio.sleep(0.01)
    assert taken[placing.index].record.state == "placing"
    assert taken[placing.index].record.attempt == placing.attempt  # replay the same key
    assert taken[placing.index].request == placing.request
    assert taken[live.index].record.call_ids == ("c-live",)
    assert await state.live() == 2  # slots stay held
    assert sorted(await state.renew("p1", 30.0, [placing.index, live.index])) == [0, 1]
    assert await state.renew("p2", 30.0, [placing.index, live.index]) == []
    assert await state.refused("p1", placing.index, "x") is None  # no longer its call
    assert await state.take_over("p3", 30.0) == []  # p2's leases run
    replay = await state.placed("p2", placing.index, placing.attempt, "c-placing", NOW)
    assert replay is not None
    assert replay.state is ItemState.LIVE
    assert await state.ended("c-live", "completed", None, NOW) is not None
    assert await state.renew("p2", 30.0, [live.index]) == [live.index]  # finished: not held


# --- lifetime ------------------------------------------------------------------------------


async def test_the_last_outcome_starts_the_retention_of_every_key(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2, retention=600.0)
    await live_item(state, "c1")
    await live_item(state, "c2")
    prefix = f"{{{ns}}}:c:{state.digest}:"
    assert 0 < await redis.call("PTTL", f"{{{ns}}}:call:c1") <= 600_000
    await state.ended("c1", "completed", None, NOW)
    assert await redis.call("PTTL", prefix + "meta") == -1
    await state.ended("c2", "failed", "declined", NOW)
    keys = await redis.call("KEYS", prefix + "*")
    assert {k.rpartition(":")[2] for k in keys} >= {"meta", "req", "items"}
    for key in keys:
        assert 0 < await redis.call("PTTL", key) <= 600_000, key
    assert (await state.counts()).unfinished == 0


async def test_an_early_event_expires(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 1)
    await state.ended("never-placed", "failed", "busy", NOW)
    assert 0 < await redis.call("PTTL", f"{{{ns}}}:early:never-placed") <= 3_600_000


async def test_steps_work_after_the_server_forgets_the_scripts(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 2)
    await redis.call("SCRIPT", "FLUSH")
    claim = await claimed(state)  # NOSCRIPT: the script is loaded again and retried
    await redis.call("SCRIPT", "FLUSH")
    assert await state.placed("p1", claim.index, claim.attempt, "c1", NOW) is not None


# --- the connection and the decision table -----------------------------------------------


@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_an_unreachable_redis_is_a_clear_error() -> None:
    connection = RedisConnection(f"redis://:secret-password@127.0.0.1:{free_port()}/0")
    with pytest.raises(AudianError, match="cannot reach Redis") as info:
        async with connection:
            pass
    assert "secret-password" not in str(info.value)
    assert "secret-password" not in repr(connection)
    del info
    gc.collect()


async def test_round_trips_are_counted(redis: RedisConnection, ns: str) -> None:
    state = await opened(redis, ns, 1)
    before, connection_before = state.round_trips, redis.round_trips
    claim = await claimed(state)
    await state.placed("p1", claim.index, claim.attempt, "c1", NOW)
    await state.ended("c1", "completed", None, NOW)
    assert state.round_trips - before == 3  # one per step
    assert redis.round_trips - connection_before == 3


def test_redial_decisions_follow_the_policy() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=10.0, max_delay=900.0, jitter=False)
    table = redial_decisions(policy)
    assert sorted(table) == sorted(policy.retry_on)
    assert table["busy"] == (policy.delay("busy", 1), policy.delay("busy", 2)) == (10.0, 20.0)
    only = redial_decisions(policy, ["declined", None, "busy"])
    assert only == {"declined": (), "unknown": (), "busy": (10.0, 20.0)}
    assert redial_decisions(RetryPolicy(max_attempts=1)) == dict.fromkeys(
        RetryPolicy().retry_on, ()
    )
    jittered = redial_decisions(RetryPolicy(rng=random.Random(1)), ["busy"])["busy"]
    assert all(d is not None and 0 <= d <= 60.0 for d in jittered)


def test_bad_settings_are_refused() -> None:
    from audian_async import ValidationError

    with pytest.raises(ValidationError, match="url"):
        RedisConnection("http://x")
    connection = RedisConnection()
    with pytest.raises(ValidationError, match="namespace"):
        RedisCampaignState(connection, "c", namespace="a{b}")
    with pytest.raises(ValidationError, match="retention"):
        RedisCampaignState(connection, "c", retention=0)
    assert not connection.is_open


async def test_the_status_is_the_counts_and_the_live_calls_in_one_round_trip(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 3)
    await live_item(state, "c1")
    before = state.round_trips
    counts, live = await state.status()
    assert state.round_trips - before == 1
    assert (counts, live) == (await state.counts(), await state.live())
    assert (counts.states[ItemState.LIVE], counts.states[ItemState.PENDING], live) == (1, 2, 1)


async def test_a_claim_takes_the_callers_local_caller_id_under_its_cap_with_the_slot(
    redis: RedisConnection, ns: str
) -> None:
    pool = CallerIdPool(["+12125550170", "+14155552671"], max_active=1)
    callees = ['{"to":"+14155550100"}', '{"to":"+14155550101"}', '{"to":"+14155550102"}']
    state = RedisCampaignState(redis, "pooled", namespace=ns)
    await state.open([*callees, '{"to":"+14155550103","from":"+14155552671"}'])
    args = pool.claim_arguments()
    first = await state.claim("p1", 10, 30.0, caller_ids=args)
    second = await state.claim("p1", 10, 30.0, caller_ids=args)
    assert isinstance(first, Claimed)
    assert isinstance(second, Claimed)
    assert first.record.caller_id == "+14155552671"  # the callee's own area first
    assert second.record.caller_id == "+12125550170"  # the local one is at its cap
    assert isinstance(await state.claim("p1", 10, 30.0, caller_ids=args), NoCallerId)
    assert await state.caller_id_calls() == {"+14155552671": 1, "+12125550170": 1}
    assert await state.live() == 2  # no slot taken by the claim that found no caller ID
    change = await state.placed("p1", first.index, first.attempt, "pc1", NOW)
    assert change is not None
    assert change.record.caller_id == "+14155552671"
    await state.ended("pc1", "completed", None, NOW)
    assert await state.caller_id_calls() == {"+12125550170": 1}  # freed with the slot
    third = await state.claim("p1", 10, 30.0, caller_ids=args)
    assert isinstance(third, Claimed)
    assert third.record.caller_id == "+14155552671"
    await state.unplaced("p1", second.index)
    assert await state.caller_id_calls() == {"+14155552671": 1}
    await state.unplaced("p1", third.index)
    assert await state.caller_id_calls() == {}
    own = None
    for _ in range(3):  # the two put back, and the item with its own caller ID
        claim = await state.claim("p1", 10, 30.0, caller_ids=args)
        assert isinstance(claim, Claimed)
        own = claim if claim.index == 3 else own
    assert own is not None
    assert own.record.caller_id is None
    assert await state.caller_id_calls() == {"+14155552671": 1, "+12125550170": 1}


async def test_a_number_suppressed_by_any_process_is_failed_by_the_next_claim(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 3)
    other = RedisCampaignState(redis, "camp", namespace=ns)  # another process's view
    await other.add_suppressed("+14155550000")  # item 0's number
    claim = await claimed(state)
    assert claim.index == 1  # item 0 failed on the way, without a slot
    [record] = await state.records([0])
    assert (record.state, record.reason) == ("failed", "suppressed")
    counts = await state.counts()
    assert (counts.unfinished, counts.states[ItemState.FAILED], await state.live()) == (2, 1, 1)


async def test_a_completed_call_is_redialed_on_the_applications_decision(
    redis: RedisConnection, ns: str
) -> None:
    state = await opened(redis, ns, 1)
    await live_item(state, "done-1")
    again = await state.ended("done-1", "completed", None, {"completed": (0.0, 0.0)})
    assert again is not None
    assert (again.state, again.record.reason) == (ItemState.WAITING, None)
    second = await claimed(state)
    await state.placed("p1", second.index, second.attempt, "done-2", NOW)
    # The policy alone never redials a completed call.
    final = await state.ended("done-2", "completed", None, NOW)
    assert final is not None
    assert final.state is ItemState.COMPLETED
    record = await state.record_for_call("done-2")
    assert record is not None
    assert record.call_ids == ("done-1", "done-2")
    assert await state.record_for_call("unknown") is None


async def test_a_url_only_coredis_reads_serves_the_same_steps(redis_url: str, ns: str) -> None:
    # A query option the project's RESP clients do not read: coredis serves this URL.
    async with RedisConnection(redis_url + "?socket_timeout=5") as connection:
        assert connection._wire is None
        state = await opened(connection, ns, 2)
        claim = await claimed(state)
        await state.placed("p1", claim.index, claim.attempt, "c1", NOW)
        done = await state.ended("c1", "completed", None, NOW)
        assert done is not None
        assert done.state is ItemState.COMPLETED
        await state.add_suppressed("+14155550100")
        assert await state.suppressed() == ["+14155550100"]
        assert [r.state for r in await state.records()] == ["completed", "pending"]
        assert (await state.counts()).unfinished == 1
        assert await connection.call("PING") == "PONG"
