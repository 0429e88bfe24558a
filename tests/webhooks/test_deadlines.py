"""The handler deadline's machinery: one timer per app and loop, shields respected.

WebhookApp's deadline does not put a cancel scope around every delivery (see
``audian_async/webhooks/_deadlines.py``); these tests pin what that must still guarantee on
asyncio and trio alike: work past its deadline is cancelled, work inside a shielded scope only
once it leaves it, finished work leaves nothing behind that could cancel later work, and
many deliveries in flight each get their own deadline.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from audian_async.webhooks import Event, EventRouter, WebhookApp, _deadlines
from audian_async.webhooks._deadlines import Deadline, DeadlineExceeded

from ._support import SECRET, delivery
from .test_app_timeout import post

pytestmark = pytest.mark.anyio

TIMEOUT = 0.05


async def never(_: object) -> None:
    await anyio.Event().wait()


def test_the_fast_path_reads_the_installed_anyio() -> None:
    # Without it every delivery falls back to a cancel scope of its own: correct, but the
    # cost the module exists to avoid. An anyio upgrade that breaks this is noticed here.
    assert _deadlines._TASK_STATES is not None


async def test_work_past_its_deadline_is_cancelled() -> None:
    cancelled = []

    async def hang(_: object) -> None:
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    with anyio.fail_after(10), pytest.raises(DeadlineExceeded):
        await Deadline(TIMEOUT).run(hang, None)
    assert cancelled == [True]


async def test_work_that_finishes_returns_its_result_and_leaves_nothing_to_cancel_later() -> None:
    async def answer(value: int) -> int:
        await anyio.lowlevel.checkpoint()
        return value * 2

    deadline = Deadline(TIMEOUT)
    assert await deadline.run(answer, 21) == 42
    # The finished work's deadline passes while this task goes on: nothing cancels it.
    with anyio.fail_after(10):
        await anyio.sleep(TIMEOUT * 4)
    assert await deadline.run(answer, 1) == 2


async def test_a_shielded_scope_is_left_before_the_cancellation_arrives() -> None:
    released = anyio.Event()
    steps: list[str] = []

    async def cleanup_then_hang(_: object) -> None:
        with anyio.CancelScope(shield=True):
            await released.wait()  # past the deadline, but shielded
            steps.append("cleanup done")
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            steps.append("cancelled")
            raise

    async def release_after_the_deadline() -> None:
        await anyio.sleep(TIMEOUT * 4)
        released.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(release_after_the_deadline)
            with pytest.raises(DeadlineExceeded):
                await Deadline(TIMEOUT).run(cleanup_then_hang, None)
    assert steps == ["cleanup done", "cancelled"]


async def test_work_that_swallows_the_cancellation_still_counts_as_timed_out() -> None:
    async def stubborn(_: object) -> str:
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            pass  # a handler that should not do this
        return "late"

    with anyio.fail_after(10), pytest.raises(DeadlineExceeded):
        await Deadline(TIMEOUT).run(stubborn, None)
    # The task is not left cancelled: it goes on awaiting normally.
    await anyio.lowlevel.checkpoint()
    await anyio.lowlevel.checkpoint()


async def test_deliveries_in_flight_each_time_out_and_quick_ones_among_them_succeed() -> None:
    router = EventRouter()

    @router.on("call.failed")
    async def hang(event: Event) -> None:
        await anyio.Event().wait()

    app = WebhookApp(router, secret=SECRET, handler_timeout=TIMEOUT)
    statuses: dict[str, int] = {}

    async def deliver(msg_id: str, event: str) -> None:
        body, headers = delivery(event, msg_id=msg_id)
        statuses[msg_id] = (await post(app, body, headers)).status_code

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(deliver, f"hung_{i}", "call.failed")
                tg.start_soon(deliver, f"quick_{i}", "call.completed")
                await anyio.sleep(TIMEOUT / 4)  # staggered: six different deadlines
    assert statuses == {
        **{f"hung_{i}": 500 for i in range(6)},
        **{f"quick_{i}": 204 for i in range(6)},
    }


async def test_one_app_on_several_event_loops_in_turn() -> None:
    # The same app object, used by each parametrized backend's test in turn: each run of
    # this test gets a new loop, and the app's deadlines still fire on it.
    with anyio.fail_after(10), pytest.raises(DeadlineExceeded):
        await _SHARED.run(never, None)


_SHARED = Deadline(TIMEOUT)


async def test_without_anyio_scope_state_each_run_gets_a_cancel_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An anyio release that no longer has the per-task state: the plain, slower way.
    monkeypatch.setattr(_deadlines, "_TASK_STATES", None)

    async def finish(value: int) -> int:
        await anyio.lowlevel.checkpoint()
        return value

    deadline = Deadline(TIMEOUT)
    assert await deadline.run(finish, 7) == 7
    with anyio.fail_after(10), pytest.raises(DeadlineExceeded):
        await deadline.run(never, None)


async def test_work_that_never_waits_returns_or_raises_as_awaited() -> None:
    async def count(value: int) -> int:
        return value + 1

    async def refuse(_: object) -> None:
        raise LookupError("no such call")

    deadline = Deadline(TIMEOUT)
    assert await deadline.run(count, 1) == 2
    with pytest.raises(LookupError, match="no such call"):
        await deadline.run(refuse, None)


async def test_a_cancellation_of_the_request_ends_the_work_and_is_not_a_timeout() -> None:
    # The request's own cancellation (a server shutting down) still ends the handler.
    cleaned_up: list[bool] = []

    async def hang(_: object) -> None:
        try:
            await anyio.Event().wait()
        finally:
            cleaned_up.append(True)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await Deadline(30.0).run(hang, None)

            tg.start_soon(run)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert cleaned_up == [True]
