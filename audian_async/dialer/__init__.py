"""Campaigns: place many calls with redials, a live-call limit, pacing and durable state.

:class:`Dialer` is the I/O shell; :class:`RetryPolicy` and the campaign state machine are
pure. The guide is docs/dialer.md.
"""

from ._dialer import DEFAULT_DB_PATH, Dialer, DialerStats, DialHandle
from ._machine import CallOutcome, CampaignReport, ItemRecord, ItemState, idempotency_key
from ._policy import RetryPolicy
from ._redis_store import RedisStore
from ._store import CampaignStore, MemoryStore, SQLiteStore, SuppressionStore
from ._timeline import Timeline

__all__ = [
    "DEFAULT_DB_PATH",
    "CallOutcome",
    "CampaignReport",
    "CampaignStore",
    "DialHandle",
    "Dialer",
    "DialerStats",
    "ItemRecord",
    "ItemState",
    "MemoryStore",
    "RedisStore",
    "RetryPolicy",
    "SQLiteStore",
    "SuppressionStore",
    "Timeline",
    "idempotency_key",
]
