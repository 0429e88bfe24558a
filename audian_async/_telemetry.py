"""OpenTelemetry instrumentation (the ``otel`` extra): spans for API requests and webhook
deliveries, metrics for the dialer.

Free when nobody is listening. Each instrumented object (a client, a webhook app, a dialer
session) holds one of the objects below and decides once, at its first use, whether
instrumentation is live: it is when the provider (the one passed to the object, else the
global one at that moment) comes from an SDK. The API's own providers, the placeholder it
hands out until an SDK is set and its no-op one, count as none, and so does an API nobody
has imported: then ``opentelemetry`` is not even imported here. An object found to have no
provider drops its tracing object (``owner._tracing = None``), so from then on the hot paths
pay one ``is None`` check. docs/observability.md is the user guide.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from ._json import loads
from ._version import __version__

if TYPE_CHECKING:
    import httpx
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._asgi import Message, Receive, Scope, Send
    from .webhooks._events import Event

__all__ = [
    "INSTRUMENTATION_NAME",
    "ClientTracing",
    "DialerMetrics",
    "WebhookTracing",
    "dialer_metrics",
    "error_type",
]

INSTRUMENTATION_NAME = "audian_async"
"""The name of the package's tracer and meter (their version is the package's)."""

_CREATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
"""Seconds: the HTTP semantic conventions' advice for request durations."""


# --- deciding whether anyone listens -------------------------------------------------------


def _unconfigured(provider: object) -> bool:
    # The API's placeholder (until an SDK provider is set) and its no-op providers live in
    # the API's own modules; every provider that records anything comes from an SDK.
    return type(provider).__module__.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


def _global_api(module: str, env: str) -> Any:
    """The API module if anyone may have set a global provider through it, else None."""
    api = sys.modules.get(module)
    if api is None:
        # Nobody imported it, so nobody set a provider; unless the API is told to load one
        # itself from the environment on first use.
        if env not in os.environ:
            return None
        try:
            api = importlib.import_module(module)
        except ImportError:
            return None
    return api


def _configured(explicit: Any, module: str, env: str, getter: str) -> Any:
    """``explicit``, or else the global provider of ``module`` (``getter`` reads it); None
    when that is not an SDK's."""
    provider = explicit
    if provider is None:
        api = _global_api(module, env)
        if api is None:
            return None
        provider = getattr(api, getter)()
    return None if _unconfigured(provider) else provider


def _tracer(explicit: TracerProvider | None) -> Tracer | None:
    """The package's tracer from ``explicit`` or the global provider; None when neither is
    an SDK's."""
    provider = _configured(
        explicit, "opentelemetry.trace", "OTEL_PYTHON_TRACER_PROVIDER", "get_tracer_provider"
    )
    if provider is None:
        return None
    tracer: Tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
    return tracer


def _meter(explicit: MeterProvider | None) -> Meter | None:
    """The package's meter from ``explicit`` or the global provider; None when neither is
    an SDK's."""
    provider = _configured(
        explicit, "opentelemetry.metrics", "OTEL_PYTHON_METER_PROVIDER", "get_meter_provider"
    )
    if provider is None:
        return None
    meter: Meter = provider.get_meter(INSTRUMENTATION_NAME, __version__)
    return meter


class _Api:
    """The few API names the spans need, imported once instrumentation is found live."""

    def __init__(self) -> None:
        from opentelemetry import context, trace

        self.attach = context.attach
        self.detach = context.detach
        self.get_current_span = trace.get_current_span
        self.set_span_in_context = trace.set_span_in_context
        self.Status = trace.Status
        self.ERROR = trace.StatusCode.ERROR
        self.CLIENT = trace.SpanKind.CLIENT
        self.SERVER = trace.SpanKind.SERVER
        self.INTERNAL = trace.SpanKind.INTERNAL


_api: _Api | None = None


def _load_api() -> _Api:
    global _api
    if _api is None:
        _api = _Api()
    return _api


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its class, named from its public module
    (``httpx.ConnectError``, not ``httpx._exceptions.ConnectError``)."""
    cls = type(exc)
    public = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    if public == ["builtins"]:
        return cls.__qualname__
    return ".".join([*public, cls.__qualname__])


def _fail(api: _Api, span: Span, exc: BaseException, kind: str) -> None:
    span.set_attribute("error.type", kind)
    if isinstance(exc, Exception):  # a cancellation is no error of the request's
        span.record_exception(exc)
    span.set_status(api.Status(api.ERROR, str(exc) or type(exc).__name__))


# --- the client ----------------------------------------------------------------------------


class _Client(Protocol):
    _tracing: ClientTracing | None

    async def _send(self, request: httpx.Request) -> httpx.Response: ...


class ClientTracing:
    """A CLIENT span per HTTP request ``AsyncAudian`` sends (each retry is a request of its
    own, as the HTTP semantic conventions have it)."""

    __slots__ = ("_address", "_base_path", "_decided", "_explain", "_origin", "_port", "_tracer")

    def __init__(
        self,
        provider: TracerProvider | None,
        *,
        scheme: str,
        host: str,
        port: int | None,
        base_path: str,
        explain: Callable[[BaseException], str] | None = None,
    ) -> None:
        self._tracer: Any = provider  # the provider until decided, then the tracer
        self._decided = False
        self._address = host
        self._port = port if port is not None else (443 if scheme == "https" else 80)
        # url.full must not carry credentials: it is rebuilt from these, never from the URL.
        authority = f"[{host}]" if ":" in host else host  # an IPv6 literal
        self._origin = f"{scheme}://{authority}:{self._port}"
        self._base_path = base_path.rstrip("/")
        self._explain = explain or error_type

    def _route(self, path: str) -> tuple[str, str | None]:
        """``url.template`` and the call id it names, for a path under the base URL."""
        rest = path[len(self._base_path) :] if path.startswith(self._base_path) else path
        if rest.startswith("/calls/") and rest != "/calls/batch":
            return "/calls/{call_id}", unquote(rest[7:])
        return rest, None

    async def send(self, client: _Client, request: httpx.Request, retry: int) -> httpx.Response:
        """``client._send(request)`` inside its span; ``retry`` counts from 0."""
        if not self._decided:
            self._tracer = _tracer(self._tracer)
            self._decided = True
        tracer: Tracer | None = self._tracer
        if tracer is None:
            client._tracing = None  # nobody listens: the client stops asking
            return await client._send(request)
        api = _load_api()
        method = request.method
        raw_path = request.url.raw_path.decode("ascii")
        template, call_id = self._route(request.url.path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.full": self._origin + raw_path,
            "url.template": template,
            "server.address": self._address,
            "server.port": self._port,
            "audian.attempt": retry + 1,
        }
        if retry:
            attributes["http.request.resend_count"] = retry
        key = request.headers.get("idempotency-key")
        if key:
            attributes["audian.idempotency_key"] = key
        if call_id:
            attributes["audian.call_id"] = call_id
        span = tracer.start_span(f"{method} {template}", kind=api.CLIENT, attributes=attributes)
        token = api.attach(api.set_span_in_context(span))
        try:
            response = await client._send(request)
        except BaseException as exc:
            _fail(api, span, exc, self._explain(exc))
            span.end()
            raise
        finally:
            api.detach(token)
        self._finish(api, span, response, method, template)
        return response

    @staticmethod
    def _finish(
        api: _Api, span: Span, response: httpx.Response, method: str, template: str
    ) -> None:
        status = response.status_code
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(api.Status(api.ERROR))
        elif method == "POST" and template == "/calls":
            call_id = _call_id_of(response.content)
            if call_id:
                span.set_attribute("audian.call_id", call_id)
        span.end()


def _call_id_of(body: bytes) -> str | None:
    try:
        value = loads(body).get("call_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# --- the webhook receiver ------------------------------------------------------------------


class _App(Protocol):
    _tracing: WebhookTracing | None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class _Delivery:
    __slots__ = ("failure", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.failure: str | None = None


# The delivery being handled in this task, for the hooks inside WebhookApp._http.
_delivery: ContextVar[_Delivery | None] = ContextVar("audian_webhook_delivery", default=None)


class WebhookTracing:
    """A span per HTTP request ``WebhookApp`` answers: SERVER, or INTERNAL under a span
    already current (a framework's own instrumentation made the SERVER span)."""

    __slots__ = ("_decided", "_tracer")

    def __init__(self, provider: TracerProvider | None) -> None:
        self._tracer: Any = provider  # the provider until decided, then the tracer
        self._decided = False

    async def deliver(self, app: _App, scope: Scope, receive: Receive, send: Send) -> None:
        """``app._http(scope, receive, send)`` inside its span."""
        if not self._decided:
            self._tracer = _tracer(self._tracer)
            self._decided = True
        tracer: Tracer | None = self._tracer
        if tracer is None:
            app._tracing = None  # nobody listens: the app stops asking
            await app._http(scope, receive, send)
            return
        api = _load_api()
        nested = api.get_current_span().get_span_context().is_valid
        attributes: dict[str, Any] = {"http.request.method": scope.get("method", "")}
        path = scope.get("path")
        if path:
            attributes["url.path"] = path
        scheme = scope.get("scheme")
        if scheme:
            attributes["url.scheme"] = scheme
        span = tracer.start_span(
            "webhook", kind=api.INTERNAL if nested else api.SERVER, attributes=attributes
        )
        delivery = _Delivery(span)

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status: int = message["status"]
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", delivery.failure or str(status))
                    span.set_status(api.Status(api.ERROR))
            await send(message)

        token = api.attach(api.set_span_in_context(span))
        mark = _delivery.set(delivery)
        try:
            await app._http(scope, receive, answer)
        except BaseException as exc:
            _fail(api, span, exc, error_type(exc))
            raise
        finally:
            _delivery.reset(mark)
            api.detach(token)
            span.end()

    def event(self, event: Event, delivery_id: str | None) -> None:
        """The delivery's event was parsed (its signature already checked)."""
        delivery = _delivery.get()
        if delivery is None:
            return
        span = delivery.span
        span.update_name(f"webhook {event.type}")
        attributes: dict[str, Any] = {
            "audian.event.type": event.type,
            "audian.webhook.duplicate": False,
        }
        if delivery_id is not None:
            attributes["audian.webhook.id"] = delivery_id
        if event.id is not None:
            attributes["audian.event.id"] = event.id
        if event.call_id is not None:
            attributes["audian.call_id"] = event.call_id
        span.set_attributes(attributes)

    def duplicate(self) -> None:
        """The delivery was handled before: acknowledged without running handlers."""
        delivery = _delivery.get()
        if delivery is not None:
            delivery.span.set_attribute("audian.webhook.duplicate", True)

    def failed(self, why: str) -> None:
        """The handlers did not succeed (``why`` is the 500 answer's error code)."""
        delivery = _delivery.get()
        if delivery is not None:
            delivery.failure = why


# --- the dialer ----------------------------------------------------------------------------


class _Instruments:
    """The dialer's instruments on one meter; one live-calls gauge reports every session."""

    def __init__(self, meter: Meter) -> None:
        self.placed = meter.create_counter(
            "audian.dialer.calls.placed", unit="{call}", description="Calls the API accepted."
        )
        self.completed = meter.create_counter(
            "audian.dialer.calls.completed",
            unit="{call}",
            description="Campaign items finished with a completed call.",
        )
        self.failed = meter.create_counter(
            "audian.dialer.calls.failed",
            unit="{call}",
            description="Campaign items finished failed, by audian.failure.reason.",
        )
        self.redials = meter.create_counter(
            "audian.dialer.redials", unit="{call}", description="Redials scheduled."
        )
        self.rate_limited = meter.create_counter(
            "audian.dialer.rate_limited",
            unit="{response}",
            description="Creates answered 429 and waited out (not attempts).",
        )
        self.create_duration = meter.create_histogram(
            "audian.dialer.create.duration",
            unit="s",
            description="Time from sending a create (retries within the client included) "
            "to its answer or failure.",
            explicit_bucket_boundaries_advisory=list(_CREATE_BUCKETS),
        )
        self._lock = threading.Lock()  # the gauge is read from the metric reader's thread
        self._sessions: dict[int, DialerMetrics] = {}
        meter.create_observable_gauge(
            "audian.dialer.calls.live",
            callbacks=[self._observe_live],
            unit="{call}",
            description="Live calls of each running campaign (with a RedisStore, the "
            "campaign's count over every process).",
        )

    def add(self, session: DialerMetrics) -> None:
        with self._lock:
            self._sessions[id(session)] = session

    def remove(self, session: DialerMetrics) -> None:
        with self._lock:
            self._sessions.pop(id(session), None)

    def _observe_live(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        with self._lock:
            sessions = list(self._sessions.values())
        return [Observation(s.live(), s.attributes) for s in sessions]


# One set of instruments per meter: instruments are registered once, and the gauge's
# callback is given at registration. Weak: a provider dropped (tests make many) takes its
# instruments along.
_instruments: weakref.WeakKeyDictionary[Meter, _Instruments] = weakref.WeakKeyDictionary()
_instruments_lock = threading.Lock()


def _instruments_for(meter: Meter) -> _Instruments:
    with _instruments_lock:
        try:
            known = _instruments.get(meter)
        except TypeError:  # a meter that cannot be weakly referenced: not cached
            return _Instruments(meter)
        if known is None:
            known = _instruments[meter] = _Instruments(meter)
        return known


class DialerMetrics:
    """One dialer session's measurements, every one tagged with ``audian.campaign``."""

    __slots__ = ("_by_reason", "_instruments", "attributes", "live")

    def __init__(self, instruments: _Instruments, campaign: str, live: Callable[[], int]) -> None:
        self._instruments = instruments
        self.attributes = {"audian.campaign": campaign}
        self.live = live
        """How many calls of the campaign are live now."""
        self._by_reason: dict[str, dict[str, str]] = {}

    def open(self) -> None:
        """The session started: report its live calls."""
        self._instruments.add(self)

    def close(self) -> None:
        """The session ended."""
        self._instruments.remove(self)

    def placed(self) -> None:
        """The API accepted a create: one more attempt."""
        self._instruments.placed.add(1, self.attributes)

    def created(self, seconds: float, error: BaseException | None = None) -> None:
        """A create was answered (or failed) ``seconds`` after it was sent."""
        attributes = self.attributes
        if error is not None:
            # A status is named as in the HTTP conventions ("429"), anything else by type.
            status = getattr(error, "status_code", None)
            kind = str(status) if isinstance(status, int) else error_type(error)
            attributes = {**attributes, "error.type": kind}
        self._instruments.create_duration.record(seconds, attributes)

    def rate_limited(self) -> None:
        """A create was answered 429; the dialer waits and sends it again."""
        self._instruments.rate_limited.add(1, self.attributes)

    def redialed(self) -> None:
        """A redial of an item was scheduled."""
        self._instruments.redials.add(1, self.attributes)

    def finished(self, completed: bool, reason: str | None) -> None:
        """An item reached its outcome."""
        if completed:
            self._instruments.completed.add(1, self.attributes)
            return
        why = reason or "unknown"
        attributes = self._by_reason.get(why)
        if attributes is None:
            attributes = self._by_reason[why] = {**self.attributes, "audian.failure.reason": why}
        self._instruments.failed.add(1, attributes)


def dialer_metrics(
    provider: MeterProvider | None, campaign: str, live: Callable[[], int]
) -> DialerMetrics | None:
    """The session's metrics, or None when no SDK's meter provider is there to take them."""
    meter = _meter(provider)
    if meter is None:
        return None
    return DialerMetrics(_instruments_for(meter), campaign, live)
