"""The pytest fixtures of audian_async.testing and the ``audian-async sandbox`` command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

import audian_async as au
from audian_async.sandbox import MAGIC_NUMBERS, Sandbox

from .conftest import OWNED


@pytest.fixture
def audian_sandbox_options() -> dict[str, Any]:
    return {"speed": 200, "max_concurrent": 3}


@pytest.mark.anyio
async def test_the_async_fixture(audian_sandbox: Sandbox) -> None:
    call = await audian_sandbox.client.calls.create(from_=OWNED, to="+14155550101")
    done = await audian_sandbox.wait_for_status(call.call_id)
    assert done.reason == "busy"
    assert audian_sandbox.max_concurrent == 3


@pytest.mark.anyio
async def test_the_sync_fixture(audian_sandbox_server: Sandbox) -> None:
    sb = audian_sandbox_server
    with pytest.raises(au.AudianError):
        _ = sb.client
    async with au.AsyncAudian(sb.api_key, base_url=sb.base_url) as client:
        call = await client.calls.create(from_=OWNED, to="+14155552672")
    assert call.call_id in sb.calls


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_cli_serves_the_reference_example() -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "audian_async",
        "sandbox",
        "--port",
        str(port),
        "--api-key",
        "sk_cli",
        "--speed",
        "100",
        "--caller-id",
        "+14155552680",
        "--latency",
        "0.01",
        "--error-rate",
        "GET /v2/calls/{id}=1",
        "--error-status",
        "502",
        "--no-reply-rate",
        "POST /v2/calls/batch=1",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            banner = ""
            deadline = time.monotonic() + 30
            while "Press Ctrl-C" not in banner and time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                banner += line
            base_url = f"http://127.0.0.1:{port}/v2"
            assert base_url in banner
            assert "sk_cli" in banner
            for number in MAGIC_NUMBERS:
                assert number in banner
            assert re.search(r"whsec_\S+", banner)
            assert "+14155552671, +14155552680" in banner
            assert "latency 0.01s" in banner
            document = re.search(r"OpenAPI\s+(\S+)", banner)
            assert document is not None
            assert httpx.get(document[1]).json()["openapi"].startswith("3.1")
            dashboard = re.search(r"dashboard\s+(\S+)", banner)
            assert dashboard is not None
            assert dashboard[1] == f"http://127.0.0.1:{port}/"
            assert "text/html" in httpx.get(dashboard[1]).headers["content-type"]
            # The reference's basic example, as curl would send it.
            response = httpx.post(
                f"{base_url}/calls",
                headers={"X-Auth-Token": "sk_cli", "Content-Type": "application/json"},
                content=b'{\n"from": "+14155552671",\n"to": "+14155552672"\n}',
            )
            assert response.status_code == 201
            reply = response.json()
            assert reply["from"] == "+14155552671"
            assert reply["to"] == "+14155552672"
            assert reply["status"] == "initiated"
            assert reply["call_id"].startswith("call_")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reply["created_at"])
            other = httpx.post(
                f"{base_url}/calls",
                headers={"Authorization": "Bearer sk_cli"},
                json={"from": "+14155552680", "to": "+14155552672"},
            )
            assert other.status_code == 201
            # The fault knobs from the command line.
            injected = httpx.get(
                f"{base_url}/calls/{reply['call_id']}", headers={"X-Auth-Token": "sk_cli"}
            )
            assert injected.status_code == 502
            assert injected.json()["error"] == "bad_gateway"
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    f"{base_url}/calls/batch",
                    headers={"X-Auth-Token": "sk_cli"},
                    json={"calls": [{"from": "+14155552671", "to": "+14155552673"}]},
                    timeout=0.5,
                )
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "option",
    [
        ["--webhook-secret", "whsec_not*base64"],
        ["--error-rate", "POST /v2/nowhere=0.5"],
        ["--no-reply-rate", "POST /v2/calls=2"],
    ],
)
def test_the_cli_refuses_bad_options(option: list[str]) -> None:
    command = [sys.executable, "-m", "audian_async", "sandbox", "--port", "0"]
    done = subprocess.run(command + option, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert option[0].removeprefix("--").replace("-", "_") in done.stderr.replace("-", "_")
    assert "not*base64" not in done.stderr


@pytest.mark.anyio
async def test_stopping_leaves_no_thread_behind() -> None:
    import threading

    pools = ("Trio thread", "AnyIO worker")  # idle, pooled threads of to_thread.run_sync
    before = set(threading.enumerate())
    async with Sandbox(speed=200) as sb:
        await sb.client.calls.create(from_=OWNED, to="+14155552672")
        server = [t for t in set(threading.enumerate()) - before if not t.name.startswith(pools)]
        assert server
    assert not [t for t in server if t.is_alive()]


@pytest.mark.anyio
async def test_a_failed_enter_stops_the_server() -> None:
    import threading

    pools = ("Trio thread", "AnyIO worker")
    before = set(threading.enumerate())
    sb = Sandbox(speed=200, client_options={"no_such_option": 1})
    with pytest.raises(TypeError):
        async with sb:
            pass
    left = [t for t in set(threading.enumerate()) - before if not t.name.startswith(pools)]
    assert not [t for t in left if t.is_alive()]
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(sb.base_url + "/calls/x")
