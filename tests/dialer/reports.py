"""For the report-format tests: a campaign report with known numbers, built by hand, and a
reader of report pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser

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
