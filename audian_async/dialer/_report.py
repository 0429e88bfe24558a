"""What a campaign run returns: :class:`CampaignReport`, with each item's :class:`CallOutcome`;
the report as data (:meth:`CampaignReport.to_dict`), as JSON and as an HTML page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from .._json import dumps
from .._models import FailureReason
from ._report_html import render_html
from ._timeline import Timeline

__all__ = ["REPORT_VERSION", "CallOutcome", "CampaignReport"]

REPORT_VERSION = 1
"""The ``version`` of :meth:`CampaignReport.to_dict`'s layout (raised if a key changes
meaning; new keys may appear without it)."""


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``next_at`` in ISO 8601, ``reason`` a plain string)."""
        return {
            "index": self.index,
            "to": self.to,
            "status": self.status,
            "reason": None if self.reason is None else str(self.reason),
            "attempts": self.attempts,
            "call_ids": list(self.call_ids),
            "next_at": None if self.next_at is None else self.next_at.isoformat(),
            "duplicate_of": self.duplicate_of,
        }


@attrs.frozen
class CampaignReport:
    """The result of :meth:`Dialer.run`: ``outcomes`` aligned with the requests, and totals.

    ``pending`` counts items a stopped run left unfinished (0 when the run completed),
    ``duplicates`` the requests not dialed because an earlier one calls the same number.

    ``timeline`` is what this run did over time (creates, redials, 429s, live calls, per
    time bucket), recorded by this process: over Redis, each process's report holds its
    own. It takes no part in comparing reports, which compare by outcome and totals.

    :meth:`to_json` and :meth:`to_html` write the report as a file to keep or share::

        report = await dialer.run(requests)
        report.to_html("report.html")     # one page, charts included, readable offline
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

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: the totals, ``failed_by_reason``,
        ``attempts_per_item`` (keys are attempt counts, as strings), ``timeline`` (see
        :class:`~audian_async.dialer.Timeline`; None when not recorded) and every outcome.
        What :meth:`to_json` writes and :meth:`to_html` draws."""
        timeline = self.timeline
        return {
            "version": REPORT_VERSION,
            "campaign": self.campaign,
            "requested": len(self.outcomes),
            "completed": self.completed,
            "failed": self.failed,
            "pending": self.pending,
            "duplicates": self.duplicates,
            "attempts": self.attempts,
            "redials": self.redials,
            "rate_limited": self.rate_limited,
            "rate_limited_wait_seconds": (
                None if timeline is None else round(sum(timeline.rate_limited_wait), 6)
            ),
            "polls": self.polls,
            "failed_by_reason": self.reasons(),
            "attempts_per_item": {str(k): v for k, v in self.attempts_per_item().items()},
            "timeline": None if timeline is None else timeline.to_dict(),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON (:meth:`to_dict`); written to ``path`` too when given."""
        text = dumps(self.to_dict()).decode() + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as one self-contained HTML page: the totals, failures by reason,
        attempts per item, and charts of live calls, creates per second, redials and 429s
        over time. The charting library is inlined: the page needs no network. Written to
        ``path`` too when given; returns the page."""
        text = render_html(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text
