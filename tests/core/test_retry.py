"""Backoff maths and the retry decision table (pure, seeded)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audian_async import (
    APIConnectionError,
    APITimeoutError,
    Disposition,
    ValidationError,
)
from audian_async._errors import disposition_for_status, error_from_response
from audian_async._retry import (
    MAX_RETRY_AFTER,
    backoff_delay,
    parse_retry_after,
    retry_delay,
    should_retry,
)


def test_full_jitter_is_bounded_by_the_exponential_ceiling() -> None:
    rng = random.Random(7)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)]:
        samples = [backoff_delay(retry, rng=rng) for _ in range(500)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # Full jitter spreads over the whole range, not a sliver of it.
        assert max(samples) > 0.8 * ceiling
        assert min(samples) < 0.2 * ceiling


def test_seeded_rng_is_reproducible() -> None:
    a = [backoff_delay(i, rng=random.Random(1)) for i in range(5)]
    b = [backoff_delay(i, rng=random.Random(1)) for i in range(5)]
    assert a == b


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert 0 <= backoff_delay(10_000, base=1, cap=3, rng=random.Random(0)) <= 3
    with pytest.raises(ValueError, match="retry"):
        backoff_delay(-1)


@given(st.integers(0, 200), st.floats(0.001, 10), st.floats(0.001, 100))
def test_backoff_never_exceeds_cap(retry: int, base: float, cap: float) -> None:
    assert 0.0 <= backoff_delay(retry, base=base, cap=cap, rng=random.Random(retry)) <= cap


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert parse_retry_after("3", now=now) == 3.0
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=20), usegmt=True), now=now) == 20
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=20), usegmt=True), now=now) == 0
    )
    assert parse_retry_after("-4", now=now) == 0.0
    assert parse_retry_after("100000", now=now) == MAX_RETRY_AFTER
    assert parse_retry_after("7", cap=5) == 5
    for junk in (None, "", "soon", "nan"):
        assert parse_retry_after(junk, now=now) is None


def test_retry_delay_prefers_the_server_hint() -> None:
    assert retry_delay(3, 1.25) == 1.25
    assert 0 <= retry_delay(0, None, rng=random.Random(3)) <= 0.5


@pytest.mark.parametrize(
    ("status", "error", "disposition"),
    [
        (429, "rate_limited", Disposition.NOT_ACTED),
        (503, None, Disposition.NOT_ACTED),
        (408, None, Disposition.MAYBE_ACTED),
        (500, None, Disposition.MAYBE_ACTED),
        (502, None, Disposition.MAYBE_ACTED),
        (504, None, Disposition.MAYBE_ACTED),
        (401, None, Disposition.ACCOUNT),
        (403, None, Disposition.ACCOUNT),
        (403, "unauthorized_caller_id", Disposition.REFUSED),
        (400, "invalid_number", Disposition.REFUSED),
        (404, None, Disposition.REFUSED),
        (413, None, Disposition.REFUSED),
        (422, None, Disposition.REFUSED),
        (501, None, Disposition.REFUSED),
    ],
)
def test_status_dispositions(status: int, error: str | None, disposition: Disposition) -> None:
    assert disposition_for_status(status, error) is disposition
    # The error built from such a response carries the same verdict.
    body = b'{"error": "%s", "message": "m"}' % (error or "x").encode()
    assert error_from_response(status, {}, body).disposition is disposition


def test_connection_errors_carry_whether_the_request_left() -> None:
    assert APIConnectionError("refused", sent=False).disposition is Disposition.NOT_ACTED
    assert APITimeoutError("read timeout").disposition is Disposition.MAYBE_ACTED
    assert ValidationError("to", "bad").disposition is Disposition.REFUSED


@pytest.mark.parametrize(
    ("idempotent", "disposition", "expected"),
    [
        # A POST that provably did nothing is safe to repeat ...
        (False, Disposition.NOT_ACTED, True),
        # ... one that may have reached the API is not, nor one refused.
        (False, Disposition.MAYBE_ACTED, False),
        (False, Disposition.ACCOUNT, False),
        (False, Disposition.REFUSED, False),
        # Reads retry on every transient failure, never on a refusal.
        (True, Disposition.NOT_ACTED, True),
        (True, Disposition.MAYBE_ACTED, True),
        (True, Disposition.ACCOUNT, False),
        (True, Disposition.REFUSED, False),
    ],
)
def test_decision_table(idempotent: bool, disposition: Disposition, expected: bool) -> None:
    assert should_retry(disposition, idempotent=idempotent) is expected
