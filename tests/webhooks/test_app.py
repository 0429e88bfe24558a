"""WebhookApp through httpx's ASGI transport (and raw ASGI calls): every answer it gives."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from audian_async import ValidationError
from audian_async.webhooks import (
    CallFailed,
    DedupeStore,
    Event,
    EventRouter,
    InMemoryDedupeStore,
    UnknownEvent,
    WebhookApp,
)

from ._support import SECRET, delivery, signed

pytestmark = pytest.mark.anyio


class Recorder:
    """A router whose handlers record events, and can be told to fail or to wait."""

    def __init__(self) -> None:
        self.router = EventRouter()
        self.events: list[Event] = []
        self.fail_next = 0
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()
        self.router.add(self.handle, "*")

    async def handle(self, event: Event) -> None:
        self.events.append(event)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("secret internals")


def client(app: WebhookApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hooks")


async def post(app: WebhookApp, body: bytes, headers: dict[str, str], path: str = "/") -> int:
    async with client(app) as c:
        response = await c.post(path, content=body, headers=headers)
    return response.status_code


# --- construction ---------------------------------------------------------------------------


def test_a_secret_is_required_unless_verify_is_off() -> None:
    with pytest.raises(ValidationError, match="secret"):
        WebhookApp(EventRouter())
    with pytest.raises(ValidationError, match="secret"):
        WebhookApp(EventRouter(), secret="")
    with pytest.raises(ValidationError, match="secret"):
        WebhookApp(EventRouter(), secret="whsec_***")
    assert not WebhookApp(EventRouter(), verify=False).verifies
    assert WebhookApp(EventRouter(), secret=SECRET).verifies


@pytest.mark.parametrize(
    "kwargs",
    [{"max_body": 0}, {"max_body": True}, {"tolerance": -1}, {"path": "hooks"}],
)
def test_bad_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookApp(EventRouter(), secret=SECRET, **kwargs)


def test_router_type_is_checked() -> None:
    with pytest.raises(TypeError):
        WebhookApp(object(), secret=SECRET)  # type: ignore[arg-type]


def test_the_secret_never_shows() -> None:
    app = WebhookApp(EventRouter(), secret=SECRET)
    key_part = SECRET.removeprefix("whsec_")
    for text in (repr(app), str(app), repr(vars(app))):
        assert key_part not in text
        assert "MfKQ" not in text


# --- every answer ---------------------------------------------------------------------------


async def test_valid_delivery_runs_handlers_and_gets_204() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery(data={"call_id": "c1", "reason": "busy", "reason_code": 486})
    async with client(app) as c:
        response = await c.post("/", content=body, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert len(rec.events) == 1
    event = rec.events[0]
    assert isinstance(event, CallFailed)
    assert event.reason == "busy"


async def test_any_path_is_served_unless_path_is_set() -> None:
    rec = Recorder()
    body, headers = delivery()
    assert await post(WebhookApp(rec.router, secret=SECRET), body, headers, "/x/y") == 204
    app = WebhookApp(rec.router, secret=SECRET, path="/hooks")
    assert await post(app, body, headers, "/elsewhere") == 404
    body, headers = delivery(msg_id="msg_2")
    assert await post(app, body, headers, "/hooks") == 204
    assert len(rec.events) == 2


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_non_post_is_405(method: str) -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    async with client(app) as c:
        response = await c.request(method, "/")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert rec.events == []


async def test_405_comes_before_signature_checks() -> None:
    app = WebhookApp(EventRouter(), secret=SECRET)
    async with client(app) as c:
        response = await c.put("/", content=b"x" * 10, headers={"webhook-id": "x"})
    assert response.status_code == 405


async def test_oversized_body_with_content_length_is_413() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET, max_body=1000)
    body, headers = delivery(data={"call_id": "c", "pad": "x" * 2000})
    assert await post(app, body, headers) == 413
    # 413 comes before the signature check: an unsigned big body is 413 too.
    assert await post(app, body, {}) == 413
    assert rec.events == []


# httpx's ASGI transport leaves its request-stream generator open when the app stops reading
# early (which is the point here); trio then reports it at garbage collection.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_oversized_chunked_body_is_413() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET, max_body=1000)
    body, headers = delivery(data={"call_id": "c", "pad": "x" * 2000})

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    async with client(app) as c:
        response = await c.post("/", content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert rec.events == []


async def test_chunked_body_within_the_limit_is_accepted() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET, max_body=1000)
    body, headers = delivery()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    async with client(app) as c:
        response = await c.post("/", content=chunks(), headers=headers)
    assert response.status_code == 204
    assert len(rec.events) == 1


async def test_body_exactly_max_body_is_accepted() -> None:
    body, headers = delivery()
    app = WebhookApp(Recorder().router, secret=SECRET, max_body=len(body))
    assert await post(app, body, headers) == 204


Receive = Callable[[], Awaitable[dict[str, Any]]]


async def call_raw(
    app: WebhookApp, headers: list[tuple[bytes, bytes]], receive: Receive
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await app(scope, receive, send)
    return sent


async def test_never_reads_past_max_body() -> None:
    app = WebhookApp(EventRouter(), secret=SECRET, max_body=1000)
    reads = 0

    async def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 300, "more_body": True}

    sent = await call_raw(app, [], endless)
    assert sent[0]["status"] == 413
    assert reads == 4  # 1200 bytes: the 4th chunk crosses the limit, no more are read

    reads = 0
    sent = await call_raw(app, [(b"content-length", b"5000")], endless)
    assert sent[0]["status"] == 413
    assert reads == 0  # announced too large: nothing read at all


async def test_client_disconnect_gets_no_answer() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    messages = iter(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    assert await call_raw(app, [], receive) == []
    assert rec.events == []


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1,AAAA"},
        {"webhook-id": "msg_other"},
        {"webhook-timestamp": str(int(time.time()) - 3600)},
        {"webhook-timestamp": str(int(time.time()) + 3600)},
        {"webhook-timestamp": "yesterday"},
        {"webhook-signature": "v1,!!!not-base64"},
    ],
)
async def test_bad_signatures_are_401(change: dict[str, str]) -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery()
    async with client(app) as c:
        response = await c.post("/", content=body, headers={**headers, **change})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert rec.events == []


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_signature_headers_are_401(missing: str) -> None:
    app = WebhookApp(Recorder().router, secret=SECRET)
    body, headers = delivery()
    del headers[missing]
    assert await post(app, body, headers) == 401


async def test_tampered_body_is_401() -> None:
    app = WebhookApp(Recorder().router, secret=SECRET)
    body, headers = delivery(data={"call_id": "c", "reason": "busy"})
    assert await post(app, body.replace(b"busy", b"declined"), headers) == 401


async def test_tolerance_option() -> None:
    app = WebhookApp(Recorder().router, secret=SECRET, tolerance=7200)
    body, headers = delivery(ts=int(time.time()) - 3600)
    assert await post(app, body, headers) == 204


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"{}", b'{"event": "call.failed"}', b'{"event": 3, "data": {}}',
     b'{"event": "call.failed", "data": []}', b""],
)  # fmt: skip
async def test_malformed_but_signed_bodies_are_400(body: bytes) -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    async with client(app) as c:
        response = await c.post("/", content=body, headers=signed(body))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_event"
    assert rec.events == []


async def test_an_odd_field_in_a_signed_body_still_reaches_the_handlers() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body = b'{"event": "call.failed", "data": {"call_id": "c1", "reason_code": "x"}}'
    async with client(app) as c:
        response = await c.post("/", content=body, headers=signed(body))
    assert response.status_code == 204
    assert [(e.call_id, e.reason_code) for e in rec.events] == [("c1", None)]


async def test_malformed_unsigned_body_is_401_not_400() -> None:
    app = WebhookApp(Recorder().router, secret=SECRET)
    assert await post(app, b"not json", {}) == 401


async def test_unknown_event_types_are_acknowledged() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery("call.transferred", {"call_id": "c", "destination": "+1"})
    assert await post(app, body, headers) == 204
    assert isinstance(rec.events[0], UnknownEvent)
    nobody = WebhookApp(EventRouter(), secret=SECRET)
    assert await post(nobody, body, headers) == 204


async def test_verify_false_accepts_unsigned_deliveries() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, verify=False)
    body, _ = delivery()
    assert await post(app, body, {}) == 204
    assert await post(app, b"[]", {}) == 400
    # Without a webhook-id the event id dedupes.
    assert await post(app, body, {}) == 204
    assert len(rec.events) == 1
    # Without either, every delivery runs.
    anonymous, _ = delivery(event_id=None)
    assert await post(app, anonymous, {}) == 204
    assert await post(app, anonymous, {}) == 204
    assert len(rec.events) == 3


# --- failures and duplicates ----------------------------------------------------------------


async def test_handler_failure_is_500_and_the_redelivery_runs_again() -> None:
    rec = Recorder()
    rec.fail_next = 1
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery()
    async with client(app) as c:
        first = await c.post("/", content=body, headers=headers)
        assert first.status_code == 500
        assert first.json()["error"] == "handler_failed"
        assert "secret internals" not in first.text  # no exception details to the sender
        assert (await c.post("/", content=body, headers=headers)).status_code == 204
        assert (await c.post("/", content=body, headers=headers)).status_code == 204
    assert len(rec.events) == 2  # the failed run and the redelivery; the third is deduped


async def test_one_failing_handler_still_lets_the_others_run() -> None:
    router = EventRouter()
    ran: list[str] = []

    @router.on("*")
    async def bad(event: Event) -> None:
        raise ValueError("bad")

    @router.on("*")
    async def good(event: Event) -> None:
        ran.append("good")

    body, headers = delivery()
    assert await post(WebhookApp(router, secret=SECRET), body, headers) == 500
    assert ran == ["good"]


async def test_a_filter_that_raises_does_not_match_and_the_delivery_succeeds() -> None:
    router = EventRouter()
    ran: list[str] = []

    @router.on("recording.completed", duration=lambda d: d > 60)
    async def long_recording(event: Event) -> None:
        ran.append("long")

    @router.on("*")
    async def audit(event: Event) -> None:
        ran.append("audit")

    body, headers = delivery("recording.completed", {"call_id": "c1"})  # no duration
    assert await post(WebhookApp(router, secret=SECRET), body, headers) == 204
    assert ran == ["audit"]


class BrokenRouter(EventRouter):
    """A router whose dispatch fails outside any handler (not with an ExceptionGroup)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def dispatch(self, event: Event) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("secret internals")
        return 0


async def test_an_error_outside_the_handlers_is_500_logged_by_us(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="audian_async.webhooks")
    router = BrokenRouter()
    app = WebhookApp(router, secret=SECRET)
    body, headers = delivery()
    async with client(app) as c:
        first = await c.post("/", content=body, headers=headers)
        assert first.status_code == 500
        assert first.json()["error"] == "handler_failed"
        assert "secret internals" not in first.text
        # Not remembered as handled: the redelivery dispatches again.
        assert (await c.post("/", content=body, headers=headers)).status_code == 204
    assert router.calls == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name == "audian_async.webhooks"
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)


async def test_sequential_duplicates_run_handlers_once() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery(msg_id="msg_dup")
    for _ in range(3):
        assert await post(app, body, signed(body, msg_id="msg_dup")) == 204
    assert len(rec.events) == 1
    # Same event, new delivery id: a different delivery, handled again.
    assert await post(app, body, signed(body, msg_id="msg_other")) == 204
    assert len(rec.events) == 2
    del headers


async def test_concurrent_duplicates_run_handlers_once() -> None:
    rec = Recorder()
    rec.gate = anyio.Event()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery(msg_id="msg_conc")
    statuses: list[int] = []

    async def deliver() -> None:
        statuses.append(await post(app, body, headers))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            await rec.entered.wait()
            for _ in range(3):
                tg.start_soon(deliver)
            await anyio.wait_all_tasks_blocked()
            assert statuses == []  # the duplicates wait for the first delivery
            rec.gate.set()
    assert statuses == [204, 204, 204, 204]
    assert len(rec.events) == 1


async def test_a_waiting_duplicate_takes_over_when_the_first_fails() -> None:
    rec = Recorder()
    rec.gate = anyio.Event()
    rec.fail_next = 1
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery(msg_id="msg_takeover")
    statuses: list[int] = []

    async def deliver() -> None:
        statuses.append(await post(app, body, headers))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            await rec.entered.wait()
            tg.start_soon(deliver)
            await anyio.wait_all_tasks_blocked()
            rec.gate.set()
    assert statuses == [500, 204]
    assert len(rec.events) == 2


class FlakyStore:
    def __init__(self, fail_seen: bool = False, fail_remember: bool = False) -> None:
        self.fail_seen = fail_seen
        self.fail_remember = fail_remember
        self.keys: set[str] = set()

    async def seen(self, key: str) -> bool:
        if self.fail_seen:
            raise ConnectionError("store down")
        return key in self.keys

    async def remember(self, key: str) -> None:
        if self.fail_remember:
            raise ConnectionError("store down")
        self.keys.add(key)


async def test_custom_dedupe_store() -> None:
    store = FlakyStore()
    assert isinstance(store, DedupeStore)
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET, dedupe_store=store)
    body, headers = delivery(msg_id="msg_store")
    assert await post(app, body, headers) == 204
    assert store.keys == {"msg_store"}
    assert await post(app, body, headers) == 204
    assert len(rec.events) == 1


async def test_dedupe_store_failures() -> None:
    rec = Recorder()
    body, headers = delivery()
    down = WebhookApp(rec.router, secret=SECRET, dedupe_store=FlakyStore(fail_seen=True))
    assert await post(down, body, headers) == 500  # cannot tell: let the sender retry
    assert rec.events == []
    forgetful = WebhookApp(rec.router, secret=SECRET, dedupe_store=FlakyStore(fail_remember=True))
    assert await post(forgetful, body, headers) == 204  # handled; only dedupe is lost
    assert len(rec.events) == 1


async def test_dedupe_is_bounded() -> None:
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET, dedupe_store=InMemoryDedupeStore(max_entries=2))
    deliveries = [delivery(msg_id=f"msg_{i}") for i in range(3)]
    for body, headers in deliveries:
        assert await post(app, body, headers) == 204
    body, headers = deliveries[0]  # evicted: runs again
    assert await post(app, body, headers) == 204
    body, headers = deliveries[2]  # still remembered
    assert await post(app, body, headers) == 204
    assert len(rec.events) == 4


async def test_long_delivery_ids_are_hashed_for_the_store() -> None:
    store = FlakyStore()
    app = WebhookApp(Recorder().router, verify=False, dedupe_store=store)
    body, _ = delivery(event_id="e" * 5000)
    assert await post(app, body, {}) == 204
    (key,) = store.keys
    assert key.startswith("sha256:")
    assert len(key) < 100


# --- lifespan, other scopes, logging --------------------------------------------------------


async def test_lifespan() -> None:
    app = WebhookApp(EventRouter(), secret=SECRET)
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_websocket_is_refused() -> None:
    app = WebhookApp(EventRouter(), secret=SECRET)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "websocket"}, receive, send)
    assert sent[0]["type"] == "websocket.close"


async def test_logs_never_show_secrets_or_bodies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="audian_async.webhooks")
    rec = Recorder()
    app = WebhookApp(rec.router, secret=SECRET)
    body, headers = delivery(data={"call_id": "c", "customer": "SENSITIVE-NAME"})
    assert await post(app, body, headers) == 204
    assert await post(app, body, {**headers, "webhook-signature": "v1,AAAA"}) == 401
    assert (
        await post(
            app, b'{"customer": "SENSITIVE-NAME"}', signed(b'{"customer": "SENSITIVE-NAME"}')
        )
        == 400
    )
    rec.fail_next = 1
    body2, headers2 = delivery(msg_id="msg_fail", data={"customer": "SENSITIVE-NAME"})
    assert await post(app, body2, headers2) == 500
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook rejected (401)" in text
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert "SENSITIVE-NAME" not in text
    assert "MfKQ" not in text
    assert all(r.name == "audian_async.webhooks" for r in caplog.records)
