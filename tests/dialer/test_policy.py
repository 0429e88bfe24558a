"""RetryPolicy: pure maths and validation, no event loop."""

from __future__ import annotations

import random

import pytest

from audian_async import ValidationError
from audian_async.dialer import RetryPolicy


def test_defaults_match_the_contract() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.base_delay == 30.0
    assert policy.max_delay == 900.0
    assert policy.retry_on == {"busy", "no_answer", "network_error"}
    assert policy.jitter is True


@pytest.mark.parametrize("reason", ["busy", "no_answer", "network_error"])
def test_retryable_reasons_redial_until_max_attempts(reason: str) -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_redial(reason, 1)
    assert policy.should_redial(reason, 2)
    assert not policy.should_redial(reason, 3)


@pytest.mark.parametrize("reason", ["declined", "invalid_number", "something_new", None])
def test_other_reasons_are_never_redialed(reason: str | None) -> None:
    assert not RetryPolicy(max_attempts=10).should_redial(reason, 1)


@pytest.mark.parametrize("reason", ["declined", "invalid_number"])
def test_retry_on_refuses_reasons_that_must_not_be_redialed(reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(retry_on={"busy", reason})
    assert info.value.field == "retry_on"
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"base_delay": -1}, "base_delay"),
        ({"max_delay": -5}, "max_delay"),
        ({"base_delay": 10, "max_delay": 5}, "max_delay"),
        ({"base_delay": float("nan")}, "base_delay"),
        ({"retry_on": {"bussy"}}, "retry_on"),
        ({"retry_on": "busy"}, "retry_on"),
        ({"reason_delays": {"weird": 1.0}}, "reason_delays"),
        ({"reason_delays": {"busy": -1.0}}, "reason_delays['busy']"),
        ({"jitter": "yes"}, "jitter"),
    ],
)
def test_nonsense_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=10.0, max_delay=35.0, jitter=False)
    assert [policy.delay("busy", n) for n in (1, 2, 3, 4, 5)] == [10.0, 20.0, 35.0, 35.0, 35.0]


def test_per_reason_delay_replaces_the_base() -> None:
    policy = RetryPolicy(base_delay=10.0, reason_delays={"busy": 60.0}, jitter=False)
    assert policy.delay("busy", 1) == 60.0
    assert policy.delay("no_answer", 1) == 10.0
    assert policy.delay("busy", 2) == 120.0


def test_full_jitter_stays_within_bounds_and_is_reproducible() -> None:
    policy = RetryPolicy(base_delay=10.0, max_delay=100.0, rng=random.Random(7))
    again = RetryPolicy(base_delay=10.0, max_delay=100.0, rng=random.Random(7))
    delays = [policy.delay("busy", n) for n in range(1, 30)]
    assert delays == [again.delay("busy", n) for n in range(1, 30)]
    for n, value in enumerate(delays, start=1):
        assert 0.0 <= value <= min(100.0, 10.0 * 2 ** (n - 1))
    assert len(set(delays)) > 20  # really jittered


def test_scaled_policy_shrinks_every_delay() -> None:
    policy = RetryPolicy(base_delay=30.0, reason_delays={"busy": 60.0}, jitter=False)
    fast = policy.scaled(0.01)
    assert fast.delay("no_answer", 1) == pytest.approx(0.3)
    assert fast.delay("busy", 1) == pytest.approx(0.6)
    assert fast.max_delay == pytest.approx(9.0)
    with pytest.raises(ValidationError):
        policy.scaled(0)


def test_redial_numbers_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy().delay("busy", 0)


def test_reason_delays_are_read_only_and_copied() -> None:
    delays = {"busy": 60.0}
    policy = RetryPolicy(reason_delays=delays)
    delays["busy"] = 1.0
    assert policy.reason_delays["busy"] == 60.0
    with pytest.raises(TypeError):
        policy.reason_delays["busy"] = 5.0  # type: ignore[index]
    assert policy.scaled(0.5).reason_delays["busy"] == 30.0
