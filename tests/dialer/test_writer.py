"""The batched store writer: one write per batch, and no wake-ups while nothing changed."""

from __future__ import annotations

import anyio
import pytest

from audian_async.dialer import MemoryStore, RetryPolicy
from audian_async.dialer._machine import DialMachine
from audian_async.dialer._writer import BatchedWriter

from .support import req

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("interval", [0.0, 0.01])
async def test_an_idle_writer_sleeps_until_an_item_changes(interval: float) -> None:
    store = MemoryStore()  # counts its writes
    machine = DialMachine("idle", RetryPolicy())
    writer = BatchedWriter(store, machine, interval)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            # A writer that woke every interval to find nothing would never let every task
            # block (at interval 0 it is always ready to run).
            await anyio.wait_all_tasks_blocked()
            assert writer._marked.statistics().tasks_waiting == 1  # parked, not sleeping
            assert store.saves == 0
            first, second = machine.add(0, req("+14155552900")), machine.add(1, req("+14155552901"))
            writer.mark(first)
            writer.mark(second)
            await writer.durable()  # the first mark woke the writer: both in one write
            assert store.saves == 1
            assert sorted(store.campaigns["idle"]) == [0, 1]
            await anyio.wait_all_tasks_blocked()  # and it parks again
            assert writer._marked.statistics().tasks_waiting == 1
            writer.mark(first)
            await writer.durable()
            assert store.saves == 2
            tg.cancel_scope.cancel()
