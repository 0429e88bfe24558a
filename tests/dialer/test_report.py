"""A campaign report as data and as a JSON file: the numbers are the report's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audian_async.dialer import CampaignReport, Dialer, MemoryStore, Timeline

from .reports import known_report
from .support import ANSWERS, BUSY, DECLINED, FAST, req, sandbox_with_receiver


def test_to_dict_holds_the_totals_reasons_and_attempts_per_item() -> None:
    data = known_report().to_dict()
    assert data["version"] == 1
    assert data["campaign"] == "spring <sale> & co"
    totals = {k: data[k] for k in ("requested", "completed", "failed", "pending", "duplicates")}
    assert totals == {"requested": 6, "completed": 2, "failed": 3, "pending": 0, "duplicates": 1}
    assert (data["attempts"], data["redials"], data["polls"]) == (7, 3, 1)
    assert (data["rate_limited"], data["rate_limited_wait_seconds"]) == (2, 1.5)
    assert data["failed_by_reason"] == {"busy": 1, "declined": 1, "invalid_number": 1}
    # The duplicate was never dialed: it is no item with 0 attempts.
    assert data["attempts_per_item"] == {"0": 1, "1": 2, "2": 1, "3": 1}
    assert data["outcomes"][2] == {
        "index": 2,
        "to": "+14155550101",
        "status": "failed",
        "reason": "busy",
        "attempts": 3,
        "call_ids": ["call_d", "call_e", "call_f"],
        "next_at": None,
        "duplicate_of": None,
    }
    assert data["outcomes"][5]["duplicate_of"] == 0


def test_the_timeline_in_the_data_is_the_reports() -> None:
    report = known_report()
    timeline = report.to_dict()["timeline"]
    assert timeline["started_at"] == "2026-03-02T14:30:00+00:00"
    assert (timeline["step"], timeline["duration"]) == (1.0, 2.7)
    assert timeline["creates"] == [5, 0, 0]
    assert timeline["redial_creates"] == [0, 2, 1]
    assert timeline["redials"] == [0, 2, 1]
    assert timeline["rate_limited"] == [1, 1, 0]
    assert timeline["rate_limited_wait"] == [1.0, 0.5, 0]
    assert (timeline["completed"], timeline["failed"]) == ([0, 0, 2], [0, 2, 1])
    assert (timeline["live"], timeline["waiting"]) == ([5, 3, 0], [0, 2, 0])
    assert Timeline.from_dict(timeline) == report.timeline


def test_a_report_without_a_timeline_says_so() -> None:
    report = CampaignReport.build("c", known_report().outcomes)
    data = report.to_dict()
    assert data["timeline"] is None
    assert data["rate_limited_wait_seconds"] is None


def test_to_json_writes_the_same_data(tmp_path: Path) -> None:
    report = known_report()
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert json.loads(path.read_text(encoding="utf-8")) == report.to_dict()
    assert json.loads(text) == report.to_dict()


@pytest.mark.anyio
async def test_a_campaigns_json_report_matches_its_report(tmp_path: Path) -> None:
    async with sandbox_with_receiver() as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=5)
        report = await dialer.run([req(ANSWERS), req(BUSY), req(DECLINED), req(ANSWERS)])
    data = json.loads(report.to_json(tmp_path / "r.json"))
    assert (data["completed"], data["failed"], data["duplicates"]) == (1, 2, 1)
    assert data["attempts"] == report.attempts == 5
    assert data["failed_by_reason"] == {"busy": 1, "declined": 1}
    assert data["attempts_per_item"] == {"1": 2, "3": 1}
    timeline = data["timeline"]
    assert sum(timeline["creates"]) + sum(timeline["redial_creates"]) == 5
    assert sum(timeline["completed"]) + sum(timeline["failed"]) == 3
