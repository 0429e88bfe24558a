"""Test helper: serve an ASGI app with uvicorn on 127.0.0.1 in a background thread.

A thread with its own asyncio loop lets the same server back tests running on asyncio and on
trio alike.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
