"""Sandbox -> WebhookApp under uvicorn -> typed handlers, end to end on loopback.

The local sandbox places calls to its magic numbers (answer, busy, no answer, declined...)
and delivers signed webhooks to a WebhookApp served by uvicorn in this process, whose
handlers print each typed event. Exits once every call has ended:
``python webhooks_sandbox.py [--port N] [--speed X]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import uvicorn

import audian_async as au
from audian_async.sandbox import Sandbox, generate_webhook_secret
from audian_async.webhooks import (
    CallCompleted,
    CallFailed,
    Event,
    EventRouter,
    RecordingCompleted,
    WebhookApp,
)

CALLER_ID = "+14155552671"
DESTINATIONS = {
    "+14155550100": "answers, then completes",
    "+14155550101": "busy",
    "+14155550102": "no answer",
    "+14155550103": "declined",
}


async def main(port: int = 0, speed: float = 50.0) -> int:
    secret = generate_webhook_secret()
    router = EventRouter()
    ended: set[str] = set()
    all_ended = asyncio.Event()
    call_ids: set[str] = set()

    @router.on("call.*")
    async def progress(event: Event) -> None:
        print(f"{event.call_id}  {event.type:<15} {type(event).__name__}")

    @router.on("call.failed")
    async def failed(event: CallFailed) -> None:
        print(f"{event.call_id}  failed: reason={event.reason} code={event.reason_code}")

    @router.on("recording.completed")
    async def recording(event: RecordingCompleted) -> None:
        print(f"{event.call_id}  recording ready: {event.recording_url}")

    @router.on("call.completed", "call.failed")
    async def done(event: CallCompleted | CallFailed) -> None:
        if event.call_id is not None:
            ended.add(event.call_id)
        if call_ids and call_ids <= ended:
            all_ended.set()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    hooks_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    app = WebhookApp(router, secret=secret, path="/hooks")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(60):
            while not server.started:
                await asyncio.sleep(0.01)
            async with Sandbox(speed=speed, webhook_urls=[hooks_url], webhook_secret=secret) as sb:
                for to, what in DESTINATIONS.items():
                    call = await sb.client.calls.create(
                        from_=CALLER_ID,
                        to=to,
                        timeout=30,
                        recording=au.Recording(enabled=True, format="mp3"),
                    )
                    call_ids.add(call.call_id)
                    print(f"{call.call_id}  placed to {to} ({what})")
                if call_ids <= ended:
                    all_ended.set()
                await all_ended.wait()
                print(f"all {len(call_ids)} calls ended; webhooks delivered: {len(sb.deliveries)}")
    finally:
        server.should_exit = True
        await serving
        sock.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    parser.add_argument("--speed", type=float, default=float(os.environ.get("SANDBOX_SPEED", "50")))
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.port, args.speed)))
