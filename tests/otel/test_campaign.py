"""A small campaign against the sandbox, every part instrumented: the client's spans, the
webhook receiver's spans and the dialer's metrics agree with the report and the sandbox."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audian_async import AsyncAudian
from audian_async._serving import serve_in_thread
from audian_async.dialer import Dialer, MemoryStore
from audian_async.sandbox import Faults, Sandbox, generate_webhook_secret
from audian_async.webhooks import EventRouter, WebhookApp
from tests.dialer.support import (
    ANSWERS,
    BUSY,
    BUSY_THEN_ANSWER,
    DECLINED,
    FAST,
    INVALID,
    SPEED,
    req,
)
from tests.loopback import until

from .conftest import A, Metrics, Spans

pytestmark = pytest.mark.anyio

NUMBERS = [ANSWERS, BUSY, DECLINED, INVALID, BUSY_THEN_ANSWER, "+14155550110", "+14155550111"]
# Creates the sandbox refuses with 429 without acting, drawn from this seed and each request's
# content (never from timing): with it, some creates are refused once (the client's retry
# gets through) and some twice (the dialer waits the Retry-After out).
SEED = 3
REFUSED = 0.35


async def _no_wait(delay: float) -> None:
    return None


@asynccontextmanager
async def instrumented(
    spans: Spans, metrics: Metrics, *, faults: Faults | None = None
) -> AsyncIterator[tuple[Sandbox, EventRouter, AsyncAudian]]:
    """A sandbox delivering to a traced WebhookApp on another thread, and a traced client."""
    router = EventRouter()
    secret = generate_webhook_secret()
    app = WebhookApp(router, secret=secret, tracer_provider=spans.provider)
    options: dict[str, Any] = {"speed": SPEED, "webhook_secret": secret}
    if faults is not None:
        options["faults"] = faults
    async with (
        serve_in_thread(app) as url,
        Sandbox(webhook_urls=[url], **options) as sb,
        AsyncAudian(
            sb.api_key, base_url=sb.base_url, max_retries=1, tracer_provider=spans.provider
        ) as client,
    ):
        client._sleep = _no_wait  # type: ignore[assignment]  # the client's backoff is not under test
        yield sb, router, client


async def test_a_campaigns_spans_and_metrics_match_its_report(
    spans: Spans, metrics: Metrics
) -> None:
    faults = Faults(error_rate={"POST /v2/calls": REFUSED}, error_status=429, seed=SEED)
    async with instrumented(spans, metrics, faults=faults) as (sb, router, client):
        dialer = Dialer(
            client,
            router,
            retry=FAST,
            store=MemoryStore(),
            max_active_calls=10,
            meter_provider=metrics.provider,
        )
        report = await dialer.run([req(n) for n in NUMBERS], campaign="otel")
    # Both servers have stopped: every span is finished.
    deliveries = sb.deliveries

    campaign = {"audian.campaign": "otel"}
    placed_items = sum(1 for o in report.outcomes if o.attempts)
    assert metrics.total("audian.dialer.calls.placed", **campaign) == report.attempts
    assert metrics.total("audian.dialer.calls.completed", **campaign) == report.completed
    failed = {
        attrs["audian.failure.reason"]: value
        for attrs, value in metrics.points("audian.dialer.calls.failed")
    }
    assert failed == report.reasons() == {"busy": 1, "declined": 1, "invalid_number": 1}
    assert metrics.total("audian.dialer.redials") == report.attempts - placed_items
    assert metrics.total("audian.dialer.rate_limited") == report.rate_limited
    assert report.rate_limited >= 1  # the seed's promise: some create was refused twice
    durations = {
        attrs.get("error.type"): count
        for attrs, count in metrics.points("audian.dialer.create.duration")
    }
    assert durations == {None: report.attempts, "429": report.rate_limited}
    assert metrics.points("audian.dialer.calls.live") == []  # the session has ended

    creates = spans.finished("POST /calls")
    by_key: dict[str, list[Any]] = defaultdict(list)
    for span in creates:
        by_key[A(span)["audian.idempotency_key"]].append(span)
    # Each attempt has a key of its own; each create the dialer sent (placed, or refused
    # twice and waited out, then sent again with the same key) starts at attempt 1.
    assert len(by_key) == report.attempts
    firsts = [s for s in creates if A(s)["audian.attempt"] == 1]
    assert len(firsts) == report.attempts + report.rate_limited
    retried = 0
    for key_spans in by_key.values():
        for span in key_spans:
            assert A(span)["url.template"] == "/calls"
        codes = [A(s)["http.response.status_code"] for s in key_spans]
        assert all(c in (201, 429) for c in codes)
        for first, second in itertools.pairwise(key_spans):
            if A(second)["audian.attempt"] == 2:
                assert A(first)["audian.attempt"] == 1
                assert A(first)["http.response.status_code"] == 429
                assert A(first)["error.type"] == "429"
                retried += 1
    assert retried >= 1  # the seed's promise: some create was refused once, then placed
    call_ids = {c for o in report.outcomes for c in o.call_ids}
    placed_ids = [A(s)["audian.call_id"] for s in creates if "audian.call_id" in A(s)]
    assert sorted(placed_ids) == sorted(call_ids)

    hooks = spans.finished("webhook")
    answered = [d for d in deliveries if d.status_code is not None]
    assert Counter(
        (A(s)["audian.webhook.id"], A(s)["http.response.status_code"]) for s in hooks
    ) == (Counter((d.webhook_id, d.status_code) for d in answered))
    for span in hooks:
        assert span.name == f"webhook {A(span)['audian.event.type']}"
        assert A(span)["audian.call_id"] in call_ids
    terminal = {
        A(s)["audian.call_id"]
        for s in hooks
        if A(s)["audian.event.type"] in ("call.completed", "call.failed")
    }
    assert terminal == call_ids


async def test_live_calls_are_a_gauge_per_campaign(spans: Spans, metrics: Metrics) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    async with instrumented(spans, metrics) as (_, router, client):
        dialer = Dialer(
            client,
            router,
            store=MemoryStore(),
            campaign="reminders",
            meter_provider=metrics.provider,
        )
        async with dialer:
            await dialer.submit(req(ANSWERS, scheduled_for=later))
            await dialer.submit(req(BUSY, scheduled_for=later))
            await until(lambda: dialer.stats().live == 2)
            assert metrics.points("audian.dialer.calls.live") == [
                ({"audian.campaign": "reminders"}, 2)
            ]
            dialer.stop()
        assert metrics.points("audian.dialer.calls.live") == []
    assert metrics.total("audian.dialer.calls.placed") == 2
    assert metrics.total("audian.dialer.calls.completed") == 0
