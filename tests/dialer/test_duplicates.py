"""A number requested twice in one campaign is dialed once, unless the user keeps repeats."""

from __future__ import annotations

import logging

import pytest

from audian_async import CallRequest, validate_call_request
from audian_async.dialer import Dialer, MemoryStore
from audian_async.dialer._duplicates import Deduplicated

from .support import ANSWERS, BUSY, FAST, FROM, calls_per_number, req, sandbox_with_receiver

pytestmark = pytest.mark.anyio

OTHER = "+14155552680"


def test_the_first_request_of_each_number_is_kept_in_order() -> None:
    national = CallRequest(FROM, "(415) 555-0100")  # the same number as ANSWERS, in E.164
    requests = [req(ANSWERS), req(BUSY), national, req(OTHER), req(BUSY)]
    checked = [validate_call_request(r, "US") for r in requests]
    plan = Deduplicated.of(checked)
    assert plan.kept == (0, 1, 3)
    assert [c.request.to for c in plan.unique] == [ANSWERS, BUSY, OTHER]
    assert plan.duplicate_of == {2: 0, 4: 1}
    assert plan.summary(limit=1) == (
        "2 duplicate numbers (requests[2] repeats requests[0] and 1 more)"
    )


def test_no_duplicates_keeps_the_list_as_it_is() -> None:
    checked = [validate_call_request(req(n)) for n in (ANSWERS, BUSY)]
    plan = Deduplicated.of(checked)
    assert plan.unique == tuple(checked)
    assert plan.duplicate_of == {}


async def test_duplicates_are_dialed_once_warned_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    numbers = [ANSWERS, BUSY, ANSWERS, OTHER, BUSY, ANSWERS]
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())
        with caplog.at_level(logging.WARNING, logger="audian_async.dialer"):
            report = await dialer.run([req(n) for n in numbers], campaign="dupes")
        per_number = calls_per_number(sb)
    assert per_number == {ANSWERS: 1, BUSY: 3, OTHER: 1}  # BUSY redialed, never repeated
    got = [(o.index, o.to, o.status, o.duplicate_of) for o in report.outcomes]
    assert got == [
        (0, ANSWERS, "completed", None),
        (1, BUSY, "failed", None),
        (2, ANSWERS, "duplicate", 0),
        (3, OTHER, "completed", None),
        (4, BUSY, "duplicate", 1),
        (5, ANSWERS, "duplicate", 0),
    ]
    assert (report.completed, report.failed, report.duplicates, report.pending) == (2, 1, 3, 0)
    assert report.attempts == 5
    [warning] = [r for r in caplog.records if "duplicate" in r.getMessage()]
    assert "3 duplicate numbers" in warning.getMessage()
    assert "requests[2] repeats requests[0]" in warning.getMessage()


async def test_keep_duplicates_dials_every_request() -> None:
    numbers = [ANSWERS, ANSWERS, OTHER]
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore())
        report = await dialer.run([req(n) for n in numbers], keep_duplicates=True)
        per_number = calls_per_number(sb)
    assert per_number == {ANSWERS: 2, OTHER: 1}
    assert [o.status for o in report.outcomes] == ["completed"] * 3
    assert report.duplicates == 0


async def test_a_rerun_of_a_deduplicated_campaign_resumes_it() -> None:
    store = MemoryStore()
    numbers = [ANSWERS, ANSWERS, OTHER]
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=store)
        first = await dialer.run([req(n) for n in numbers], campaign="again")
        second = await dialer.run([req(n) for n in numbers], campaign="again")
        per_number = calls_per_number(sb)
    assert per_number == {ANSWERS: 1, OTHER: 1}  # the rerun found everything done
    assert first.outcomes == second.outcomes
