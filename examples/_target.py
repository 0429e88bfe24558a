"""Where the examples send their requests: the real API when AUDIAN_BASE_URL is set, otherwise
an in-process sandbox on loopback, so every example runs anywhere with no account."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import audian_async as au

CALLER_ID = "+14155552671"  # the caller ID the sandbox account owns, as in the reference


@asynccontextmanager
async def audian() -> AsyncIterator[tuple[au.AsyncAudian, Any]]:
    """Yield ``(client, sandbox)``; ``sandbox`` is None against a real API."""
    if os.environ.get("AUDIAN_BASE_URL"):
        async with au.AsyncAudian() as client:
            yield client, None
        return
    from audian_async.sandbox import Sandbox

    async with Sandbox(speed=float(os.environ.get("SANDBOX_SPEED", "50"))) as sandbox:
        print(f"(AUDIAN_BASE_URL is not set: using an in-process sandbox at {sandbox.base_url})")
        yield sandbox.client, sandbox


async def wait_until_done(client: au.AsyncAudian, call_id: str, *, every: float = 0.1) -> au.Call:
    """Poll a call until it completes or fails (a webhook receiver is the better way)."""
    import anyio

    while True:
        call = await client.calls.get(call_id)
        if call.status in (au.CallStatus.COMPLETED, au.CallStatus.FAILED):
            return call
        await anyio.sleep(every)
