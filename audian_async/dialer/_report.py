"""What a campaign run returns: :class:`CampaignReport`, with each item's :class:`CallOutcome`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import attrs

from .._models import FailureReason
from ._timeline import Timeline

__all__ = ["CallOutcome", "CampaignReport"]


@attrs.frozen
class CallOutcome:
    """How one requested call ended (or stands, after :meth:`Dialer.stop`).

    ``status`` is ``"completed"`` or ``"failed"``, ``"pending"`` for an item a stopped
    run left unfinished (running the campaign again continues it), or ``"duplicate"`` for a
    request of a number an earlier request of the campaign already calls (not dialed;
    ``duplicate_of`` is that request's index); ``reason`` is the last
    failure reason: a :class:`~audian_async.FailureReason` (``busy``, ``declined``...) when
    the call failed, or a plain string (the API error code when the API refused the request,
    ``"lost"``, ``"suppressed"``...); ``attempts`` counts the calls the API accepted and
    ``call_ids`` lists them in order. ``next_at`` is when a pending item is due next (its
    redial, or its calling window's opening), or None.
    """

    index: int
    to: str
    status: Literal["completed", "failed", "pending", "duplicate"]
    reason: FailureReason | str | None
    attempts: int
    call_ids: tuple[str, ...]
    next_at: datetime | None = None
    duplicate_of: int | None = None

    @property
    def ok(self) -> bool:
        """True when the call completed."""
        return self.status == "completed"


@attrs.frozen
class CampaignReport:
    """The result of :meth:`Dialer.run`: ``outcomes`` aligned with the requests, and totals.

    ``pending`` counts items a stopped run left unfinished (0 when the run completed),
    ``duplicates`` the requests not dialed because an earlier one calls the same number.

    ``timeline`` is what this run did over time (creates, redials, 429s, live calls, per
    time bucket), recorded by this process: over Redis, each process's report holds its
    own. It takes no part in comparing reports, which compare by outcome and totals.
    """

    campaign: str
    outcomes: tuple[CallOutcome, ...]
    completed: int
    failed: int
    attempts: int
    rate_limited: int = 0
    """Creates the API answered with 429 (waited out, not attempts)."""
    polls: int = 0
    """Status polls made because a terminal webhook was late or lost."""
    pending: int = 0
    """Items left unfinished by :meth:`Dialer.stop`."""
    duplicates: int = 0
    """Requests not dialed: an earlier request of the campaign calls the same number."""
    timeline: Timeline | None = attrs.field(default=None, eq=False, repr=False)
    """This run's events over time, as this process saw them (None when not recorded)."""

    @classmethod
    def build(
        cls,
        campaign: str,
        outcomes: Sequence[CallOutcome],
        *,
        rate_limited: int = 0,
        polls: int = 0,
        timeline: Timeline | None = None,
    ) -> CampaignReport:
        """Sum the totals of ``outcomes``."""
        completed = sum(1 for o in outcomes if o.status == "completed")
        failed = sum(1 for o in outcomes if o.status == "failed")
        duplicates = sum(1 for o in outcomes if o.status == "duplicate")
        return cls(
            campaign=campaign,
            outcomes=tuple(outcomes),
            completed=completed,
            failed=failed,
            attempts=sum(o.attempts for o in outcomes),
            rate_limited=rate_limited,
            polls=polls,
            pending=len(outcomes) - completed - failed - duplicates,
            duplicates=duplicates,
            timeline=timeline,
        )

    def reasons(self) -> dict[str, int]:
        """Failed items counted by final reason (as plain strings)."""
        counts: dict[str, int] = {}
        for o in self.outcomes:
            if o.status == "failed":
                key = str(o.reason or "unknown")
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def attempts_per_item(self) -> dict[int, int]:
        """How many dialed items (duplicates left out) took 0, 1, 2... attempts."""
        counts: dict[int, int] = {}
        for o in self.outcomes:
            if o.status != "duplicate":
                counts[o.attempts] = counts.get(o.attempts, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def redials(self) -> int:
        """Attempts after each item's first."""
        return sum(max(0, o.attempts - 1) for o in self.outcomes)
