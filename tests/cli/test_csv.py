"""Bad CSVs are refused row by row before anything is dialed."""

from __future__ import annotations

from pathlib import Path

import pytest

from audian_async import ValidationError
from audian_async.cli import main
from audian_async.cli._csv import CsvError, read_requests

FROM = "+14155552671"


def test_plain_list_and_header_forms() -> None:
    plain = read_requests("+14155550100\n\n# a comment\n+14155550101\n", from_=FROM, message="hi")
    assert [r.to for r in plain] == ["+14155550100", "+14155550101"]
    assert plain[0].call_control is not None
    with_header = read_requests(
        "name,phone,message\nAda,+14155550100,\nBob,+14155550101,custom text\n",
        from_=FROM,
        audio_url="https://example.com/a.mp3",
    )
    assert with_header[0].custom_fields == {"name": "Ada"}
    assert with_header[1].call_control is not None
    play = with_header[1].call_control.on_answered[0]
    assert play.message == "custom text"  # type: ignore[union-attr]


def test_national_numbers_need_a_region() -> None:
    with pytest.raises(CsvError) as info:
        read_requests("(415) 555-0100\n", from_=FROM, message="hi")
    assert "pass --region" in str(info.value)  # the command's option, not the SDK's
    assert "default_region" not in str(info.value)
    ok = read_requests("(415) 555-0100\n", from_=FROM, message="hi", default_region="US")
    assert ok[0].to == "+14155550100"


def test_every_bad_row_is_listed_with_its_line() -> None:
    text = "to\n+14155550100\nnot-a-number\n+1415555\n+14155550101\n,\n123\n"
    with pytest.raises(CsvError) as info:
        read_requests(text, from_=FROM, message="hi", path="list.csv")
    lines = [e.line for e in info.value.errors]
    assert lines == [3, 4, 7]
    assert "list.csv" in str(info.value)
    assert "line 3" in str(info.value)
    assert "not-a-number" in str(info.value)


def test_empty_file_and_bad_caller_id() -> None:
    with pytest.raises(CsvError, match="no numbers"):
        read_requests("\n\n", from_=FROM, message="hi")
    with pytest.raises(ValidationError) as info:
        read_requests("+14155550100\n", from_="nope", message="hi")
    assert info.value.field == "from"


def test_cli_refuses_a_bad_csv_before_dialing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unreachable API: the command must stop at validation, never reach it.
    monkeypatch.setenv("AUDIAN_API_KEY", "k")
    monkeypatch.setenv("AUDIAN_BASE_URL", "http://127.0.0.1:9/v2")
    csv_file = tmp_path / "n.csv"
    csv_file.write_text("+14155550100\nbogus\n+14155550101\n+1\n")
    db = tmp_path / "state.sqlite3"
    code = main(["dial", str(csv_file), "--from", FROM, "--message", "hi", "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2
    assert "line 2" in err
    assert "line 4" in err
    assert "nothing was dialed" in err
    assert not db.exists()


def test_cli_refuses_a_bad_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDIAN_API_KEY", "k")
    csv_file = tmp_path / "n.csv"
    csv_file.write_text("+14155550100\n")
    code = main(["dial", str(csv_file), "--from", FROM, "--message", "hi", "--max-attempts", "0"])
    assert code == 2
    assert "max_attempts" in capsys.readouterr().err
