"""`audian-async demo` runs end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from audian_async.cli import main
from audian_async.cli.demo import demo_requests


def test_demo_runs_and_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "demo.sqlite3"
    code = main(["demo", "--calls", "24", "--speed", "100", "--db", str(db)])
    out = capsys.readouterr().out
    assert code == 0
    assert "requested" in out
    assert "recordings received" in out
    assert str(db) in out
    assert db.exists()


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
