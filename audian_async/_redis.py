"""What every Redis-backed part shares (the ``redis`` extra, coredis): checking a URL and a
namespace, showing a URL without its password, and opening a client that answers."""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from ._errors import AudianError, ValidationError

if TYPE_CHECKING:
    import coredis

__all__ = [
    "REDIS_SCHEMES",
    "check_namespace",
    "check_seconds",
    "check_url",
    "open_client",
    "shown_url",
]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
"""How a Redis URL starts."""


def check_url(url: object) -> str:
    """``url`` if it is a Redis URL, else a :class:`ValidationError` naming ``url``."""
    if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES):
        raise ValidationError("url", "must be a redis://, rediss:// or unix:// URL")
    return url


def check_namespace(namespace: object) -> str:
    """``namespace`` if it can prefix keys (and hash-tag them), else a ValidationError."""
    if not isinstance(namespace, str) or not namespace or len(namespace) > 64:
        raise ValidationError("namespace", "must be a non-empty string of at most 64 characters")
    if any(c.isspace() or c in "{}" for c in namespace):
        raise ValidationError("namespace", "must not contain spaces or braces")
    return namespace


def check_seconds(value: object, field: str, minimum: float) -> float:
    """``value`` as a float if it is a finite number of seconds of at least ``minimum``,
    else a :class:`ValidationError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValidationError(field, f"must be a number of seconds, got {value!r}")
    if not minimum <= value < math.inf:
        raise ValidationError(field, f"must be at least {minimum:g} seconds, got {value!r}")
    return float(value)


def shown_url(url: str) -> str:
    """``url`` without its password, for reprs and errors."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user + ':***' if user else '***'}@{host}"


async def open_client(url: str, stack: AsyncExitStack, **options: Any) -> coredis.Redis[Any]:
    """A coredis client of ``url`` (``options`` to ``from_url``), entered into ``stack`` and
    answering a ping; an :class:`AudianError` naming the URL (without its password) when
    the extra is missing or Redis cannot be reached (``stack`` is then closed)."""
    try:
        import coredis
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise AudianError("Redis needs the extra: pip install 'audian-async[redis]'") from None
    client: coredis.Redis[Any] = coredis.Redis.from_url(url, **options)
    try:
        await stack.enter_async_context(client)
        await client.ping()
    except Exception as exc:
        await stack.aclose()
        raise AudianError(f"cannot reach Redis at {shown_url(url)}: {exc}") from exc
    return client
