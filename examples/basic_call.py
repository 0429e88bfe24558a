"""The simplest call: from a caller ID you own to any number."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian


async def main() -> None:
    async with audian() as (client, _):
        call = await client.calls.create(from_=CALLER_ID, to="+14155552672")
        print(f"placed {call.call_id}: {call.status}")


if __name__ == "__main__":
    anyio.run(main)
