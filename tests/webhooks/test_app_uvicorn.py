"""WebhookApp under a real uvicorn on loopback, and mounted in FastAPI."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
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
        self.delay = 0.0
        self.router = EventRouter()
        self.router.add(self.handle, "*")

    async def handle(self, event: Event) -> None:
        if self.delay:
            await anyio.sleep(self.delay)  # widen the window for concurrent duplicates
        with self.lock:
            self.events.append(event)
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("handler failed")


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
    recorder.delay = 0.2
    app = WebhookApp(recorder.router, secret=SECRET)
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
