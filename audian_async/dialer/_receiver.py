"""Serve an ASGI app (a ``WebhookApp``) with uvicorn, for the dialer's commands.

:func:`serve_webhooks` serves it on the caller's own event loop when that loop is asyncio:
the webhooks are then handled by the same thread as the dialer, with no hand-off between
threads and no contention for the GIL. uvicorn needs asyncio, so under trio it falls back to
:func:`serve_in_thread`, a background thread with its own asyncio loop; the dialer's
handlers hop to the dialer's loop by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from .._errors import AudianError
from .._serving import ThreadedServer, bind_socket, require_uvicorn

__all__ = ["serve_in_thread", "serve_webhooks"]


def _on_asyncio() -> bool:
    # uvicorn can only join the caller's loop if that is an asyncio loop (not trio).
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@asynccontextmanager
async def serve_webhooks(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks"
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0 picks a free port); yields the webhook URL.

    On asyncio it runs on the caller's loop (cheapest); under trio, on a thread.
    """
    if not _on_asyncio():
        async with serve_in_thread(app, host, port, path) as url:
            yield url
        return
    require_uvicorn("serving webhooks")
    import uvicorn

    sock, url = _listen(host, port, path)

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Ctrl-C belongs to the program embedding the receiver, not to the receiver.
            yield

    server = _Server(uvicorn.Config(app, **_CONFIG))
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve([sock])
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            while not server.started:
                if stopped.is_set():
                    raise AudianError("the webhook server did not start")
                await anyio.sleep(0.01)
            try:
                yield url
            finally:
                server.should_exit = True
    finally:
        sock.close()


def _listen(host: str, port: int, path: str) -> tuple[socket.socket, str]:
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise AudianError(f"cannot listen on {host}:{port}: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    return sock, f"http://{shown}:{sock.getsockname()[1]}{path}"


_CONFIG: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "lifespan": "off",
    "timeout_graceful_shutdown": 1,
}


@asynccontextmanager
async def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks"
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` from a thread with its own asyncio loop; yields the
    webhook URL. Works under any event loop (trio included)."""
    require_uvicorn("serving webhooks")
    server = ThreadedServer(
        app, host=host, port=port, stop_timeout=5, name="the webhook server", **_CONFIG
    )
    try:
        try:
            await anyio.to_thread.run_sync(server.start)
        except OSError as exc:
            raise AudianError(f"cannot listen on {host}:{port}: {exc}") from None
        yield server.url + path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop)
