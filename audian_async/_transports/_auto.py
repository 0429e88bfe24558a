"""The transport behind ``http_backend="auto"``: aiohttp's on asyncio, stock httpx on trio.

Which event loop a client will run on is known only once it sends: clients are often built
outside any loop (at import, in a fixture). So the choice is made per request, from the
running loop, and each transport is built on first use. This is one of the few places that
asks which loop it runs on; the aiohttp transport exists only there.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import TYPE_CHECKING

import httpx

from ._exchange import Exchange
from ._sharded import ShardedTransport

if TYPE_CHECKING:
    from ._aiohttp import LeanAiohttpTransport

__all__ = ["AutoTransport", "aiohttp_installed"]


def aiohttp_installed() -> bool:
    """Whether the ``aiohttp`` extra (httpx-aiohttp and aiohttp) can be imported."""
    return all(importlib.util.find_spec(name) for name in ("aiohttp", "httpx_aiohttp"))


class AutoTransport(httpx.AsyncBaseTransport):
    """The aiohttp transport under an asyncio loop when the extra is installed, else
    :class:`ShardedTransport` (trio, or no extra)."""

    def __init__(self, limits: httpx.Limits, max_connections: int) -> None:
        self._limits = limits
        self._max_connections = max_connections
        self.uses_aiohttp = aiohttp_installed()
        """Whether requests on asyncio take the aiohttp transport."""
        self._aiohttp: LeanAiohttpTransport | None = None
        self._httpx: ShardedTransport | None = None

    def _for_this_loop(self) -> httpx.AsyncBaseTransport:
        # asyncio's own cheap check (None when no asyncio loop runs: trio) rather than a
        # raised and caught RuntimeError on every trio request.
        if self.uses_aiohttp and asyncio._get_running_loop() is not None:
            if self._aiohttp is None:
                from ._aiohttp import LeanAiohttpTransport

                self._aiohttp = LeanAiohttpTransport(limits=self._limits)
            return self._aiohttp
        if self._httpx is None:
            self._httpx = ShardedTransport(self._max_connections)
        return self._httpx

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._for_this_loop().handle_async_request(request)

    def exchanger(self) -> Exchange | None:
        """The direct round trip of the transport for this loop: the aiohttp one's on
        asyncio, the httpcore pools' on trio."""
        transport = self._for_this_loop()
        # Identity tests: isinstance() with a runtime protocol costs microseconds.
        if transport is self._aiohttp:
            return self._aiohttp.exchange
        if transport is self._httpx:
            return self._httpx.exchanger()
        return None

    async def aclose(self) -> None:
        for transport in (self._aiohttp, self._httpx):
            if transport is not None:
                await transport.aclose()
