"""The Redis client of the dialer's shared state: one per process, counting round trips.

:class:`RedisConnection` opens a coredis client from a URL, checks it with a ping, and
loads the scripts of :mod:`._redis_scripts` once; every campaign state of the process runs
its steps through it, so that "Redis round trips per attempt" can be measured.

The steps themselves (script calls) go through :class:`~._redis_wire.WireClient`, which
costs a fraction of coredis's CPU per call (see its docstring); coredis serves the plain
reads, which are off the hot path, and any URL the wire client does not handle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio

from .._errors import AudianError
from .._redis import check_url, open_client, shown_url
from . import _redis_scripts as lua
from ._redis_wire import ReplyError, WireClient, encode, supported

if TYPE_CHECKING:
    import coredis
    from coredis.commands import Script

__all__ = ["RedisConnection", "RedisUnavailableError"]


class RedisUnavailableError(AudianError):
    """Redis could not be reached (refused, reset, timed out): the step may be tried again
    once it is back (every step of the shared state is safe to repeat)."""


class RedisConnection:
    """A coredis client for the campaign states of one process, with a round-trip count.

    Enter it (``async with RedisConnection(url) as redis:``) on the event loop that uses
    it: it connects, pings, and loads the scripts once. A Redis that cannot be reached is an
    :class:`~audian_async.AudianError` naming the URL without its password. Coredis
    re-loads a script the server forgot (``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``)
    and retries the call once.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        self.url = check_url(url)
        self.round_trips = 0
        """Commands and script calls sent, the initial ping and script loads included."""
        self._client: coredis.Redis[str] | None = None
        self._stack: AsyncExitStack | None = None
        self._scripts: dict[str, Script[str]] = {}
        self._wire: WireClient | None = None
        # Each script's SHA1, computed once.
        self._shas: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RedisConnection({shown_url(self.url)!r})"

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this RedisConnection is already open")
        stack = AsyncExitStack()
        self.round_trips += 1  # the ping
        client: coredis.Redis[str] = await open_client(self.url, stack, decode_responses=True)
        try:
            for source in lua.ALL:
                # Loaded up front so that the first step of each kind is one round trip.
                self.round_trips += 1
                await client.script_load(source)
                self._scripts[source] = client.register_script(source)
        except Exception as exc:
            await stack.aclose()
            self._scripts.clear()
            raise AudianError(f"cannot reach Redis at {shown_url(self.url)}: {exc}") from exc
        if supported(self.url):
            self._wire = await stack.enter_async_context(WireClient(self.url))
        self._client, self._stack = client, stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client, self._wire = self._stack, None, None, None
        self._scripts.clear()
        if stack is not None:
            await stack.aclose()

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the connection."""
        return self._client is not None

    @property
    def client(self) -> coredis.Redis[str]:
        """The open client (for reads that need no script)."""
        if self._client is None:
            raise RuntimeError("enter the connection first: 'async with RedisConnection(url):'")
        return self._client

    total_round_trips = 0
    """Round trips made by every connection of this process (for benchmarks)."""

    async def script(self, source: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run one of :mod:`._redis_scripts`'s scripts (by SHA): one round trip."""
        wire = self._wire
        if wire is not None:
            return await self._wire_script(wire, source, keys, args)
        client = self.client
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            return await script(keys=list(keys), args=list(args))
        except Exception as exc:
            raise self._error(exc) from exc

    async def _wire_script(
        self, wire: WireClient, source: str, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest()
        payload = encode(["EVALSHA", sha, len(keys), *keys, *args])
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            reply = await wire.send(payload)
            if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
                # The server forgot the script (restarted, SCRIPT FLUSH): load it again.
                self.round_trips += 2
                RedisConnection.total_round_trips += 2
                await wire.call("SCRIPT", "LOAD", source)
                reply = await wire.send(payload)
        except Exception as exc:
            raise self._error(exc) from exc
        if isinstance(reply, ReplyError):
            raise AudianError(f"Redis at {shown_url(self.url)} failed: {reply}")
        return reply

    async def command(self, name: str, *args: Any) -> Any:
        """Call the client's method ``name`` (a plain read): one round trip."""
        method = getattr(self.client, name)
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            return await method(*args)
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> Exception:
        import coredis.exceptions

        unreachable = (
            coredis.exceptions.ConnectionError,
            TimeoutError,
            OSError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
        )
        if isinstance(exc, unreachable):
            return RedisUnavailableError(f"Redis at {shown_url(self.url)} is unreachable: {exc}")
        if isinstance(exc, coredis.exceptions.RedisError | ReplyError):
            return AudianError(f"Redis at {shown_url(self.url)} failed: {exc}")
        return exc
