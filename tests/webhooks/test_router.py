"""EventRouter: patterns, filters, composition, sync/async handlers, errors, ordering."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import pytest

from audian_async import FailureReason
from audian_async.webhooks import (
    CallAnswered,
    CallCompleted,
    CallFailed,
    CallRinging,
    Event,
    EventRouter,
    RecordingCompleted,
    UnknownEvent,
    parse_event,
)

pytestmark = pytest.mark.anyio

FAILED_BUSY = CallFailed(id="evt_1", call_id="c1", reason="busy", reason_code=486)
FAILED_NO_ANSWER = CallFailed(id="evt_2", call_id="c2", reason="no_answer", reason_code=408)
RINGING = CallRinging(id="evt_3", call_id="c3", status="ringing")
RECORDING = RecordingCompleted(id="evt_4", call_id="c4", recording_url="https://r/1")
UNKNOWN = UnknownEvent(type="sms.sent", data={"call_id": "c5", "segment": 2})


def recorder(router: EventRouter, *patterns: str, **filters: object) -> list[Event]:
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    router.add(handler, *patterns, filters=filters)
    return seen


async def test_exact_glob_and_star() -> None:
    router = EventRouter()
    exact = recorder(router, "call.failed")
    glob = recorder(router, "call.*")
    star = recorder(router, "*")
    several = recorder(router, "call.ringing", "recording.completed")
    for event in (FAILED_BUSY, RINGING, RECORDING, UNKNOWN):
        await router.dispatch(event)
    assert exact == [FAILED_BUSY]
    assert glob == [FAILED_BUSY, RINGING]
    assert star == [FAILED_BUSY, RINGING, RECORDING, UNKNOWN]
    assert several == [RINGING, RECORDING]


async def test_unknown_types_route_by_their_type() -> None:
    router = EventRouter()
    sms = recorder(router, "sms.*")
    assert await router.dispatch(UNKNOWN) == 1
    assert sms == [UNKNOWN]
    assert await router.dispatch(RINGING) == 0


async def test_dispatch_returns_the_number_of_handlers_run() -> None:
    router = EventRouter()
    recorder(router, "call.failed")
    recorder(router, "*")
    assert await router.dispatch(FAILED_BUSY) == 2
    assert await router.dispatch(RECORDING) == 1
    assert await EventRouter().dispatch(RECORDING) == 0


async def test_filters_on_attributes_and_data() -> None:
    router = EventRouter()
    busy = recorder(router, "call.failed", reason="busy")
    by_enum = recorder(router, "call.failed", reason=FailureReason.NO_ANSWER)
    either = recorder(router, "call.failed", reason={"busy", "no_answer"}, reason_code=486)
    predicate = recorder(router, "*", reason_code=lambda code: code >= 480)
    by_data = recorder(router, "sms.sent", segment=2)
    by_call = recorder(router, "*", call_id="c3")
    absent = recorder(router, "*", no_such_field="x")
    by_type = recorder(router, "*", type="recording.completed")
    for event in (FAILED_BUSY, FAILED_NO_ANSWER, RINGING, RECORDING, UNKNOWN):
        await router.dispatch(event)
    assert busy == [FAILED_BUSY]
    assert by_enum == [FAILED_NO_ANSWER]
    assert either == [FAILED_BUSY]
    assert predicate == [FAILED_BUSY]
    assert by_data == [UNKNOWN]
    assert by_call == [RINGING]
    assert absent == []
    assert by_type == [RECORDING]


async def test_a_filter_that_raises_does_not_match(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="audian_async.webhooks")
    router = EventRouter()
    # The documented example: a recording without a duration has duration=None, and
    # None > 60 is a TypeError. It must neither escape nor stop the other handlers.
    long = recorder(router, "recording.completed", duration=lambda d: d > 60)
    # An unhashable data value is no member of a set (`[1] in {"a"}` is a TypeError).
    member = recorder(router, "*", tags={"vip"})
    everything = recorder(router, "*")
    no_duration = RecordingCompleted(id="evt_5", call_id="c6")
    longer = RecordingCompleted(id="evt_6", call_id="c7", duration=90.0)
    tagged = UnknownEvent(type="sms.sent", data={"tags": ["vip"]})
    vip = UnknownEvent(type="sms.sent", data={"tags": "vip"})
    for event in (no_duration, longer, tagged, vip):
        assert router.matching(event)  # never raises
        await router.dispatch(event)
    assert long == [longer]
    assert member == [vip]
    assert everything == [no_duration, longer, tagged, vip]
    subs = router.subscriptions()
    assert not subs[0].matches(no_duration)
    assert not subs[1].matches(tagged)
    logged = [r for r in caplog.records if "filter raised" in r.getMessage()]
    assert {r.args[1] for r in logged} == {"duration", "tags"}  # type: ignore[index]
    assert all(r.levelno == logging.DEBUG and r.exc_info for r in logged)


async def test_decorator_returns_the_handler_and_stacks() -> None:
    router = EventRouter()
    seen: list[str] = []

    @router.on("call.completed")
    @router.on("call.failed", reason="busy")
    async def done(event: Event) -> None:
        seen.append(event.type)

    assert callable(done)
    await router.dispatch(FAILED_BUSY)
    await router.dispatch(FAILED_NO_ANSWER)
    await router.dispatch(CallCompleted(call_id="c"))
    assert seen == ["call.failed", "call.completed"]


async def test_include_is_live_and_keeps_position() -> None:
    order: list[str] = []
    parent, child = EventRouter(), EventRouter()

    def tag(name: str) -> Any:
        async def handler(event: Event) -> None:
            order.append(name)

        return handler

    parent.add(tag("parent-1"), "*")
    parent.include(child)
    parent.add(tag("parent-2"), "*")
    child.add(tag("child-late"), "call.failed")  # added after include(): still seen
    await parent.dispatch(FAILED_BUSY)
    assert order == ["parent-1", "child-late", "parent-2"]
    assert [s.patterns for s in parent.subscriptions()] == [("*",), ("call.failed",), ("*",)]


def test_include_rejects_cycles_and_non_routers() -> None:
    a, b = EventRouter(), EventRouter()
    a.include(b)
    with pytest.raises(ValueError, match="cycle"):
        b.include(a)
    with pytest.raises(ValueError, match="cycle"):
        a.include(a)
    with pytest.raises(TypeError):
        a.include(object())  # type: ignore[arg-type]


def test_bad_registrations() -> None:
    router = EventRouter()
    with pytest.raises(TypeError):
        router.add("not callable", "*")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        router.on("")


async def test_off_and_subscription_cancel() -> None:
    router = EventRouter()
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    router.on("call.failed")(handler)
    router.on("call.ringing")(handler)
    assert router.off(handler) == 2
    assert router.off(handler) == 0
    await router.dispatch(FAILED_BUSY)
    assert seen == []

    sub = router.add(handler, "call.*")
    assert sub.active
    with sub:
        await router.dispatch(RINGING)
    assert not sub.active
    await router.dispatch(RINGING)
    sub.cancel()  # idempotent
    assert seen == [RINGING]


async def test_cancel_works_on_an_included_router() -> None:
    parent, child = EventRouter(), EventRouter()
    parent.include(child)
    seen = recorder(child, "*")
    await parent.dispatch(RINGING)  # warm the match cache
    child.subscriptions()[0].cancel()
    await parent.dispatch(RINGING)
    assert seen == [RINGING]


async def test_sync_handlers_run_in_a_worker_thread_unless_opted_out() -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, int] = {}
    router = EventRouter()

    def in_thread(event: Event) -> None:
        threads["default"] = threading.get_ident()

    def inline(event: Event) -> None:
        threads["inline"] = threading.get_ident()

    router.add(in_thread, "*")
    router.add(inline, "*", in_thread=False)
    inline_router = EventRouter(sync_in_thread=False)
    inline_router.add(lambda e: threads.__setitem__("router", threading.get_ident()), "*")
    await router.dispatch(RINGING)
    await inline_router.dispatch(RINGING)
    assert threads["default"] != loop_thread
    assert threads["inline"] == loop_thread
    assert threads["router"] == loop_thread


async def test_async_callable_objects_and_sync_functions_returning_awaitables() -> None:
    seen: list[str] = []

    class Handler:
        async def __call__(self, event: Event) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append("object")

    async def later(event: Event) -> None:
        seen.append("awaitable")

    router = EventRouter()
    router.add(Handler(), "*")
    router.add(lambda e: later(e), "*", in_thread=False)
    await router.dispatch(RINGING)
    assert sorted(seen) == ["awaitable", "object"]


async def test_a_failing_handler_does_not_stop_the_others() -> None:
    router = EventRouter()
    ran: list[str] = []
    first_failed = anyio.Event()

    @router.on("*")
    async def first(event: Event) -> None:
        first_failed.set()
        raise ValueError("first")

    @router.on("*")
    async def slow(event: Event) -> None:
        # Still running when the first one fails; a cancellation of the others would reach
        # it at this checkpoint.
        await first_failed.wait()
        await anyio.lowlevel.checkpoint()
        ran.append("slow")

    @router.on("*")
    def sync_fails(event: Event) -> None:
        raise KeyError("third")

    @router.on("*")
    def sync_ok(event: Event) -> None:
        ran.append("sync")

    with pytest.raises(ExceptionGroup) as info:
        await router.dispatch(FAILED_BUSY)
    assert sorted(ran) == ["slow", "sync"]
    group = info.value
    assert [type(e) for e in group.exceptions] == [ValueError, KeyError]  # registration order
    assert "2 webhook handler(s) failed on call.failed evt_1" in str(group)


async def test_a_single_failing_handler_is_still_a_group() -> None:
    router = EventRouter()

    @router.on("call.failed")
    async def boom(event: Event) -> None:
        raise RuntimeError("boom")

    with pytest.raises(ExceptionGroup) as info:
        await router.dispatch(FAILED_BUSY)
    assert [str(e) for e in info.value.exceptions] == ["boom"]
    # except* catches it as users would write it
    caught: list[BaseException] = []
    try:
        await router.dispatch(FAILED_BUSY)
    except* RuntimeError as group:
        caught.extend(group.exceptions)
    assert len(caught) == 1


async def test_handlers_start_in_registration_order_and_run_concurrently() -> None:
    router = EventRouter()
    started: list[int] = []
    gate = anyio.Event()

    def make(i: int) -> Any:
        async def handler(event: Event) -> None:
            started.append(i)
            if i == 0:
                await gate.wait()  # only finishes once the last handler ran: concurrency
            elif i == 7:
                gate.set()

        return handler

    for i in range(8):
        router.add(make(i), "*")
    # Several rounds: trio shuffles the order of tasks started with start_soon.
    for _ in range(10):
        started.clear()
        gate = anyio.Event()
        with anyio.fail_after(5):
            assert await router.dispatch(RINGING) == 8
        assert started == list(range(8))


async def test_last_handlers_run_once_every_other_handler_finished() -> None:
    router = EventRouter()
    log: list[str] = []
    release = anyio.Event()

    async def settle(event: Event) -> None:
        log.append("last")

    async def slow(event: Event) -> None:
        log.append("slow started")
        await release.wait()
        log.append("slow done")

    async def failing(event: Event) -> None:
        release.set()
        raise RuntimeError("boom")

    router.add(settle, "call.failed", last=True)  # registered first, still runs last
    router.add(slow, "call.*")
    router.add(failing, "call.failed")
    assert [s.handler for s in router.matching(FAILED_BUSY)] == [slow, failing, settle]
    with anyio.fail_after(5), pytest.RaisesGroup(RuntimeError):
        await router.dispatch(FAILED_BUSY)
    assert log == ["slow started", "slow done", "last"]
    log.clear()
    assert await router.dispatch(RINGING) == 1  # a type the last handler does not match
    assert log == ["slow started", "slow done"]


async def test_cancellation_is_not_swallowed() -> None:
    router = EventRouter()
    running = 0
    both_running = anyio.Event()

    async def forever(event: Event) -> None:
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await anyio.sleep_forever()

    router.add(forever, "*")
    router.add(forever, "*")
    propagated = False

    async def dispatch() -> None:
        nonlocal propagated
        try:
            await router.dispatch(RINGING)
        except anyio.get_cancelled_exc_class():
            propagated = True
            raise

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(dispatch)
            await both_running.wait()  # cancelled while its handlers run
            tg.cancel_scope.cancel()
    assert propagated


async def test_dispatch_parsed_events() -> None:
    router = EventRouter()
    answered = recorder(router, "call.answered", status="answered")
    event = parse_event(
        b'{"event": "call.answered", "data": {"call_id": "c", "status": "answered"}}'
    )
    await router.dispatch(event)
    assert answered == [event]
    assert isinstance(answered[0], CallAnswered)


def test_repr() -> None:
    router = EventRouter()
    sub = router.add(lambda e: None, "call.failed", filters={"reason": "busy"})
    assert "1 handler" in repr(router)
    assert "call.failed" in repr(sub)
    assert "reason='busy'" in repr(sub)
