"""``audian-async dial ... --store redis://``: the same command on two machines shares the
campaign (two processes here)."""

from __future__ import annotations

import os
import sys
import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest

from audian_async._json import loads
from audian_async.sandbox import Sandbox

pytestmark = pytest.mark.anyio

FROM = "+14155552671"
NUMBERS = [f"+1415555{6000 + i}" for i in range(30)]


async def test_the_same_dial_command_in_two_processes_shares_one_campaign(
    redis_url: str, tmp_path: Path
) -> None:
    numbers_csv = tmp_path / "numbers.csv"
    numbers_csv.write_text("\n".join(NUMBERS) + "\n")
    async with Sandbox(speed=50.0) as sb:
        env = {**os.environ, "AUDIAN_API_KEY": sb.api_key, "AUDIAN_BASE_URL": sb.base_url}
        env.pop("AUDIAN_WEBHOOK_SECRET", None)  # outcomes by polling
        command = [
            sys.executable, "-m", "audian_async", "dial", str(numbers_csv),
            "--from", FROM, "--message", "hello", "--store", redis_url, "--max-active", "4",
            "--poll-after", "0.05", "--poll-interval", "0.05", "--json",
            "--campaign", f"cli-{uuid.uuid4().hex[:8]}",  # the server outlives one test
        ]  # fmt: skip
        results: list[tuple[int, bytes, bytes]] = []

        async def dial() -> None:
            done = await anyio.run_process(command, env=env, check=False)
            results.append((done.returncode, done.stdout, done.stderr))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(dial)
                tg.start_soon(dial)
        peak = sb.peak_live_calls
        calls = Counter(str(c.to) for c in sb.calls.values())
    for code, _, err in results:
        assert code == 0, err.decode()
    first, second = (loads(out) for _, out, _ in results)
    assert first["outcomes"] == second["outcomes"]
    assert [o["status"] for o in first["outcomes"]] == ["completed"] * len(NUMBERS)
    assert calls == dict.fromkeys(NUMBERS, 1)
    assert peak <= 4
    assert "127.0.0.1" in first["db"]
