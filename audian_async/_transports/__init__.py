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
from ._auto import AutoTransport
from ._exchange import Exchange, Exchanged, Exchanging, exchanger_of
from ._sharded import ShardedTransport

__all__ = [
    "AutoTransport",
    "Exchange",
    "Exchanged",
    "Exchanging",
    "HttpBackend",
    "ShardedTransport",
    "check_backend",
    "describe_backend",
    "disposition_of",
    "error_type",
    "exchanger_of",
    "injected_transport",
    "make_http_client",
    "still_lean",
    "timed_out",
]

HttpBackend = Literal["auto", "httpx", "aiohttp"]
"""What carries the client's own requests: ``"auto"`` (the default), the aiohttp transport
when running on asyncio with the ``aiohttp`` extra installed and stock httpx otherwise (trio);
``"httpx"``, stock httpx over many one-connection pools; ``"aiohttp"``, the httpx-aiohttp
transport (the ``aiohttp`` extra, asyncio only), the leanest path for high-concurrency
dialers."""

_BACKENDS = ("auto", "httpx", "aiohttp")


def check_backend(backend: object) -> None:
    """Raise :class:`ValidationError` unless ``backend`` names a known backend."""
    if backend not in _BACKENDS:
        raise ValidationError(
            "http_backend", f"must be 'auto', 'httpx' or 'aiohttp', got {backend!r}"
        )


def describe_backend(client: httpx.AsyncClient) -> str:
    """What carries our own client's requests, for ``repr(client)``."""
    transport = getattr(client, "_transport", None)
    if isinstance(transport, AutoTransport):
        if transport.uses_aiohttp:
            return "auto (aiohttp on asyncio, httpx on trio)"
        return "auto (httpx: the aiohttp extra is not installed)"
    if isinstance(transport, ShardedTransport):
        return "httpx"
    if type(transport).__module__.startswith(__name__):
        return "aiohttp"
    return "httpx (proxies from the environment)"


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
    proxied = not {url.scheme, "all"}.isdisjoint(urllib.request.getproxies())
    if backend == "auto" and not proxied:
        transport = AutoTransport(limits, max_connections)
    elif backend == "aiohttp":
        try:
            from ._aiohttp import LeanAiohttpTransport
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise AudianError(
                "http_backend='aiohttp' needs the extra: pip install 'audian-async[aiohttp]'"
            ) from None
        transport = LeanAiohttpTransport(limits=limits)
    elif not proxied:
        transport = ShardedTransport(max_connections)
    else:
        return httpx.AsyncClient(limits=limits), None
    client = httpx.AsyncClient(transport=transport)
    return client, (None if url.userinfo else transport)


def injected_transport(
    client: httpx.AsyncClient, url: httpx.URL
) -> httpx.AsyncBaseTransport | None:
    """The transport a user's client would send our requests to, when handing them to it
    directly skips nothing ``AsyncClient.send`` would do; else None (then send() it is).

    send() adds, to a request built already (ours carry their own headers and timeout):
    auth (the client's, or credentials in the base URL), redirects when the client follows
    them, event hooks, and the choice of transport by the client's mounts and the proxies
    it took from the environment. The first three rule the shortcut out; the last is made
    here once, as send() would make it for our URL. Cookies a response sets are not stored
    in the client's jar on the shortcut (the API sets none). :func:`still_lean` re-checks
    what can change after the client was built.
    """
    if url.userinfo or not still_lean(client) or client.follow_redirects:
        return None
    pick = getattr(client, "_transport_for_url", None)  # httpx's own choice, mounts included
    if pick is None:  # an httpx release without it: keep to send()
        return None
    transport: httpx.AsyncBaseTransport = pick(url)
    return transport


def still_lean(client: httpx.AsyncClient) -> bool:
    """Whether a user's client still has no auth and no event hooks (both can be set at any
    time), so that its transport may take our requests directly."""
    hooks = client.event_hooks
    return client.auth is None and not hooks["request"] and not hooks["response"]


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
