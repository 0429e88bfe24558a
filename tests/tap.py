"""A transport that lets a test see or rewrite each request on its way to a real server.

Given to ``AsyncAudian(http_client=httpx.AsyncClient(transport=Tap(...)))``: the public seam
for reaching past the client's own checks, with nothing monkeypatched.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx


class Tap(httpx.AsyncBaseTransport):
    """Pass each request through ``on_request`` (which may return a replacement), then send
    it over a stock httpx transport."""

    def __init__(self, on_request: Callable[[httpx.Request], httpx.Request | None]) -> None:
        self.on_request = on_request
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        replaced = self.on_request(request)
        return await self._inner.handle_async_request(replaced or request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def with_body(request: httpx.Request, body: bytes) -> httpx.Request:
    """``request`` with another body (and its Content-Length)."""
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
    return httpx.Request(request.method, request.url, headers=headers, content=body)
