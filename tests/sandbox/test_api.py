"""The API surface of the sandbox, through the SDK client and raw HTTP, on asyncio and trio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import audian_async as au
from audian_async._validation import CheckedCallRequest
from audian_async.sandbox import Sandbox
from audian_async.sandbox import _app as sandbox_app

from .conftest import OWNED, Receiver

pytestmark = pytest.mark.anyio


def _raw(sb: Sandbox) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sb.base_url.removesuffix("/v2"), timeout=10)


def _auth(sb: Sandbox) -> dict[str, str]:
    return {"X-Auth-Token": sb.api_key}


async def test_create_get_and_batch_with_a_bad_item() -> None:
    async with Sandbox(speed=100) as sb:
        call = await sb.client.calls.create(
            from_=OWNED, to="+14155552672", timeout=45, tags={"campaign": "winter_sale"}
        )
        assert call.call_id.startswith("call_")
        assert call.status == "initiated"
        assert call.to == "+14155552672"
        assert call.timeout == 45
        assert call.tags == {"campaign": "winter_sale"}
        fetched = await sb.client.calls.get(call.call_id)
        assert fetched.call_id == call.call_id
        assert fetched.call_uuid == call.call_uuid

        async with _raw(sb) as http:
            body = {
                "calls": [
                    {"from": OWNED, "to": "+14155552673"},
                    {"from": OWNED, "to": "12"},
                    {"from": "+14155559999", "to": "+14155552674"},
                ]
            }
            response = await http.post("/v2/calls/batch", json=body, headers=_auth(sb))
        assert response.status_code == 200
        batch = au._convert.decode_batch(response.content)
        assert (batch.total, batch.queued, batch.failed) == (3, 1, 2)
        assert batch.calls[0].ok
        assert batch.calls[1].error == "invalid_number"
        assert batch.calls[1].code == 400
        assert batch.calls[1].to == "12"
        assert batch.calls[1].message is not None
        assert "(calls[1].to: " in batch.calls[1].message
        assert batch.calls[2].error == "unauthorized_caller_id"
        assert batch.calls[2].code == 403
        assert batch.calls[0].call_id in sb.calls


async def test_client_batch() -> None:
    async with Sandbox(speed=100) as sb:
        requests = [au.CallRequest(from_=OWNED, to=f"+1415555267{i}") for i in range(2, 6)]
        batch = await sb.client.calls.create_batch(requests)
        assert batch.batch_id
        assert (batch.total, batch.queued, batch.failed) == (4, 4, 0)
        assert all(item.ok and item.status == "initiated" for item in batch.calls)


async def test_auth_errors_and_bearer() -> None:
    async with Sandbox(speed=100, api_key="sk_right") as sb:
        wrong = au.AsyncAudian("sk_wrong", base_url=sb.base_url, max_retries=0)
        async with wrong:
            with pytest.raises(au.AuthenticationError):
                await wrong.calls.create(from_=OWNED, to="+14155552672")
        async with _raw(sb) as http:
            missing = await http.get("/v2/calls/call_x")
            assert missing.status_code == 401
            assert missing.json()["error"] == "unauthorized"
            bearer = await http.post(
                "/v2/calls",
                json={"from": OWNED, "to": "+14155552672"},
                headers={"Authorization": "Bearer sk_right"},
            )
            assert bearer.status_code == 201
            assert bearer.json()["status"] == "initiated"


async def test_403_404_405() -> None:
    async with Sandbox(speed=100, caller_ids=["+14155552680"]) as sb:
        with pytest.raises(au.UnauthorizedCallerIdError) as denied:
            await sb.client.calls.create(from_="+14155552699", to="+14155552672")
        assert "not authorized" in str(denied.value)
        # An extra owned caller ID is accepted.
        await sb.client.calls.create(from_="+14155552680", to="+14155552672")
        with pytest.raises(au.NotFoundError):
            await sb.client.calls.get("call_missing")
        async with _raw(sb) as http:
            route = await http.get("/v2/nowhere", headers=_auth(sb))
            assert route.status_code == 404
            assert route.json()["code"] == 404
            method = await http.delete("/v2/calls", headers=_auth(sb))
            assert method.status_code == 405
            assert method.headers["allow"] == "POST"


async def test_413_for_a_huge_body() -> None:
    async with Sandbox(speed=100) as sb:
        huge = b'{"from": "' + b"x" * (2 << 20) + b'"}'
        async with _raw(sb) as http:
            response = await http.post(
                "/v2/calls", content=huge, headers={**_auth(sb), "content-type": "application/json"}
            )
            assert response.status_code == 413
            assert response.json()["error"] == "payload_too_large"

            async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
                for _ in range(40):
                    yield b"x" * 65536

            streamed = await http.post("/v2/calls", content=chunks(), headers=_auth(sb))
            assert streamed.status_code == 413
        with pytest.raises(au.PayloadTooLargeError):
            await sb.client.calls.create(
                from_=OWNED, to="+14155552672", custom_fields={"blob": "y" * (2 << 20)}
            )


async def test_429_at_the_limit_and_recovery() -> None:
    async with Sandbox(speed=100, max_concurrent=2) as sb:
        client = sb.client.with_options(max_retries=0)
        long = {"sandbox_talk_seconds": 100}  # 1 s of real time at speed 100
        first = await client.calls.create(from_=OWNED, to="+14155552672", tags=long)
        await client.calls.create(from_=OWNED, to="+14155552673", tags=long)
        with pytest.raises(au.RateLimitedError) as limited:
            await client.calls.create(from_=OWNED, to="+14155552674")
        assert limited.value.error == "rate_limited"
        assert "Maximum: 2" in limited.value.message
        assert limited.value.retry_after is not None
        # Scheduled calls do not count until they start.
        later = datetime.now(UTC) + timedelta(hours=1)
        scheduled = await client.calls.create(from_=OWNED, to="+14155552675", scheduled_for=later)
        assert scheduled.status == "scheduled"
        await sb.wait_for_status(first.call_id)
        recovered = await client.calls.create(from_=OWNED, to="+14155552676")
        assert recovered.status == "initiated"
        assert sb.peak_live_calls == 2


async def test_idempotency_key() -> None:
    async with Sandbox(speed=100) as sb:
        first = await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="k1")
        again = await sb.client.calls.create(from_=OWNED, to="+14155552672", idempotency_key="k1")
        assert again.call_id == first.call_id
        assert len(sb.calls) == 1
        assert sb.stats["idempotent_replays"] == 1
        assert sb.post_count == 2
        with pytest.raises(au.APIStatusError) as reused:
            await sb.client.calls.create(from_=OWNED, to="+14155552673", idempotency_key="k1")
        assert reused.value.status_code == 422
        assert reused.value.error == "idempotency_key_reused"
        assert len(sb.calls) == 1


async def test_an_idempotency_key_replays_the_same_json_however_it_is_written() -> None:
    first = (
        b'{"from": "%s", "to": "+14155552672", "tags": {"a": "1", "b": [1, 2]}}' % OWNED.encode()
    )
    same = [
        b'{"to":"+14155552672","tags":{"b":[1,2],"a":"1"},"from":"%s"}' % OWNED.encode(),
        b'\n{ "from" : "%s",\n  "to": "+14155552672", "tags": {"a": "\\u0031", "b": [1, 2]} }\n'
        % OWNED.encode(),
    ]
    different = [
        b'{"from": "%s", "to": "+14155552672", "tags": {"a": "1", "b": [2, 1]}}' % OWNED.encode(),
        b'{"from": "%s", "to": "+14155552672"}' % OWNED.encode(),
        b"not json",
    ]
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        for route in ("/v2/calls", "/v2/calls/batch"):
            headers = {**_auth(sb), "content-type": "application/json", "idempotency-key": "k"}

            def shaped(body: bytes, route: str = route) -> bytes:
                return body if route == "/v2/calls" else b'{"calls": [%s]}' % body

            created = await http.post(route, content=shaped(first), headers=headers)
            assert created.status_code in (200, 201)
            for body in same:
                again = await http.post(route, content=shaped(body), headers=headers)
                assert (again.status_code, again.content) == (created.status_code, created.content)
            for body in different:
                reused = await http.post(route, content=shaped(body), headers=headers)
                assert reused.status_code == 422
                assert reused.json()["error"] == "idempotency_key_reused"
        assert len(sb.calls) == 2
        assert sb.stats["idempotent_replays"] == 4


async def test_an_idempotency_key_on_json_too_deep_to_write_back_replays_the_same_bytes() -> None:
    deep = b"[" * 300 + b"]" * 300  # an unknown field: ignored, but beyond the writer's depth
    body = b'{"from": "%s", "to": "+14155552672", "x": %s}' % (OWNED.encode(), deep)
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        headers = {**_auth(sb), "content-type": "application/json", "idempotency-key": "k"}
        created = await http.post("/v2/calls", content=body, headers=headers)
        assert created.status_code == 201
        again = await http.post("/v2/calls", content=body, headers=headers)
        assert again.content == created.content
        # Written differently it cannot be compared: refused, never a 500.
        spaced = await http.post("/v2/calls", content=body + b" ", headers=headers)
        assert spaced.status_code == 422
        assert len(sb.calls) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[]", 400, "invalid_request"),
        (b'"text"', 400, "invalid_request"),
        (b"{}", 400, "invalid_request"),
        (b'{"from": "+14155552671"}', 400, "invalid_request"),
        (b'{"from": "+14155552671", "to": 14155552672}', 400, "invalid_number"),
        (b'{"from": "+14155552671", "to": "+1415"}', 400, "invalid_number"),
        (b'{"from": "+1", "to": "+14155552672"}', 400, "invalid_number"),
        (b'{"from": "+14155552671", "to": "+14155552672", "timeout": "45"}', 400, None),
        (b'{"from": "+14155552671", "to": "+14155552672", "timeout": -1}', 400, None),
        (b'{"from": "+14155552671", "to": "+14155552672", "tags": []}', 400, None),
        (b'{"from": "+14155552671", "to": "+14155552672", "scheduled_for": "soon"}', 400, None),
        (
            b'{"from": "+14155552671", "to": "+14155552672",'
            b' "call_control": {"on_answered": [{"action": "dance"}]}}',
            400,
            "invalid_request",
        ),
        (
            b'{"from": "+14155552671", "to": "+14155552672",'
            b' "call_control": {"on_answered": [{"action": "play_audio"}]}}',
            400,
            None,
        ),
        (
            b'{"from": "+14155552671", "to": "+14155552672", "call_control": {"on_answered":'
            b' [{"action": "gather_dtmf", "routes": [{"digit": "x", "action": "hangup"}]}]}}',
            400,
            None,
        ),
        (b"[" * 5000 + b"]" * 5000, 400, None),
    ],
)
async def test_bad_input_gets_the_reference_error_shape(
    body: bytes, status: int, error: str | None
) -> None:
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        response = await http.post(
            "/v2/calls", content=body, headers={**_auth(sb), "content-type": "application/json"}
        )
        assert response.status_code == status
        reply = response.json()
        assert set(reply) == {"error", "message", "code"}
        assert reply["code"] == status
        if error is not None:
            assert reply["error"] == error
        assert not sb.calls
        # The server is still fine afterwards.
        ok = await http.post(
            "/v2/calls", json={"from": OWNED, "to": "+14155552672"}, headers=_auth(sb)
        )
        assert ok.status_code == 201


async def test_a_national_number_is_refused_without_the_sdk_hint() -> None:
    # default_region= is an SDK option: a client of the HTTP API has nothing to pass it to.
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        national = {"from": OWNED, "to": "(415) 555-2672"}
        response = await http.post("/v2/calls", json=national, headers=_auth(sb))
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_number",
            "message": "The destination number format is invalid"
            " (to: '(415) 555-2672' is not in E.164 format (+14155552671))",
            "code": 400,
        }
        batch = {"calls": [{"from": "415 555 2671", "to": "+14155552672"}]}
        item = (await http.post("/v2/calls/batch", json=batch, headers=_auth(sb))).json()
        assert item["calls"][0]["message"] == (
            "The caller ID number format is invalid"
            " (calls[0].from: '415 555 2671' is not in E.164 format (+14155552671))"
        )
        with pytest.raises(au.ValidationError, match="default_region="):  # the SDK keeps it
            await sb.client.calls.create(from_=OWNED, to="(415) 555-2672")


async def test_a_scheduled_for_without_an_offset_is_a_400() -> None:
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        naive = {"from": OWNED, "to": "+14155552672", "scheduled_for": "2030-01-01T10:00:00"}
        message = (
            "scheduled_for: must include a UTC offset or Z, as in '2030-01-01T10:00:00Z';"
            " got '2030-01-01T10:00:00'"
        )
        response = await http.post("/v2/calls", json=naive, headers=_auth(sb))
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "message": message, "code": 400}
        batch = await http.post("/v2/calls/batch", json={"calls": [naive]}, headers=_auth(sb))
        assert batch.json()["calls"][0]["message"] == f"calls[0].{message}"
        assert not sb.calls
        aware = {**naive, "scheduled_for": "2030-01-01T12:00:00+02:00"}
        response = await http.post("/v2/calls", json=aware, headers=_auth(sb))
        assert response.status_code == 201
        assert response.json()["scheduled_for"] == "2030-01-01T10:00:00Z"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"call_control": []},
            "call_control: expected an object of action lists (on_answered, on_no_answer),"
            " got an array",
        ),
        (
            {"call_control": {"on_answered": {}}},
            "call_control.on_answered: expected an array, got an object",
        ),
        (
            {
                "call_control": {
                    "on_answered": [{"action": "play_audio", "message": "hi", "voice": "robot"}]
                }
            },
            "call_control.on_answered[0].voice: must be one of female, male; got 'robot'",
        ),
        (
            {"call_control": {"on_answered": [{"action": "gather_dtmf", "routes": "12"}]}},
            "call_control.on_answered[0].routes: expected an array, got a string",
        ),
        (
            {"recording": True},
            "recording: expected an object (enabled, format, participant, bitrate), got a boolean",
        ),
        (
            {"recording": "mp3"},
            "recording: expected an object (enabled, format, participant, bitrate), got a string",
        ),
        (
            {"recording": {"format": "flac"}},
            "recording.format: must be one of mp3, opus, wav; got 'flac'",
        ),
        (
            {"recording": {"participant": 1}},
            "recording.participant: must be one of all, callee, caller; got a number",
        ),
        ({"tags": "vip"}, "tags: expected an object, got a string"),
    ],
)
async def test_a_malformed_field_gets_a_400_saying_what_is_expected(
    extra: dict[str, Any], message: str
) -> None:
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        body = {"from": OWNED, "to": "+14155552672", **extra}
        response = await http.post("/v2/calls", json=body, headers=_auth(sb))
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_request", "message": message, "code": 400}
        assert not sb.calls


async def test_bad_batches() -> None:
    async with Sandbox(speed=100) as sb, _raw(sb) as http:
        for body in ({}, {"calls": {}}, {"calls": []}, {"calls": [{"from": OWNED}] * 1001}):
            response = await http.post("/v2/calls/batch", json=body, headers=_auth(sb))
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_request"
        mixed = {"calls": [1, None, {"from": OWNED, "to": "+14155552672"}]}
        response = await http.post("/v2/calls/batch", json=mixed, headers=_auth(sb))
        reply = response.json()
        assert (reply["queued"], reply["failed"]) == (1, 2)
        assert reply["calls"][0]["status"] == "failed"
        typed = {
            "calls": [
                {"from": OWNED, "to": "+14155552672"},
                {"from": OWNED, "to": "+14155552673", "timeout": "9"},
            ]
        }
        reply = (await http.post("/v2/calls/batch", json=typed, headers=_auth(sb))).json()
        assert reply["calls"][1]["error"] == "invalid_request"
        assert reply["calls"][1]["message"].startswith("calls[1].timeout: ")


_DEEP = b"[" * 400 + b"]" * 400  # orjson reads 1024 levels but writes only 254


@pytest.mark.parametrize(
    "extra",
    [
        b'"tags": {"a": ' + _DEEP + b"}",
        b'"custom_fields": {"a": ' + _DEEP + b"}",
        b'"timeout": 1180591620717411303424',
        b'"max_duration": 1180591620717411303424',
        b'"scheduled_for": "0001-01-01T00:00:00+14:00"',
    ],
    ids=["deep-tags", "deep-custom-fields", "huge-timeout", "huge-max-duration", "year-0-utc"],
)
@pytest.mark.parametrize("hooks", [False, True], ids=["no-hooks", "hooks"])
async def test_json_it_cannot_write_back_is_a_400_that_leaks_no_live_slot(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, extra: bytes, hooks: bool
) -> None:
    # Whatever the core validation lets through, the sandbox itself must stay consistent:
    # here it lets everything through.
    monkeypatch.setattr(sandbox_app, "validate_call_request", CheckedCallRequest._made)
    urls = [receiver.url] if hooks else []
    async with Sandbox(speed=100, max_concurrent=1, webhook_urls=urls) as sb:
        body = b'{"from": "%s", "to": "+14155552672", %s}' % (OWNED.encode(), extra)
        batch = b'{"calls": [%s, {"from": "%s", "to": "+14155552673"}]}' % (body, OWNED.encode())
        async with _raw(sb) as http:
            for _ in range(2):
                response = await http.post("/v2/calls", content=body, headers=_auth(sb))
                assert response.status_code == 400
                assert response.json()["error"] == "invalid_request"
                assert response.json()["code"] == 400
            assert not sb.calls
            assert sb.live_calls == 0
            items = await http.post("/v2/calls/batch", content=batch, headers=_auth(sb))
            assert items.status_code == 200
            assert [c["status"] for c in items.json()["calls"]] == ["failed", "initiated"]
            assert items.json()["calls"][0]["code"] == 400
        assert len(sb.calls) == 1
        assert sb.live_calls == 1
        await sb.wait_idle()
        call = await sb.client.calls.create(from_=OWNED, to="+14155552674")
        assert call.status == "initiated"


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"], ids=["year-0", "year-10000"]
)
async def test_a_time_with_no_utc_form_is_a_400_and_places_nothing_on_any_retry(when: str) -> None:
    async with Sandbox(speed=100) as sb:
        body = {"from": OWNED, "to": "+14155552672", "scheduled_for": when}
        headers = {**_auth(sb), "Idempotency-Key": "same-key"}
        async with _raw(sb) as http:
            for _ in range(3):
                response = await http.post("/v2/calls", json=body, headers=headers)
                assert response.status_code == 400
                assert response.json()["error"] == "invalid_request"
                assert "scheduled_for" in response.json()["message"]
        assert sb.calls == {}
        assert sb.live_calls == 0
