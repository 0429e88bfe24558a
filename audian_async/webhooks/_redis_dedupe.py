"""A :class:`~audian_async.webhooks.DedupeStore` in Redis, shared by every replica.

A service behind a load balancer receives each delivery on any one of its replicas, and a
redelivery maybe on another: remembering handled delivery ids in Redis (the ``redis``
extra, on asyncio and trio) lets every replica acknowledge a redelivery without running
the handlers again. The two commands per delivery go over the project's own RESP client
(one pipelined connection on asyncio), a few microseconds each where coredis spends about
0.3 ms; coredis serves only a URL with options that client does not read.
"""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._errors import AudianError, ValidationError
from .._redis import check_namespace, check_seconds, check_url, open_client, shown_url
from .._resp_wire import DEFAULT_TIMEOUT, RespClient, resp_client

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisDedupeStore"]

DEFAULT_TTL = 86_400.0


class RedisDedupeStore:
    """Handled webhook ids, kept in Redis for ``ttl`` seconds under ``namespace``.

    Each id is one key, ``{namespace}:webhook-seen:{digest}``, that expires after ``ttl``
    seconds (a day by default): the set of keys is bounded by the deliveries of one ``ttl``,
    and a delivery id (chosen by the sender) is hashed, so it cannot grow a key. Enter it on
    the event loop that serves the app, or let :class:`~audian_async.webhooks.WebhookApp`'s
    lifespan enter it::

        store = RedisDedupeStore("redis://127.0.0.1:6379/0")
        app = WebhookApp(router, secret=secret, dedupe_store=store)   # lifespan "on"

    A Redis that cannot be reached, or answers nothing for ``timeout`` seconds (stopped, or
    its host gone silent), makes ``seen`` and ``remember`` raise, and the app logs it. A
    delivery it could not check is answered 500, so the sender delivers it again later; one
    handled but not remembered is answered as handled (a redelivery would run the handlers
    again: better twice than never).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "audian",
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        check_url(url)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 1:
            raise ValidationError("ttl", f"must be at least 1 second, got {ttl!r}")
        self.timeout = check_seconds(timeout, "timeout", 0.01)
        self.url = url
        self.namespace = check_namespace(namespace)
        self.ttl = float(ttl)
        self._prefix = f"{self.namespace}:webhook-seen:"
        self._client: coredis.Redis[bytes] | None = None
        self._resp: RespClient | None = None
        self._stack: AsyncExitStack | None = None
        self._ttl_ms = str(int(self.ttl * 1000))

    def __repr__(self) -> str:
        url, namespace = shown_url(self.url), self.namespace
        return f"RedisDedupeStore({url!r}, namespace={namespace!r}, ttl={self.ttl})"

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this RedisDedupeStore is already open")
        stack = AsyncExitStack()
        resp = resp_client(self.url, timeout=self.timeout)
        if resp is None:
            self._client = await open_client(
                self.url, stack, stream_timeout=self.timeout, connect_timeout=self.timeout
            )
        else:
            await stack.enter_async_context(resp)
            try:
                await resp.call("PING")
            except Exception as exc:
                await stack.aclose()
                raise AudianError(f"cannot reach Redis at {shown_url(self.url)}: {exc}") from exc
            self._resp = resp
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client, self._resp = self._stack, None, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the store."""
        return self._stack is not None

    def _key(self, key: str) -> str:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16)
        return self._prefix + digest.hexdigest()

    def _require(self) -> None:
        if self._stack is None:
            raise RuntimeError(
                "enter the store first: 'async with RedisDedupeStore(url) as store:', or mount "
                "the WebhookApp that holds it with lifespan on"
            )

    async def seen(self, key: str) -> bool:
        """True when ``key`` was remembered less than ``ttl`` seconds ago, by any replica."""
        self._require()
        if self._resp is not None:
            return bool(await self._resp.call("EXISTS", self._key(key)))
        assert self._client is not None
        return bool(await self._client.exists([self._key(key)]))

    async def remember(self, key: str) -> None:
        """Remember ``key`` for ``ttl`` seconds, for every replica."""
        self._require()
        if self._resp is not None:
            await self._resp.call("SET", self._key(key), "1", "PX", self._ttl_ms)
            return
        assert self._client is not None
        await self._client.set(self._key(key), b"1", px=int(self.ttl * 1000))
