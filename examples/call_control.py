"""Actions that run when the call is answered, and when nobody answers."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian, wait_until_done

import audian_async as au


async def main() -> None:
    control = au.CallControl(
        on_answered=[
            au.PlayAudio(
                audio_url="https://example.com/greeting.mp3",
                message="Hello! Thank you for calling.",
            )
        ],
        on_no_answer=[
            au.PlayAudio(message="Sorry, no one is available right now. Please leave a message.")
        ],
    )
    async with audian() as (client, _):
        call = await client.calls.create(from_=CALLER_ID, to="+14155552672", call_control=control)
        final = await wait_until_done(client, call.call_id)
        print(f"{final.call_id} ended {final.status} after {final.duration}s")


if __name__ == "__main__":
    anyio.run(main)
