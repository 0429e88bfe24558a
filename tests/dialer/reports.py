"""A campaign report with known numbers, built by hand, for the report-format tests."""

from __future__ import annotations

from datetime import UTC, datetime

from audian_async import FailureReason
from audian_async.dialer import CallOutcome, CampaignReport
from audian_async.dialer._timeline import TimelineRecorder

STARTED = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


class Clock:
    """Monotonic seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def known_report(campaign: str = "spring <sale> & co") -> CampaignReport:
    """Six requests: two completed (one on a redial), three failed (busy after three
    attempts, declined, a refused create), one duplicate; two 429s over a 3-second run.

    The campaign's name holds markup on purpose: a page must show it as text."""
    clock = Clock()
    timeline = TimelineRecorder(step=1.0, cap=16, clock=clock, started_at=STARTED)
    for _ in range(5):
        timeline.created(redial=False)
    timeline.rate_limited(1.0)
    timeline.sample(live=5, waiting=0)
    clock.now += 1.2
    timeline.rate_limited(0.5)
    timeline.redial_scheduled()
    timeline.redial_scheduled()
    timeline.created(redial=True)
    timeline.created(redial=True)
    timeline.finished(completed=False)  # declined
    timeline.finished(completed=False)  # refused
    timeline.sample(live=3, waiting=2)
    clock.now += 1.0
    timeline.redial_scheduled()
    timeline.created(redial=True)
    timeline.finished(completed=True)
    timeline.finished(completed=True)
    timeline.finished(completed=False)  # busy, for good
    timeline.sample(live=0, waiting=0)
    clock.now += 0.5
    outcomes = [
        CallOutcome(0, "+14155550100", "completed", None, 1, ("call_a",)),
        CallOutcome(1, "+14155550106", "completed", None, 2, ("call_b", "call_c")),
        CallOutcome(
            2, "+14155550101", "failed", FailureReason.BUSY, 3, ("call_d", "call_e", "call_f")
        ),
        CallOutcome(3, "+14155550103", "failed", FailureReason.DECLINED, 1, ("call_g",)),
        CallOutcome(4, "+14155550104", "failed", "invalid_number", 0, ()),
        CallOutcome(5, "+14155550100", "duplicate", None, 0, (), duplicate_of=0),
    ]
    return CampaignReport.build(
        campaign, outcomes, rate_limited=2, polls=1, timeline=timeline.snapshot()
    )
