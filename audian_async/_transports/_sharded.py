"""The stock-httpx transport under our own client: many one-connection pools."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["ShardedTransport"]


class ShardedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport as many one-connection pools instead of one large pool.

    httpcore's pool walks all its connections, polling each socket, at least twice per
    request, and matches its waiting requests against them, so its cost per request grows
    with the number of connections: about 1.8 ms of client CPU per create with 16 in
    flight, against 0.55 ms for a pool of one (benchmarks/client_create.py). Each request
    takes a free pool from a stack, most recently freed first, so a quiet client keeps to
    a few warm connections.
    """

    def __init__(self, max_connections: int) -> None:
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._ssl_context = httpx.create_ssl_context()  # one for all: each loads the CA store
        # Pools (~6 KB each) are made on first use: a large max_connections costs nothing
        # until the concurrency is really there.
        self._pools: list[httpx.AsyncHTTPTransport | None] = [None] * max_connections
        self._free = list(reversed(range(max_connections)))

    def _pool(self, slot: int) -> httpx.AsyncHTTPTransport:
        pool = self._pools[slot]
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=self._limits)
            self._pools[slot] = pool
        return pool

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
