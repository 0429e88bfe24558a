"""InMemoryDedupeStore: bounded by size and by age."""

from __future__ import annotations

import pytest

from audian_async.webhooks import DedupeStore, InMemoryDedupeStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_remember_and_seen() -> None:
    store = InMemoryDedupeStore()
    assert isinstance(store, DedupeStore)
    assert not await store.seen("a")
    await store.remember("a")
    assert await store.seen("a")
    assert not await store.seen("b")


async def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    store = InMemoryDedupeStore(ttl=60, clock=clock)
    await store.remember("a")
    clock.now += 30
    await store.remember("b")
    clock.now += 29.9
    assert await store.seen("a")
    clock.now += 0.2
    assert not await store.seen("a")
    assert await store.seen("b")
    clock.now += 100
    await store.remember("c")  # purges everything expired on the way
    assert len(store) == 1


async def test_size_is_bounded_oldest_first() -> None:
    store = InMemoryDedupeStore(max_entries=3)
    for key in "abcd":
        await store.remember(key)
    assert len(store) == 3
    assert not await store.seen("a")
    await store.remember("b")  # refreshed: now the newest
    await store.remember("e")
    assert await store.seen("b")
    assert not await store.seen("c")


def test_bad_bounds() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryDedupeStore(max_entries=0)
    with pytest.raises(ValueError, match="ttl"):
        InMemoryDedupeStore(ttl=0)
    assert "max_entries=5" in repr(InMemoryDedupeStore(max_entries=5))
