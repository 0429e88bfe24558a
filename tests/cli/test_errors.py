"""Errors raised inside the commands' task groups print "error: ...", not a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest

from audian_async import CallRequest
from audian_async._convert import request_to_wire
from audian_async._json import dumps
from audian_async.cli import main
from audian_async.dialer import ItemRecord, SQLiteStore

FROM = "+14155552671"


def test_demo_with_no_live_calls_allowed_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--max-active", "0", "--db", str(tmp_path / "d.sqlite3")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:")
    assert "max-active" in err
    assert "Traceback" not in err


def test_dial_resuming_with_another_csv_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state.sqlite3"
    stored = CallRequest(from_=FROM, to="+14155550100")

    async def store_campaign() -> None:
        store = SQLiteStore(db)
        await store.open()
        await store.nonce("same", "abc")
        wire = dumps(request_to_wire(stored)).decode()
        await store.save("same", [ItemRecord(0, "pending", 0, (), None, None, wire)])
        await store.aclose()

    anyio.run(store_campaign)
    with socket.socket() as sock:  # nothing listens here: nothing can be dialed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AUDIAN_API_KEY", "k")
    monkeypatch.setenv("AUDIAN_BASE_URL", f"http://127.0.0.1:{port}/v2")
    monkeypatch.delenv("AUDIAN_WEBHOOK_SECRET", raising=False)
    csv_file = tmp_path / "other.csv"
    csv_file.write_text("+14155550199\n")
    command = ["dial", str(csv_file), "--from", FROM, "--message", "hi", "--campaign", "same"]
    code = main([*command, "--db", str(db), "--json"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error:")
    assert "item 0 was +14155550100" in err
    assert "ExceptionGroup" not in err
    assert "Traceback" not in err
