"""The sandbox dashboard in a real headless Chromium: live calls, deliveries, knobs, recordings.

Calls are placed through the SDK on an event loop of their own in a worker thread (the
sandbox runs in its thread; Playwright's sync API owns this one). Every wait is one of
Playwright's auto-retrying ``expect`` assertions: nothing sleeps, nothing is timed.

With ``AUDIAN_DOCS_SCREENSHOTS=docs/images`` the run also saves the screenshots of
``docs/dashboard.md`` there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from playwright.sync_api import Locator, Page, expect

import audian_async as au
from audian_async.sandbox import TALK_SECONDS_TAG, Sandbox
from audian_async.webhooks import EventRouter, WebhookApp

from ..loopback import serve_asgi

T = TypeVar("T")
OWNED = "+14155552671"
DOCS = os.environ.get("AUDIAN_DOCS_SCREENSHOTS")
# As long as the pages' own actions may wait (tests/browser/conftest.py): these machines are
# shared, and a thousand calls take a moment to place.
expect.set_options(timeout=15_000)
# A call that stays answered for the whole test: the sandbox's talk-time tag.
ON_THE_LINE = {TALK_SECONDS_TAG: 3600}


@pytest.fixture
def audian_sandbox_options() -> dict[str, Any]:
    return {"speed": 20.0, "max_concurrent": 2_000, "api_key": "sk_test_browser_wxyz"}


@pytest.fixture
def sb(audian_sandbox_server: Sandbox, page: Page) -> Sandbox:
    """The sandbox, with its dashboard open and live."""
    page.goto(audian_sandbox_server.dashboard_url)
    expect(page.get_by_test_id("connection")).to_have_text("live")
    return audian_sandbox_server


def sdk(sb: Sandbox, work: Callable[[au.AsyncAudian], Awaitable[T]]) -> T:
    """Run ``work`` with an SDK client of the sandbox, on a loop in another thread."""

    async def main() -> T:
        async with au.AsyncAudian(sb.api_key, base_url=sb.base_url, max_retries=0) as client:
            return await work(client)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, main).result()


def create(sb: Sandbox, to: str, **options: Any) -> au.Call:
    return sdk(sb, lambda client: client.calls.create(from_=OWNED, to=to, **options))


def row(page: Page, call_id: str) -> Locator:
    return page.locator(f'[data-testid="call-row"][data-call-id="{call_id}"]')


def docs_screenshot(page: Page, name: str) -> None:
    if DOCS:
        Path(DOCS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(DOCS) / name)


def test_calls_appear_and_change_status_without_a_reload(sb: Sandbox, page: Page) -> None:
    control = au.CallControl(on_answered=[au.PlayAudio(message="Your code is 4 2"), au.Hangup()])
    done = create(sb, "+14155552672", call_control=control)
    busy = create(sb, "+14155550101")
    talking = create(sb, "+14155552673", tags=ON_THE_LINE)
    # Each row was first drawn "initiated" (the create's reply) and moved on by itself.
    expect(row(page, done.call_id).get_by_test_id("call-status")).to_have_text("completed")
    expect(row(page, busy.call_id).get_by_test_id("call-status")).to_have_text("failed")
    expect(row(page, busy.call_id)).to_contain_text("busy")
    expect(row(page, talking.call_id).get_by_test_id("call-status")).to_have_text("answered")
    expect(page.get_by_test_id("count-created")).to_have_text("3")
    expect(page.get_by_test_id("count-live")).to_have_text("1")
    expect(page.get_by_test_id("calls-shown")).to_have_text("3 of 3 calls")

    row(page, done.call_id).click()
    detail = page.get_by_test_id("call-detail")
    timeline = detail.get_by_test_id("timeline").locator("li")
    expect(timeline).to_have_count(4)
    for item, event in zip(
        timeline.all(),
        ["call.initiated", "call.ringing", "call.answered", "call.completed"],
        strict=True,
    ):
        expect(item).to_contain_text(event)
    expect(detail.get_by_test_id("actions").locator("li")).to_have_text(["play_audio", "hangup"])
    docs_screenshot(page, "dashboard-calls.png")

    page.get_by_role("button", name="live", exact=True).click()
    expect(page.get_by_test_id("calls-shown")).to_have_text("1 of 1 calls")
    page.get_by_role("button", name="all", exact=True).click()
    row(page, talking.call_id).click()
    expect(page.get_by_test_id("detail-status")).to_have_text("answered")


def test_secrets_are_masked_on_the_page(sb: Sandbox, page: Page) -> None:
    expect(page.get_by_test_id("api-key")).to_have_text("sk_…wxyz")
    expect(page.get_by_test_id("webhook-secret")).to_have_text(f"whsec_…{sb.webhook_secret[-4:]}")
    text = page.content()
    assert sb.api_key not in text
    assert sb.webhook_secret not in text


def test_delivery_rows_show_status_attempts_and_signature(sb: Sandbox, page: Page) -> None:
    good = WebhookApp(EventRouter(), secret=sb.webhook_secret)
    # Signed with another secret, so every delivery to it is refused (401) and retried.
    wrong = WebhookApp(EventRouter(), secret="whsec_" + "A" * 32)
    with serve_asgi(good) as good_url, serve_asgi(wrong) as wrong_url:
        sb.add_webhook_url(f"{good_url}/ok")
        sb.add_webhook_url(f"{wrong_url}/bad")
        call = create(sb, "+14155550101")
        page.get_by_role("tab", name="Deliveries").click()
        rows = page.locator(f'[data-testid="delivery-row"][data-call-id="{call.call_id}"]')
        accepted = rows.filter(has_text="/ok").filter(has_text="call.failed")
        expect(accepted.get_by_test_id("delivery-status")).to_have_text("204")
        expect(accepted).to_contain_text("v1,")
        expect(accepted).to_contain_text("…")
        refused = rows.filter(has_text="/bad").filter(has_text="call.initiated")
        # Redelivered with backoff until given up after five attempts.
        expect(refused.get_by_test_id("delivery-status")).to_have_count(5)
        expect(refused.get_by_test_id("delivery-status")).to_have_text(["401"] * 5)
        expect(refused.locator("td:nth-child(5)")).to_have_text(["5", "4", "3", "2", "1"])


def test_a_knob_changed_on_the_page_changes_the_api(sb: Sandbox, page: Page) -> None:
    page.get_by_role("tab", name="Faults").click()
    page.get_by_label("Error rate for POST /v2/calls", exact=True).fill("1")
    page.get_by_label("Injected error status").select_option("502")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("knobs-message")).to_have_text("Applied")
    assert sb.faults.error_rate == {"POST /v2/calls": 1.0}
    assert sb.faults.error_status == 502
    docs_screenshot(page, "dashboard-faults.png")

    with pytest.raises(au.ServerError) as failed:
        create(sb, "+14155552672")
    assert failed.value.status_code == 502
    assert not sb.calls

    page.get_by_role("tab", name="Requests").click()
    injected = page.get_by_test_id("request-row").first
    expect(injected.get_by_test_id("request-status")).to_have_text("502")
    expect(injected).to_contain_text("injected error")
    expect(injected).to_contain_text("/v2/calls")

    page.get_by_role("tab", name="Faults").click()
    page.get_by_label("Error rate for POST /v2/calls", exact=True).fill("0")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("knobs-message")).to_have_text("Applied")
    call = create(sb, "+14155552672")
    assert call.call_id in sb.calls


def test_a_refused_knob_shows_why(sb: Sandbox, page: Page) -> None:
    page.get_by_role("tab", name="Faults").click()
    page.get_by_label("Webhook drop rate").fill("3")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("knobs-message")).to_have_text(
        re.compile(r"^drop_rate: must be a number from 0 to 1")
    )
    assert sb.app.deliverer.drop_rate == 0.0


def test_knobs_changed_from_python_show_on_the_page(sb: Sandbox, page: Page) -> None:
    page.get_by_role("tab", name="Faults").click()
    sb.faults.latency = 0.02
    create(sb, "+14155552672")  # any change wakes the stream, which sends the new knobs
    expect(page.get_by_label("Latency (seconds)")).to_have_value("0.02")


def test_recordings_play_in_the_page(sb: Sandbox, page: Page) -> None:
    call = create(sb, "+14155552672", recording=au.Recording(format="mp3"))
    page.get_by_role("tab", name="Recordings").click()
    recording = page.get_by_test_id("recording-row").filter(has_text=call.call_id)
    expect(recording).to_contain_text("wav (asked mp3)")
    player = recording.locator("audio")
    audio_url = re.compile(r"^/_dashboard/api/recordings/rec_\w+/audio$")
    expect(player).to_have_attribute("src", audio_url)
    # Chromium itself loads and decodes the file: its duration is the WAV's.
    duration = player.evaluate(
        """audio => new Promise((resolve, reject) => {
            audio.onloadedmetadata = () => resolve(audio.duration);
            audio.onerror = () => reject(new Error("the recording did not load"));
            audio.preload = "metadata";
            audio.load();
        })"""
    )
    assert duration > 0


def test_the_page_keeps_up_with_a_thousand_live_calls(sb: Sandbox, page: Page) -> None:
    requests = [
        au.CallRequest(from_=OWNED, to=f"+1415555{3000 + n:04d}", tags=ON_THE_LINE)
        for n in range(1000)
    ]
    batch = sdk(sb, lambda client: client.calls.create_batch(requests))
    assert batch.queued == 1000
    expect(page.get_by_test_id("count-created")).to_have_text("1000")
    expect(page.get_by_test_id("count-live")).to_have_text("1000")
    # Every call is known to the page; only the newest 200 rows are drawn.
    expect(page.get_by_test_id("calls-shown")).to_have_text("200 of 1000 calls")
    expect(page.get_by_test_id("call-row")).to_have_count(200)
    expect(page.get_by_test_id("call-status").filter(has_text="answered")).to_have_count(200)
    # Still responsive: filters and tabs answer at once.
    page.get_by_role("button", name="failed", exact=True).click()
    expect(page.get_by_test_id("calls-shown")).to_have_text("0 of 0 calls")
    page.get_by_role("button", name="live", exact=True).click()
    expect(page.get_by_test_id("calls-shown")).to_have_text("200 of 1000 calls")
    page.get_by_role("tab", name="Requests").click()
    expect(page.get_by_test_id("request-row").first).to_contain_text("/v2/calls/batch")
