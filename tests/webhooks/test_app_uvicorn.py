"""WebhookApp under a real uvicorn on loopback, and mounted in FastAPI."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from audian_async.webhooks import CallFailed, Event, EventRouter, WebhookApp

from ._support import SECRET, delivery, serve, signed

pytestmark = pytest.mark.anyio


class ThreadSafeRecorder:
    """Handlers run on the server's loop thread; the test reads from its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.fail_next = 0
        self.hold: Callable[[], Awaitable[None]] | None = None
        self.router = EventRouter()
        self.router.add(self.handle, "*")

    async def handle(self, event: Event) -> None:
        if self.hold is not None:
            await self.hold()
        with self.lock:
            self.events.append(event)
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("handler failed")


class Arrivals:
    """ASGI middleware: counts the requests whose whole body the app has read.

    Everything here runs on the server's loop (its event is made there, on first use).
    """

    def __init__(self, app: Any, expected: int) -> None:
        self.app = app
        self.expected = expected
        self.bodies = 0
        self._all_in: anyio.Event | None = None

    def _event(self) -> anyio.Event:
        if self._all_in is None:
            self._all_in = anyio.Event()
        return self._all_in

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        event = self._event()

        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                self.bodies += 1
                if self.bodies == self.expected:
                    event.set()
            return message

        await self.app(scope, counted, send)

    async def all_settled(self) -> None:
        """Wait until every expected body was read and every other task on this loop
        waits (each duplicate has met the first delivery, or a handler of its own)."""
        await self._event().wait()
        await anyio.wait_all_tasks_blocked()


@pytest.fixture
def recorder() -> ThreadSafeRecorder:
    return ThreadSafeRecorder()


async def test_every_answer_over_http(recorder: ThreadSafeRecorder) -> None:
    app = WebhookApp(recorder.router, secret=SECRET, max_body=2000)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            body, headers = delivery(data={"call_id": "c1", "reason": "busy"})
            ok = await client.post("/hooks", content=body, headers=headers)
            assert ok.status_code == 204
            dup = await client.post("/hooks", content=body, headers=headers)
            assert dup.status_code == 204
            assert (await client.get("/hooks")).status_code == 405
            bad_sig = {**headers, "webhook-signature": "v1,AAAA"}
            assert (await client.post("/hooks", content=body, headers=bad_sig)).status_code == 401
            assert (
                await client.post("/hooks", content=b"{}", headers=signed(b"{}"))
            ).status_code == 400
            big, big_headers = delivery(msg_id="msg_big", data={"pad": "x" * 5000})
            assert (
                await client.post("/hooks", content=big, headers=big_headers)
            ).status_code == 413
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert isinstance(event, CallFailed)
    assert event.reason == "busy"


async def test_chunked_body_over_max_body_is_413(recorder: ThreadSafeRecorder) -> None:
    app = WebhookApp(recorder.router, secret=SECRET, max_body=1000)
    big, headers = delivery(data={"pad": "x" * 2500})

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    small, small_headers = delivery(msg_id="msg_small")

    async def small_chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(small), 10):
            yield small[i : i + 10]

    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.post("/", content=chunks(), headers=headers)
            assert "content-length" not in response.request.headers
            assert response.status_code == 413
            response = await client.post("/", content=small_chunks(), headers=small_headers)
            assert response.status_code == 204
    assert len(recorder.events) == 1


async def test_failure_then_redelivery(recorder: ThreadSafeRecorder) -> None:
    recorder.fail_next = 1
    app = WebhookApp(recorder.router, secret=SECRET)
    body, headers = delivery(msg_id="msg_retry")
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.post("/", content=body, headers=headers)).status_code == 500
            assert (await client.post("/", content=body, headers=headers)).status_code == 204
            assert (await client.post("/", content=body, headers=headers)).status_code == 204
    assert len(recorder.events) == 2


async def test_concurrent_duplicates_over_http_run_once(recorder: ThreadSafeRecorder) -> None:
    app = Arrivals(WebhookApp(recorder.router, secret=SECRET), expected=5)
    # The handler runs on only once all five deliveries are in the app: each duplicate
    # arrives while the first is still being handled.
    recorder.hold = app.all_settled
    body, headers = delivery(msg_id="msg_concurrent")
    statuses: list[int] = []
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:

            async def deliver() -> None:
                response = await client.post("/", content=body, headers=headers)
                statuses.append(response.status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(deliver)
    assert statuses == [204] * 5
    assert app.bodies == 5
    assert len(recorder.events) == 1


async def test_lifespan_under_uvicorn(recorder: ThreadSafeRecorder) -> None:
    # lifespan="on" makes uvicorn fail to start unless the app completes startup.
    with serve(WebhookApp(recorder.router, secret=SECRET), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            body, headers = delivery()
            assert (await client.post("/", content=body, headers=headers)).status_code == 204


@pytest.mark.parametrize(
    ("path", "url_path"), [(None, "/webhooks/"), ("/events", "/webhooks/events")]
)
async def test_mounted_in_fastapi(
    recorder: ThreadSafeRecorder, path: str | None, url_path: str
) -> None:
    api = FastAPI()
    api.mount("/webhooks", WebhookApp(recorder.router, secret=SECRET, path=path))

    @api.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    body, headers = delivery()
    with serve(api) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/health")).json() == {"ok": True}
            response = await client.post(url_path, content=body, headers=headers)
            assert response.status_code == 204
            if path is not None:
                other = await client.post("/webhooks/other", content=body, headers=headers)
                assert other.status_code == 404
    assert len(recorder.events) == 1
