"""WebhookApp's spans: one per request answered, with the event and what was answered."""

from __future__ import annotations

import anyio
import httpx
import pytest
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from audian_async.webhooks import Event, EventRouter, WebhookApp
from tests.webhooks._support import SECRET, delivery

from .conftest import A, Spans

pytestmark = pytest.mark.anyio


def app_with(
    spans: Spans | None, router: EventRouter | None = None, **options: object
) -> WebhookApp:
    provider = None if spans is None else spans.provider
    return WebhookApp(router or EventRouter(), secret=SECRET, tracer_provider=provider, **options)  # type: ignore[arg-type]


async def post(app: WebhookApp, body: bytes, headers: dict[str, str]) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        response = await client.post("/hooks", content=body, headers=headers)
    return response.status_code


async def test_a_delivery_is_a_server_span(spans: Spans) -> None:
    seen: list[Event] = []
    router = EventRouter()
    router.add(seen.append, "call.failed")
    body, headers = delivery(
        "call.failed", {"call_id": "call_9", "reason": "busy"}, msg_id="msg_7", event_id="evt_7"
    )
    assert await post(app_with(spans, router), body, headers) == 204
    assert len(seen) == 1
    [span] = spans.finished()
    assert span.name == "webhook call.failed"
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.UNSET
    assert A(span) == {
        "http.request.method": "POST",
        "url.path": "/hooks",
        "url.scheme": "http",
        "http.response.status_code": 204,
        "audian.event.type": "call.failed",
        "audian.event.id": "evt_7",
        "audian.webhook.id": "msg_7",
        "audian.call_id": "call_9",
        "audian.webhook.duplicate": False,
    }


async def test_a_redelivery_is_marked_duplicate(spans: Spans) -> None:
    app = app_with(spans)
    body, headers = delivery("call.completed", {"call_id": "call_1"}, msg_id="msg_1")
    assert await post(app, body, headers) == 204
    assert await post(app, body, headers) == 204
    first, again = spans.finished()
    assert A(first)["audian.webhook.duplicate"] is False
    assert A(again)["audian.webhook.duplicate"] is True
    assert A(again)["audian.webhook.id"] == "msg_1"


async def test_a_failed_handler_is_an_error_span_and_the_redelivery_runs_again(
    spans: Spans,
) -> None:
    runs: list[str] = []
    router = EventRouter()

    @router.on("call.completed")
    async def flaky(event: Event) -> None:
        runs.append(event.type)
        if len(runs) == 1:
            raise RuntimeError("first run fails")

    app = app_with(spans, router)
    body, headers = delivery("call.completed", msg_id="msg_2")
    assert await post(app, body, headers) == 500
    assert await post(app, body, headers) == 204
    failed, retried = spans.finished()
    assert A(failed)["http.response.status_code"] == 500
    assert A(failed)["error.type"] == "handler_failed"
    assert failed.status.status_code is StatusCode.ERROR
    assert A(retried)["audian.webhook.duplicate"] is False  # handled for the first time
    assert "error.type" not in A(retried)


async def test_a_timed_out_handler_names_the_timeout(spans: Spans) -> None:
    router = EventRouter()

    @router.on("*")
    async def stuck(event: Event) -> None:
        await anyio.sleep_forever()

    body, headers = delivery(msg_id="msg_3")
    assert await post(app_with(spans, router, handler_timeout=0.01), body, headers) == 500
    [span] = spans.finished()
    assert A(span)["error.type"] == "handler_timeout"


async def test_rejected_requests_are_spans_without_an_event(spans: Spans) -> None:
    app = app_with(spans)
    body, headers = delivery(msg_id="msg_4")
    assert await post(app, body, {**headers, "webhook-signature": "v1,bm9wZQ=="}) == 401
    assert await post(app, b"not json", headers) == 401  # signed for another body
    unsigned, wrong_body = spans.finished()
    for span in (unsigned, wrong_body):
        assert span.name == "webhook"
        assert A(span)["http.response.status_code"] == 401
        assert "audian.event.type" not in A(span)
        # A client's mistake is no error of the server's (HTTP server conventions).
        assert span.status.status_code is StatusCode.UNSET


async def test_under_a_frameworks_span_the_delivery_span_is_internal(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("framework")
    body, headers = delivery(msg_id="msg_5")
    app = app_with(spans)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        with tracer.start_as_current_span("POST /hooks") as server:
            await client.post("/hooks", content=body, headers=headers)
    inner, outer = spans.finished()
    assert inner.kind is SpanKind.INTERNAL
    assert inner.parent is not None
    assert inner.parent.span_id == server.get_span_context().span_id
    assert outer.name == "POST /hooks"


async def test_handlers_spans_are_children_of_the_delivery(spans: Spans) -> None:
    tracer = spans.provider.get_tracer("app")
    router = EventRouter()

    @router.on("*")
    async def handler(event: Event) -> None:
        with tracer.start_as_current_span("handler"):
            pass

    body, headers = delivery(msg_id="msg_6")
    assert await post(app_with(spans, router), body, headers) == 204
    child, parent = spans.finished()
    assert child.name == "handler"
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


@pytest.mark.parametrize("provider", [None, NoOpTracerProvider()], ids=["global-unset", "no-op"])
async def test_without_an_sdk_provider_the_app_stops_asking(
    provider: NoOpTracerProvider | None,
) -> None:
    app = WebhookApp(EventRouter(), secret=SECRET, tracer_provider=provider)
    assert app._tracing is not None
    body, headers = delivery(msg_id="msg_8")
    assert await post(app, body, headers) == 204
    assert app._tracing is None
    assert await post(app, body, headers) == 204
