"""Numbers requested more than once in one campaign (pure).

Contact lists repeat numbers (one person in two segments, an export merged twice). Dialing
each repeat is a second call to the same person in the same campaign, which users rarely
mean: :meth:`~audian_async.dialer.Dialer.run` dials each E.164 number once and reports the
repeats as duplicates, unless told to keep them.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from .._validation import CheckedCallRequest
from ._machine import CallOutcome

__all__ = ["Deduplicated"]


@attrs.frozen
class Deduplicated:
    """A campaign's requests, each number kept once: the first request of each number is
    dialed (``unique``), the later ones are its duplicates."""

    unique: tuple[CheckedCallRequest, ...]
    kept: tuple[int, ...]
    """For each request dialed, its index in the original list."""
    duplicate_of: dict[int, int]
    """Index of each duplicate request -> index of the first request of its number."""
    total: int

    @classmethod
    def of(cls, requests: Sequence[CheckedCallRequest]) -> Deduplicated:
        """Split ``requests`` (numbers already normalised to E.164 by validation)."""
        first: dict[str, int] = {}
        duplicate_of: dict[int, int] = {}
        kept = []
        for i, checked in enumerate(requests):
            seen = first.setdefault(checked.request.to, i)
            if seen == i:
                kept.append(i)
            else:
                duplicate_of[i] = seen
        unique = tuple(requests[i] for i in kept)
        return cls(unique, tuple(kept), duplicate_of, len(requests))

    def outcomes(self, dialed: Sequence[CallOutcome]) -> list[CallOutcome]:
        """The outcomes of the original list, from those of ``unique`` (in its order)."""
        if not self.duplicate_of:
            return list(dialed)
        found: list[CallOutcome | None] = [None] * self.total
        for index, outcome in zip(self.kept, dialed, strict=True):
            found[index] = attrs.evolve(outcome, index=index)
        for index, first in self.duplicate_of.items():
            original = found[first]
            assert original is not None  # the first request of a number is always dialed
            found[index] = CallOutcome(
                index=index,
                to=original.to,
                status="duplicate",
                reason=None,
                attempts=0,
                call_ids=(),
                duplicate_of=first,
            )
        return [o for o in found if o is not None]

    def summary(self, limit: int = 3) -> str:
        """The duplicates in a few words, for a warning."""
        pairs = sorted(self.duplicate_of.items())
        shown = ", ".join(f"requests[{i}] repeats requests[{j}]" for i, j in pairs[:limit])
        more = f" and {len(pairs) - limit} more" if len(pairs) > limit else ""
        return f"{len(pairs)} duplicate numbers ({shown}{more})"
