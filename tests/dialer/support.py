"""A sandbox plus a webhook receiver on loopback, for dialer tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from audian_async import AsyncAudian, CallRequest
from audian_async._serving import serve_in_thread
from audian_async.dialer import RetryPolicy
from audian_async.sandbox import Sandbox, generate_webhook_secret
from audian_async.webhooks import DedupeStore, EventRouter, WebhookApp

FROM = "+14155552671"
ANSWERS = "+14155550100"
BUSY = "+14155550101"
NO_ANSWER = "+14155550102"
DECLINED = "+14155550103"
INVALID = "+14155550104"
NETWORK_ERROR = "+14155550105"
BUSY_THEN_ANSWER = "+14155550106"
SPEED = 100.0
FAST = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1)


def req(to: str, **kwargs: Any) -> CallRequest:
    return CallRequest(from_=FROM, to=to, **kwargs)


@asynccontextmanager
async def sandbox_with_receiver(
    *, webhooks: bool = True, dedupe_store: DedupeStore | None = None, **options: Any
) -> AsyncIterator[tuple[Sandbox, EventRouter]]:
    """A sandbox delivering signed webhooks to a WebhookApp served on another port (and
    thread)."""
    router = EventRouter()
    secret = generate_webhook_secret()
    options.setdefault("speed", SPEED)
    if not webhooks:
        async with Sandbox(webhook_secret=secret, **options) as sb:
            yield sb, router
        return
    app = WebhookApp(router, secret=secret, dedupe_store=dedupe_store)
    async with (
        serve_in_thread(app) as url,
        Sandbox(webhook_urls=[url], webhook_secret=secret, **options) as sb,
    ):
        yield sb, router


def calls_per_number(sb: Sandbox) -> Counter[str]:
    return Counter(str(c.to) for c in sb.calls.values())


Hook = Callable[[Any], Awaitable[None]]


@asynccontextmanager
async def hooked_client(
    base_url: str,
    api_key: str,
    *,
    on_request: Callable[[httpx.Request], Awaitable[None]] | None = None,
    on_response: Callable[[httpx.Response], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[AsyncAudian]:
    """A client of the API at ``base_url`` whose requests, as they are sent, and responses,
    as they arrive, run through the given hooks on the test's own loop (httpx event hooks: a
    public seam).

    The hooks see what the dialer does when it does it, so a test can wait for an event of
    its own (an ``anyio.Event`` set by a hook) instead of polling the sandbox's thread.
    """
    hooks: dict[str, list[Hook]] = {
        "request": [on_request] if on_request else [],
        "response": [on_response] if on_response else [],
    }
    async with (
        httpx.AsyncClient(event_hooks=hooks) as http,
        AsyncAudian(api_key, base_url=base_url, http_client=http, **options) as client,
    ):
        yield client


def is_create(request: httpx.Request) -> bool:
    """Whether ``request`` is a ``POST /calls`` (a create, first send or replay)."""
    return request.method == "POST" and request.url.path.endswith("/calls")


class Forgetful:
    """A dedupe store that remembers nothing: every redelivery runs the handlers again."""

    async def seen(self, key: str) -> bool:
        return False

    async def remember(self, key: str) -> None:
        return None
