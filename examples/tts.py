"""Text-to-speech instead of a pre-recorded file: language, voice and rate."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian

import audian_async as au


async def main() -> None:
    speech = au.PlayAudio(
        message="Hello! You have a $50 credit available. Would you like to use it?",
        language="en-US",
        voice="female",
        rate=1.1,
    )
    async with audian() as (client, _):
        call = await client.calls.create(
            from_=CALLER_ID,
            to="+14155552672",
            call_control=au.CallControl(on_answered=[speech]),
        )
        print(f"placed {call.call_id} with a TTS greeting")


if __name__ == "__main__":
    anyio.run(main)
