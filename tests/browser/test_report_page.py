"""A real campaign's report page in Chromium: the charts are drawn and the numbers shown.

The campaign runs against the sandbox (with webhooks, seeded 429s and numbers that fail,
redial and answer) in a thread of its own, before the page is opened: Playwright's
synchronous API keeps its own event loop on the test's thread. The page is opened from
``file://`` with every other request refused, as a report opened offline would be.

``AUDIAN_DOCS_IMAGES=1`` also saves the whole page as ``docs/images/campaign-report.png``,
the screenshot of ``docs/reports.md``.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from playwright.sync_api import Page, Route, expect

from audian_async.dialer import CampaignReport, Dialer, MemoryStore
from audian_async.sandbox import Faults

from ..dialer.support import (
    ANSWERS,
    BUSY,
    BUSY_THEN_ANSWER,
    DECLINED,
    FAST,
    INVALID,
    NO_ANSWER,
    req,
    sandbox_with_receiver,
)
from .conftest import ARTIFACTS

DOCS_IMAGE = Path(__file__).parents[2] / "docs" / "images" / "campaign-report.png"
CHARTS = [
    "chart-outcomes",
    "chart-attempts",
    "chart-live",
    "chart-creates",
    "chart-redials",
    "chart-finished",
    "chart-429",
]


async def _campaign() -> CampaignReport:
    # Seeded: the same creates are answered 429 on every run (the campaign's name is in
    # their bodies), so the 429 chart always has something to draw.
    faults = Faults(error_rate={"POST /v2/calls": 0.15}, error_status=429, seed=3)
    async with sandbox_with_receiver(faults=faults) as (sb, router):
        dialer = Dialer(sb.client, router, retry=FAST, store=MemoryStore(), max_active_calls=8)
        numbers = [ANSWERS] * 16 + [BUSY, BUSY, NO_ANSWER, DECLINED, INVALID, BUSY_THEN_ANSWER]
        return await dialer.run(
            [req(n) for n in numbers], campaign="spring-sale", keep_duplicates=True
        )


@pytest.fixture(scope="module")
def report() -> CampaignReport:
    """The campaign's report, run on a thread of its own (see the module docstring)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, _campaign).result()


_CANVAS_INK = """
(id) => {
  const canvas = document.getElementById(id);
  const chart = Chart.getChart(canvas);
  const points = chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0;
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let inked = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
  return { points, width, height, inked };
}
"""


def test_a_campaigns_report_draws_its_charts_and_shows_its_numbers(
    report: CampaignReport, page: Page, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    report.to_html(path)
    url = path.as_uri()
    requested: list[str] = []
    errors: list[str] = []

    def only_the_file(route: Route) -> None:
        requested.append(route.request.url)
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_file)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)

    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    expect(page).to_have_title("Campaign spring-sale: report")
    expect(page.locator("#campaign")).to_have_text("spring-sale")
    assert (report.completed, report.failed) == (17, 5)
    assert report.rate_limited > 0
    for key, value in [
        ("requested", len(report.outcomes)),
        ("completed", report.completed),
        ("failed", report.failed),
        ("attempts", report.attempts),
        ("redials", report.redials),
        ("rate-limited", report.rate_limited),
    ]:
        total = page.locator(f"#total-{key}")
        expect(total).to_have_attribute("data-value", str(value))
        expect(total).to_have_text(re.compile(rf"^{value:,}(\s|$)"))
    for reason, count in report.reasons().items():
        row = page.locator(f'#outcomes tr[data-key="failed:{reason}"]')
        expect(row).to_contain_text(reason)
        expect(row.locator("td.n")).to_have_text(str(count))
    expect(page.locator('#outcomes tr[data-key="completed"] td.n')).to_have_text("17")
    for attempts, count in report.attempts_per_item().items():
        cell = page.locator(f'#attempts-per-item tr[data-key="{attempts}"] td.n')
        expect(cell).to_have_text(str(count))

    # Every chart is a Chart.js chart with data, and its canvas has ink on it.
    expect(page.locator("canvas")).to_have_count(len(CHARTS))
    for chart_id in CHARTS:
        drawn = page.evaluate(_CANVAS_INK, chart_id)
        assert drawn["points"] > 0, chart_id
        assert drawn["width"] > 100, (chart_id, drawn)
        assert drawn["height"] > 100, (chart_id, drawn)
        assert drawn["inked"] > 500, (chart_id, drawn)  # axes, labels and the data

    assert errors == []
    assert requested == [url]  # nothing fetched but the file itself: it works offline

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "campaign-report-full.png", full_page=True)
    if os.environ.get("AUDIAN_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS_IMAGE, full_page=True)
