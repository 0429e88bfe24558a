"""When and how soon a failed call is dialed again: pure maths, no clocks and no I/O."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from .._errors import ValidationError
from .._models import FailureReason
from .._retry import backoff_delay

__all__ = ["DEFAULT_RETRY_ON", "NEVER_RETRIED", "RetryPolicy"]

KNOWN_REASONS = frozenset(r.value for r in FailureReason)
NEVER_RETRIED = frozenset({FailureReason.DECLINED.value, FailureReason.INVALID_NUMBER.value})
"""Reasons that are never redialed: the callee said no, or the number does not exist."""
DEFAULT_RETRY_ON = frozenset(
    {FailureReason.BUSY.value, FailureReason.NO_ANSWER.value, FailureReason.NETWORK_ERROR.value}
)


def _reasons(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise ValidationError("retry_on", "must be a collection of reasons, not one string")
    return frozenset(str(v) for v in value)


def _delays(value: Mapping[str, float] | None) -> Mapping[str, float]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValidationError("reason_delays", "must be a mapping of reason -> seconds")
    # A read-only copy: the policy is frozen, and the caller's dict may change later.
    return MappingProxyType({str(k): v for k, v in value.items()})


def _number(value: object, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(field, f"must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValidationError(field, f"must be {'positive' if positive else '>= 0'}, got {value}")
    return float(value)


@attrs.frozen(eq=False)
class RetryPolicy:
    """Which failed calls a :class:`Dialer` dials again, how often, and after how long.

    A call that failed for a reason in ``retry_on`` is redialed until ``max_attempts`` calls
    were placed for the item. The wait before redial *n* (1 for the first redial) is "full
    jitter" exponential backoff: uniform in ``[0, min(max_delay, base * 2**(n-1))]``, where
    ``base`` is ``reason_delays[reason]`` when given (a busy line is worth a longer wait) and
    ``base_delay`` otherwise. With ``jitter=False`` the upper bound itself is used. ``rng``
    makes the jitter reproducible in tests.

    ``declined`` and ``invalid_number`` are never redialed: putting them in ``retry_on`` is a
    :class:`~audian_async.ValidationError`, as is any reason the API does not define::

        policy = RetryPolicy(max_attempts=4, reason_delays={"busy": 120.0})
    """

    max_attempts: int = 3
    base_delay: float = 30.0
    max_delay: float = 900.0
    retry_on: frozenset[str] = attrs.field(default=DEFAULT_RETRY_ON, converter=_reasons)
    reason_delays: Mapping[str, float] = attrs.field(factory=dict, converter=_delays)
    jitter: bool = True
    rng: random.Random | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ValidationError("max_attempts", f"must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValidationError("max_attempts", f"must be >= 1, got {self.max_attempts}")
        _number(self.base_delay, "base_delay")
        _number(self.max_delay, "max_delay")
        if self.max_delay < self.base_delay:
            raise ValidationError("max_delay", "must be >= base_delay")
        for reason in sorted(self.retry_on):
            if reason in NEVER_RETRIED:
                raise ValidationError("retry_on", f"{reason!r} calls are never redialed")
            if reason not in KNOWN_REASONS:
                known = ", ".join(sorted(KNOWN_REASONS - NEVER_RETRIED))
                raise ValidationError("retry_on", f"unknown reason {reason!r} (known: {known})")
        for reason, delay in self.reason_delays.items():
            if reason not in KNOWN_REASONS:
                raise ValidationError("reason_delays", f"unknown reason {reason!r}")
            _number(delay, f"reason_delays[{reason!r}]")
        if not isinstance(self.jitter, bool):
            raise ValidationError("jitter", "must be a boolean")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise ValidationError("rng", "must be a random.Random")

    def should_redial(self, reason: str | None, attempts: int) -> bool:
        """Whether an item whose latest call (of ``attempts`` placed) failed for ``reason``
        gets another call."""
        return (
            reason is not None
            and reason in self.retry_on
            and reason not in NEVER_RETRIED
            and attempts < self.max_attempts
        )

    def delay(self, reason: str | None, redial: int) -> float:
        """Seconds to wait before redial number ``redial`` (1 for the first redial)."""
        if redial < 1:
            raise ValueError("redial counts from 1")
        base = self.reason_delays.get(reason, self.base_delay) if reason else self.base_delay
        return backoff_delay(
            redial - 1, base=base, cap=self.max_delay, rng=self.rng, jitter=self.jitter
        )

    def scaled(self, factor: float) -> RetryPolicy:
        """The same policy with every delay multiplied by ``factor`` (e.g. ``1 / speed`` when
        dialing a sandbox that runs time faster)."""
        factor = _number(factor, "factor", positive=True)
        return attrs.evolve(
            self,
            base_delay=self.base_delay * factor,
            max_delay=self.max_delay * factor,
            reason_delays={k: v * factor for k, v in self.reason_delays.items()},
        )
