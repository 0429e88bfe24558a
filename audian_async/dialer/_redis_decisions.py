"""What the caller of a script computes: campaign and request-list digests, redial
decisions as the scripts apply them, and ids and durations in the scripts' units."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence

from .._errors import ValidationError
from .._json import dumps
from .._models import FailureReason, as_reason
from ._policy import RetryPolicy

__all__ = ["Decisions", "campaign_digest", "redial_decisions", "requests_digest"]

Decisions = Mapping[str, Sequence[float | None]]
"""For each failure reason, the redial delay in seconds after 1, 2, ... attempts, or None
for "not redialed" (a reason absent, or attempts past the end, are never redialed)."""


def campaign_digest(campaign: str) -> str:
    """The ``cd`` of ``campaign`` in its keys: short, fixed-size, any name allowed."""
    return hashlib.blake2b(campaign.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def requests_digest(requests: Iterable[str]) -> str:
    """A digest of a request list (wire JSON strings, in order): the same list in every
    process, and only it, gives the same digest. Each request is length-prefixed, so no
    split of the same characters into other requests collides."""
    digest = hashlib.blake2b(digest_size=16)
    for wire in requests:
        data = wire.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _normal_reason(reason: FailureReason | str | None) -> str:
    # The state machine's rule: a failure without a reason is "unknown".
    return str(as_reason(reason) or "unknown")


def redial_decisions(
    policy: RetryPolicy, reasons: Iterable[FailureReason | str | None] | None = None
) -> dict[str, tuple[float | None, ...]]:
    """The redial decisions of ``policy`` for ``reasons`` (default: every reason it
    redials), as the scripts apply them.

    Only the script knows how many attempts an item made, so the caller passes, for each
    reason, the delay before the next call after 1, 2, ... ``max_attempts - 1`` attempts
    (None where :meth:`RetryPolicy.should_redial` says no). A reason never redialed maps
    to ``()``. Jittered delays are drawn afresh on each call, as the policy would.
    """
    chosen = sorted(policy.retry_on) if reasons is None else [_normal_reason(r) for r in reasons]
    table: dict[str, tuple[float | None, ...]] = {}
    for reason in chosen:
        row = tuple(
            policy.delay(reason, attempts) if policy.should_redial(reason, attempts) else None
            for attempts in range(1, policy.max_attempts)
        )
        table[reason] = row if any(d is not None for d in row) else ()
    return table


def _decisions_json(decisions: Decisions) -> str:
    # Milliseconds, -1 for never: the script compares numbers only.
    table = {
        str(reason): [-1 if d is None else max(0, math.ceil(d * 1000)) for d in row]
        for reason, row in decisions.items()
    }
    return dumps(table).decode() if table else "{}"


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


def _id(value: str, field: str) -> str:
    # Ids become key names and hash values: an empty one would alias another key.
    if not isinstance(value, str) or not value:
        raise ValidationError(field, f"must be a non-empty string, got {value!r}")
    return value


def _positive(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValidationError(field, f"must be a positive number, got {value!r}")
    return float(value)
