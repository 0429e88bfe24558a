"""Route WebhookApp at an exact path of a FastAPI application.

``api.add_route("/webhooks", WebhookApp(...), methods=["POST"])`` serves the endpoint at
``/webhooks`` itself, next to your own routes; serve with ``uvicorn webhooks_fastapi:api``.
Not ``api.mount("/webhooks", ...)``: a mount answers ``POST /webhooks`` with a 307 redirect to
``/webhooks/``, which webhook senders do not follow, so every delivery would be lost. Run as a
script, it starts on loopback, sends itself one signed ``call.completed`` delivery, prints the
typed event and exits: ``python webhooks_fastapi.py [--port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time

import httpx
import uvicorn
from fastapi import FastAPI

from audian_async.webhooks import CallCompleted, EventRouter, WebhookApp, sign

SECRET = os.environ.get("AUDIAN_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

router = EventRouter()


@router.on("call.completed")
def record_completion(event: CallCompleted) -> None:
    # A sync handler runs in a worker thread, so blocking I/O here cannot stall the server.
    seconds = event.data.get("duration")
    print(f"received {event!r}; talked {seconds}s")


api = FastAPI()
api.add_route("/webhooks", WebhookApp(router, secret=SECRET), methods=["POST"])


@api.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


async def send_test_delivery(url: str) -> int:
    """POST one signed delivery, the way Audian does, and return the HTTP status."""
    body = b'{"id":"evt_2","timestamp":"2024-01-15T10:30:50Z","event":"call.completed","data":{"call_id":"call_xyz789","status":"completed","duration":45}}'  # noqa: E501
    now = int(time.time())
    headers = {
        "webhook-id": "msg_example_2",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, "msg_example_2", now, body),
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, content=body, headers=headers)
    return response.status_code


async def main(port: int = 0) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning"))
    status = 0
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                await asyncio.sleep(0.01)
            status = await send_test_delivery(f"{base}/webhooks")
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
