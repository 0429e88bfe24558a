"""Serve an ASGI app (a ``WebhookApp``) with uvicorn on a background thread.

uvicorn runs its own asyncio loop, so the thread makes it usable from trio programs as
well; the dialer's handlers hop back to the caller's loop by themselves.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from .._errors import AudianError

__all__ = ["serve_in_thread"]


@asynccontextmanager
async def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks"
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 picks a free port); yields the webhook URL."""
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise AudianError(
            "serving webhooks needs uvicorn: pip install 'audian-async[sandbox]'"
        ) from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise AudianError(f"cannot listen on {host}:{port}: {exc}") from None
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=serve, name="audian-webhooks", daemon=True)
    thread.start()
    try:
        while not server.started:
            if failure or not thread.is_alive():
                raise AudianError(f"the webhook server did not start: {failure[:1]}")
            await anyio.sleep(0.01)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}{path}"
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(thread.join, 5.0)
        sock.close()
