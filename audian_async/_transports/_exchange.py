"""A round trip without httpx's request and response objects, for transports that can.

The client builds its requests from parts it prepared once (URL, header list, body bytes)
and needs three things back (status, headers, body). Where the transport under our own
client can take those parts directly (the aiohttp one, and httpcore's pools under the stock
one), building an ``httpx.Request`` and reading an ``httpx.Response`` only re-normalises
what is already in order: about a tenth of a create's CPU. Every failure still surfaces as
httpx's exception types.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import NamedTuple, Protocol, TypeVar, runtime_checkable

import httpx

__all__ = ["MAX_TARGETS", "Exchange", "Exchanged", "Exchanging", "decoded", "exchanger_of", "memo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_TARGETS = 256
"""How many parsed URLs a transport keeps: a read's URL names its call, so they are many."""


class Exchanged(NamedTuple):
    """What came back: the status, the headers (looked up case-insensitively) and the
    whole body, decoded from any content-encoding."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class Exchange(Protocol):
    """One round trip: ``(method, url, headers, body, timeout) -> Exchanged``.

    ``url`` is absolute and already percent-encoded; ``headers`` the complete list (Host
    and Content-Length included); ``timeout`` as ``httpx.Timeout.as_dict()``.
    """

    async def __call__(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeout: Mapping[str, float | None],
    ) -> Exchanged: ...


@runtime_checkable
class Exchanging(Protocol):
    """A transport that may offer an :class:`Exchange` for the current event loop."""

    def exchanger(self) -> Exchange | None: ...


def exchanger_of(transport: object) -> Exchanging | None:
    """``transport`` when it can offer direct round trips (ours can), else None."""
    return transport if isinstance(transport, Exchanging) else None


def decoded(status: int, raw_headers: Sequence[tuple[bytes, bytes]], content: bytes) -> Exchanged:
    """A reply read by httpx's own response: for an error, whose headers the error keeps
    (names lower-cased, repeated lines joined), or a content-encoding nobody asked for that
    a proxy may add, which httpx's decoders undo as they would on the httpx path."""
    response = httpx.Response(status, headers=raw_headers, content=content)
    return Exchanged(status, response.headers, response.content)


def memo(cache: dict[K, V], key: K, make: Callable[[K], V], bound: int) -> V:
    """``cache[key]``, made by ``make(key)`` the first time; a cache that reached ``bound``
    entries is emptied first, so that it stays bounded whatever the keys."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= bound:
            cache.clear()
        value = cache[key] = make(key)
    return value
