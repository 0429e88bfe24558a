"""Schedule a call for later; it stays "scheduled" until its time comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
from _target import CALLER_ID, audian

import audian_async as au


async def main() -> None:
    when = datetime.now(UTC) + timedelta(seconds=1)
    async with audian() as (client, _):
        call = await client.calls.create(
            from_=CALLER_ID,
            to="+14155552672",
            scheduled_for=when,
            call_control=au.CallControl(
                on_answered=[
                    au.PlayAudio(message="This is your appointment reminder for tomorrow at 2 PM.")
                ]
            ),
        )
        print(f"{call.call_id} is {call.status} for {call.scheduled_for:%H:%M:%S} UTC")
        with anyio.fail_after(30):
            while (await client.calls.get(call.call_id)).status == au.CallStatus.SCHEDULED:
                await anyio.sleep(0.1)
        print(f"{call.call_id} has started")


if __name__ == "__main__":
    anyio.run(main)
