"""The converter produces exactly the reference's JSON and reads the reference's replies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest

import audian_async as au
from audian_async._convert import (
    APIResponseValidationError,
    _describe,
    decode_batch,
    decode_call,
    encode_batch_body,
    encode_call_body,
    format_datetime,
    parse_call_request,
    parse_datetime,
    request_to_wire,
)

SAMPLES = Path(__file__).parent.parent / "samples" / "reference"
FROM, TO = "+14155552671", "+14155552672"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# The reference's request examples, written as models.
REFERENCE_REQUESTS: dict[str, au.CallRequest] = {
    "basic": au.CallRequest(from_=FROM, to=TO),
    "timeout_tags": au.CallRequest(
        from_=FROM,
        to=TO,
        timeout=45,
        max_duration=600,
        tags={"campaign": "winter_sale", "agent_id": "agent_123", "priority": "high"},
        custom_fields={"customer_id": "cust_456", "order_id": "ord_789"},
    ),
    "call_control": au.CallRequest(
        from_=FROM,
        to=TO,
        call_control=au.CallControl(
            on_answered=[
                au.PlayAudio(
                    audio_url="https://example.com/greeting.mp3",
                    message="Hello! Thank you for calling.",
                )
            ],
            on_no_answer=[
                au.PlayAudio(
                    message="Sorry, no one is available right now. Please leave a message."
                )
            ],
        ),
    ),
    "ivr": au.CallRequest(
        from_=FROM,
        to=TO,
        call_control=au.CallControl(
            on_answered=[
                au.PlayAudio(
                    message="Welcome to support. Press 1 for billing, 2 for technical support, "
                    "or 3 for sales."
                ),
                au.GatherDtmf(
                    max_digits=1,
                    timeout=10,
                    routes=[
                        au.DtmfRoute("1", au.Transfer("+14155552673")),
                        au.DtmfRoute("2", au.Transfer("+14155552674")),
                        au.DtmfRoute("3", au.Transfer("+14155552675")),
                    ],
                ),
            ]
        ),
    ),
    "recording": au.CallRequest(
        from_=FROM, to=TO, recording=au.Recording(enabled=True, format="mp3", participant="all")
    ),
    "tts": au.CallRequest(
        from_=FROM,
        to=TO,
        call_control=au.CallControl(
            on_answered=[
                au.PlayAudio(
                    message="Hello! You have a $50 credit available. Would you like to use it?",
                    language="en-US",
                    voice="female",
                )
            ]
        ),
    ),
    "scheduled": au.CallRequest(
        from_=FROM,
        to=TO,
        scheduled_for=datetime(2024, 1, 15, 15, 0, tzinfo=UTC),
        call_control=au.CallControl(
            on_answered=[
                au.PlayAudio(message="This is your appointment reminder for tomorrow at 2 PM.")
            ]
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_REQUESTS))
def test_request_json_equals_reference_body(name: str) -> None:
    request = REFERENCE_REQUESTS[name]
    expected = sample(f"request_{name}.json")
    assert request_to_wire(request) == expected
    assert json.loads(encode_call_body(request)) == expected


@pytest.mark.parametrize("name", sorted(REFERENCE_REQUESTS))
def test_reference_bodies_parse_back_to_the_same_model(name: str) -> None:
    assert parse_call_request(sample(f"request_{name}.json")) == REFERENCE_REQUESTS[name]


def test_batch_body_equals_reference() -> None:
    requests = [
        au.CallRequest(from_=FROM, to=to, tags={"batch_id": "batch_123"})
        for to in ("+14155552672", "+14155552673", "+14155552674")
    ]
    assert json.loads(encode_batch_body(requests)) == sample("request_batch.json")


def test_no_nulls_and_no_empty_lists_on_the_wire() -> None:
    wire = request_to_wire(
        au.CallRequest(
            from_=FROM,
            to=TO,
            recording=au.Recording(),
            call_control=au.CallControl(on_answered=[au.Hangup(), au.GatherDtmf()]),
        )
    )
    assert wire == {
        "from": FROM,
        "to": TO,
        "recording": {"enabled": True},
        "call_control": {"on_answered": [{"action": "hangup"}, {"action": "gather_dtmf"}]},
    }


def test_datetimes_go_out_as_utc_z() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2024, 1, 15, 16, 0, tzinfo=paris)) == "2024-01-15T15:00:00Z"
    assert (
        format_datetime(datetime(2024, 1, 15, 15, 0, 0, 250000, tzinfo=UTC))
        == "2024-01-15T15:00:00.250000Z"
    )


def test_parse_datetime_is_tz_aware() -> None:
    assert parse_datetime("2024-01-15T10:30:00Z") == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    naive = parse_datetime("2024-01-15T10:30:00")
    assert naive.tzinfo is UTC
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_datetime("yesterday")


@pytest.mark.parametrize("naive", ["2030-01-01T10:00:00", "2030-01-01"])
def test_a_request_instant_must_carry_its_offset_a_reply_need_not(naive: str) -> None:
    with pytest.raises(au.ValidationError) as info:
        parse_call_request({"from": FROM, "to": TO, "scheduled_for": naive})
    assert info.value.field == "scheduled_for"
    assert info.value.message == (
        f"must include a UTC offset or Z, as in '2030-01-01T10:00:00Z'; got {naive!r}"
    )
    with pytest.raises(ValueError, match="UTC offset"):
        parse_datetime(naive, require_offset=True)
    # A reply is read as before: no offset is UTC.
    call = decode_call(b'{"call_id": "c", "scheduled_for": "%s"}' % naive.encode())
    assert call.scheduled_for == datetime.fromisoformat(naive).replace(tzinfo=UTC)


def test_a_request_instant_is_read_at_its_offset() -> None:
    wire = {"from": FROM, "to": TO, "scheduled_for": "2030-01-01T12:00:00+02:00"}
    assert parse_call_request(wire).scheduled_for == datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert parse_call_request({**wire, "scheduled_for": None}).scheduled_for is None


def test_decode_reference_responses() -> None:
    basic = decode_call(json.dumps(sample("response_basic.json")).encode())
    assert basic.call_id == "call_xyz789"
    assert basic.from_ == FROM
    assert basic.status is au.CallStatus.INITIATED
    assert basic.created_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert basic.duration is None

    tagged = decode_call(json.dumps(sample("response_timeout_tags.json")).encode())
    assert tagged.timeout == 45
    assert tagged.max_duration == 600
    assert tagged.tags == {"campaign": "winter_sale", "agent_id": "agent_123", "priority": "high"}
    assert tagged.custom_fields == {"customer_id": "cust_456", "order_id": "ord_789"}

    scheduled = decode_call(json.dumps(sample("response_scheduled.json")).encode())
    assert scheduled.status is au.CallStatus.SCHEDULED
    assert scheduled.scheduled_for == datetime(2024, 1, 15, 15, 0, tzinfo=UTC)

    status = decode_call(json.dumps(sample("response_status.json")).encode())
    assert status.status == "answered"
    assert status.duration == 45
    assert status.answered_at == datetime(2024, 1, 15, 10, 30, 5, tzinfo=UTC)

    batch = decode_batch(json.dumps(sample("response_batch.json")).encode())
    assert (batch.batch_id, batch.total, batch.queued, batch.failed) == ("batch_123abc", 3, 3, 0)
    assert [item.call_id for item in batch.calls] == ["call_1", "call_2", "call_3"]
    assert all(item.ok for item in batch.calls)


def test_batch_item_errors_are_kept() -> None:
    body = {
        "batch_id": "b",
        "total": 2,
        "queued": 1,
        "failed": 1,
        "calls": [
            {"call_id": "call_1", "status": "initiated"},
            {
                "status": "failed",
                "error": "invalid_number",
                "message": "The destination number format is invalid",
                "code": 400,
            },
        ],
    }
    batch = decode_batch(json.dumps(body).encode())
    assert batch.calls[0].ok
    assert not batch.calls[1].ok
    assert batch.calls[1].error == "invalid_number"
    assert batch.calls[1].code == 400


def test_unknown_fields_statuses_and_reasons_never_fail() -> None:
    call = decode_call(
        b'{"call_id":"c1","status":"transferring","reason":"carrier_blocked",'
        b'"reason_code":607,"brand_new":{"x":1}}'
    )
    assert call.status == "transferring"
    assert not isinstance(call.status, au.CallStatus)
    assert call.reason == "carrier_blocked"
    known = decode_call(b'{"call_id":"c1","status":"failed","reason":"busy","reason_code":486}')
    assert known.reason is au.FailureReason.BUSY
    assert au.FailureReason.BUSY.code == 486


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[1,2]", b'{"status":"initiated"}', b'{"call_id":5}']
)
def test_unreadable_success_bodies_raise_a_typed_error(body: bytes) -> None:
    with pytest.raises(APIResponseValidationError):
        decode_call(body)


@pytest.mark.parametrize(
    ("wire", "field", "fragment"),
    [
        ({"to": TO}, "from", "required"),
        ({"from": FROM}, "to", "required"),
        ({"from": FROM, "to": 14155552672}, "to", "string"),
        ({"from": FROM, "to": TO, "timeout": "45"}, "timeout", "integer"),
        ({"from": FROM, "to": TO, "timeout": True}, "timeout", "integer"),
        ({"from": FROM, "to": TO, "tags": ["a"]}, "tags", "object"),
        ({"from": FROM, "to": TO, "recording": {"enabled": "yes"}}, "recording.enabled", "bool"),
        (
            {"from": FROM, "to": TO, "call_control": {"on_answered": [{"action": "dance"}]}},
            "call_control.on_answered[0]",
            "unknown action 'dance'",
        ),
        (
            {"from": FROM, "to": TO, "call_control": {"on_answered": [{"message": "hi"}]}},
            "call_control.on_answered[0]",
            "unknown action",
        ),
        (
            {"from": FROM, "to": TO, "scheduled_for": "tomorrow"},
            "scheduled_for",
            "ISO 8601",
        ),
    ],
)
def test_parse_call_request_names_the_field(
    wire: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(au.ValidationError) as info:
        parse_call_request(wire)
    assert info.value.field == field
    assert fragment in info.value.message


def test_parse_call_request_rejects_non_objects() -> None:
    with pytest.raises(au.ValidationError):
        parse_call_request([1, 2])


_PLAY = {"action": "play_audio", "message": "hi"}


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (
            {"call_control": []},
            "call_control",
            "expected an object of action lists (on_answered, on_no_answer), got an array",
        ),
        (
            {"call_control": "hangup"},
            "call_control",
            "expected an object of action lists (on_answered, on_no_answer), got a string",
        ),
        (
            {"call_control": {"on_answered": {}}},
            "call_control.on_answered",
            "expected an array, got an object",
        ),
        (
            {"call_control": {"on_no_answer": None}},
            "call_control.on_no_answer",
            "expected an array, got null",
        ),
        (
            {"call_control": {"on_answered": [{**_PLAY, "voice": "robot"}]}},
            "call_control.on_answered[0].voice",
            "must be one of female, male; got 'robot'",
        ),
        (
            {"call_control": {"on_answered": [{"action": "gather_dtmf", "routes": "12"}]}},
            "call_control.on_answered[0].routes",
            "expected an array, got a string",
        ),
        (
            {
                "call_control": {
                    "on_answered": [{"action": "gather_dtmf", "routes": [{"action": "hangup"}]}]
                }
            },
            "call_control.on_answered[0].routes[0].digit",
            "is required",
        ),
        (
            {
                "call_control": {
                    "on_answered": [{"action": "gather_dtmf", "routes": [{"digit": 1}]}]
                }
            },
            "call_control.on_answered[0].routes[0].digit",
            "expected a string, got a number",
        ),
        (
            {"call_control": {"on_answered": [{"action": "transfer"}]}},
            "call_control.on_answered[0].destination",
            "is required",
        ),
        (
            {"recording": True},
            "recording",
            "expected an object (enabled, format, participant, bitrate), got a boolean",
        ),
        (
            {"recording": "mp3"},
            "recording",
            "expected an object (enabled, format, participant, bitrate), got a string",
        ),
        (
            {"recording": {"format": "flac"}},
            "recording.format",
            "must be one of mp3, opus, wav; got 'flac'",
        ),
        (
            {"recording": {"format": True}},
            "recording.format",
            "must be one of mp3, opus, wav; got a boolean",
        ),
        (
            {"recording": {"participant": 1}},
            "recording.participant",
            "must be one of all, callee, caller; got a number",
        ),
        ({"tags": "vip"}, "tags", "expected an object, got a string"),
        ({"max_duration": [600]}, "max_duration", "expected an integer, got an array"),
        ({"to": None}, "to", "expected a string, got null"),
    ],
)
def test_malformed_fields_say_what_is_expected_in_json_terms(
    extra: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(au.ValidationError) as info:
        parse_call_request({"from": FROM, "to": TO, **extra})
    assert (info.value.field, info.value.message) == (field, message)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"calls": {}}', "expected an array, got an object @ $.calls"),
        (b'{"calls": ["call_1"]}', "expected an object, got a string @ $.calls[0]"),
    ],
)
def test_malformed_replies_say_what_is_expected(body: bytes, detail: str) -> None:
    with pytest.raises(APIResponseValidationError, match=re.escape(detail)):
        decode_batch(body)


@pytest.mark.parametrize(
    ("type_", "message"),
    [
        (au.Recording | None, "expected an object"),
        (tuple[au.DtmfRoute, ...], "expected an array"),
        (Literal["wav", "mp3"] | None, "expected one of mp3, wav"),
        (int | None, "expected an integer"),
        (datetime, "expected an ISO 8601 datetime string"),
        (None, "invalid value"),
    ],
)
def test_errors_no_hook_words_still_say_what_is_expected(type_: Any, message: str) -> None:
    # cattrs' or Python's own wording ("x not in literal typing.Literal[...]") never reaches
    # the sender: the message comes from the field's type instead.
    assert _describe(RuntimeError("argument of type 'bool' is not iterable"), type_) == message
