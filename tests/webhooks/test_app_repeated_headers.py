"""WebhookApp with header fields split into several lines, or joined, as proxies may (RFC 9110)."""

from __future__ import annotations

import base64
import logging

import httpx
import pytest

from audian_async.webhooks import Event, EventRouter, WebhookApp

from ._support import SECRET, delivery, serve

pytestmark = pytest.mark.anyio

BOGUS = "v1," + base64.b64encode(b"x" * 32).decode()
HeaderLines = list[tuple[str, str]]


class Counter:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.router = EventRouter()
        self.router.add(self.events.append, "*", in_thread=False)


def split(headers: dict[str, str], *extra: tuple[str, str], first: bool = False) -> HeaderLines:
    """``headers`` as lines, with ``extra`` lines after (or before) the others."""
    lines = list(headers.items())
    return [*extra, *lines] if first else [*lines, *extra]


async def post(app: WebhookApp, body: bytes, headers: HeaderLines) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        return await client.post("/", content=body, headers=headers)


@pytest.mark.parametrize("bogus_first", [False, True], ids=["valid-then-bogus", "bogus-then-valid"])
async def test_repeated_signature_lines_any_valid_entry_passes(bogus_first: bool) -> None:
    counter = Counter()
    app = WebhookApp(counter.router, secret=SECRET)
    body, headers = delivery()
    lines = split(headers, ("webhook-signature", BOGUS), first=bogus_first)
    assert [name for name, _ in lines].count("webhook-signature") == 2
    assert (await post(app, body, lines)).status_code == 204
    assert len(counter.events) == 1


async def test_signature_lines_a_proxy_joined_with_commas() -> None:
    app = WebhookApp(Counter().router, secret=SECRET)
    body, headers = delivery()
    for joined in (f"{BOGUS}, {headers['webhook-signature']}", f"{BOGUS},v1a,x,{BOGUS}"):
        lines = split({**headers, "webhook-signature": joined})
        expected = 401 if joined.endswith(BOGUS) else 204
        assert (await post(app, body, lines)).status_code == expected


async def test_repeated_bogus_signature_lines_are_401() -> None:
    counter = Counter()
    app = WebhookApp(counter.router, secret=SECRET)
    body, headers = delivery()
    lines = split({**headers, "webhook-signature": BOGUS}, ("webhook-signature", "v1,AAAA"))
    response = await post(app, body, lines)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert counter.events == []


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp"])
async def test_repeated_id_or_timestamp_lines_that_agree_pass(name: str) -> None:
    counter = Counter()
    app = WebhookApp(counter.router, secret=SECRET)
    body, headers = delivery()
    assert (await post(app, body, split(headers, (name, headers[name])))).status_code == 204
    assert len(counter.events) == 1


@pytest.mark.parametrize("first", [False, True], ids=["after", "before"])
@pytest.mark.parametrize(("name", "other"), [("webhook-id", "msg_2"), ("webhook-timestamp", "1")])
async def test_repeated_id_or_timestamp_lines_that_disagree_are_401(
    name: str, other: str, first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="audian_async.webhooks")
    counter = Counter()
    app = WebhookApp(counter.router, secret=SECRET)
    body, headers = delivery()
    response = await post(app, body, split(headers, (name, other), first=first))
    assert response.status_code == 401
    assert "disagree" in response.json()["message"]
    assert counter.events == []
    assert any("disagree" in r.getMessage() for r in caplog.records)


async def test_repeated_lines_over_http() -> None:
    # uvicorn hands each header line to the app as its own (name, value) pair.
    counter = Counter()
    body, headers = delivery(msg_id="msg_http")
    valid_then_bogus = split(headers, ("webhook-signature", BOGUS))
    two_ids = split(headers, ("webhook-id", "msg_other"), first=True)
    with serve(WebhookApp(counter.router, secret=SECRET)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.post("/", content=body, headers=valid_then_bogus)
            assert response.status_code == 204
            response = await client.post("/", content=body, headers=two_ids)
            assert response.status_code == 401
    assert len(counter.events) == 1
