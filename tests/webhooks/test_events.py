"""Event parsing: the reference's payloads, recorded samples, bad input and fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audian_async import CallStatus, FailureReason, WebhookError
from audian_async.webhooks import (
    CallAnswered,
    CallCompleted,
    CallFailed,
    CallInitiated,
    CallRinging,
    Event,
    RecordingCompleted,
    UnknownEvent,
    parse_event,
)

SAMPLES = Path(__file__).parent.parent / "samples" / "webhooks"

# Written out by hand (not derived from the package) so a wrong table there is caught here.
EXPECTED_CLASS: dict[str, type[Event]] = {
    "call.initiated": CallInitiated,
    "call.ringing": CallRinging,
    "call.answered": CallAnswered,
    "call.completed": CallCompleted,
    "call.failed": CallFailed,
    "recording.completed": RecordingCompleted,
}


# --- the reference's own examples ---------------------------------------------------------


def test_reference_call_initiated() -> None:
    body = b"""{
      "id": "evt_1234567890abcdef",
      "timestamp": "2024-01-15T10:30:00Z",
      "event": "call.initiated",
      "data": {"call_id": "call_xyz789", "status": "initiated"}
    }"""
    event = parse_event(body)
    assert type(event) is CallInitiated
    assert event.id == "evt_1234567890abcdef"
    assert event.type == "call.initiated"
    assert event.timestamp == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert event.call_id == "call_xyz789"
    assert event.status is CallStatus.INITIATED


def test_reference_call_failed_without_id_or_timestamp() -> None:
    body = (
        '{"event": "call.failed", '
        '"data": {"call_id": "call_xyz789", "reason": "no_answer", "reason_code": 408}}'
    )
    event = parse_event(body)
    assert type(event) is CallFailed
    assert event.id is None
    assert event.timestamp is None
    assert event.status is None
    assert event.call_id == "call_xyz789"
    assert event.reason is FailureReason.NO_ANSWER
    assert event.reason_code == 408


@pytest.mark.parametrize(
    ("reason", "code"),
    [("no_answer", 408), ("declined", 603), ("invalid_number", 404), ("busy", 486),
     ("network_error", 503)],
)  # fmt: skip
def test_reference_failure_reasons(reason: str, code: int) -> None:
    event = parse_event(
        {"event": "call.failed", "data": {"call_id": "c", "reason": reason, "reason_code": code}}
    )
    assert isinstance(event, CallFailed)
    assert event.reason == FailureReason(reason)
    assert isinstance(event.reason, FailureReason)
    assert event.reason_code == code == FailureReason(reason).code


@pytest.mark.parametrize("event_type", list(EXPECTED_CLASS))
def test_each_reference_event_type_parses_to_its_class(event_type: str) -> None:
    event = parse_event({"event": event_type, "data": {"call_id": "call_1"}})
    assert type(event) is EXPECTED_CLASS[event_type]
    assert event.type == event_type
    assert event.call_id == "call_1"


# --- recorded samples ---------------------------------------------------------------------


def _samples() -> list[Path]:
    paths = sorted(SAMPLES.glob("*.json"))
    assert len(paths) >= 10
    return paths


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.stem)
def test_every_sample_parses_to_its_class(path: Path) -> None:
    raw = path.read_bytes()
    payload = json.loads(raw)
    event = parse_event(raw)
    expected = EXPECTED_CLASS.get(payload["event"], UnknownEvent)
    assert type(event) is expected
    assert event.type == payload["event"]
    assert event.id == payload.get("id")
    assert event.call_id == payload["data"].get("call_id")
    assert dict(event.data) == payload["data"]
    # Every recorded timestamp is ISO 8601 with a zone; a sample without one has None.
    if "timestamp" in payload:
        assert event.timestamp == datetime.fromisoformat(payload["timestamp"])
        assert event.timestamp.utcoffset() is not None
    else:
        assert event.timestamp is None
    # The same payload given as str and as a mapping gives the same event.
    assert parse_event(raw.decode()) == event
    assert parse_event(payload) == event


def _sample(name: str) -> Event:
    return parse_event((SAMPLES / f"{name}.json").read_bytes())


def test_sample_fields() -> None:
    completed = _sample("call_completed")
    assert completed.timestamp == datetime(2024, 1, 15, 10, 30, 50, tzinfo=UTC)
    assert completed.status is CallStatus.COMPLETED
    assert completed.data["duration"] == 45

    answered = _sample("call_answered")
    assert answered.timestamp == datetime(2024, 1, 15, 10, 30, 5, 250000, tzinfo=UTC)
    assert answered.data["tags"] == {"campaign": "winter_sale", "agent_id": "agent_123"}

    busy = _sample("call_failed_busy")
    assert isinstance(busy, CallFailed)
    assert busy.reason is FailureReason.BUSY
    assert busy.reason_code == 486
    assert busy.status is CallStatus.FAILED


def test_unknown_reason_and_status_are_kept_as_strings() -> None:
    failed = _sample("call_failed_unknown_reason")
    assert isinstance(failed, CallFailed)
    assert failed.reason == "carrier_blocked"
    assert not isinstance(failed.reason, FailureReason)
    assert failed.reason_code == 607
    assert failed.data["carrier"] == {"name": "Example Telecom"}

    answered = _sample("call_answered_unknown_status")
    assert type(answered) is CallAnswered
    assert answered.status == "machine_detected"
    assert not isinstance(answered.status, CallStatus)


@pytest.mark.parametrize(
    ("name", "url", "fmt", "duration"),
    [
        ("recording_completed", "https://recordings.example.com/rec_abc123.mp3", "mp3", 45),
        ("recording_completed_download_url", "https://recordings.example.com/rec_def456.wav",
         "wav", 12.5),
        ("recording_completed_url", "https://recordings.example.com/rec_ghi789.opus", "opus",
         None),
    ],
)  # fmt: skip
def test_recording_url_keys(name: str, url: str, fmt: str, duration: float | None) -> None:
    event = _sample(name)
    assert isinstance(event, RecordingCompleted)
    assert event.recording_url == url
    assert event.format == fmt
    assert event.duration == duration
    assert event.recording_id is not None
    assert event.recording_id.startswith("rec_")


def test_recording_url_prefers_recording_url_key() -> None:
    event = parse_event(
        {
            "event": "recording.completed",
            "data": {
                "url": "https://a/3",
                "download_url": "https://a/2",
                "recording_url": "https://a/1",
            },
        }
    )
    assert isinstance(event, RecordingCompleted)
    assert event.recording_url == "https://a/1"


def test_unknown_event_keeps_the_raw_payload() -> None:
    event = _sample("call_transferred_unknown_type")
    assert isinstance(event, UnknownEvent)
    assert event.type == "call.transferred"
    assert event.status == "transferred"
    assert event.payload["data"]["destination"] == "+14155552673"
    assert event.payload["event"] == "call.transferred"


def test_unknown_event_tolerates_odd_common_fields() -> None:
    event = parse_event({"event": "sms.sent", "data": {"call_id": 12, "status": ["x"]}})
    assert isinstance(event, UnknownEvent)
    assert event.call_id is None
    assert event.status is None
    assert event.data["call_id"] == 12


def test_timestamps() -> None:
    def ts(value: object) -> datetime | None:
        return parse_event({"event": "call.ringing", "data": {}, "timestamp": value}).timestamp

    assert ts("2024-01-15T10:30:00Z") == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    offset = ts("2024-01-15T12:30:00+02:00")
    assert offset == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert offset is not None
    assert offset.utcoffset() == timedelta(hours=2)
    assert ts("2024-01-15T10:30:00") == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)  # naive: UTC
    assert ts(1705314600) == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)  # Unix seconds
    assert ts(None) is None


def test_data_is_read_only_and_detached_from_the_input() -> None:
    payload: dict[str, Any] = {"event": "call.ringing", "data": {"call_id": "c", "extra": 1}}
    event = parse_event(payload)
    with pytest.raises(TypeError):
        event.data["extra"] = 2  # type: ignore[index]
    payload["data"]["extra"] = 3
    assert event.data["extra"] == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.call_id = "other"  # type: ignore[misc]


def test_events_can_be_built_directly() -> None:
    event = CallFailed(call_id="c1", reason="busy", status="failed", data={"to": "+1"})
    assert event.type == "call.failed"
    assert event.reason is FailureReason.BUSY
    assert event.status is CallStatus.FAILED
    assert event.data["to"] == "+1"
    assert CallFailed(reason="new_reason").reason == "new_reason"
    assert UnknownEvent(type="x.y").type == "x.y"
    assert hash(event) == hash(CallFailed(call_id="c1", reason="busy", status="failed"))
    assert "to" not in repr(event)  # raw data stays out of reprs


@pytest.mark.parametrize("status", [*CallStatus, "machine_detected"])
@pytest.mark.parametrize("reason", [*FailureReason, "carrier_blocked"])
def test_parsed_and_built_events_convert_status_and_reason_alike(status: str, reason: str) -> None:
    data = {"call_id": "c1", "status": str(status), "reason": str(reason)}
    parsed = parse_event({"event": "call.failed", "data": data})
    built = CallFailed(call_id="c1", status=str(status), reason=str(reason), data=data)
    assert parsed == built
    for event in (parsed, built):
        assert isinstance(event, CallFailed)
        assert type(event.status) is (CallStatus if isinstance(status, CallStatus) else str)
        assert type(event.reason) is (FailureReason if isinstance(reason, FailureReason) else str)
    unknown = parse_event({"event": "x.y", "data": data})
    assert unknown.status == status
    assert type(unknown.status) is type(parsed.status)


# --- bad input: WebhookError, and nothing else --------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"call.failed"',
        b"null",
        b"{}",
        b'{"data": {}}',
        b'{"event": 1, "data": {}}',
        b'{"event": null, "data": {}}',
        b'{"event": "call.failed"}',
        b'{"event": "call.failed", "data": null}',
        b'{"event": "call.failed", "data": []}',
        b'{"event": "call.failed", "data": "x"}',
        b"\xff\xfe{}",
        b'{"event": "call.failed", "data": {}',
    ],
)
def test_bad_bodies_raise_webhook_error(body: bytes) -> None:
    with pytest.raises(WebhookError):
        parse_event(body)


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"id": 5}, "id", "5"),
        ({"id": {"x": 1}}, "id", None),
        ({"timestamp": "yesterday"}, "timestamp", None),
        ({"timestamp": True}, "timestamp", None),
        ({"timestamp": 1e300}, "timestamp", None),
        ({"data": {"call_id": 5}}, "call_id", "5"),
        ({"data": {"call_id": [5]}}, "call_id", None),
        ({"data": {"status": 5}}, "status", None),
        ({"data": {"reason": 486}}, "reason", None),
        ({"data": {"reason_code": "486"}}, "reason_code", 486),
        ({"data": {"reason_code": 486.5}}, "reason_code", None),
        ({"data": {"reason_code": True}}, "reason_code", None),
        # str.isdigit() holds for these, yet int() refuses them: still None, never a 500.
        ({"data": {"reason_code": "\u00b2"}}, "reason_code", None),  # superscript two
        ({"data": {"reason_code": "9" * 5000}}, "reason_code", None),  # over int()'s limit
        ({"data": {"reason_code": "\u0664\u0668\u0666"}}, "reason_code", None),  # Arabic-Indic
        ({"data": {"reason_code": " 486 "}}, "reason_code", 486),
        ({"event": "recording.completed", "data": {"duration": "45"}}, "duration", 45.0),
        ({"event": "recording.completed", "data": {"duration": "nan"}}, "duration", None),
        ({"event": "recording.completed", "data": {"url": 5}}, "recording_url", "5"),
        (
            {"event": "recording.completed", "data": {"url": None, "download_url": "https://d"}},
            "recording_url",
            "https://d",
        ),
    ],
)
def test_odd_field_types_are_read_leniently(body: dict[str, Any], field: str, value: Any) -> None:
    # A signed delivery is never refused over one odd field: the event still reaches its
    # handlers, the field is coerced losslessly or None, and the raw value stays in data.
    payload: dict[str, Any] = {"event": "call.failed", "data": {}, **body}
    event = parse_event(json.dumps(payload).encode())
    assert type(event) is EXPECTED_CLASS[payload["event"]]
    assert getattr(event, field) == value
    assert dict(event.data) == payload["data"]


def test_integer_id_too_long_for_str_is_none() -> None:
    # A decoded mapping may hold an int Python refuses to turn into a str (over 4300 digits).
    huge = 10**5000
    event = parse_event({"event": "call.failed", "id": huge, "data": {"call_id": huge}})
    assert isinstance(event, CallFailed)
    assert event.id is None
    assert event.call_id is None
    assert event.data["call_id"] == huge


def test_int_valued_float_is_an_integer() -> None:
    event = parse_event({"event": "call.failed", "data": {"reason_code": 486.0}})
    assert isinstance(event, CallFailed)
    assert event.reason_code == 486
    assert type(event.reason_code) is int


@pytest.mark.parametrize("value", [None, 42, 4.2, object(), ["event"]])
def test_non_body_input_raises_webhook_error(value: object) -> None:
    with pytest.raises(WebhookError):
        parse_event(value)  # type: ignore[arg-type]


def test_deep_nesting_is_a_webhook_error() -> None:
    deep = b'{"event": "call.failed", "data": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    with pytest.raises(WebhookError):
        parse_event(deep, max_size=len(deep))


def test_huge_body_is_rejected_before_decoding() -> None:
    body = b'{"event": "call.failed", "data": {"pad": "' + b"x" * (1024 * 1024) + b'"}}'
    with pytest.raises(WebhookError, match="larger than"):
        parse_event(body)
    assert isinstance(parse_event(body, max_size=len(body)), CallFailed)


def test_bytearray_and_memoryview() -> None:
    raw = b'{"event": "call.ringing", "data": {"call_id": "c"}}'
    assert parse_event(bytearray(raw)) == parse_event(memoryview(raw)) == parse_event(raw)


def test_timestamp_with_other_offset_is_aware() -> None:
    event = parse_event(
        {"event": "call.ringing", "data": {}, "timestamp": "2024-01-15T10:30:00-05:00"}
    )
    assert event.timestamp == datetime(2024, 1, 15, 10, 30, tzinfo=timezone(timedelta(hours=-5)))


# --- fuzzing ------------------------------------------------------------------------------

# Strings that look numeric to some of Python's checks but not to int()/float(): digits of
# other scripts, superscripts, and digit runs around int()'s 4300-digit conversion limit.
_numeric_text = (
    st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=6)
    | st.integers(min_value=4290, max_value=4400).map(lambda n: "9" * n)
    | st.integers().map(str)
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | _numeric_text
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_data_keys = st.sampled_from(
    ["call_id", "status", "reason", "reason_code", "recording_id", "recording_url",
     "download_url", "url", "format", "duration"]
)  # fmt: skip
_timestamps = st.sampled_from(["2024-01-15T10:30:00Z", "2024-13-45T99:00:00Z", "", "Z"]) | _json
_envelopes = st.fixed_dictionaries(
    {
        "event": st.sampled_from([*EXPECTED_CLASS, "call.other", ""]) | _json,
        "data": st.one_of(
            st.dictionaries(_data_keys | st.text(max_size=6), _json, max_size=6),
            st.dictionaries(_data_keys, _scalars, max_size=6),  # known keys, odd values
            _json,
        ),
    },
    optional={"id": st.text(max_size=12) | _json, "timestamp": _timestamps},
)
# Only a decoded mapping can hold an int too long for json.dumps (or str()) to write out.
_huge_ints = st.integers(min_value=4300, max_value=4400).map(lambda n: 10**n)
_mapping_envelopes = st.fixed_dictionaries(
    {
        "event": st.sampled_from(list(EXPECTED_CLASS)),
        "data": st.dictionaries(_data_keys, _scalars | _huge_ints, max_size=6),
    },
    optional={"id": _scalars | _huge_ints, "timestamp": _scalars | _huge_ints},
)
_bodies = (
    st.binary(max_size=200)
    | st.text(max_size=200)
    | _json.map(json.dumps)
    | _envelopes.map(json.dumps)
    | _envelopes.map(lambda e: json.dumps(e).encode())
    | _envelopes
    | _mapping_envelopes
)


def _check(body: Any) -> None:
    try:
        event = parse_event(body)
    except WebhookError:
        return
    assert isinstance(event, Event)
    payload = json.loads(body) if isinstance(body, str | bytes) else body
    expected = EXPECTED_CLASS.get(payload["event"], UnknownEvent)
    assert type(event) is expected
    assert event.type == payload["event"]
    assert event.timestamp is None or event.timestamp.tzinfo is not None


@given(_bodies)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_event_or_webhook_error(body: Any) -> None:
    _check(body)


_field_values = _numeric_text | _huge_ints | _scalars


_known_keys = ["call_id", "status", "reason", "reason_code", "recording_id", "recording_url",
               "download_url", "url", "format", "duration"]  # fmt: skip


@given(
    st.fixed_dictionaries(dict.fromkeys(_known_keys, _field_values)),
    st.fixed_dictionaries({}, optional={"id": _field_values, "timestamp": _field_values}),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_known_fields_with_odd_values_never_fail(
    data: dict[str, Any], extra: dict[str, Any]
) -> None:
    # A well-formed envelope always parses, whatever its known fields hold: one odd value
    # must never turn a signed delivery into an error. Every field, under every event type.
    for event_type in [*EXPECTED_CLASS, "call.other"]:
        event = parse_event({"event": event_type, "data": data, **extra})
        assert type(event) is EXPECTED_CLASS.get(event_type, UnknownEvent)
        assert event.data == data


@pytest.mark.slow
@given(_bodies)
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_event_or_webhook_error_long(body: Any) -> None:
    _check(body)
