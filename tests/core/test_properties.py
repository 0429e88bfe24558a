"""Property tests: number normalisation and model round trips through the wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

import audian_async as au
from audian_async._convert import encode_call_body, parse_call_request, request_to_wire
from audian_async._validation import normalize_number, validate_call_request

# Real, valid numbers from phonenumbers' own example metadata, one per region.
EXAMPLES = sorted(
    {
        phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        for region in phonenumbers.SUPPORTED_REGIONS
        if (n := phonenumbers.example_number(region)) is not None
    }
)
numbers = st.sampled_from(EXAMPLES)


@given(numbers)
def test_e164_is_a_fixed_point(number: str) -> None:
    assert normalize_number(number, "to") == number


@given(numbers)
def test_international_format_normalises_back(number: str) -> None:
    parsed = phonenumbers.parse(number)
    pretty = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    assert normalize_number(pretty, "to") == number


@given(numbers)
def test_national_format_with_its_region(number: str) -> None:
    parsed = phonenumbers.parse(number)
    region = phonenumbers.region_code_for_number(parsed)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert normalize_number(national, "to", region) == number


@given(st.text(max_size=30))
def test_arbitrary_text_is_a_number_or_a_validation_error(text: str) -> None:
    try:
        result = normalize_number(text, "to")
    except au.ValidationError as exc:
        assert exc.field == "to"  # noqa: PT017 - either outcome is fine, only its shape matters
    else:
        assert result.startswith("+")


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
positive = st.integers(1, 100_000)
dtmf_digit = st.sampled_from(list("0123456789*#"))
simple_actions = st.one_of(
    st.builds(
        au.PlayAudio,
        message=st.one_of(st.none(), text.filter(bool)),
        audio_url=st.just("https://example.com/a.mp3"),
        language=st.sampled_from([None, "en-US", "es-ES"]),
        voice=st.sampled_from([None, "male", "female"]),
        rate=st.one_of(st.none(), st.floats(0.5, 2.0)),
    ),
    st.builds(
        au.RecordAudio,
        max_duration=st.one_of(st.none(), positive),
        beep_start=st.one_of(st.none(), st.booleans()),
    ),
    st.builds(au.Transfer, destination=numbers, caller_id=st.one_of(st.none(), numbers)),
    st.just(au.Hangup()),
)
gather = st.builds(
    au.GatherDtmf,
    max_digits=st.one_of(st.none(), positive),
    timeout=st.one_of(st.none(), positive),
    finish_key=st.one_of(st.none(), dtmf_digit),
    routes=st.lists(
        st.builds(au.DtmfRoute, digit=dtmf_digit, action=simple_actions),
        max_size=4,
        unique_by=lambda r: r.digit,
    ),
)
actions = st.lists(st.one_of(simple_actions, gather), max_size=4)
requests = st.builds(
    au.CallRequest,
    from_=numbers,
    to=numbers,
    timeout=st.one_of(st.none(), positive),
    max_duration=st.one_of(st.none(), positive),
    tags=st.one_of(st.none(), st.dictionaries(text, json_values, max_size=3)),
    custom_fields=st.one_of(st.none(), st.dictionaries(text, json_values, max_size=3)),
    recording=st.one_of(
        st.none(),
        st.builds(
            au.Recording,
            enabled=st.booleans(),
            format=st.sampled_from([None, "wav", "mp3", "opus"]),
            participant=st.sampled_from([None, "all", "caller", "callee"]),
            bitrate=st.one_of(st.none(), positive),
        ),
    ),
    call_control=st.one_of(
        st.none(), st.builds(au.CallControl, on_answered=actions, on_no_answer=actions)
    ),
    scheduled_for=st.one_of(
        st.none(),
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ),
    ),
)


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _strip_tags(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("tags", "custom_fields")}


@settings(max_examples=200)
@given(requests)
def test_request_round_trips_through_json(request: au.CallRequest) -> None:
    body = encode_call_body(request)
    assert parse_call_request(json.loads(body)) == request


@settings(max_examples=200)
@given(requests)
def test_no_nulls_outside_user_data(request: au.CallRequest) -> None:
    # tags/custom_fields are the user's free-form JSON and may hold nulls on purpose.
    assert not _has_null(_strip_tags(request_to_wire(request)))


@settings(max_examples=100)
@given(requests)
def test_generated_requests_validate(request: au.CallRequest) -> None:
    # Everything the strategy builds obeys the rules, so validation must accept it unchanged.
    assert validate_call_request(request).request == request
