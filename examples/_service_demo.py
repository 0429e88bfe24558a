"""Drive a service example end to end on loopback: a sandbox, the service under uvicorn, one
reminder submitted over HTTP and its outcome read back.

The sandbox delivers its signed webhooks to the service's ``/webhooks`` (no trailing slash,
as a webhook URL is usually configured), so the run fails if the endpoint answers anything
but 2xx, a redirect included.
"""

from __future__ import annotations

import os
import socket
import tempfile
from typing import Any

import anyio
import httpx
import uvicorn

from audian_async.sandbox import Sandbox

TO = "+14155552672"  # any number the sandbox answers


async def run_demo(service: Any, secret: str) -> int:
    """Serve ``service`` against a fresh sandbox, submit one reminder; 0 when it completed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn serves: requests (ours and the sandbox's webhooks) wait in the
    # backlog until the service has finished its lifespan startup, so nothing polls for it.
    sock.listen(128)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    speed = float(os.environ.get("SANDBOX_SPEED", "50"))
    with tempfile.TemporaryDirectory() as state:
        async with Sandbox(
            speed=speed, webhook_urls=[f"{origin}/webhooks"], webhook_secret=secret
        ) as sandbox:
            # The service reads its configuration from the environment, as in production.
            os.environ.update(
                AUDIAN_BASE_URL=sandbox.base_url,
                AUDIAN_API_KEY=sandbox.api_key,
                REMINDERS_DB=os.path.join(state, "reminders.sqlite3"),
            )
            config = uvicorn.Config(service, lifespan="on", log_level="warning")
            server = uvicorn.Server(config)
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.serve, [sock])
                try:
                    async with httpx.AsyncClient(base_url=origin, timeout=30) as http:
                        sent = await http.post("/reminders", json={"to": TO, "message": "Hi!"})
                        sent.raise_for_status()
                        item = sent.json()["item"]
                        answer = await http.get(f"/reminders/{item}", params={"wait": 20})
                        answer.raise_for_status()
                        outcome = answer.json()
                    await sandbox.wait_idle()  # every webhook delivered before we stop
                finally:
                    server.should_exit = True
            deliveries = [d for d in sandbox.deliveries if d.url.endswith("/webhooks")]
    sock.close()
    print(f"reminder {item}: {outcome['status']} after {outcome['attempts']} attempt(s)")
    answers = sorted({d.status_code or 0 for d in deliveries})
    print(f"{len(deliveries)} webhook deliveries to {origin}/webhooks, answered {answers}")
    failed = [d for d in deliveries if not d.ok]
    for delivery in failed:
        print(f"failed delivery: {delivery.event} {delivery.status_code} {delivery.error}")
    return 0 if outcome["status"] == "completed" and deliveries and not failed else 1
