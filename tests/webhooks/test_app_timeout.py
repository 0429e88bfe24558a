"""WebhookApp(handler_timeout=...): a handler that never returns cannot hold a delivery for good.

The timeouts here are tiny (50 ms) and the hung handlers wait for an event that never fires,
so no test waits on the clock for anything but the timeout under test; what happens around
it is ordered by events.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from audian_async import ValidationError
from audian_async._serving import ThreadedServer
from audian_async.webhooks import Event, EventRouter, InMemoryDedupeStore, WebhookApp

from ..loopback import until
from ._support import SECRET, delivery

pytestmark = pytest.mark.anyio

TIMEOUT = 0.05


class Hanging:
    """A handler whose first ``hangs`` calls never return unless cancelled.

    A hung call waits for ``hold`` first, shielded from cancellation (a test sets it once
    everything it needs is in place, so the timeout cannot fire too early for it), then
    for an event that nobody ever sets.
    """

    def __init__(self, hangs: int = 1) -> None:
        self.hangs = hangs
        self.calls = 0
        self.cancelled = 0
        self.entered = anyio.Event()
        self.hold = anyio.Event()
        self.hold.set()
        self.router = EventRouter()
        self.router.add(self.handle, "*")

    async def handle(self, event: Event) -> None:
        self.calls += 1
        if self.calls > self.hangs:
            return
        self.entered.set()
        try:
            with anyio.CancelScope(shield=True):
                await self.hold.wait()
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise


async def post(app: WebhookApp, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        return await client.post("/", content=body, headers=headers)


# --- the option -------------------------------------------------------------------------------


def test_handler_timeout_defaults_to_30_seconds_and_none_disables_it() -> None:
    assert WebhookApp(EventRouter(), secret=SECRET).handler_timeout == 30.0
    assert WebhookApp(EventRouter(), secret=SECRET, handler_timeout=None).handler_timeout is None
    assert WebhookApp(EventRouter(), secret=SECRET, handler_timeout=5).handler_timeout == 5.0
    forever = WebhookApp(EventRouter(), secret=SECRET, handler_timeout=math.inf)
    assert forever.handler_timeout is None
    assert "handler_timeout=5.0" in repr(WebhookApp(EventRouter(), verify=False, handler_timeout=5))


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan, True, "30", b"30", [30]])
def test_a_bad_handler_timeout_is_refused_at_construction(value: Any) -> None:
    with pytest.raises(ValidationError, match="handler_timeout") as info:
        WebhookApp(EventRouter(), secret=SECRET, handler_timeout=value)
    assert info.value.field == "handler_timeout"


# --- a hung delivery --------------------------------------------------------------------------


async def test_a_hung_handler_is_cancelled_answered_500_and_not_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="audian_async.webhooks")
    hanging = Hanging()
    finished: list[str] = []

    @hanging.router.on("*")
    async def quick(event: Event) -> None:
        finished.append(event.type)

    store = InMemoryDedupeStore()
    app = WebhookApp(hanging.router, secret=SECRET, dedupe_store=store, handler_timeout=TIMEOUT)
    body, headers = delivery(msg_id="msg_hung")
    with anyio.fail_after(10):
        first = await post(app, body, headers)
    assert first.status_code == 500
    assert first.json()["error"] == "handler_timeout"
    assert hanging.cancelled == 1
    assert finished == ["call.failed"]  # the other handler ran; the delivery still failed
    assert not await store.seen("msg_hung")

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "msg_hung" in message
    assert "call.failed" in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET.removeprefix("whsec_")[:8] not in logged

    # The redelivery runs the handlers again (this time they return), and is remembered.
    with anyio.fail_after(10):
        assert (await post(app, body, headers)).status_code == 204
        assert (await post(app, body, headers)).status_code == 204
    assert hanging.calls == 2
    assert finished == ["call.failed", "call.failed"]
    assert await store.seen("msg_hung")


async def test_without_a_webhook_id_a_hung_delivery_times_out_too() -> None:
    hanging = Hanging()
    app = WebhookApp(hanging.router, verify=False, handler_timeout=TIMEOUT)
    body, _ = delivery(event_id=None)
    with anyio.fail_after(10):
        response = await post(app, body, {})
    assert response.status_code == 500
    assert hanging.cancelled == 1


async def test_duplicates_waiting_on_a_hung_delivery_are_released_and_run_the_handlers() -> None:
    hanging = Hanging()
    hanging.hold = anyio.Event()  # the first call ignores its timeout until the others wait
    app = WebhookApp(hanging.router, secret=SECRET, handler_timeout=TIMEOUT)
    body, headers = delivery(msg_id="msg_waiters")
    statuses: list[int] = []

    async def deliver() -> None:
        statuses.append((await post(app, body, headers)).status_code)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            await hanging.entered.wait()
            tg.start_soon(deliver)
            tg.start_soon(deliver)
            await anyio.wait_all_tasks_blocked()
            assert statuses == []  # both duplicates wait for the hung delivery
            assert hanging.calls == 1
            hanging.hold.set()
    # The hung one is cancelled (500); one waiting duplicate takes the key over and runs the
    # handler (204), the other then finds it handled (204, no run).
    assert statuses == [500, 204, 204]
    assert hanging.calls == 2
    assert hanging.cancelled == 1


# --- shutting a server down -------------------------------------------------------------------


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_a_server_with_a_hung_handler_shuts_down_after_the_timeout() -> None:
    # uvicorn waits for every open request before it exits (graceful_shutdown=None, as for
    # SIGTERM without a graceful timeout): without a handler timeout this server would never
    # stop. The request is in the app when the shutdown begins, and its handler hangs after.
    entered = threading.Event()
    router = EventRouter()

    @router.on("*")
    async def hang(event: Event) -> None:
        await anyio.Event().wait()

    hooks = WebhookApp(router, secret=SECRET, handler_timeout=TIMEOUT)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            entered.set()
        await hooks(scope, receive, send)

    name = "hung-handler test server"
    server = ThreadedServer(
        app, lifespan="on", graceful_shutdown=None, name=name, startup_timeout=15, stop_timeout=15
    )
    body, headers = delivery(msg_id="msg_shutdown")
    release = anyio.Event()

    async def rest_of_body() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()  # the handler starts only once the shutdown has begun
        yield body[10:]

    responses: list[httpx.Response] = []

    async def deliver(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            responses.append(await client.post("/", content=rest_of_body(), headers=headers))

    url = server.start()
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(deliver, url)
                await anyio.to_thread.run_sync(entered.wait, 10)
                assert entered.is_set()
                tg.start_soon(anyio.to_thread.run_sync, server.stop)
                await until(lambda: refuses_connections(server.port))  # shutdown has begun
                release.set()
    finally:
        server.stop()
    assert server.error is None
    assert not any(t.name == name for t in threading.enumerate())  # uvicorn has exited
    assert [r.status_code for r in responses] == [500]
    assert responses[0].json()["error"] == "handler_timeout"
