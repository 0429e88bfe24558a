"""An IVR menu: speak the options, gather one digit, transfer by the digit pressed.

In the sandbox, +14155550107 answers and presses "1", so the billing route runs.
"""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian, wait_until_done

import audian_async as au


async def main() -> None:
    menu = au.CallControl(
        on_answered=[
            au.PlayAudio(
                message="Welcome to support. Press 1 for billing, 2 for technical support, "
                "or 3 for sales."
            ),
            au.GatherDtmf(
                max_digits=1,
                timeout=10,
                routes=[
                    au.DtmfRoute("1", au.Transfer("+14155552673")),
                    au.DtmfRoute("2", au.Transfer("+14155552674")),
                    au.DtmfRoute("3", au.Transfer("+14155552675")),
                ],
            ),
        ]
    )
    async with audian() as (client, _):
        call = await client.calls.create(from_=CALLER_ID, to="+14155550107", call_control=menu)
        final = await wait_until_done(client, call.call_id)
        print(f"{final.call_id} ended {final.status}")


if __name__ == "__main__":
    anyio.run(main)
