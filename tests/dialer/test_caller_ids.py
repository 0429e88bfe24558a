"""CallerIdPool: validation and choosing without an event loop; acquire on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audian_async import ValidationError
from audian_async.dialer._caller_ids import CallerIdPool

# US/CA: area code = NPA.
SF_1, SF_2, SF_CALLEE = "+14155552671", "+14155550123", "+14155550100"
NYC, CHICAGO, OTTAWA = "+12125550123", "+13125550142", "+16135550123"
US_TOLL_FREE = "+18005550199"
# Europe: London 20, Manchester 161, Berlin 30, Munich 89, Paris 1, Marseille 4; mobiles none.
LONDON, LONDON_CALLEE, MANCHESTER, GB_MOBILE = (
    "+442079460958",
    "+442079460000",
    "+441614960000",
    "+447400123456",
)
BERLIN, BERLIN_CALLEE, MUNICH = "+493012345678", "+493087654321", "+498912345678"
DE_MOBILE, DE_MOBILE_CALLEE = "+4915123456789", "+4917012345678"
PARIS, MARSEILLE, MARSEILLE_CALLEE = "+33142685300", "+33491123456", "+33491000000"
# Denmark has no area codes.
DK_1, DK_2 = "+4532123456", "+4570123456"


# --- validation ------------------------------------------------------------------------------


def test_a_single_string_is_not_a_pool() -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool(SF_1)
    assert info.value.field == "caller_ids"


def test_not_iterable_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool(5)  # type: ignore[arg-type]
    assert info.value.field == "caller_ids"


def test_an_empty_pool_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool([])
    assert info.value.field == "caller_ids"


@pytest.mark.parametrize("bad", ["+1415", "not a number", "4155552671", 14155552671, ""])
def test_errors_name_the_entry(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool([SF_1, NYC, bad])  # type: ignore[list-item]
    assert info.value.field == "caller_ids[2]"


def test_duplicates_after_normalisation_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool([SF_1, NYC, "(415) 555-2671"], default_region="US")
    assert info.value.field == "caller_ids[2]"
    assert "caller_ids[0]" in info.value.message


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "5"])
def test_max_active_uses_the_dialers_name(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        CallerIdPool([SF_1], max_active=bad)  # type: ignore[arg-type]
    assert info.value.field == "max_active_per_caller_id"


def test_numbers_are_normalised_and_keep_their_order() -> None:
    pool = CallerIdPool(["(212) 555-0123", " +14155552671 ", LONDON], default_region="US")
    assert pool.numbers == (NYC, SF_1, LONDON)
    assert len(pool) == 3
    assert SF_1 in pool
    assert "(212) 555-0123" not in pool
    assert pool.active(SF_1) == pool.peak(SF_1) == 0
    assert CallerIdPool(iter([SF_1]), max_active=None).numbers == (SF_1,)


# --- local presence --------------------------------------------------------------------------


def test_us_callee_gets_the_caller_id_from_its_area_code() -> None:
    pool = CallerIdPool([NYC, CHICAGO, SF_1])
    assert pool.choose(SF_CALLEE) == SF_1
    assert pool.choose("+13125550199") == CHICAGO


@pytest.mark.parametrize(
    ("pool", "callee", "expected"),
    [
        ((MANCHESTER, LONDON), LONDON_CALLEE, LONDON),
        ((MUNICH, BERLIN), BERLIN_CALLEE, BERLIN),
        ((PARIS, MARSEILLE), MARSEILLE_CALLEE, MARSEILLE),
    ],
)
def test_european_callee_gets_the_caller_id_from_its_area(
    pool: tuple[str, ...], callee: str, expected: str
) -> None:
    assert CallerIdPool(pool).choose(callee) == expected


def test_same_country_comes_before_a_foreign_number_even_when_busier() -> None:
    pool = CallerIdPool([SF_1, MUNICH], max_active=5)
    pool.take(MUNICH)
    pool.take(MUNICH)
    assert pool.choose(BERLIN_CALLEE) == MUNICH  # not local, but German
    assert pool.choose(OTTAWA) == SF_1  # +1 is one country calling code


def test_numbers_without_an_area_code_compare_by_country_only() -> None:
    # A mobile callee is served by any caller ID of its country, the least busy first...
    pool = CallerIdPool([NYC, DE_MOBILE, BERLIN])
    assert pool.choose(DE_MOBILE_CALLEE) == DE_MOBILE
    pool.take(DE_MOBILE)
    assert pool.choose(DE_MOBILE_CALLEE) == BERLIN
    # ...and a mobile caller ID is never "local" to an area (nor toll-free to anything).
    pool = CallerIdPool([GB_MOBILE, LONDON])
    pool.take(LONDON)
    assert pool.choose(LONDON_CALLEE) == LONDON
    assert CallerIdPool([US_TOLL_FREE, SF_1]).choose("+18005550100") == US_TOLL_FREE
    assert CallerIdPool([SF_1, US_TOLL_FREE]).choose("+18005550100") == SF_1
    # Denmark has no area codes at all: country only.
    pool = CallerIdPool([LONDON, DK_1, DK_2])
    pool.take(DK_1)
    assert pool.choose("+4533123456") == DK_2


def test_unknown_callee_gets_the_least_busy() -> None:
    pool = CallerIdPool([SF_1, NYC])
    pool.take(SF_1)
    assert pool.choose("not a number") == NYC


# --- least busy, ties, cap -------------------------------------------------------------------


def test_ties_go_to_pool_order_and_load_spreads() -> None:
    pool = CallerIdPool([NYC, SF_1, SF_2])
    picks = []
    for _ in range(4):
        caller_id = pool.choose(SF_CALLEE)
        assert caller_id is not None
        pool.take(caller_id)
        picks.append(caller_id)
    assert picks == [SF_1, SF_2, SF_1, SF_2]
    assert pool.choose(LONDON_CALLEE) == NYC  # nothing local: least busy of all


def test_capped_local_falls_back_to_the_least_busy() -> None:
    pool = CallerIdPool([NYC, CHICAGO, SF_1], max_active=2)
    pool.take(SF_1)
    pool.take(SF_1)
    pool.take(NYC)
    assert pool.choose(SF_CALLEE) == CHICAGO
    pool.take(CHICAGO)
    assert pool.choose(SF_CALLEE) == NYC  # tie at one each: pool order


def test_choose_returns_none_at_full_cap_and_take_refuses() -> None:
    pool = CallerIdPool([SF_1, NYC], max_active=1)
    pool.take(SF_1)
    pool.take(NYC)
    assert pool.choose(SF_CALLEE) is None
    with pytest.raises(ValueError, match="live calls"):
        pool.take(SF_1)
    with pytest.raises(ValueError, match="not in the caller-ID pool"):
        pool.take(LONDON)
    pool.release(NYC)
    assert pool.choose(SF_CALLEE) == NYC
    assert pool.active(SF_1) == 1
    assert pool.peak(SF_1) == 1


def test_occupy_counts_over_the_cap_and_outside_the_pool() -> None:
    pool = CallerIdPool([SF_1, NYC], max_active=1)
    pool.take(SF_1)
    pool.occupy(SF_1)
    assert pool.active(SF_1) == pool.peak(SF_1) == 2
    pool.release(SF_1)
    assert pool.choose(SF_CALLEE) == NYC  # still at the cap with one live call
    pool.occupy(LONDON)  # a caller ID dropped from the pool since the call was placed
    assert LONDON not in pool
    assert pool.active(LONDON) == 1
    assert pool.choose(LONDON_CALLEE) == NYC
    pool.release(LONDON)
    assert pool.active(LONDON) == 0
    assert pool.peak(LONDON) == 1
    with pytest.raises(ValueError, match="no live call"):
        pool.release(LONDON)


def test_release_without_a_live_call_raises_and_never_goes_negative() -> None:
    pool = CallerIdPool([SF_1])
    with pytest.raises(ValueError, match="no live call"):
        pool.release(SF_1)
    with pytest.raises(ValueError, match="no live call"):
        pool.release(NYC)
    assert pool.active(SF_1) == 0
    pool.take(SF_1)
    pool.release(SF_1)
    with pytest.raises(ValueError, match="no live call"):
        pool.release(SF_1)
    assert pool.active(SF_1) == 0


_POOL = (SF_1, SF_2, NYC, LONDON, MANCHESTER, BERLIN, DE_MOBILE, PARIS)
_CALLEES = (SF_CALLEE, OTTAWA, LONDON_CALLEE, BERLIN_CALLEE, DE_MOBILE_CALLEE, MARSEILLE_CALLEE)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, len(_POOL)),
    cap=st.one_of(st.none(), st.integers(1, 3)),
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), max_size=60),
)
def test_counts_stay_within_the_cap_and_never_negative(
    size: int, cap: int | None, steps: list[tuple[bool, int]]
) -> None:
    pool = CallerIdPool(_POOL[:size], max_active=cap)
    live: list[str] = []
    for place, n in steps:
        if place or not live:
            caller_id = pool.choose(_CALLEES[n % len(_CALLEES)])
            if caller_id is None:
                assert cap is not None
                assert all(pool.active(c) == cap for c in pool.numbers)
                continue
            pool.take(caller_id)
            live.append(caller_id)
        else:
            pool.release(live.pop(n % len(live)))
        for c in pool.numbers:
            assert 0 <= pool.active(c) == live.count(c)
            assert cap is None or pool.peak(c) <= cap


# --- acquire ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_acquire_takes_at_once_when_free() -> None:
    pool = CallerIdPool([NYC, SF_1])
    assert await pool.acquire(SF_CALLEE) == SF_1
    assert pool.active(SF_1) == 1


@pytest.mark.anyio
async def test_acquire_waits_at_full_cap_until_a_release() -> None:
    pool = CallerIdPool([SF_1], max_active=1)
    pool.take(SF_1)
    pool.occupy(SF_1)  # two live calls on a cap of one
    got: list[str] = []
    done = anyio.Event()

    async def dial() -> None:
        got.append(await pool.acquire(SF_CALLEE))
        done.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            assert pool.choose(SF_CALLEE) is None
            pool.release(SF_1)  # still at the cap: nobody can be served yet
            await anyio.wait_all_tasks_blocked()
            assert got == []
            assert pool.active(SF_1) == 1
            pool.release(SF_1)
            await done.wait()
    assert got == [SF_1]
    assert pool.active(SF_1) == 1


@pytest.mark.anyio
async def test_a_cancelled_waiter_takes_nothing() -> None:
    pool = CallerIdPool([SF_1], max_active=1)
    pool.take(SF_1)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.acquire, SF_CALLEE)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    pool.release(SF_1)
    assert pool.active(SF_1) == 0
    assert await pool.acquire(SF_CALLEE) == SF_1  # the queue is empty again


@pytest.mark.anyio
@pytest.mark.parametrize("cancel_first", [False, True], ids=["release-cancel", "cancel-release"])
async def test_a_caller_id_handed_over_while_cancelled_is_not_leaked(cancel_first: bool) -> None:
    pool = CallerIdPool([SF_1, NYC], max_active=1)
    pool.take(SF_1)
    pool.take(NYC)
    got: list[str] = []

    async def dial() -> None:
        got.append(await pool.acquire(SF_CALLEE))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await anyio.wait_all_tasks_blocked()
            # The caller ID is handed to a waiter that is cancelled before it runs again.
            if cancel_first:
                tg.cancel_scope.cancel()
            pool.release(SF_1)
            tg.cancel_scope.cancel()
    # Either the waiter returned the caller ID (and owns it) or gave it back.
    assert pool.active(SF_1) == len(got)
    assert pool.active(NYC) == 1
    if got:
        pool.release(SF_1)
    assert await pool.acquire(SF_CALLEE) == SF_1  # nothing left queued or counted


@pytest.mark.anyio
async def test_waiters_are_served_first_come_first_served() -> None:
    pool = CallerIdPool([NYC, SF_1], max_active=1)
    pool.take(NYC)
    pool.take(SF_1)
    order: list[tuple[str, str]] = []
    both = anyio.Event()

    async def dial(name: str, to: str) -> None:
        order.append((name, await pool.acquire(to)))
        if len(order) == 2:
            both.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dial, "first", LONDON_CALLEE)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(dial, "second", SF_CALLEE)
            await anyio.wait_all_tasks_blocked()
            pool.release(SF_1)  # local to the second, but the first came first
            await anyio.wait_all_tasks_blocked()
            assert order == [("first", SF_1)]
            pool.release(NYC)
            await both.wait()
    assert order == [("first", SF_1), ("second", NYC)]


@pytest.mark.anyio
async def test_a_newcomer_does_not_pass_a_waiter() -> None:
    pool = CallerIdPool([SF_1], max_active=1)
    pool.take(SF_1)
    order: list[str] = []

    async def dial(name: str) -> None:
        await pool.acquire(SF_CALLEE)
        order.append(name)
        pool.release(SF_1)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dial, "waiter")
            await anyio.wait_all_tasks_blocked()
            pool.release(SF_1)  # handed to the waiter, which has not run yet
            tg.start_soon(dial, "newcomer")
    assert order == ["waiter", "newcomer"]
    assert pool.active(SF_1) == 0
