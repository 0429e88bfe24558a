"""Which transport carries requests: ``http_backend="auto"`` and a user's own http_client.

``auto`` takes the aiohttp transport on asyncio (the extra is installed in the test
environment) and stock httpx on trio. A user's client gets our requests straight at its
transport when its ``send()`` would add nothing, and through ``send()`` as soon as it would
(auth, event hooks), so both stay correct.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

import audian_async as au
from audian_async._transports import AutoTransport
from audian_async._transports._exchange import MAX_TARGETS, memo
from audian_async._transports._sharded import _HTTPX_ERRORS, httpx_error
from tests.client.scripted_api import HOLD, ScriptedAPI, error
from tests.loopback import serve_asgi, until

pytestmark = pytest.mark.anyio

KEY = "sk_test_secret_0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedAPI, str]]:
    api = ScriptedAPI()
    with serve_asgi(api) as url:
        yield api, f"{url}/v2"


@pytest.fixture
def api(server: tuple[ScriptedAPI, str]) -> ScriptedAPI:
    server[0].script.clear()
    server[0].seen.clear()
    return server[0]


def test_the_default_is_auto_and_repr_says_what_carries_requests() -> None:
    url = "http://127.0.0.1:9/v2"
    assert "http_backend='auto (aiohttp on asyncio, httpx on trio)'" in repr(
        au.AsyncAudian(KEY, base_url=url)
    )
    assert repr(au.AsyncAudian(KEY, base_url=url, http_backend="httpx")).endswith(
        "http_backend='httpx')"
    )
    assert repr(au.AsyncAudian(KEY, base_url=url, http_backend="aiohttp")).endswith(
        "http_backend='aiohttp')"
    )
    injected = au.AsyncAudian(KEY, base_url=url, http_client=httpx.AsyncClient())
    assert repr(injected).endswith("http_backend='http_client')")
    with pytest.raises(au.ValidationError, match="'auto', 'httpx' or 'aiohttp'"):
        au.AsyncAudian(KEY, base_url=url, http_backend="curl")  # type: ignore[arg-type]


def test_without_the_extra_auto_says_it_uses_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audian_async._transports._auto.aiohttp_installed", lambda: False)
    client = au.AsyncAudian(KEY, base_url="http://127.0.0.1:9/v2")
    assert "auto (httpx: the aiohttp extra is not installed)" in repr(client)


async def test_auto_takes_aiohttp_on_asyncio_and_httpx_on_trio(
    anyio_backend: str, server: tuple[ScriptedAPI, str], api: ScriptedAPI
) -> None:
    async with au.AsyncAudian(KEY, base_url=server[1], max_retries=0) as client:
        transport = client._transport
        assert isinstance(transport, AutoTransport)
        call = await client.calls.get("call_1")
        assert call.call_id
        on_asyncio = anyio_backend == "asyncio"
        assert (transport._aiohttp is not None) is on_asyncio
        assert (transport._httpx is not None) is not on_asyncio
    assert api.count("GET") == 1


class Counting(httpx.AsyncBaseTransport):
    """A user's transport: counts what reaches it, forwards to the real one."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_plain_injected_client_takes_requests_straight_to_its_transport(
    server: tuple[ScriptedAPI, str], api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = Counting()
    async with httpx.AsyncClient(transport=transport) as http:
        client = au.AsyncAudian(KEY, base_url=server[1], http_client=http, max_retries=0)
        assert client._transport is transport

        async def no_send(*args: object, **kwargs: object) -> httpx.Response:
            raise AssertionError("AsyncClient.send should not be needed")

        monkeypatch.setattr(http, "send", no_send)
        await client.calls.get("call_1")
    assert len(transport.requests) == 1
    assert api.seen[0].headers["x-auth-token"] == KEY


async def test_hooks_or_auth_added_later_go_through_send_again(
    server: tuple[ScriptedAPI, str], api: ScriptedAPI
) -> None:
    transport = Counting()
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(request.url.path)

    async with httpx.AsyncClient(transport=transport) as http:
        client = au.AsyncAudian(KEY, base_url=server[1], http_client=http, max_retries=0)
        assert client._transport is transport
        http.event_hooks = {"request": [hook], "response": []}
        await client.calls.get("call_1")
        assert hooked == ["/v2/calls/call_1"]
        http.event_hooks = {"request": [], "response": []}
        http.auth = httpx.BasicAuth("user", "pass")
        await client.calls.get("call_2")
    assert len(transport.requests) == 2
    assert api.seen[1].headers["authorization"].startswith("Basic ")


def test_clients_whose_send_has_work_to_do_keep_it() -> None:
    url = "http://127.0.0.1:9/v2"
    with_auth = httpx.AsyncClient(auth=("user", "pass"))
    assert au.AsyncAudian(KEY, base_url=url, http_client=with_auth)._transport is None
    redirects = httpx.AsyncClient(follow_redirects=True)
    assert au.AsyncAudian(KEY, base_url=url, http_client=redirects)._transport is None
    hooks = httpx.AsyncClient(event_hooks={"response": [lambda r: None]})
    assert au.AsyncAudian(KEY, base_url=url, http_client=hooks)._transport is None
    credentials = "http://u:p@127.0.0.1:9/v2"
    assert (
        au.AsyncAudian(KEY, base_url=credentials, http_client=httpx.AsyncClient())._transport
        is None
    )
    # Mounts pick the transport as send() would for our URL.
    mounted = Counting()
    with_mounts = httpx.AsyncClient(mounts={"http://127.0.0.1:9": mounted})
    assert au.AsyncAudian(KEY, base_url=url, http_client=with_mounts)._transport is mounted


@pytest.mark.parametrize(
    ("anyio_backend", "backend"),
    [
        ("asyncio", "auto"),
        ("asyncio", "aiohttp"),
        ("asyncio", "httpx"),
        ("trio", "auto"),
        ("trio", "httpx"),
    ],
)
async def test_our_own_transports_need_no_httpx_request_or_response(
    backend: str, server: tuple[ScriptedAPI, str], api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The direct round trip: the client hands the transport its prepared parts (aiohttp's
    # on asyncio, httpcore's pools on stock httpx). Building an httpx request (or a
    # response, for a 2xx) would mean the slower path was taken.
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the direct path builds no httpx request or 2xx response")

    async with au.AsyncAudian(
        KEY,
        base_url=server[1],
        max_retries=0,
        http_backend=backend,  # type: ignore[arg-type]
    ) as client:
        # The first request looks the tracer provider up (none here), over httpx.
        await client.calls.get("call_first")
        monkeypatch.setattr(httpx, "Request", refused)
        monkeypatch.setattr(httpx.Response, "__init__", refused)
        call = await client.calls.create(from_="+14155552671", to="+14155552672")
        assert (await client.calls.get(call.call_id)).call_id == call.call_id
        monkeypatch.undo()  # an error reply's headers are read as httpx.Headers
        api.then("GET", error(404, "not_found", "no such call", **{"x-request-id": "r1"}))
        with pytest.raises(au.NotFoundError) as info:
            await client.calls.get("call_missing")
    assert info.value.headers["x-request-id"] == "r1"
    assert [s.method for s in api.seen] == ["GET", "POST", "GET", "GET"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_pool_slots_come_back_on_the_direct_path(
    server: tuple[ScriptedAPI, str], api: ScriptedAPI
) -> None:
    client = au.AsyncAudian(KEY, base_url=server[1], timeout=5.0, max_retries=0, max_connections=2)
    quick = client.with_options(timeout=0.2)
    async with client:
        api.then("GET", *[HOLD] * 2)
        for _ in range(2):
            with pytest.raises(au.APITimeoutError):
                await quick.calls.get("call_slow")
        api.then("GET", *[HOLD] * 2)
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(client.calls.get, "call_cancelled")
            await until(lambda: api.count("GET") == 4)
            tg.cancel_scope.cancel()
        api.script.clear()
        # Both slots are free again: six reads get through two connections.
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(client.calls.get, f"call_{i}")
    assert api.count("GET") == 10


@pytest.mark.parametrize("kind", sorted(_HTTPX_ERRORS, key=lambda kind: kind.__name__))
def test_the_direct_stock_path_raises_what_httpx_would(kind: type[Exception]) -> None:
    # Retries judge a failure by its httpx type (a ConnectError was never sent): the direct
    # round trip into httpcore must map each of httpcore's errors as httpx's transport does.
    from httpx._transports.default import map_httpcore_exceptions

    with pytest.raises(httpx.TransportError) as raised, map_httpcore_exceptions():
        raise kind("boom")
    mapped = httpx_error(kind("boom"))
    assert type(mapped) is type(raised.value)
    assert str(mapped) == "boom"
    assert httpx_error(ValueError("not httpcore's")) is None


def test_what_the_direct_paths_keep_per_url_stays_bounded() -> None:
    # A read's URL names its call: parsed URLs (and timeouts) are kept in bounded memos.
    cache: dict[str, int] = {}
    for i in range(1000):
        assert memo(cache, str(i), int, MAX_TARGETS) == i
        assert len(cache) <= MAX_TARGETS
    made: list[str] = []
    assert memo(cache, "999", lambda key: made.append(key) or 0, MAX_TARGETS) == 999
    assert made == []  # a key kept is not made again
