"""Test helper: serve an ASGI app with uvicorn on 127.0.0.1 in a background thread.

A thread with its own asyncio loop lets the same server back tests running on asyncio and on
trio alike.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from audian_async._serving import ThreadedServer


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_asgi(app: Any, *, graceful: float = 0.5) -> Iterator[str]:
    """Run ``app`` on a free loopback port; yield its base URL; stop it on exit."""
    server = ThreadedServer(
        app, graceful_shutdown=graceful, loop="auto", startup_timeout=10, name="the test server"
    )
    with server:
        yield server.url


async def until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, polling it; fail after ``timeout`` seconds.

    Only for state no event announces: what another thread or process owns (a server's
    counters, a sandbox's calls), or public counters such as ``Dialer.stats()``. Whatever
    sets an event (a hook, a handler, a store) is waited for through that event instead.
    """
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - no event announces this state
            await anyio.sleep(0.005)
