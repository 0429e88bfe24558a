"""Every failure is a typed error: bad input before sending, then what the API answers."""

from __future__ import annotations

import anyio
from _target import CALLER_ID, audian

import audian_async as au


async def main() -> None:
    async with audian() as (client, _):
        try:
            await client.calls.create(from_=CALLER_ID, to="(415) 555-2672")
        except au.ValidationError as exc:
            print(f"rejected before sending: {exc.field}: {exc.message}")

        try:
            await client.calls.create(from_="+14155559999", to="+14155552672")
        except au.UnauthorizedCallerIdError as exc:
            print(f"403 {exc.error}: {exc.message}")

        try:
            await client.calls.get("call_does_not_exist")
        except au.NotFoundError as exc:
            print(f"404: {exc.message}")

        try:
            await client.calls.create(from_=CALLER_ID, to="+14155552672")
        except au.RateLimitedError as exc:
            print(f"429, retry after {exc.retry_after}s")
        except au.APITimeoutError:
            print("timed out: the call may exist; retry with the same idempotency_key")
        except au.APIConnectionError as exc:
            print(f"could not reach the API: {exc}")
        except au.AudianError as exc:
            print(f"other API error: {exc}")
        else:
            print("and a good call goes through")


if __name__ == "__main__":
    anyio.run(main)
