"""uvicorn launched from one place: on the caller's asyncio loop, or on a thread of its own."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

import httpx
import pytest

from audian_async import AudianError
from audian_async._asgi import Receive, Scope, Send
from audian_async._serving import ThreadedServer, serve_in_thread, serve_webhooks


class Recorder:
    """An ASGI app answering 204, noting the thread each request ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.threads.append(threading.get_ident())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def failing_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """An app whose lifespan startup fails."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.anyio
async def test_serve_webhooks_yields_the_url_on_loopback_and_serves(anyio_backend: str) -> None:
    app = Recorder()
    async with serve_webhooks(app, path="/in") as url, httpx.AsyncClient() as http:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/in")
        assert (await http.post(url, content=b"{}")).status_code == 204
    # On asyncio it runs on the caller's own loop (this thread); trio needs a thread.
    on_caller = app.threads == [threading.get_ident()]
    assert on_caller == (anyio_backend == "asyncio")


@pytest.mark.anyio
async def test_serve_webhooks_stops_listening_on_exit() -> None:
    async with serve_webhooks(Recorder()) as url:
        port = httpx.URL(url).port
    assert port is not None
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


@pytest.mark.anyio
async def test_serve_webhooks_leaves_ctrl_c_to_the_program() -> None:
    before = signal.getsignal(signal.SIGINT)
    async with serve_webhooks(Recorder()):
        assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.anyio
@pytest.mark.parametrize("serve", [serve_webhooks, serve_in_thread])
async def test_a_port_in_use_is_a_clear_error(serve: Any) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(AudianError, match=f"cannot listen on 127.0.0.1:{port}"):
            async with serve(Recorder(), port=port):
                pass


def test_threaded_server_serves_from_its_own_thread() -> None:
    app = Recorder()
    with ThreadedServer(app, name="the test server") as server:
        assert httpx.get(server.url).status_code == 204
    assert len(app.threads) == 1
    assert app.threads != [threading.get_ident()]
    assert server.error is None


def test_a_failed_startup_raises_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    server = ThreadedServer(failing_lifespan, lifespan="on", name="the test server")
    with pytest.raises(AudianError, match="the test server did not start"):
        server.start()
    assert set(threading.enumerate()) <= before
