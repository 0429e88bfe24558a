"""Record a call. The download URL arrives in a recording.completed webhook."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian, wait_until_done

import audian_async as au


async def main() -> None:
    async with audian() as (client, sandbox):
        call = await client.calls.create(
            from_=CALLER_ID,
            to="+14155552672",
            recording=au.Recording(enabled=True, format="mp3", participant="all"),
        )
        final = await wait_until_done(client, call.call_id)
        print(f"{final.call_id} ended {final.status}; a recording.completed webhook follows")
        if sandbox is not None:
            with anyio.fail_after(10):
                while not (urls := sandbox.recording_urls(call.call_id)):
                    await anyio.sleep(0.05)
            print(f"recording: {urls[0]}")


if __name__ == "__main__":
    anyio.run(main)
