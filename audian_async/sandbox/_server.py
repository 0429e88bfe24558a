"""Sandbox: the emulator served by uvicorn on its own thread and event loop.

The server lives in a background thread with its own asyncio loop (uvloop when installed),
so the sandbox works the same under asyncio and trio callers and never competes with the
caller's loop. Inspection (``sb.calls``, ``sb.deliveries``...) hops onto that loop through
an anyio blocking portal, so snapshots are always consistent.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import anyio

from .._client import AsyncAudian
from .._errors import AudianError
from .._serving import ThreadedServer, require_uvicorn
from ._app import SandboxApp
from ._faults import Faults
from ._records import SandboxCall, SandboxRecording
from ._sender import Delivery
from ._settings import SandboxOptions, SandboxSettings, resolve_settings

__all__ = ["Sandbox"]

T = TypeVar("T")


def _http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


class Sandbox:
    """A local Audian API on loopback with a simulated network and signed webhooks.

    Use it as an async context manager from asyncio or trio::

        async with Sandbox(speed=50, webhook_urls=[url], max_concurrent=100) as sb:
            call = await sb.client.calls.create(from_="+14155552671", to="+14155550101")
            await sb.wait_for_status(call.call_id, "failed")
            assert sb.calls[call.call_id].reason == "busy"

    or synchronously with :meth:`start` / :meth:`stop` (then build your own client from
    :attr:`base_url` and :attr:`api_key`).

    The keyword arguments are those of :class:`SandboxSettings` (``port=0`` picks a free
    port; ``speed`` divides every simulated duration; ``max_concurrent`` is the live-call
    limit behind 429; ``drop_rate`` / ``duplicate_rate`` drop or duplicate webhook
    deliveries; ``faults`` injects latency and errors; ``seed`` makes every random choice
    reproducible...). A ready ``SandboxSettings`` may be given instead, or as well:
    ``Sandbox(settings, speed=100)`` overrides some of its values.
    """

    def __init__(
        self, settings: SandboxSettings | None = None, **options: Unpack[SandboxOptions]
    ) -> None:
        settings = resolve_settings(settings, options)
        self.settings = settings
        """What the sandbox was built with (see :class:`SandboxSettings`)."""
        self.host = settings.host
        self.port = settings.port
        """The port it listens on (the one picked, once started with ``port=0``)."""
        self.app = SandboxApp(settings)
        self._server: ThreadedServer | None = None
        self._client: AsyncAudian | None = None

    @property
    def api_key(self) -> str:
        """The API key the sandbox accepts."""
        return self.settings.api_key

    @property
    def webhook_secret(self) -> str:
        """The ``whsec_...`` secret webhooks are signed with (verify them with it)."""
        return self.settings.webhook_secret

    @property
    def speed(self) -> float:
        """How many times faster than real time the simulated network runs."""
        return self.settings.speed

    @property
    def faults(self) -> Faults:
        """The fault knobs, changeable at runtime (``sb.faults.latency = 0.1``)."""
        return self.app.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.app.faults = value

    def __repr__(self) -> str:
        # The API key and the webhook secret are deliberately absent.
        state = "running" if self._server is not None else "stopped"
        return f"Sandbox(base_url={self.base_url!r}, speed={self.speed:g}, {state})"

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:54321/v2`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2"

    @property
    def dashboard_url(self) -> str:
        """The dashboard's page, e.g. ``http://127.0.0.1:54321/`` (see ``docs/dashboard.md``).

        It lists live calls, webhook deliveries, the request journal and recordings as they
        happen, and changes the fault knobs; its JSON API lives under ``/_dashboard/api/``.
        It answers loopback addresses only, so a sandbox bound to every interface is still
        reached here at ``127.0.0.1``.
        """
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Bind, start the server thread and wait until it answers (blocking)."""
        if self._server is not None:
            raise AudianError("the sandbox is already running")
        require_uvicorn("the sandbox")
        server = ThreadedServer(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="on",
            graceful_shutdown=5,
            loop="auto",
            backlog=4096,
            startup_timeout=30,
            stop_timeout=30,
            name="the sandbox server",
            log_config=None,  # never reconfigure the host program's logging
            log_level=None,
            http=_http_impl(),
            ws="none",
            timeout_keep_alive=30,
            on_bound=self._bound,
        )
        server.start()
        self._server = server
        self.port = server.port

    def _bound(self, origin: str) -> None:
        # Recording URLs are built from the origin: right before the first request.
        self.app.origin = origin

    def stop(self) -> None:
        """Stop serving: drain connections and webhook deliveries, then join the thread."""
        if self._server is None:
            return
        try:
            # Open dashboard streams would hold the graceful shutdown until its timeout.
            self._call(self.app.dashboard.close)
            self._server.stop()  # inspection keeps going through its loop while it drains
        finally:
            self._server = None

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self.start)
        options: dict[str, Any] = {"timeout": 10.0, **self.settings.client_options}
        try:
            self._client = AsyncAudian(self.api_key, base_url=self.base_url, **options)
        except BaseException:
            # __aexit__ will not run: do not leave the server thread behind.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.stop)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                with anyio.CancelScope(shield=True):
                    await self._client.aclose()
        finally:
            self._client = None
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.stop)

    @property
    def client(self) -> AsyncAudian:
        """An :class:`AsyncAudian` pointed at this sandbox (only inside ``async with``)."""
        if self._client is None:
            raise AudianError(
                "sb.client exists inside `async with Sandbox() as sb:`; otherwise use "
                "AsyncAudian(sb.api_key, base_url=sb.base_url)"
            )
        return self._client

    # --- runtime changes and inspection ----------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the sandbox loop (state is only ever touched there)."""
        portal = self._server.portal if self._server is not None else None
        if portal is None:
            return fn()  # stopped: nothing else touches the state any more
        return portal.call(fn)

    def add_webhook_url(self, url: str) -> None:
        """Deliver every later event to ``url`` too (e.g. a receiver started afterwards)."""
        self._call(lambda: self.app.deliverer.add_url(url))

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        """The URLs every event is delivered to."""
        return self.app.deliverer.urls

    @property
    def calls(self) -> dict[str, SandboxCall]:
        """Every call the sandbox remembers, by id, as consistent snapshots."""
        engine = self.app.engine
        return self._call(lambda: {cid: engine.snapshot(c) for cid, c in engine.calls.items()})

    def call(self, call_id: str) -> SandboxCall:
        """One call's snapshot (``KeyError`` when unknown)."""
        engine = self.app.engine

        def snap() -> SandboxCall:
            return engine.snapshot(engine.calls[call_id])

        return self._call(snap)

    @property
    def recordings(self) -> dict[str, SandboxRecording]:
        """Recordings made so far, by id."""
        return self._call(lambda: dict(self.app.engine.recordings))

    def recording_urls(self, call_id: str) -> list[str]:
        """Download URLs of the recordings of ``call_id`` made so far (empty when none)."""
        engine = self.app.engine

        def urls() -> list[str]:
            call = engine.calls.get(call_id)
            if call is None:
                return []
            found = (engine.recordings.get(rid) for rid in call.recordings)
            return [recording.url for recording in found if recording is not None]

        return self._call(urls)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery attempt so far (most recent last; bounded)."""
        return self._call(lambda: list(self.app.deliverer.records))

    @property
    def live_calls(self) -> int:
        """Calls initiated, ringing or answered right now."""
        return self.app.engine.live

    @property
    def peak_live_calls(self) -> int:
        """The most calls live at once since the start."""
        return self.app.engine.peak_live

    @property
    def peak_live_calls_by_caller_id(self) -> dict[str, int]:
        """The most calls live at once from each caller ID since the start (the account's
        own caller IDs only: others are refused)."""
        return self._call(lambda: dict(self.app.engine.peak_live_by_caller_id))

    @property
    def pending_deliveries(self) -> int:
        """Webhook deliveries queued, in flight or waiting to be retried."""
        return self.app.deliverer.pending

    @property
    def post_count(self) -> int:
        """POST requests seen (idempotent replays and rejected ones included)."""
        return self.app.stats["posts"]

    @property
    def stats(self) -> dict[str, int]:
        """Counters: requests, posts, calls_created, idempotent_replays, rate_limited..."""
        return self._call(lambda: dict(self.app.stats))

    @property
    def max_concurrent(self) -> int:
        """The live-call limit (settable at runtime)."""
        return self.app.engine.max_concurrent

    @max_concurrent.setter
    def max_concurrent(self, value: int) -> None:
        self.app.engine.max_concurrent = value

    # --- waiting (works on asyncio and trio) ------------------------------------------------

    async def wait_for_status(
        self, call_id: str, *statuses: str, timeout: float = 10.0
    ) -> SandboxCall:
        """Wait until ``call_id`` is in one of ``statuses`` (default: completed or failed)."""
        wanted = set(statuses or ("completed", "failed"))
        with anyio.fail_after(timeout):
            while True:
                snapshot = await anyio.to_thread.run_sync(self.call, call_id)
                if snapshot.status in wanted:
                    return snapshot
                await anyio.sleep(0.01)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until nothing is live, scheduled, being recorded or waiting for delivery."""

        def idle() -> bool:
            # Every live or scheduled call, pending recording and webhook retry has a timer.
            app = self.app
            return not (len(app.scheduler) or app.engine.live or app.deliverer.pending)

        with anyio.fail_after(timeout):
            while not await anyio.to_thread.run_sync(self._call, idle):  # noqa: ASYNC110
                await anyio.sleep(0.01)  # the state lives on another loop: poll it
