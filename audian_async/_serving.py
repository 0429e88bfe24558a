"""Serve an ASGI app with uvicorn: on the caller's asyncio loop, or on a thread with its own.

Every server of the package is launched here: the sandbox, the webhook receiver of the
``dial`` and ``demo`` commands, and the test servers. There are two ways to run one, over
the same launch (:func:`_serve`):

* :func:`serve_webhooks` serves on the caller's own loop when that loop is asyncio: the
  webhooks are then handled by the same thread as the dialer, with no hand-off between
  threads and no contention for the GIL.
* :class:`ThreadedServer` (and :func:`serve_in_thread`, its async form) serves from a
  background thread with its own asyncio loop, so it works whatever loop the caller runs
  (asyncio, trio or none), started and stopped from plain synchronous code, and never leaves
  a thread behind. uvicorn needs asyncio, so :func:`serve_webhooks` falls back to it under
  trio.

Either way "started" is an event the starter waits for (set once uvicorn accepts
connections, or once it has failed), not a flag it polls, and uvicorn never installs signal
handlers: Ctrl-C belongs to the program embedding the server. uvicorn is an optional
dependency (the ``sandbox`` extra), so it is imported only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread

from ._errors import AudianError

__all__ = [
    "ThreadedServer",
    "bind_socket",
    "require_uvicorn",
    "serve_in_thread",
    "serve_webhooks",
]


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


def _origin(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _options(**overrides: Any) -> dict[str, Any]:
    """``uvicorn.Config`` arguments: quiet, no lifespan, 1 s graceful shutdown, or overrides."""
    return {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1.0,
        **overrides,
    }


class _Uvicorn(Protocol):
    """What this module uses of its ``uvicorn.Server``."""

    started: bool
    should_exit: bool
    on_started: Callable[[], object]

    async def serve(self, sockets: list[socket.socket] | None = None) -> None: ...


@functools.cache
def _server_class() -> Callable[[Any], _Uvicorn]:
    """``uvicorn.Server`` telling when it accepts connections, and leaving signals alone."""
    require_uvicorn()
    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.on_started: Callable[[], object] = lambda: None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                self.on_started()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Ctrl-C belongs to the program embedding the server, not to the server.
            yield

    return Server


def _new_server(app: Any, options: dict[str, Any]) -> _Uvicorn:
    """A uvicorn server for ``app`` (not started)."""
    server_class = _server_class()
    import uvicorn

    return server_class(uvicorn.Config(app, **options))


async def _serve(
    server: _Uvicorn,
    sock: socket.socket,
    name: str,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``server`` on ``sock`` (on an asyncio loop) until it exits.

    Reports started (``task_status``) once uvicorn accepts connections; a startup that fails
    is an :class:`AudianError` instead.
    """
    server.on_started = task_status.started
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn logs a failed lifespan startup, then exits with sys.exit(3).
        if server.started:
            raise
        raise AudianError(f"{name} did not start: it stopped during startup") from exc
    if not server.started:  # told to exit before it started
        raise AudianError(f"{name} did not start: it stopped during startup")


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
        self._options = _options(
            lifespan=lifespan,
            timeout_graceful_shutdown=graceful_shutdown,
            backlog=backlog,
            **config,
        )
        self._server: _Uvicorn | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        # Set by the thread once uvicorn serves, or once the thread ends (whichever is first).
        self._settled = threading.Event()
        self.portal: anyio.from_thread.BlockingPortal | None = None
        """Runs functions on the server's loop from other threads (``None`` unless running)."""
        self.error: BaseException | None = None
        """What ended the server thread with an exception (``None`` when it ended cleanly)."""

    @property
    def url(self) -> str:
        """``http://host:port`` (the port is known once started)."""
        return _origin(self.host, self.port)

    def start(self) -> str:
        """Bind, start the thread, wait until uvicorn serves; returns :attr:`url`."""
        if self._thread is not None:
            raise AudianError(f"{self.name} is already running")
        require_uvicorn()
        self._socket = bind_socket(self.host, self.port, backlog=self._backlog)
        self.port = self._socket.getsockname()[1]
        self.error = None
        self._settled.clear()
        if self._on_bound is not None:
            try:
                self._on_bound(self.url)
            except BaseException:
                self.stop()
                raise
        self._server = _new_server(self.app, self._options)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _run(self) -> None:
        """The thread: the server's own loop, until uvicorn exits."""
        options = {"use_uvloop": True} if self._use_uvloop else {}
        try:
            anyio.run(self._main, backend="asyncio", backend_options=options)
        except BaseException as exc:  # the thread has no one else to report to
            # The task groups wrap what uvicorn raised: keep the error itself.
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]
            self.error = exc
        finally:
            self._settled.set()

    async def _main(self) -> None:
        """Serve under a portal (for :attr:`portal`); settle once uvicorn serves."""
        server, sock = self._server, self._socket
        assert server is not None
        assert sock is not None
        try:
            async with anyio.from_thread.BlockingPortal() as portal:
                self.portal = portal
                async with anyio.create_task_group() as tg:
                    await tg.start(_serve, server, sock, self.name)
                    self._settled.set()
        finally:
            self.portal = None

    def _wait_started(self) -> None:
        """Block until uvicorn serves; raise what stopped it otherwise."""
        assert self._server is not None
        if not self._settled.wait(self.startup_timeout):
            raise AudianError(f"{self.name} did not start in {self.startup_timeout:g} s")
        if self._server.started:
            return
        # The thread ended before uvicorn served: self.error is final.
        if isinstance(self.error, AudianError):
            raise self.error
        why = "it stopped during startup" if self.error is None else repr(self.error)
        raise AudianError(f"{self.name} did not start: {why}") from self.error

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


# --- a webhook receiver for the commands ------------------------------------------------

_RECEIVER = "the webhook server"


def _on_asyncio() -> bool:
    """Whether the running loop is asyncio's (uvicorn can join no other, trio's included)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _listen(host: str, port: int) -> socket.socket:
    """:func:`bind_socket`, failing as an :class:`AudianError`."""
    try:
        return bind_socket(host, port)
    except OSError as exc:
        raise AudianError(f"cannot listen on {host}:{port}: {exc}") from None


@asynccontextmanager
async def serve_webhooks(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks"
) -> AsyncIterator[str]:
    """Serve ``app`` (a ``WebhookApp``) on ``host:port`` (0 picks a free port) while the block
    runs; yields the webhook URL (``http://host:port`` + ``path``).

    On asyncio it runs on the caller's loop (cheapest); under trio, on a thread
    (:func:`serve_in_thread`). Loopback by default; Ctrl-C is left to the caller.
    """
    if not _on_asyncio():
        async with serve_in_thread(app, host, port, path) as url:
            yield url
        return
    require_uvicorn("serving webhooks")
    sock = _listen(host, port)
    try:
        server = _new_server(app, _options())
        async with anyio.create_task_group() as tg:
            await tg.start(_serve, server, sock, _RECEIVER)
            try:
                yield _origin(host, sock.getsockname()[1]) + path
            finally:
                server.should_exit = True
    finally:
        sock.close()


@asynccontextmanager
async def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/hooks"
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` from a thread with its own asyncio loop while the block
    runs; yields the webhook URL. Works under any event loop (trio included)."""
    require_uvicorn("serving webhooks")
    server = ThreadedServer(app, host=host, port=port, stop_timeout=5, name=_RECEIVER)
    try:
        try:
            await anyio.to_thread.run_sync(server.start)
        except OSError as exc:
            raise AudianError(f"cannot listen on {host}:{port}: {exc}") from None
        yield server.url + path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop)
