"""Receive Audian webhooks: verify signatures, parse typed events, route them to handlers.

>>> from audian_async.webhooks import CallFailed, EventRouter, WebhookApp
>>> router = EventRouter()
>>> @router.on("call.failed", reason="busy")
... async def redial(event: CallFailed) -> None:
...     ...
>>> app = WebhookApp(router, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")  # ASGI
"""

from .._errors import WebhookError
from ._app import MAX_BODY, WebhookApp
from ._dedupe import DedupeStore, InMemoryDedupeStore
from ._events import (
    EVENT_TYPES,
    CallAnswered,
    CallCompleted,
    CallFailed,
    CallInitiated,
    CallRinging,
    Event,
    RecordingCompleted,
    UnknownEvent,
    parse_event,
)
from ._redis_dedupe import RedisDedupeStore
from ._router import EventRouter, Handler, Subscription
from ._signing import DEFAULT_TOLERANCE, decode_secret, sign, verify

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_TYPES",
    "MAX_BODY",
    "CallAnswered",
    "CallCompleted",
    "CallFailed",
    "CallInitiated",
    "CallRinging",
    "DedupeStore",
    "Event",
    "EventRouter",
    "Handler",
    "InMemoryDedupeStore",
    "RecordingCompleted",
    "RedisDedupeStore",
    "Subscription",
    "UnknownEvent",
    "WebhookApp",
    "WebhookError",
    "decode_secret",
    "parse_event",
    "sign",
    "verify",
]
