"""Every client-side rule rejects bad input with a ValidationError naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import audian_async as au
from audian_async._validation import normalize_number, validate_batch, validate_call_request

FROM, TO = "+14155552671", "+14155552672"


def call(**fields: Any) -> au.CallRequest:
    base: dict[str, Any] = {"from_": FROM, "to": TO}
    base.update(fields)
    return au.CallRequest(**base)


def answered(*actions: Any) -> au.CallControl:
    return au.CallControl(on_answered=list(actions))


def rejects(request: au.CallRequest, field: str, fragment: str = "", **kw: Any) -> None:
    with pytest.raises(au.ValidationError) as info:
        validate_call_request(request, **kw)
    assert info.value.field == field, info.value
    assert fragment in info.value.message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, au.AudianError)


def test_a_valid_request_passes_unchanged() -> None:
    request = call(timeout=45, max_duration=600, tags={"a": "b"})
    assert validate_call_request(request).request is request


@pytest.mark.parametrize("field", ["from_", "to"])
@pytest.mark.parametrize("bad", ["", "   ", "+1", "+1415555267", "hello", "+99912345678", "+" * 80])
def test_bad_numbers(field: str, bad: str) -> None:
    rejects(call(**{field: bad}), field.rstrip("_"))


def test_national_numbers_need_a_default_region() -> None:
    rejects(call(to="(415) 555-2672"), "to", "default_region")
    checked = validate_call_request(call(to="(415) 555-2672"), default_region="US").request
    assert checked.to == TO


def test_the_default_region_hint_is_kept_apart_from_the_rule() -> None:
    with pytest.raises(au.ValidationError) as info:
        validate_batch([call(), call(to="(415) 555-2672")])
    rule = "'(415) 555-2672' is not in E.164 format (+14155552671)"
    hint = "pass default_region= to accept national numbers"
    assert (info.value.field, info.value.hint) == ("calls[1].to", hint)  # kept through at()
    assert info.value.message == f"{rule}; {hint}"
    assert str(info.value) == f"calls[1].to: {rule}; {hint}"
    bare = info.value.without_hint()
    assert (bare.field, bare.message, bare.hint) == ("calls[1].to", rule, None)
    assert bare.without_hint() is bare


def test_numbers_are_normalised_to_e164() -> None:
    checked = validate_call_request(call(from_="+1 (415) 555-2671", to=" +1 415-555-2672 ")).request
    assert (checked.from_, checked.to) == (FROM, TO)


def test_non_string_number() -> None:
    rejects(call(to=14155552672), "to", "string")


@pytest.mark.parametrize("field", ["timeout", "max_duration"])
@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "30"])
def test_positive_integers(field: str, bad: Any) -> None:
    rejects(call(**{field: bad}), field)


def test_call_type_must_be_outbound() -> None:
    rejects(call(call_type="inbound"), "call_type", "outbound")
    assert validate_call_request(call(call_type="outbound")).request.call_type == "outbound"


def test_scheduled_for_must_be_tz_aware() -> None:
    rejects(call(scheduled_for=datetime(2030, 1, 1)), "scheduled_for", "timezone-aware")
    validate_call_request(call(scheduled_for=datetime(2030, 1, 1, tzinfo=UTC)))


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    ],
    ids=["after-9999-in-utc", "before-year-1-in-utc"],
)
def test_scheduled_for_must_have_a_utc_form(when: datetime) -> None:
    # Valid datetimes in their own zone, but the wire carries UTC, where they do not exist.
    rejects(call(scheduled_for=when), "scheduled_for", "outside the range UTC can express")


def test_scheduled_for_at_the_ends_of_utc_passes() -> None:
    for when in (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        validate_call_request(call(scheduled_for=when))


@pytest.mark.parametrize(
    ("recording", "field"),
    [
        (au.Recording(format="flac"), "recording.format"),  # type: ignore[arg-type]
        (au.Recording(participant="everyone"), "recording.participant"),  # type: ignore[arg-type]
        (au.Recording(bitrate=0), "recording.bitrate"),
        (au.Recording(bitrate=-64), "recording.bitrate"),
        (au.Recording(enabled="yes"), "recording.enabled"),  # type: ignore[arg-type]
    ],
)
def test_recording_rules(recording: au.Recording, field: str) -> None:
    rejects(call(recording=recording), field)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
@pytest.mark.parametrize("who", ["all", "caller", "callee"])
def test_recording_options_accepted(fmt: Any, who: Any) -> None:
    validate_call_request(call(recording=au.Recording(format=fmt, participant=who, bitrate=64)))


def test_play_audio_needs_message_or_url() -> None:
    rejects(call(call_control=answered(au.PlayAudio())), "call_control.on_answered[0]", "message")
    validate_call_request(call(call_control=answered(au.PlayAudio(audio_url="https://x/a.mp3"))))


@pytest.mark.parametrize("rate", [0.49, 2.01, -1, 0])
def test_rate_range(rate: float) -> None:
    control = answered(au.PlayAudio(message="hi"), au.PlayAudio(message="x", rate=rate))
    rejects(call(call_control=control), "call_control.on_answered[1].rate", "between 0.5 and 2.0")


@pytest.mark.parametrize("rate", [0.5, 1, 2.0])
def test_rate_bounds_are_inclusive(rate: float) -> None:
    validate_call_request(call(call_control=answered(au.PlayAudio(message="x", rate=rate))))


def test_voice() -> None:
    bad = answered(au.PlayAudio(message="x", voice="robot"))  # type: ignore[arg-type]
    rejects(call(call_control=bad), "call_control.on_answered[0].voice")


def test_dtmf_route_digit_path() -> None:
    control = answered(
        au.PlayAudio(message="menu"),
        au.GatherDtmf(routes=[au.DtmfRoute("A", au.Hangup())]),
    )
    rejects(call(call_control=control), "call_control.on_answered[1].routes[0].digit", "DTMF")


@pytest.mark.parametrize("key", ["", "x", "12", "##"])
def test_finish_key(key: str) -> None:
    control = answered(au.GatherDtmf(finish_key=key))
    rejects(call(call_control=control), "call_control.on_answered[0].finish_key")


@pytest.mark.parametrize("key", ["#", "*", "0", "9"])
def test_finish_key_accepted(key: str) -> None:
    validate_call_request(call(call_control=answered(au.GatherDtmf(finish_key=key))))


@pytest.mark.parametrize("field", ["max_digits", "timeout"])
def test_gather_positive_ints(field: str) -> None:
    control = answered(au.GatherDtmf(**{field: 0}))
    rejects(call(call_control=control), f"call_control.on_answered[0].{field}")


def test_duplicate_route_digits() -> None:
    routes = [au.DtmfRoute("1", au.Hangup()), au.DtmfRoute("1", au.Hangup())]
    control = answered(au.GatherDtmf(routes=routes))
    rejects(call(call_control=control), "call_control.on_answered[0].routes[1].digit", "twice")


def test_transfer_numbers_validated_and_normalised() -> None:
    bad = answered(au.GatherDtmf(routes=[au.DtmfRoute("1", au.Transfer("12"))]))
    rejects(call(call_control=bad), "call_control.on_answered[0].routes[0].destination")
    bad_cid = au.CallControl(on_no_answer=[au.Transfer(TO, caller_id="nope")])
    rejects(call(call_control=bad_cid), "call_control.on_no_answer[0].caller_id")
    national = answered(au.GatherDtmf(routes=[au.DtmfRoute("1", au.Transfer("415-555-2673"))]))
    checked = validate_call_request(call(call_control=national), default_region="US").request
    assert checked.call_control is not None
    gather = checked.call_control.on_answered[0]
    assert isinstance(gather, au.GatherDtmf)
    assert gather.routes[0].action == au.Transfer("+14155552673")


def test_record_audio_rules() -> None:
    rejects(
        call(call_control=answered(au.RecordAudio(max_duration=0))),
        "call_control.on_answered[0].max_duration",
    )
    validate_call_request(call(call_control=answered(au.RecordAudio(60, beep_start=True))))


def test_not_an_action() -> None:
    rejects(call(call_control=answered("play")), "call_control.on_answered[0]", "not a call")


def test_tags_must_be_string_keyed() -> None:
    rejects(call(tags={1: "a"}), "tags", "keys")


def test_batch_reports_the_failing_index() -> None:
    good = call()
    with pytest.raises(au.ValidationError) as info:
        validate_batch([good, good, call(to="nope")])
    assert info.value.field == "calls[2].to"
    with pytest.raises(au.ValidationError, match="at least one"):
        validate_batch([])
    with pytest.raises(au.ValidationError, match="at most"):
        validate_batch([good] * 1001)


def test_normalize_number_directly() -> None:
    assert normalize_number("+44 20 7183 8750", "x") == "+442071838750"
    with pytest.raises(au.ValidationError, match="region"):
        normalize_number("020 7183 8750", "x")
    assert normalize_number("020 7183 8750", "x", "GB") == "+442071838750"


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"tags": {"a": {"b": {"c": 2**64}}}}, "tags.a.b.c", "64 bits"),
        ({"custom_fields": {"x": [1, float("nan")]}}, "custom_fields.x[1]", "JSON number"),
        ({"custom_fields": {"x": float("inf")}}, "custom_fields.x", "JSON number"),
        ({"tags": {"when": object()}}, "tags.when", "not a JSON value"),
        ({"tags": {"k": {1: "v"}}}, "tags.k", "keys must be strings"),
        ({"timeout": 2**31}, "timeout", "at most"),
        ({"max_duration": 10**30}, "max_duration", "at most"),
    ],
)
def test_values_json_cannot_carry(fields: dict[str, Any], path: str, fragment: str) -> None:
    rejects(call(**fields), path, fragment)


def test_nesting_is_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(au.ValidationError, match="nested more than 32"):
        validate_call_request(call(custom_fields=deep))
    shallow: Any = "leaf"
    for _ in range(30):
        shallow = [shallow]
    validate_call_request(call(custom_fields={"ok": shallow}))


def test_a_checked_request_is_made_only_by_validation_and_not_checked_twice() -> None:
    checked = validate_call_request(call(to="(415) 555-2672"), default_region="US")
    assert isinstance(checked, au.CheckedCallRequest)
    assert validate_call_request(checked) is checked  # already checked: taken as it is
    with pytest.raises(TypeError):
        au.CheckedCallRequest(call())  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        checked.request = call()  # type: ignore[misc]
    tagged = checked.with_tags({"attempt": "2"})
    assert tagged.request.tags == {"attempt": "2"}
    assert checked.request.tags is None  # never changed in place
    with pytest.raises(au.ValidationError, match=r"tags\.bad"):
        checked.with_tags({"bad": float("nan")})
