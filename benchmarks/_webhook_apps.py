"""The webhook receivers ``webhooks_bench.py`` measures, and the deliveries it sends them.

Each app reads a delivery and answers it as a server would see it: the bare ASGI apps (the
ceiling), the two floors (only the work a delivery cannot skip; our verifier and parser
inline), WebhookApp, and a FastAPI endpoint (standardwebhooks + pydantic). ``build_app``
builds one by name for a served run; the in-process tables call the pieces directly.
"""

import binascii
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from _webhook_peers import TYPES, pydantic_adapter

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_deliveries(n: int, prefix: str = "msg") -> list[tuple[bytes, dict[str, str]]]:
    """``n`` signed deliveries over every event type, with unique ids, signed now."""
    from audian_async.webhooks import sign

    now = int(time.time())
    stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    out = []
    for i in range(n):
        kind = TYPES[i % len(TYPES)]
        data: dict[str, Any] = {"call_id": f"call_{i:08x}", "status": kind.split(".")[1]}
        if kind == "call.failed":
            data |= {"status": "failed", "reason": "busy", "reason_code": 486}
        elif kind == "recording.completed":
            data = {
                "call_id": data["call_id"],
                "recording_id": f"rec_{i:08x}",
                "recording_url": f"https://recordings.example.com/rec_{i:08x}.mp3",
                "format": "mp3",
                "duration": 45,
            }
        body = json.dumps(
            {"id": f"evt_{prefix}_{i}", "timestamp": stamp, "event": kind, "data": data}
        ).encode()
        msg_id = f"{prefix}_{i}"
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(SECRET, msg_id, now, body),
        }
        out.append((body, headers))
    return out


async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    """The floor: read the body, answer 204."""
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def inline_floor(handler: Any) -> Any:
    """The same work with none of WebhookApp's bookkeeping: the headers picked out, the
    signature checked (``verify_parts``), the event parsed (``parse_event``), a plain dict
    for dedupe and the one handler awaited directly. No in-flight waiting for duplicates, no
    handler deadline, no router, no error mapping: a floor for what the app adds to it."""
    from audian_async.webhooks import parse_event
    from audian_async.webhooks._signing import decode_secret, keyed_hmac, verify_parts

    key = keyed_hmac(decode_secret(SECRET))
    handled: dict[str, bool] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        msg_id = timestamp = signatures = None
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                msg_id = value.decode("latin-1")
            elif name == b"webhook-timestamp":
                timestamp = value.decode("latin-1")
            elif name == b"webhook-signature":
                signatures = value.decode("latin-1")
        message = await receive()
        body = message["body"]
        verify_parts(key, msg_id, timestamp, signatures, body)
        event = parse_event(body)
        if msg_id not in handled:
            await handler(event)
            handled[msg_id] = True  # type: ignore[index]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def minimal_work(handler: Any) -> Any:
    """Only the work a delivery cannot do without: one HMAC-SHA256 of the signed content
    compared with the one header entry, one JSON decode, the handler awaited. No checks
    (timestamp, sizes, header shapes), no typed event, no dedupe: a floor below any
    endpoint that keeps the documented behaviour."""
    import hmac

    import orjson

    from audian_async.webhooks._signing import decode_secret, keyed_hmac

    key = keyed_hmac(decode_secret(SECRET))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        body = (await receive())["body"]
        mac = key.copy()
        mac.update(b"%s.%s." % (headers[b"webhook-id"], headers[b"webhook-timestamp"]))
        mac.update(body)
        wanted = b"v1," + binascii.b2a_base64(mac.digest(), newline=False)
        if not hmac.compare_digest(headers[b"webhook-signature"], wanted):
            raise RuntimeError("bad signature")
        await handler(orjson.loads(body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def with_lifespan(app: Any) -> Any:
    """``app`` for http scopes, with the lifespan protocol answered around it."""

    async def served(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await app(scope, receive, send)

    return served


def build_app(kind: str) -> Any:
    if kind in ("bare", "bare204"):
        status = 204 if kind == "bare204" else 200

        # Lifespan answered inline, not through with_lifespan(): the baseline takes no
        # extra call per request.
        async def bare(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        return bare

    async def handler(event: Any) -> None:
        pass

    if kind == "floor":
        return with_lifespan(inline_floor(handler))
    if kind == "minimal":
        return with_lifespan(minimal_work(handler))
    if kind in ("webhookapp", "webhookapp_loaded"):
        if kind == "webhookapp_loaded":
            import audian_async as au

            au.AsyncAudian, au.Dialer  # noqa: B018  (loaded on first use)
        from audian_async.webhooks import EventRouter, WebhookApp

        router = EventRouter()
        router.add(handler, "*")
        options = json.loads(os.environ.get("BENCH_WEBHOOKAPP_OPTIONS", "{}"))
        return WebhookApp(router, secret=SECRET, **options)

    import standardwebhooks
    from fastapi import FastAPI, HTTPException, Request, Response
    from pydantic import ValidationError

    wh = standardwebhooks.Webhook(SECRET)
    adapter = pydantic_adapter()
    handlers = {t: [handler] for t in TYPES}
    api = FastAPI()

    @api.post("/")
    async def hook(request: Request) -> Response:
        body = await request.body()
        try:
            payload = wh.verify(body, dict(request.headers))
        except standardwebhooks.webhooks.WebhookVerificationError:
            raise HTTPException(401) from None
        try:
            event = adapter.validate_python(payload)
        except ValidationError:
            raise HTTPException(400) from None
        for h in handlers.get(event.event, ()):
            await h(event)
        return Response(status_code=204)

    return api
