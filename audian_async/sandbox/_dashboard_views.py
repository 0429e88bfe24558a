"""The dashboard's JSON: plain dictionaries made from the sandbox's state, and knob changes.

Everything here is synchronous and runs on the sandbox's loop when the dashboard asks, never
on the API's hot path. Secrets are masked here, once: nothing that leaves this module holds
the API key or the webhook secret in full.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Reversible
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from .._convert import format_datetime
from ._calls import CallState
from ._faults import ROUTES
from ._journal import MAX_CALL_CHANGES, MAX_REQUESTS, RequestRecord
from ._records import SandboxRecording
from ._sender import Delivery

if TYPE_CHECKING:
    from ._app import SandboxApp

__all__ = [
    "KnobError",
    "apply_knobs",
    "call_detail",
    "call_summary",
    "delivery_view",
    "knobs_view",
    "latest",
    "latest_calls",
    "mask",
    "overview",
    "recording_view",
    "request_view",
]

_SIGNATURE_SHOWN = 12  # characters of a webhook-signature shown: enough to tell two apart
_PATH_SHOWN = 200
_ERROR_STATUSES = (429, 500, 502, 503, 504)
T = TypeVar("T")
MAX_LATENCY = 60.0
"""The largest ``latency`` the dashboard accepts (seconds)."""


def mask(secret: str) -> str:
    """``sk_…abcd``: the prefix up to its first underscore and the last four characters.

    Short secrets show fewer characters, so never more than a third of one is visible.
    """
    prefix, sep, _ = secret.partition("_")
    head = prefix + sep if sep and len(prefix) <= 6 else ""
    tail = secret[-4:] if len(secret) >= 12 + len(head) else ""
    return f"{head}…{tail}"


def _iso(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, UTC))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- calls ------------------------------------------------------------------------------


def call_summary(call: CallState) -> dict[str, Any]:
    """One row of the calls table."""
    events = call.events
    return {
        "call_id": call.call_id,
        "from": call.request.from_,
        "to": call.request.to,
        "status": call.status.value,
        "reason": None if call.reason is None else call.reason.value,
        "created_at": format_datetime(call.created_at),
        "attempt": call.attempt,
        "events": len(events),
        "last_event": events[-1].type if events else None,
        "recordings": len(call.recordings),
    }


def latest_calls(
    calls: OrderedDict[str, CallState], limit: int, status: str | None = None
) -> list[dict[str, Any]]:
    """The ``limit`` most recent calls (newest first), of ``status`` when given."""
    newest: Iterator[CallState] = reversed(calls.values())
    if status:
        newest = (call for call in newest if call.status.value == status)
    return [call_summary(call) for call in islice(newest, limit)]


def call_detail(app: SandboxApp, call: CallState, deliveries: int = 200) -> dict[str, Any]:
    """A call with its timeline, the call control it ran, its recordings and deliveries."""
    engine = app.engine
    found = (engine.recordings.get(rid) for rid in call.recordings)
    own = [d for d in reversed(app.deliverer.records) if d.call_id == call.call_id]
    return {
        **call_summary(call),
        "call": engine.wire(call),
        "events": [
            {"id": e.id, "type": e.type, "timestamp": e.timestamp, "data": e.data}
            for e in call.events
        ],
        "actions": list(call.actions),
        "ended_by": call.ended_by,
        "recordings": [recording_view(r) for r in found if r is not None],
        "deliveries": [delivery_view(d) for d in islice(own, deliveries)],
    }


# --- journals ---------------------------------------------------------------------------


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """One webhook delivery attempt, its signature truncated."""
    signature = delivery.signature
    if signature is not None and len(signature) > _SIGNATURE_SHOWN:
        signature = signature[:_SIGNATURE_SHOWN] + "…"
    return {
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "call_id": delivery.call_id,
        "url": delivery.url,
        "attempt": delivery.attempt,
        "status_code": delivery.status_code,
        "ok": delivery.ok,
        "error": delivery.error,
        "dropped": delivery.dropped,
        "duplicate": delivery.duplicate,
        "at": _iso(delivery.at),
        "latency_ms": _ms(delivery.latency),
        "signature": signature,
    }


def request_view(record: RequestRecord) -> dict[str, Any]:
    """One API request of the journal."""
    path = record.path
    if len(path) > _PATH_SHOWN:
        path = path[:_PATH_SHOWN] + "…"
    return {
        "at": _iso(record.at),
        "method": record.method,
        "path": path,
        "status": record.status,
        "latency_ms": _ms(record.latency),
        "idempotency_key": record.idempotency_key,
        "replay": record.replay,
        "error": record.error,
        "fault": record.fault,
    }


def recording_view(recording: SandboxRecording) -> dict[str, Any]:
    """A recording, with the dashboard's own URL of its audio (untouched by the faults)."""
    return {
        "recording_id": recording.recording_id,
        "call_id": recording.call_id,
        "url": recording.url,
        "audio_url": f"/_dashboard/api/recordings/{recording.recording_id}/audio",
        "format": recording.format,
        "requested_format": recording.requested_format,
        "duration": recording.duration,
    }


def latest(items: Reversible[T], limit: int) -> Iterator[T]:
    """The last ``limit`` items of a reversible collection, newest first."""
    return islice(reversed(items), limit)


# --- the whole picture ------------------------------------------------------------------


def overview(app: SandboxApp) -> dict[str, Any]:
    """Counts, counters and settings (secrets masked) for the page's header."""
    engine, settings, deliverer = app.engine, app.settings, app.deliverer
    return {
        "calls": {
            "created": engine.calls_created,
            "stored": len(engine.calls),
            "live": engine.live,
            "scheduled": engine.scheduled,
            "completed": engine.completed,
            "failed": engine.failed,
            "peak_live": engine.peak_live,
        },
        "webhooks": {"pending": deliverer.pending, "delivered": deliverer.delivered},
        "recordings": engine.recordings_made,
        "stats": dict(app.stats),
        "sandbox": {
            "base_url": f"{app.origin}/v2",
            "api_key": mask(settings.api_key),
            "webhook_secret": mask(settings.webhook_secret),
            "webhook_urls": list(deliverer.urls),
            "speed": settings.speed,
            "seed": settings.seed,
            "caller_ids": sorted(app.caller_ids),
        },
        "limits": {
            "requests": MAX_REQUESTS,
            "deliveries": deliverer.records.maxlen,
            "call_changes": MAX_CALL_CHANGES,
            "stored_calls": engine.max_stored_calls,
        },
    }


# --- the knobs --------------------------------------------------------------------------


class KnobError(ValueError):
    """A knob change the dashboard refuses (answered 400, naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def knobs_view(app: SandboxApp) -> dict[str, Any]:
    """The knobs that change the API's behaviour, as ``GET /_dashboard/api/faults`` shows."""
    faults = app.faults
    return {
        "latency": faults.latency,
        "error_status": faults.error_status,
        "error_rate": dict(faults.error_rate),
        "no_reply_rate": dict(faults.no_reply_rate),
        "no_reply_hold": faults.no_reply_hold,
        "drop_rate": app.deliverer.drop_rate,
        "duplicate_rate": app.deliverer.duplicate_rate,
        "max_concurrent": app.engine.max_concurrent,
        "routes": ["*", *ROUTES],
    }


def _number(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise KnobError(field, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _rates(field: str, value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        raise KnobError(field, "must be an object of route -> rate")
    rates: dict[str, float] = {}
    for route, rate in value.items():
        if route != "*" and route not in ROUTES:
            raise KnobError(f"{field}.{route}", f"unknown route; one of * {', '.join(ROUTES)}")
        rate = _number(f"{field}.{route}", rate, 0.0, 1.0)
        if rate:
            rates[route] = rate  # a zero is no fault: keep the map to what is set
    return rates


def apply_knobs(app: SandboxApp, change: object) -> None:
    """Apply ``change`` (some of :func:`knobs_view`'s fields) all at once, or none of it.

    A rate map replaces the whole map. Raises :class:`KnobError` for an unknown field or a
    value out of range, before anything is changed.
    """
    if not isinstance(change, dict):
        raise KnobError("body", "must be a JSON object")
    checked: dict[str, Any] = {}
    for field, value in change.items():
        if field == "latency":
            checked[field] = _number(field, value, 0.0, MAX_LATENCY)
        elif field == "no_reply_hold":
            checked[field] = _number(field, value, 0.0, 3600.0)
        elif field in ("drop_rate", "duplicate_rate"):
            checked[field] = _number(field, value, 0.0, 1.0)
        elif field in ("error_rate", "no_reply_rate"):
            checked[field] = _rates(field, value)
        elif field == "error_status":
            if value not in _ERROR_STATUSES or isinstance(value, bool):
                raise KnobError(field, f"must be one of {', '.join(map(str, _ERROR_STATUSES))}")
            checked[field] = value
        elif field == "max_concurrent":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise KnobError(field, "must be an integer >= 0")
            checked[field] = value
        else:
            raise KnobError(field, "unknown knob")
    faults = app.faults
    for field, value in checked.items():
        if field in ("drop_rate", "duplicate_rate"):
            setattr(app.deliverer, field, value)
        elif field == "max_concurrent":
            app.engine.max_concurrent = value
        elif field in ("error_rate", "no_reply_rate"):
            # In place: code holding sb.faults.error_rate sees the change too.
            rates = getattr(faults, field)
            rates.clear()
            rates.update(value)
        else:
            setattr(faults, field, value)
