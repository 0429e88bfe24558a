"""Receive Audian webhooks with WebhookApp served by plain uvicorn.

Serve it for real with ``uvicorn webhooks_uvicorn:app --port 8000`` (set
AUDIAN_WEBHOOK_SECRET to your endpoint's ``whsec_...`` secret). Run as a script, it starts on
loopback, sends itself one signed ``call.failed`` delivery, prints the typed event it received
and exits: ``python webhooks_uvicorn.py [--port N]`` (0, the default, picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time

import httpx
import uvicorn

from audian_async.webhooks import CallFailed, Event, EventRouter, WebhookApp, sign

SECRET = os.environ.get("AUDIAN_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

router = EventRouter()


@router.on("call.failed", reason={"busy", "no_answer"})
async def redial_later(event: CallFailed) -> None:
    print(f"would redial {event.call_id}: {event.reason} ({event.reason_code})")


@router.on("*")
async def log_every_event(event: Event) -> None:
    print(f"received {event!r}")


app = WebhookApp(router, secret=SECRET)


async def send_test_delivery(url: str) -> int:
    """POST one signed delivery, the way Audian does, and return the HTTP status."""
    body = b'{"id":"evt_1","event":"call.failed","data":{"call_id":"call_xyz789","reason":"busy","reason_code":486}}'  # noqa: E501
    now = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_example_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, "msg_example_1", now, body),
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    return response.status_code


async def main(port: int = 0) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    status = 0
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                await asyncio.sleep(0.01)
            status = await send_test_delivery(url)
            print(f"delivery answered {status}")
    finally:
        server.should_exit = True
        await serving
        sock.close()
    return 0 if status == 204 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    raise SystemExit(asyncio.run(main(parser.parse_args().port)))
