"""Retry decisions and backoff maths, free of I/O and clocks.

The one rule that matters most lives here: **a call must never be placed twice by the SDK**.
A POST is retried only when the request provably was not acted on: the connection was never
made (refused, connect timeout, no pooled connection in time), or the API said so (429, 503).
A read timeout or a 500/502/504 on a POST might have placed the call, so it is raised.
Reads (GET) are retried on every transient failure.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ._errors import Disposition

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_DELAY",
    "MAX_RETRY_AFTER",
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


def should_retry(disposition: Disposition, *, idempotent: bool) -> bool:
    """Whether a request that failed this way may be repeated.

    ``idempotent`` is True for reads, which are repeated whenever the failure was transient.
    A POST that creates calls is repeated only when the API provably did not act.
    """
    if disposition is Disposition.NOT_ACTED:
        return True
    return idempotent and disposition is Disposition.MAYBE_ACTED


def backoff_delay(
    retry: int,
    *,
    base: float = DEFAULT_BASE_DELAY,
    cap: float = DEFAULT_MAX_DELAY,
    rng: random.Random | None = None,
    jitter: bool = True,
) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**retry)]``.

    ``retry`` counts from 0 for the first retry. Full jitter spreads a crowd of clients that
    failed together, which is what an overloaded API needs (AWS architecture blog, 2015).
    With ``jitter=False`` the upper bound itself is returned.
    """
    if retry < 0:
        raise ValueError("retry must be >= 0")
    ceiling = min(cap, base * (2.0 ** min(retry, 62)))
    if not jitter:
        return ceiling
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
