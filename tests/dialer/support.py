"""A sandbox plus a webhook receiver on loopback, for dialer tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from audian_async import CallRequest
from audian_async._serving import serve_in_thread
from audian_async.dialer import RetryPolicy
from audian_async.sandbox import Sandbox, generate_webhook_secret
from audian_async.webhooks import EventRouter, WebhookApp

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
    *, webhooks: bool = True, **options: Any
) -> AsyncIterator[tuple[Sandbox, EventRouter]]:
    """A sandbox delivering signed webhooks to a WebhookApp served on another port."""
    router = EventRouter()
    secret = generate_webhook_secret()
    options.setdefault("speed", SPEED)
    if not webhooks:
        async with Sandbox(webhook_secret=secret, **options) as sb:
            yield sb, router
        return
    app = WebhookApp(router, secret=secret)
    async with (
        serve_in_thread(app) as url,
        Sandbox(webhook_urls=[url], webhook_secret=secret, **options) as sb,
    ):
        yield sb, router


def calls_per_number(sb: Sandbox) -> Counter[str]:
    return Counter(str(c.to) for c in sb.calls.values())
