"""Every scenario example in examples/ runs to completion against an in-process sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

# script -> a line fragment its output must contain
SCENARIOS = {
    "basic_call.py": "placed call_",
    "timeout_and_tags.py": "timeout=45s max_duration=600s",
    "call_control.py": "ended completed",
    "ivr_menu.py": "ended completed",
    "recording.py": "recording: http://127.0.0.1:",
    "tts.py": "TTS greeting",
    "scheduled_call.py": "has started",
    "batch.py": "3 queued, 0 failed",
    "status_polling.py": "completed",
    "error_handling.py": "and a good call goes through",
}

# The services (FastAPI, Starlette): a sandbox delivers its webhooks to the service's exact
# /webhooks path and the reminder submitted over HTTP must complete.
SERVICES = {
    "service_fastapi.py": ["reminder 0: completed after 1 attempt(s)", "answered [204]"],
    "service_starlette.py": ["reminder 0: completed after 1 attempt(s)", "answered [204]"],
}


@pytest.mark.parametrize("script", sorted(SCENARIOS))
def test_example_runs(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIAN_")}
    env["SANDBOX_SPEED"] = "100"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=EXAMPLES,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert SCENARIOS[script] in result.stdout, result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", sorted(SERVICES))
def test_service_runs_end_to_end(script: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIAN_")}
    env["SANDBOX_SPEED"] = "100"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=tmp_path,  # the dialer's state stays out of the repository
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for fragment in SERVICES[script]:
        assert fragment in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert "failed delivery" not in result.stdout


def test_every_scenario_script_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith(("_", "webhooks"))}
    assert scripts == set(SCENARIOS) | set(SERVICES)
