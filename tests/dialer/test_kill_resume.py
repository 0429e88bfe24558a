"""kill -9 in the middle of a campaign, then resume it: nothing dialed twice, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from audian_async import CallRequest
from audian_async._convert import request_to_wire
from audian_async._json import dumps
from audian_async.dialer import Dialer, MemoryStore, RetryPolicy
from audian_async.dialer._machine import DialMachine, ItemRecord

from ..loopback import until
from .support import BUSY, BUSY_THEN_ANSWER, DECLINED, FROM, calls_per_number, sandbox_with_receiver

pytestmark = pytest.mark.anyio

PLAIN = [f"+1415555{2700 + i}" for i in range(40)]  # answer and complete


def _command(csv_file: Path, db: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "audian_async",
        "dial",
        str(csv_file),
        "--from",
        FROM,
        "--message",
        "hello",
        "--campaign",
        "killed",
        "--db",
        str(db),
        "--max-active",
        "6",
        "--max-attempts",
        "3",
        "--base-delay",
        "0.05",
        "--max-delay",
        "0.2",
        "--no-webhooks",
        "--poll-after",
        "0.05",
        "--poll-interval",
        "0.05",
        "--json",
    ]


async def test_sigkill_mid_campaign_then_resume(tmp_path: Path) -> None:
    numbers = [*PLAIN, BUSY, BUSY_THEN_ANSWER, DECLINED]
    csv_file = tmp_path / "numbers.csv"
    csv_file.write_text("to\n" + "\n".join(numbers) + "\n")
    db = tmp_path / "campaign.sqlite3"
    async with sandbox_with_receiver(webhooks=False, speed=20.0) as (sb, _):
        env = {**os.environ, "AUDIAN_API_KEY": sb.api_key, "AUDIAN_BASE_URL": sb.base_url}
        command = _command(csv_file, db)
        first = await anyio.open_process(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        async with first:
            try:
                # Another process dials into the sandbox's thread: nothing here to await.
                await until(lambda: len(sb.calls) >= 15 or first.returncode is not None, timeout=30)
                assert first.returncode is None, "finished before it could be killed"
            finally:
                first.send_signal(signal.SIGKILL)
                await first.wait()
        assert first.returncode == -signal.SIGKILL
        placed_before = len(sb.calls)
        assert placed_before < len(numbers) + 3  # really killed mid-run

        def resume() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)

        second = await anyio.to_thread.run_sync(resume)
        assert second.returncode == 0, second.stderr.decode()
        per_number = calls_per_number(sb)
    report = json.loads(second.stdout)
    outcomes = {o["to"]: o for o in report["outcomes"]}
    assert len(report["outcomes"]) == len(numbers)  # nothing lost
    expected_calls = Counter(dict.fromkeys(PLAIN, 1) | {BUSY: 3, BUSY_THEN_ANSWER: 2, DECLINED: 1})
    assert per_number == expected_calls  # nobody dialed more often than the outcome needs
    for number in PLAIN:
        assert outcomes[number]["status"] == "completed"
    assert outcomes[BUSY]["reason"] == "busy"
    assert outcomes[BUSY_THEN_ANSWER]["status"] == "completed"
    assert outcomes[DECLINED]["reason"] == "declined"
    assert report["attempts"] == sum(expected_calls.values())


async def test_a_resumed_create_whose_call_already_ended_is_polled_soon() -> None:
    # The dead process had stored item 0 as "placing" and sent its create, which the API
    # acted on; the call then ended while nobody listened. The resumed run's replay returns
    # the call as first created (not ended): it must be polled soon, not after the whole
    # timeout + max_duration + grace (36.9 s here), and its slot freed then.
    store = MemoryStore()
    request = CallRequest(from_=FROM, to="+14155552950")
    wire = dumps(request_to_wire(request)).decode()
    store.nonces["c"] = "n1"
    store.campaigns["c"] = {0: ItemRecord(0, "placing", 1, (), None, None, wire)}
    # No webhooks reach the router: the one of that call went to the dead process.
    async with sandbox_with_receiver(webhooks=False) as (sb, router):
        campaign = DialMachine("c", RetryPolicy(), "n1")
        item = campaign.restore(store.campaigns["c"][0], request)
        tagged, key = campaign.start_attempt(item)
        call = await sb.client.calls.create(tagged, idempotency_key=key)
        await sb.wait_for_status(call.call_id, "completed", "failed")
        dialer = Dialer(sb.client, router, store=store, time_scale=1 / 100)
        with anyio.fail_after(10):
            report = await dialer.run([request], campaign="c")
        replays = sb.stats.get("idempotent_replays", 0)
    assert replays == 1
    assert [(o.status, o.call_ids) for o in report.outcomes] == [("completed", (call.call_id,))]
