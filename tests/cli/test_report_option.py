"""``audian-async dial --report``: the campaign's report as a page or as JSON, by suffix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audian_async.cli import main
from audian_async.cli._reports import write_report
from audian_async.sandbox import Sandbox

from ..dialer.reports import Page, known_report

FROM = "+14155552671"
NUMBERS = ["+14155550100", "+14155550101", "+14155550103", "+14155550106"]
"""Answers; busy (three attempts); declined; busy, then answers on the redial."""


@pytest.fixture
def audian_sandbox_options() -> dict[str, Any]:
    return {"speed": 100.0}


def _dial(tmp_path: Path, sb: Sandbox, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("\n".join(NUMBERS) + "\n")
    monkeypatch.setenv("AUDIAN_API_KEY", sb.api_key)
    monkeypatch.setenv("AUDIAN_BASE_URL", sb.base_url)
    monkeypatch.delenv("AUDIAN_WEBHOOK_SECRET", raising=False)  # outcomes by polling
    return main(
        [
            "dial", str(numbers), "--from", FROM, "--message", "hello",
            "--db", str(tmp_path / "state.sqlite3"), "--base-delay", "0.01",
            "--max-delay", "0.02", "--poll-after", "0.05", "--poll-interval", "0.05",
            "--json", *extra,
        ]
    )  # fmt: skip


def test_dial_writes_its_report_as_json(
    tmp_path: Path,
    audian_sandbox_server: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "out" / "report.json"
    path.parent.mkdir()
    assert _dial(tmp_path, audian_sandbox_server, monkeypatch, "--report", str(path)) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)  # stdout stays the --json report alone
    assert f"report: {path}" in err
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("campaign", "completed", "failed", "attempts", "failed_by_reason", "outcomes"):
        assert data[key] == printed[key], key
    assert (data["completed"], data["failed"], data["attempts"]) == (2, 2, 7)
    assert data["failed_by_reason"] == {"busy": 1, "declined": 1}
    assert data["attempts_per_item"] == {"1": 2, "2": 1, "3": 1}
    timeline = data["timeline"]
    assert sum(timeline["creates"]) == 4
    assert sum(timeline["redial_creates"]) == 3


def test_dial_writes_its_report_as_a_page(
    tmp_path: Path,
    audian_sandbox_server: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "report.html"
    assert _dial(tmp_path, audian_sandbox_server, monkeypatch, "--report", str(path)) == 0
    printed = json.loads(capsys.readouterr().out)
    page = Page(path.read_text(encoding="utf-8"))
    assert page.text["campaign"] == printed["campaign"]
    assert (page.total("completed"), page.total("failed"), page.total("attempts")) == (2, 2, 7)
    assert page.count_in("outcomes", "failed:busy") == 1
    assert page.count_in("outcomes", "failed:declined") == 1
    assert "chart-live" in page.canvases


def test_a_report_of_another_kind_is_refused_before_dialing(
    tmp_path: Path,
    audian_sandbox_server: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _dial(tmp_path, audian_sandbox_server, monkeypatch, "--report", "report.pdf")
    assert code == 2
    assert "--report report.pdf: name a .html or .json file" in capsys.readouterr().err
    assert audian_sandbox_server.calls == {}  # nothing was dialed
    assert not Path("report.pdf").exists()


@pytest.mark.parametrize(
    ("name", "kind"), [("r.html", "html"), ("R.HTM", "html"), ("r.json", "json")]
)
def test_write_report_picks_the_format_by_suffix(tmp_path: Path, name: str, kind: str) -> None:
    report = known_report()
    path = write_report(report, tmp_path / name)
    assert path == (tmp_path / name).resolve()
    text = path.read_text(encoding="utf-8")
    if kind == "json":
        assert json.loads(text) == report.to_dict()
    else:
        assert text.startswith("<!DOCTYPE html>")


def test_write_report_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.html, \.htm or \.json"):
        write_report(known_report(), tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
