"""The webhook examples run to completion as scripts, each within a bounded time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent.parent / "examples"

# script -> fragments its output must contain
EXPECTED = {
    "webhooks_uvicorn.py": ["received CallFailed(", "would redial call_xyz789: busy (486)",
                            "delivery answered 204"],
    "webhooks_fastapi.py": ["received CallCompleted(", "talked 45s", "delivery answered 204"],
    "webhooks_sandbox.py": ["CallInitiated", "failed: reason=busy code=486",
                            "failed: reason=declined code=603", "call.completed  CallCompleted",
                            "all 4 calls ended"],
}  # fmt: skip


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_webhook_example_runs(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIAN_")}
    env["SANDBOX_SPEED"] = "100"
    env.pop("PORT", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=EXAMPLES,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for fragment in EXPECTED[script]:
        assert fragment in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


def test_every_webhook_example_is_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("webhooks_*.py")} == set(EXPECTED)
