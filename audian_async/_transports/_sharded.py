"""The stock-httpx transport under our own client: many one-connection pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpcore
import httpx

from ._exchange import MAX_TARGETS, Exchange, Exchanged, decoded, memo

__all__ = ["ShardedTransport", "httpx_error"]

# httpcore's errors as httpx's transport turns them into httpx's (the most specific mapped
# class wins), so a direct round trip raises exactly what the httpx path would and retries
# judge both alike. A test holds this table to httpx's own mapping.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


def httpx_error(exc: Exception) -> httpx.TransportError | None:
    """The httpx error httpx's own transport would raise for httpcore's ``exc``, or None
    when ``exc`` is not one of httpcore's."""
    for kind in type(exc).__mro__:
        mapped = _HTTPX_ERRORS.get(kind)
        if mapped is not None:
            return mapped(str(exc))
    return None


class ShardedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport as many one-connection pools instead of one large pool.

    httpcore's pool walks all its connections, polling each socket, at least twice per
    request, and matches its waiting requests against them, so its cost per request grows
    with the number of connections: about 1.8 ms of client CPU per create with 16 in
    flight, against 0.55 ms for a pool of one (benchmarks/client_create.py). Each request
    takes a free pool from a stack, most recently freed first, so a quiet client keeps to
    a few warm connections.

    Our client's own requests skip httpx's request and response objects through
    :meth:`exchange`, straight into the pool's httpcore connection pool (about a tenth of a
    create's CPU); requests built as httpx requests take httpx's transport as before.
    """

    def __init__(self, max_connections: int) -> None:
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._ssl_context = httpx.create_ssl_context()  # one for all: each loads the CA store
        # Pools (~6 KB each) are made on first use: a large max_connections costs nothing
        # until the concurrency is really there. The first one is made now, to see whether
        # this httpx keeps its httpcore pool where the direct round trip looks for it.
        self._pools: list[httpx.AsyncHTTPTransport | None] = [None] * max_connections
        self._free = list(reversed(range(max_connections)))
        self._direct = isinstance(_core_pool(self._pool(0)), httpcore.AsyncConnectionPool)
        self._targets: dict[str, httpcore.URL] = {}

    def _pool(self, slot: int) -> httpx.AsyncHTTPTransport:
        pool = self._pools[slot]
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=self._limits)
            self._pools[slot] = pool
        return pool

    def exchanger(self) -> Exchange | None:
        """The direct round trip (see :class:`Exchange`), unless this httpx release keeps
        its pools elsewhere (then requests go through httpx)."""
        return self.exchange if self._direct else None

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeout: Mapping[str, float | None],
    ) -> Exchanged:
        """One round trip with the body read, without httpx's request and response objects.

        ``url`` is already encoded; ``timeout`` is httpx's ``Timeout.as_dict()``. Raises
        httpx's exception types, httpcore's error as ``__cause__``, as the httpx path does.
        """
        target = memo(self._targets, url, httpcore.URL, MAX_TARGETS)
        request = httpcore.Request(
            method, target, headers=headers, content=body or b"", extensions={"timeout": timeout}
        )
        free = self._free
        slot = free.pop() if free else -1  # as in handle_async_request
        try:
            pool: httpcore.AsyncConnectionPool = _core_pool(self._pool(max(slot, 0)))
            response = await pool.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except Exception as exc:
            error = httpx_error(exc)
            if error is None:
                raise
            raise error from exc
        finally:
            if slot >= 0:
                free.append(slot)
        status, raw = response.status, response.headers
        if status < 300 and not any(name.lower() == b"content-encoding" for name, _ in raw):
            return Exchanged(status, httpx.Headers(raw), content)
        return decoded(status, raw, content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        free = self._free
        # AsyncAudian bounds its requests in flight to the number of pools, so one is always
        # free; the fallback only keeps a stray extra request working (queued in pool 0).
        slot = free.pop() if free else -1
        try:
            response = await self._pool(max(slot, 0)).handle_async_request(request)
        except BaseException:
            if slot >= 0:
                free.append(slot)
            raise
        if slot >= 0:
            response.stream = _SlotStream(response.stream, free, slot)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            if pool is not None:
                await pool.aclose()


def _core_pool(transport: httpx.AsyncHTTPTransport) -> Any:
    # httpx keeps its transport's httpcore pool in `_pool`; ShardedTransport checks it once.
    return getattr(transport, "_pool", None)


class _SlotStream(httpx.AsyncByteStream):
    """A response stream that gives its pool back to the free stack when closed."""

    def __init__(self, stream: Any, free: list[int], slot: int) -> None:
        self._stream = stream
        self._free = free
        self._slot = slot

    async def __aiter__(self) -> Any:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        slot, self._slot = self._slot, -1
        try:
            await self._stream.aclose()
        finally:
            if slot >= 0:
                self._free.append(slot)
