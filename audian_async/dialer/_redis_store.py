"""``RedisStore``: where several dialer processes keep one campaign's shared state.

Not a :class:`~audian_async.dialer.CampaignStore` that a process writes behind to: with it,
the campaign's state lives in Redis and every coordination step runs there atomically (see
:mod:`._redis_state`), so processes on one machine or many serve one campaign together.
"""

from __future__ import annotations

from .._redis import check_namespace, check_seconds, check_url, shown_url
from .._resp_wire import DEFAULT_TIMEOUT
from ._redis_reads import DEFAULT_RETENTION

__all__ = ["RedisStore"]

DEFAULT_LEASE = 30.0


class RedisStore:
    """A campaign shared by every dialer process that runs it against this Redis.

    Pass it as ``Dialer(..., store=RedisStore(url))`` (extra ``audian-async[redis]``; asyncio
    and trio) and run the same campaign, with the same requests, in each process::

        store = RedisStore("redis://127.0.0.1:6379/0", namespace="audian", lease=30.0)
        dialer = Dialer(client, router, max_active_calls=100, store=store)
        report = await dialer.run(requests, campaign="winter-sale")   # in every process

    Each item is placed by one process at a time; ``max_active_calls`` is one live-call
    counter for the whole ``namespace`` (the account's limit) and ``calls_per_second`` one
    shared pace; a terminal webhook received by any process finishes the item wherever it
    was placed. A process holds the items it claimed and the calls it placed for ``lease``
    seconds, renewed while it runs: when it dies, the others take its unplaced claims over
    (replaying the same idempotency key) and poll its live calls. A finished campaign's keys
    expire after ``retention`` seconds.

    A Redis that answers nothing for ``timeout`` seconds (stopped, or its host or the network
    gone silent, which closes no connection) counts as unreachable, as a refused connection
    does: the step is tried again on a new connection, for up to the dialer's
    ``create_deadline``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "audian",
        lease: float = DEFAULT_LEASE,
        retention: float = DEFAULT_RETENTION,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = check_url(url)
        self.namespace = check_namespace(namespace)
        self.lease = check_seconds(lease, "lease", 0.05)
        self.retention = check_seconds(retention, "retention", 1.0)
        self.timeout = check_seconds(timeout, "timeout", 0.01)

    def __repr__(self) -> str:
        url, namespace = shown_url(self.url), self.namespace
        return f"RedisStore({url!r}, namespace={namespace!r}, lease={self.lease:g})"
