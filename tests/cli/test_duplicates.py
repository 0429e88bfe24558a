"""``audian-async dial`` with a number listed twice: dialed once, warned about, reported."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from audian_async._json import loads
from audian_async.sandbox import Sandbox

pytestmark = pytest.mark.anyio

FROM = "+14155552671"
NUMBERS = ["+14155556001", "+14155556002", "+14155556001", "(415) 555-6002"]


@pytest.mark.parametrize("keep", [False, True], ids=["once", "keep-duplicates"])
async def test_a_number_listed_twice_is_dialed_once_unless_kept(tmp_path: Path, keep: bool) -> None:
    numbers_csv = tmp_path / "numbers.csv"
    numbers_csv.write_text("\n".join(NUMBERS) + "\n")
    async with Sandbox(speed=50.0) as sb:
        env = {**os.environ, "AUDIAN_API_KEY": sb.api_key, "AUDIAN_BASE_URL": sb.base_url}
        env.pop("AUDIAN_WEBHOOK_SECRET", None)  # outcomes by polling
        command = [
            sys.executable, "-m", "audian_async", "dial", str(numbers_csv),
            "--from", FROM, "--message", "hello", "--region", "US",
            "--db", str(tmp_path / "state.sqlite3"),
            "--poll-after", "0.05", "--poll-interval", "0.05", "--json",
        ]  # fmt: skip
        if keep:
            command.append("--keep-duplicates")
        with anyio.fail_after(60):
            done = await anyio.run_process(command, env=env, check=False)
        calls = Counter(str(c.to) for c in sb.calls.values())
    assert done.returncode == 0, done.stderr.decode()
    report = loads(done.stdout)
    statuses = [o["status"] for o in report["outcomes"]]
    if keep:
        assert calls == {"+14155556001": 2, "+14155556002": 2}
        assert statuses == ["completed"] * 4
        assert report["duplicates"] == 0
        assert b"duplicate" not in done.stderr
    else:
        assert calls == {"+14155556001": 1, "+14155556002": 1}
        assert statuses == ["completed", "completed", "duplicate", "duplicate"]
        assert [o["duplicate_of"] for o in report["outcomes"]] == [None, None, 0, 1]
        assert report["duplicates"] == 2
        assert b"2 duplicate numbers" in done.stderr
