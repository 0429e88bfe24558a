"""AsyncAudian's spans: one CLIENT span per HTTP request, retries included, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import audian_async as au
from tests.client.scripted_api import CALL, Reply, ScriptedAPI, error
from tests.loopback import free_port, serve_asgi

from .conftest import A, Spans

KEY = "sk_test_secret_0123456789"
FROM, TO = "+14155552671", "+14155552672"
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedAPI, str]]:
    app = ScriptedAPI()
    with serve_asgi(app) as url:
        yield app, url


@pytest.fixture
def api(server: tuple[ScriptedAPI, str]) -> ScriptedAPI:
    app, _ = server
    app.script.clear()
    app.seen.clear()
    return app


@pytest.fixture
def url(server: tuple[ScriptedAPI, str]) -> str:
    return server[1]


async def _no_wait(delay: float) -> None:
    return None


def traced(base_url: str, provider: TracerProvider | None, **options: object) -> au.AsyncAudian:
    client = au.AsyncAudian(KEY, base_url=base_url, tracer_provider=provider, **options)  # type: ignore[arg-type]
    client._sleep = _no_wait  # type: ignore[assignment]  # backoff waits are not under test
    return client


async def test_a_create_is_one_client_span(api: ScriptedAPI, url: str, spans: Spans) -> None:
    async with traced(url + "/v2", spans.provider) as client:
        await client.calls.create(from_=FROM, to=TO, idempotency_key="key-1")
    [span] = spans.finished()
    port = int(url.rsplit(":", 1)[1])
    assert span.name == "POST /calls"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert A(span) == {
        "http.request.method": "POST",
        "url.full": f"http://127.0.0.1:{port}/v2/calls",
        "url.template": "/calls",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "audian.attempt": 1,
        "audian.idempotency_key": "key-1",
        "audian.call_id": CALL["call_id"],
    }
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "audian_async"
    assert span.instrumentation_scope.version == au.__version__


async def test_retries_are_spans_of_their_own_with_attempt_numbers(
    api: ScriptedAPI, url: str, spans: Spans
) -> None:
    api.then(
        "POST",
        error(503, "unavailable", "try later"),
        error(429, "rate_limited", "slow down", **{"retry-after": "0"}),
        Reply(201),
    )
    async with traced(url + "/v2", spans.provider, max_retries=2) as client:
        await client.calls.create(from_=FROM, to=TO)
    first, second, third = spans.finished()
    assert [A(s)["audian.attempt"] for s in (first, second, third)] == [1, 2, 3]
    assert "http.request.resend_count" not in A(first)
    assert [A(s)["http.request.resend_count"] for s in (second, third)] == [1, 2]
    assert [A(s)["http.response.status_code"] for s in (first, second, third)] == [
        503,
        429,
        201,
    ]
    assert [A(s).get("error.type") for s in (first, second, third)] == [
        "503",
        "429",
        None,
    ]
    assert [s.status.status_code for s in (first, second, third)] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    keys = {A(s)["audian.idempotency_key"] for s in (first, second, third)}
    assert keys == {api.seen[0].headers["idempotency-key"]}  # one key, sent three times
    assert "audian.call_id" not in A(first)
    assert A(third)["audian.call_id"] == CALL["call_id"]


async def test_spans_are_children_of_the_callers_span(
    api: ScriptedAPI, url: str, spans: Spans
) -> None:
    api.then("POST", error(503, "unavailable", "try later"))
    tracer = spans.provider.get_tracer("app")
    async with traced(url + "/v2", spans.provider) as client:
        with tracer.start_as_current_span("campaign step") as parent:
            await client.calls.create(from_=FROM, to=TO)
    *requests, outer = spans.finished()
    assert outer.name == "campaign step"
    assert len(requests) == 2
    for span in requests:
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id


async def test_a_read_names_its_call(api: ScriptedAPI, url: str, spans: Spans) -> None:
    api.then("GET", Reply(), error(404, "not_found", "no such call"))
    async with traced(url + "/v2", spans.provider) as client:
        await client.calls.get("call_xyz789")
        with pytest.raises(au.NotFoundError):
            await client.calls.get("call/odd id")
    ok, missing = spans.finished()
    assert ok.name == missing.name == "GET /calls/{call_id}"
    assert A(ok)["url.template"] == "/calls/{call_id}"
    assert A(ok)["audian.call_id"] == "call_xyz789"
    assert "audian.idempotency_key" not in A(ok)
    assert A(missing)["audian.call_id"] == "call/odd id"
    assert A(missing)["url.full"].endswith("/v2/calls/call%2Fodd%20id")
    assert A(missing)["error.type"] == "404"


async def test_a_batch_is_its_own_route(api: ScriptedAPI, url: str, spans: Spans) -> None:
    api.then("POST", Reply(201, {"batch_id": "b_1", "total": 1, "queued": 1, "calls": []}))
    async with traced(url + "/v2", spans.provider) as client:
        await client.calls.create_batch([au.CallRequest(from_=FROM, to=TO)])
    [span] = spans.finished()
    assert span.name == "POST /calls/batch"
    assert A(span)["url.template"] == "/calls/batch"
    assert "audian.call_id" not in A(span)


async def test_a_connection_failure_names_the_transport_error(
    spans: Spans, anyio_backend: str
) -> None:
    # The default backend ("auto") is aiohttp's transport on asyncio, stock httpx on trio.
    expected = (
        "aiohttp.client_exceptions.ClientConnectorError"
        if anyio_backend == "asyncio"
        else "httpx.ConnectError"
    )
    dead = f"http://127.0.0.1:{free_port()}/v2"
    async with traced(dead, spans.provider, max_retries=1) as client:
        with pytest.raises(au.APIConnectionError):
            await client.calls.create(from_=FROM, to=TO)
    first, second = spans.finished()  # refused: provably not sent, so retried
    for attempt, span in enumerate((first, second), start=1):
        attributes = A(span)
        assert attributes["audian.attempt"] == attempt
        assert attributes["error.type"] == expected
        assert "http.response.status_code" not in attributes
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]


async def test_credentials_in_the_base_url_stay_out_of_spans(
    api: ScriptedAPI, url: str, spans: Spans
) -> None:
    with_user = url.replace("http://", "http://user:hunter2@") + "/v2"
    async with traced(with_user, spans.provider) as client:
        await client.calls.get("call_1")
    [span] = spans.finished()
    assert "hunter2" not in str(A(span))
    assert A(span)["url.full"] == url + "/v2/calls/call_1"


async def test_views_share_the_clients_tracing(api: ScriptedAPI, url: str, spans: Spans) -> None:
    async with traced(url + "/v2", spans.provider) as client:
        await client.with_options(max_retries=0).calls.get("call_1")
    assert [s.name for s in spans.finished()] == ["GET /calls/{call_id}"]


async def test_an_injected_http_client_is_traced_too(spans: Spans) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=CALL)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        au.AsyncAudian(
            KEY,
            base_url="https://api.example.test/v2",
            http_client=http,
            tracer_provider=spans.provider,
        ) as client,
    ):
        await client.calls.get("call_1")
    [span] = spans.finished()
    assert A(span)["server.address"] == "api.example.test"
    assert A(span)["server.port"] == 443


@pytest.mark.parametrize("provider", [None, NoOpTracerProvider()], ids=["global-unset", "no-op"])
async def test_without_an_sdk_provider_the_client_stops_asking(
    api: ScriptedAPI, url: str, provider: NoOpTracerProvider | None
) -> None:
    # The suite never sets the global provider, so here it is the API's placeholder.
    async with traced(url + "/v2", provider) as client:
        assert client._tracing is not None  # decided at the first request, not before
        await client.calls.get("call_1")
        assert client._tracing is None
        await client.calls.get("call_1")
    assert api.count("GET") == 2


def test_error_types_are_named_from_public_modules() -> None:
    import aiohttp

    from audian_async._transports import error_type

    assert error_type(httpx.ReadTimeout("slow")) == "httpx.ReadTimeout"
    assert error_type(TimeoutError()) == "TimeoutError"
    # Under httpx-aiohttp, httpx's type is its mapping's guess: aiohttp's own error is named.
    mapped = httpx.ConnectTimeout("mapped")
    mapped.__cause__ = aiohttp.ServerDisconnectedError()
    assert error_type(mapped) == "aiohttp.client_exceptions.ServerDisconnectedError"


async def test_an_ipv6_host_is_bracketed_in_the_url(spans: Spans) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=CALL)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        au.AsyncAudian(
            KEY, base_url="http://[::1]:8080/v2", http_client=http, tracer_provider=spans.provider
        ) as client,
    ):
        await client.calls.get("call_1")
    [span] = spans.finished()
    assert A(span)["url.full"] == "http://[::1]:8080/v2/calls/call_1"
    assert A(span)["server.address"] == "::1"
