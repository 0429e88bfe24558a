"""The transport behind ``AsyncAudian(http_backend="aiohttp")`` (the ``aiohttp`` extra).

Imported only when that backend is chosen, since aiohttp is optional and asyncio-only.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from .._errors import Disposition
from ._exchange import MAX_TARGETS, Exchange, Exchanged, decoded, memo

__all__ = ["LeanAiohttpTransport", "disposition_of_aiohttp"]

_MAX_TIMEOUTS = 64
# httpx's connect, read and pool timeouts: what an aiohttp.ClientTimeout is made from.
_TimeoutKey = tuple[float | None, float | None, float | None]
_LARGE_BODY = 2**20  # aiohttp.payload.TOO_LARGE_BYTES_BODY


def disposition_of_aiohttp(error: BaseException) -> Disposition:
    """Whether a request that failed with this aiohttp error may have reached the API.

    Only a failure to connect (refused, unresolvable, TLS handshake, connect timeout) proves
    it never left; "server disconnected", a reset or a read timeout may follow a request the
    API received.
    """
    connect_failed = isinstance(
        error, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
    )
    return Disposition.NOT_ACTED if connect_failed else Disposition.MAYBE_ACTED


class LeanAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport with a leaner round trip for buffered JSON requests.

    The session, connector, limits and exception mapping are httpx-aiohttp's own; that
    mapping keeps aiohttp's error as ``__cause__``, which :func:`disposition_of_aiohttp`
    judges.
    Per request it gives aiohttp plain header pairs rather than an ``httpx.Headers`` to
    re-read, reuses one ``aiohttp.ClientTimeout`` per timeout setting, and reads the body
    inside aiohttp so httpx gets a ready response instead of an async stream to drain (its
    content already set when there is nothing to decode).
    A request whose body was not read into memory takes the stock path.
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._timeouts: dict[_TimeoutKey, aiohttp.ClientTimeout] = {}
        self._targets: dict[str, yarl.URL] = {}

    def exchanger(self) -> Exchange:
        """The direct round trip (see :class:`Exchange`): always available here."""
        return self.exchange

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
        httpx's exception types, aiohttp's error as ``__cause__``, as
        ``handle_async_request`` does.
        """
        reply, content = await self._round_trip(method, url, headers, body, timeout, None)
        if reply.status < 300 and "content-encoding" not in reply.headers:
            return Exchanged(reply.status, reply.headers, content)
        return decoded(reply.status, reply.raw_headers, content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            data: bytes | None = request.content or None
        except httpx.RequestNotRead:
            return await super().handle_async_request(request)
        url = request.url
        if url.userinfo:  # httpx's send() made them an Authorization header already, which
            url = url.copy_with(userinfo=b"")  # aiohttp refuses to combine with URL ones
        extensions = request.extensions
        response, body = await self._round_trip(
            request.method,
            str(url),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            data,
            extensions.get("timeout", {}),
            extensions.get("sni_hostname"),
        )
        reply_extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            reply_extensions["reason_phrase"] = response.reason.encode()
        reply = httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions=reply_extensions,
        )
        if "content-encoding" not in response.headers:
            # The body is complete and needs no decoding: what aread() would store after
            # passing it through httpx's decoder chain, chunk by chunk (about 10 us).
            reply._content = body
        return reply

    async def _round_trip(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        data: bytes | None,
        timeout: Mapping[str, float | None],
        server_hostname: str | None,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        client = self.client
        if not isinstance(client, aiohttp.ClientSession):
            client = self.client = self.get_client()
        key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
        client_timeout = memo(self._timeouts, key, _client_timeout, _MAX_TIMEOUTS)
        target = memo(self._targets, url, _target, MAX_TARGETS)
        proxy = self.proxy
        try:
            with map_aiohttp_exceptions():
                async with client.request(
                    method,
                    target,
                    headers=headers,
                    # aiohttp warns about (and writes in one go) bytes of 1 MiB or more.
                    data=data if data is None or len(data) < _LARGE_BODY else io.BytesIO(data),
                    allow_redirects=False,
                    auto_decompress=False,
                    compress=False,
                    timeout=client_timeout,
                    server_hostname=server_hostname,
                    proxy=str(proxy.url) if proxy else None,
                    proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                    proxy_headers=proxy.headers if proxy else None,
                ) as response:
                    body = await response.read()
        except aiohttp.ClientError as exc:
            # What httpx-aiohttp leaves unmapped (a malformed reply, say) still surfaces as
            # an httpx error, so the client turns it into an APIConnectionError; the original
            # stays as __cause__ for disposition_of_aiohttp.
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from exc
        return response, body


def _client_timeout(key: _TimeoutKey) -> aiohttp.ClientTimeout:
    connect, read, pool = key
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


def _target(url: str) -> yarl.URL:
    # Already encoded: yarl must not re-quote it (it would turn an escaped "%3D" in a call
    # id back into "="), and parses it once per URL rather than per request.
    return yarl.URL(url, encoded=True)
