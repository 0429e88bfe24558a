"""Follow a call's progress by polling its status (webhooks are the push alternative)."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian

import audian_async as au


async def main() -> None:
    async with audian() as (client, _):
        call = await client.calls.create(from_=CALLER_ID, to="+14155552672")
        last = None
        with anyio.fail_after(60):
            while True:
                call = await client.calls.get(call.call_id)
                if call.status != last:
                    print(f"{call.call_id}: {call.status} (duration {call.duration})")
                    last = call.status
                if call.status in (au.CallStatus.COMPLETED, au.CallStatus.FAILED):
                    break
                await anyio.sleep(0.05)


if __name__ == "__main__":
    anyio.run(main)
