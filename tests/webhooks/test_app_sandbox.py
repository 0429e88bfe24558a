"""End to end on loopback: the sandbox delivers real signed webhooks to a WebhookApp served by
uvicorn, and the handlers see typed events, each once, in order per call."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

import pytest

import audian_async as au
from audian_async.sandbox import Delivery, Sandbox
from audian_async.webhooks import EVENT_TYPES, CallFailed, Event, EventRouter, WebhookApp

from ._support import SECRET, serve

pytestmark = pytest.mark.anyio

CALLER_ID = "+14155552671"
ANSWERS = "+14155550100"
# Magic destinations that fail, with the reason and code their call.failed carries.
FAILS = {
    "+14155550101": ("busy", 486),
    "+14155550102": ("no_answer", 408),
    "+14155550103": ("declined", 603),
    "+14155550105": ("network_error", 503),
}
SPEED = 100.0  # simulated seconds per real second: a call lasts a fraction of a second


class Handled:
    """Records what the handlers saw; they run on the server's thread, the test reads here."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.runs: Counter[str | None] = Counter()
        self.fail_first = fail_first
        self.router = EventRouter()
        self.router.add(self.handle, "*")

    async def handle(self, event: Event) -> None:
        with self.lock:
            self.runs[event.id] += 1
            if self.fail_first and self.runs[event.id] == 1:
                raise RuntimeError(f"first attempt at {event.id} fails")
            self.events.append(event)

    def by_call(self) -> dict[str | None, list[tuple[str | None, str]]]:
        with self.lock:
            calls: dict[str | None, list[tuple[str | None, str]]] = defaultdict(list)
            for event in self.events:
                calls[event.call_id].append((event.id, event.type))
            return dict(calls)


def _delivered_by_call(
    deliveries: list[Delivery],
) -> dict[str | None, list[tuple[str | None, str]]]:
    """Per call, the (id, type) of each event in the order it was first acknowledged."""
    calls: dict[str | None, list[tuple[str | None, str]]] = defaultdict(list)
    seen: set[str] = set()
    for d in deliveries:
        if d.ok and d.webhook_id not in seen:
            seen.add(d.webhook_id)
            calls[d.call_id].append((d.webhook_id, d.event))
    return dict(calls)


def _statuses_by_id(deliveries: list[Delivery]) -> dict[str, list[int | None]]:
    statuses: dict[str, list[int | None]] = defaultdict(list)
    for d in deliveries:
        statuses[d.webhook_id].append(d.status_code)
    return dict(statuses)


async def _place_calls(sb: Sandbox) -> dict[str, str]:
    """One call to each magic destination; returns {call_id: destination}."""
    placed: dict[str, str] = {}
    for to in (ANSWERS, *FAILS):
        call = await sb.client.calls.create(
            from_=CALLER_ID,
            to=to,
            timeout=20,
            recording=au.Recording(enabled=True) if to == ANSWERS else None,
        )
        placed[call.call_id] = to
    for call_id in placed:
        await sb.wait_for_status(call_id)
    await sb.wait_idle()
    return placed


async def test_every_delivery_verifies_and_each_call_is_handled_in_order() -> None:
    handled = Handled()
    with serve(WebhookApp(handled.router, secret=SECRET, path="/hooks")) as url:
        async with Sandbox(
            speed=SPEED, webhook_urls=[f"{url}/hooks"], webhook_secret=SECRET, seed=1
        ) as sb:
            placed = await _place_calls(sb)
            deliveries = sb.deliveries

    assert deliveries
    assert [d.status_code for d in deliveries] == [204] * len(deliveries)
    assert {d.call_id for d in deliveries} == set(placed)
    # Each call's events reached the handlers once each, in the order they were sent.
    assert handled.by_call() == _delivered_by_call(deliveries)
    for event in handled.events:
        assert type(event) is EVENT_TYPES[event.type]
        assert event.id is not None
        assert event.timestamp is not None
    for call_id, events in handled.by_call().items():
        types = [t for _, t in events]
        assert types[0] == "call.initiated"
        if placed[call_id] == ANSWERS:
            assert {"call.answered", "call.completed", "recording.completed"} <= set(types)
        else:
            assert types[-1] == "call.failed"
    failures = {e.call_id: e for e in handled.events if isinstance(e, CallFailed)}
    assert {
        placed[cid]: (str(e.reason), e.reason_code) for cid, e in failures.items() if cid
    } == FAILS


async def test_duplicate_deliveries_run_the_handlers_once() -> None:
    handled = Handled()
    with serve(WebhookApp(handled.router, secret=SECRET)) as url:
        async with Sandbox(
            speed=SPEED, webhook_urls=[url], webhook_secret=SECRET, duplicate_rate=1.0, seed=2
        ) as sb:
            await _place_calls(sb)
            deliveries = sb.deliveries

    ids = {d.webhook_id for d in deliveries}
    duplicates = [d for d in deliveries if d.duplicate]
    assert {d.webhook_id for d in duplicates} == ids  # every event was sent twice...
    assert all(d.status_code == 204 for d in deliveries)  # ...and both were acknowledged
    assert handled.runs == Counter(dict.fromkeys(ids, 1))  # ...but handled once
    assert handled.by_call() == _delivered_by_call(deliveries)


async def test_a_failing_handler_gets_500_and_the_redelivery_succeeds_once() -> None:
    handled = Handled(fail_first=True)  # every event's first attempt raises
    with serve(WebhookApp(handled.router, secret=SECRET)) as url:
        async with Sandbox(speed=SPEED, webhook_urls=[url], webhook_secret=SECRET, seed=3) as sb:
            await _place_calls(sb)
            deliveries = sb.deliveries

    statuses = _statuses_by_id(deliveries)
    assert statuses
    # Redelivered under the same webhook-id: one 500, then one 2xx, then nothing more.
    assert statuses == {webhook_id: [500, 204] for webhook_id in statuses}
    assert handled.runs == Counter(dict.fromkeys(statuses, 2))
    assert handled.by_call() == _delivered_by_call(deliveries)


async def test_a_wrong_secret_answers_401_to_every_delivery() -> None:
    handled = Handled()
    other = "whsec_" + "QUJD" * 8  # a valid secret, but not the sandbox's
    with serve(WebhookApp(handled.router, secret=other)) as url:
        async with Sandbox(speed=SPEED, webhook_secret=SECRET, webhook_max_attempts=2) as sb:
            sb.add_webhook_url(url)
            call = await sb.client.calls.create(from_=CALLER_ID, to=ANSWERS, timeout=20)
            await sb.wait_for_status(call.call_id)
            await sb.wait_idle()
            deliveries = sb.deliveries

    assert deliveries
    assert all(d.status_code == 401 for d in deliveries)
    # Each event was tried webhook_max_attempts times, then given up.
    assert set(Counter(d.webhook_id for d in deliveries).values()) == {2}
    assert handled.runs == Counter()
