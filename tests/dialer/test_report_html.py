"""A campaign report as one HTML page: the numbers on it are the report's, and it stands alone.

The page is read here with the standard library's parser; tests/browser/test_report_page.py
opens a real campaign's page in Chromium and checks that the charts are drawn.
"""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audian_async.dialer import CallOutcome, CampaignReport
from audian_async.dialer._report import write_report
from audian_async.dialer._report_html import CHART_JS_VERSION, render_html

from .reports import known_report

_VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "source", "wbr"})


class Page(HTMLParser):
    """What a test reads of a report page: elements by id, table rows, scripts, links."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.urls: list[str] = []
        self.canvases: list[str] = []
        self._open: list[tuple[str, str | None]] = []  # every element open, with its id
        self._table: str | None = None
        self._row: tuple[str, list[str]] | None = None
        self._script: dict[str, str | None] | None = None
        self._chunks: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))
        element_id = found.get("id")
        if element_id:
            self.attrs[element_id] = found
            self.text[element_id] = ""
        if tag not in _VOID:
            self._open.append((tag, element_id))
        if tag == "canvas" and element_id:
            self.canvases.append(element_id)
        if tag == "table":
            self._table = element_id
        if tag == "tr" and found.get("data-key") is not None:
            self._row = (str(found["data-key"]), [])
        if tag == "script":
            self._script, self._chunks = found, []

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass
        if tag == "tr" and self._row is not None and self._table is not None:
            key, cells = self._row
            self.rows.setdefault(self._table, {})[key] = "".join(cells).strip()
            self._row = None
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._chunks)))
            self._script = None

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data
        if self._row is not None:
            self._row[1].append(data + "|")
        if self._script is not None:
            self._chunks.append(data)

    def count_in(self, table: str, key: str) -> int:
        """The count cell of the row ``key`` of ``table``."""
        cells = [c for c in self.rows[table][key].split("|") if c.strip()]
        return int(cells[-1].replace(",", ""))

    def total(self, key: str) -> int:
        value = self.attrs[f"total-{key}"]["data-value"]
        assert value is not None
        return int(value)

    def data(self) -> dict[str, object]:
        [(_, text)] = [(a, t) for a, t in self.scripts if a.get("id") == "report-data"]
        loaded: dict[str, object] = json.loads(text)
        return loaded


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


@pytest.mark.parametrize(
    ("name", "kind"), [("r.html", "html"), ("R.HTM", "html"), ("r.json", "json")]
)
def test_write_report_picks_the_format_by_suffix(tmp_path: Path, name: str, kind: str) -> None:
    report = known_report()
    path = write_report(report, tmp_path / name)
    text = path.read_text(encoding="utf-8")
    if kind == "json":
        assert json.loads(text) == report.to_dict()
    else:
        assert text.startswith("<!DOCTYPE html>")


def test_write_report_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.html, \.htm or \.json"):
        write_report(known_report(), tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def test_the_inlined_chart_js_is_the_published_file() -> None:
    # The hash the assets' README names: the vendored file is npm's, unmodified.
    from importlib import resources

    assets = resources.files("audian_async.dialer").joinpath("_report_assets")
    digest = hashlib.sha256(assets.joinpath("chart.umd.min.js").read_bytes()).hexdigest()
    readme = assets.joinpath("README.md").read_text(encoding="utf-8")
    assert digest in readme
    assert f"chart.js@{CHART_JS_VERSION}" in readme
