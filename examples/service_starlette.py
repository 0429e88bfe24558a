"""The service most applications write, on Starlette: one client, one dialer, one webhook endpoint.

The same service as ``service_fastapi.py`` with Starlette alone. ``WebhookApp`` is a pure
ASGI app, so ``Route("/webhooks", endpoint=app)`` hands it requests at exactly that path (a
``Mount`` would redirect ``POST /webhooks`` to ``/webhooks/``, and webhook senders do not
follow redirects).

Serve it for real with ``uvicorn service_starlette:service``; run as a script, it starts a
sandbox that delivers its webhooks to the service, submits one reminder, prints its outcome
and exits: ``python service_starlette.py``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import audian_async as au
from audian_async.webhooks import CallCompleted, EventRouter, WebhookApp

SECRET = os.environ.get("AUDIAN_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
CALLER_ID = os.environ.get("AUDIAN_CALLER_ID", "+14155552671")  # the sandbox's own

router = EventRouter()


@router.on("call.completed")
async def log_completion(event: CallCompleted) -> None:
    print(f"call {event.call_id} completed")


@asynccontextmanager
async def lifespan(service: Starlette) -> AsyncIterator[dict[str, Any]]:
    store = au.SQLiteStore(os.environ.get("REMINDERS_DB", "reminders.sqlite3"))
    async with (
        au.AsyncAudian() as client,
        au.Dialer(client, router, campaign="reminders", store=store) as dialer,
    ):
        yield {"dialer": dialer, "handles": {}}


async def submit_reminder(request: Request) -> JSONResponse:
    body = await request.json()
    call = au.CallRequest(
        from_=CALLER_ID,
        to=str(body.get("to")),
        call_control=au.CallControl(on_answered=[au.PlayAudio(message=str(body.get("message")))]),
    )
    try:
        handle = await request.state.dialer.submit(call)
    except au.ValidationError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    request.state.handles[handle.index] = handle
    return JSONResponse({"item": handle.index}, status_code=202)


async def reminder_outcome(request: Request) -> JSONResponse:
    item = int(request.path_params["item"])
    handle = request.state.handles.get(item)
    if handle is None:
        return JSONResponse({"detail": "no such reminder"}, status_code=404)
    with anyio.move_on_after(min(float(request.query_params.get("wait", 0)), 30.0)):
        outcome = await handle
        del request.state.handles[item]
        return JSONResponse(
            {"status": outcome.status, "reason": outcome.reason, "attempts": outcome.attempts}
        )
    return JSONResponse({"status": "pending", "reason": None, "attempts": None})


service = Starlette(
    routes=[
        Route("/webhooks", endpoint=WebhookApp(router, secret=SECRET), methods=["POST"]),
        Route("/reminders", submit_reminder, methods=["POST"]),
        Route("/reminders/{item:int}", reminder_outcome, methods=["GET"]),
    ],
    lifespan=lifespan,
)


if __name__ == "__main__":
    import asyncio

    from _service_demo import run_demo

    raise SystemExit(asyncio.run(run_demo(service, SECRET)))
