"""AsyncAudian over real HTTP on loopback: requests, retries, idempotency, errors, secrets."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import httpx
import pytest

import audian_async as au
from tests.client.scripted_api import CALL, HOLD, Reply, ScriptedAPI, error, hang_up_server
from tests.loopback import free_port, serve_asgi, until

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


class Waits:
    """Records backoff waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def client(server: tuple[ScriptedAPI, str], waits: Waits) -> au.AsyncAudian:
    _, url = server
    made = au.AsyncAudian(KEY, base_url=url + "/v2", timeout=2.0, max_retries=2)
    made._sleep = waits  # type: ignore[assignment]
    return made


async def test_create_sends_the_reference_request(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    async with client:
        call = await client.calls.create(from_=FROM, to=TO, timeout=45, tags={"a": "b"})
    assert call.call_id == "call_xyz789"
    assert call.status is au.CallStatus.INITIATED
    [seen] = api.seen
    assert (seen.method, seen.path) == ("POST", "/v2/calls")
    assert seen.json() == {"from": FROM, "to": TO, "timeout": 45, "tags": {"a": "b"}}
    assert seen.headers["x-auth-token"] == KEY
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith(f"audian-async/{au.__version__} ")
    assert len(seen.headers["idempotency-key"]) >= 16


async def test_create_from_a_request_object(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    request = au.CallRequest(from_=FROM, to=TO, recording=au.Recording(format="mp3"))
    async with client:
        await client.calls.create(request, idempotency_key="my-key-1")
    [seen] = api.seen
    assert seen.json() == {"from": FROM, "to": TO, "recording": {"enabled": True, "format": "mp3"}}
    assert seen.headers["idempotency-key"] == "my-key-1"


async def test_each_create_gets_its_own_idempotency_key(
    api: ScriptedAPI, client: au.AsyncAudian
) -> None:
    async with client:
        await client.calls.create(from_=FROM, to=TO)
        await client.calls.create(from_=FROM, to=TO)
    keys = {s.headers["idempotency-key"] for s in api.seen}
    assert len(keys) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"to": "12345"},
        {"to": "(415) 555-2672"},
        {"timeout": 0},
        {"call_control": au.CallControl(on_answered=[au.PlayAudio()])},
    ],
)
async def test_invalid_input_is_rejected_before_sending(
    api: ScriptedAPI, client: au.AsyncAudian, bad: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {"from_": FROM, "to": TO, **bad}
    async with client:
        with pytest.raises(au.ValidationError):
            await client.calls.create(**fields)
    assert api.seen == []


async def test_request_and_fields_together_is_an_error(
    api: ScriptedAPI, client: au.AsyncAudian
) -> None:
    async with client:
        with pytest.raises(au.ValidationError, match="not both"):
            await client.calls.create(au.CallRequest(from_=FROM, to=TO), timeout=30)
        with pytest.raises(au.ValidationError, match="required"):
            await client.calls.create(to=TO)
    assert api.seen == []


async def test_default_region_lets_national_numbers_in(
    api: ScriptedAPI, server: tuple[ScriptedAPI, str]
) -> None:
    async with au.AsyncAudian(KEY, base_url=server[1], default_region="us") as client:
        await client.calls.create(from_="(415) 555-2671", to="415.555.2672")
    assert api.seen[0].json() == {"from": FROM, "to": TO}


@pytest.mark.parametrize("status", [429, 503])
async def test_post_retried_on_429_and_503_with_one_idempotency_key(
    api: ScriptedAPI, client: au.AsyncAudian, waits: Waits, status: int
) -> None:
    api.then("POST", error(status, "busy", "try later"), error(status, "busy", "try later"))
    async with client:
        call = await client.calls.create(from_=FROM, to=TO)
    assert call.call_id == CALL["call_id"]
    assert api.count("POST") == 3
    assert len({s.headers["idempotency-key"] for s in api.seen}) == 1
    assert len(waits.delays) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_post_never_retried_on_500_502_504(
    api: ScriptedAPI, client: au.AsyncAudian, waits: Waits, status: int
) -> None:
    api.then("POST", error(status, "oops", "server trouble"))
    async with client:
        with pytest.raises(au.ServerError) as info:
            await client.calls.create(from_=FROM, to=TO)
    assert info.value.status_code == status
    assert api.count("POST") == 1
    assert waits.delays == []


async def test_post_read_timeout_is_raised_not_retried(
    api: ScriptedAPI, server: tuple[ScriptedAPI, str], waits: Waits
) -> None:
    api.then("POST", HOLD)
    client = au.AsyncAudian(KEY, base_url=server[1], timeout=0.2, max_retries=3)
    client._sleep = waits  # type: ignore[assignment]
    async with client:
        with pytest.raises(au.APITimeoutError, match="idempotency_key"):
            await client.calls.create(from_=FROM, to=TO, idempotency_key="k-123")
    assert api.count("POST") == 1
    assert waits.delays == []


async def test_post_batch_follows_the_same_rules(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    api.then("POST", error(502, "bad_gateway", "upstream"))
    batch = [au.CallRequest(from_=FROM, to=TO)] * 2
    async with client:
        with pytest.raises(au.ServerError):
            await client.calls.create_batch(batch)
    assert api.count("POST") == 1


async def test_get_retried_on_5xx_and_timeouts(
    api: ScriptedAPI, client: au.AsyncAudian, waits: Waits
) -> None:
    api.then("GET", error(500, "oops", "x"), Reply(502, b"<html>Bad Gateway</html>"))
    async with client:
        call = await client.calls.get("call_xyz789")
    assert call.call_id == "call_xyz789"
    assert api.count("GET") == 3
    assert len(waits.delays) == 2
    assert all(0 <= d <= 1.0 for d in waits.delays)


async def test_get_retried_on_read_timeout(
    api: ScriptedAPI, server: tuple[ScriptedAPI, str]
) -> None:
    api.then("GET", HOLD)
    # The retry must be answered within the same timeout: a second is plenty on loopback.
    client = au.AsyncAudian(KEY, base_url=server[1], timeout=1.0, max_retries=1)
    client._sleep = Waits()  # type: ignore[assignment]
    async with client:
        call = await client.calls.get("call_1")
    assert call.call_id == CALL["call_id"]
    assert api.count("GET") == 2


async def test_max_retries_means_n_plus_one_requests(
    api: ScriptedAPI, client: au.AsyncAudian
) -> None:
    api.then("GET", *[error(503, "unavailable", "down")] * 5)
    async with client:
        with pytest.raises(au.ServerError, match="down"):
            await client.calls.get("call_1")
        assert api.count("GET") == 3
        api.seen.clear()
        with pytest.raises(au.ServerError):
            await client.with_options(max_retries=0).calls.get("call_1")
        assert api.count("GET") == 1


async def test_retry_after_is_honoured(
    api: ScriptedAPI, client: au.AsyncAudian, waits: Waits
) -> None:
    api.then(
        "POST",
        error(
            429, "rate_limited", "Too many concurrent calls. Maximum: 100", **{"retry-after": "1.5"}
        ),
        error(503, "unavailable", "later", **{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    )
    async with client:
        await client.calls.create(from_=FROM, to=TO)
    # Seconds are used as given; an HTTP date in the past means "now".
    assert waits.delays == [1.5, 0.0]


async def test_rate_limited_error_carries_retry_after(
    api: ScriptedAPI, client: au.AsyncAudian
) -> None:
    api.then(
        "POST",
        *[
            error(
                429,
                "rate_limited",
                "Too many concurrent calls. Maximum: 100",
                **{"retry-after": "2"},
            )
        ]
        * 3,
    )
    async with client:
        with pytest.raises(au.RateLimitedError) as info:
            await client.calls.create(from_=FROM, to=TO)
    assert info.value.retry_after == 2.0
    assert info.value.headers["retry-after"] == "2"
    assert "Maximum: 100" in str(info.value)


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (
            error(400, "invalid_number", "The destination number format is invalid"),
            au.InvalidNumberError,
        ),
        (error(401, "unauthorized", "bad key"), au.AuthenticationError),
        (
            error(403, "unauthorized_caller_id", "You are not authorized to use this caller ID"),
            au.UnauthorizedCallerIdError,
        ),
        (Reply(404, b"Not Found"), au.NotFoundError),
        (Reply(413, b""), au.PayloadTooLargeError),
    ],
)
async def test_errors_map_to_typed_exceptions(
    api: ScriptedAPI, client: au.AsyncAudian, reply: Reply, cls: type[Exception]
) -> None:
    api.then("POST", reply)
    async with client:
        with pytest.raises(cls):
            await client.calls.create(from_=FROM, to=TO)
    assert api.count("POST") == 1


async def test_batch_reply_with_an_item_error(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    api.then(
        "POST",
        Reply(
            200,
            {
                "batch_id": "batch_1",
                "total": 2,
                "queued": 1,
                "failed": 1,
                "calls": [
                    {"call_id": "call_1", "status": "initiated"},
                    {"status": "failed", "error": "unauthorized_caller_id", "code": 403},
                ],
            },
        ),
    )
    requests = [au.CallRequest(from_=FROM, to=TO), au.CallRequest(from_=FROM, to="+14155552673")]
    async with client:
        result = await client.calls.create_batch(requests)
    assert [item.ok for item in result.calls] == [True, False]
    assert result.calls[1].error == "unauthorized_caller_id"
    [seen] = api.seen
    assert seen.path == "/v2/calls/batch"
    assert [c["to"] for c in seen.json()["calls"]] == [TO, "+14155552673"]
    assert "idempotency-key" in seen.headers


async def test_batch_validation_names_the_index(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    requests = [au.CallRequest(from_=FROM, to=TO), au.CallRequest(from_=FROM, to="nope")]
    async with client:
        with pytest.raises(au.ValidationError) as info:
            await client.calls.create_batch(requests)
    assert info.value.field == "calls[1].to"
    assert api.seen == []


async def test_a_time_with_no_utc_form_is_refused_before_sending(
    api: ScriptedAPI, client: au.AsyncAudian
) -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    async with client:
        with pytest.raises(au.ValidationError) as info:
            await client.calls.create(from_=FROM, to=TO, scheduled_for=late)
        assert info.value.field == "scheduled_for"
        requests = [au.CallRequest(FROM, TO), au.CallRequest(FROM, TO, scheduled_for=late)]
        with pytest.raises(au.ValidationError) as info:
            await client.calls.create_batch(requests)
        assert info.value.field == "calls[1].scheduled_for"
    assert api.seen == []


async def test_get_escapes_the_call_id(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    async with client:
        await client.calls.get("call/../../admin?x=1")
        with pytest.raises(au.ValidationError):
            await client.calls.get("")
    assert api.seen[0].path == "/v2/calls/call%2F..%2F..%2Fadmin%3Fx%3D1"
    assert "x-auth-token" in api.seen[0].headers
    assert "idempotency-key" not in api.seen[0].headers


@pytest.mark.parametrize("backend", ["auto", "httpx", "aiohttp"])
async def test_a_compressed_reply_is_decoded(
    anyio_backend: str, backend: str, api: ScriptedAPI, server: tuple[ScriptedAPI, str]
) -> None:
    # The API is not asked for compression, but a proxy may add it: the body the client
    # reads is the decoded one on every backend (the lean paths skip decoding otherwise).
    if backend == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    reply = {**CALL, "call_id": "call_gzipped"}
    api.then(
        "POST",
        Reply(
            201,
            gzip.compress(json.dumps(reply).encode()),
            {"content-encoding": "gzip", "content-type": "application/json"},
        ),
    )
    client = au.AsyncAudian(KEY, base_url=server[1] + "/v2", http_backend=backend)  # type: ignore[arg-type]
    async with client:
        call = await client.calls.create(from_=FROM, to=TO)
    assert call.call_id == "call_gzipped"


@pytest.mark.parametrize("backend", ["auto", "httpx", "aiohttp"])
async def test_connection_refused(anyio_backend: str, backend: str, waits: Waits) -> None:
    if backend == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    port = free_port()
    client = au.AsyncAudian(
        KEY,
        base_url=f"http://127.0.0.1:{port}/v2",
        max_retries=2,
        http_backend=backend,  # type: ignore[arg-type]
    )
    client._sleep = waits  # type: ignore[assignment]
    async with client:
        with pytest.raises(au.APIConnectionError) as info:
            await client.calls.create(from_=FROM, to=TO)
    assert not isinstance(info.value, au.APITimeoutError)
    assert not info.value.sent
    assert KEY not in str(info.value)
    # Nothing was sent, so retrying the POST was safe.
    assert len(waits.delays) == 2


async def test_pool_slots_come_back_after_timeouts_errors_and_cancellation(
    api: ScriptedAPI, server: tuple[ScriptedAPI, str]
) -> None:
    # The stock-httpx transport's pools (what "auto" takes on trio).
    client = au.AsyncAudian(
        KEY,
        base_url=server[1],
        timeout=5.0,
        max_retries=0,
        max_connections=3,
        http_backend="httpx",
    )
    quick = client.with_options(timeout=0.2)  # same connections, for the requests held open
    transport = client._transport
    assert transport is not None
    async with client:
        api.then("GET", *[HOLD] * 3)
        for _ in range(3):
            with pytest.raises(au.APITimeoutError):
                await quick.calls.get("call_slow")
        api.then("GET", *[error(500, "oops", "x")] * 3)
        for _ in range(3):
            with pytest.raises(au.ServerError):
                await client.calls.get("call_err")
        api.then("GET", *[HOLD] * 3)
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(client.calls.get, "call_cancelled")
            # Cancelled once the server holds all three (it counts on its own thread).
            await until(lambda: api.count("GET") == 9)
            tg.cancel_scope.cancel()
        # Every slot is free again, and all of them still carry requests.
        assert sorted(transport._free) == [0, 1, 2]  # type: ignore[attr-defined]
        api.script.clear()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(9):
                    tg.start_soon(client.calls.get, f"call_{i}")
    assert sorted(transport._free) == [0, 1, 2]  # type: ignore[attr-defined]
    assert api.count("GET") == 18


def test_environment_proxy_and_url_credentials_keep_httpx_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Our direct-to-transport path skips what AsyncClient.send adds; where httpx would add
    # something (proxy routing from the environment, basic auth from the URL), it is kept.
    assert au.AsyncAudian("k", base_url="http://127.0.0.1:9/v2")._transport is not None
    assert au.AsyncAudian("k", base_url="http://u:p@127.0.0.1:9/v2")._transport is None
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert au.AsyncAudian("k", base_url="http://127.0.0.1:9/v2")._transport is None


@pytest.mark.parametrize("reply", [b"", b"HELLO\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Le"])
async def test_server_hanging_up_after_a_post_is_not_retried(
    anyio_backend: str, waits: Waits, reply: bytes
) -> None:
    backends = ["httpx"] + (["aiohttp"] if anyio_backend == "asyncio" else [])
    for backend in backends:
        with hang_up_server(reply) as (url, received):
            client = au.AsyncAudian(KEY, base_url=url, max_retries=3, http_backend=backend)  # type: ignore[arg-type]
            client._sleep = waits  # type: ignore[assignment]
            async with client:
                with pytest.raises(au.APIConnectionError) as info:
                    await client.calls.create(from_=FROM, to=TO)
        # The API may have placed the call: the error says so, and nothing was resent.
        assert info.value.sent, backend
        assert "idempotency_key" in str(info.value), backend
        assert KEY not in str(info.value), backend
        assert len([r for r in received if r.startswith(b"POST")]) == 1, backend
    assert waits.delays == []


async def test_injected_http_client_is_used_and_left_open(
    api: ScriptedAPI, server: tuple[ScriptedAPI, str]
) -> None:
    async with httpx.AsyncClient() as http:
        async with au.AsyncAudian(KEY, base_url=server[1], http_client=http) as client:
            await client.calls.get("call_1")
        assert not http.is_closed
        await au.AsyncAudian(KEY, base_url=server[1], http_client=http).calls.get("call_2")
    assert api.count("GET") == 2


async def test_own_http_client_is_closed(server: tuple[ScriptedAPI, str]) -> None:
    client = au.AsyncAudian(KEY, base_url=server[1])
    await client.aclose()
    assert client._http.is_closed


async def test_with_options_timeout_reaches_the_request(
    api: ScriptedAPI, client: au.AsyncAudian, server: tuple[ScriptedAPI, str]
) -> None:
    # Each request carries its client's timeout to the transport: the view's, and the
    # original's unchanged.
    timeouts: list[dict[str, float | None]] = []

    async def record(request: httpx.Request) -> None:
        timeouts.append(request.extensions["timeout"])

    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
        au.AsyncAudian(KEY, base_url=server[1], http_client=http, timeout=2.0) as hooked,
    ):
        await hooked.with_options(timeout=0.2, max_retries=0).calls.get("call_1")
        await hooked.calls.get("call_1")
    assert timeouts == [httpx.Timeout(0.2).as_dict(), httpx.Timeout(2.0).as_dict()]
    # And the view's timeout is the one that fires on a reply that never comes.
    api.then("GET", HOLD)
    async with client:
        with pytest.raises(au.APITimeoutError):
            await client.with_options(timeout=0.2, max_retries=0).calls.get("call_1")


def test_repr_hides_credentials_in_the_url() -> None:
    client = au.AsyncAudian(KEY, base_url="http://user:hunter2@127.0.0.1:9/v2")
    assert "hunter2" not in repr(client)
    assert KEY not in repr(client)
    assert "127.0.0.1:9/v2" in repr(client)


async def test_with_options_shares_connections(api: ScriptedAPI, client: au.AsyncAudian) -> None:
    async with client:
        quick = client.with_options(timeout=5, max_retries=0)
        assert quick.timeout == 5.0
        assert quick.max_retries == 0
        assert client.max_retries == 2
        assert quick._http is client._http
        await quick.aclose()  # a view never closes the shared client
        await quick.calls.get("call_1")
        with pytest.raises(au.ValidationError):
            client.with_options(timeout=-1)


@pytest.mark.skipif(sys.platform == "win32", reason="aiohttp transport smoke test")
async def test_aiohttp_backend_round_trip(
    anyio_backend: str, api: ScriptedAPI, server: tuple[ScriptedAPI, str], waits: Waits
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    client = au.AsyncAudian(KEY, base_url=server[1] + "/v2", http_backend="aiohttp")
    client._sleep = waits  # type: ignore[assignment]
    api.then("POST", error(503, "unavailable", "later"))
    async with client:
        call = await client.calls.create(from_=FROM, to=TO)
        got = await client.calls.get(call.call_id)
    assert got.call_id == call.call_id
    assert api.count("POST") == 2
    assert len({s.headers["idempotency-key"] for s in api.seen if s.method == "POST"}) == 1


async def test_api_key_never_in_repr_errors_or_logs(
    api: ScriptedAPI, client: au.AsyncAudian, caplog: pytest.LogCaptureFixture
) -> None:
    api.then("POST", error(503, "unavailable", "later"), error(401, "unauthorized", "bad key"))
    caplog.set_level(logging.DEBUG)
    async with client:
        with pytest.raises(au.AuthenticationError) as info:
            await client.calls.create(from_=FROM, to=TO)
    texts = [repr(client), str(info.value), repr(info.value), caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    assert any("retrying" in t for t in texts)
    assert all(KEY not in t for t in texts)


def test_missing_api_key_and_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIAN_API_KEY", raising=False)
    monkeypatch.delenv("AUDIAN_BASE_URL", raising=False)
    with pytest.raises(au.AudianError, match="AUDIAN_API_KEY"):
        au.AsyncAudian()
    monkeypatch.setenv("AUDIAN_API_KEY", "from-env")
    monkeypatch.setenv("AUDIAN_BASE_URL", "http://127.0.0.1:9/v2/")
    client = au.AsyncAudian()
    assert client.base_url == "http://127.0.0.1:9/v2"
    assert client._api_key == "from-env"
    monkeypatch.delenv("AUDIAN_BASE_URL")
    assert au.AsyncAudian().base_url == au.DEFAULT_BASE_URL


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"max_retries": -1},
        {"base_url": "ftp://example"},
        {"default_region": "ZZ"},
        {"max_connections": 0},
        {"http_backend": "curl"},
    ],
)
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(au.ValidationError):
        au.AsyncAudian("k", **kwargs)
