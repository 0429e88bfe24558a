"""Dialers sharing one campaign through a real Redis, against the sandbox."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from audian_async import AudianError, CallRequest, Dialer, RedisStore
from audian_async._json import dumps, loads
from audian_async.dialer import CampaignReport
from audian_async.sandbox import Sandbox, generate_webhook_secret
from audian_async.webhooks import CallAnswered, CallCompleted, CallFailed, EventRouter

from ..dialer.support import BUSY, FAST, NO_ANSWER, calls_per_number, req, sandbox_with_receiver
from ..dialer.test_scheduled import reminders_do_not_block_the_calls_due_now
from ..loopback import free_port, until
from ..redis_server import redis_process

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _coredis_garbage() -> Iterator[None]:
    """coredis (6.9) leaves the memory streams of connections that failed or were dropped
    (Redis away, a pool closed mid-connect) for the garbage collector, which warns: collect
    them after each test, where that is expected, instead of in whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _numbers(answered: int, busy: int, no_answer: int) -> list[str]:
    numbers = [f"+1415555{5000 + i:04d}" for i in range(answered)]
    return numbers + [BUSY] * busy + [NO_ANSWER] * no_answer


def _expected_attempts(number: str) -> int:
    return 3 if number in (BUSY, NO_ANSWER) else 1  # FAST: up to 3 attempts


def _calls_per_item(sb: Sandbox, campaign: str) -> Counter[int]:
    calls: Counter[int] = Counter()
    for call in sb.calls.values():
        tags = call.call.tags or {}
        if tags.get("audian_campaign") == campaign:
            calls[int(tags["audian_item"])] += 1
    return calls


async def _run_together(
    dialers: list[Dialer], requests: list[CallRequest], campaign: str, **options: Any
) -> list[CampaignReport]:
    """Run ``campaign`` in every dialer at once; their reports, in the order they ended."""
    reports: list[CampaignReport] = []

    async def run(dialer: Dialer) -> None:
        reports.append(await dialer.run(requests, campaign=campaign, **options))

    async with anyio.create_task_group() as tg:
        for dialer in dialers:
            tg.start_soon(run, dialer)
    return reports


async def test_two_dialers_share_a_campaign_its_limit_and_one_receiver(
    redis_url: str, ns: str
) -> None:
    numbers = _numbers(30, 3, 3)
    requests = [req(n) for n in numbers]
    async with sandbox_with_receiver() as (sb, router):
        # Only the first dialer's router gets webhooks: it finishes the other's calls too.
        dialers = [
            Dialer(
                sb.client,
                r,
                retry=FAST,
                max_active_calls=4,
                store=RedisStore(redis_url, namespace=ns, lease=2.0),
            )
            for r in (router, EventRouter())
        ]
        with anyio.fail_after(60):
            reports = await _run_together(dialers, requests, "shared", keep_duplicates=True)
        calls = _calls_per_item(sb, "shared")
        peak = sb.peak_live_calls
    first, second = reports
    assert first.outcomes == second.outcomes  # the same complete report in each
    assert [o.attempts for o in first.outcomes] == [_expected_attempts(n) for n in numbers]
    assert calls == {i: _expected_attempts(n) for i, n in enumerate(numbers)}  # none twice
    assert (first.completed, first.failed) == (30, 6)
    assert peak <= 4  # one limit for both


async def test_another_request_list_under_the_same_name_is_refused_before_dialing(
    redis_url: str, ns: str
) -> None:
    async with sandbox_with_receiver() as (sb, router):
        store = RedisStore(redis_url, namespace=ns)
        first = Dialer(sb.client, router, retry=FAST, store=store)
        with anyio.fail_after(30):
            await first.run([req(n) for n in _numbers(2, 0, 0)], campaign="named")
        placed = len(sb.calls)
        other = Dialer(sb.client, router, retry=FAST, store=store)
        with pytest.raises(AudianError, match="different request list"):
            await other.run([req(n) for n in _numbers(3, 0, 0)], campaign="named")
        assert len(sb.calls) == placed


async def test_a_service_over_redis_places_what_is_submitted(redis_url: str, ns: str) -> None:
    async with (
        sandbox_with_receiver() as (sb, router),
        Dialer(
            sb.client, router, retry=FAST, campaign="svc", store=RedisStore(redis_url, namespace=ns)
        ) as dialer,
    ):
        handles = [await dialer.submit(req(n)) for n in _numbers(3, 1, 0)]
        with anyio.fail_after(30):
            outcomes = [await h for h in handles]
    assert [(o.status, o.attempts) for o in outcomes] == [("completed", 1)] * 3 + [("failed", 3)]


# coredis (6.9) leaves a memory stream of a pool that never connected for the garbage
# collector, which warns: collect it here, where that warning is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_redis_unreachable_at_start_is_a_clear_error_and_nothing_is_placed() -> None:
    async with Sandbox() as sb:
        store = RedisStore(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
        dialer = Dialer(sb.client, None, store=store)
        with pytest.raises(AudianError, match="cannot reach Redis") as info:
            await dialer.run([req(n) for n in _numbers(2, 0, 0)])
        assert "hunter2" not in str(info.value)
        assert "hunter2" not in repr(store)
        assert sb.calls == {}
    del info, dialer, store
    gc.collect()


class _Noticed(logging.Handler):
    """Sets ``event`` once the dialer logs that it waits for Redis."""

    def __init__(self, event: anyio.Event) -> None:
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for it" in record.getMessage() and not self.event.is_set():
            self.event.set()  # logged on the dialer's own loop


# coredis (6.9) leaves the memory streams of connections that failed (Redis was away) for
# the garbage collector, which warns: collect them here, where that is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("fault", ["stopped", "silent"])
async def test_redis_lost_mid_run_is_waited_for_and_the_campaign_completes(fault: str) -> None:
    # "stopped": shut down, then started again on its data. "silent": its process stopped
    # (SIGSTOP), then continued; that closes no connection and refuses nothing, so only the
    # reply timeout turns the silence into "unreachable".
    numbers = _numbers(40, 2, 0)
    with redis_process(durable=True) as server:
        async with sandbox_with_receiver() as (sb, router):
            store = RedisStore(server.url, namespace="lost", lease=5.0, timeout=0.3)
            dialer = Dialer(sb.client, router, retry=FAST, max_active_calls=3, store=store)
            handler = _Noticed(anyio.Event())
            logger = logging.getLogger("audian_async.dialer")
            logger.addHandler(handler)
            result: list[CampaignReport] = []

            async def outage() -> None:
                await until(lambda: len(sb.calls) >= 10, timeout=30)
                handler.event = noticed = anyio.Event()  # what is logged from now on
                if fault == "stopped":
                    server.stop()  # SIGTERM: an orderly shutdown, the data on disk
                    await noticed.wait()
                    server.start()
                    return
                assert server.process is not None
                os.kill(server.process.pid, signal.SIGSTOP)
                try:
                    await noticed.wait()  # a step timed out and waits for Redis
                finally:
                    os.kill(server.process.pid, signal.SIGCONT)

            try:
                with anyio.fail_after(90):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(outage)
                        result.append(
                            await dialer.run([req(n) for n in numbers], keep_duplicates=True)
                        )
            finally:
                logger.removeHandler(handler)
            calls = _calls_per_item(sb, dialer.campaign)
            peak = sb.peak_live_calls
    del dialer, store  # their failed connections' streams go with them
    gc.collect()
    [report] = result
    assert [o.attempts for o in report.outcomes] == [_expected_attempts(n) for n in numbers]
    assert calls == {i: _expected_attempts(n) for i, n in enumerate(numbers)}
    assert peak <= 3  # no create without a slot, even while Redis was away


async def test_three_processes_share_a_campaign_and_survive_one_killed(
    redis_url: str, ns: str, tmp_path: Path
) -> None:
    numbers = _numbers(200, 10, 10)
    numbers_file = tmp_path / "numbers.json"
    numbers_file.write_bytes(dumps(numbers))
    secret = generate_webhook_secret()
    port = free_port()
    limit = 8
    async with Sandbox(
        webhook_urls=[f"http://127.0.0.1:{port}/"], webhook_secret=secret, speed=100.0
    ) as sb:
        base = [
            sys.executable, "-m", "tests.redis.worker",
            "--redis", redis_url, "--namespace", ns, "--campaign", "three",
            "--numbers", str(numbers_file), "--api", sb.base_url, "--api-key", sb.api_key,
            "--max-active", str(limit), "--lease", "1.0",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        commands = [
            [*base, "--webhook-port", str(port), "--webhook-secret", secret],  # the receiver
            base,
            base,
        ]
        processes = []
        try:
            for command in commands:
                process = await anyio.open_process(command, env=env, cwd=ROOT)
                processes.append(process)
                assert process.stdout is not None
                with anyio.fail_after(30):
                    line = b""
                    while b"dialing" not in line:
                        line += await process.stdout.receive()
            # Mid-run, one worker dies without a word: its claims and calls are left.
            await until(lambda: len(sb.calls) >= 60, timeout=60)
            processes[2].send_signal(signal.SIGKILL)
            reports = []
            for process in processes[:2]:
                assert process.stdout is not None
                out = b""
                with anyio.fail_after(120):
                    async for chunk in process.stdout:
                        out += chunk
                    assert await process.wait() == 0
                reports.append(loads(out[out.index(b"{") :]))
            calls = _calls_per_item(sb, "three")
            peak = sb.peak_live_calls
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                await process.wait()
    assert reports[0] == reports[1]  # the same complete report in every process
    outcomes = reports[0]["outcomes"]
    assert [o[2] for o in outcomes] == [_expected_attempts(n) for n in numbers]
    assert calls == {i: _expected_attempts(n) for i, n in enumerate(numbers)}  # none twice
    assert peak <= limit


async def test_controls_over_redis_suppression_window_finish_and_handler_redials(
    redis_url: str, ns: str
) -> None:
    answered = _numbers(3, 0, 0)
    numbers = [*answered, BUSY, NO_ANSWER]
    async with sandbox_with_receiver() as (sb, router):
        store = RedisStore(redis_url, namespace=ns)
        dialer = Dialer(
            sb.client, router, retry=FAST, store=store, suppress={answered[2]}, max_active_calls=2
        )

        @router.on("call.failed")
        async def decide(event: CallFailed) -> None:
            if event.reason == "busy":
                await dialer.finish(event.call_id)  # no redial, whatever the policy says
            elif event.data.get("tags", {}).get("audian_attempt") == "1":
                await dialer.redial(event.call_id, after=0)  # no_answer: sooner

        with anyio.fail_after(60):
            report = await dialer.run([req(n) for n in numbers], campaign="controls")
        calls = Counter(str(c.to) for c in sb.calls.values())
    outcomes = [(o.status, o.reason, o.attempts) for o in report.outcomes]
    assert outcomes[:2] == [("completed", None, 1)] * 2
    assert outcomes[2] == ("failed", "suppressed", 0)
    assert outcomes[3] == ("failed", "busy", 1)
    assert outcomes[4] == ("failed", "no_answer", 3)
    assert calls == {answered[0]: 1, answered[1]: 1, BUSY: 1, NO_ANSWER: 3}


async def test_reminders_for_later_hold_no_slot_over_redis(redis_url: str, ns: str) -> None:
    await reminders_do_not_block_the_calls_due_now(lambda: RedisStore(redis_url, namespace=ns))


POOL = ["+12125550170", "+13125550170"]  # New York, Chicago


async def test_two_dialers_share_a_caller_id_pool_and_its_cap(redis_url: str, ns: str) -> None:
    callees = [f"+1{area}555{3200 + i:04d}" for area in ("212", "312", "415") for i in range(6)]
    requests = [CallRequest(from_=None, to=to) for to in callees]
    async with sandbox_with_receiver(caller_ids=POOL) as (sb, router):
        dialers = [
            Dialer(
                sb.client,
                r,
                retry=FAST,
                store=RedisStore(redis_url, namespace=ns, lease=2.0),
                caller_ids=POOL,
                max_active_per_caller_id=2,
                max_active_calls=10,  # more than the pool carries: its cap is what holds
            )
            for r in (router, EventRouter())
        ]
        with anyio.fail_after(60):
            reports = await _run_together(dialers, requests, "pooled")
        calls = list(sb.calls.values())
        peaks = sb.peak_live_calls_by_caller_id
    assert reports[0].outcomes == reports[1].outcomes
    assert reports[0].completed == len(callees)
    assert len(calls) == len(callees)  # none placed twice
    assert {str(c.call.from_) for c in calls} == set(POOL)
    assert max(peaks.values()) <= 2  # one cap over both processes, from the API's records


async def test_a_receiver_redials_completed_calls_another_process_placed(
    redis_url: str, ns: str
) -> None:
    numbers = _numbers(8, 0, 0)
    requests = [req(n) for n in numbers]
    async with sandbox_with_receiver() as (sb, router):
        # Both place calls (the placer most of them); the receiver's handler decides on
        # each call wherever it was placed, finding the other's in Redis.
        store = RedisStore(redis_url, namespace=ns, lease=2.0)
        receiver = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=1)
        placer = Dialer(sb.client, EventRouter(), retry=FAST, store=store, max_active_calls=4)
        redialed: list[bool] = []

        @router.on("call.completed")
        async def once_more(event: CallCompleted) -> None:
            if event.data.get("tags", {}).get("audian_attempt") == "1":
                redialed.append(await receiver.redial(event.call_id, after=0))

        with anyio.fail_after(60):
            reports = await _run_together([placer, receiver], requests, "again")
        calls = _calls_per_item(sb, "again")
    assert reports[0].outcomes == reports[1].outcomes
    assert [(o.status, o.attempts) for o in reports[0].outcomes] == [("completed", 2)] * 8
    assert calls == dict.fromkeys(range(8), 2)
    assert redialed == [True] * 8


async def test_a_decision_of_any_process_is_applied_where_the_calls_end_lands(
    redis_url: str, ns: str
) -> None:
    numbers = [BUSY, *_numbers(4, 0, 0)]
    requests = [req(n) for n in numbers]
    async with sandbox_with_receiver() as (sb, router):
        # The receiver gets every webhook; the other process decides, on calls either
        # placed, while they go on: the receiver applies those decisions at their end.
        store = RedisStore(redis_url, namespace=ns, lease=2.0)
        receiver = Dialer(sb.client, router, retry=FAST, store=store, max_active_calls=2)
        decider = Dialer(sb.client, EventRouter(), retry=FAST, store=store, max_active_calls=2)
        answers: list[tuple[str, bool]] = []

        @router.on("call.answered")
        async def once_more(event: CallAnswered) -> None:
            if event.data.get("tags", {}).get("audian_attempt") == "1":
                answers.append(("redial", await decider.redial(event.call_id, after=0)))

        @router.on("call.failed")
        async def opted_out(event: CallFailed) -> None:  # runs before the receiver's own
            answers.append(("finish", await decider.finish(event.call_id)))

        with anyio.fail_after(60):
            reports = await _run_together([receiver, decider], requests, "decided")
        calls = _calls_per_item(sb, "decided")
    assert reports[0].outcomes == reports[1].outcomes
    outcomes = [(o.status, o.reason, o.attempts) for o in reports[0].outcomes]
    assert outcomes == [("failed", "busy", 1)] + [("completed", None, 2)] * 4
    assert calls == {0: 1, 1: 2, 2: 2, 3: 2, 4: 2}
    assert sorted(answers) == [("finish", True)] + [("redial", True)] * 4


async def test_a_number_suppressed_at_run_time_is_never_called_by_the_other_processes(
    redis_url: str, ns: str
) -> None:
    numbers = [BUSY, *_numbers(6, 0, 0)]
    requests = [req(n) for n in numbers]
    async with sandbox_with_receiver() as (sb, router):
        store = RedisStore(redis_url, namespace=ns, lease=2.0)
        dialers = [
            Dialer(sb.client, r, retry=FAST, store=store, max_active_calls=2)
            for r in (router, EventRouter())
        ]
        suppressing = dialers[1]  # not the receiver: the busy call's end reaches it via Redis

        @router.on("call.failed")
        async def opt_out(event: CallFailed) -> None:
            await suppressing.suppress(BUSY)  # as if the callee asked, told to another process

        with anyio.fail_after(60):
            reports = await _run_together(dialers, requests, "opt-out")
        busy_calls = calls_per_number(sb)[BUSY]
    assert reports[0].outcomes == reports[1].outcomes
    first = reports[0].outcomes[0]
    assert (first.status, first.reason, first.attempts) == ("failed", "suppressed", 1)
    assert busy_calls == 1  # its redial, wherever it was due, was never placed
    assert reports[0].completed == 6
