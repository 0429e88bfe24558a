"""Webhook signatures per the Standard Webhooks scheme: pure functions over headers and bytes.

A delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``f"{id}.{timestamp}.{body}"``, keyed with the base64 part of a ``whsec_...`` secret. Several
entries let a sender rotate keys. Verification works on the raw body bytes, never on
re-serialised JSON, compares in constant time and rejects stale and future timestamps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from .._errors import WebhookError

__all__ = ["DEFAULT_TOLERANCE", "decode_secret", "sign", "verify"]

DEFAULT_TOLERANCE = 300
"""Seconds a delivery's timestamp may differ from our clock, either way."""
_PREFIX = "whsec_"
_MAX_SIGNATURE_HEADER = 4096


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (raw bytes are used as they are)."""
    if isinstance(secret, bytes):
        if not secret:
            raise WebhookError("the webhook secret is empty")
        return secret
    if not isinstance(secret, str) or not secret:
        raise WebhookError("the webhook secret is empty")
    encoded = secret.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("the webhook secret is not valid base64 after 'whsec_'") from None
    if not key:
        raise WebhookError("the webhook secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(body)
    return mac.digest()


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def sign(secret: str | bytes, msg_id: str, timestamp: int | float, body: bytes | str) -> str:
    """The ``webhook-signature`` header value (``"v1,<base64>"``) for one delivery.

    >>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_1", 1614265330, b"{}")[:3]
    'v1,'
    """
    digest = _signature(decode_secret(secret), msg_id, int(timestamp), _as_bytes(body))
    return "v1," + base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name:
            return value
    return None


def verify(
    secret: str | bytes,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes | str,
    *,
    tolerance: int | float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a delivery's signature; return ``None`` or raise :class:`WebhookError`.

    ``headers`` may be any mapping (case-insensitive look-up is done here) or a list of
    ``(name, value)`` pairs. ``now`` (Unix seconds) makes the clock injectable for tests.
    """
    msg_id = _header(headers, "webhook-id")
    raw_timestamp = _header(headers, "webhook-timestamp")
    raw_signatures = _header(headers, "webhook-signature")
    if not msg_id or not raw_timestamp or not raw_signatures:
        raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookError("webhook-timestamp is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookError("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookError("webhook-timestamp is too far in the future")
    if len(raw_signatures) > _MAX_SIGNATURE_HEADER:
        raise WebhookError("webhook-signature header is too long")
    expected = _signature(decode_secret(secret), msg_id, timestamp, _as_bytes(body))
    for entry in raw_signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise WebhookError("no webhook-signature matches")
