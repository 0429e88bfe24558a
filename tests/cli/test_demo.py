"""`audian-async demo` runs end to end on embedded defaults."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from audian_async.cli import main
from audian_async.cli.demo import demo_requests

from ..dialer.reports import Page


def test_demo_runs_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The report's default place is the temp directory: here, the test's own.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    db = tmp_path / "demo.sqlite3"
    code = main(["demo", "--calls", "24", "--speed", "100", "--db", str(db)])
    out = capsys.readouterr().out
    assert code == 0
    assert "requested" in out
    assert "recordings received" in out
    assert str(db) in out
    assert db.exists()
    report = tmp_path / "audian-demo-report.html"
    assert f"report: {report}" in out
    page = Page(report.read_text(encoding="utf-8"))
    assert page.total("requested") == 24
    assert page.total("completed") + page.total("failed") == 24
    assert "chart-creates" in page.canvases


def test_demo_writes_its_report_where_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "demo.json"
    code = main(
        ["demo", "--calls", "6", "--speed", "100", "--db", str(tmp_path / "d.sqlite3"),
         "--report", str(report)]
    )  # fmt: skip
    assert code == 0
    assert f"report: {report}" in capsys.readouterr().out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["requested"] == 6
    assert data["completed"] + data["failed"] == 6


def test_demo_mixes_outcomes_ivr_and_recordings() -> None:
    requests = demo_requests(300)
    numbers = {r.to for r in requests}
    assert {"+14155550101", "+14155550102", "+14155550103", "+14155550106"} <= numbers
    assert sum(1 for r in requests if r.recording is not None) == 75
    assert any(
        r.call_control is not None and len(r.call_control.on_answered) == 2 for r in requests
    )


def test_demo_rejects_nonsense_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--calls", "0"]) == 2
    assert "--calls" in capsys.readouterr().err
    assert main(["demo", "--report", "demo.txt"]) == 2
    assert "--report demo.txt" in capsys.readouterr().err
