"""The published OpenAPI document, the SDK's models and the sandbox hold together.

* The document is valid OpenAPI 3.1; its examples and the reference's match its schemas.
* It names exactly the wire fields of the SDK's models, its enums and limits are theirs.
* The sandbox serves it, without an API key; request bodies generated from its schemas
  that the sandbox accepts round-trip through the SDK's converter, and the sandbox's
  answers (successes, every error, injected faults, webhook events) are what it documents,
  naming every field they carry.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from openapi_spec_validator import validate
from schemathesis import GenerationMode

import audian_async as au
from audian_async._convert import (
    ACTION_NAMES,
    decode_batch,
    decode_call,
    encode_batch_body,
    encode_call_body,
    parse_call_request,
    request_to_wire,
)
from audian_async._json import dumps
from audian_async._validation import MAX_BATCH, MAX_INT, validate_call_request
from audian_async.sandbox import (
    MAGIC_NUMBERS,
    MAX_BODY,
    OWNED_CALLER_ID,
    Faults,
    Sandbox,
    openapi_document,
)
from audian_async.sandbox._openapi import openapi_bytes
from audian_async.webhooks._events import EVENT_TYPES

from .contract import (
    DOCUMENT,
    INEXPRESSIBLE_REFUSALS,
    conforms,
    resolve,
    schema_validator,
    undocumented_keys,
    validator,
)

SAMPLES = Path(__file__).parent.parent / "samples" / "reference"
SCHEMAS = DOCUMENT["components"]["schemas"]
OTHER_CALLER_ID = "+14155552680"
"""A caller ID the contract sandboxes own besides the default one."""


def _wire_names(cls: type) -> set[str]:
    return {"from" if f.name == "from_" else f.name for f in attrs.fields(cls)}


def _properties(name: str) -> set[str]:
    schema = resolve(SCHEMAS[name])
    names = set(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in schema.get(key, ()):
            names |= set(resolve(branch).get("properties", {}))
    return names


@contextlib.contextmanager
def _serving(**options: Any) -> Iterator[tuple[Sandbox, httpx.Client]]:
    """A sandbox started with ``options`` and a raw client of it with its API key."""
    sb = Sandbox(**options)
    sb.start()
    try:
        origin = sb.base_url.removesuffix("/v2")
        headers = {"X-Auth-Token": sb.api_key}
        with httpx.Client(base_url=origin, headers=headers, timeout=10) as client:
            yield sb, client
    finally:
        sb.stop()


def _wait(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"the sandbox never {what}"
        time.sleep(0.01)


# --- the document itself ----------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def _examples() -> Iterator[tuple[str, str, object]]:
    """(where, schema pointer, example) for every example the document gives."""

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, str, object]]:
        if isinstance(node, dict):
            media_examples = node.get("examples") if "schema" in node else None
            if isinstance(media_examples, dict):
                for name, example in media_examples.items():
                    example = resolve(example)
                    yield f"{pointer}/examples/{name}", f"{pointer}/schema", example["value"]
            if "schema" in node and "example" in node:  # a parameter's example
                yield f"{pointer}/example", f"{pointer}/schema", node["example"]
            if "type" in node and isinstance(node.get("examples"), list):  # a schema's
                for i, example in enumerate(node["examples"]):
                    yield f"{pointer}/examples/{i}", pointer, example
            for key, value in node.items():
                yield from walk(value, f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{pointer}/{i}")

    yield from walk(DOCUMENT, "")


def test_every_example_in_the_document_matches_its_schema() -> None:
    examples = list(_examples())
    assert len(examples) > 30
    for where, pointer, example in examples:
        errors = [e.message for e in validator(pointer).iter_errors(example)]
        assert not errors, (where, errors)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_the_reference_examples_match_the_document(path: Path) -> None:
    name = path.stem
    if name == "request_batch":
        schema = "BatchRequest"
    elif name == "response_batch":
        schema = "BatchResult"
    else:
        schema = "CallRequest" if name.startswith("request_") else "Call"
    body = json.loads(path.read_text())
    schema_validator(schema).validate(body)
    assert not list(undocumented_keys(body, SCHEMAS[schema]))


def test_the_package_ships_the_document() -> None:
    shipped = resources.files("audian_async").joinpath("openapi.json").read_bytes()
    assert shipped == openapi_bytes()
    assert openapi_document() == json.loads(shipped)
    # Each call gives a copy of its own: changing one changes no other.
    openapi_document()["info"]["title"] = "changed"
    assert openapi_document()["info"]["title"] == "Audian API"


# --- the document and the SDK's models --------------------------------------------------------


def test_the_document_names_the_models_fields() -> None:
    assert _properties("CallRequest") == _wire_names(au.CallRequest)
    assert _properties("Recording") == _wire_names(au.Recording)
    assert _properties("CallControl") == _wire_names(au.CallControl)
    assert _properties("Call") == _wire_names(au.Call)
    assert _properties("BatchResult") == _wire_names(au.BatchResult)
    assert _properties("QueuedCall") | _properties("FailedBatchItem") == _wire_names(au.BatchItem)
    assert set(SCHEMAS["CallRequest"]["required"]) == {"from", "to"}


def test_each_action_is_its_model() -> None:
    mapping = SCHEMAS["Action"]["discriminator"]["mapping"]
    assert set(mapping) == set(ACTION_NAMES.values())
    for cls, name in ACTION_NAMES.items():
        schema = resolve({"$ref": mapping[name]})
        assert schema["properties"]["action"] == {"const": name}
        assert set(schema["properties"]) - {"action"} == _wire_names(cls)
    # A route runs any action but another menu.
    routes = SCHEMAS["DtmfRoute"]["discriminator"]["mapping"]
    assert set(routes) == set(ACTION_NAMES.values()) - {"gather_dtmf"}
    assert _properties("DtmfRoute") >= {"digit", "action"}


def test_enums_defaults_and_limits_are_the_sdks() -> None:
    assert SCHEMAS["CallStatus"]["enum"] == [s.value for s in au.CallStatus]
    assert SCHEMAS["FailureReason"]["enum"] == [r.value for r in au.FailureReason]
    codes = [r.code for r in au.FailureReason]
    assert SCHEMAS["Call"]["properties"]["reason_code"]["enum"] == codes
    assert SCHEMAS["EventData"]["properties"]["reason_code"]["enum"] == codes
    assert SCHEMAS["EventType"]["enum"] == list(EVENT_TYPES)
    request = SCHEMAS["CallRequest"]["properties"]
    assert request["timeout"]["default"] == au.CallRequest(OWNED_CALLER_ID, "+1").ring_timeout
    assert (
        request["max_duration"]["default"] == au.CallRequest(OWNED_CALLER_ID, "+1").duration_limit
    )
    assert request["timeout"]["maximum"] == MAX_INT
    assert SCHEMAS["Recording"]["properties"]["enabled"]["default"] == au.Recording().enabled
    batch = SCHEMAS["BatchRequest"]["properties"]["calls"]
    assert batch["maxItems"] == MAX_BATCH
    assert f"at most {MAX_BODY // (1 << 20)} MiB" in DOCUMENT["info"]["description"]
    key = DOCUMENT["components"]["parameters"]["IdempotencyKey"]
    assert key["name"] == "Idempotency-Key"
    assert key["schema"]["maxLength"] == 255


@pytest.mark.anyio
async def test_the_client_sends_what_the_document_describes() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["AuthToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Auth-Token")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/batch"):
            return httpx.Response(
                200, json=json.loads((SAMPLES / "response_batch.json").read_text())
            )
        return httpx.Response(201, json={"call_id": "call_1", "status": "initiated"})

    requests = [
        au.CallRequest(
            from_=OWNED_CALLER_ID,
            to="+14155552672",
            timeout=45,
            tags={"campaign": "winter_sale"},
            recording=au.Recording(format="mp3"),
            call_control=au.CallControl(
                on_answered=[
                    au.PlayAudio(message="Press 1", voice="female", rate=1.5),
                    au.GatherDtmf(
                        max_digits=1,
                        routes=[
                            au.DtmfRoute("1", au.Transfer("+14155552673")),
                            au.DtmfRoute("2", au.Hangup()),
                        ],
                    ),
                ],
                on_no_answer=[au.RecordAudio(max_duration=30, beep_start=True)],
            ),
            scheduled_for=datetime(2030, 1, 15, 15, tzinfo=UTC),
        ),
        au.CallRequest(from_=OWNED_CALLER_ID, to="+14155552673"),
    ]
    mock = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with mock, au.AsyncAudian("sk_x", base_url="http://api.test/v2", http_client=mock) as c:
        await c.calls.create(requests[0])
        await c.calls.create_batch([*requests, requests[1]])
    for request, schema in zip(seen, ("CallRequest", "BatchRequest"), strict=True):
        assert request.headers["x-auth-token"] == "sk_x"
        assert 0 < len(request.headers["idempotency-key"]) <= 255
        assert request.headers["content-type"] == "application/json"
        schema_validator(schema).validate(json.loads(request.content))
    assert [r.url.path for r in seen] == ["/v2/calls", "/v2/calls/batch"]


# --- the document and the sandbox -------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Sandbox, httpx.Client]]:
    options = {"speed": 200, "seed": 11, "caller_ids": [OTHER_CALLER_ID], "max_concurrent": 10**5}
    with _serving(**options) as pair:
        yield pair


@pytest.fixture(scope="module")
def sandbox(served: tuple[Sandbox, httpx.Client]) -> Sandbox:
    """A fast sandbox shared by the module, owning one more caller ID."""
    return served[0]


@pytest.fixture(scope="module")
def http(served: tuple[Sandbox, httpx.Client]) -> httpx.Client:
    """A raw client of the module's sandbox, with its API key."""
    return served[1]


def test_the_sandbox_serves_the_document_without_an_api_key(sandbox: Sandbox) -> None:
    origin = sandbox.base_url.removesuffix("/v2")
    with httpx.Client(base_url=origin) as anonymous:
        served = anonymous.get("/openapi.json")
        conforms("/openapi.json", "get", served)
        assert served.headers["content-type"] == "application/json"
        assert served.content == openapi_bytes()
        assert anonymous.get("/openapi.json", headers={"X-Auth-Token": "wrong"}).status_code == 200
        assert anonymous.get("/v2/calls/call_x").status_code == 401  # the API still needs one
        refused = anonymous.post("/openapi.json", json={})
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET"
        schema_validator("Error").validate(refused.json())
    assert DOCUMENT["paths"]["/openapi.json"]["get"]["security"] == []
    assert DOCUMENT["paths"]["/v2/recordings/{recording_id}"]["get"]["security"] == []


# Request bodies from the document's own schemas. Phone numbers are drawn from real ones (the
# pattern admits mostly numbers that cannot exist, which the sandbox refuses, rightly), caller
# IDs from the account's own (test_refusals covers the others).
_REAL_NUMBERS = [OWNED_CALLER_ID, OTHER_CALLER_ID, *sorted(MAGIC_NUMBERS), "+442071838750"]
_CALLER_IDS = [OWNED_CALLER_ID, OTHER_CALLER_ID]


def _generator() -> schemathesis.BaseSchema:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    schemas["PhoneNumber"] = {"type": "string", "enum": _REAL_NUMBERS}
    schemas["CallRequest"]["properties"]["from"] = {"type": "string", "enum": _CALLER_IDS}
    return schemathesis.openapi.from_dict(document)


_GENERATOR = _generator()
_POSITIVE = GenerationMode.POSITIVE
_CREATE_BODIES = _GENERATOR["/v2/calls"]["POST"].as_strategy(generation_mode=_POSITIVE)
_BATCH_BODIES = _GENERATOR["/v2/calls/batch"]["POST"].as_strategy(generation_mode=_POSITIVE)
_SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


def _encoded(body: object) -> bytes:
    """The body as the sandbox will read it; rejects what a JSON encoder cannot write (a
    lone surrogate, an integer over 64 bits), which JSON Schema cannot rule out."""
    try:
        return dumps(body)
    except (TypeError, ValueError):
        hypothesis.reject()


def _refused_for_an_inexpressible_rule(reply: httpx.Response) -> bool:
    message = reply.json().get("message", "")
    return reply.status_code in (400, 403) and any(r in message for r in INEXPRESSIBLE_REFUSALS)


@hypothesis.settings(max_examples=100, **_SETTINGS)
@hypothesis.given(case=_CREATE_BODIES)
def test_generated_calls_the_sandbox_accepts_round_trip_through_the_sdk(
    http: httpx.Client, case: schemathesis.Case
) -> None:
    body = case.body
    hypothesis.assume(schema_validator("CallRequest").is_valid(body))
    reply = http.post("/v2/calls", content=_encoded(body))
    hypothesis.event(f"answered {reply.status_code}")  # --hypothesis-show-statistics
    if reply.status_code != 201:
        assert _refused_for_an_inexpressible_rule(reply), (body, reply.text)
        return
    conforms("/v2/calls", "post", reply)
    # The SDK reads the body as the sandbox did, and writes back what the document describes.
    request = validate_call_request(parse_call_request(body)).request
    wire = request_to_wire(request)
    schema_validator("CallRequest").validate(wire)
    assert validate_call_request(parse_call_request(wire)).request == request
    assert encode_call_body(request) == dumps(wire)
    call = decode_call(reply.content)
    assert (call.from_, call.to) == (request.from_, request.to)
    assert (call.timeout, call.max_duration) == (request.timeout, request.max_duration)
    assert (call.tags, call.custom_fields) == (request.tags or None, request.custom_fields or None)
    assert call.scheduled_for == request.scheduled_for


@hypothesis.settings(max_examples=25, **_SETTINGS)
@hypothesis.given(case=_BATCH_BODIES)
def test_generated_batches_are_judged_item_by_item_as_the_sdk_would(
    http: httpx.Client, case: schemathesis.Case
) -> None:
    body = case.body
    hypothesis.assume(schema_validator("BatchRequest").is_valid(body))
    reply = http.post("/v2/calls/batch", content=_encoded(body))
    conforms("/v2/calls/batch", "post", reply)
    batch = decode_batch(reply.content)
    hypothesis.event(f"{batch.queued} of {batch.total} queued")
    assert len(batch.calls) == batch.total == len(body["calls"])
    accepted = []
    for item, sent in zip(batch.calls, body["calls"], strict=True):
        if item.ok:
            accepted.append(validate_call_request(parse_call_request(sent)).request)
        else:
            assert any(r in (item.message or "") for r in INEXPRESSIBLE_REFUSALS), item
    assert batch.queued == len(accepted)
    if accepted:
        schema_validator("BatchRequest").validate(json.loads(encode_batch_body(accepted)))


# --- every kind of answer ---------------------------------------------------------------------

_CALL = "/v2/calls"
_BATCH = "/v2/calls/batch"
_GET = "/v2/calls/{call_id}"
_RECORDING = "/v2/recordings/{recording_id}"
_IVR = {
    "on_answered": [
        {"action": "play_audio", "message": "Press 1.", "voice": "female", "rate": 1.5},
        {
            "action": "gather_dtmf",
            "max_digits": 1,
            "timeout": 5,
            "finish_key": "#",
            "routes": [
                {"digit": "1", "action": "record_audio", "max_duration": 3, "beep_start": True},
                {"digit": "2", "action": "transfer", "destination": "+14155552673"},
                {"digit": "3", "action": "hangup"},
            ],
        },
    ],
    "on_no_answer": [{"action": "play_audio", "audio_url": "https://example.com/vm.mp3"}],
}


def _create(http: httpx.Client, body: object, **headers: str) -> httpx.Response:
    reply = http.post(_CALL, json=body, headers=headers)
    conforms(_CALL, "post", reply)
    return reply


def test_created_calls_and_their_lifecycle_answer_as_documented(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    ids = []
    for path in sorted(SAMPLES.glob("request_*.json")):
        if path.stem == "request_batch":
            continue
        reply = _create(http, json.loads(path.read_text()))
        assert reply.status_code == 201
        ids.append(reply.json()["call_id"])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = _create(
        http, {"from": OWNED_CALLER_ID, "to": "+14155552672", "scheduled_for": later}
    )
    assert scheduled.json()["status"] == "scheduled"
    for number in sorted(MAGIC_NUMBERS):
        reply = _create(
            http,
            {
                "from": OTHER_CALLER_ID,
                "to": number,
                "recording": {"format": "opus", "participant": "callee", "bitrate": 32},
                "call_control": _IVR,
                "tags": {"sandbox_digits": "1", "campaign": "contract"},
                "custom_fields": {"nested": {"list": [1, 2.5, None, True]}},
            },
        )
        ids.append(reply.json()["call_id"])
    # Calls caught in every live state: ringing (no answer for a long time), answered (a
    # long talk), scheduled.
    ringing = _create(http, {"from": OWNED_CALLER_ID, "to": "+14155550102", "timeout": 100_000})
    talking = _create(
        http,
        {"from": OWNED_CALLER_ID, "to": "+14155550100", "tags": {"sandbox_talk_seconds": 10**6}},
    )
    live = {
        ringing.json()["call_id"]: "ringing",
        talking.json()["call_id"]: "answered",
        scheduled.json()["call_id"]: "scheduled",
    }
    for call_id, status in live.items():
        _wait(lambda call_id=call_id, status=status: sandbox.call(call_id).status == status, status)
        reply = http.get(f"/v2/calls/{call_id}")
        conforms(_GET, "get", reply)
        assert reply.json()["status"] == status

    def finished(call_id: str) -> bool:
        # Recorded calls that completed have their recording ready too.
        snapshot = sandbox.call(call_id)
        if snapshot.status == "failed":
            return True
        return snapshot.status == "completed" and (call_id not in recorded or snapshot.recordings)

    recorded = set(ids[-len(MAGIC_NUMBERS) :])
    _wait(lambda: all(finished(i) for i in ids), "finished the calls")
    statuses = set()
    for call_id in ids:
        reply = http.get(f"/v2/calls/{call_id}")
        conforms(_GET, "get", reply)
        statuses.add((reply.json()["status"], reply.json().get("reason")))
        for url in sandbox.recording_urls(call_id):
            download = http.get(url, headers={"X-Auth-Token": ""})
            conforms(_RECORDING, "get", download)
            assert download.content.startswith(b"RIFF")
    assert {reason for _, reason in statuses} >= {None, *au.FailureReason}
    # Every webhook event of those calls is what the document's webhooks describe.
    event_schema = schema_validator("Event")
    for call_id in [*ids, *live]:
        for event in sandbox.call(call_id).events:
            envelope = json.loads(dumps(event.envelope()))
            event_schema.validate(envelope)
            assert not list(undocumented_keys(envelope, SCHEMAS["Event"])), envelope
            assert envelope["event"] in DOCUMENT["webhooks"]


def test_batches_answer_as_documented(http: httpx.Client) -> None:
    sample = json.loads((SAMPLES / "request_batch.json").read_text())
    reply = http.post(_BATCH, json=sample)
    conforms(_BATCH, "post", reply)
    assert reply.json()["queued"] == 3
    mixed = {
        "calls": [
            {"from": OWNED_CALLER_ID, "to": "+14155552672"},
            {"from": OWNED_CALLER_ID, "to": "+1415"},
            {"from": "+14155552699", "to": "+14155552672"},
            {"from": OWNED_CALLER_ID, "to": "+14155552672", "timeout": "9"},
            {"from": OWNED_CALLER_ID, "to": "x" * 100},
            None,
            [],
        ]
    }
    reply = http.post(_BATCH, json=mixed)
    conforms(_BATCH, "post", reply)
    errors = [item.get("error") for item in reply.json()["calls"]]
    assert errors == [
        None,
        "invalid_number",
        "unauthorized_caller_id",
        "invalid_request",
        "invalid_number",
        "invalid_request",
        "invalid_request",
    ]


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        (_CALL, b"{not json", "invalid_json"),
        (_CALL, b"", "invalid_json"),
        (_CALL, b'{"from": "+14155552671", "to": "+1415"}', "invalid_number"),
        (_CALL, b'{"from": "+14155552671", "to": "+14155552672", "timeout": 0}', "invalid_request"),
        (_CALL, b'{"to": "+14155552672"}', "invalid_request"),
        (_CALL, b"[]", "invalid_request"),
        (_BATCH, b"{not json", "invalid_json"),
        (_BATCH, b"{}", "invalid_request"),
        (_BATCH, b'{"calls": []}', "invalid_request"),
        (_BATCH, b'{"calls": [' + b",".join([b"{}"] * 1001) + b"]}", "invalid_request"),
    ],
)
def test_bad_requests_answer_as_documented(
    http: httpx.Client, path: str, body: bytes, error: str
) -> None:
    reply = http.post(path, content=body, headers={"content-type": "application/json"})
    conforms(path, "post", reply)
    assert (reply.status_code, reply.json()["error"]) == (400, error)


def test_refusals_answer_as_documented(sandbox: Sandbox, http: httpx.Client) -> None:
    call = {"from": OWNED_CALLER_ID, "to": "+14155552672"}
    origin = sandbox.base_url.removesuffix("/v2")
    with httpx.Client(base_url=origin) as anonymous:
        for headers in ({}, {"X-Auth-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
            for method, path, url in (
                ("post", _CALL, _CALL),
                ("post", _BATCH, _BATCH),
                ("get", _GET, "/v2/calls/call_x"),
            ):
                reply = anonymous.request(method, url, json={"calls": [call]}, headers=headers)
                conforms(path, method, reply)
                assert reply.status_code == 401
        bearer = anonymous.post(
            _CALL, json=call, headers={"Authorization": f"Bearer {sandbox.api_key}"}
        )
        conforms(_CALL, "post", bearer)
        assert bearer.status_code == 201
    forbidden = _create(http, {"from": "+14155552699", "to": "+14155552672"})
    assert forbidden.status_code == 403
    missing = http.get("/v2/calls/call_missing")
    conforms(_GET, "get", missing)
    assert missing.status_code == 404
    no_recording = http.get("/v2/recordings/rec_missing")
    conforms(_RECORDING, "get", no_recording)
    assert no_recording.status_code == 404
    for path in (_CALL, _BATCH):
        huge = http.post(path, content=b"[" + b" " * MAX_BODY + b"]")
        conforms(path, "post", huge)
        assert huge.status_code == 413
    # Idempotency: a replay, a reuse with other content, a key too long.
    for path, first, other in (
        (_CALL, call, {**call, "timeout": 45}),
        (_BATCH, {"calls": [call]}, {"calls": [call, call]}),
    ):
        key = f"contract-{path}"
        original = http.post(path, json=first, headers={"Idempotency-Key": key})
        replay = http.post(path, json=first, headers={"Idempotency-Key": key})
        conforms(path, "post", replay)
        assert replay.status_code in (200, 201)
        assert replay.content == original.content
        reused = http.post(path, json=other, headers={"Idempotency-Key": key})
        conforms(path, "post", reused)
        assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
        too_long = http.post(path, json=first, headers={"Idempotency-Key": "k" * 256})
        conforms(path, "post", too_long)
        assert too_long.status_code == 400


def test_limits_answer_as_documented() -> None:
    with _serving(max_concurrent=1, max_scheduled=0) as (_, http):
        long_call = {
            "from": OWNED_CALLER_ID,
            "to": "+14155552672",
            "tags": {"sandbox_talk_seconds": 10**6},
        }
        assert _create(http, long_call).status_code == 201
        limited = _create(http, {"from": OWNED_CALLER_ID, "to": "+14155552673"})
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        full = _create(
            http, {"from": OWNED_CALLER_ID, "to": "+14155552673", "scheduled_for": later}
        )
        assert full.status_code == 429
        assert "scheduled" in full.json()["message"]
        batch = http.post(_BATCH, json={"calls": [{"from": OWNED_CALLER_ID, "to": "+14155552674"}]})
        conforms(_BATCH, "post", batch)
        assert batch.json()["calls"][0]["error"] == "rate_limited"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_injected_faults_answer_as_documented(status: int) -> None:
    faults = Faults(error_rate={"*": 1.0}, error_status=status)
    with _serving(faults=faults) as (_, http):
        call = {"from": OWNED_CALLER_ID, "to": "+14155552672"}
        for method, path, url, body in (
            ("post", _CALL, _CALL, call),
            ("post", _BATCH, _BATCH, {"calls": [call]}),
            ("get", _GET, "/v2/calls/call_x", None),
            ("get", _RECORDING, "/v2/recordings/rec_x", None),
        ):
            reply = http.request(method, url, json=body)
            conforms(path, method, reply)
            assert reply.status_code == status
        # The document is no API operation: faults leave it alone.
        conforms("/openapi.json", "get", http.get("/openapi.json"))


def test_a_lost_reply_answers_as_documented() -> None:
    faults = Faults(no_reply_rate={"POST /v2/calls": 1.0}, no_reply_hold=0.05)
    with _serving(faults=faults) as (sb, http):
        reply = _create(http, {"from": OWNED_CALLER_ID, "to": "+14155552672"})
        assert (reply.status_code, reply.json()["error"]) == (504, "gateway_timeout")
        assert len(sb.calls) == 1  # acted on, as a 504 on a POST may have
