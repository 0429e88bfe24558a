"""Webhook delivery from the sandbox: signatures, order, redelivery, knobs, recordings."""

from __future__ import annotations

import io
import logging
import wave
from collections import Counter

import httpx
import pytest

import audian_async as au
from audian_async.sandbox import Sandbox, SandboxApp
from audian_async.webhooks import verify

from .conftest import OWNED, Receiver

pytestmark = pytest.mark.anyio


async def test_events_are_signed_and_in_order_per_call(receiver: Receiver) -> None:
    async with Sandbox(speed=200, webhook_urls=[receiver.url]) as sb:
        numbers = ["+14155552672", "+14155550101", "+14155550102", "+14155550103"] * 3
        ids = [
            (await sb.client.calls.create(from_=OWNED, to=n, timeout=5)).call_id for n in numbers
        ]
        await sb.wait_idle()
        for headers, body in receiver.requests:
            verify(sb.webhook_secret, headers, body)  # raises when wrong
        events = receiver.events()
        by_call: dict[str, list[str]] = {}
        for event in events:
            data = event["data"]
            assert isinstance(data, dict)
            by_call.setdefault(data["call_id"], []).append(str(event["event"]))
        assert set(by_call) == set(ids)
        expected = {
            "+14155552672": ["call.initiated", "call.ringing", "call.answered", "call.completed"],
            "+14155550101": ["call.initiated", "call.failed"],
            "+14155550102": ["call.initiated", "call.ringing", "call.failed"],
            "+14155550103": ["call.initiated", "call.ringing", "call.failed"],
        }
        for call_id, number in zip(ids, numbers, strict=True):
            assert by_call[call_id] == expected[number]
        failed = [e for e in events if e["event"] == "call.failed"]
        assert {(e["data"]["reason"], e["data"]["reason_code"]) for e in failed} == {  # type: ignore[index]
            ("busy", 486),
            ("no_answer", 408),
            ("declined", 603),
        }
        first = events[0]
        assert set(first) == {"id", "timestamp", "event", "data"}
        assert str(first["id"]).startswith("evt_")
        assert str(first["timestamp"]).endswith("Z")
        assert all(d.ok for d in sb.deliveries)


async def test_redelivery_after_a_500_keeps_the_webhook_id_and_the_order(
    receiver: Receiver,
) -> None:
    failed_once: set[str] = set()

    def flaky(headers: dict[str, str], body: bytes) -> int:
        if headers["webhook-id"] not in failed_once:
            failed_once.add(headers["webhook-id"])
            return 500
        return 200

    receiver.respond = flaky
    async with Sandbox(speed=200, webhook_urls=[receiver.url]) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155552672")
        await sb.wait_idle()
        ids = [h["webhook-id"] for h, _ in receiver.requests]
        # Every event twice in a row (500 then 200), never the next before the previous.
        assert len(ids) == 8
        assert ids[0::2] == ids[1::2]
        assert len(set(ids)) == 4
        types = [e["event"] for e in receiver.events()][0::2]
        assert types == ["call.initiated", "call.ringing", "call.answered", "call.completed"]
        attempts = [(d.status_code, d.attempt) for d in sb.deliveries if d.call_id == call.call_id]
        assert attempts == [(500, 1), (200, 2)] * 4


async def test_gives_up_after_max_attempts_then_sends_the_next(receiver: Receiver) -> None:
    receiver.respond = lambda headers, body: 503
    async with Sandbox(speed=200, webhook_urls=[receiver.url], webhook_max_attempts=3) as sb:
        await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        assert [e["event"] for e in receiver.events()] == ["call.initiated"] * 3 + [
            "call.failed"
        ] * 3


async def test_a_redirect_is_a_failed_attempt_not_followed(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # What a framework's mount answers for POST /webhooks: the app lives at /webhooks/.
    redirect = (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1/webhooks/\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    receiver.respond = lambda headers, body: redirect
    caplog.set_level(logging.WARNING, logger="audian_async.sandbox")
    async with Sandbox(speed=200, webhook_urls=[receiver.url], webhook_max_attempts=2) as sb:
        call = await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_for_status(call.call_id)
        await sb.wait_idle()
        attempts = sb.deliveries
    # Each event was tried twice at the configured URL only (nothing went to the Location),
    # then given up; each attempt is recorded as failed with the redirect and where it led.
    assert [(d.event, d.attempt) for d in attempts] == [
        ("call.initiated", 1),
        ("call.initiated", 2),
        ("call.failed", 1),
        ("call.failed", 2),
    ]
    assert len(receiver.requests) == 4
    for delivery in attempts:
        assert not delivery.ok
        assert delivery.status_code == 307
        assert delivery.error is not None
        assert "redirect 307" in delivery.error
        assert "Location http://127.0.0.1/webhooks/" in delivery.error
        assert "not followed" in delivery.error
    # Logged once per URL, not once per attempt.
    warnings = [r for r in caplog.records if "redirect 307" in r.getMessage()]
    assert len(warnings) == 1
    assert receiver.url in warnings[0].getMessage()


async def test_drop_and_duplicate_knobs(receiver: Receiver) -> None:
    async with Sandbox(
        speed=200, webhook_urls=[receiver.url], drop_rate=0.3, duplicate_rate=0.3, seed=7
    ) as sb:
        for _ in range(10):
            await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        deliveries = sb.deliveries
        dropped = [d for d in deliveries if d.dropped]
        duplicates = [d for d in deliveries if d.duplicate]
        assert dropped
        assert duplicates
        received = Counter(h["webhook-id"] for h, _ in receiver.requests)
        assert all(received[d.webhook_id] == 0 for d in dropped)
        assert all(received[d.webhook_id] == 2 for d in duplicates)
        assert len(received) + len(dropped) == 20


async def test_urls_can_be_added_after_start(receiver: Receiver) -> None:
    async with Sandbox(speed=200) as sb:
        await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        sb.add_webhook_url(receiver.url)
        assert sb.webhook_urls == (receiver.url,)
        call = await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        assert {e["data"]["call_id"] for e in receiver.events()} == {call.call_id}  # type: ignore[index]


@pytest.mark.parametrize("how", ["parameter", "action"])
async def test_recordings_download_as_valid_wav(receiver: Receiver, how: str) -> None:
    async with Sandbox(speed=200, webhook_urls=[receiver.url]) as sb:
        if how == "parameter":
            call = await sb.client.calls.create(
                from_=OWNED, to="+14155552672", recording=au.Recording(format="mp3")
            )
        else:
            control = au.CallControl(on_answered=[au.RecordAudio(max_duration=2), au.Hangup()])
            call = await sb.client.calls.create(
                from_=OWNED, to="+14155552672", call_control=control
            )
        await sb.wait_idle()
        events = receiver.events()
        assert [e["event"] for e in events][-2:] == ["call.completed", "recording.completed"]
        data = events[-1]["data"]
        assert isinstance(data, dict)
        assert data["call_id"] == call.call_id
        assert data["format"] == "wav"
        assert data["duration"] == (5 if how == "parameter" else 2)
        assert data["recording_id"] in sb.recordings
        async with httpx.AsyncClient() as http:
            response = await http.get(data["recording_url"])
            missing = await http.get(sb.base_url + "/recordings/rec_nope")
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        with wave.open(io.BytesIO(response.content)) as audio:
            assert audio.getnchannels() == 1
            assert audio.getframerate() == 8000
            assert audio.getnframes() == 8000 * data["duration"]
        assert missing.status_code == 404


@pytest.mark.parametrize(
    "reply",
    [
        b"HELLO\r\n\r\n",
        b"HTTP/1.1 abc X\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_a_malformed_reply_is_a_failed_attempt_not_a_crash(
    receiver: Receiver, reply: bytes
) -> None:
    answered: set[str] = set()

    def once_malformed(headers: dict[str, str], body: bytes) -> int | bytes:
        if not answered:
            answered.add(headers["webhook-id"])
            return reply
        return 200

    receiver.respond = once_malformed
    async with Sandbox(speed=200, webhook_urls=[receiver.url]) as sb:
        first = await sb.client.calls.create(from_=OWNED, to="+14155552672")
        assert (await sb.wait_for_status(first.call_id)).status == "completed"
        second = await sb.client.calls.create(from_=OWNED, to="+14155550101")
        assert (await sb.wait_for_status(second.call_id)).status == "failed"
        await sb.wait_idle()
        attempts = [d for d in sb.deliveries if d.call_id == first.call_id]
        assert attempts[0].status_code is None
        assert attempts[0].error
        assert attempts[1].webhook_id == attempts[0].webhook_id
        assert attempts[1].ok
        # Delivery goes on after the malformed reply. Only each call's own events are ordered:
        # the first call's lane may still be draining when the second call's events land.
        second_events = [
            e["event"]
            for e in receiver.events()
            if e["data"]["call_id"] == second.call_id  # type: ignore[index]
        ]
        assert second_events == ["call.initiated", "call.failed"]


@pytest.mark.parametrize("secret", ["whsec_not*base64", "whsec_"])
def test_an_invalid_webhook_secret_is_refused_up_front(secret: str) -> None:
    with pytest.raises(au.ValidationError) as refused:
        Sandbox(webhook_secret=secret, webhook_urls=["http://127.0.0.1:9/hooks"])
    assert refused.value.field == "webhook_secret"
    assert secret not in str(refused.value)
    with pytest.raises(au.ValidationError):
        SandboxApp(api_key="k", webhook_secret=secret)


@pytest.mark.parametrize(
    "reply", [b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\n\r\n"]
)
async def test_bodyless_replies_keep_the_connection(receiver: Receiver, reply: bytes) -> None:
    # 204 and 304 correctly carry no Content-Length: not a "body until EOF" reply.
    receiver.respond = lambda headers, body: reply
    hooks = {"webhook_urls": [receiver.url], "webhook_workers": 1, "webhook_max_attempts": 2}
    async with Sandbox(speed=200, **hooks) as sb:
        for _ in range(3):
            await sb.client.calls.create(from_=OWNED, to="+14155550101")
        await sb.wait_idle()
        statuses = {d.status_code for d in sb.deliveries}
    assert statuses == {int(reply[9:12])}
    assert len(receiver.requests) >= 6
    assert receiver.connections == 1
