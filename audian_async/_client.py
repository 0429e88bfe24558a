"""AsyncAudian: the I/O shell that puts the pure core on the wire with httpx.

The hot path is kept lean for dialers that keep hundreds of creates in flight: the URL, the
static headers (Host and Content-Length included) and the timeout extension are built once per
client, bodies are encoded to bytes by the shared converter, an anyio semaphore sized to the
pool makes surplus requests wait outside the HTTP stack, and a request is built only once it
holds a slot. Our own client's requests go straight to its transport (see ``_transports/``,
which builds it); benchmarks/client_create.py measures it; docs/performance.md ("Client:
calls.create at dialer scale") has the figures.
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import anyio
import httpx

from ._convert import decode_batch, decode_call, encode_batch_body, encode_call_body
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    AudianError,
    Disposition,
    ValidationError,
    error_from_response,
)
from ._models import BatchResult, Call, CallControl, CallRequest, Recording
from ._retry import parse_retry_after, retry_delay, should_retry
from ._telemetry import ClientTracing
from ._transports import (
    Exchanged,
    HttpBackend,
    check_backend,
    describe_backend,
    disposition_of,
    error_type,
    exchanger_of,
    injected_transport,
    make_http_client,
    still_lean,
    timed_out,
)
from ._validation import CheckedCallRequest, validate_batch, validate_call_request
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_BASE_URL", "AsyncAudian", "Calls"]

DEFAULT_BASE_URL = "https://api.audian.com:8443/v2"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONNECTIONS = 100

logger = logging.getLogger("audian_async")

_USER_AGENT = (
    f"audian-async/{__version__} python/{platform.python_version()} httpx/{httpx.__version__}"
)


def _checked_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValidationError("timeout", f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _checked_max_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("max_retries", f"must be a non-negative int, got {value!r}")
    return value


class AsyncAudian:
    """An asyncio/trio client for the Audian outbound-calls API.

    ``api_key`` falls back to ``AUDIAN_API_KEY`` and ``base_url`` to ``AUDIAN_BASE_URL``, then
    to the production API. ``max_retries`` is the number of retries after the first attempt.
    ``default_region`` (``"US"``) lets national numbers in and normalises them to E.164.
    ``http_client`` replaces the client's own ``httpx.AsyncClient`` (proxies, custom
    transports, tests); it is not closed by :meth:`aclose`. ``http_backend`` picks the
    transport under our own client (see ``HttpBackend``): ``"auto"``, the default, takes the
    aiohttp transport on asyncio when the ``aiohttp`` extra is installed and stock httpx
    otherwise; ``repr(client)`` shows it. ``max_connections`` sizes the pool and bounds the
    requests in flight.
    ``tracer_provider`` (the ``otel`` extra) receives a span per HTTP request; by default the
    global provider, looked up at the first request (see docs/observability.md).

    Use it as ``async with AsyncAudian() as client:`` or call :meth:`aclose` when done::

        async with AsyncAudian() as client:
            call = await client.calls.create(from_="+14155552671", to="+14155552672")
    """

    calls: Calls
    """Place calls and read their status."""

    # Indirection so tests can observe backoff waits without sleeping.
    _sleep = staticmethod(anyio.sleep)

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_region: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        http_backend: HttpBackend = "auto",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("AUDIAN_API_KEY")
        if not key:
            raise AudianError(
                "no API key: pass api_key= or set the AUDIAN_API_KEY environment variable"
            )
        base = base_url or os.environ.get("AUDIAN_BASE_URL") or DEFAULT_BASE_URL
        url = httpx.URL(base.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise ValidationError("base_url", f"must be an absolute http(s) URL, got {base!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ValidationError("max_connections", "must be an int")
        if max_connections < 1:
            raise ValidationError("max_connections", f"must be >= 1, got {max_connections}")
        if default_region is not None:
            import phonenumbers

            if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
                raise ValidationError(
                    "default_region", f"{default_region!r} is not a known ISO 3166 region"
                )
            default_region = default_region.upper()
        check_backend(http_backend)

        self._api_key = key
        self.base_url = str(url)
        self.timeout = _checked_timeout(timeout)
        self.max_retries = _checked_max_retries(max_retries)
        self.default_region = default_region
        self._owns_client = http_client is None
        # Requests go straight to the transport whenever AsyncClient.send would add nothing
        # (see _send): always with our own client, unless credentials in the URL or proxies
        # from the environment need it; with a user's, when it has no auth, hooks or mounts
        # in the way.
        self._transport: httpx.AsyncBaseTransport | None
        if http_client is None:
            http_client, self._transport = make_http_client(http_backend, max_connections, url)
        else:
            self._transport = injected_transport(http_client, url)
        self._http = http_client
        self._backend = describe_backend(http_client) if self._owns_client else "http_client"
        self._limiter = anyio.Semaphore(max_connections)
        self._rng = random.Random()
        self._calls_url = self.base_url + "/calls"
        self._batch_url = self.base_url + "/calls/batch"
        # Parsed once for the httpx path; a read's URL, which names its call, each time.
        self._fixed_urls = {u: httpx.URL(u) for u in (self._calls_url, self._batch_url)}
        # Our own transport may take requests without httpx's objects (see _exchange).
        self._exchanging = exchanger_of(self._transport) if self._owns_client else None
        # Host and Content-Length are ours too, so httpx.Request skips its own header
        # preparation (see _request).
        self._read_headers: list[tuple[str, str]] = [
            ("host", url.netloc.decode("ascii")),
            ("accept", "application/json"),
            ("user-agent", _USER_AGENT),
            ("x-auth-token", key),
        ]
        self._write_headers = [*self._read_headers, ("content-type", "application/json")]
        self._set_timeout_extension()
        # Drops itself (None) at the first request if no SDK's provider is there.
        self._tracing: ClientTracing | None = ClientTracing(
            tracer_provider,
            scheme=url.scheme,
            host=url.host,
            port=url.port,
            base_path=url.path,
            explain=error_type,
        )
        self.calls = Calls(self)

    def _set_timeout_extension(self) -> None:
        self._timeout = httpx.Timeout(self.timeout).as_dict()
        self._extensions = {"timeout": self._timeout}

    def __repr__(self) -> str:
        # The API key, and any credentials in the URL, are deliberately absent.
        shown = httpx.URL(self.base_url).copy_with(userinfo=b"")
        return f"AsyncAudian(base_url={str(shown)!r}, http_backend={self._backend!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it; an injected one is left open."""
        if self._owns_client:
            await self._http.aclose()

    def with_options(
        self, *, timeout: float | None = None, max_retries: int | None = None
    ) -> AsyncAudian:
        """A view of this client with other settings, sharing its connections.

        >>> patient = client.with_options(timeout=120, max_retries=5)  # doctest: +SKIP
        """
        clone = copy.copy(self)
        clone._owns_client = False
        if timeout is not None:
            clone.timeout = _checked_timeout(timeout)
            clone._set_timeout_extension()
        if max_retries is not None:
            clone.max_retries = _checked_max_retries(max_retries)
        clone.calls = Calls(clone)
        return clone

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> bytes:
        """Send with retries; return the body of a 2xx response or raise an AudianError.

        ``url`` is absolute and percent-encoded.
        """
        idempotent = method == "GET"
        if body is None:
            headers = self._read_headers
            content = b""
        else:
            headers = [
                *self._write_headers,
                ("idempotency-key", idempotency_key or ""),
                ("content-length", str(len(body))),
            ]
            content = body
        retry = 0
        limiter = self._limiter
        while True:
            try:
                # A free slot is taken without a trip through the event loop (anyio's
                # acquire() always yields once); the request itself yields soon enough.
                try:
                    limiter.acquire_nowait()
                except anyio.WouldBlock:
                    await limiter.acquire()
                try:
                    reply = await self._exchange(method, url, headers, content, retry)
                finally:
                    limiter.release()
            except httpx.TransportError as exc:
                failed = _connection_error(exc, method, idempotency_key)
                if retry < self.max_retries and should_retry(
                    failed.disposition, idempotent=idempotent
                ):
                    await self._pause(method, url, retry, None, type(exc).__name__)
                    retry += 1
                    continue
                raise failed from exc
            status, reply_headers, reply_body = reply
            if status < 300:
                return reply_body
            retry_after = parse_retry_after(reply_headers.get("retry-after"))
            error = error_from_response(status, reply_headers, reply_body, retry_after=retry_after)
            if retry < self.max_retries and should_retry(error.disposition, idempotent=idempotent):
                await self._pause(method, url, retry, retry_after, str(status))
                retry += 1
                continue
            raise error

    async def _exchange(
        self, method: str, url: str, headers: list[tuple[str, str]], content: bytes, retry: int
    ) -> Exchanged:
        """One round trip, holding a pool slot: straight through our own transport when it
        can take the parts as they are, else as an httpx request."""
        exchanging = self._exchanging
        if exchanging is not None and self._tracing is None and not self._http.is_closed:
            exchange = exchanging.exchanger()
            if exchange is not None:
                return await exchange(method, url, headers, content or None, self._timeout)
        # Built once a slot is ours, so thousands of queued creates hold no request
        # objects for the garbage collector to walk. With stream= httpx takes our headers
        # as they are: ~5 us, against ~19 us for content=, which rebuilds them all to add
        # Host and Content-Length.
        request = httpx.Request(
            method,
            self._fixed_urls.get(url) or httpx.URL(url),
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions=self._extensions,
        )
        request.read()  # sets .content, which transports may read
        tracing = self._tracing
        if tracing is None:
            response = await self._send(request)
        else:
            response = await tracing.send(self, request, retry)
        return Exchanged(response.status_code, response.headers, response.content)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One round trip, the response body read in full."""
        transport = self._transport
        http = self._http
        if transport is None or http.is_closed or not (self._owns_client or still_lean(http)):
            # send() has work to do (auth, hooks, proxies), or the client is closed (send
            # raises as httpx does).
            return await http.send(request)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _pause(
        self, method: str, url: str, retry: int, retry_after: float | None, why: str
    ) -> None:
        delay = retry_delay(retry, retry_after, rng=self._rng)
        logger.info(
            "retrying %s %s after %s (retry %d of %d) in %.2fs",
            method,
            httpx.URL(url).path,  # the path only: a base URL may carry credentials
            why,
            retry + 1,
            self.max_retries,
            delay,
        )
        await self._sleep(delay)


def _connection_error(
    exc: httpx.TransportError, method: str, idempotency_key: str | None
) -> APIConnectionError:
    detail = str(exc) or type(exc).__name__
    sent = disposition_of(exc) is not Disposition.NOT_ACTED
    if sent and method == "POST":
        detail += (
            "; the request may have been acted on: repeat it with idempotency_key="
            f"{idempotency_key!r} so the API does not place the call twice"
        )
    if timed_out(exc):
        return APITimeoutError(f"request timed out: {detail}", sent=sent)
    return APIConnectionError(f"could not reach the API: {detail}", sent=sent)


class Calls:
    """``client.calls``: place calls, batches, and read a call's status."""

    def __init__(self, client: AsyncAudian) -> None:
        self._client = client

    async def create(
        self,
        request: CallRequest | CheckedCallRequest | None = None,
        /,
        *,
        from_: str | None = None,
        to: str | None = None,
        call_type: str | None = None,
        timeout: int | None = None,
        max_duration: int | None = None,
        tags: Mapping[str, Any] | None = None,
        custom_fields: Mapping[str, Any] | None = None,
        recording: Recording | None = None,
        call_control: CallControl | None = None,
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Call:
        """Place one call, from a :class:`CallRequest` or from keyword fields (not both).

        The request is validated (and numbers normalised) before anything is sent, unless it
        is a :class:`CheckedCallRequest` (from :func:`validate_call_request`), which is sent
        as it is. Every attempt carries the same ``Idempotency-Key`` (``idempotency_key`` or
        a random one), and only failures that prove the API did not act are retried, so a
        call is never placed twice by the SDK. Pass your own ``idempotency_key`` to repeat a
        create safely yourself, e.g. after :class:`APITimeoutError`.
        """
        fields = {
            "from_": from_,
            "to": to,
            "call_type": call_type,
            "timeout": timeout,
            "max_duration": max_duration,
            "tags": tags,
            "custom_fields": custom_fields,
            "recording": recording,
            "call_control": call_control,
            "scheduled_for": scheduled_for,
        }
        if request is None:
            if from_ is None:
                raise ValidationError("from", "is required")
            if to is None:
                raise ValidationError("to", "is required")
            request = CallRequest(**fields)  # type: ignore[arg-type]
        elif any(value is not None for value in fields.values()):
            raise ValidationError(
                "", "pass either a CallRequest or keyword fields to calls.create(), not both"
            )
        checked = validate_call_request(request, self._client.default_region)
        client = self._client
        raw = await client._request(
            "POST",
            client._calls_url,
            body=encode_call_body(checked.request),
            idempotency_key=_idempotency_key(idempotency_key),
        )
        return decode_call(raw)

    async def create_batch(
        self,
        requests: Sequence[CallRequest | CheckedCallRequest],
        *,
        idempotency_key: str | None = None,
    ) -> BatchResult:
        """Place several calls in one request; ``result.calls`` is aligned with ``requests``.

        Each request is validated first (errors name the index, ``calls[3].to``), except a
        :class:`CheckedCallRequest`. An entry the API refuses appears in the result with its
        ``error``; it does not sink the batch.
        """
        if isinstance(requests, CallRequest | CheckedCallRequest) or not isinstance(
            requests, Sequence
        ):
            raise ValidationError("calls", "must be a sequence of CallRequest")
        client = self._client
        checked = validate_batch(requests, client.default_region)
        raw = await client._request(
            "POST",
            client._batch_url,
            body=encode_batch_body(checked),
            idempotency_key=_idempotency_key(idempotency_key),
        )
        return decode_batch(raw)

    async def get(self, call_id: str) -> Call:
        """The current state of a call. Retried on every transient failure (it is a read)."""
        if not isinstance(call_id, str) or not call_id.strip():
            raise ValidationError("call_id", "must be a non-empty string")
        client = self._client
        url = f"{client._calls_url}/{quote(call_id, safe='')}"
        return decode_call(await client._request("GET", url))


def _idempotency_key(given: str | None) -> str:
    if given is None:
        # 128 random bits, as uuid4().hex minus its fixed version bits, at a quarter of the cost.
        return os.urandom(16).hex()
    if not isinstance(given, str) or not given or len(given) > 255:
        raise ValidationError("idempotency_key", "must be a non-empty string of at most 255 chars")
    return given
