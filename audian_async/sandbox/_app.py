"""The sandbox's HTTP face: a pure ASGI app that speaks the reference API.

It translates requests into calls on the :class:`~._engine.Engine` (through the same
``parse_call_request`` / ``validate_call_request`` the client uses, so both sides share one set
of rules) and replies in the reference's shapes, errors included: ``{"error", "message",
"code"}``. Its lifespan runs the timer heap and the webhook workers in one task group.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Unpack

import anyio
import anyio.abc

from .._asgi import BodyTooLarge, ClientDisconnected, Receive, Scope, Send, read_body
from .._convert import format_datetime, parse_call_request
from .._errors import ValidationError
from .._json import canonical, dumps, loads
from .._models import CallRequest, CallStatus
from .._validation import MAX_BATCH, validate_call_request
from ._audio import make_wav
from ._calls import CallState
from ._chance import Chance
from ._dashboard import Dashboard
from ._engine import Engine
from ._journal import Journal, RequestRecord
from ._magic import OWNED_CALLER_ID
from ._openapi import openapi_bytes
from ._records import SandboxEvent
from ._scheduler import Scheduler
from ._sender import WebhookDeliverer
from ._settings import SandboxOptions, SandboxSettings, resolve_settings

__all__ = ["SandboxApp"]

MAX_IDEMPOTENCY_KEYS = 10_000
MAX_REMEMBERED_REQUESTS = 100_000
"""Request contents whose occurrences are counted (for seeded choices); oldest forgotten."""
_NUMBER_FIELDS = frozenset({"to", "from", "destination", "caller_id"})
_ROUTE_CALLS = "POST /v2/calls"
_ROUTE_BATCH = "POST /v2/calls/batch"
_ROUTE_GET = "GET /v2/calls/{id}"
_ROUTE_RECORDING = "GET /v2/recordings/{id}"
_ROUTE_DOCUMENT = "GET /openapi.json"


class _Reply(Exception):
    """Raised inside a handler to answer with an error in the reference's shape."""

    def __init__(
        self, status: int, error: str, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = list(headers)

    def body(self) -> bytes:
        return dumps({"error": self.error, "message": self.message, "code": self.status})


_ERROR_CODES = {
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def _injected(status: int) -> _Reply:
    """The reply of an injected fault: its error code follows its status."""
    # Only these two statuses tell the client when to come back.
    retry = [(b"retry-after", b"1")] if status in (429, 503) else []
    return _Reply(status, _ERROR_CODES.get(status, "error"), "Injected fault", retry)


def _validation_reply(exc: ValidationError, prefix: str = "") -> _Reply:
    """The 400 for ``exc``; ``prefix`` locates the item in a batch (``"calls[3]"``)."""
    # A hint names an SDK option (default_region=), which a client of the HTTP API lacks.
    exc = exc.without_hint()
    if prefix:
        exc = exc.at(prefix)
    field = exc.field
    leaf = field.rsplit(".", 1)[-1]
    if leaf in _NUMBER_FIELDS and exc.message != "is required":
        what = "destination" if leaf in ("to", "destination") else "caller ID"
        return _Reply(
            400, "invalid_number", f"The {what} number format is invalid ({field}: {exc.message})"
        )
    return _Reply(400, "invalid_request", str(exc))


def _check_writable(request: CallRequest) -> None:
    """400 unless what replies and events echo of ``request`` can be written as JSON.

    The JSON reader accepts more than the writer (1024 levels against 254; integers past
    64 bits), so without this a request would be acted on and then fail to answer. The
    extra level stands for the webhook envelope, where tags sit one level deeper.
    """
    echoed = {
        "tags": request.tags,
        "custom_fields": request.custom_fields,
        "timeout": request.timeout,
        "max_duration": request.max_duration,
    }
    try:
        dumps({"data": echoed})
        if request.scheduled_for is not None:
            format_datetime(request.scheduled_for)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Reply(400, "invalid_request", f"The call request cannot be stored: {exc}") from None


def _fingerprint(data: object) -> bytes | None:
    """A digest of decoded JSON that ignores the key order and whitespace it came in; None
    when it cannot be written back (nested past the writer's limit)."""
    try:
        return hashlib.blake2b(canonical(data), digest_size=16).digest()
    except (TypeError, ValueError, RecursionError):  # the stdlib writer recurses
        return None


def _same_json(body: bytes, fingerprint: bytes | None) -> bool:
    """Whether ``body`` holds the JSON that ``fingerprint`` was taken of."""
    if fingerprint is None:
        return False
    try:
        data = loads(body)
    except ValueError:
        return False
    return _fingerprint(data) == fingerprint


def _route(path: str) -> tuple[str | None, str, tuple[str, ...]]:
    """(route name, path argument, allowed methods) for ``path``; name None when unknown."""
    if path == "/v2/calls":
        return _ROUTE_CALLS, "", ("POST",)
    if path == "/v2/calls/batch":
        return _ROUTE_BATCH, "", ("POST",)
    if path.startswith("/v2/calls/") and path.count("/") == 3:
        return _ROUTE_GET, path[len("/v2/calls/") :], ("GET",)
    if path.startswith("/v2/recordings/") and path.count("/") == 3:
        return _ROUTE_RECORDING, path[len("/v2/recordings/") :], ("GET",)
    if path == "/openapi.json":
        return _ROUTE_DOCUMENT, "", ("GET",)
    return None, "", ()


class SandboxApp:
    """The ASGI application of the sandbox (see :class:`~audian_async.sandbox.Sandbox`).

    Mount it under any ASGI server; its ``lifespan`` must run, since the simulated network
    and the webhook workers live there. Configure it with a :class:`SandboxSettings` or
    with its keyword arguments (``SandboxApp(api_key="k", speed=10)``); host, port and
    client options are the server's business and ignored here.
    """

    def __init__(
        self, settings: SandboxSettings | None = None, **options: Unpack[SandboxOptions]
    ) -> None:
        settings = resolve_settings(settings, options)
        self.settings = settings
        """What the app was built with (see :class:`SandboxSettings`)."""
        self._api_key = settings.api_key.encode()
        self.caller_ids = frozenset({OWNED_CALLER_ID, *settings.caller_ids})
        self.faults = settings.faults
        self.origin = "http://127.0.0.1"
        """Scheme, host and port the sandbox is reached at (set once bound)."""
        self.chance = Chance(settings.seed)
        self.scheduler = Scheduler()
        self.deliverer = WebhookDeliverer(
            key=settings.webhook_key,
            urls=list(settings.webhook_urls),
            schedule=self.scheduler.call_later,
            speed=settings.speed,
            drop_rate=settings.drop_rate,
            duplicate_rate=settings.duplicate_rate,
            seed=settings.seed,
            max_attempts=settings.webhook_max_attempts,
            timeout=settings.webhook_timeout,
            workers=settings.webhook_workers,
        )
        self.engine = Engine(
            speed=settings.speed,
            max_concurrent=settings.max_concurrent,
            max_scheduled=settings.max_scheduled,
            scheduler=self.scheduler,
            emit=self._emit,
            recording_url=lambda rid: f"{self.origin}/v2/recordings/{rid}",
            seed=settings.seed,
        )
        # (route, key) -> (body identity, fingerprint, status, reply) of what the key did.
        self.idempotency: OrderedDict[tuple[str, str], tuple[str, bytes | None, int, bytes]] = (
            OrderedDict()
        )
        self.stats: dict[str, int] = {
            "requests": 0,
            "posts": 0,
            "calls_created": 0,
            "idempotent_replays": 0,
            "rate_limited": 0,
            "injected_errors": 0,
            "no_replies": 0,
        }
        self.journal = Journal()
        """The bounded recent history the dashboard shows (requests and call changes)."""
        self.deliverer.on_record = self.journal.poke
        self.dashboard = Dashboard(self)
        """The dashboard served at ``/`` and ``/_dashboard/`` (see docs/dashboard.md)."""
        self._wake = anyio.Event()
        # How often each request content was seen: (digest, occurrence) is a request's
        # identity for seeded choices, whatever order concurrent requests arrive in.
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def _created(self, call: CallState) -> None:
        # A call that starts now already told the journal through its first event.
        if call.status is CallStatus.SCHEDULED:
            self.journal.call_changed(call.call_id)

    def _emit(self, event: SandboxEvent) -> None:
        self.journal.call_changed(event.call_id)
        self.deliverer.enqueue(event)

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        self.journal.closed = False  # a restarted sandbox serves live streams again
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self._run_timers)
                await tg.start(self.deliverer.run)
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown: uvicorn has stopped taking requests
                await self._drain()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.deliverer.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    async def _drain(self) -> None:
        # Give deliveries in flight a moment to land, so a stopping sandbox tells its
        # receivers what already happened; timers (and so retries) keep running meanwhile.
        with anyio.move_on_after(self.settings.drain_timeout):
            while self.deliverer.pending:  # noqa: ASYNC110 - a counter, not an event
                await anyio.sleep(0.01)

    def _wake_timers(self) -> None:
        self._wake.set()

    async def _run_timers(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        scheduler = self.scheduler
        scheduler.on_earlier = self._wake_timers
        task_status.started()
        while True:
            self._wake = anyio.Event()
            due = scheduler.run_due()
            if due is None:
                await self._wake.wait()
                continue
            delay = due - scheduler.clock()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await self._wake.wait()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if not path.startswith("/v2/") and self.dashboard.serves(path):
            await self.dashboard(scope, receive, send)
            return
        # The journal's whole cost on the hot path: one small object, two clock reads and
        # a ring append (see benchmarks/sandbox_capacity.py and docs/dashboard.md).
        record = RequestRecord(scope["method"], path)
        started = perf_counter()
        try:
            record.status = await self._respond(scope, receive, send, record)
        finally:
            record.latency = perf_counter() - started
            self.journal.add_request(record)

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> int | None:
        """Answer one API request; return the status sent (None: the client left first)."""
        stats = self.stats
        stats["requests"] += 1
        method = record.method
        if method == "POST":
            stats["posts"] += 1
        faults = self.faults
        if faults.latency > 0:
            await anyio.sleep(faults.latency)
        try:
            route, arg, allowed = _route(record.path)
            if route is None:
                raise _Reply(404, "not_found", "No such endpoint")
            if method not in allowed:
                allow = (b"allow", ", ".join(allowed).encode())
                raise _Reply(405, "method_not_allowed", f"Use {allowed[0]}", [allow])
            if route == _ROUTE_DOCUMENT:
                # The published contract: no API key, and no API route for faults to hit.
                return await self._send(send, 200, openapi_bytes())
            headers = scope["headers"]
            if route != _ROUTE_RECORDING:
                self._authenticate(headers)
            body = await self._read_body(headers, receive) if method == "POST" else b""
            identity = self._identity(route, record.path, body)
            if faults.error_for(route, *identity, seed=self.settings.seed):
                stats["injected_errors"] += 1
                record.fault = "error"
                raise _injected(faults.error_status)
            if route == _ROUTE_RECORDING:
                # The recording URL is a capability (an unguessable id), as download links
                # in webhooks usually are: no API key needed.
                return await self._send(send, *self._recording(arg))
            if route == _ROUTE_GET:
                return await self._send(send, 200, dumps(self._get(arg)))
            status, payload = self._post(route, identity, headers, body, record)
        except _Reply as reply:
            if reply.status == 429:
                stats["rate_limited"] += 1
            record.error = reply.error
            return await self._send(send, reply.status, reply.body(), reply.headers)
        if faults.no_reply_for(route, *identity, seed=self.settings.seed):
            stats["no_replies"] += 1
            record.fault = "no_reply"
            return await self._hold(receive, send)
        return await self._send(send, status, payload)

    @staticmethod
    async def _send(
        send: Send,
        status: int,
        body: bytes,
        extra: Iterable[tuple[bytes, bytes]] = (),
        content_type: bytes = b"application/json",
    ) -> int:
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    async def _hold(self, receive: Receive, send: Send) -> int | None:
        with anyio.move_on_after(self.faults.no_reply_hold):
            while (await receive())["type"] != "http.disconnect":
                pass
            return None  # the client gave up: it never sees the reply
        reply = _Reply(504, "gateway_timeout", "The reply was lost (injected fault)")
        return await self._send(send, 504, reply.body())

    def _authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        given = b""
        for name, value in headers:
            if name == b"x-auth-token":
                given = value.strip()
                break
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = token.strip()
                    break
        if not given or not hmac.compare_digest(given, self._api_key):
            raise _Reply(
                401,
                "unauthorized",
                "Missing or invalid API key",
                [(b"www-authenticate", b'Bearer realm="audian"')],
            )

    async def _read_body(self, headers: Iterable[tuple[bytes, bytes]], receive: Receive) -> bytes:
        limit = self.settings.max_body
        try:
            return await read_body(receive, headers, limit)
        except BodyTooLarge:
            raise _Reply(
                413, "payload_too_large", f"The request body exceeds {limit} bytes"
            ) from None
        except ClientDisconnected:
            raise _Reply(400, "invalid_request", "The client disconnected") from None

    # --- handlers -----------------------------------------------------------------------

    def _get(self, call_id: str) -> dict[str, Any]:
        call = self.engine.calls.get(call_id)
        if call is None:
            raise _Reply(404, "not_found", "Call not found")
        return self.engine.wire(call)

    def _recording(self, recording_id: str) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        recording = self.engine.recordings.get(recording_id)
        if recording is None:
            raise _Reply(404, "not_found", "Recording not found")
        disposition = f'attachment; filename="{recording_id}.wav"'.encode()
        return (
            200,
            make_wav(recording.duration),
            [(b"content-disposition", disposition)],
            b"audio/wav",
        )

    def _identity(self, route: str, path: str, body: bytes) -> tuple[str, int]:
        """What a request asked (a digest of its route, path and body) and the how-manieth
        time it asked it: the identity its seeded choices derive from."""
        digest = hashlib.blake2b(
            b"%s\0%s\0%s" % (route.encode(), path.encode("utf-8", "surrogateescape"), body),
            digest_size=16,
        ).digest()
        seen = self._seen
        occurrence = seen.pop(digest, 0) + 1
        seen[digest] = occurrence  # most recent last, so the oldest goes first
        if len(seen) > MAX_REMEMBERED_REQUESTS:
            seen.popitem(last=False)
        return digest.hex(), occurrence

    def _post(
        self,
        route: str,
        identity: tuple[str, int],
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        record: RequestRecord,
    ) -> tuple[int, bytes]:
        key = ""
        for name, value in headers:
            if name == b"idempotency-key":
                key = value.decode("latin-1").strip()
                break
        if len(key) > 255:
            raise _Reply(400, "invalid_request", "Idempotency-Key: at most 255 characters")
        if key:
            record.idempotency_key = key
            seen = self.idempotency.get((route, key))
            if seen is not None:
                # The same JSON may come back written differently (another client, another
                # serialiser): equal bytes settle it for free (the identity digests the
                # body, under a route of one fixed path); only differing ones are decoded.
                if seen[0] != identity[0] and not _same_json(body, seen[1]):
                    raise _Reply(
                        422,
                        "idempotency_key_reused",
                        "This Idempotency-Key was already used with a different request body",
                    )
                self.stats["idempotent_replays"] += 1
                record.replay = True
                return seen[2], seen[3]
        data = self._json(body)
        try:
            if route == _ROUTE_CALLS:
                status, payload = 201, dumps(self._create(data, identity))
            else:
                status, payload = 200, dumps(self._batch(data, identity))
        except TypeError as exc:  # a value the JSON writer refuses: never a 500
            raise _Reply(400, "invalid_request", f"The request cannot be stored: {exc}") from None
        if key:
            # Only replies that acted are remembered: a 429 or 400 must be re-evaluated.
            # The fingerprint is taken now, from what is already decoded: keeping the
            # body to decode later would cost its size per key.
            store = self.idempotency
            store[(route, key)] = (identity[0], _fingerprint(data), status, payload)
            if len(store) > MAX_IDEMPOTENCY_KEYS:
                store.popitem(last=False)
        return status, payload

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return loads(body)
        except ValueError:
            raise _Reply(400, "invalid_json", "The request body is not valid JSON") from None

    def _check(self, data: object, now: datetime, prefix: str = "") -> CallRequest:
        try:
            request = validate_call_request(parse_call_request(data)).request
        except ValidationError as exc:
            raise _validation_reply(exc, prefix) from None
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Reply(400, "invalid_request", f"Unreadable call request: {exc}") from None
        _check_writable(request)
        if request.from_ not in self.caller_ids:
            raise _Reply(
                403, "unauthorized_caller_id", "You are not authorized to use this caller ID"
            )
        engine = self.engine
        if not engine.starts_now(request, now):
            # Scheduled calls take no line until they start (then they wait for one), but
            # the queue of them is bounded; it clears as they fall due, so 429.
            if engine.scheduled_full:
                raise _Reply(
                    429,
                    "rate_limited",
                    f"Too many scheduled calls. Maximum: {engine.max_scheduled}",
                )
        elif engine.at_limit:
            raise _Reply(
                429,
                "rate_limited",
                f"Too many concurrent calls. Maximum: {engine.max_concurrent}",
                [(b"retry-after", b"1")],
            )
        return request

    def _create(self, data: object, identity: tuple[str, int]) -> dict[str, Any]:
        now = datetime.now(UTC)  # one instant for the checks and the call's created_at
        request = self._check(data, now)
        call = self.engine.create(request, wall=now, identity=identity)
        self._created(call)
        self.stats["calls_created"] += 1
        return self.engine.wire(call)

    def _batch(self, data: object, identity: tuple[str, int]) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("calls"), list):
            raise _Reply(400, "invalid_request", "calls: must be a list of call objects")
        items: list[Any] = data["calls"]
        if not items:
            raise _Reply(400, "invalid_request", "calls: a batch needs at least one call")
        if len(items) > MAX_BATCH:
            raise _Reply(400, "invalid_request", f"calls: a batch holds at most {MAX_BATCH} calls")
        results: list[dict[str, Any]] = []
        queued = 0
        for index, item in enumerate(items):
            try:
                now = datetime.now(UTC)
                request = self._check(item, now, f"calls[{index}]")
            except _Reply as reply:
                failure: dict[str, Any] = {
                    "status": "failed",
                    "error": reply.error,
                    "message": reply.message,
                    "code": reply.status,
                }
                to = item.get("to") if isinstance(item, dict) else None
                if isinstance(to, str):
                    failure["to"] = to[:64]
                results.append(failure)
                continue
            call = self.engine.create(request, wall=now, identity=(*identity, index))
            self._created(call)
            self.stats["calls_created"] += 1
            queued += 1
            results.append({"call_id": call.call_id, "status": call.status.value})
        return {
            "batch_id": "batch_" + self.chance.token(6, "batch", *identity),
            "total": len(items),
            "queued": queued,
            "failed": len(items) - queued,
            "calls": results,
        }
