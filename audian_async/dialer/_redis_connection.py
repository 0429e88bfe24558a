"""The Redis client of the dialer's shared state: one per process, counting round trips.

:class:`RedisConnection` connects to a URL, checks it with a ping, and loads the scripts of
:mod:`._redis_scripts` once; every campaign state of the process runs its steps through
it, so that "Redis round trips per attempt" can be measured.

For the URLs it reads (``redis://``, ``rediss://``, ``unix://`` with a user, password and
database), it speaks RESP itself: on asyncio over one pipelined connection
(:class:`~audian_async._resp_pipe.PipeClient`), on trio over a small pool of anyio streams
(:class:`~audian_async._resp_wire.WireClient`), each a fraction of coredis's CPU per call (see their
docstrings). coredis, imported only then, serves a URL with options those do not read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio

from .._errors import AudianError
from .._redis import check_url, open_client, shown_url
from .._resp_wire import DEFAULT_TIMEOUT, ReplyError, RespClient, encode, resp_client
from . import _redis_scripts as lua

if TYPE_CHECKING:
    import coredis
    from coredis.commands import Script

__all__ = ["RedisConnection", "RedisUnavailableError", "patiently"]

logger = logging.getLogger("audian_async.dialer")

T = TypeVar("T")


class RedisUnavailableError(AudianError):
    """Redis could not be reached (refused, reset, timed out): the step may be tried again
    once it is back (every step of the shared state is safe to repeat)."""


class RedisConnection:
    """The Redis client of one process's campaign states, with a round-trip count.

    Enter it (``async with RedisConnection(url) as redis:``) on the event loop that uses
    it: it connects, pings, and loads the scripts once. A Redis that cannot be reached is an
    :class:`~audian_async.AudianError` naming the URL without its password. A script the
    server forgot (``NOSCRIPT`` after a restart or ``SCRIPT FLUSH``) is loaded again and
    the call sent once more.
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> None:
        self.url = check_url(url)
        self.timeout = timeout
        """Seconds to wait for a connection or a reply before Redis counts as unreachable."""
        self.round_trips = 0
        """Commands and script calls sent, the initial ping and script loads included."""
        self._client: coredis.Redis[str] | None = None
        self._stack: AsyncExitStack | None = None
        self._scripts: dict[str, Script[str]] = {}
        self._wire: RespClient | None = None
        # Each script's SHA1, computed once.
        self._shas: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RedisConnection({shown_url(self.url)!r})"

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this RedisConnection is already open")
        stack = AsyncExitStack()
        wire = resp_client(self.url, timeout=self.timeout)
        if wire is None:
            await self._open_coredis(stack)
        else:
            self._wire = await stack.enter_async_context(wire)
            try:
                self.round_trips += 1 + len(lua.ALL)  # the ping, the scripts
                await wire.call("PING")
                for source in lua.ALL:
                    # Loaded up front so that the first step of each kind is one round trip.
                    await wire.call("SCRIPT", "LOAD", source)
            except Exception as exc:
                self._wire = None
                await stack.aclose()
                raise AudianError(f"cannot reach Redis at {shown_url(self.url)}: {exc}") from exc
        self._stack = stack
        return self

    async def _open_coredis(self, stack: AsyncExitStack) -> None:
        self.round_trips += 1  # the ping
        client: coredis.Redis[str] = await open_client(
            self.url,
            stack,
            decode_responses=True,
            stream_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            for source in lua.ALL:
                self.round_trips += 1
                await client.script_load(source)
                self._scripts[source] = client.register_script(source)
        except Exception as exc:
            await stack.aclose()
            self._scripts.clear()
            raise AudianError(f"cannot reach Redis at {shown_url(self.url)}: {exc}") from exc
        self._client = client

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
        return self._stack is not None

    def _require_open(self) -> None:
        if self._stack is None:
            raise RuntimeError("enter the connection first: 'async with RedisConnection(url):'")

    total_round_trips = 0
    """Round trips made by every connection of this process (for benchmarks)."""

    async def script(self, source: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run one of :mod:`._redis_scripts`'s scripts (by SHA): one round trip."""
        wire = self._wire
        if wire is not None:
            return await self._wire_script(wire, source, keys, args)
        self._require_open()
        assert self._client is not None
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            return await script(keys=list(keys), args=list(args))
        except Exception as exc:
            raise self._error(exc) from exc

    async def _wire_script(
        self,
        wire: RespClient,
        source: str,
        keys: Sequence[str],
        args: Sequence[str | int],
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

    async def call(self, *args: str | int) -> Any:
        """Send one command as is (``call("PTTL", key)``): one round trip; the reply as the
        client decodes it (RESP2 values on the URLs read here)."""
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            wire = self._wire
            if wire is not None:
                return await wire.call(*args)
            self._require_open()
            assert self._client is not None
            from coredis.response._callbacks import NoopCallback

            name, *rest = args
            request: Any = self._client.create_request(
                str(name).encode(), *rest, callback=NoopCallback()
            )
            return await request
        except Exception as exc:
            raise self._error(exc) from exc

    # The plain reads (off the hot path), in the same shapes over either client.

    async def hgetall(self, key: str) -> dict[str, str]:
        """Every field of hash ``key``."""
        if self._wire is None:
            return {str(k): str(v) for k, v in (await self._coredis("hgetall", key)).items()}
        return _pairs(await self.call("HGETALL", key))

    async def hscan(self, key: str, cursor: int, count: int) -> tuple[int, dict[str, str]]:
        """One step of a scan of hash ``key``: the next cursor (0: done) and some fields."""
        if self._wire is None:
            found, batch = await self._coredis("hscan", key, cursor, None, count)
            return int(found), {str(k): str(v) for k, v in batch.items()}
        found, flat = await self.call("HSCAN", key, cursor, "COUNT", count)
        return int(found), _pairs(flat)

    async def hmget(self, key: str, fields: Sequence[str]) -> list[str | None]:
        """The values of ``fields`` of hash ``key`` (None where missing)."""
        if self._wire is None:
            values = await self._coredis("hmget", key, list(fields))
        else:
            values = await self.call("HMGET", key, *fields)
        return [None if v is None else str(v) for v in values]

    async def hget(self, key: str, field: str) -> str | None:
        """Field ``field`` of hash ``key``, or None."""
        if self._wire is None:
            value = await self._coredis("hget", key, field)
        else:
            value = await self.call("HGET", key, field)
        return None if value is None else str(value)

    async def get(self, key: str) -> str | None:
        """String ``key``, or None."""
        value = await (self._coredis("get", key) if self._wire is None else self.call("GET", key))
        return None if value is None else str(value)

    async def smembers(self, key: str) -> set[str]:
        """The members of set ``key``."""
        members = await (
            self._coredis("smembers", key) if self._wire is None else self.call("SMEMBERS", key)
        )
        return {str(m) for m in members}

    async def sadd(self, key: str, member: str) -> None:
        """Add ``member`` to set ``key``."""
        if self._wire is None:
            await self._coredis("sadd", key, [member])
        else:
            await self.call("SADD", key, member)

    async def _coredis(self, name: str, *args: Any) -> Any:
        self._require_open()
        method = getattr(self._client, name)
        self.round_trips += 1
        RedisConnection.total_round_trips += 1
        try:
            return await method(*args)
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> Exception:
        unreachable: tuple[type[BaseException], ...] = (
            TimeoutError,
            OSError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
        )
        failed: tuple[type[BaseException], ...] = (ReplyError,)
        if self._client is not None:  # coredis is imported only when it serves the URL
            import coredis.exceptions

            unreachable += (coredis.exceptions.ConnectionError,)
            failed += (coredis.exceptions.RedisError,)
        if isinstance(exc, unreachable):
            return RedisUnavailableError(f"Redis at {shown_url(self.url)} is unreachable: {exc}")
        if isinstance(exc, failed):
            return AudianError(f"Redis at {shown_url(self.url)} failed: {exc}")
        return exc


async def patiently(
    step: Callable[..., Awaitable[T]],
    *args: object,
    deadline: float,
    campaign: str,
    shielded: bool = False,
) -> T:
    """Run ``step(*args)``, running it again while Redis is unreachable, until ``deadline``
    seconds from now (then its :class:`RedisUnavailableError` is raised). Only for steps
    that are safe to repeat, as every campaign state step is.

    ``shielded``: a cancellation waits for the attempt under way (at most the connection's
    timeout), for a step whose caller must learn what Redis did once it was sent."""
    give_up_at = anyio.current_time() + deadline
    delay = 0.05
    while True:
        try:
            if not shielded:
                return await step(*args)
            with anyio.CancelScope(shield=True):
                return await step(*args)
        except RedisUnavailableError as exc:
            if anyio.current_time() + delay > give_up_at:
                raise
            logger.warning("campaign %s: %s; waiting for it", campaign, exc)
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
