"""Without OpenTelemetry, and with the global providers: in fresh interpreters, since the
global providers can be set once per process and an import cannot be undone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["asyncio", "trio"]


def scenario(mode: str, backend: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.otel._scenario", mode, backend],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_works_when_opentelemetry_cannot_be_imported(backend: str) -> None:
    seen = scenario("blocked", backend)
    assert seen == {"status": 204, "campaign": [1, 1], "tracing": [False, False], "imported": []}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_api_nobody_imported_is_not_imported(backend: str) -> None:
    seen = scenario("unimported", backend)
    assert seen["imported"] == []
    assert seen["tracing"] == [False, False]


@pytest.mark.parametrize("backend", BACKENDS)
def test_global_providers_are_picked_up_by_objects_first_used_after_they_are_set(
    backend: str,
) -> None:
    seen = scenario("global", backend)
    # The client used before the provider was set stays untraced; the other client, the
    # webhook app and the dialer (both built before it was set) are instrumented.
    assert seen["tracing"] == [False, True]
    assert seen["spans"] == [
        ["POST /calls", "call_1"],
        ["webhook call.completed", "call_1"],
        ["POST /calls", "call_1"],  # the campaign's create
    ]
    assert seen["metrics"] == [
        "audian.dialer.calls.completed",
        "audian.dialer.calls.placed",
        "audian.dialer.create.duration",
    ]
