"""What the steps of :class:`~._redis_state.RedisCampaignState` return, and the reading of
the records its scripts keep (JSON in Redis hashes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._json import loads
from ._machine import ItemRecord, ItemState

__all__ = [
    "CampaignCounts",
    "Change",
    "Claimed",
    "NoCallerId",
    "NoSlot",
    "NothingDue",
    "OpenedCampaign",
    "TakenItem",
    "counts_of",
    "pairs",
    "record_of",
]


@attrs.frozen
class CampaignCounts:
    """A campaign's totals: items, items without an outcome, accepted calls, and items per
    state (while an open is still writing the items, ``states`` sums to less than
    ``total``)."""

    total: int
    unfinished: int
    attempts: int
    states: Mapping[ItemState, int]
    scheduled: int = 0
    """Live items whose call waits for its scheduled time (they hold no slot)."""


@attrs.frozen
class OpenedCampaign:
    """What :meth:`RedisCampaignState.open` found: the campaign's nonce (its idempotency
    keys' salt, chosen by the first opener), whether this call created it, its counts."""

    nonce: str
    created: bool
    counts: CampaignCounts


@attrs.frozen
class NoSlot:
    """:meth:`~RedisCampaignState.claim`: the namespace's live-call limit is reached."""


@attrs.frozen
class NoCallerId:
    """:meth:`~RedisCampaignState.claim`: the next due item needs a caller ID of the pool,
    and every one carries ``max_active_per_caller_id`` live calls."""


@attrs.frozen
class NothingDue:
    """:meth:`~RedisCampaignState.claim`: no item is due; the next one is due in
    ``due_in`` seconds (server clock), or None when none is pending or waiting."""

    due_in: float | None


@attrs.frozen
class Claimed:
    """An item claimed for placing, with its slot taken and its pace booked.

    ``attempt`` is the attempt to send (``len(call_ids) + 1``: the same key when a create is
    repeated); ``request`` its wire JSON; wait ``pace_wait`` seconds before sending it.
    """

    index: int
    attempt: int
    record: ItemRecord
    request: str
    pace_wait: float


@attrs.frozen
class TakenItem:
    """An item (``placing`` or ``live``) whose holder's lease expired, now held by the
    caller: replay its create with the same attempt (placing) or poll its call (live)."""

    index: int
    record: ItemRecord
    request: str


@attrs.frozen
class Change:
    """What a step changed: item ``index`` of the campaign ``campaign`` (its
    :func:`campaign_digest`) is now ``state``; ``delay`` is the redial delay in seconds of
    a ``waiting`` item (or the hold of one put back), else None."""

    index: int
    state: ItemState
    delay: float | None
    record: ItemRecord
    campaign: str


def record_of(index: int, raw: str, request: str | None = None) -> ItemRecord:
    data = loads(raw)
    next_at = data.get("next_at")
    call_ids = data.get("call_ids") or []  # cjson may have written [] as {}
    return ItemRecord(
        index=index,
        state=str(data["state"]),
        attempt=int(data["attempt"]),
        call_ids=tuple(str(c) for c in call_ids),
        reason=data.get("reason"),
        next_at=None if next_at is None else next_at / 1000,
        request=request,
        caller_id=data.get("caller_id"),
    )


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def counts_of(meta: Mapping[str, str]) -> CampaignCounts:
    return CampaignCounts(
        total=int(meta.get("total", 0)),
        unfinished=int(meta.get("unfinished", 0)),
        attempts=int(meta.get("attempts", 0)),
        states={state: int(meta.get(state.value, 0)) for state in ItemState},
        scheduled=int(meta.get("scheduled", 0)),
    )
