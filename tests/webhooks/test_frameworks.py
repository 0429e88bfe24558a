"""The way the docs put WebhookApp in FastAPI and Starlette reaches it at the exact path.

A mount answers ``POST /webhooks`` with a redirect to ``/webhooks/``, which webhook senders do
not follow; these tests pin both facts, so the docs' advice stays true across framework
versions.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from audian_async.webhooks import EventRouter, WebhookApp, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"id":"evt_1","event":"call.completed","data":{"call_id":"c1","status":"completed"}}'


def _signed(msg_id: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, msg_id, now, BODY),
    }


def _exact(app: WebhookApp, framework: str) -> Any:
    if framework == "fastapi":
        api = FastAPI()
        api.add_route("/webhooks", app, methods=["POST"])
        return api
    return Starlette(routes=[Route("/webhooks", endpoint=app, methods=["POST"])])


def _mounted(app: WebhookApp, framework: str) -> Any:
    if framework == "fastapi":
        api = FastAPI()
        api.mount("/webhooks", app)
        return api
    return Starlette(routes=[Mount("/webhooks", app=app)])


async def _post(service: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.post(path, content=BODY, headers=_signed(f"msg{path}"))


@pytest.mark.anyio
@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_an_exact_route_reaches_the_app(framework: str) -> None:
    router = EventRouter()
    seen: list[str] = []
    router.add(lambda event: seen.append(event.call_id), "call.completed", in_thread=False)
    response = await _post(_exact(WebhookApp(router, secret=SECRET), framework), "/webhooks")
    assert response.status_code == 204
    assert seen == ["c1"]


@pytest.mark.anyio
@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_a_mount_redirects_the_path_without_its_slash(framework: str) -> None:
    router = EventRouter()
    response = await _post(_mounted(WebhookApp(router, secret=SECRET), framework), "/webhooks")
    assert response.status_code == 307
    assert response.headers["location"].endswith("/webhooks/")
