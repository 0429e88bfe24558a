"""A call with a ring timeout, a maximum duration, tags and custom fields."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian


async def main() -> None:
    async with audian() as (client, _):
        call = await client.calls.create(
            from_=CALLER_ID,
            to="+14155552672",
            timeout=45,
            max_duration=600,
            tags={"campaign": "winter_sale", "agent_id": "agent_123", "priority": "high"},
            custom_fields={"customer_id": "cust_456", "order_id": "ord_789"},
        )
        print(f"placed {call.call_id}: timeout={call.timeout}s max_duration={call.max_duration}s")
        print(f"tags={call.tags} custom_fields={call.custom_fields}")


if __name__ == "__main__":
    anyio.run(main)
