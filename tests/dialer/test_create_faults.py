"""Creates that fail without a clear answer, outages, account errors and lost calls.

The sandbox's fault knobs make the API act without replying, refuse without acting, or
forget calls; the dialer must never dial a number more often than its outcome needs, never
exceed the live-call limit, and give every item the right outcome once the faults stop.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from audian_async import (
    APIConnectionError,
    AudianError,
    AuthenticationError,
    CallRequest,
)
from audian_async._json import loads
from audian_async.dialer import CampaignReport, Dialer, MemoryStore
from audian_async.sandbox import Faults

from ..loopback import until
from .support import (
    BUSY,
    BUSY_THEN_ANSWER,
    DECLINED,
    FAST,
    calls_per_number,
    hooked_client,
    is_create,
    req,
    sandbox_with_receiver,
)

pytestmark = pytest.mark.anyio

PLAIN = [f"+1415555{2800 + i}" for i in range(5)]
NUMBERS = [*PLAIN, BUSY, BUSY_THEN_ANSWER, DECLINED]
EXPECTED_CALLS = Counter(dict.fromkeys(PLAIN, 1) | {BUSY: 3, BUSY_THEN_ANSWER: 2, DECLINED: 1})
# Short client timeout (a lost reply is noticed fast), no client-side retries.
QUICK_CLIENT = {"timeout": 0.2, "max_retries": 0}


def _check_outcomes(report: CampaignReport) -> None:
    got = {o.to: (o.status, o.reason) for o in report.outcomes}
    assert got == dict.fromkeys(PLAIN, ("completed", None)) | {
        BUSY: ("failed", "busy"),
        BUSY_THEN_ANSWER: ("completed", None),
        DECLINED: ("failed", "declined"),
    }


async def _run_with_faults(
    faults: Faults, stat: str, count: int, *, max_active: int = 2, **dialer: Any
) -> tuple[CampaignReport, Counter[str], int, int]:
    """Run the campaign with ``faults`` on until the sandbox stat ``stat`` reaches
    ``count``, check nothing failed meanwhile, turn the faults off, finish the run."""
    result: list[CampaignReport] = []
    async with sandbox_with_receiver(faults=faults, client_options=QUICK_CLIENT) as (sb, router):
        d = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            max_active_calls=max_active,
            **dialer,
        )

        async def go() -> None:
            result.append(await d.run([req(n) for n in NUMBERS], campaign="faults"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            # The sandbox counts on its own thread: nothing on this loop to await.
            await until(lambda: sb.stats.get(stat, 0) >= count, timeout=20)
            created_during_faults = len(sb.calls)
            assert d.stats().failed == 0  # nothing unclear became an outcome
            faults.no_reply_rate.clear()
            faults.error_rate.clear()
        per_number = calls_per_number(sb)
        peak = sb.peak_live_calls
    return result[0], per_number, peak, created_during_faults


async def test_unanswered_creates_hold_their_slot_and_key_until_answered() -> None:
    # Every create is acted on but its reply is lost: the two slot holders resend the same
    # key again and again; nobody else is dialed, nothing fails, and once replies flow again
    # each replay returns the call created the first time.
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0}, no_reply_hold=2.0)
    report, per_number, peak, created = await _run_with_faults(faults, "idempotent_replays", 4)
    assert created == 2
    assert peak <= 2
    assert per_number == EXPECTED_CALLS
    _check_outcomes(report)
    assert report.attempts == sum(EXPECTED_CALLS.values())


@pytest.mark.parametrize("status", [500, 503])
async def test_api_errors_are_waited_out_not_failed(status: int) -> None:
    # 500: unclear (same key again, slot held); 503: provably not acted (waited out).
    faults = Faults(error_rate={"POST /v2/calls": 1.0}, error_status=status)
    report, per_number, peak, created = await _run_with_faults(faults, "injected_errors", 4)
    assert created == 0
    assert peak <= 2
    assert per_number == EXPECTED_CALLS
    _check_outcomes(report)


async def test_a_create_unknown_past_the_deadline_holds_its_slot_then_fails() -> None:
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0}, no_reply_hold=2.0)
    requests = [
        CallRequest(from_=r.from_, to=n, timeout=10, max_duration=20)
        for r, n in ((req(PLAIN[0]), PLAIN[0]), (req(PLAIN[1]), PLAIN[1]))
    ]
    async with sandbox_with_receiver(faults=faults, client_options=QUICK_CLIENT) as (sb, router):
        dialer = Dialer(
            sb.client,
            router,
            retry=FAST,
            store=MemoryStore(),
            max_active_calls=1,
            create_deadline=0.3,
            grace=0.0,
            time_scale=1 / 100,
        )
        with anyio.fail_after(20):
            report = await dialer.run(requests)
        per_number = calls_per_number(sb)
        peak = sb.peak_live_calls
    assert [(o.status, o.reason, o.attempts) for o in report.outcomes] == [
        ("failed", "create_unknown", 0)
    ] * 2
    assert per_number == {PLAIN[0]: 1, PLAIN[1]: 1}  # each key placed one call, never two
    assert peak <= 1  # the slot was held until the unknown call must have ended


def _closed_port_url() -> str:
    """The API root of a loopback port nobody listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


def _states_by_number(store: MemoryStore, campaign: str) -> dict[str, str]:
    """Each stored item's state, by its destination number."""
    return {loads(r.request or "{}")["to"]: r.state for r in store.campaigns[campaign].values()}


async def test_an_unreachable_api_fails_nothing() -> None:
    store = MemoryStore()
    sent: list[str] = []
    retried = anyio.Event()

    async def count(request: httpx.Request) -> None:
        if is_create(request):
            sent.append(loads(request.content)["to"])
            if len(sent) == 4:  # with two slots, one of the holders was refused and resent
                retried.set()

    async with hooked_client(_closed_port_url(), "k", on_request=count, max_retries=0) as client:
        dialer = Dialer(client, None, store=store, max_active_calls=2)
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: dialer.run([req(n) for n in NUMBERS], campaign="down"))
                await retried.wait()
                tg.cancel_scope.cancel()
    # A refused connection did nothing: the two slot holders send again and again, stay
    # "placing" (never failed), and nobody else is dialed meanwhile.
    assert set(sent) == set(NUMBERS[:2])
    expected = dict.fromkeys(NUMBERS, "pending") | dict.fromkeys(NUMBERS[:2], "placing")
    assert _states_by_number(store, "down") == expected


async def test_a_bad_api_key_stops_the_campaign_and_keeps_it_pending() -> None:
    store = MemoryStore()
    requests = [req(n) for n in PLAIN]
    sent: list[str] = []
    all_sent = anyio.Event()

    async def gate(request: httpx.Request) -> None:
        # The first create goes on once every create is in flight; the others stay in
        # flight (never sent) until the campaign stops.
        if not is_create(request):
            return
        sent.append(loads(request.content)["to"])
        if len(sent) == len(PLAIN):
            all_sent.set()
        if len(sent) > 1:
            await anyio.sleep_forever()
        await all_sent.wait()

    async with sandbox_with_receiver() as (sb, router):
        async with hooked_client(sb.base_url, "wrong-key", on_request=gate, max_retries=0) as bad:
            with anyio.fail_after(20), pytest.raises(AuthenticationError):
                await Dialer(bad, router, retry=FAST, store=store).run(requests, campaign="k")
        # Nothing was placed. The refused item is pending again; the items whose create was
        # still in flight when the campaign stopped stay "placing" (their fate unknown to the
        # dialer), so a resume repeats them under the same idempotency key.
        assert sb.calls == {}
        assert sorted(sent) == sorted(PLAIN)
        assert _states_by_number(store, "k") == dict.fromkeys(PLAIN, "placing") | {
            sent[0]: "pending"
        }
        report = await Dialer(sb.client, router, retry=FAST, store=store).run(
            requests, campaign="k"
        )
        per_number = calls_per_number(sb)
    assert report.completed == len(PLAIN)
    assert per_number == dict.fromkeys(PLAIN, 1)


@pytest.mark.parametrize("status", [404, 500])
async def test_a_call_that_cannot_be_polled_ends_as_lost(status: int) -> None:
    faults = Faults(error_rate={"GET /v2/calls/{id}": 1.0}, error_status=status)
    requests = [CallRequest(from_=req(n).from_, to=n, timeout=10, max_duration=20) for n in PLAIN]
    async with sandbox_with_receiver(
        webhooks=False, faults=faults, client_options=QUICK_CLIENT
    ) as (sb, _):
        dialer = Dialer(
            sb.client,
            None,
            retry=FAST,
            store=MemoryStore(),
            poll_after=0.02,
            poll_interval=0.02,
            grace=0.0,
            time_scale=1 / 100,
        )
        with anyio.fail_after(20):
            report = await dialer.run(requests)
        per_number = calls_per_number(sb)
    assert {(o.status, o.reason, o.attempts) for o in report.outcomes} == {("failed", "lost", 1)}
    assert per_number == dict.fromkeys(PLAIN, 1)  # lost calls are not redialed


async def test_polling_only_mode_polls_soon_after_the_ring_timeout() -> None:
    # Without a router the first poll comes after the ring timeout, not after
    # timeout + max_duration + grace (37 s per call here): the run ends well within the guard.
    async with sandbox_with_receiver(webhooks=False) as (sb, _):
        dialer = Dialer(sb.client, None, retry=FAST, store=MemoryStore(), time_scale=1 / 100)
        with anyio.fail_after(15):
            report = await dialer.run([req(PLAIN[0]), req(BUSY_THEN_ANSWER), req(DECLINED)])
    assert [(o.status, o.attempts) for o in report.outcomes] == [
        ("completed", 1),
        ("completed", 2),
        ("failed", 1),
    ]


def _refuse_the_replay(faults: Faults, status: int) -> dict[str, Any]:
    """Hooks for a one-slot campaign whose first create is acted on and its reply withheld:
    the next create (its replay under the same key) is answered ``status``, later ones go
    through. The faults switch as the replay is sent, so the sandbox sees them for it."""
    creates = 0

    async def on_request(request: httpx.Request) -> None:
        nonlocal creates
        if is_create(request):
            creates += 1
            if creates == 2:
                faults.no_reply_rate.clear()
                faults.error_status = status
                faults.error_rate["POST /v2/calls"] = 1.0

    async def on_response(response: httpx.Response) -> None:
        if is_create(response.request):
            faults.error_rate.clear()

    return {"on_request": on_request, "on_response": on_response}


SHORT = {"timeout": 10, "max_duration": 20}


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_a_refused_replay_of_an_unclear_create_holds_the_slot(status: int) -> None:
    # The first send may have placed the call: a refusal of the replay says nothing about
    # it, so the item ends as create_unknown and keeps its slot until that call has ended.
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0}, no_reply_hold=5.0)
    requests = [req(n, **SHORT) for n in PLAIN[:3]]
    hooks = _refuse_the_replay(faults, status)
    async with (
        sandbox_with_receiver(faults=faults, client_options=QUICK_CLIENT) as (sb, router),
        hooked_client(sb.base_url, sb.api_key, **hooks, **QUICK_CLIENT) as client,
    ):
        dialer = Dialer(
            client,
            router,
            retry=FAST,
            store=MemoryStore(),
            max_active_calls=1,
            grace=0.0,
            time_scale=1 / 100,
        )
        with anyio.fail_after(20):
            report = await dialer.run(requests, campaign="refused")
        peak = sb.peak_live_calls
    assert [(o.status, o.reason) for o in report.outcomes] == [
        ("failed", "create_unknown"),
        ("completed", None),
        ("completed", None),
    ]
    assert peak <= 1


@pytest.mark.parametrize("status", [401, 403])
async def test_an_account_error_after_an_unclear_create_keeps_the_item_placing(
    status: int,
) -> None:
    # The replay is answered 401/403: the campaign stops, but the item's call may be live,
    # so it stays "placing" with its slot held; the next run counts it and replays the key.
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0}, no_reply_hold=5.0)
    requests = [req(n, **SHORT) for n in PLAIN[:3]]
    store = MemoryStore()
    hooks = _refuse_the_replay(faults, status)
    async with (
        sandbox_with_receiver(faults=faults, client_options=QUICK_CLIENT) as (sb, router),
        hooked_client(sb.base_url, sb.api_key, **hooks, **QUICK_CLIENT) as client,
    ):
        dialer = Dialer(
            client, router, retry=FAST, store=store, max_active_calls=1, time_scale=1 / 100
        )
        with anyio.fail_after(20):
            with pytest.raises(AudianError) as caught:
                await dialer.run(requests, campaign="account")
        assert caught.value.status_code == status  # type: ignore[attr-defined]
        assert store.campaigns["account"][0].state == "placing"
        assert {r.state for i, r in store.campaigns["account"].items() if i} == {"pending"}
        with anyio.fail_after(20):
            report = await Dialer(
                sb.client, router, retry=FAST, store=store, max_active_calls=1, time_scale=1 / 100
            ).run(requests, campaign="account")
        per_number = calls_per_number(sb)
        peak = sb.peak_live_calls
    assert report.completed == 3
    assert per_number == dict.fromkeys(PLAIN[:3], 1)  # the replay returned the first call
    assert peak <= 1


async def test_an_api_unreachable_past_the_deadline_stops_the_campaign(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    sent: list[str] = []

    async def hold_the_second(request: httpx.Request) -> None:
        # The second slot holder's create stays in flight: the campaign stops under it.
        if is_create(request):
            sent.append(to := loads(request.content)["to"])
            if to == NUMBERS[1]:
                await anyio.sleep_forever()

    async with hooked_client(
        _closed_port_url(), "k", on_request=hold_the_second, max_retries=0
    ) as client:
        dialer = Dialer(client, None, store=store, max_active_calls=2, create_deadline=0.3)
        with (
            caplog.at_level(logging.WARNING, logger="audian_async.dialer"),
            anyio.fail_after(10),
            pytest.raises(APIConnectionError),
        ):
            await dialer.run([req(n) for n in NUMBERS], campaign="down")
    # Nothing failed. The item refused until the deadline is pending again; the one whose
    # create was in flight when the campaign stopped stays "placing" (a later run repeats it
    # under the same key); nobody else was dialed.
    assert set(sent) == set(NUMBERS[:2])
    assert _states_by_number(store, "down") == dict.fromkeys(NUMBERS, "pending") | {
        NUMBERS[1]: "placing"
    }
    assert any("cannot reach the API" in r.getMessage() for r in caplog.records)


async def test_a_payload_too_large_fails_the_item_not_the_campaign() -> None:
    # 413 is about one request's body (its tags and custom fields), not the account.
    faults = Faults(error_rate={"POST /v2/calls": 1.0}, error_status=413)
    async with sandbox_with_receiver(faults=faults) as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())
        with anyio.fail_after(20):
            report = await dialer.run([req(n) for n in PLAIN[:3]])
    assert [(o.status, o.reason, o.attempts) for o in report.outcomes] == [
        ("failed", "payload_too_large", 0)
    ] * 3
