"""Helpers for the webhook tests: signed deliveries and a real uvicorn on loopback."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from audian_async._json import dumps
from audian_async._serving import ThreadedServer
from audian_async.webhooks import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def delivery(
    event: str = "call.failed",
    data: dict[str, Any] | None = None,
    *,
    msg_id: str = "msg_1",
    event_id: str | None = "evt_1",
    ts: int | None = None,
    secret: str = SECRET,
) -> tuple[bytes, dict[str, str]]:
    """A body and its Standard Webhooks headers, signed now unless ``ts`` is given."""
    payload: dict[str, Any] = {"event": event, "data": data or {"call_id": "call_1"}}
    if event_id is not None:
        payload["id"] = event_id
    body = dumps(payload)
    return body, signed(body, msg_id=msg_id, ts=ts, secret=secret)


def signed(
    body: bytes, *, msg_id: str = "msg_1", ts: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield its base URL.

    The server runs its own asyncio loop, so the calling test may run on asyncio or trio.
    """
    options: dict[str, Any] = {"lifespan": "on", "graceful_shutdown": None, **config}
    server = ThreadedServer(app, startup_timeout=15, stop_timeout=15, name="uvicorn", **options)
    with server:
        yield server.url
    if server.error is not None:
        raise server.error
