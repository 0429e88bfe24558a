"""Helpers for the webhook tests: signed deliveries and a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from audian_async._json import dumps
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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "loop": "asyncio"}
    server = uvicorn.Server(uvicorn.Config(app, **{**options, **config}))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if errors or not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {errors}")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
    if errors:
        raise errors[0]
