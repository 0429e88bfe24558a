"""A campaign report as one self-contained HTML page: a pure function of the report's data.

:func:`render_html` takes :meth:`CampaignReport.to_dict`'s data and returns the page: the
numbers as HTML (readable without scripts, and what tests read), the charts drawn in the
browser by Chart.js from the same data, embedded as JSON. Chart.js, the page's script and its
style are inlined from ``_report_assets/``, so the file opens offline, anywhere, and can be
mailed or archived as it is. Per-call outcomes stay out of the page (a million rows would
make it unusable); the JSON report carries them.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from .._version import __version__

__all__ = ["CHART_JS_VERSION", "render_html"]

CHART_JS_VERSION = "4.6.1"
"""The Chart.js inlined in every report (``_report_assets/chart.umd.min.js``)."""
_CHARTS = (
    ("chart-live", "Live calls", "Calls the API accepted and not yet ended, and items waiting "
     "for a redial: the highest sample in each interval."),
    ("chart-creates", "Creates per second", "Calls the API accepted, first attempts and "
     "redials stacked."),
    ("chart-redials", "Redial timeline", "Redials scheduled (a call ended busy, unanswered...) "
     "and placed, per second, and the items waiting for theirs."),
    ("chart-finished", "Items finished per second", "Items that reached their outcome."),
    ("chart-429", "429s waited out", "Creates the API answered 429 (not attempts: waited out "
     "and sent again), and the seconds waited for them."),
)  # fmt: skip


@cache
def _asset(name: str) -> str:
    assets = resources.files("audian_async.dialer").joinpath("_report_assets")
    return assets.joinpath(name).read_text("utf-8")


def _inline_script(source: str) -> str:
    """``source`` made safe inside a ``<script>`` element (the map comment dropped: the map
    is not shipped, and a page that must work offline should not ask for it)."""
    lines = [ln for ln in source.splitlines() if not ln.startswith("//# sourceMappingURL=")]
    text = "\n".join(lines)
    if "</script" in text.lower():  # would end the element early: never inline such a file
        raise ValueError("a script to inline contains '</script'")
    return text


def _licence_comment() -> str:
    """Chart.js's licence, whole, as a comment beside the library it covers (the MIT
    licence asks for its notice in every copy, and every report is one)."""
    text = _asset("chart.js-LICENSE.md").strip()
    if "*/" in text:  # would end the comment early
        raise ValueError("the licence text contains '*/'")
    return f"/*! Chart.js {CHART_JS_VERSION}, inlined: its licence follows.\n\n{text}\n*/"


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element nor open a comment in it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _n(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=whole))


def _total(key: str, label: str, value: int, extra: str = "") -> str:
    small = f" <small>{html.escape(extra)}</small>" if extra else ""
    return (
        f'<div class="total {key}"><dt>{html.escape(label)}</dt>'
        f'<dd id="total-{key}" data-value="{value}">{_n(value)}{small}</dd></div>'
    )


def _totals(data: dict[str, Any]) -> str:
    wait = data["rate_limited_wait_seconds"]
    waited = "" if wait is None else f"{wait:.1f} s waited"
    cards = [
        _total("requested", "requested", data["requested"]),
        _total("completed", "completed", data["completed"]),
        _total("failed", "failed", data["failed"]),
        _total("attempts", "attempts (calls placed)", data["attempts"]),
        _total("redials", "redials", data["redials"]),
        _total("rate-limited", "429s waited out", data["rate_limited"], waited),
        _total("polls", "status polls", data["polls"]),
    ]
    if data["pending"]:
        cards.insert(3, _total("pending", "pending (the next run resumes)", data["pending"]))
    if data["duplicates"]:
        cards.insert(3, _total("duplicates", "duplicates (not dialed)", data["duplicates"]))
    return f'<dl class="totals">{"".join(cards)}</dl>'


def _table(table_id: str, head: tuple[str, str], rows: list[tuple[str, int, str]]) -> str:
    body = "".join(
        f'<tr data-key="{html.escape(key)}"><td>{html.escape(label)}</td>'
        f'<td class="n">{_n(count)}</td></tr>'
        for label, count, key in rows
    )
    return (
        f'<table id="{table_id}"><thead><tr><th>{html.escape(head[0])}</th>'
        f'<th class="n">{html.escape(head[1])}</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _outcome_rows(data: dict[str, Any]) -> list[tuple[str, int, str]]:
    rows = [("completed", data["completed"], "completed")]
    rows += [(f"failed: {r}", n, f"failed:{r}") for r, n in data["failed_by_reason"].items()]
    if data["pending"]:
        rows.append(("pending", data["pending"], "pending"))
    if data["duplicates"]:
        rows.append(("duplicate (not dialed)", data["duplicates"], "duplicate"))
    return rows


def _figure(chart_id: str, title: str, note: str, *, small: bool = False) -> str:
    size = " small" if small else ""
    return (
        f'<figure class="figure"><h3>{html.escape(title)}</h3>'
        f'<div class="chart{size}"><canvas id="{chart_id}" role="img" '
        f'aria-label="{html.escape(title)}"></canvas></div>'
        f'<figcaption class="note">{html.escape(note)}</figcaption></figure>'
    )


def _when(timeline: dict[str, Any] | None) -> str:
    if timeline is None:
        return "No timeline was recorded for this run."
    started = datetime.fromisoformat(timeline["started_at"])
    return (
        f"Run started {started:%Y-%m-%d %H:%M:%S} UTC, lasted "
        f"{_duration(timeline['duration'])}; the charts count in intervals of "
        f"{timeline['step']:g} s."
    )


def render_html(data: dict[str, Any]) -> str:
    """The report page of ``data`` (:meth:`CampaignReport.to_dict`), as one string."""
    page_data = {k: v for k, v in data.items() if k != "outcomes"}
    timeline = data["timeline"]
    name = html.escape(data["campaign"])
    per_item = data["attempts_per_item"].items()
    attempts = [(f"{k} attempt{'' if k == '1' else 's'}", n, k) for k, n in per_item]
    over_time = (
        "".join(_figure(*chart) for chart in _CHARTS)
        if timeline is not None
        else '<p class="note">This report holds no timeline.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="audian-async {html.escape(__version__)}">
<title>Campaign {name}: report</title>
<style>
{_asset("report.css")}
</style>
</head>
<body>
<header>
<h1>Campaign <span id="campaign">{name}</span></h1>
<p class="meta" id="when">{html.escape(_when(timeline))}</p>
{_totals(data)}
</header>
<main>
<h2>Outcomes</h2>
<div class="pair">
<section>
{_figure("chart-outcomes", "Outcomes by reason", "Items by how they ended.", small=True)}
{_table("outcomes", ("outcome", "items"), _outcome_rows(data))}
</section>
<section>
{_figure("chart-attempts", "Attempts per item", "Dialed items by calls placed.", small=True)}
{_table("attempts-per-item", ("attempts", "items"), attempts)}
</section>
</div>
<h2>Over time</h2>
{over_time}
</main>
<footer>
Written by audian-async {html.escape(__version__)}. Charts drawn with Chart.js
{CHART_JS_VERSION} (MIT licence, inlined with it below), included in this file: it opens
offline. Every call's outcome is in the JSON report (<code>--report report.json</code>).
</footer>
<script type="application/json" id="report-data">{_json_for_script(page_data)}</script>
<script>
{_licence_comment()}
{_inline_script(_asset("chart.umd.min.js"))}
</script>
<script>
{_inline_script(_asset("report.js"))}
</script>
</body>
</html>
"""
