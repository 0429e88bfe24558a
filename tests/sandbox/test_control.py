"""The call-control planner, without an event loop: what the callee hears, presses, says."""

from __future__ import annotations

import audian_async as au
from audian_async.sandbox._control import (
    DTMF_TIMEOUT,
    KEYPRESS_SECONDS,
    TRANSFER_SECONDS,
    plan,
    scripted_digits,
    talk_seconds,
)

OWNED = "+14155552671"
MENU = au.GatherDtmf(
    max_digits=1,
    routes=[
        au.DtmfRoute(digit="1", action=au.Transfer("+14155552673")),
        au.DtmfRoute(digit="2", action=au.Hangup()),
    ],
)


def test_a_menu_routes_the_pressed_key() -> None:
    hello = au.PlayAudio(message="x" * 30)  # 2 s at 15 characters a second
    transferred = plan([hello, MENU], digits="1", talk=5.0)
    assert transferred.log == ("play_audio", "gather_dtmf:1", "transfer:+14155552673")
    assert (transferred.end, transferred.ended_by) == (
        2 + KEYPRESS_SECONDS + TRANSFER_SECONDS,
        "transfer",
    )
    hung_up = plan([MENU, hello], digits="2", talk=5.0)
    assert (hung_up.end, hung_up.ended_by, hung_up.log) == (
        1.0,
        "hangup",
        ("gather_dtmf:2", "hangup"),
    )


def test_keys_are_consumed_across_menus_and_silence_times_out() -> None:
    result = plan([MENU, au.GatherDtmf(max_digits=2), MENU], digits="342", talk=0.0)
    assert result.log == ("gather_dtmf:3", "gather_dtmf:42", "gather_dtmf:timeout")
    assert result.digits == ""
    assert result.end == 3 * KEYPRESS_SECONDS + DTMF_TIMEOUT
    assert result.ended_by == "callee"


def test_recordings_last_while_the_callee_talks_and_the_limit_stops_the_walk() -> None:
    record = au.RecordAudio(max_duration=60)
    result = plan(
        [record, au.PlayAudio(audio_url="https://example.com/a.mp3")], digits="", talk=4.0
    )
    assert result.spans == ((0.0, 4.0, None),)
    assert result.end == 4.0 + 3.0 + 4.0
    limited = plan([record, record], digits="", talk=4.0, limit=3.0)
    assert limited.spans == ((0.0, 4.0, None),)  # the second starts past the limit
    assert limited.log == ("record_audio",)


def test_tags_script_the_callee() -> None:
    plain = au.CallRequest(from_=OWNED, to="+14155552672")
    assert (scripted_digits(plain), talk_seconds(plain)) == ("", 5.0)
    assert scripted_digits(au.CallRequest(from_=OWNED, to="+14155550107")) == "1"
    tagged = au.CallRequest(
        from_=OWNED, to="+14155550107", tags={"sandbox_digits": "9", "sandbox_talk_seconds": 2}
    )
    assert (scripted_digits(tagged), talk_seconds(tagged)) == ("9", 2.0)
    odd = au.CallRequest(from_=OWNED, to="+14155552672", tags={"sandbox_talk_seconds": True})
    assert talk_seconds(odd) == 5.0
