"""The timeline recorder: per-bucket counts in bounded memory, on a clock the test moves."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from audian_async.dialer import CampaignReport, Dialer, MemoryStore, Timeline
from audian_async.dialer._timeline import COUNTERS, GAUGES, TimelineRecorder
from audian_async.sandbox import Faults

from .support import ANSWERS, BUSY, BUSY_THEN_ANSWER, FAST, req, sandbox_with_receiver

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    """Monotonic seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recorder(clock: Clock, *, step: float = 1.0, cap: int = 8) -> TimelineRecorder:
    return TimelineRecorder(step=step, cap=cap, clock=clock, started_at=START)


def test_events_land_in_the_bucket_of_their_time() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.created(redial=False)
    rec.created(redial=False)
    clock.now += 1.5
    rec.created(redial=True)
    rec.redial_scheduled()
    rec.rate_limited(2.5)
    clock.now += 1.0
    rec.finished(completed=True)
    rec.finished(completed=False)
    snap = rec.snapshot()
    assert snap.started_at == START
    assert (snap.step, snap.buckets, snap.duration) == (1.0, 3, 2.5)
    assert snap.creates == (2, 0, 0)
    assert snap.redial_creates == (0, 1, 0)
    assert snap.redials == (0, 1, 0)
    assert snap.rate_limited == (0, 1, 0)
    assert snap.rate_limited_wait == (0, 2.5, 0)
    assert snap.completed == (0, 0, 1)
    assert snap.failed == (0, 0, 1)


def test_gauges_keep_the_highest_sample_and_carry_it_over_unsampled_buckets() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.sample(live=3, waiting=1)
    rec.sample(live=5, waiting=0)
    rec.sample(live=4, waiting=0)
    clock.now += 3.2  # buckets 1 and 2 are never sampled: nothing moved the counts
    rec.sample(live=1, waiting=2)
    snap = rec.snapshot()
    assert snap.live == (5, 5, 5, 1)
    assert snap.waiting == (1, 1, 1, 2)


def test_a_long_run_merges_buckets_and_keeps_every_event() -> None:
    clock = Clock()
    rec = recorder(clock, step=1.0, cap=8)
    for second in range(100):
        clock.now = 1000.0 + second + 0.5
        rec.created(redial=second % 2 == 1)
        rec.sample(live=second, waiting=0)
    snap = rec.snapshot()
    # 100 seconds in at most 8 buckets: each covers 16 s (the step doubled four times).
    assert snap.step == 16.0
    assert snap.buckets <= 8
    assert sum(snap.creates) == 50
    assert sum(snap.redial_creates) == 50
    assert snap.creates[0] == 8  # seconds 0, 2, ..., 14
    assert snap.live[0] == 15  # the highest sample of seconds 0-15
    assert snap.live[-1] == 99


def test_the_snapshot_reaches_now_even_when_nothing_happened_lately() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.created(redial=False)
    clock.now += 5.0
    snap = rec.snapshot()
    assert snap.buckets == 6
    assert snap.creates == (1, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(("step", "cap"), [(0.0, 8), (1.0, 1), (1.0, 7)])
def test_nonsense_settings_are_refused(step: float, cap: int) -> None:
    with pytest.raises(ValueError, match="step"):
        TimelineRecorder(step=step, cap=cap)


def test_to_dict_round_trips() -> None:
    clock = Clock()
    rec = recorder(clock, step=0.5)
    rec.created(redial=False)
    rec.rate_limited(0.1)
    rec.rate_limited(0.2)
    clock.now += 0.7
    rec.sample(live=2, waiting=1)
    snap = rec.snapshot()
    data = snap.to_dict()
    assert set(data) == {"started_at", "step", "duration", *COUNTERS, *GAUGES}
    assert data["started_at"] == "2026-01-05T09:00:00+00:00"
    assert data["rate_limited_wait"] == [0.3, 0]
    again = Timeline.from_dict(data)
    assert (again.creates, again.live, again.step) == (snap.creates, snap.live, snap.step)


def test_a_report_compares_and_pickles_with_its_timeline() -> None:
    clock = Clock()
    one, two = recorder(clock), recorder(clock)
    one.created(redial=False)
    a = CampaignReport.build("c", (), timeline=one.snapshot())
    b = CampaignReport.build("c", (), timeline=two.snapshot())
    # Processes sharing a campaign over Redis return equal reports, each with its own timeline.
    assert a == b
    assert hash(a) == hash(b)
    copy = pickle.loads(pickle.dumps(a))
    assert copy == a
    assert copy.timeline == a.timeline
    assert "timeline" not in repr(a)


@pytest.mark.anyio
async def test_a_campaigns_timeline_adds_up_to_its_report() -> None:
    # Seeded faults hit the same creates on every run (by body, and the campaign's name is
    # in the body's tags): some are answered 429 and waited out.
    faults = Faults(error_rate={"POST /v2/calls": 0.3}, error_status=429, seed=7)
    async with sandbox_with_receiver(faults=faults) as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=20)
        requests = [req(ANSWERS) for _ in range(6)] + [req(BUSY), req(BUSY_THEN_ANSWER)]
        report = await dialer.run(requests, campaign="timeline", keep_duplicates=True)
    timeline = report.timeline
    assert timeline is not None
    assert (report.completed, report.failed, report.attempts) == (7, 1, 11)
    assert report.rate_limited > 0
    assert sum(timeline.creates) == 8  # every item's first attempt
    assert sum(timeline.redial_creates) == 3  # busy twice more, busy-then-answer once
    assert sum(timeline.redials) == 3
    assert sum(timeline.rate_limited) == report.rate_limited
    assert sum(timeline.rate_limited_wait) > 0
    assert (sum(timeline.completed), sum(timeline.failed)) == (7, 1)
    assert 1 <= max(timeline.live) <= 20
    assert timeline.duration > 0
