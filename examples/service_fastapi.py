"""The service most applications write, on FastAPI: one client, one dialer, one webhook endpoint.

The lifespan owns the ``AsyncAudian`` client and a ``Dialer`` in service mode; the
``WebhookApp`` is routed at exactly ``/webhooks`` (a mount would answer ``POST /webhooks``
with a redirect that webhook senders do not follow), and its events finish the dialer's
calls. ``POST /reminders`` submits a call; ``GET /reminders/{item}?wait=S`` reads its
outcome, waiting up to S seconds.

Serve it for real with ``uvicorn service_fastapi:api`` (AUDIAN_API_KEY, AUDIAN_WEBHOOK_SECRET
and your caller ID in AUDIAN_CALLER_ID; configure ``https://<host>/webhooks`` as the webhook
URL). Run as a script, it starts a sandbox that delivers its webhooks to the service, submits
one reminder, prints its outcome and exits: ``python service_fastapi.py``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import audian_async as au
from audian_async.webhooks import CallCompleted, EventRouter, WebhookApp

SECRET = os.environ.get("AUDIAN_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
CALLER_ID = os.environ.get("AUDIAN_CALLER_ID", "+14155552671")  # the sandbox's own

router = EventRouter()


@router.on("call.completed")
async def log_completion(event: CallCompleted) -> None:
    # The application's handlers run first; the dialer settles the call after them.
    print(f"call {event.call_id} completed")


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[dict[str, Any]]:
    store = au.SQLiteStore(os.environ.get("REMINDERS_DB", "reminders.sqlite3"))
    async with (
        au.AsyncAudian() as client,
        au.Dialer(client, router, campaign="reminders", store=store) as dialer,
    ):
        # Handles of submitted reminders until their outcome is read (a real service would
        # keep outcomes in its database and read them from webhooks or the dialer's store).
        yield {"dialer": dialer, "handles": {}}


api = FastAPI(lifespan=lifespan)
api.add_route("/webhooks", WebhookApp(router, secret=SECRET), methods=["POST"])


class Reminder(BaseModel):
    to: str
    message: str


@api.post("/reminders", status_code=202)
async def submit_reminder(reminder: Reminder, request: Request) -> dict[str, int]:
    call = au.CallRequest(
        from_=CALLER_ID,
        to=reminder.to,
        call_control=au.CallControl(on_answered=[au.PlayAudio(message=reminder.message)]),
    )
    try:
        handle = await request.state.dialer.submit(call)  # validated now, placed soon
    except au.ValidationError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    request.state.handles[handle.index] = handle
    return {"item": handle.index}


@api.get("/reminders/{item}")
async def reminder_outcome(item: int, request: Request, wait: float = 0.0) -> dict[str, Any]:
    handle = request.state.handles.get(item)
    if handle is None:
        raise HTTPException(status_code=404, detail="no such reminder")
    with anyio.move_on_after(min(wait, 30.0)):
        outcome = await handle
        del request.state.handles[item]
        return {"status": outcome.status, "reason": outcome.reason, "attempts": outcome.attempts}
    return {"status": "pending", "reason": None, "attempts": None}


if __name__ == "__main__":
    import asyncio

    from _service_demo import run_demo

    raise SystemExit(asyncio.run(run_demo(api, SECRET)))
