"""Transports: the only code that knows what lies under httpx (httpcore, httpx-aiohttp).

Each transport raises httpx's own exception types, chosen so that the type tells whether the
request may have reached the API; :func:`disposition_of` turns that into the core's
:class:`~audian_async.Disposition`. The client never looks below httpx.
"""

from __future__ import annotations

import urllib.request
from typing import Literal

import httpx

from .._errors import AudianError, Disposition, ValidationError
from .._telemetry import error_type as _error_type
from ._sharded import ShardedTransport

__all__ = [
    "HttpBackend",
    "ShardedTransport",
    "check_backend",
    "disposition_of",
    "error_type",
    "make_http_client",
    "timed_out",
]

HttpBackend = Literal["httpx", "aiohttp"]
"""What carries the client's own requests: ``"httpx"``, stock httpx over many one-connection
pools; ``"aiohttp"``, the httpx-aiohttp transport (the ``aiohttp`` extra, asyncio only), the
leanest path for high-concurrency dialers."""


def check_backend(backend: object) -> None:
    """Raise :class:`ValidationError` unless ``backend`` names a known backend."""
    if backend not in ("httpx", "aiohttp"):
        raise ValidationError("http_backend", f"must be 'httpx' or 'aiohttp', got {backend!r}")


def make_http_client(
    backend: HttpBackend, max_connections: int, url: httpx.URL
) -> tuple[httpx.AsyncClient, httpx.AsyncBaseTransport | None]:
    """The client's own ``httpx.AsyncClient``, and its transport when requests may skip
    ``AsyncClient.send``.

    Our client sends no auth or cookies and follows no redirects, so what send() adds per
    request is pure cost, unless httpx would add basic auth from credentials in the base URL
    or route the stock transport through a proxy from the environment: then it keeps doing
    so, through send().
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    transport: httpx.AsyncBaseTransport
    if backend == "aiohttp":
        try:
            from ._aiohttp import LeanAiohttpTransport
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise AudianError(
                "http_backend='aiohttp' needs the extra: pip install 'audian-async[aiohttp]'"
            ) from None
        transport = LeanAiohttpTransport(limits=limits)
    elif {url.scheme, "all"}.isdisjoint(urllib.request.getproxies()):
        transport = ShardedTransport(max_connections)
    else:
        return httpx.AsyncClient(limits=limits), None
    client = httpx.AsyncClient(transport=transport)
    return client, (None if url.userinfo else transport)


# Failures that prove the request never left: no connection was made, or none was free.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def disposition_of(exc: httpx.TransportError) -> Disposition:
    """Whether the API may have acted on a request that failed with ``exc``.

    Only a failure that proves the request never left is ``NOT_ACTED``; everything else may
    have reached the API, which for a POST means the call may exist.
    """
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        # Raised by an httpx-aiohttp transport (ours, or one a user injected): its stock
        # mapping turns every aiohttp connection error, "server disconnected" after the
        # request was written included, into httpx.ConnectTimeout. Judge by aiohttp's own
        # error instead, or a POST that reached the API would be sent again.
        from ._aiohttp import disposition_of_aiohttp

        return disposition_of_aiohttp(cause)
    return Disposition.NOT_ACTED if isinstance(exc, _NOT_SENT) else Disposition.MAYBE_ACTED


def timed_out(exc: httpx.TransportError) -> bool:
    """Whether ``exc`` is a timeout (connecting, waiting for a pooled connection, reading)."""
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, TimeoutError)  # aiohttp's timeouts subclass it
    return isinstance(exc, httpx.TimeoutException)


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of a request that failed with ``exc``, for its span.

    Under an httpx-aiohttp transport it is aiohttp's own error, as in :func:`disposition_of`:
    the stock mapping names most failures ``httpx.ConnectTimeout``.
    """
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return _error_type(cause)
    return _error_type(exc)
