"""Webhook signatures per the Standard Webhooks scheme: pure functions over headers and bytes.

A delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``f"{id}.{timestamp}.{body}"``, keyed with the base64 part of a ``whsec_...`` secret. Several
entries let a sender rotate keys. Verification works on the raw body bytes, never on
re-serialised JSON, compares in constant time and rejects stale and future timestamps.

A proxy may split a field into several lines or join repeated lines into one with commas
(RFC 9110, section 5.3): repeated ``webhook-signature`` lines count as one space-separated
list, in either form, while repeated ``webhook-id`` or ``webhook-timestamp`` lines must agree,
since a signature covers one of each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Protocol

from .._errors import WebhookError

__all__ = [
    "DEFAULT_TOLERANCE",
    "KeyedMac",
    "decode_secret",
    "keyed_hmac",
    "sign",
    "signature_headers",
    "verify",
    "verify_parts",
]

DEFAULT_TOLERANCE = 300
"""Seconds a delivery's timestamp may differ from our clock, either way."""
_PREFIX = "whsec_"
_MAX_SIGNATURE_HEADER = 4096
# Ids end up as keys of the dedupe store: bound them so a sender cannot bloat it.
_MAX_ID = 1024
# Unix seconds fit in 11 digits until the year 5138; anything longer is garbage.
_MAX_TIMESTAMP_DIGITS = 15

HeaderValue = str | bytes
Headers = Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[HeaderValue, HeaderValue]]
"""A mapping of header names to values, or ``(name, value)`` pairs (str or ASGI bytes)."""


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (raw bytes are used as they are).

    The ``whsec_`` prefix is optional and missing base64 padding is tolerated, as the
    reference Standard Webhooks libraries do.
    """
    if isinstance(secret, bytes):
        if not secret:
            raise WebhookError("the webhook secret is empty")
        return secret
    if not isinstance(secret, str) or not secret:
        raise WebhookError("the webhook secret is empty")
    encoded = secret.removeprefix(_PREFIX)
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("the webhook secret is not valid base64 after 'whsec_'") from None
    if not key:
        raise WebhookError("the webhook secret is empty")
    return key


class KeyedMac(Protocol):
    """An HMAC state already keyed (what :func:`keyed_hmac` returns)."""

    def copy(self) -> KeyedMac: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def keyed_hmac(key: bytes) -> KeyedMac:
    """An HMAC-SHA256 state already keyed with ``key``, for :func:`verify_parts`.

    Copying it per delivery skips the key schedule that a fresh HMAC repeats every time.
    """
    mac = hmac.new(key, digestmod=hashlib.sha256)
    # The OpenSSL state inside, when there is one: its copy() is one C call, where the
    # wrapper's copies two states in Python (about 2 us a delivery).
    inner: KeyedMac = getattr(mac, "_hmac", None) or mac
    return inner


def _signature(key: bytes | KeyedMac, msg_id: str, timestamp: str, body: bytes) -> bytes:
    prefix = f"{msg_id}.{timestamp}.".encode()
    if isinstance(key, bytes):
        return hmac.digest(key, prefix + body, "sha256")
    mac = key.copy()
    mac.update(prefix)
    mac.update(body)
    return mac.digest()


def _as_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return body if isinstance(body, bytes) else bytes(body)


def sign(secret: str | bytes, msg_id: str, timestamp: int | float, body: bytes | str) -> str:
    """The ``webhook-signature`` header value (``"v1,<base64>"``) for one delivery.

    ``timestamp`` is in Unix seconds (fractions are dropped) and must be the value sent in
    the ``webhook-timestamp`` header; ``body`` the exact bytes sent (a ``str`` is UTF-8).

    >>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1614265330, b"{}")[:3]
    'v1,'
    """
    digest = _signature(decode_secret(secret), msg_id, str(int(timestamp)), _as_bytes(body))
    return "v1," + base64.b64encode(digest).decode()


def _text(value: HeaderValue) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _agreeing(name: str, previous: str | None, value: str) -> str:
    # Two different ids (or timestamps) leave it open which one was signed: refuse both.
    if previous is not None and previous != value:
        raise WebhookError(f"repeated {name} headers disagree")
    return value


def signature_headers(headers: Headers) -> tuple[str | None, str | None, str | None]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` values in ``headers``.

    ``headers`` is as for :func:`verify`; names are matched case-insensitively. Repeated
    ``webhook-signature`` lines are joined with spaces, so an entry of any line can match;
    repeated ``webhook-id`` or ``webhook-timestamp`` lines must be equal, else this raises
    :class:`WebhookError`. A missing header is ``None``.

    >>> signature_headers([("webhook-id", "msg_1"), ("webhook-signature", "v1,a"),
    ...                    ("Webhook-Signature", "v1,b"), ("webhook-id", "msg_1")])
    ('msg_1', None, 'v1,a v1,b')
    """
    if isinstance(headers, dict):  # the common case: a plain dict with lower-case names
        found = (
            headers.get("webhook-id"),
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
        )
        if all(isinstance(v, str) for v in found):
            return found
    msg_id = timestamp = None
    signatures: list[str] = []
    items: Iterable[tuple[HeaderValue, HeaderValue]]
    if isinstance(headers, Mapping):
        # httpx.Headers.items() joins repeated lines with commas; its multi_items() does not.
        multi_items = getattr(headers, "multi_items", None)
        items = multi_items() if callable(multi_items) else headers.items()
    else:
        items = headers
    for raw_name, value in items:
        name = _text(raw_name).lower()
        if name == "webhook-id":
            msg_id = _agreeing(name, msg_id, _text(value))
        elif name == "webhook-timestamp":
            timestamp = _agreeing(name, timestamp, _text(value))
        elif name == "webhook-signature":
            signatures.append(_text(value))
    return msg_id, timestamp, " ".join(signatures) if signatures else None


def _matches(version: str, encoded: str, expected: bytes) -> bool:
    """Whether one entry of a comma-joined value is a valid ``v1`` signature."""
    if version != "v1":
        return False
    try:
        candidate = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(candidate, expected)


def verify_parts(
    key: bytes | KeyedMac,
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """:func:`verify` on header values already picked out and a key already decoded.

    ``key`` is the decoded secret or a :func:`keyed_hmac` of it; ``signatures`` is the
    ``webhook-signature`` value, with repeated lines joined by spaces
    (:func:`signature_headers`) or by commas (as a proxy may have joined them). This is the
    hot path of :class:`~audian_async.webhooks.WebhookApp`, which keys its HMAC once and
    reads the three headers in the same pass as the others it needs.
    """
    if not msg_id or not timestamp or not signatures:
        raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > _MAX_ID:
        raise WebhookError("webhook-id header is too long")
    # ASCII digits only: int() would also take "+1", " 1", "1_0" and non-ASCII digits, and
    # the signed content must be the header exactly as sent.
    if len(timestamp) > _MAX_TIMESTAMP_DIGITS or not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookError("webhook-timestamp is not a Unix timestamp")
    sent_at = int(timestamp)
    current = time.time() if now is None else now
    if not current - tolerance <= sent_at <= current + tolerance:
        if sent_at < current:
            raise WebhookError("webhook-timestamp is too old")
        raise WebhookError("webhook-timestamp is too far in the future")
    if len(signatures) > _MAX_SIGNATURE_HEADER:
        raise WebhookError("webhook-signature header is too long")
    expected = _signature(key, msg_id, timestamp, body)
    # The usual header is exactly one entry of ours, in canonical base64: one constant-time
    # comparison of the whole value. Anything else (rotation, odd spacing or padding) gets
    # the entry by entry reading below.
    wanted = b"v1," + binascii.b2a_base64(expected, newline=False)
    if (
        len(signatures) == len(wanted)
        and signatures.isascii()
        and hmac.compare_digest(signatures.encode(), wanted)
    ):
        return
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if "," in encoded:
            # Lines joined with commas: "v1,a= v1,b=" as "v1,a=, v1,b=" or "v1,a=,v1,b=".
            # Neither a version nor base64 holds a comma, so a signature is the field after
            # a "v1" one (every adjacent pair is tried: a malformed entry cannot shift the
            # others). Rare, so kept out of the loop's common path below.
            if any(_matches(v, e, expected) for v, e in pairwise(entry.split(","))):
                return
            continue
        if version != "v1":
            continue  # other schemes (v1a asymmetric keys) are not ours to check
        try:
            candidate = binascii.a2b_base64(encoded, strict_mode=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise WebhookError("no webhook-signature matches")


def verify(
    secret: str | bytes,
    headers: Headers,
    body: bytes | str,
    *,
    tolerance: int | float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a delivery's signature; return ``None`` or raise :class:`WebhookError`.

    ``headers`` may be any mapping (looked up case-insensitively here) or a list of
    ``(name, value)`` pairs, as ``str`` or as raw ASGI ``bytes``; repeated header lines are
    read as :func:`signature_headers` says. ``body`` must be the raw request body. ``now``
    (Unix seconds) makes the clock injectable for tests.

    >>> import time
    >>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    >>> ts = int(time.time())
    >>> headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts),
    ...            "webhook-signature": sign(secret, "msg_1", ts, b"{}")}
    >>> verify(secret, headers, b"{}")
    """
    msg_id, timestamp, signatures = signature_headers(headers)
    verify_parts(
        decode_secret(secret),
        msg_id,
        timestamp,
        signatures,
        _as_bytes(body),
        tolerance=tolerance,
        now=now,
    )
