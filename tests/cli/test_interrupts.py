"""``audian-async dial``: the first Ctrl-C pauses, the second stops, the next run resumes."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from audian_async._json import loads
from audian_async.sandbox import Sandbox

from ..loopback import until

pytestmark = pytest.mark.anyio

FROM = "+14155552671"
NUMBERS = [f"+1415555{3300 + i}" for i in range(4)]


async def _read_until(process: Process, marker: bytes, seen: bytearray) -> None:
    assert process.stderr is not None
    with anyio.fail_after(30):
        while marker not in seen:
            seen += await process.stderr.receive()


async def test_ctrl_c_pauses_then_stops_and_the_next_run_resumes(tmp_path: Path) -> None:
    numbers_csv = tmp_path / "numbers.csv"
    numbers_csv.write_text("\n".join(NUMBERS) + "\n")
    db = tmp_path / "state.sqlite3"
    # Speed 5: an answered call lasts about a second, long enough to pause while it is live.
    async with Sandbox(speed=5.0) as sb:
        env = {
            **os.environ,
            "AUDIAN_API_KEY": sb.api_key,
            "AUDIAN_BASE_URL": sb.base_url,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("AUDIAN_WEBHOOK_SECRET", None)  # outcomes by polling
        command = [
            sys.executable,
            "-m",
            "audian_async",
            "dial",
            str(numbers_csv),
            "--from",
            FROM,
            "--message",
            "hello",
            "--campaign",
            "interrupted",
            "--db",
            str(db),
            "--max-active",
            "1",
            "--poll-after",
            "0.05",
            "--poll-interval",
            "0.05",
            "--json",
        ]
        stderr = bytearray()
        async with await anyio.open_process(command, env=env) as process:
            await until(lambda: len(sb.calls) >= 1, timeout=60)
            process.send_signal(signal.SIGINT)
            await _read_until(process, b"paused", stderr)
            # The one live call goes on to its end; its slot frees, and still nothing more
            # is placed: the next create would need that slot.
            await until(lambda: all(c.status in ("completed", "failed") for c in sb.calls.values()))
            process.send_signal(signal.SIGINT)
            assert process.stdout is not None
            out = bytearray()
            with anyio.fail_after(60):
                async for chunk in process.stdout:
                    out += chunk
                code = await process.wait()
            await _read_until(process, b"resume campaign", stderr)
        assert code == 130, stderr.decode()
        report = loads(bytes(out))
        assert report["pending"] >= 3
        assert [o["status"] for o in report["outcomes"][1:]] == ["pending"] * 3
        assert len(sb.calls) == 1  # paused right after the first create

        # The next run continues the campaign: every number dialed exactly once.
        with anyio.fail_after(120):
            rerun = await anyio.run_process(command, env=env, check=False)
        assert rerun.returncode == 0, rerun.stderr.decode()
        final = loads(rerun.stdout)
        assert [o["status"] for o in final["outcomes"]] == ["completed"] * 4
        assert Counter(str(c.to) for c in sb.calls.values()) == dict.fromkeys(NUMBERS, 1)
