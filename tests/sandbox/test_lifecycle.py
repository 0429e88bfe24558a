"""The simulated network: magic numbers, timeouts, max_duration, scheduling, call control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import audian_async as au
from audian_async._models import CallStatus
from audian_async.sandbox import MAGIC_NUMBERS, Sandbox
from audian_async.sandbox._engine import Engine
from audian_async.sandbox._scheduler import Scheduler

from .conftest import OWNED

pytestmark = pytest.mark.anyio

RING = ("call.initiated", "call.ringing")
ANSWERED = (*RING, "call.answered", "call.completed")


@pytest.mark.parametrize(
    ("number", "events", "reason", "code"),
    [
        ("+14155550100", ANSWERED, None, None),
        ("+14155550101", ("call.initiated", "call.failed"), "busy", 486),
        ("+14155550102", (*RING, "call.failed"), "no_answer", 408),
        ("+14155550103", (*RING, "call.failed"), "declined", 603),
        ("+14155550104", ("call.initiated", "call.failed"), "invalid_number", 404),
        ("+14155550105", ("call.initiated", "call.failed"), "network_error", 503),
        ("+14155550107", ANSWERED, None, None),
        ("+14155552672", ANSWERED, None, None),
    ],
)
async def test_magic_numbers(
    number: str, events: tuple[str, ...], reason: str | None, code: int | None
) -> None:
    async with Sandbox(speed=200) as sb:
        call = await sb.client.calls.create(from_=OWNED, to=number, timeout=10)
        done = await sb.wait_for_status(call.call_id)
        assert done.event_types == events
        assert done.reason == reason
        assert done.reason_code == code
        fetched = await sb.client.calls.get(call.call_id)
        assert fetched.status == done.status
        assert fetched.reason == reason
        assert fetched.reason_code == code
        assert fetched.ended_at is not None
        if reason is None:
            assert fetched.answered_at is not None
            assert fetched.duration == 5  # the callee's default talk time
        failed = done.events[-1]
        if reason is not None:
            assert failed.data["reason"] == reason
            assert failed.data["reason_code"] == code


def test_the_magic_table_is_the_documented_one() -> None:
    assert sorted(MAGIC_NUMBERS) == [f"+1415555010{i}" for i in range(8)]


async def test_busy_then_answers_counts_attempts_per_number() -> None:
    async with Sandbox(speed=200) as sb:
        outcomes = []
        for _ in range(3):
            call = await sb.client.calls.create(from_=OWNED, to="+14155550106")
            done = await sb.wait_for_status(call.call_id)
            outcomes.append((done.status, done.reason, done.attempt))
        assert outcomes == [("failed", "busy", 1), ("completed", None, 2), ("completed", None, 3)]


@pytest.mark.parametrize("timeout", [5, 20])
async def test_no_answer_honours_the_call_timeout(timeout: int) -> None:
    async with Sandbox(speed=200) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155550102", timeout=timeout)
        done = await sb.wait_for_status(call.call_id)
        assert done.reason == "no_answer"
        assert done.call.initiated_at is not None
        assert done.call.ended_at is not None
        # Simulated timestamps follow the planned timeline exactly, whatever the load.
        rang = (done.call.ended_at - done.call.initiated_at).total_seconds()
        assert rang == pytest.approx(timeout, abs=0.01)


async def test_a_short_timeout_turns_an_answer_into_no_answer() -> None:
    async with Sandbox(speed=200) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155552672", timeout=2)
        done = await sb.wait_for_status(call.call_id)
        assert done.reason == "no_answer"


async def test_max_duration_is_enforced() -> None:
    async with Sandbox(speed=200) as sb:
        call = await sb.client.calls.create(
            from_=OWNED, to="+14155552672", max_duration=3, tags={"sandbox_talk_seconds": 600}
        )
        done = await sb.wait_for_status(call.call_id)
        assert done.status == "completed"
        assert done.ended_by == "max_duration"
        assert done.call.duration == 3
        assert done.events[-1].data["ended_by"] == "max_duration"


async def test_scheduled_calls_stay_scheduled_until_their_time() -> None:
    async with Sandbox(speed=200) as sb:
        later = datetime.now(UTC) + timedelta(hours=2)
        far = await sb.client.calls.create(from_=OWNED, to="+14155552672", scheduled_for=later)
        assert far.status == "scheduled"
        assert far.scheduled_for == later.replace(microsecond=later.microsecond)
        soon = datetime.now(UTC) + timedelta(seconds=10)  # 50 ms at speed 200
        near = await sb.client.calls.create(from_=OWNED, to="+14155552673", scheduled_for=soon)
        assert near.status == "scheduled"
        assert sb.live_calls == 0
        done = await sb.wait_for_status(near.call_id)
        assert done.event_types == ANSWERED
        assert done.call.initiated_at is not None
        assert done.call.initiated_at >= soon - timedelta(seconds=1)
        fetched = await sb.client.calls.get(far.call_id)
        assert fetched.status == "scheduled"
        assert fetched.initiated_at is None


def _ivr(no_answer: tuple[au.Action, ...] = ()) -> au.CallControl:
    menu = au.GatherDtmf(
        max_digits=1,
        timeout=10,
        routes=[
            au.DtmfRoute("1", au.Transfer("+14155552673")),
            au.DtmfRoute("2", au.Transfer("+14155552674")),
            au.DtmfRoute("9", au.Hangup()),
        ],
    )
    return au.CallControl(
        on_answered=[au.PlayAudio(message="Welcome. Press 1 for billing, 2 for support."), menu],
        on_no_answer=no_answer,
    )


@pytest.mark.parametrize(
    ("to", "tags", "steps", "ended_by"),
    [
        ("+14155550107", None, ("gather_dtmf:1", "transfer:+14155552673"), "transfer"),
        (
            "+14155552672",
            {"sandbox_digits": "2"},
            ("gather_dtmf:2", "transfer:+14155552674"),
            "transfer",
        ),
        ("+14155552672", {"sandbox_digits": "9"}, ("gather_dtmf:9", "hangup"), "hangup"),
        ("+14155552672", {"sandbox_digits": "5"}, ("gather_dtmf:5",), "callee"),
        ("+14155552672", None, ("gather_dtmf:timeout",), "callee"),
    ],
)
async def test_ivr_route_is_picked_by_the_scripted_digits(
    to: str, tags: dict[str, str] | None, steps: tuple[str, ...], ended_by: str
) -> None:
    async with Sandbox(speed=200) as sb:
        call = await sb.client.calls.create(from_=OWNED, to=to, tags=tags, call_control=_ivr())
        done = await sb.wait_for_status(call.call_id)
        assert done.status == "completed"
        assert done.actions == ("play_audio", *steps)
        assert done.ended_by == ended_by


async def test_play_audio_takes_time_in_proportion_to_its_text() -> None:
    async with Sandbox(speed=200) as sb:
        durations = []
        for words in (1, 40):
            control = au.CallControl(
                on_answered=[au.PlayAudio(message="word " * words), au.Hangup()]
            )
            call = await sb.client.calls.create(
                from_=OWNED, to="+14155552672", call_control=control
            )
            done = await sb.wait_for_status(call.call_id)
            assert done.ended_by == "hangup"
            assert done.call.duration is not None
            durations.append(done.call.duration)
        assert durations[0] < durations[1]


async def test_on_no_answer_actions_run_after_the_timeout() -> None:
    async with Sandbox(speed=200) as sb:
        control = au.CallControl(
            on_no_answer=[
                au.PlayAudio(message="Sorry we missed you."),
                au.RecordAudio(max_duration=3),
            ]
        )
        call = await sb.client.calls.create(
            from_=OWNED, to="+14155550102", timeout=5, call_control=control
        )
        await sb.wait_for_status(call.call_id)
        await sb.wait_idle()
        done = sb.call(call.call_id)
        assert done.actions == ("play_audio", "record_audio")
        assert done.event_types[-2:] == ("call.failed", "recording.completed")


def test_a_raising_timer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    scheduler = Scheduler(clock=lambda: clock[0])
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("one bad call")

    scheduler.call_at(1.0, lambda: ran.append("before"))
    scheduler.call_at(2.0, boom)
    scheduler.call_at(3.0, lambda: ran.append("after"))
    scheduler.call_at(9.0, lambda: ran.append("later"))
    clock[0] = 5.0
    with caplog.at_level("ERROR", logger="audian_async.sandbox"):
        assert scheduler.run_due() == 9.0
    assert ran == ["before", "after"]
    assert "one bad call" in caplog.text


def test_a_create_that_cannot_emit_leaves_no_trace() -> None:
    def refuse(event: object) -> None:
        raise TypeError("cannot encode")

    engine = Engine(max_concurrent=1, emit=refuse)
    with pytest.raises(TypeError):
        engine.create(au.CallRequest(from_=OWNED, to="+14155550106"))
    assert (engine.live, len(engine.calls), engine.calls_created) == (0, 0, 0)
    assert not engine.at_limit
    engine.emit = lambda event: None
    call = engine.create(au.CallRequest(from_=OWNED, to="+14155550106"))
    assert call.attempt == 1  # the failed create did not count as an attempt
    assert engine.live == 1


async def test_scheduled_calls_are_bounded() -> None:
    async with Sandbox(speed=100, max_scheduled=2) as sb:
        client = sb.client.with_options(max_retries=0)
        later = datetime.now(UTC) + timedelta(hours=1)
        for n in ("+14155552672", "+14155552673"):
            await client.calls.create(from_=OWNED, to=n, scheduled_for=later)
        with pytest.raises(au.RateLimitedError) as refused:
            await client.calls.create(from_=OWNED, to="+14155552674", scheduled_for=later)
        assert refused.value.message == "Too many scheduled calls. Maximum: 2"
        now = await client.calls.create(from_=OWNED, to="+14155552675")
        assert now.status == "initiated"
        assert len(sb.calls) == 3


async def test_a_scheduled_call_due_at_the_limit_waits_for_a_free_line() -> None:
    async with Sandbox(speed=100, max_concurrent=1) as sb:
        client = sb.client.with_options(max_retries=0)
        long = {"sandbox_talk_seconds": 60}  # about 0.6 s of real time at speed 100
        first = await client.calls.create(from_=OWNED, to="+14155552672", tags=long)
        soon = datetime.now(UTC) + timedelta(seconds=2)  # due long before `first` ends
        waiting = await client.calls.create(from_=OWNED, to="+14155552673", scheduled_for=soon)
        assert waiting.status == "scheduled"
        done = await sb.wait_for_status(waiting.call_id, timeout=20)
        # Due while the one line was taken, it was neither refused nor run beside `first`:
        # it waited, then completed. (Its timestamps are on the sandbox's fast clock, where
        # a second is 10 ms of real time: too fine to order the two calls by on a busy
        # machine; the peak says it.)
        assert done.status == "completed"
        assert sb.call(first.call_id).status == "completed"
        assert sb.peak_live_calls == 1


def test_one_instant_decides_whether_a_call_is_scheduled() -> None:
    engine = Engine()
    wall = datetime(2030, 1, 1, 0, 0, 0, 900_000, tzinfo=UTC)
    past = au.CallRequest(from_=OWNED, to="+14155552672", scheduled_for=wall - timedelta(0.0, 0.5))
    assert engine.create(past, wall=wall).status == CallStatus.INITIATED
    ahead = au.CallRequest(from_=OWNED, to="+14155552672", scheduled_for=wall + timedelta(0, 0.05))
    assert engine.create(ahead, wall=wall).status == CallStatus.SCHEDULED
