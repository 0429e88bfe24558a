"""Create several calls in one request; each entry reports its own result."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian

import audian_async as au


async def main() -> None:
    requests = [
        au.CallRequest(from_=CALLER_ID, to=to, tags={"batch_id": "batch_123"})
        for to in ("+14155552672", "+14155552673", "+14155552674")
    ]
    async with audian() as (client, _):
        result = await client.calls.create_batch(requests)
        print(f"batch {result.batch_id}: {result.queued} queued, {result.failed} failed")
        for request, item in zip(requests, result.calls, strict=True):
            print(f"  {request.to}: {item.call_id if item.ok else item.error}")


if __name__ == "__main__":
    anyio.run(main)
