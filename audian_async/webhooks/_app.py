"""``WebhookApp``: a pure ASGI app that turns webhook requests into handled events.

It is a thin shell over the pure parts: it reads the body (bounded), checks the signature
(:func:`verify_parts`), parses the event (:func:`parse_event`), skips deliveries already
handled (:class:`DedupeStore`) and runs the router's handlers. Answers, in this order:

* 404 when built with ``path=`` and the request is for another path;
* 405 for anything but POST;
* 413 for a body over ``max_body`` (announced by Content-Length, or counted while reading);
* 401 for a missing, wrong or stale signature (any entry of repeated ``webhook-signature``
  lines may match; repeated ``webhook-id`` or ``webhook-timestamp`` lines must agree);
* 400 for a body that is not a webhook event;
* 204 once every matching handler succeeded (also for duplicates and unknown event types),
  or 500 when a handler (or the dispatch itself) raised or the handlers did not finish within
  ``handler_timeout``, so the sender redelivers and the handlers run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import anyio

from .._asgi import (
    BodyTooLarge,
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    check_length,
    receive_body,
    send_json,
)
from .._errors import ValidationError, WebhookError
from .._telemetry import WebhookTracing
from ._deadlines import Deadline, DeadlineExceeded
from ._dedupe import DedupeStore, InMemoryDedupeStore
from ._events import MAX_EVENT_SIZE, Event, parse_event
from ._router import EventRouter
from ._signing import (
    DEFAULT_TOLERANCE,
    decode_secret,
    keyed_hmac,
    signature_headers,
    verify_parts,
)

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["MAX_BODY", "WebhookApp"]

MAX_BODY = MAX_EVENT_SIZE
"""The default largest body :class:`WebhookApp` accepts: 1 MiB."""
DEFAULT_HANDLER_TIMEOUT = 30.0
"""The default seconds :class:`WebhookApp` gives a delivery's handlers to finish."""

logger = logging.getLogger("audian_async.webhooks")

_MAX_KEY = 256


class _SecretKey:
    """Holds the keyed HMAC so that no repr, log line or traceback shows the secret."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = keyed_hmac(value)

    def __repr__(self) -> str:
        return "<secret>"


async def _error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send_json(send, status, {"error": code, "message": message}, headers)


_NO_CONTENT: Message = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}

# Why a delivery was not handled: the "error" of its 500 answer.
_FAILED = "handler_failed"
_TIMED_OUT = "handler_timeout"


def _check_timeout(value: object) -> float | None:
    """``handler_timeout`` as a float, or None; a ValidationError unless positive (or None)."""
    if value is None:
        return None
    # NaN fails every comparison: `not value > 0` rejects it along with zero and negatives.
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValidationError(
            "handler_timeout", f"must be a positive number of seconds or None, got {value!r}"
        )
    return None if math.isinf(value) else float(value)


def _route_path(scope: Scope) -> str:
    # Since ASGI 3 clarified it, `path` includes `root_path` (Starlette mounts, proxies);
    # older servers leave it out. Compare what is left after the mount point either way.
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class WebhookApp:
    """An ASGI app receiving Audian webhooks and dispatching them to ``router``.

    >>> router = EventRouter()
    >>> app = WebhookApp(router, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

    Serve it with any ASGI server (``uvicorn module:app``) or mount it in another framework
    (``fastapi_app.mount("/webhooks", app)``).

    * ``secret``: the endpoint's ``whsec_...`` signing secret. Required unless ``verify=False``
      is passed explicitly (for local experiments only); a missing or malformed secret is a
      :class:`~audian_async.ValidationError` at construction.
    * ``max_body``: the largest body accepted, in bytes (1 MiB); larger requests get 413
      without the excess ever being read.
    * ``tolerance``: how far, in seconds, a delivery's ``webhook-timestamp`` may be from now.
    * ``dedupe_store``: where handled delivery ids are remembered (by default a bounded
      :class:`InMemoryDedupeStore`); a redelivery of a handled event gets 204 without
      running handlers. Deliveries of the same id that arrive while one is being handled
      wait for it, so handlers never run twice concurrently for one delivery.
    * ``path``: when set, only this path (relative to any mount point) is served; others
      get 404.
    * ``handler_timeout``: seconds a delivery's handlers get to finish (30 by default;
      ``None`` for no limit). Past it they are cancelled, the delivery is logged at WARNING
      and answered 500 so that the sender redelivers; it is not remembered as handled, and
      duplicates waiting for it run the handlers themselves. Without a limit one handler
      that never returns would hold its delivery id, every redelivery of it and the
      server's shutdown for good. A sync handler running in a worker thread cannot be
      interrupted: its delivery is answered once the thread returns, so give blocking
      calls in sync handlers timeouts of their own.
    * ``tracer_provider`` (the ``otel`` extra): receives a span per request, with the
      event's type, ids and call, the status answered and whether it was a duplicate; by
      default the global provider, looked up at the first request (see
      docs/observability.md).

    Lifespan messages are acknowledged; at startup a dedupe store that is an async context
    manager (:class:`RedisDedupeStore`) is entered, unless already open, and left at
    shutdown. Logs go to the ``audian_async.webhooks`` logger:
    rejected deliveries at WARNING, handler failures at ERROR with their traceback, handled
    ones at DEBUG. Bodies and secrets are never logged.
    """

    def __init__(
        self,
        router: EventRouter,
        *,
        secret: str | bytes | None = None,
        verify: bool = True,
        max_body: int = MAX_BODY,
        tolerance: float = DEFAULT_TOLERANCE,
        dedupe_store: DedupeStore | None = None,
        path: str | None = None,
        handler_timeout: float | None = DEFAULT_HANDLER_TIMEOUT,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if not isinstance(router, EventRouter):
            raise TypeError(f"router must be an EventRouter, got {type(router).__name__}")
        self._key: _SecretKey | None = None
        if verify:
            if secret is None or not secret:
                raise ValidationError(
                    "secret",
                    "a webhook signing secret is required (pass verify=False to accept "
                    "unsigned deliveries, for local testing only)",
                )
            try:
                self._key = _SecretKey(decode_secret(secret))
            except WebhookError as exc:
                raise ValidationError("secret", str(exc)) from None
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise ValidationError("max_body", "must be a positive number of bytes")
        if tolerance < 0:
            raise ValidationError("tolerance", "must not be negative")
        if path is not None and not path.startswith("/"):
            raise ValidationError("path", "must start with '/'")
        self.handler_timeout = handler_timeout
        self.router = router
        self.max_body = max_body
        self.tolerance = tolerance
        self.path = path
        self.dedupe_store: DedupeStore = (
            InMemoryDedupeStore() if dedupe_store is None else dedupe_store
        )
        # Delivery ids being handled right now, each with the duplicates waiting for it;
        # bounded by the requests in flight. Waiter events are only made when one waits.
        self._inflight: dict[str, list[anyio.Event]] = {}
        # Drops itself (None) at the first request if no SDK's provider is there.
        self._tracing: WebhookTracing | None = WebhookTracing(tracer_provider)

    @property
    def handler_timeout(self) -> float | None:
        """Seconds a delivery's handlers get to finish, or None for no limit."""
        return None if self._deadline is None else self._deadline.timeout

    @handler_timeout.setter
    def handler_timeout(self, value: float | None) -> None:
        timeout = _check_timeout(value)
        self._deadline = None if timeout is None else Deadline(timeout)

    @property
    def verifies(self) -> bool:
        """True when deliveries must carry a valid signature."""
        return self._key is not None

    def __repr__(self) -> str:
        return (
            f"WebhookApp({self.router!r}, verify={self.verifies}, max_body={self.max_body}, "
            f"tolerance={self.tolerance}, path={self.path!r}, "
            f"handler_timeout={self.handler_timeout})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            tracing = self._tracing
            if tracing is None:
                await self._http(scope, receive, send)
            else:
                await tracing.deliver(self, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        # A dedupe store with resources of its own (a Redis client) lives as long as the
        # server, on the server's loop; unless its owner has opened it already.
        async with contextlib.AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    store = self.dedupe_store
                    try:
                        if isinstance(store, AbstractAsyncContextManager) and not getattr(
                            store, "is_open", False
                        ):
                            await stack.enter_async_context(store)
                    except Exception as exc:
                        logger.error("webhook app startup failed: %s", exc)
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await stack.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.path is not None and _route_path(scope) != self.path:
            await _error(send, 404, "not_found", "no webhook endpoint here")
            return
        if scope["method"] != "POST":
            await _error(send, 405, "method_not_allowed", "use POST", [(b"allow", b"POST")])
            return

        # One pass over the headers picks out what is needed (names are lower-case in ASGI),
        # and notes whether a signature header came in several lines.
        msg_id = timestamp = signatures = None
        repeated = False
        headers = scope["headers"]
        max_body = self.max_body
        try:
            for name, value in headers:
                if name == b"webhook-id":
                    if msg_id is not None:
                        repeated = True
                    msg_id = value.decode("latin-1")
                elif name == b"webhook-timestamp":
                    if timestamp is not None:
                        repeated = True
                    timestamp = value.decode("latin-1")
                elif name == b"webhook-signature":
                    if signatures is not None:
                        repeated = True
                    signatures = value.decode("latin-1")
                elif name == b"content-length":
                    check_length(value, max_body)
            # Read (bounded) before looking at the signature: 413 comes first, whoever sent it.
            body = await receive_body(receive, max_body)
        except BodyTooLarge as exc:
            logger.warning("webhook rejected (413): %s", exc)
            await _error(
                send, 413, "payload_too_large", f"the body is larger than {max_body} bytes"
            )
            return
        except ClientDisconnected:
            return  # nobody to answer

        if repeated or self._key is not None:
            try:
                if repeated:
                    # Rare (a proxy split a field): the careful pass combines the signature
                    # lines and refuses ids or timestamps that disagree.
                    msg_id, timestamp, signatures = signature_headers(headers)
                if self._key is not None:
                    verify_parts(
                        self._key.value,
                        msg_id,
                        timestamp,
                        signatures,
                        body,
                        tolerance=self.tolerance,
                    )
            except WebhookError as exc:
                logger.warning("webhook rejected (401): %s", exc)
                await _error(send, 401, "invalid_signature", str(exc))
                return
        try:
            event = parse_event(body, max_size=self.max_body)
        except WebhookError as exc:
            logger.warning("webhook %s rejected (400): %s", msg_id, exc)
            await _error(send, 400, "invalid_event", str(exc))
            return

        key = msg_id or event.id
        if key is not None and len(key) > _MAX_KEY:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        if self._tracing is not None:
            self._tracing.event(event, key)
        failure = await self._handle(event, key)
        if failure is not None and self._tracing is not None:
            self._tracing.failed(failure)
        if failure is None:
            await send(_NO_CONTENT)
            await send(_EMPTY_BODY)
        elif failure == _TIMED_OUT:
            await _error(send, 500, _TIMED_OUT, "the handlers did not finish in time")
        else:
            await _error(send, 500, _FAILED, "a handler failed")

    async def _handle(self, event: Event, key: str | None) -> str | None:
        """Run the handlers unless ``key`` was handled already; None, or why they were not."""
        if key is None:  # nothing to dedupe on (only possible with verify=False)
            return await self._dispatch(event, event.id)
        inflight = self._inflight
        while (waiters := inflight.get(key)) is not None:
            wakeup = anyio.Event()
            waiters.append(wakeup)
            await wakeup.wait()
        # No checkpoint between the loop and this line: exactly one delivery owns the key.
        inflight[key] = []
        try:
            store = self.dedupe_store
            memory = store if type(store) is InMemoryDedupeStore else None
            try:
                duplicate = memory.seen_now(key) if memory is not None else await store.seen(key)
            except Exception:
                logger.exception("webhook %s: the dedupe store failed", key)
                return _FAILED
            if duplicate:
                if self._tracing is not None:
                    self._tracing.duplicate()
                logger.debug("webhook %s (%s) already handled", key, event.type)
                return None
            failure = await self._dispatch(event, key)
            if failure is not None:
                return failure  # not remembered: the redelivery runs the handlers again
            try:
                if memory is not None:
                    memory.remember_now(key)
                else:
                    await store.remember(key)
            except Exception:  # handled all the same: a redelivery would merely re-run
                logger.exception("webhook %s: the dedupe store failed", key)
            return None
        finally:
            # Also after a timeout or a cancellation: a waiting duplicate takes the key over.
            for wakeup in inflight.pop(key):
                wakeup.set()

    async def _dispatch(self, event: Event, delivery: str | None) -> str | None:
        """Run the handlers within ``handler_timeout``; None, or why they did not succeed."""
        deadline = self._deadline
        try:
            if deadline is None:
                count = await self.router.dispatch(event)
            else:
                # Past the deadline the router's task group is cancelled: no handler
                # outlives the request, and the delivery id is free again for a redelivery.
                count = await deadline.run(self.router.dispatch, event)
        except DeadlineExceeded:
            logger.warning(
                "webhook %s (%s): the handlers did not finish within %g s; cancelled",
                delivery,
                event.type,
                self.handler_timeout,
            )
            return _TIMED_OUT
        except ExceptionGroup as group:
            logger.error("webhook %s (%s): %s", delivery, event.type, group.message, exc_info=group)
            return _FAILED
        except Exception:
            # Raised outside any handler (a router subclass, a bug): still ours to log, and
            # still a 500 so that the sender redelivers, rather than the server's generic
            # "Exception in ASGI application".
            logger.exception("webhook %s (%s): dispatch failed", delivery, event.type)
            return _FAILED
        logger.debug("webhook %s (%s) handled by %d handler(s)", delivery, event.type, count)
        return None
