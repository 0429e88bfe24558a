"""Where a campaign's state survives the process: the :class:`CampaignStore` protocol, an
in-memory store for tests, and the default embedded SQLite store.

The dialer writes behind: changed items are saved in batches every few tens of
milliseconds. A crash can lose the last batch, and that is safe by construction: every
create carries a deterministic idempotency key per (campaign, item, attempt), so an attempt
replayed from an older record cannot place a second call, and a call whose end was not yet
saved is polled on restart instead of being dialed again. The key includes a random nonce
stored with the campaign, so a reused campaign name in a fresh store gets new keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from .._json import dumps, loads
from ._machine import ItemRecord

__all__ = ["CampaignStore", "MemoryStore", "SQLiteStore", "SuppressionStore"]


@runtime_checkable
class CampaignStore(Protocol):
    """Durable campaign state. Implementations must be safe to call from one event loop.

    ``save`` upserts records; a record whose ``request`` is ``None`` only updates an item
    saved before. ``load`` returns every item of a campaign with its request. A shared
    implementation (e.g. on Redis) lets several processes serve one campaign.
    """

    async def open(self) -> None:
        """Prepare the store (create tables, connect). Called once per dialer session."""

    async def load(self, campaign: str) -> list[ItemRecord]:
        """Every stored item of ``campaign``."""

    async def nonce(self, campaign: str, proposed: str) -> str:
        """The campaign's idempotency-key nonce: the stored one, else store ``proposed`` and
        return it (atomically, for shared stores)."""

    async def save(self, campaign: str, records: Sequence[ItemRecord]) -> None:
        """Upsert ``records`` atomically."""

    async def aclose(self) -> None:
        """Release resources; the data stays."""


@runtime_checkable
class SuppressionStore(Protocol):
    """A store that also keeps the numbers never to call, for every campaign: what
    ``dialer.suppress(number)`` adds survives the process. Both built-in stores are one."""

    async def suppressed(self) -> list[str]:
        """Every suppressed number (E.164)."""

    async def add_suppressed(self, numbers: Sequence[str]) -> None:
        """Suppress ``numbers`` (E.164) from now on."""


class MemoryStore:
    """A :class:`CampaignStore` in a dict: for tests and throwaway runs (not durable)."""

    def __init__(self) -> None:
        self.campaigns: dict[str, dict[int, ItemRecord]] = {}
        self.nonces: dict[str, str] = {}
        self.suppressed_numbers: set[str] = set()
        self.saves = 0

    async def open(self) -> None:
        """Nothing to prepare."""

    async def load(self, campaign: str) -> list[ItemRecord]:
        """Every stored item of ``campaign``, by index."""
        items = self.campaigns.get(campaign, {})
        return [items[i] for i in sorted(items)]

    async def nonce(self, campaign: str, proposed: str) -> str:
        """The stored nonce, or ``proposed`` stored now."""
        return self.nonces.setdefault(campaign, proposed)

    async def save(self, campaign: str, records: Sequence[ItemRecord]) -> None:
        """Upsert ``records``, keeping a stored request when an update omits it."""
        items = self.campaigns.setdefault(campaign, {})
        for record in records:
            old = items.get(record.index)
            if record.request is None and old is not None:
                record = attrs.evolve(record, request=old.request)
            items[record.index] = record
        self.saves += 1

    async def suppressed(self) -> list[str]:
        """Every suppressed number."""
        return sorted(self.suppressed_numbers)

    async def add_suppressed(self, numbers: Sequence[str]) -> None:
        """Suppress ``numbers``."""
        self.suppressed_numbers.update(numbers)

    async def aclose(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dial_items (
    campaign TEXT NOT NULL,
    idx INTEGER NOT NULL,
    request TEXT,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    call_ids TEXT NOT NULL,
    reason TEXT,
    next_at REAL,
    caller_id TEXT,
    PRIMARY KEY (campaign, idx)
) WITHOUT ROWID
"""
_SCHEMA_SUPPRESSED = """
CREATE TABLE IF NOT EXISTS dial_suppressed (number TEXT PRIMARY KEY) WITHOUT ROWID
"""
_SCHEMA_CAMPAIGNS = """
CREATE TABLE IF NOT EXISTS dial_campaigns (
    campaign TEXT PRIMARY KEY,
    nonce TEXT NOT NULL
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO dial_items
    (campaign, idx, request, state, attempt, call_ids, reason, next_at, caller_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (campaign, idx) DO UPDATE SET
    request = COALESCE(excluded.request, dial_items.request),
    state = excluded.state, attempt = excluded.attempt, call_ids = excluded.call_ids,
    reason = excluded.reason, next_at = excluded.next_at, caller_id = excluded.caller_id
"""


class SQLiteStore:
    """The default :class:`CampaignStore`: one embedded SQLite file.

    One connection in WAL mode, used from a worker thread one operation at a time (stdlib
    ``sqlite3`` via ``anyio.to_thread`` works on asyncio and trio alike). ``synchronous=NORMAL``
    keeps every committed batch across a killed process; only a power loss may drop the last
    one, which the idempotency keys make harmless.
    """

    def __init__(self, path: str | Path = "audian-dialer.sqlite3") -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        conn.execute(_SCHEMA_CAMPAIGNS)
        conn.execute(_SCHEMA_SUPPRESSED)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(dial_items)")}
        if "caller_id" not in columns:  # a file written by an earlier version
            conn.execute("ALTER TABLE dial_items ADD COLUMN caller_id TEXT")
        return conn

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SQLiteStore is not open")
        return self._conn

    async def open(self) -> None:
        """Open (or create) the database file."""
        if self._conn is None:
            self._conn = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)

    async def load(self, campaign: str) -> list[ItemRecord]:
        """Every stored item of ``campaign``, by index."""
        conn = self._require()

        def query() -> list[ItemRecord]:
            rows = conn.execute(
                "SELECT idx, state, attempt, call_ids, reason, next_at, request, caller_id"
                " FROM dial_items WHERE campaign = ? ORDER BY idx",
                (campaign,),
            ).fetchall()
            return [
                ItemRecord(i, s, a, tuple(loads(c)), r, n, q, f) for i, s, a, c, r, n, q, f in rows
            ]

        return await anyio.to_thread.run_sync(query, limiter=self._limiter)

    async def nonce(self, campaign: str, proposed: str) -> str:
        """The stored nonce, or ``proposed`` stored now (one transaction)."""
        conn = self._require()

        def get_or_set() -> str:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(
                    "SELECT nonce FROM dial_campaigns WHERE campaign = ?", (campaign,)
                ).fetchone()
                if row is not None:
                    return str(row[0])
                conn.execute(
                    "INSERT INTO dial_campaigns (campaign, nonce) VALUES (?, ?)",
                    (campaign, proposed),
                )
                return proposed

        return await anyio.to_thread.run_sync(get_or_set, limiter=self._limiter)

    async def save(self, campaign: str, records: Sequence[ItemRecord]) -> None:
        """Upsert ``records`` in one transaction."""
        if not records:
            return
        conn = self._require()
        rows = [
            (
                campaign,
                r.index,
                r.request,
                r.state,
                r.attempt,
                dumps(list(r.call_ids)).decode(),
                r.reason,
                r.next_at,
                r.caller_id,
            )
            for r in records
        ]

        def write() -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(_UPSERT, rows)

        await anyio.to_thread.run_sync(write, limiter=self._limiter)

    async def suppressed(self) -> list[str]:
        """Every suppressed number."""
        conn = self._require()

        def query() -> list[str]:
            return [row[0] for row in conn.execute("SELECT number FROM dial_suppressed")]

        return await anyio.to_thread.run_sync(query, limiter=self._limiter)

    async def add_suppressed(self, numbers: Sequence[str]) -> None:
        """Suppress ``numbers`` (one transaction)."""
        conn = self._require()
        rows = [(n,) for n in numbers]

        def write() -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany("INSERT OR IGNORE INTO dial_suppressed VALUES (?)", rows)

        await anyio.to_thread.run_sync(write, limiter=self._limiter)

    async def aclose(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(conn.close, limiter=self._limiter)
