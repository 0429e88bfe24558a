"""Standard Webhooks signing: our sign/verify, edge cases, and the reference library both ways."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from audian_async import WebhookError
from audian_async.webhooks import decode_secret, sign, verify
from audian_async.webhooks._signing import signature_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key, another day!").decode()
NOW = 1_705_314_600
BODY = b'{"event":"call.failed","data":{"call_id":"call_1","reason":"busy"}}'


def headers(
    body: bytes = BODY, *, msg_id: str = "msg_1", ts: int = NOW, secret: str = SECRET
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def test_spec_test_vector() -> None:
    # The example from the Standard Webhooks specification.
    signature = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_valid_signature() -> None:
    assert verify(SECRET, headers(), BODY, now=NOW) is None


def test_str_body_and_bytes_secret() -> None:
    key = decode_secret(SECRET)
    h = headers()
    verify(key, h, BODY.decode(), now=NOW)
    assert sign(key, "msg_1", NOW, BODY.decode()) == h["webhook-signature"]


def test_header_forms() -> None:
    h = headers()
    verify(SECRET, {k.title(): v for k, v in h.items()}, BODY, now=NOW)  # Webhook-Id
    verify(SECRET, list(h.items()), BODY, now=NOW)  # (name, value) pairs
    verify(SECRET, [(k.encode(), v.encode()) for k, v in h.items()], BODY, now=NOW)  # ASGI
    verify(SECRET, {**h, "content-type": "application/json", "x-extra": "1"}, BODY, now=NOW)


def test_rotated_keys_any_matching_signature_passes() -> None:
    h = headers()
    theirs = sign(OTHER_SECRET, "msg_1", NOW, BODY)
    both = {**h, "webhook-signature": f"{theirs} {h['webhook-signature']}"}
    verify(SECRET, both, BODY, now=NOW)
    verify(OTHER_SECRET, both, BODY, now=NOW)
    odd = {**h, "webhook-signature": f"v1a,AAAA v2,xyz v1,!!! {h['webhook-signature']}"}
    verify(SECRET, odd, BODY, now=NOW)


# --- repeated header lines (RFC 9110 lets proxies split and join them) --------------------

BOGUS = "v1," + base64.b64encode(b"x" * 32).decode()


def valid_signature(msg_id: str = "msg_1", ts: int = NOW) -> str:
    return sign(SECRET, msg_id, ts, BODY)


def lines(*signatures: str, msg_id: str = "msg_1", ts: int = NOW) -> list[tuple[str, str]]:
    return [
        ("webhook-id", msg_id),
        ("webhook-timestamp", str(ts)),
        *(("webhook-signature", value) for value in signatures),
    ]


@pytest.mark.parametrize("valid_first", [True, False], ids=["valid-then-bogus", "bogus-then-valid"])
def test_repeated_signature_lines_any_valid_entry_passes(valid_first: bool) -> None:
    pair = [valid_signature(), BOGUS]
    h = lines(*(pair if valid_first else pair[::-1]))
    verify(SECRET, h, BODY, now=NOW)
    verify(SECRET, [(k.encode(), v.encode()) for k, v in h], BODY, now=NOW)  # ASGI
    verify(SECRET, [(k.title(), v) for k, v in h], BODY, now=NOW)  # Webhook-Signature
    # Frameworks' multi-value mappings: Starlette lists each line, httpx joins them with ", ".
    verify(SECRET, Headers(raw=[(k.encode(), v.encode()) for k, v in h]), BODY, now=NOW)
    verify(SECRET, httpx.Headers(h), BODY, now=NOW)


@pytest.mark.parametrize("separator", [" ", ", ", ",", " , "])
def test_signature_lines_joined_into_one_pass(separator: str) -> None:
    for values in (
        [valid_signature(), BOGUS],
        [BOGUS, "v1a,abc", valid_signature()],
        ["junk", "v1", valid_signature()],  # malformed entries do not hide the valid one
    ):
        verify(SECRET, lines(separator.join(values)), BODY, now=NOW)


@pytest.mark.parametrize("separator", [" ", ", ", ","])
def test_joined_bogus_signatures_still_fail(separator: str) -> None:
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(SECRET, lines(separator.join([BOGUS, "v1a,abc", BOGUS])), BODY, now=NOW)
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(SECRET, lines(BOGUS, BOGUS), BODY, now=NOW)


def test_repeated_id_and_timestamp_lines_that_agree_pass() -> None:
    h = [*lines(valid_signature()), ("webhook-id", "msg_1"), ("Webhook-Timestamp", str(NOW))]
    verify(SECRET, h, BODY, now=NOW)
    verify(SECRET, httpx.Headers(h), BODY, now=NOW)  # its items() would join them with ", "


@pytest.mark.parametrize(
    ("name", "other"),
    [("webhook-id", "msg_2"), ("webhook-timestamp", str(NOW + 1)), ("webhook-id", "")],
)
def test_repeated_id_or_timestamp_lines_that_disagree_fail(name: str, other: str) -> None:
    # Whichever line the signature was made with, the other is a forgery or a mix-up.
    for other_first in (False, True):
        h = lines(valid_signature())
        h.insert(0 if other_first else len(h), (name, other))
        with pytest.raises(WebhookError, match=f"repeated {name} headers disagree"):
            verify(SECRET, h, BODY, now=NOW)
        with pytest.raises(WebhookError, match="disagree"):
            signature_headers([(k.encode(), v.encode()) for k, v in h])


def test_signature_headers_picks_out_the_three_values() -> None:
    assert signature_headers(lines("v1,a", "v1,b")) == ("msg_1", str(NOW), "v1,a v1,b")
    assert signature_headers({"webhook-id": "m"}) == ("m", None, None)
    assert signature_headers([]) == (None, None, None)


@given(
    bogus=st.lists(
        st.sampled_from([BOGUS, "v1a,abc", "v2,xyz", "v1,!!", "v1,", "v1", "junk", ""]), max_size=5
    ),
    position=st.integers(min_value=0, max_value=5),
    separators=st.lists(st.sampled_from(["line", " ", ", ", ","]), min_size=5, max_size=5),
)
def test_a_valid_entry_anywhere_in_split_or_joined_lines_passes(
    bogus: list[str], position: int, separators: list[str]
) -> None:
    entries = list(bogus)
    entries.insert(min(position, len(entries)), valid_signature())
    values = [entries[0]]
    for entry, separator in zip(entries[1:], separators, strict=False):
        if separator == "line":
            values.append(entry)
        else:
            values[-1] += separator + entry
    verify(SECRET, lines(*values), BODY, now=NOW)
    without = [e for e in entries if e != valid_signature()]
    if without:
        with pytest.raises(WebhookError):
            verify(SECRET, lines(*without), BODY, now=NOW)


def test_wrong_key() -> None:
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(OTHER_SECRET, headers(), BODY, now=NOW)


@pytest.mark.parametrize(
    "tampered",
    [BODY + b" ", BODY.replace(b"busy", b"bust"), b"", BODY[:-1], BODY.upper()],
)
def test_tampered_body(tampered: bytes) -> None:
    with pytest.raises(WebhookError):
        verify(SECRET, headers(), tampered, now=NOW)


def test_tampered_id_or_timestamp() -> None:
    with pytest.raises(WebhookError):
        verify(SECRET, {**headers(), "webhook-id": "msg_2"}, BODY, now=NOW)
    with pytest.raises(WebhookError):
        verify(SECRET, {**headers(), "webhook-timestamp": str(NOW + 1)}, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(missing: str) -> None:
    h = headers()
    del h[missing]
    with pytest.raises(WebhookError, match="missing"):
        verify(SECRET, h, BODY, now=NOW)
    with pytest.raises(WebhookError, match="missing"):
        verify(SECRET, {**h, missing: ""}, BODY, now=NOW)


def test_stale_and_future_timestamps() -> None:
    h = headers()
    verify(SECRET, h, BODY, now=NOW + 300)  # exactly at the tolerance: accepted
    verify(SECRET, h, BODY, now=NOW - 300)
    with pytest.raises(WebhookError, match="too old"):
        verify(SECRET, h, BODY, now=NOW + 301)
    with pytest.raises(WebhookError, match="future"):
        verify(SECRET, h, BODY, now=NOW - 301)
    with pytest.raises(WebhookError, match="too old"):
        verify(SECRET, h, BODY, now=NOW + 11, tolerance=10)
    verify(SECRET, h, BODY, now=NOW + 1000, tolerance=1000)


def test_default_clock_is_now() -> None:
    ts = int(time.time())
    verify(SECRET, headers(ts=ts), BODY)
    with pytest.raises(WebhookError, match="too old"):
        verify(SECRET, headers(ts=ts - 3600), BODY)


@pytest.mark.parametrize(
    "raw", ["abc", "+1705314600", " 1705314600", "1705314600 ", "1_705_314_600", "1705314600.5",
            "-1", "١٧٠٥٣١٤٦٠٠", "9" * 40]
)  # fmt: skip
def test_malformed_timestamp(raw: str) -> None:
    h = {**headers(), "webhook-timestamp": raw}
    with pytest.raises(WebhookError, match="timestamp"):
        verify(SECRET, h, BODY, now=NOW)


@pytest.mark.parametrize(
    "signature",
    ["v1,not base64!", "v1,", "v1", ",", "garbage", "v1,AAAA", "v2," + "A" * 44, "v1 ,x"],
)
def test_bad_signature_values(signature: str) -> None:
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(SECRET, {**headers(), "webhook-signature": signature}, BODY, now=NOW)


@pytest.mark.parametrize(
    "reshape",
    [
        lambda v: v + " ",  # trailing space
        lambda v: "  " + v,  # leading spaces
        lambda v: v + " v1,AAAA",  # a bogus entry after it
        lambda v: "v1a,c29tZXRoaW5n " + v,  # an asymmetric entry first
    ],
)
def test_a_valid_signature_written_otherwise_still_passes(reshape: Callable[[str], str]) -> None:
    # The whole-value comparison is a shortcut for the usual header; it must not narrow
    # what is accepted.
    h = headers()
    value = reshape(h["webhook-signature"])
    assert value != h["webhook-signature"]
    verify(SECRET, {**h, "webhook-signature": value}, BODY, now=NOW)


def test_a_signature_of_the_right_length_but_wrong_mac_fails() -> None:
    good = headers()["webhook-signature"]
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    assert len(flipped) == len(good)
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(SECRET, {**headers(), "webhook-signature": flipped}, BODY, now=NOW)
    non_ascii = good[:-1] + "\u00e9"  # latin-1 decoded header bytes may be non-ASCII
    with pytest.raises(WebhookError, match="no webhook-signature matches"):
        verify(SECRET, {**headers(), "webhook-signature": non_ascii}, BODY, now=NOW)


def test_oversized_headers() -> None:
    h = headers()
    with pytest.raises(WebhookError, match="too long"):
        verify(SECRET, {**h, "webhook-signature": "v1,AAAA " * 1000}, BODY, now=NOW)
    with pytest.raises(WebhookError, match="too long"):
        verify(SECRET, headers(msg_id="m" * 2000), BODY, now=NOW)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not*base64", b""])
def test_bad_secrets(secret: str | bytes) -> None:
    with pytest.raises(WebhookError, match="secret"):
        decode_secret(secret)
    with pytest.raises(WebhookError, match="secret"):
        sign(secret, "msg_1", NOW, BODY)


def test_unprefixed_and_unpadded_secrets_decode_the_same() -> None:
    key = b"0123456789abcdefghij"  # 20 bytes: base64 ends in "="
    padded = base64.b64encode(key).decode()
    assert padded.endswith("=")
    assert decode_secret("whsec_" + padded) == key
    assert decode_secret(padded) == key
    assert decode_secret("whsec_" + padded.rstrip("=")) == key


# --- interoperability with the reference Python library -------------------------------------


def test_reference_library_signs_we_verify() -> None:
    wh = standardwebhooks.Webhook(SECRET)
    ts = int(time.time())
    signature = wh.sign("msg_ref", datetime.fromtimestamp(ts, UTC), BODY.decode())
    h = {"webhook-id": "msg_ref", "webhook-timestamp": str(ts), "webhook-signature": signature}
    verify(SECRET, h, BODY)
    with pytest.raises(WebhookError):
        verify(OTHER_SECRET, h, BODY)


def test_we_sign_reference_library_verifies() -> None:
    ts = int(time.time())
    h = headers(ts=ts)
    assert standardwebhooks.Webhook(SECRET).verify(BODY, h) == {
        "event": "call.failed",
        "data": {"call_id": "call_1", "reason": "busy"},
    }
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(OTHER_SECRET).verify(BODY, h)


def test_reference_library_rotation_both_ways() -> None:
    ts = int(time.time())
    ours = sign(SECRET, "msg_r", ts, BODY)
    theirs = standardwebhooks.Webhook(OTHER_SECRET).sign(
        "msg_r", datetime.fromtimestamp(ts, UTC), BODY.decode()
    )
    h = {
        "webhook-id": "msg_r",
        "webhook-timestamp": str(ts),
        "webhook-signature": f"{theirs} {ours}",
    }
    verify(SECRET, h, BODY)
    verify(OTHER_SECRET, h, BODY)
    standardwebhooks.Webhook(SECRET).verify(BODY, h)
    standardwebhooks.Webhook(OTHER_SECRET).verify(BODY, h)


@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
    ),
    body=st.text(max_size=300),
    offset=st.integers(min_value=-300, max_value=300),
)
def test_round_trip_with_reference_library(key: bytes, msg_id: str, body: str, offset: int) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    ts = NOW + offset
    ours = sign(secret, msg_id, ts, body)
    theirs = standardwebhooks.Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    assert ours == theirs
    h = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": ours}
    verify(secret, h, body.encode(), now=NOW)
    with pytest.raises(WebhookError):
        verify(secret, h, body.encode() + b"!", now=NOW)
