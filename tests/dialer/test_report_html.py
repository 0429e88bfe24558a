"""A campaign report as one HTML page: the numbers on it are the report's, and it stands alone.

The page is read here with the standard library's parser; tests/browser/test_report_page.py
opens a real campaign's page in Chromium and checks that the charts are drawn.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from audian_async.dialer import CallOutcome, CampaignReport
from audian_async.dialer._report_html import CHART_JS_VERSION, render_html

from .reports import Page, known_report


def test_the_page_shows_the_reports_totals() -> None:
    report = known_report()
    page = Page(report.to_html())
    assert page.total("requested") == 6
    assert page.total("completed") == report.completed == 2
    assert page.total("failed") == report.failed == 3
    assert page.total("duplicates") == 1
    assert page.total("attempts") == report.attempts == 7
    assert page.total("redials") == 3
    assert page.total("rate-limited") == 2
    assert "1.5 s waited" in page.text["total-rate-limited"]
    assert page.total("polls") == 1
    assert "total-pending" not in page.attrs  # nothing pending: no card for it


def test_the_page_counts_outcomes_by_reason_and_attempts_per_item() -> None:
    page = Page(known_report().to_html())
    outcomes = {key: page.count_in("outcomes", key) for key in page.rows["outcomes"]}
    assert outcomes == {
        "completed": 2,
        "failed:busy": 1,
        "failed:declined": 1,
        "failed:invalid_number": 1,
        "duplicate": 1,
    }
    per_item = {k: page.count_in("attempts-per-item", k) for k in page.rows["attempts-per-item"]}
    assert per_item == {"0": 1, "1": 2, "2": 1, "3": 1}


def test_the_charts_data_is_the_reports_without_the_outcomes() -> None:
    report = known_report()
    page = Page(report.to_html())
    expected = report.to_dict()
    del expected["outcomes"]  # per call: in the JSON report, not on the page
    assert page.data() == expected
    assert page.canvases == [
        "chart-outcomes",
        "chart-attempts",
        "chart-live",
        "chart-creates",
        "chart-redials",
        "chart-finished",
        "chart-429",
    ]
    assert "lasted 2.7 s" in page.text["when"]


def test_the_page_stands_alone() -> None:
    text = known_report().to_html()
    page = Page(text)
    assert page.urls == []  # no script, style sheet, font or image to fetch
    assert "sourceMappingURL" not in text
    assert f"Chart.js v{CHART_JS_VERSION}" in text  # inlined, banner and all
    assert "Permission is hereby granted, free of charge" in text  # with its licence
    sources = [t for a, t in page.scripts if a.get("id") != "report-data"]
    assert len(sources) == 2
    assert "new Chart(" in sources[1]


def test_markup_in_names_and_reasons_stays_text() -> None:
    report = known_report("x</script><script>alert(1)</script>")
    evil = CampaignReport.build(
        report.campaign,
        [*report.outcomes[:4], CallOutcome(4, "+1", "failed", "<b>", 0, ())],
        timeline=report.timeline,
    )
    text = evil.to_html()
    assert text.count("</script>") == 3  # the page's own three script elements only
    page = Page(text)
    assert page.text["campaign"] == "x</script><script>alert(1)</script>"
    assert page.count_in("outcomes", "failed:<b>") == 1
    data = page.data()
    assert data["campaign"] == report.campaign
    assert data["failed_by_reason"] == {"<b>": 1, "busy": 1, "declined": 1}


def test_a_report_without_a_timeline_draws_no_time_charts() -> None:
    report = CampaignReport.build("plain", known_report().outcomes)
    page = Page(report.to_html())
    assert page.canvases == ["chart-outcomes", "chart-attempts"]
    assert "No timeline" in page.text["when"]


def test_to_html_writes_the_page(tmp_path: Path) -> None:
    report = known_report()
    path = tmp_path / "report.html"
    text = report.to_html(path)
    assert path.read_text(encoding="utf-8") == text == render_html(report.to_dict())
    assert re.match(r"<!DOCTYPE html>\s*<html lang=\"en\">", text)


def test_the_inlined_chart_js_is_the_published_file() -> None:
    # The hash the assets' README names: the vendored file is npm's, unmodified.
    from importlib import resources

    assets = resources.files("audian_async.dialer").joinpath("_report_assets")
    digest = hashlib.sha256(assets.joinpath("chart.umd.min.js").read_bytes()).hexdigest()
    readme = assets.joinpath("README.md").read_text(encoding="utf-8")
    assert digest in readme
    assert f"chart.js@{CHART_JS_VERSION}" in readme
