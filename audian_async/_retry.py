"""Retry decisions and backoff maths, free of I/O and clocks.

The one rule that matters most lives here: **a call must never be placed twice by the SDK**.
A POST is retried only when the request provably was not acted on: the connection was never
made (refused, connect timeout, no pooled connection in time), or the API said so (429, 503).
A read timeout or a 500/502/504 on a POST might have placed the call, so it is raised.
Reads (GET) are retried on every transient failure.
"""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_DELAY",
    "MAX_RETRY_AFTER",
    "Failure",
    "backoff_delay",
    "parse_retry_after",
    "retry_delay",
    "should_retry",
]

DEFAULT_BASE_DELAY = 0.5
"""Seconds; the first retry waits up to this long."""
DEFAULT_MAX_DELAY = 8.0
"""Seconds; no computed backoff exceeds this."""
MAX_RETRY_AFTER = 60.0
"""Seconds; a server's Retry-After above this is capped, so one header cannot stall a client."""


class Failure(enum.Enum):
    """How one attempt failed, as far as retrying is concerned."""

    NOT_CONNECTED = "not_connected"
    """Connection refused or reset while connecting, connect timeout, pool timeout: not sent."""
    SENT_NO_REPLY = "sent_no_reply"
    """The request may have reached the server (read/write timeout, dropped connection)."""
    STATUS = "status"
    """The server answered with an error status."""


_RETRYABLE_STATUS_GET = frozenset({408, 429, 500, 502, 503, 504})
_RETRYABLE_STATUS_POST = frozenset({429, 503})


def should_retry(*, idempotent: bool, failure: Failure, status_code: int | None = None) -> bool:
    """Whether an attempt that failed this way may be repeated.

    ``idempotent`` is True for reads. For a POST that creates calls it is False, and only
    failures that prove the API did not act are retried.
    """
    if failure is Failure.NOT_CONNECTED:
        return True
    if failure is Failure.SENT_NO_REPLY:
        return idempotent
    allowed = _RETRYABLE_STATUS_GET if idempotent else _RETRYABLE_STATUS_POST
    return status_code in allowed


def backoff_delay(
    retry: int,
    *,
    base: float = DEFAULT_BASE_DELAY,
    cap: float = DEFAULT_MAX_DELAY,
    rng: random.Random | None = None,
) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**retry)]``.

    ``retry`` counts from 0 for the first retry. Full jitter spreads a crowd of clients that
    failed together, which is what an overloaded API needs (AWS architecture blog, 2015).
    """
    if retry < 0:
        raise ValueError("retry must be >= 0")
    ceiling = min(cap, base * (2.0 ** min(retry, 62)))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped.

    Returns ``None`` when the header is absent or unreadable, so the caller falls back to
    backoff; a date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), cap)


def retry_delay(
    retry: int,
    retry_after: float | None,
    *,
    base: float = DEFAULT_BASE_DELAY,
    cap: float = DEFAULT_MAX_DELAY,
    rng: random.Random | None = None,
) -> float:
    """The wait before retry number ``retry``: the server's hint when it gave one, else backoff."""
    if retry_after is not None:
        return retry_after
    return backoff_delay(retry, base=base, cap=cap, rng=rng)
