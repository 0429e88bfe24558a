"""A campaign's keys in Redis and the reads of them: the base of the scripted steps of
:class:`~._redis_state.RedisCampaignState` (whose module documents the key layout).

Nothing here changes anything in Redis: these reads serve reports, a process resuming a
campaign, and the decisions of webhook handlers on calls another process placed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._errors import ValidationError
from .._redis import check_namespace
from . import _redis_scripts as lua
from ._machine import ItemRecord
from ._redis_connection import RedisConnection
from ._redis_decisions import _id, _positive, campaign_digest
from ._redis_records import CampaignCounts, counts_of, pairs, record_of

__all__ = ["BATCH", "DEFAULT_RETENTION", "CampaignReads"]

DEFAULT_RETENTION = 7 * 86_400.0
"""Seconds a finished campaign (and a call's item mapping) stays readable."""
BATCH = 1_000
"""Fields read (or leases renewed) per command by the bounded bulk reads."""


class CampaignReads:
    """Campaign ``campaign`` under ``namespace``: its keys, and what can be read of it.

    ``retention`` is how long a finished campaign, and the mapping of each placed call to
    its item, stay in Redis.
    """

    def __init__(
        self,
        connection: RedisConnection,
        campaign: str,
        *,
        namespace: str = "audian",
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        if not isinstance(campaign, str) or not campaign:
            raise ValidationError("campaign", "must be a non-empty string")
        self.connection = connection
        self.campaign = campaign
        self.namespace = check_namespace(namespace)
        self.retention = _positive(retention, "retention")
        self.digest = campaign_digest(campaign)
        """The campaign's ``cd`` (compare it with a step's ``Change.campaign``)."""
        self.round_trips = 0
        """Round trips to Redis made by this object's steps."""
        self._tag = f"{{{self.namespace}}}:"
        prefix = f"{self._tag}c:{self.digest}:"
        self._keys = [self._tag + "live", *(prefix + name for name in lua.CAMPAIGN_KEYS)]
        self._meta, self._req, self._items = self._keys[1], self._keys[2], self._keys[3]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.campaign!r}, namespace={self.namespace!r})"

    async def _run(self, source: str, keys: Sequence[str], args: Sequence[str | int]) -> list[Any]:
        self.round_trips += 1
        return list(await self.connection.script(source, keys, args))

    async def _script(self, source: str, extra: Sequence[str], *args: str | int) -> list[Any]:
        # The scripts of one campaign get the live counter and the campaign's keys first.
        return await self._run(source, [*self._keys, *extra], args)

    @property
    def _read(self) -> RedisConnection:
        # A plain read: one round trip.
        self.round_trips += 1
        return self.connection

    async def counts(self) -> CampaignCounts:
        """The campaign's totals (all zero for a campaign not in Redis)."""
        return counts_of(await self._read.hgetall(self._meta))

    async def status(self) -> tuple[CampaignCounts, int]:
        """The campaign's totals and the namespace's live-call slots in use, in one round
        trip (what a process re-reads a few times a second)."""
        reply = await self._run(lua.STATUS, self._keys[:2], [])
        return counts_of(pairs(reply[0])), int(reply[1])

    async def caller_id_calls(self) -> dict[str, int]:
        """Live calls per pooled caller ID over the whole namespace (those with none left
        out)."""
        found = await self._read.hgetall(self._tag + "caller_ids")
        return {k: int(v) for k, v in found.items()}

    async def record_for_call(self, call_id: str) -> ItemRecord | None:
        """The record of the item of this campaign that placed ``call_id``, or None (a call
        not recorded, or another campaign's)."""
        reply = await self._run(
            lua.CALL_RECORD,
            [self._tag + "call:" + _id(call_id, "call_id"), self._items],
            [self.digest],
        )
        if reply[0] != "ok":
            return None
        return record_of(int(reply[1]), str(reply[2]))

    async def live(self) -> int:
        """Live-call slots in use over the whole namespace."""
        return int(await self._read.get(self._keys[0]) or 0)

    async def suppressed(self) -> list[str]:
        """The namespace's suppressed numbers (E.164), for every campaign."""
        return sorted(await self._read.smembers(self._tag + "suppressed"))

    async def add_suppressed(self, number: str) -> None:
        """Suppress ``number`` for every campaign of the namespace."""
        await self._read.sadd(self._tag + "suppressed", number)

    async def request(self, index: int) -> str | None:
        """The request wire JSON of item ``index``, or None."""
        return await self._read.hget(self._req, str(int(index)))

    async def records(
        self, indices: Iterable[int] | None = None, *, with_requests: bool = False
    ) -> list[ItemRecord]:
        """Records of items ``indices`` (default: all), ordered by index, with their
        requests when ``with_requests``. Read a thousand at a time, so a big campaign never
        makes one huge reply; items missing are left out."""
        found: dict[int, str] = {}
        if indices is None:
            cursor = 0
            while True:
                cursor, batch = await self._read.hscan(self._items, cursor, BATCH)
                found.update((int(k), v) for k, v in batch.items())
                if not cursor:
                    break
        else:
            wanted = sorted({int(i) for i in indices})
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start : start + BATCH]
                values = await self._read.hmget(self._items, [str(i) for i in chunk])
                found.update((i, v) for i, v in zip(chunk, values, strict=True) if v)
        order = sorted(found)
        requests: dict[int, str] = {}
        if with_requests:
            for start in range(0, len(order), BATCH):
                chunk = order[start : start + BATCH]
                values = await self._read.hmget(self._req, [str(i) for i in chunk])
                requests.update((i, v) for i, v in zip(chunk, values, strict=True) if v)
        return [record_of(i, found[i], requests.get(i)) for i in order]
