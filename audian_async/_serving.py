"""Serve an ASGI app with uvicorn on a background thread that runs its own event loop.

The sandbox, the dialer's webhook receiver under trio and the test servers all need the same
thing: a server that works whatever loop the caller runs (asyncio, trio or none), started and
stopped from plain synchronous code, that never leaves a thread behind. uvicorn is an optional
dependency (the ``sandbox`` extra), so it is imported only when a server starts.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, Self

import anyio
import anyio.from_thread

from ._errors import AudianError

__all__ = ["ThreadedServer", "bind_socket", "require_uvicorn"]


def require_uvicorn(purpose: str = "serving an ASGI app") -> None:
    """Fail with the extra to install when uvicorn is missing."""
    if importlib.util.find_spec("uvicorn") is None:  # pragma: no cover - depends on extras
        raise AudianError(f"{purpose} needs uvicorn: pip install 'audian-async[sandbox]'")


def bind_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when ``host`` has a colon; 0 = free port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name != "nt":  # on Windows it would let another process share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


class ThreadedServer:
    """``app`` served by uvicorn on ``host:port`` from a thread with its own event loop.

    Usable from any caller (asyncio, trio, synchronous code): :meth:`start` binds (``port=0``
    picks a free port), starts the thread and blocks until uvicorn accepts connections or
    fails; :meth:`stop` asks uvicorn to exit, waits for its graceful shutdown and joins the
    thread. Also a context manager::

        with ThreadedServer(app, lifespan="on") as server:
            httpx.get(server.url + "/health")

    ``lifespan`` and ``graceful_shutdown`` map to uvicorn's options of the same meaning
    (``graceful_shutdown=None`` waits for every connection);
    ``config`` overrides any other ``uvicorn.Config`` argument (``log_level="warning"`` and
    ``access_log=False`` by default). ``loop`` picks the thread's loop: ``"auto"`` is uvloop
    when installed. ``startup_timeout`` bounds :meth:`start`, ``stop_timeout`` the join.
    ``name`` names the thread and the server in error messages. ``on_bound`` is called with
    :attr:`url` once the port is known, before the first request can arrive.
    While running, :attr:`portal` runs functions on the server's loop (for state that only
    that loop may touch); :attr:`error` holds what ended the thread, if anything did.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: Literal["on", "off", "auto"] = "off",
        graceful_shutdown: float | None = 1.0,
        loop: Literal["asyncio", "uvloop", "auto"] = "asyncio",
        backlog: int = 2048,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        name: str = "the ASGI server",
        on_bound: Callable[[str], None] | None = None,
        **config: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._on_bound = on_bound
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._use_uvloop = loop == "uvloop" or (loop == "auto" and _uvloop_available())
        self._backlog = backlog
        self._config: dict[str, Any] = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": lifespan,
            "timeout_graceful_shutdown": graceful_shutdown,
            "backlog": backlog,
            **config,
        }
        self._server: Any = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.portal: anyio.from_thread.BlockingPortal | None = None
        """Runs functions on the server's loop from other threads (``None`` unless running)."""
        self.error: BaseException | None = None
        """What ended the server thread with an exception (``None`` when it ended cleanly)."""

    @property
    def url(self) -> str:
        """``http://host:port`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Bind, start the thread, wait until uvicorn serves; returns :attr:`url`."""
        if self._thread is not None:
            raise AudianError(f"{self.name} is already running")
        require_uvicorn()
        import uvicorn

        self._socket = bind_socket(self.host, self.port, backlog=self._backlog)
        self.port = self._socket.getsockname()[1]
        self.error = None
        if self._on_bound is not None:
            try:
                self._on_bound(self.url)
            except BaseException:
                self.stop()
                raise
        self._server = uvicorn.Server(uvicorn.Config(self.app, **self._config))
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _run(self) -> None:
        options = {"use_uvloop": True} if self._use_uvloop else {}
        try:
            anyio.run(self._serve, backend="asyncio", backend_options=options)
        except BaseException as exc:  # the thread has no one else to report to
            # The portal's task group wraps what uvicorn raised: keep the error itself.
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            self.error = exc

    async def _serve(self) -> None:
        try:
            async with anyio.from_thread.BlockingPortal() as portal:
                self.portal = portal
                await self._server.serve(sockets=[self._socket])
        finally:
            self.portal = None

    def _wait_started(self) -> None:
        assert self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                # uvicorn logs a failed lifespan startup, then exits with sys.exit(3).
                failed = self.error is None or isinstance(self.error, SystemExit)
                why = "it stopped during startup" if failed else repr(self.error)
                raise AudianError(f"{self.name} did not start: {why}") from self.error
            if time.monotonic() > deadline:
                raise AudianError(f"{self.name} did not start in {self.startup_timeout:g} s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for its graceful shutdown and join the thread (idempotent)."""
        thread, self._thread = self._thread, None
        try:
            if self._server is not None:
                self._server.should_exit = True
            if thread is not None:
                thread.join(self.stop_timeout)
        finally:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
